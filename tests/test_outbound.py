"""The outbound leg (Gmail send-as) against the sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from flowtest.config import Config
from flowtest.flows import outbound
from flowtest.flows.common import Options
from flowtest.model import ProbeResult
from flowtest.sandbox import World

FAST = Options(poll_s=0.5, settle_s=0.3)


def run(config: Config, **kw: Any) -> list[ProbeResult]:
    return asyncio.run(outbound.run(config, options=FAST, **kw))


def said(r: ProbeResult) -> str:
    return " ".join(r.diagnosis)


def test_healthy_send_as_warns_about_dmarc_under_p_none(world: World) -> None:
    results = run(world.config())
    assert len(results) == len(world.aliases)
    for r in results:
        assert r.verdict == "warn" and r.delivered and r.folder == "INBOX" and r.intact
        a = r.auth
        assert a is not None and a.authserv_id == "mx.sender.example"
        assert (a.spf.result, a.spf.domain, a.spf.aligned) == ("pass", "gmail.com", False)
        assert (a.dkim.result, a.dkim.domain, a.dkim.aligned) == ("pass", "gmail.com", False)
        assert (a.dmarc.result, a.dmarc.domain) == ("fail", "example.me")
        assert "Gmail kept From" in said(r) and "Under p=none it is delivered" in said(r)
        assert "keep p=none" in said(r) and "signs DKIM with d=example.me" in said(r)
    # Cleanup took the received copies and Gmail's Sent copies.
    tokens = [r.token.encode() for r in results]
    assert not any(t in raw for t in tokens for _, raw, _ in world.probe_folder())
    sent = world.gmail_folder("[Gmail]/Sent Mail")
    assert not any(t in raw for t in tokens for _, raw, _ in sent)


def test_require_dmarc_pass_turns_the_warning_into_a_failure(world: World) -> None:
    r = run(world.config(), expect_dmarc_pass=True)[0]
    assert r.verdict == "fail" and "expectations require dmarc=pass" in said(r)


@pytest.mark.faults("dmarc-reject")
def test_dmarc_reject_is_a_failure_with_the_bounce_text(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and not r.delivered
    assert "550 5.7.26" in said(r) and "p=reject" in said(r)


@pytest.mark.faults("sendas-unverified")
def test_unverified_send_as_reports_the_from_rewrite(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and r.delivered
    assert "Gmail rewrote the From header to flowtest.owner@gmail.com" in said(r)
    assert "Send mail as" in said(r)


@pytest.mark.faults("bad-app-password")
def test_bad_app_password_names_the_account_never_the_secret(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "error"
    assert "login as flowtest.owner@gmail.com refused" in said(r)
    for secret in (world.gmail_app_password, world.gmail_app_password.replace(" ", "")):
        assert secret not in said(r)


@pytest.mark.faults("gmail-send-limit")
def test_gmail_daily_sending_limit_is_a_failure_in_plain_words(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and not r.delivered
    assert "Gmail's daily sending limit for flowtest.owner@gmail.com is used up" in said(r)
    assert "550 5.4.5" in said(r) and "limits.daily_sends" in said(r)


def test_submission_refusals_in_plain_words() -> None:
    from flowtest.mail.judge import submission_refused
    assert submission_refused("a@gmail.com", "454 4.7.0 Too many login attempts, please "
                                             "try again later.")[0] == "error"
    verdict, said_ = submission_refused("a@gmail.com", "SMTP x: 421 4.7.0 Try again later")
    assert verdict == "error" and "limits.send_interval_s" in said_
    assert submission_refused("a@gmail.com", "550 5.4.5 Daily user sending limit exceeded.")[0] \
        == "fail"


def test_quarantine_policy_fails(world: World) -> None:
    from flowtest.sandbox.dns_server import txt_rdata
    world.dns_extra[("_dmarc.example.me", "TXT")] = [txt_rdata("v=DMARC1; p=quarantine")]
    r = run(dataclasses.replace(world.config()))[0]
    assert r.verdict == "fail" and r.folder == "Junk"
    assert "Under p=quarantine receivers put it in spam" in said(r)


def test_dmarc_records_and_strict_alignment() -> None:
    from flowtest.mail.dmarc import aligned, parse_record
    record = parse_record("v=DMARC1; p=none; aspf=s; adkim=s; rua=mailto:a@example.me")
    assert (record.aspf, record.adkim, record.rua) == ("s", "s", ("mailto:a@example.me",))
    assert aligned("mail.example.me", "example.me", "r")
    assert not aligned("mail.example.me", "example.me", "s")
    assert parse_record("v=DMARC1; p=bogus").policy == ""


@pytest.mark.parametrize("style", ["gmail", "outlook", "icloud", "qq", "163", "fastmail", "yahoo"])
def test_each_provider_profiles_authentication_results(flowtest_keys: object,
                                                       style: str) -> None:
    # The sandbox's external provider writes its headers the way the profile's
    # provider does; flowtest must read the same verdicts from every form.
    with World(keys=flowtest_keys, aliases=["hello"], external_style=style,  # type: ignore[arg-type]
               retry_delays=(0.1, 0.2)) as world:
        config = world.config()
        assert config.probe.provider == style
        [r] = run(config)
        world.check_errors()
    a = r.auth
    assert a is not None and a.found, (style, r.diagnosis)
    assert (a.spf.result, a.spf.domain) == ("pass", "gmail.com"), style
    assert (a.dkim.result, a.dkim.domain) == ("pass", "gmail.com"), style
    # NetEase writes no dmarc clause at all (samples/real/netease-ar.eml).
    if style == "163":
        assert a.dmarc.result == "none"
    else:
        assert (a.dmarc.result, a.dmarc.domain) == ("fail", "example.me"), style
    assert r.verdict == "warn"
