"""report.html in a real headless Chromium: it renders offline, with no
console errors. CI installs Debian's chromium (.ci/run) and sets
FLOWTEST_REQUIRE_BROWSER=1, so there the test cannot be skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flowtest import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser() -> str:
    if CHROMIUM is None:
        if os.environ.get("FLOWTEST_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (FLOWTEST_REQUIRE_BROWSER) but not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.mark.slow
def test_report_html_renders_without_console_errors(browser: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rd = tmp_path / "reports"
    assert cli.main(["demo", "--aliases", "2", "--report-dir", str(rd)]) == 0
    assert cli.main(["demo", "--aliases", "2", "--leg", "inbound", "--fault", "spam",
                     "--report-dir", str(rd)]) == 1  # some history, some failures
    page = sorted(rd.glob("*/report.html"))[-1]
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--log-level=0", "--window-size=1280,1800", f"--screenshot={shot}",
         page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    assert "Failed to load resource" not in done.stderr
    shutil.copy(shot, Path(os.environ.get("FLOWTEST_SCREENSHOT", tmp_path / "kept.png")))
