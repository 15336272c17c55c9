"""Lost, late and spammed inbound probes joined with Cloudflare's activity
log, which the sandbox serves from the same state its mail path writes."""

from __future__ import annotations

import asyncio
import dataclasses
import smtplib
from typing import Any

import pytest

from flowtest.config import Config
from flowtest.flows import cfjoin, inbound
from flowtest.mail import cflog
from flowtest.model import ProbeResult
from flowtest.net.cloudflare import CloudflareClient
from flowtest.sandbox import World, hosts

FAST = inbound.Options(poll_s=0.5, settle_s=0.5)


def run(config: Config, delivery_s: float = 3.0, **changes: Any) -> ProbeResult:
    config = dataclasses.replace(
        config, timeouts=dataclasses.replace(config.timeouts, delivery_s=delivery_s), **changes)
    return asyncio.run(inbound.run(config, aliases=config.aliases[:1], options=FAST))[0]


@pytest.mark.faults("gmail-silent-discard")
def test_delivered_by_cloudflare_and_never_filed_by_gmail(world: World) -> None:
    r = run(world.config())
    assert r.verdict == "fail" and not r.delivered, r.diagnosis
    assert r.codes[:2] == ("INBOUND_LOST", "CF_DELIVERED_NOT_FILED")
    assert r.cloudflare_log is not None and r.cloudflare_log.state == "found"
    [row] = r.cloudflare_log.rows
    assert row["status"] == "delivered" and row["action"] == "forward"
    # messageId keeps its angle brackets, as Cloudflare's does
    assert r.cloudflare_log.message_id == f"<{r.token}@sender.example>" == row["messageId"]
    assert r.to_json()["cloudflare_log"]["state"] == "found"


@pytest.mark.faults("gmail-tempfail")
def test_gmail_refusal_is_quoted_from_cloudflares_error_detail(world: World) -> None:
    r = run(world.config())
    assert r.verdict == "fail"
    assert "CF_FORWARD_REFUSED" in r.codes
    said = " ".join(r.diagnosis)
    assert "transient error (421): 4.7.0" in said


@pytest.mark.faults("cf-rule-disabled", "cf-catch-all-drop")
def test_catch_all_drop_is_named(world: World) -> None:
    r = run(world.config())
    assert r.verdict == "fail" and not r.delivered
    assert "CF_DROPPED_CATCH_ALL" in r.codes
    assert world.truth.events(f"<{r.token}@sender.example>", "dropped")


def test_a_drop_rule_is_named(world: World) -> None:
    alias = world.aliases[0]
    world.routing.drop(alias)
    try:
        r = run(world.config())
    finally:
        world.routing.forward(alias, world.gmail_address)
    assert "CF_DROPPED" in r.codes and r.verdict == "fail"


def test_rejected_by_cloudflare_with_its_verdicts(world: World) -> None:
    # Straight to Cloudflare's MX from an address outside the sender's SPF,
    # unsigned: neither SPF nor DKIM passes, so Cloudflare refuses it.
    message_id = "<forged-1@sender.example>"
    raw = (f"From: probe@sender.example\r\nTo: {world.aliases[0]}\r\nSubject: x\r\n"
           f"Message-ID: {message_id}\r\n\r\nbody\r\n")
    port = world.ctx.ports[hosts.CF_MX] if world.ctx else 0
    with smtplib.SMTP(hosts.CF_MX, port, local_hostname="forger.example",
                      source_address=("127.0.0.1", 0)) as smtp, \
            pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.sendmail("probe@sender.example", [world.aliases[0]], raw)
    assert refused.value.smtp_code == 550
    config = world.config()
    assert config.cloudflare is not None

    async def look() -> list[cflog.LogRow] | None:
        async with CloudflareClient(config.cloudflare, tls=config.tls,  # type: ignore[arg-type]
                                    dns=config.dns) as client:
            return await cfjoin.LogReader(client, config.domain).rows(message_id, 0)

    rows = asyncio.run(look())
    assert rows is not None and [r.action for r in rows] == ["reject"]
    [d] = cflog.judge(rows, alias=world.aliases[0], delivered=False, sent_at=None, waited_s=0)
    assert d.code == "CF_REJECTED" and "SPF fail" in d.text


@pytest.mark.faults("gmail-silent-discard", "cf-log-lag=600")
def test_log_lag_gives_not_in_the_log_yet_and_explain_completes_it(world: World) -> None:
    config = world.config()
    r = run(config, delivery_s=2.0)
    assert r.codes[:2] == ("INBOUND_LOST", "CF_LOG_PENDING")
    assert r.cloudflare_log is not None and r.cloudflare_log.state == "pending"
    report = {"verdict": r.verdict, "probes": [r.to_json()]}
    world.set_fault("cf-log-lag=0")  # the rows have appeared since
    assert asyncio.run(cfjoin.explain(config, report)) == 1
    [p] = report["probes"]
    codes = [f["code"] for f in p["findings"]]
    assert "CF_DELIVERED_NOT_FILED" in codes and "CF_LOG_PENDING" not in codes
    assert p["cloudflare_log"]["state"] == "found" and len(p["diagnosis"]) == len(codes)


def test_no_row_long_after_sending_means_never_reached() -> None:
    [d] = cflog.judge([], alias="a@example.me", delivered=False, sent_at=0.0, waited_s=1300)
    assert d.code == "CF_NEVER_REACHED" and d.verdict == "fail"
    [d] = cflog.judge([], alias="a@example.me", delivered=False, sent_at=0.0, waited_s=60)
    assert d.code == "CF_LOG_PENDING" and d.verdict == "pass"


def test_hostile_rows_are_inert_and_malformed_ones_skipped() -> None:
    data = {"viewer": {"zones": [{"emailRoutingAdaptive": [
        None, 5, {"datetime": "garbage", "status": ["x"]},
        {"datetime": "2026-01-19T10:51:25Z", "messageId": "<a@b>", "to": "a@example.me",
         "status": "failed", "action": "forward", "errorDetail": "\x1b[2J" + "y" * 5000}]}]}}
    rows = cflog.rows_of(data)
    assert len(rows) == 2 and rows[0].status == "" and rows[0].at is None
    [d] = cflog.judge(rows, alias="a@example.me", delivered=False, sent_at=None, waited_s=0)
    assert d.code == "CF_FORWARD_REFUSED" and "\x1b" not in d.text and len(d.text) < 700
    assert cflog.rows_of("nonsense") == [] and cflog.rows_of({"viewer": {"zones": 3}}) == []


def test_rejections_carry_cloudflares_verdicts() -> None:
    row = cflog.LogRow(at=1.0, message_id="<a@b>", to="a@example.me", status="rejected",
                       action="reject", rule="", spf="fail", dkim="none", dmarc="fail",
                       arc="none", error="554 127.0.0.9 found on one or more RBLs (abusixip)")
    [d] = cflog.judge([row], alias="a@example.me", delivered=False, sent_at=0.0, waited_s=5)
    assert d.code == "CF_REJECTED" and "RBL" in d.text
    row = dataclasses.replace(row, error="")
    [d] = cflog.judge([row], alias="a@example.me", delivered=False, sent_at=0.0, waited_s=5)
    assert d.code == "CF_REJECTED" and "SPF fail" in d.text and "DMARC fail" in d.text
