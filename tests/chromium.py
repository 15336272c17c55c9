"""Debian's Chromium, headless, for the tests that render a page: report.html,
the latency page, serve's status page, the Chinese report. One place for the
flags this machine's closed network needs and for what "rendered" means.

CI installs chromium (.ci/run) and sets FLOWTEST_REQUIRE_BROWSER=1, so there
a missing browser fails instead of skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium's own connections are
# refused by this machine's closed network, many at a time.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--log-level=0")


def require() -> str:
    """The browser's path, or skip (fail where CI requires it)."""
    if CHROMIUM is None:
        if os.environ.get("FLOWTEST_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (FLOWTEST_REQUIRE_BROWSER) but not installed")
        pytest.skip("chromium not installed (apt-get install chromium fonts-noto-cjk)")
    return CHROMIUM


def screenshot(page: Path, shot: Path, *, window: str = "1280,1800",
               profile: Path | None = None) -> Path:
    """Render ``page`` offline to a PNG and check it rendered: exit 0, a real
    picture, no console message and no resource it tried to load."""
    done = subprocess.run(
        [require(), *FLAGS, f"--user-data-dir={profile or shot.parent / 'profile'}",
         f"--window-size={window}", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    assert "Failed to load resource" not in done.stderr
    return shot
