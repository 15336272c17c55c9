"""latency.html in a real headless Chromium (issue 20, item 3): it renders
offline, with no console errors and nothing fetched. CI installs Debian's
chromium and sets FLOWTEST_REQUIRE_BROWSER=1, so there it cannot be skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flowtest import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("FLOWTEST_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (FLOWTEST_REQUIRE_BROWSER) but not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.mark.slow
def test_latency_page_renders_without_console_errors(chromium: str, tmp_path: Path) -> None:
    rd = tmp_path / "reports"
    assert cli.main(["latency", "-n", "6", "--interval", "0", "--all-aliases",
                     "--realistic-timing", "0.05", "--report-dir", str(rd)]) in (0, 1)
    [page] = rd.glob("*/latency.html")
    text = page.read_text()
    assert "<script" not in text and "latency over time" in text
    assert "time sent" in text and "(seconds" in text   # labelled axes, with units
    for name in ("latency.svg", "latency-cdf.svg", "latency-hops.svg"):
        assert (page.parent / name).read_text().startswith("<svg")
    shot = tmp_path / "latency.png"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--log-level=0", "--window-size=900,1700", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    assert "Failed to load resource" not in done.stderr
    shutil.copy(shot, Path(os.environ.get("FLOWTEST_LATENCY_SCREENSHOT", tmp_path / "kept.png")))
