"""Reports of a run: the run folder, history, JUnit, HTML, Nagios and Prometheus,
and the scheduled-use exit codes for pass, warn and fail."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from flowtest import cli
from flowtest.report import history, metrics

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "report.schema.json").read_text())


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_every_run_writes_a_folder_and_appends_history(tmp_path: Path) -> None:
    rd = tmp_path / "reports"
    for _ in range(2):
        assert cli.main(["demo", "--aliases", "1", "--report-dir", str(rd)]) == 0
    folders = sorted(p for p in rd.iterdir() if p.is_dir())
    assert len(folders) == 2
    for folder in folders:
        report = json.loads((folder / "report.json").read_text())
        jsonschema.Draft202012Validator(SCHEMA).validate(report)
        suite = ET.fromstring((folder / "junit.xml").read_bytes())
        assert suite.get("tests") == "2" and suite.get("failures") == "0"
        page = (folder / "report.html").read_text()
        assert "<script" not in page and "http://" not in page.replace(
            "http://www.w3.org/2000/svg", "")  # self-contained, offline
    rows = list(history.read(rd / "history.jsonl"))
    assert len(rows) == 4 and {r["leg"] for r in rows} == {"inbound", "outbound"}
    assert "<svg" in (folders[-1] / "report.html").read_text()  # the history chart
    assert cli.main(["report", "--report-dir", str(rd)]) == 0


@pytest.mark.parametrize(("fault", "nagios_code", "word"), [
    (None, 1, "WARNING"),           # outbound send-as DMARC warning under p=none
    ("spam", 2, "CRITICAL"),
    ("bad-app-password", 3, "UNKNOWN"),
])
def test_nagios_line_and_exit_codes(capsys: pytest.CaptureFixture[str], fault: str | None,
                                    nagios_code: int, word: str) -> None:
    args = ["demo", "--aliases", "1", "--nagios"] + (["--fault", fault] if fault else [])
    assert cli.main(args) == nagios_code
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"FLOWTEST {word} - ")
    assert "inbound_hello@example.me=" in out[0]


def test_inbound_only_passes_with_nagios_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--aliases", "1", "--leg", "inbound", "--nagios"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("FLOWTEST OK - 1 probe delivered | inbound_hello@example.me=")
    assert line.endswith("s;5;15;0;")


def test_prometheus_textfile_keeps_the_last_success_of_a_failing_probe(tmp_path: Path) -> None:
    prom = tmp_path / "flowtest.prom"
    assert cli.main(["demo", "--aliases", "1", "--leg", "inbound",
                     "--prometheus-textfile", str(prom)]) == 0
    first = metrics.previous_successes(prom.read_text())
    key = 'leg="inbound",alias="hello@example.me"'
    assert key in first
    assert cli.main(["demo", "--aliases", "1", "--leg", "inbound", "--fault", "spam",
                     "--prometheus-textfile", str(prom)]) == 1
    text = prom.read_text()
    assert f"flowtest_probe_success{{{key}}} 0" in text
    assert metrics.previous_successes(text)[key] == first[key]


def test_a_damaged_history_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"leg": "inbound"}\nnot json\n[1]\n')
    assert list(history.read(path)) == [{"leg": "inbound"}]


def test_latency_command_percentiles_plot_and_history(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rd = tmp_path / "reports"
    out_json = tmp_path / "latency.json"
    assert cli.main(["latency", "-n", "4", "--interval", "0", "--report-dir", str(rd),
                     "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "end to end" in out and "p99" in out and "hop 3: mx.google.com" in out
    data = json.loads(out_json.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    e2e = data["latency"][0]
    assert e2e["name"] == "end to end" and e2e["count"] == 4
    # 4 probes support a median, not a p90 or p99 (issue 20): those are null.
    assert e2e["p50_s"] <= e2e["max_s"] and e2e["p90_s"] is None and e2e["p99_s"] is None
    svg = next(rd.rglob("latency.svg")).read_text()
    assert svg.count("<circle") == 4 and "p90" in svg
    assert len(list(history.read(rd / "history.jsonl"))) == 4


def test_latency_command_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["latency", "-n", "0"]) == 2
    assert "--count" in capsys.readouterr().err
    assert cli.main(["latency", "-n", "1", "--alias", "nobody@example.me"]) == 2


def test_percentiles() -> None:
    from flowtest.mail.stats import percentile
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (
        50.0, 90.0, 99.0)
    assert percentile([3.0], 99) == 3.0


def test_codes_reach_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rd = tmp_path / "reports"
    assert cli.main(["demo", "--aliases", "1", "--leg", "inbound", "--fault", "spam",
                     "--report-dir", str(rd)]) == 1
    folder = next(p for p in rd.iterdir() if p.is_dir())
    report = json.loads((folder / "report.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    [probe] = report["probes"]
    assert probe["findings"][0]["code"] == "SPAM_FOLDER"
    assert [f["message"] for f in probe["findings"]] == probe["diagnosis"]
    assert probe["relay_auth"]["found"] and probe["relay_auth"]["dmarc"]["result"] == "pass"
    assert "SPAM_FOLDER" in capsys.readouterr().out       # the terminal summary
    failure = ET.fromstring((folder / "junit.xml").read_bytes()).find("testcase/failure")
    assert failure is not None and failure.get("type") == "SPAM_FOLDER"
    assert "SPAM_FOLDER" in (folder / "report.html").read_text()
    [row] = history.read(rd / "history.jsonl")
    assert row["codes"][0] == "SPAM_FOLDER"
    code, line = metrics.nagios(report, warn_s=5, crit_s=15)
    assert code == 2 and "inbound hello@example.me: SPAM_FOLDER: " in line


def test_the_table_prints_untrusted_text_as_text() -> None:
    from rich.console import Console

    from flowtest.model import Diagnosis, ProbeResult
    from flowtest.report import table
    hostile = "[/] [link=http://x]click[/link] [bold red]"
    r = ProbeResult("inbound", f"a{hostile}@example.me", "ft-x", "fail", False, None, None,
                    findings=(Diagnosis("BOUNCED", f"The probe bounced: {hostile}", "fail"),))
    console = Console(record=True, width=200)
    table.render(console, [r], title=hostile)
    text = console.export_text()
    assert "BOUNCED The probe bounced: [/] [link=http://x]click[/link]" in text


def test_control_characters_stay_inert_in_junit_and_the_table() -> None:
    from rich.console import Console

    from flowtest.model import Diagnosis, ProbeResult
    from flowtest.report import junit, table
    nasty = "550 5.7.1 \x1b[31mred\x07\x00 <b>&"
    r = ProbeResult("inbound", "a\x1b]8;;http://x\x1b\\@example.me", "ft-x", "fail", False,
                    None, None, findings=(Diagnosis("BOUNCED", nasty, "fail"),))
    report = {"started_at": "2026-01-01T00:00:00Z", "probes": [r.to_json()], "dns": []}
    suite = ET.fromstring(junit.build(report))  # well-formed XML
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("type") == "BOUNCED"
    assert "<b>&" in (failure.text or "") and "\x1b" not in (failure.text or "")
    console = Console(record=True, width=200)
    table.render(console, [r], title="t")
    assert "\x1b" not in console.export_text() and "\x07" not in console.export_text()
