"""report.html in a real headless Chromium: it renders offline, with no
console errors. CI installs Debian's chromium (.ci/run) and sets
FLOWTEST_REQUIRE_BROWSER=1, so there the test cannot be skipped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from flowtest import cli
from tests import chromium


@pytest.fixture
def browser() -> str:
    return chromium.require()


@pytest.mark.slow
def test_report_html_renders_without_console_errors(browser: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rd = tmp_path / "reports"
    assert cli.main(["demo", "--aliases", "2", "--report-dir", str(rd)]) == 0
    assert cli.main(["demo", "--aliases", "2", "--leg", "inbound", "--fault", "spam",
                     "--report-dir", str(rd)]) == 1  # some history, some failures
    page = sorted(rd.glob("*/report.html"))[-1]
    shot = chromium.screenshot(page, tmp_path / "report.png")
    shutil.copy(shot, Path(os.environ.get("FLOWTEST_SCREENSHOT", tmp_path / "kept.png")))
