"""Latency (issue 20): honest figures, long runs that keep what they measured,
charts, CSV, the budget."""

from __future__ import annotations

import csv
import json
import math
import signal
from pathlib import Path

import jsonschema
import pytest

from flowtest import cli
from flowtest.errors import ConfigError
from flowtest.flows import latency as flow
from flowtest.mail import stats
from flowtest.model import Hop, ProbeResult
from flowtest.report import history, latency_page, latency_plot, latency_run

SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "report.schema.json").read_text())


def _result(latency: float | None, hops: tuple[Hop, ...] = (), *, alias: str = "a@x.me",
            sent_at: float = 1000.0) -> ProbeResult:
    return ProbeResult("inbound", alias, "ft-x", "pass" if latency is not None else "fail",
                       latency is not None, "INBOX", latency, hops=hops, sent_at=sent_at)


def test_percentiles_carry_n_and_are_null_when_n_cannot_support_them() -> None:
    five = stats.summarize("e", [1.0, 2.0, 3.0, 4.0, 50.0])
    assert five is not None and five.p50 == 3.0 and five.p90 is None and five.p99 is None
    assert five.p50_ci is None   # 5 probes: min..max covers only 93.75%
    data = five.to_json()
    assert data["p90_s"] is None and data["p99_s"] is None and data["count"] == 5
    assert data["max_s"] == 50.0 and "resolution_s" not in data
    ten = stats.summarize("e", [float(v) for v in range(1, 11)])
    assert ten is not None and ten.p90 == 9.0 and ten.p99 is None
    hundred = stats.summarize("e", [float(v) for v in range(1, 101)])
    assert hundred is not None and (hundred.p50, hundred.p90, hundred.p99) == (50.0, 90.0, 99.0)
    assert stats.fmt(None, 99) == "n<100" and stats.fmt(None, 90) == "n<10"


@pytest.mark.parametrize("n", [6, 10, 25, 100, 401])
def test_median_interval_covers_95_percent(n: int) -> None:
    ci = stats.median_ci([float(v) for v in range(n)])
    assert ci is not None and ci[0] <= stats.percentile(range(n), 50) <= ci[1]  # type: ignore[arg-type]
    # Coverage of [x(l), x(n+1-l)] is 1 - 2 P(B < l), B ~ Bin(n, 1/2).
    low = int(ci[0]) + 1
    cover = 1 - 2 * sum(math.comb(n, i) for i in range(low)) / 2 ** n
    assert cover >= 0.95
    # And no narrower symmetric interval would do.
    tighter = 1 - 2 * sum(math.comb(n, i) for i in range(low + 1)) / 2 ** n
    assert tighter < 0.95 or low + 1 > n // 2


def test_a_hop_never_exceeds_the_trip_and_says_its_resolution() -> None:
    # Whole-second stamps: the hop looks 1 s long, the trip took 0.1 s.
    results = []
    for i in range(12):
        t = 1000.0 + i * 60
        hops = (Hop("smtp.sender.example", "", t, 0.0),
                Hop("cloudflare-email.net", "", t + 1, 1.0),
                Hop("mx.google.com", "", t + 1, 0.0),
                Hop("2002:a17:90b:3ec3:b0:abc", "", t + 1.05, 0.05, "X-Received", False, 0.001),
                Hop("2002:a17:907:1:b0:2:3:4", "", t + 1, 0.0))
        results.append(_result(0.1, hops, sent_at=t + 0.95))
    summaries = {s.name: s for s in stats.by_hop(results)}
    e2e = summaries["end to end"]
    assert set(summaries) == {"end to end", "hop 1: smtp.sender.example",
                              "hop 2: cloudflare-email.net", "hop 3: mx.google.com",
                              "hop 4: Gmail internal"}
    for s in summaries.values():
        if s is e2e:
            continue
        assert s.resolution_s == 1.0
        assert s.max <= e2e.max and (s.p50 or 0) <= (e2e.p50 or 0)
        assert (s.p90 or 0) <= (e2e.p90 or 0)
        assert s.to_json()["resolution_s"] == 1.0
    # Gmail's internal hops are one segment, measured to the X-Received epoch.
    [*_, gmail] = stats.segments(results[0])
    assert gmail.label == "Gmail internal" and gmail.delay_s == pytest.approx(0.05)


def test_skewed_and_undated_hops_are_left_out() -> None:
    hops = (Hop("a.example", "", 10.0, 0.0), Hop("b.example", "", None, None),
            Hop("c.example", "", 2.0, None, clock_skew=True), Hop("d.example", "", 12.0, 2.0))
    segs = stats.segments(_result(3.0, hops, sent_at=10.0))
    assert [s.label for s in segs] == ["a.example", "d.example"]
    assert segs[1].delay_s == 2.0


