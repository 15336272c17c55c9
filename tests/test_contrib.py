"""contrib/: the Prometheus alerting rules under `promtool test rules`, and the
Grafana dashboard, both naming only metrics flowtest serve exports (issue 16,
item 3)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CONTRIB = Path(__file__).resolve().parent.parent / "contrib"
RULES = CONTRIB / "prometheus" / "alerts.yml"
RULE_TESTS = CONTRIB / "prometheus" / "alerts.test.yml"
DASHBOARD = CONTRIB / "grafana" / "flowtest.json"

# The names issue 16 lists (a histogram's series carry _bucket, _sum, _count;
# a counter's _total), the last-latency gauge and the build info beside them.
METRICS = {
    "flowtest_probe_success", "flowtest_probe_latency_seconds",
    "flowtest_probe_latency_last_seconds", "flowtest_hop_delay_seconds",
    "flowtest_auth_result", "flowtest_last_success_timestamp_seconds",
    "flowtest_probe_errors_total", "flowtest_dns_findings", "flowtest_send_budget_remaining",
    "flowtest_build_info",
}
_NAME_RE = re.compile(r"\bflowtest_[a-z_]+")


def _metric(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in METRICS:
            return name.removesuffix(suffix)
    return name


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("FLOWTEST_REQUIRE_PROMETHEUS"):
            pytest.fail("promtool is required here (FLOWTEST_REQUIRE_PROMETHEUS is set): "
                        "apt-get install prometheus")
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return found


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120,
                          check=False, cwd=cwd)


def test_the_rules_are_valid() -> None:
    done = run_promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    done = run_promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule that waits less than its test expects must be caught."""
    (tmp_path / RULES.name).write_text(
        RULES.read_text().replace("for: 15m", "for: 1m", 1))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    done = run_promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert done.returncode != 0 and "FlowtestMailPathDown" in done.stdout + done.stderr


def test_every_alert_the_issue_asks_for_is_there_and_tested() -> None:
    rules = RULES.read_text()
    tests = RULE_TESTS.read_text()
    for alert in ("FlowtestMailPathDown", "FlowtestForwardingSlow", "FlowtestSendAsDmarcFail",
                  "FlowtestDown", "FlowtestAbsent", "FlowtestStale"):
        assert f"alert: {alert}\n" in rules
        assert f"alertname: {alert}\n" in tests


def test_the_rules_name_only_known_metrics() -> None:
    names = {_metric(n) for n in _NAME_RE.findall(RULES.read_text())}
    assert names and names <= METRICS, names - METRICS


def _targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_the_dashboard_is_json_and_queries_known_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p.get("targets") for p in dashboard["panels"])
    seen: set[str] = set()
    for title, expr in _targets(dashboard):
        names = {_metric(n) for n in _NAME_RE.findall(expr)}
        assert names, f"{title}: {expr} names no flowtest metric"
        assert names <= METRICS, (title, names - METRICS)
        seen |= names
    # Every metric of the issue is on the dashboard somewhere.
    assert seen == METRICS
    variables = json.dumps(dashboard["templating"])
    assert all(_metric(n) in METRICS for n in _NAME_RE.findall(variables))


def test_the_dashboard_queries_parse(tmp_path: Path) -> None:
    """Each query is valid PromQL: promtool checks it as a recording rule."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [e.replace("$vantage", ".*") for _, e in _targets(dashboard)]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"flowtest_dashboard:query{n}", "expr": e} for n, e in enumerate(exprs)]}]}
    (tmp_path / "dashboard.yml").write_text(json.dumps(rules))  # JSON is YAML
    done = run_promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
