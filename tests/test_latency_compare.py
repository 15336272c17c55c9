"""`flowtest report --latency` (issue 20, item 5): medians with intervals side
by side and one sentence on whether the difference beats the noise."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from flowtest import cli
from flowtest.mail import stats
from flowtest.report import latency_compare

NOW = 1_800_000_000.0
DAY = 86400.0


def test_mann_whitney_matches_scipy() -> None:
    # Reference values: scipy.stats.mannwhitneyu(a, b, method="asymptotic") (scipy 1.17.1).
    r = random.Random(1)
    a = [r.gauss(3, 1) for _ in range(30)]
    b = [r.gauss(3.8, 1) for _ in range(25)]
    assert stats.mann_whitney_p(a, b) == pytest.approx(0.0035479810787650747, rel=1e-9)
    ties_a, ties_b = [1.0, 2, 2, 3, 3, 3, 4], [3.0, 4, 4, 5, 5, 6, 7]
    assert stats.mann_whitney_p(ties_a, ties_b) == pytest.approx(0.007659988586736321,
                                                                 rel=1e-9)
    assert stats.mann_whitney_p([1.0] * 4, [2.0] * 9) is None
    assert stats.mann_whitney_p([1.0] * 6, [1.0] * 6) == 1.0


def _history(path: Path, weeks: dict[int, list[float | None]], alias: str = "a@x.me") -> None:
    with path.open("a") as f:
        for week, values in weeks.items():
            for i, v in enumerate(values):
                f.write(json.dumps({"run_id": f"r{week}", "leg": "inbound", "alias": alias,
                                    "latency_s": v,
                                    "sent_at": NOW - week * 7 * DAY - 3600 - i * 60}) + "\n")
        f.write("not json\n")


def test_week_against_week_says_whether_it_beats_the_noise(tmp_path: Path) -> None:
    r = random.Random(5)
    path = tmp_path / "history.jsonl"
    _history(path, {0: [r.uniform(4, 6) for _ in range(40)] + [None],
                    1: [r.uniform(2, 4) for _ in range(40)]})
    from flowtest.report import history
    groups = latency_compare.groups(history.read(path), "week", now=NOW)
    assert [g.label for g in groups] == ["this week", "last week"]
    assert groups[0].lost == 1 and len(groups[0].latencies) == 40
    verdict = latency_compare.compare(groups)
    assert verdict.larger_than_noise is True and verdict.p_value is not None
    assert "this week is slower than last week" in verdict.sentence
    same = tmp_path / "same.jsonl"
    _history(same, {0: [r.uniform(2, 4) for _ in range(40)],
                    1: [r.uniform(2, 4) for _ in range(40)]})
    assert latency_compare.compare(latency_compare.groups(
        history.read(same), "week", now=NOW)).larger_than_noise is False
    few = tmp_path / "few.jsonl"
    _history(few, {0: [1.0, 2.0], 1: [5.0, 6.0, 7.0]})
    assert latency_compare.compare(latency_compare.groups(
        history.read(few), "week", now=NOW)).larger_than_noise is None


def test_report_latency_command_by_alias(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import time
    rd = tmp_path / "reports"
    rd.mkdir()
    path = rd / "history.jsonl"
    now = time.time()
    with path.open("w") as f:
        for i in range(12):
            for alias, base in (("[bold]a@x.me[/bold]", 1.0), ("b@x.me", 5.0)):
                f.write(json.dumps({"run_id": "r", "leg": "inbound", "alias": alias,
                                    "latency_s": base + i / 10, "sent_at": now - i * 60}) + "\n")
    assert cli.main(["report", "--latency", "--by", "alias", "--report-dir", str(rd)]) == 0
    out = capsys.readouterr().out
    assert "[bold]a@x.me[/bold]: median" in out   # untrusted text printed as text
    assert "larger than the noise" in out
    assert cli.main(["report", "--latency", "--report-dir", str(tmp_path / "none")]) == 2