def test_latency_json_validates_against_the_schema(tmp_path: Path) -> None:
    rd = tmp_path / "reports"
    out = tmp_path / "latency.json"
    assert cli.main(["latency", "-n", "3", "--interval", "0", "--report-dir", str(rd),
                     "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    e2e, *hops = data["latency"]
    assert e2e["count"] == 3 and e2e["p90_s"] is None and e2e["p99_s"] is None
    assert e2e["p50_ci_s"] is None and all(h["resolution_s"] == 1.0 for h in hops)
    folder = next(p for p in rd.iterdir() if p.is_dir())
    jsonschema.Draft202012Validator(SCHEMA).validate(
        json.loads((folder / "report.json").read_text()))
    # Each probe in the history once (written as it completed), none twice.
    assert len(list(history.read(rd / "history.jsonl"))) == 3
    assert not (rd / latency_run.PLAN).exists()   # finished: nothing to resume


def test_aliases_alternate_and_csv_has_every_probe_with_hop_times(tmp_path: Path) -> None:
    rd = tmp_path / "reports"
    path = tmp_path / "probes.csv"
    assert cli.main(["latency", "-n", "4", "--interval", "0", "--all-aliases",
                     "--report-dir", str(rd), "--csv", str(path)]) == 0
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert len(rows) == 4
    assert [r["alias"] for r in rows] == ["hello@example.me", "shop@example.me",
                                          "billing@example.me", "hello@example.me"]
    assert all(float(r["latency_s"]) >= 0 for r in rows)
    assert any(k.endswith("mx.google.com s") for k in rows[0])
    assert all(r["hop 3: mx.google.com resolution s"] == "1.0" for r in rows)


def test_csv_cells_from_the_outside_cannot_be_formulas() -> None:
    hop = Hop("=HYPERLINK(\"http://evil\")", "", 1001.0, 1.0)
    text = latency_page.to_csv([_result(1.0, (hop,), alias="+cmd@x.me")])
    cells = [c for row in csv.reader(text.splitlines()) for c in row]
    assert "'+cmd@x.me" in cells and any("=HYPERLINK" in c for c in cells)
    assert not any(c[:1] in ("=", "+", "-", "@") for c in cells)


def test_interrupted_run_keeps_what_it_measured_and_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rd = tmp_path / "reports"
    real = latency_run.record
    calls: list[int] = []

    def record_then_interrupt(*args: object, **kw: object) -> None:
        real(*args, **kw)  # type: ignore[arg-type]
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)   # Ctrl-C after the second probe

    monkeypatch.setattr(latency_run, "record", record_then_interrupt)
    assert cli.main(["latency", "-n", "5", "--interval", "0", "--report-dir", str(rd)]) == 130
    assert len(list(history.read(rd / "history.jsonl"))) == 2
    saved = latency_run.load_plan(rd)
    assert saved is not None and saved[0]["count"] == 5
    folder = saved[1]
    assert (folder / "latency.html").exists() and (folder / "report.json").exists()
    monkeypatch.setattr(latency_run, "record", real)
    assert cli.main(["latency", "--resume", "--report-dir", str(rd)]) == 0
    rows = list(history.read(rd / "history.jsonl"))
    assert len(rows) == 5 and {r["run_id"] for r in rows} == {saved[0]["run_id"]}
    assert len(latency_run.read_journal(folder)) == 5
    assert not (rd / latency_run.PLAN).exists()
    assert cli.main(["latency", "--resume", "--report-dir", str(rd)]) == 2


def test_plans_durations_and_the_budget() -> None:
    assert flow.parse_duration("24h") == 86400 and flow.parse_duration("10m") == 600
    assert flow.parse_duration("1.5") == 1.5 and flow.parse_duration("2d") == 172800
    with pytest.raises(ValueError):
        flow.parse_duration("soon")
    assert flow.probe_count(count=None, duration_s=86400, interval_s=600) == 145
    assert flow.probe_count(count=None, duration_s=None, interval_s=1) == 10
    plan = flow.Plan("r", ("a@x", "b@x"), 145, 600.0, 0.0)
    assert [plan.alias_for(i) for i in range(3)] == ["a@x", "b@x", "a@x"]
    assert flow.Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    flow.check_budget(plan, budget=None, recent=0)
    flow.check_budget(plan, budget=200, recent=10)
    with pytest.raises(ConfigError) as caught:
        flow.check_budget(plan, budget=100, recent=0)
    assert caught.value.key == "limits.daily_sends"
    for bad in ({}, {"aliases": [], "count": 1, "interval_s": 1, "started_at": 0},
                {"aliases": ["a"], "count": 0, "interval_s": 1, "started_at": 0}):
        with pytest.raises(ValueError):
            flow.Plan.from_json(bad)
    assert flow.human(30) == "30s" and flow.human(3700) == "1h 1m"


def test_bad_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["latency", "-n", "0"]) == 2
    assert cli.main(["latency", "--resume", "-n", "3"]) == 2
    assert cli.main(["latency", "-c", "x.toml", "--realistic-timing"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["latency", "--duration", "soon"])
    assert "--count" in capsys.readouterr().err


def test_charts_escape_untrusted_labels_and_mark_lost_probes() -> None:
    evil = '<script>alert(1)</script>"&'
    pts = [latency_plot.Point(1000.0 + i * 3600, None if i == 3 else 1.0 + i, evil)
           for i in range(30)]
    svgs = latency_page.charts(pts, [stats.Summary(evil, 3, 1.0, None, None, 2.0, None, 1.0)],
                               evil)
    assert set(svgs) == {"latency.svg", "latency-cdf.svg", "latency-hops.svg",
                         "latency-hours.svg"}   # 29 h of probes: the hour-of-day profile
    for svg in svgs.values():
        assert "<script" not in svg
    page = latency_page.page(pts, [], title=evil, svgs=svgs)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "lost at" in svgs["latency.svg"] and "1 of 30 probes" in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")   # nothing fetched


def test_a_long_tail_gets_a_log_scale() -> None:
    assert latency_plot.long_tail([1.0, 1.1, 1.2, 1.3, 300.0])
    assert not latency_plot.long_tail([1.0, 1.1, 1.2, 2.0])
    svg = latency_plot.distribution([1.0, 1.1, 1.2, 1.3, 300.0] * 3, title="d")
    assert "log scale" in svg


def test_duration_gives_one_probe_per_interval(tmp_path: Path) -> None:
    rd = tmp_path / "reports"
    assert cli.main(["latency", "--duration", "0.4s", "--interval", "0.2",
                     "--report-dir", str(rd)]) == 0
    assert len(list(history.read(rd / "history.jsonl"))) == 3


def test_time_left_counts_the_schedule_and_the_last_probe() -> None:
    plan = flow.Plan("r", ("a@x",), 10, 60.0, 1000.0)
    # After probe 3 of 10 at t=1190: the last is due at 1540, and takes ~5 s.
    assert flow._left(plan, 3, 1190.0, 5.0) == 355.0
    assert flow._left(plan, 10, 2000.0, 5.0) == 0.0
    burst = flow.Plan("r", ("a@x",), 10, 0.0, 1000.0)
    assert flow._left(burst, 4, 1010.0, 2.0) == 12.0   # 6 probes of ~2 s each


def test_a_run_past_the_daily_budget_is_refused_before_sending(
        world: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flowtest.sandbox import World
    assert isinstance(world, World)
    path = world.write_config(tmp_path / "flowtest.toml")
    with path.open("a") as f:
        f.write("\n[limits]\ndaily_sends = 5\n")
    rd = tmp_path / "reports"
    rd.mkdir()
    import time
    with (rd / "history.jsonl").open("w") as f:   # 3 inbound probes an hour ago
        for _ in range(3):
            f.write(json.dumps({"leg": "inbound", "target": "sandbox",
                                "sent_at": time.time() - 3600}) + "\n")
    assert cli.main(["latency", "-c", str(path), "-n", "3", "--interval", "0",
                     "--report-dir", str(rd)]) == 2
    assert "limits.daily_sends" in capsys.readouterr().err
    assert len(list(history.read(rd / "history.jsonl"))) == 3   # nothing sent
    assert cli.main(["latency", "-c", str(path), "-n", "2", "--interval", "0",
                     "--report-dir", str(rd)]) == 0


@pytest.mark.parametrize("name", ["cf-gmail-1.eml", "cf-gmail-2.eml"])
def test_real_cloudflare_to_gmail_messages_split_into_honest_segments(name: str) -> None:
    from flowtest.mail import received
    raw = (Path(__file__).parent / "data" / "real" / name).read_bytes()
    chain = received.chain(raw)
    result = ProbeResult("inbound", "a@x.me", "t", "pass", True, "INBOX", chain.total_s,
                         hops=chain.hops)
    segs = stats.segments(result)
    assert [s.label for s in segs[-3:]] == ["cloudflare-email.net", "mx.google.com",
                                            "Gmail internal"]
    # Cloudflare's own handling, 1-4 s in real messages (FACTS.md), whole seconds.
    assert 1.0 <= segs[-2].delay_s <= 4.0 and segs[-2].resolution_s == 1.0
    assert chain.total_s is not None
    assert sum(s.delay_s for s in segs) <= chain.total_s + 0.001
    assert all(s.delay_s <= chain.total_s for s in segs)
