"""The pytest plugin, tested with pytester in a separate process."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_live_target_needs_a_config(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_x(flowtest_alias):\n    pass\n")
    result = pytester.runpytest_subprocess("--flowtest-target", "live")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*--flowtest-target live needs --flowtest-config*"])


def test_live_aliases_come_from_the_config(pytester: pytest.Pytester) -> None:
    from flowtest import config as cfg
    pytester.path.joinpath("flowtest.toml").write_text(
        cfg.template(domain="mine.me", aliases=("a", "b")))
    pytester.makepyfile(test_user="def test_x(flowtest_alias):\n    assert flowtest_alias\n")
    result = pytester.runpytest_subprocess("--co")
    result.stdout.fnmatch_lines(["flowtest: target live, config flowtest.toml"])
    result.stdout.fnmatch_lines(["*test_x[[]a@mine.me[]]*", "*test_x[[]b@mine.me[]]*"])
