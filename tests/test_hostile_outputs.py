"""Issue 14 item 13: strangers' words reach every output inert and well-formed.

A hostile value (HTML that would run, rich markup that would raise or plant
a link, terminal controls, a fake new line, 10,000 characters) is planted
where strangers really write: a Received ``by`` (the hop list), a bounce's
diagnostic (quoted by the judge), an Authentication-Results comment (read by
inspect), a DNS TXT record (quoted by the doctor) and an alias. Each output
(terminal, report.html, junit.xml, the Nagios line, the Prometheus textfile)
must carry it as text: no element, attribute or link of its own, no markup
error, no control character, one line where one line is the format.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from flowtest import cli
from flowtest.doctor import diagnose
from flowtest.mail.bounce import Bounce
from flowtest.mail.judge import InboundFacts, judge_inbound
from flowtest.model import Hop, ProbeResult, Thresholds, worst
from flowtest.report import html, json_report, junit, metrics, table
from flowtest.sandbox import World
from flowtest.sandbox.dns_server import txt_rdata

PAYLOAD = ('<script>alert(1)</script>"><img src=x onerror=alert(1)>[/][link=http://x]x[/link]'
           "[bold]:smile:\x1b[2J\x1b]8;;http://x\x07\x00\u202e\r\nFAKE-LINE ")
HOSTILE = PAYLOAD + "Z" * 10_000
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202e]")


def _probe(alias: str) -> ProbeResult:
    bounce = Bounce(final=True, status="5.0.0", diagnostic="550 " + HOSTILE,
                    remote_mta="mx.other.example", reporting_mta="out.sender.example")
    facts = InboundFacts(alias=alias, sender_domain="sender.example", folder_roles=(),
                         latency_s=None, intact=None, auth=None, relay_auth=None,
                         bounces=(bounce,), waited_s=5.0, mx_hosts=("route1.mx.cloudflare.net",))
    findings = judge_inbound(facts, Thresholds())
    return ProbeResult(leg="inbound", alias=alias, token="ft-x", verdict=worst(
        [f.verdict for f in findings]), delivered=False, folder=None, latency_s=None,
        hops=(Hop(by=HOSTILE, from_=HOSTILE, at=1.0, delay_s=0.5),), findings=tuple(findings))


@pytest.fixture(scope="module")
def report() -> dict[str, object]:
    # An alias as a hand-edited report or a future config might carry it.
    alias = "hello" + PAYLOAD + "@example.me"
    dns = [{"code": "SPF_BROKEN_TERM", "severity": "warning", "message": HOSTILE, "fix": HOSTILE}]
    return json_report.build(target="sandbox", started_at=0.0, finished_at=1.0,
                             probes=[_probe(alias)], dns=dns, run_id="r1")


def test_the_judge_quotes_a_hostile_bounce_bounded_and_inert() -> None:
    [text] = [f.text for f in _probe("a@example.me").findings if "550" in f.text]
    assert len(text) < 1_000 and not CONTROL.search(text)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]


def test_report_html_holds_no_element_or_link_of_the_strangers(
        report: dict[str, object]) -> None:
    page = html.build(report)
    clean = html.build(json_report.build(target="sandbox", started_at=0.0, finished_at=1.0,
                                         probes=[], run_id="r1"))
    hostile, baseline = _Elements(), _Elements()
    hostile.feed(page)
    baseline.feed(clean)
    assert "img" not in hostile.tags and "onerror" not in hostile.attrs
    assert hostile.tags.count("script") == baseline.tags.count("script")
    assert hostile.tags.count("a") == baseline.tags.count("a")
    assert "&lt;script&gt;" in page  # shown, as text


def test_junit_is_well_formed_xml_with_the_text(report: dict[str, object]) -> None:
    root = ET.fromstring(junit.build(report))
    texts = " ".join(el.text or "" for el in root.iter()) + " ".join(
        v for el in root.iter() for v in el.attrib.values())
    # Tab, newline and carriage return are XML's own; nothing else may remain.
    assert "<script>" in texts and not CONTROL.search(re.sub(r"[\t\n\r]", " ", texts))


def test_the_nagios_line_is_one_line(report: dict[str, object]) -> None:
    _, line = metrics.nagios(report, warn_s=95, crit_s=300)
    assert "\n" not in line and "\r" not in line and not CONTROL.search(line)


def test_the_prometheus_textfile_parses(report: dict[str, object]) -> None:
    text = metrics.prometheus(report, now=1.0)
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\\n]|\\.)*",?)*\})? -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line[:200]


def test_the_terminal_table_prints_it_literally(report: dict[str, object]) -> None:
    buffer = io.StringIO()
    out = Console(file=buffer, width=120, markup=False, emoji=False, color_system=None)
    table.render(out, [_probe("hello" + PAYLOAD + "@example.me")], title=PAYLOAD)
    text = buffer.getvalue()
    assert "[/]" in text and "[link=http://x]" in text and ":smile:" in text
    assert "\x1b" not in text and "\x07" not in text


def test_inspect_of_a_hostile_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eml = tmp_path / "hostile.eml"
    eml.write_bytes((
        f"Authentication-Results: mx.google.com; spf=pass ({HOSTILE}) smtp.mailfrom=a@b.example;"
        f" dkim=pass header.d=b.example\r\n"
        f"Received: from x by {HOSTILE.replace(' ', '_')} with ESMTPS; "
        "Mon, 1 Jan 2024 00:00:01 +0000\r\n"
        "Received: from out.b.example by mx.google.com with ESMTPS; "
        "Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        "From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n").encode("utf-8", "surrogateescape"))
    out_json = tmp_path / "inspect.json"
    assert cli.main(["inspect", str(eml), "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\x07" not in text
    json.loads(out_json.read_text())  # well-formed


@pytest.mark.faults()
def test_a_hostile_dns_record_in_the_doctor_and_its_report(world: World, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    world.dns_extra[("example.me", "TXT")] = [
        txt_rdata("v=spf1 include:_spf.mx.cloudflare.net include:[/][link=http://x]"
                  + HOSTILE + " ~all")]
    findings = asyncio.run(diagnose(world.config()))
    [broken] = [f for f in findings if f.code == "SPF_BROKEN_TERM"]
    assert "<script>" in broken.message
    path = world.write_config(tmp_path / "flowtest.toml")
    cli.main(["doctor", "-c", str(path)])
    text = capsys.readouterr().out
    assert "[/]" in text and "\x1b" not in text and "\x07" not in text
