"""Untrusted text is text (issue 14, item 3): a header, a DNS record or a
server's reply holding rich markup prints literally and never aborts the run.

Before flowtest/cli/console.py, `[/]` in any of them raised rich's MarkupError
in the middle of the output, and `[link=http://x]…[/link]` printed only its
text, with the link hidden behind it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from flowtest import cli
from flowtest.cli import console, legs
from flowtest.model import ProbeResult
from flowtest.sandbox import World
from flowtest.sandbox.dns_server import txt_rdata

HOSTILE = ("[/]", "[link=http://x]", "[/link]", "[bold]", ":smile:")


def _flat(text: str) -> str:
    return "".join(text.split())  # rich may wrap a long line anywhere


def _literal(out: str, *expected: str) -> None:
    flat = _flat(out)
    for piece in expected:
        assert _flat(piece) in flat, piece
    assert "\x1b" not in out  # no escape reached the terminal: no hidden link, no style


def test_inspect_prints_markup_in_headers_literally(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    eml = tmp_path / "crafted.eml"
    eml.write_bytes(
        b"Received: from [link=http://x]evil[/link] (evil [127.0.0.1])\n"
        b"\tby mx.google.com with ESMTPS id 1; Thu, 26 Nov 2026 12:00:05 +0000\n"
        b"Received: from sender.example (sender.example [192.0.2.1])\n"
        b"\tby x[/]y.example with ESMTP id [bold]; Thu, 26 Nov 2026 12:00:00 +0000\n"
        b"From: a@sender.example\nSubject: [/] :smile:\n\nbody\n")
    assert cli.main(["inspect", str(eml)]) == 0
    out = capsys.readouterr().out
    _literal(out, "[link=http://x]evil[/link]", "x[/]y.example")


def test_doctor_prints_a_dns_record_with_markup_literally(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = "v=spf1 include:_spf.mx.cloudflare.net [/] [link=http://x]x[/link] [bold] ~all"
    world.dns_extra[("example.me", "TXT")] = [txt_rdata(record)]
    path = world.write_config(tmp_path / "flowtest.toml")
    report = tmp_path / "dns.json"
    code = cli.main(["doctor", "-c", str(path), "--json", str(report)])
    out = capsys.readouterr().out
    quoted = [f for f in json.loads(report.read_text())["dns"] if "[/]" in f["message"]]
    assert quoted, "the doctor no longer quotes the record: plant the markup elsewhere"
    assert code in (0, 1)
    _literal(out, *(f["message"] for f in quoted))


def test_a_bounce_with_markup_in_a_run_prints_literally(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """What a remote server wrote reaches the progress lines and the table."""
    reply = "550 5.1.1 [/] [link=http://x]click[/link] [bold]no such user :smile: \x1b[2J"
    err = console.console(stderr=True)
    legs.Reporter(err)("bounce", "hello@example.me", reply)
    result = ProbeResult(leg="inbound", alias="hello@example.me", token="ft-x", verdict="fail",
                         delivered=False, folder=None, latency_s=None,
                         diagnosis=(f"The receiving server said: {reply}",))
    args = argparse.Namespace(json=None, report_dir=None, nagios=False,
                              prometheus_textfile=None)
    assert legs.finish(world.config(), [result], 0.0, 1.0, "r", args, title="t") == 1
    out, errors = capsys.readouterr()
    for text in (out, errors):
        _literal(text, "[/] [link=http://x]click[/link] [bold]no such user :smile:", "\\x1b[2J")


@pytest.mark.parametrize("piece", HOSTILE)
def test_every_piece_prints_as_itself(piece: str, capsys: pytest.CaptureFixture[str]) -> None:
    console.say(console.console(), "before ", piece, (" styled", console.STRONG))
    assert capsys.readouterr().out == f"before {piece} styled\n"


def test_control_characters_are_shown_not_obeyed() -> None:
    assert console.inert("a\x1b[2Jb\r\nc\u202ed\tz") == "a\\x1b[2Jb\\x0d\\x0ac\\u202ed\tz"


def test_an_error_quoting_a_hostile_name_is_shown_not_obeyed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = tmp_path / "\x1b]8;;x\x1b\\[/]missing.eml"
    assert cli.main(["inspect", str(name)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b]8;;x\\x1b\\[/]missing.eml" in err
