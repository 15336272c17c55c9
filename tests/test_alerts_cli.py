"""`flowtest run --notify/--ping` as cron runs it: separate processes against a
sandbox config with a fault, a real HTTP receiver on loopback, and the state
kept between runs in the report directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flowtest.sandbox import World
from tests.alert_receiver import Receiver, receiver
from tests.conftest import CANARY_APP_PASSWORD

__all__ = ["receiver"]

CANARY = "Wv4CanaryHook8q"


def cron_run(config: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowtest.cli", "run", "-c", str(config), "--leg", "inbound",
         "--report-dir", str(tmp_path / "reports"), *extra],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)


def test_run_notify_says_down_after_two_failed_runs_and_recovered_once(
        world: World, receiver: Receiver, tmp_path: Path) -> None:
    config = world.write_config(tmp_path / "flowtest.toml")
    notify = receiver.url("json", f"/hook/{CANARY}")
    options = ("--notify", notify, "--ping", receiver.url("http", f"/ping/{CANARY}"))
    world.set_fault("spam")
    outputs = []
    for debug in ((), ("--debug",)):   # --debug: apprise logs the URL it posts to
        done = cron_run(config, tmp_path, *options, *debug)
        outputs += [done.stdout, done.stderr]
        assert done.returncode == 1, done.stderr
    assert "JSON POST URL" in done.stderr
    downs = [r.json() for r in receiver.at("/hook")]
    assert len(downs) == 1 and downs[0]["type"] == "failure"
    assert "SPAM_FOLDER" in downs[0]["message"] and "DOWN" in downs[0]["title"]
    world.clear_fault()
    for _ in range(2):
        done = cron_run(config, tmp_path, *options)
        outputs += [done.stdout, done.stderr]
        assert done.returncode == 0, done.stderr
    got = [r.json() for r in receiver.at("/hook")]
    assert [m["type"] for m in got] == ["failure", "success"]
    pings = receiver.at("/ping")
    assert [p.path.rsplit("/", 1)[-1] for p in pings] == [
        "start", "fail", "start", "fail", "start", CANARY, "start", CANARY]
    assert b"SPAM_FOLDER" in pings[1].body
    state = json.loads((tmp_path / "reports" / "alerts.json").read_text())
    assert {s["state"] for s in state["states"]} == {"ok"}
    written = [p.read_text(errors="replace") for p in (tmp_path / "reports").rglob("*")
               if p.is_file()]
    for text in outputs + written:
        assert CANARY not in text
        assert CANARY_APP_PASSWORD not in text and CANARY_APP_PASSWORD.replace(" ", "") not in text


def test_a_run_that_cannot_start_pings_fail_with_why(world: World, receiver: Receiver,
                                                     tmp_path: Path) -> None:
    config = world.write_config(tmp_path / "flowtest.toml")
    config.write_text(config.read_text() + "\n[limits]\ndaily_sends = 1\n")
    done = cron_run(config, tmp_path, "--leg", "both", "--ping",
                    receiver.url("http", "/ping/x1y2z3"))
    assert done.returncode == 2, done.stderr
    assert [p.path for p in receiver.got] == ["/ping/x1y2z3/start", "/ping/x1y2z3/fail"]
    assert b"limits.daily_sends" in receiver.got[1].body


@pytest.mark.parametrize("option", [("--notify", "nosuchscheme://x"), ("--ping", "ftp://x/y"),
                                    ("--alert-after", "0"),
                                    ("--notify", "env:FLOWTEST_SURELY_UNSET_VARIABLE")])
def test_bad_alert_options_are_usage_errors(world: World, tmp_path: Path,
                                            option: tuple[str, str]) -> None:
    config = world.write_config(tmp_path / "flowtest.toml")
    done = cron_run(config, tmp_path, *option)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr


def test_run_help_names_the_alert_options(capsys: pytest.CaptureFixture[str]) -> None:
    from flowtest import cli

    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    for option in ("--notify", "--ping", "--alert-after", "docs/alerts.md"):
        assert option in text


def test_run_without_alert_options_never_loads_apprise() -> None:
    """apprise costs ~0.3 s and 25 MB to load: only runs that notify pay it."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, flowtest.cli.run, flowtest.flows.alerting; "
                               "print('apprise' in sys.modules)"],
        capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


def test_a_ping_that_fails_leaves_the_exit_code_alone(world: World, tmp_path: Path) -> None:
    dead = Receiver()   # bound, never served, then closed: connection refused
    port = dead.port
    dead.server.server_close()
    config = world.write_config(tmp_path / "flowtest.toml")
    done = cron_run(config, tmp_path, "--ping", f"http://127.0.0.1:{port}/ping/k9s8d7f6")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("ping http://127.0.0.1/… (") == 2
    assert "k9s8d7f6" not in done.stderr + done.stdout
