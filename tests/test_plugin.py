"""The pytest plugin, tested with pytester in a separate process."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

USER_TEST = """
import pytest

@pytest.mark.inbound
def test_alias(inbound, flowtest_alias):
    [r] = inbound([flowtest_alias])
    assert r.verdict == "pass", " ".join(r.diagnosis)

@pytest.mark.inbound
@pytest.mark.faults("spam")
def test_spam_is_caught(inbound):
    [r] = inbound(["hello@example.me"])
    assert r.verdict == "pass", " ".join(r.diagnosis)
"""


def test_plugin_fixtures_markers_header_and_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("--flowtest-report-dir", "out", "-p",
                                           "no:cacheprovider")
    result.stdout.fnmatch_lines(["flowtest: target sandbox, network guard on (127.0.0.0/8 only)"])
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 3 and outcomes["failed"] == 1
    # The failure message carries the diagnosis.
    result.stdout.fnmatch_lines(["*Delivered to Gmail's Spam folder*"])
    result.stdout.fnmatch_lines(["*flowtest report: out*"])
    folders = [p for p in Path(pytester.path, "out").iterdir() if p.is_dir()]
    report = json.loads((folders[0] / "report.json").read_text())
    assert len(report["probes"]) == 4 and report["verdict"] == "fail"


def test_live_aliases_come_from_the_config(pytester: pytest.Pytester) -> None:
    from flowtest import config as cfg
    pytester.path.joinpath("flowtest.toml").write_text(
        cfg.template(domain="mine.me", aliases=("a", "b")))
    pytester.makepyfile(test_user="def test_x(flowtest_alias):\n    assert flowtest_alias\n")
    result = pytester.runpytest_subprocess("--co", "--flowtest-live")
    result.stdout.fnmatch_lines(["flowtest: target LIVE, config flowtest.toml*"])
    result.stdout.fnmatch_lines(["*test_x[[]a@mine.me[]]*", "*test_x[[]b@mine.me[]]*"])


BUDGET_TEST = """
import socket
import pytest
from flowtest import guard
from flowtest.errors import NetworkGuardError

def test_a_guarded(flowtest_target, flowtest_config):
    assert flowtest_target == "sandbox" and flowtest_config.target == "sandbox"
    assert guard.active()
    with pytest.raises(NetworkGuardError):
        socket.create_connection(("192.0.2.1", 587), timeout=2)

@pytest.mark.outbound
def test_b_first_send(outbound, flowtest_alias):
    [r] = outbound([flowtest_alias])
    assert r.verdict in ("pass", "warn"), " ".join(r.diagnosis)
"""


@pytest.mark.parametrize("live", [False, True], ids=["config", "config+live"])
def test_a_sandbox_config_keeps_the_guard_and_the_daily_budget_holds(
        pytester: pytest.Pytester, world: Any, live: bool) -> None:
    # A config written by `flowtest sandbox`, with a budget of 2 outbound probes
    # a day, one already spent an hour ago: the first alias is sent, the others
    # are refused before anything is submitted (issue 14, item 1).
    path = world.write_config(pytester.path / "sandbox.toml")
    with path.open("a", encoding="utf-8") as f:
        f.write("\n[limits]\ndaily_sends = 2\n")
    out = pytester.path / "out"
    out.mkdir()
    (out / "history.jsonl").write_text(json.dumps({
        "run_id": "earlier", "target": "sandbox", "leg": "outbound", "alias": "x@example.me",
        "sent_at": time.time() - 3600, "verdict": "pass"}) + "\n")
    pytester.makepyfile(test_user=BUDGET_TEST)
    submitted = len(world.truth.events(kind="submitted"))
    args = ["-p", "no:cacheprovider", "--flowtest-config", str(path),
            "--flowtest-report-dir", str(out)] + (["--flowtest-live"] if live else [])
    result = pytester.runpytest_subprocess(*args)
    result.stdout.fnmatch_lines([f"flowtest: target sandbox (config {path}), network guard on*"])
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*2 outbound probes in the last 24 hours and 1 more would pass "
                                 "limits.daily_sends = 2*nothing was sent*"])
    gmail = [e for e in world.truth.events(kind="submitted")[submitted:] if e.party == "gmail"]
    assert len(gmail) == 1


def test_an_insecure_config_is_marked(pytester: pytest.Pytester, world: Any) -> None:
    path = world.write_config(pytester.path / "sandbox.toml")
    path.write_text(path.read_text().replace("[tls]\n", "[tls]\ninsecure = true\n"))
    pytester.makepyfile(test_user="def test_x(flowtest_alias):\n    pass\n")
    result = pytester.runpytest_subprocess("--co", "--flowtest-config", str(path))
    result.stdout.fnmatch_lines(["flowtest: target sandbox (config *), network guard on*",
                                 "flowtest: INSECURE: TLS verification is off"])


LOGGING_TEST = """
import logging
from flowtest.secrets import Secret

def test_logs(caplog):
    secret = Secret("env:X", value='Fj"q\\\\7\\u00e9x zP').reveal()
    logging.getLogger("aioimaplib.aioimaplib").warning(
        "Sending : %s", f'A1 LOGIN u "{secret}"'.encode())
    assert False
"""


def test_pytest_log_capture_is_redacted(pytester: pytest.Pytester) -> None:
    # A failed test shows its captured log; protocol logs there are redacted too.
    pytester.makepyfile(test_user=LOGGING_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Captured log call*", "*Sending : b'A1 LOGIN u \"***\"'*"])
    captured = result.stdout.str().partition("Captured log call")[2]
    assert "zP" not in captured and "xc3" not in captured


def test_under_xdist_the_controller_reports_every_workers_probes(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST, test_other=USER_TEST)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile",
                                           "--flowtest-report-dir", "out",
                                           "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 6 and outcomes["failed"] == 2
    summary = result.stdout.str().split("flowtest report: out")[0]
    assert summary.count("inbound") >= 8  # the probe lines of both workers
    folders = [p for p in Path(pytester.path, "out").iterdir() if p.is_dir()]
    assert len(folders) == 1
    report = json.loads((folders[0] / "report.json").read_text())
    assert len(report["probes"]) == 8 and report["verdict"] == "fail"


def test_a_live_run_refuses_xdist(pytester: pytest.Pytester) -> None:
    from flowtest import config as cfg
    pytester.path.joinpath("flowtest.toml").write_text(
        cfg.template(domain="mine.me", aliases=("a", "b")))
    pytester.makepyfile(test_user="def test_x(flowtest_alias):\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "--flowtest-live")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*run it in one process, without -n*"])
