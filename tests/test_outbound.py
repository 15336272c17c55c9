"""The outbound leg (Gmail send-as) against the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from flowtest.config import Config
from flowtest.flows import outbound
from flowtest.flows.common import Options
from flowtest.model import ProbeResult
from flowtest.net.dns import DnsClient
from flowtest.sandbox import World
from flowtest.sandbox.dns_server import DnsServer, ServFail, txt_rdata

FAST = Options(poll_s=0.5, settle_s=0.3)


def run(config: Config, **kw: Any) -> list[ProbeResult]:
    return asyncio.run(outbound.run(config, options=FAST, **kw))


def said(r: ProbeResult) -> str:
    return " ".join(r.diagnosis)


def codes(r: ProbeResult) -> list[str]:
    return list(r.codes)


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
        assert codes(r) == ["SENDAS_DMARC_FAIL", "SENDAS_FIXES", "SENDAS_FROM_KEPT",
                            "SENDAS_GMAIL_SIGNED", "RECEIVER_VERDICT"]
        assert "p=none" in said(r)
    # Cleanup took the received copies and Gmail's Sent copies.
    tokens = [r.token.encode() for r in results]
    assert not any(t in raw for t in tokens for _, raw, _ in world.probe_folder())
    sent = world.gmail_folder("[Gmail]/Sent Mail")
    assert not any(t in raw for t in tokens for _, raw, _ in sent)


def test_require_dmarc_pass_turns_the_warning_into_a_failure(world: World) -> None:
    r = run(world.config(), expect_dmarc_pass=True)[0]
    assert r.verdict == "fail" and codes(r)[0] == "SENDAS_DMARC_FAIL"
    assert r.findings[0].verdict == "fail" and "expectations require dmarc=pass" in said(r)


@pytest.mark.faults("dmarc-reject")
def test_dmarc_reject_is_a_failure_with_the_bounce_text(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and not r.delivered
    assert codes(r) == ["SENDAS_DMARC_REJECTED", "SENDAS_FIXES"]
    assert "550 5.7.26" in said(r) and "p=reject" in said(r)


@pytest.mark.faults("sendas-unverified")
def test_unverified_send_as_reports_the_from_rewrite(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and r.delivered
    assert codes(r)[:2] == ["SENDAS_FROM_REWRITTEN", "SENDAS_SETUP_MISTAKES"]
    assert "flowtest.owner@gmail.com" in r.diagnosis[0]
    # The dialog's usual mistakes, each named.
    mistakes = r.diagnosis[1]
    for words in ("smtp.example.me", "(hello)", "app password", "587 with SSL", "465 with TLS"):
        assert words in mistakes, words


@pytest.mark.faults("bad-app-password")
def test_bad_app_password_names_the_account_never_the_secret(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "error" and codes(r) == ["LOGIN_REFUSED"]
    assert "login as flowtest.owner@gmail.com refused" in said(r)
    for secret in (world.gmail_app_password, world.gmail_app_password.replace(" ", "")):
        assert secret not in said(r)


@pytest.mark.faults("gmail-send-limit")
def test_gmail_daily_sending_limit_is_a_failure_in_plain_words(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and not r.delivered
    assert codes(r) == ["GMAIL_SEND_LIMIT"] and r.findings[0].verdict == "fail"
    assert "550 5.4.5" in said(r)


def test_submission_refusals_have_codes() -> None:
    from flowtest.mail.judge import submission_refused
    throttled = submission_refused("a@gmail.com", "454 4.7.0 Too many login attempts, please "
                                                  "try again later.")
    assert (throttled.code, throttled.verdict) == ("GMAIL_LOGIN_THROTTLED", "error")
    limited = submission_refused("a@gmail.com", "SMTP x: 421 4.7.0 Try again later")
    assert (limited.code, limited.verdict) == ("GMAIL_RATE_LIMITED", "error")
    quota = submission_refused("a@gmail.com", "550 5.4.5 Daily user sending limit exceeded.")
    assert (quota.code, quota.verdict) == ("GMAIL_SEND_LIMIT", "fail")
    other = submission_refused("a@gmail.com", "552 5.3.4 Message too big")
    assert (other.code, other.verdict) == ("GMAIL_SEND_REFUSED", "error")


def test_quarantine_policy_fails(world: World) -> None:
    world.dns_extra[("_dmarc.example.me", "TXT")] = [txt_rdata("v=DMARC1; p=quarantine")]
    r = run(dataclasses.replace(world.config()))[0]
    assert r.verdict == "fail" and r.folder == "Junk"
    assert codes(r)[:2] == ["OUTBOUND_SPAM", "SENDAS_DMARC_FAIL"]
    assert "p=quarantine" in said(r)


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


@contextlib.contextmanager
def resolver_failing_for(world: World, *names: str) -> Iterator[Config]:
    """The world's config with a resolver of flowtest's own that answers
    SERVFAIL for ``names`` and passes everything else to the world's DNS:
    flowtest's lookup fails while the receivers' lookups work, as when only
    the user's resolver has trouble."""
    def lookup(name: str, rdtype: str) -> list[str] | None:
        if name in names:
            raise ServFail(name)
        return world._lookup(name, rdtype)

    server = DnsServer("127.0.0.1", lookup)
    server.start()
    try:
        config = world.config()
        yield dataclasses.replace(config, dns=dataclasses.replace(
            config.dns, nameservers=(("127.0.0.1", server.port),)))
    finally:
        server.stop()


def test_a_dmarc_lookup_that_fails_is_unknown_not_absent(world: World) -> None:
    with resolver_failing_for(world, "_dmarc.example.me") as config:
        r = run(config)[0]
    assert r.delivered and r.verdict == "warn"
    assert codes(r)[:2] == ["DMARC_LOOKUP_FAILED", "SENDAS_DMARC_FAIL"]
    assert "servfail" in r.diagnosis[0]
    assert "publishes no DMARC policy" not in said(r)


def test_dmarc_record_states(world: World) -> None:
    def lookup(config: Config) -> outbound.DmarcLookup:
        return asyncio.run(outbound.dmarc_record(DnsClient(config.dns), "example.me"))

    found = lookup(world.config())
    assert found.state == "found" and found.record.startswith("v=DMARC1")
    with resolver_failing_for(world, "_dmarc.example.me") as flaky:
        failed = lookup(flaky)
    assert failed.state == "unknown" and "servfail" in failed.detail
    config = world.config()
    world.dns_extra[("_dmarc.example.me", "TXT")] = None
    assert lookup(config).state == "absent"
    world.dns_extra[("_dmarc.example.me", "TXT")] = [txt_rdata("v=DMARC1; p=none"),
                                                      txt_rdata("v=DMARC1; p=reject")]
    assert lookup(config).state == "several"
