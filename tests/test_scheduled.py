"""The scheduled-use example of docs/scheduled.md, run as cron would run it:
a separate process, its exit code, its one Nagios line and its metrics file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flowtest.sandbox import World
from tests.conftest import CANARY_APP_PASSWORD


def scheduled_run(config: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowtest.cli", "run", "-c", str(config), "--nagios",
         "--prometheus-textfile", str(tmp_path / "flowtest.prom"),
         "--report-dir", str(tmp_path / "reports"), *extra],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)


@pytest.mark.parametrize(("fault", "extra", "code", "word"), [
    (None, ("--leg", "inbound"), 0, "OK"),
    (None, (), 1, "WARNING"),
    ("spam", (), 2, "CRITICAL"),
    ("bad-app-password", (), 3, "UNKNOWN"),
])
def test_scheduled_run_exit_codes(world: World, tmp_path: Path, fault: str | None,
                                  extra: tuple[str, ...], code: int, word: str) -> None:
    if fault:
        world.set_fault(fault)
    config = world.write_config(tmp_path / "flowtest.toml")
    done = scheduled_run(config, tmp_path, *extra)
    assert done.returncode == code, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"FLOWTEST {word} - ")
    assert "flowtest_probe_success" in (tmp_path / "flowtest.prom").read_text()
    for text in (done.stdout, done.stderr, (tmp_path / "flowtest.prom").read_text()):
        assert CANARY_APP_PASSWORD not in text
        assert CANARY_APP_PASSWORD.replace(" ", "") not in text


def test_an_exhausted_send_budget_is_unknown_to_nagios(world: World, tmp_path: Path) -> None:
    """Refused before sending: a monitoring system must read "could not test"
    (UNKNOWN, 3), not CRITICAL."""
    config = world.write_config(tmp_path / "flowtest.toml")
    config.write_text(config.read_text() + "\n[limits]\ndaily_sends = 2\n")
    done = scheduled_run(config, tmp_path)  # both legs, 3 aliases: 3 > 2
    assert done.returncode == 3, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("FLOWTEST UNKNOWN - config error: ")
    assert "limits.daily_sends" in lines[0]
