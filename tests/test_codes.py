"""Diagnosis codes: every code the judge knows is produced by some situation,
documented in docs/verdicts.md, and its sentence says the key words a person
needs (one wording test per code). Everything else in the suite asserts on
codes, never on wording."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from flowtest.errors import AuthError, FlowtestError, TLSError, TransportError
from flowtest.flows.common import Options, error_code, error_result
from flowtest.flows.outbound import gmail_signed
from flowtest.mail.authresults import CLOUDFLARE_AUTHSERV_ID, arc_verdict
from flowtest.mail.bounce import Bounce
from flowtest.mail.judge import (
    CODES,
    InboundFacts,
    OutboundFacts,
    judge_inbound,
    judge_outbound,
    submission_refused,
    verdict_of,
)
from flowtest.model import AuthVerdict, Diagnosis, MethodResult, ProbeResult, Thresholds

ROOT = Path(__file__).parent.parent
T = Thresholds(latency_warn_s=5.0, latency_fail_s=15.0)
CF_MX = "route1.mx.cloudflare.net"
FAST = Options(poll_s=0.5, settle_s=0.5)

GMAIL_AUTH = AuthVerdict(
    "mx.google.com", found=True, spf=MethodResult("pass", "example.me"),
    dkim=MethodResult("pass", "example.me"),
    dkim_all=(MethodResult("pass", "cloudflare-email.net"), MethodResult("pass", "example.me")),
    dmarc=MethodResult("pass", "sender.example"), arc=MethodResult("pass"),
    header_from="sender.example")
CLOUDFLARE_AUTH = AuthVerdict(
    "mx.cloudflare.net", found=True, spf=MethodResult("pass", "sender.example"),
    dkim=MethodResult("pass", "sender.example"),
    dkim_all=(MethodResult("pass", "sender.example"),),
    dmarc=MethodResult("pass", "sender.example"), header_from="sender.example")
INBOUND = InboundFacts(
    alias="hello@example.me", sender_domain="sender.example", folder_roles=("inbox",),
    latency_s=1.0, intact=True, auth=GMAIL_AUTH, relay_auth=CLOUDFLARE_AUTH, bounces=(),
    waited_s=20.0)
RECEIVER_AUTH = AuthVerdict(
    "mx.sender.example", found=True, spf=MethodResult("pass", "gmail.com", False),
    dkim=MethodResult("pass", "gmail.com", False),
    dkim_all=(MethodResult("pass", "gmail.com", False),),
    dmarc=MethodResult("fail", "example.me"), header_from="example.me", dmarc_policy="none")
OUTBOUND = OutboundFacts(
    alias="hello@example.me", gmail_address="owner@gmail.com", folder_roles=("inbox",),
    latency_s=1.0, intact=True, auth=RECEIVER_AUTH, from_header="Hello <hello@example.me>",
    original_from="", envelope="<owner@gmail.com>", dmarc_policy="none", bounces=(),
    waited_s=20.0, sender_header="owner@gmail.com", gmail_signed=True)


def inbound(**changes: object) -> list[Diagnosis]:
    return judge_inbound(dataclasses.replace(INBOUND, **changes), T)  # type: ignore[arg-type]


def outbound(**changes: object) -> list[Diagnosis]:
    return judge_outbound(dataclasses.replace(OUTBOUND, **changes), T)  # type: ignore[arg-type]


def bounce(diagnostic: str, remote: str, *, final: bool = True, status: str = "",
           reporting: str = "smtp.sender.example") -> Bounce:
    status = status or diagnostic.split()[1]
    return Bounce(final, status, diagnostic, remote, reporting)


def error(code: str, exc: FlowtestError) -> list[Diagnosis]:
    """An error result as the legs build it: the code from the error's class."""
    assert error_code(exc) == code
    return list(error_result("inbound", "hello@example.me", "ft-x", str(exc),
                             code=error_code(exc)).findings)


def cf_with(**changes: object) -> AuthVerdict:
    return dataclasses.replace(CLOUDFLARE_AUTH, **changes)  # type: ignore[arg-type]


def gmail_with(**changes: object) -> AuthVerdict:
    return dataclasses.replace(GMAIL_AUTH, **changes)  # type: ignore[arg-type]


REWRITTEN = {"from_header": "Owner <owner@gmail.com>", "original_from": "hello@example.me"}

# code -> (the situation, key words its sentence must hold)
CASES: dict[str, tuple[Callable[[], list[Diagnosis]], tuple[str, ...]]] = {
    "INBOUND_DELIVERED": (lambda: inbound(), ("Delivered", "inbox")),
    "SPAM_FOLDER": (lambda: inbound(folder_roles=("spam",)), ("Spam folder", "Not spam")),
    "DUPLICATE_DELIVERY": (lambda: inbound(folder_roles=("inbox", "inbox")), ("2 times",)),
    "ALTERED_IN_TRANSIT": (lambda: inbound(intact=False), ("Altered in transit",)),
    "GMAIL_AR_MISSING": (lambda: inbound(auth=None), ("Authentication-Results", "missing")),
    "FORGED_AR_IGNORED": (lambda: inbound(auth=gmail_with(ignored=1)),
                          ("Ignored 1", "mx.google.com", "never trusted")),
    "CLOUDFLARE_DKIM_FAIL": (
        lambda: inbound(auth=gmail_with(dkim_all=(MethodResult("fail", "example.me"),))),
        ("cf2024-1._domainkey.example.me", "flowtest doctor")),
    "FORWARD_SPF_FAIL": (
        lambda: inbound(auth=gmail_with(spf=MethodResult("softfail", "example.me"),
                                        arc=MethodResult("fail"))),
        ("SPF", "softfail", "_spf.mx.cloudflare.net")),
    "FORWARD_SPF_ERROR": (
        lambda: inbound(auth=gmail_with(spf=MethodResult("permerror", "example.me"))),
        ("permerror", "flowtest doctor")),
    "IMAP_RECONNECTED": (lambda: inbound(reconnects=2), ("dropped 2 time", "reconnected")),
    "CLOUDFLARE_VERDICT": (lambda: inbound(), ("Cloudflare", "SPF pass", "DMARC pass")),
    "CLOUDFLARE_VERDICT_MISSING": (lambda: inbound(relay_auth=None),
                                   ("mx.cloudflare.net", "unknown")),
    "CLOUDFLARE_SAW_SPF_FAIL": (
        lambda: inbound(relay_auth=cf_with(spf=MethodResult("fail", "sender.example"))),
        ("Cloudflare saw SPF fail", "sender.example")),
    "CLOUDFLARE_SAW_DMARC_FAIL": (
        lambda: inbound(relay_auth=cf_with(dmarc=MethodResult("fail", "sender.example"))),
        ("Cloudflare saw DMARC fail", "sender.example")),
    "INBOUND_LOST": (lambda: inbound(folder_roles=()),
                     ("Lost", "no bounce", "Activity log")),
    "INBOUND_TIMEOUT": (
        lambda: inbound(folder_roles=(), bounces=(
            bounce("451 4.4.1 no answer", "mx.other.example", final=False),)),
        ("No copy reached Gmail", "20 s")),
    "NO_ROUTING_RULE": (
        lambda: inbound(folder_roles=(), bounces=(
            bounce("550 5.1.1 Address does not exist", CF_MX),)),
        ("Cloudflare refused hello@example.me", "no routing rule", "Routing rules")),
    "GMAIL_ACCOUNT_GONE": (
        lambda: inbound(folder_roles=(), bounces=(bounce(
            "550 5.1.1 The email account that you tried to reach does not exist.", CF_MX),)),
        ("Gmail refused", "account does not exist", "routing rule is fine",
         "Destination addresses")),
    "GMAIL_REFUSED": (
        lambda: inbound(folder_roles=(), bounces=(bounce(
            "552 5.2.2 The recipient's inbox is out of storage space. - gsmtp", CF_MX),)),
        ("Gmail refused", "out of storage", "passed Gmail's answer back")),
    "GMAIL_TEMPFAIL": (
        lambda: inbound(folder_roles=(), bounces=(bounce(
            "421 4.7.0 Try again later, closing connection. - gsmtp", CF_MX, final=False),)),
        ("for now", "421 4.7.0", "does not queue")),
    "CLOUDFLARE_REFUSED": (
        lambda: inbound(folder_roles=(), bounces=(bounce(
            "550 5.7.26 This mail has been blocked because the sender is unauthenticated",
            CF_MX),)),
        ("Cloudflare refused the probe itself", "5.7.26", "probe account")),
    "MX_FOREIGN": (
        lambda: inbound(folder_roles=(), mx_hosts=("mx01.mail.icloud.com",), bounces=(
            bounce("550 5.1.1 <hello@example.me>: user unknown", "mx01.mail.icloud.com"),)),
        ("not to Cloudflare", "mx01.mail.icloud.com", "route1/2/3.mx.cloudflare.net")),
    "MX_MISSING": (
        lambda: inbound(folder_roles=(), mx_hosts=(), bounces=(
            bounce("550 5.1.2 no mail exchanger for example.me", ""),)),
        ("no MX record", "no mail exchanger", "Email Routing")),
    "BOUNCED": (
        lambda: inbound(folder_roles=(), mx_hosts=(CF_MX,), bounces=(
            bounce("550 5.7.1 Message content rejected", "mx.other.example"),)),
        ("bounced", "mx.other.example", "smtp.sender.example", "550 5.7.1")),
    "DELAYED": (
        lambda: [*inbound(folder_roles=(), bounces=(
            bounce("451 4.4.1 no answer", "mx.other.example", final=False),))],
        ("delayed", "mx.other.example", "retrying")),
    "OUTBOUND_DELIVERED": (
        lambda: outbound(auth=dataclasses.replace(RECEIVER_AUTH,
                                                  dmarc=MethodResult("pass", "example.me"))),
        ("Delivered", "probe mailbox", "hello@example.me")),
    "OUTBOUND_LOST": (lambda: outbound(folder_roles=()), ("Not delivered", "no bounce")),
    "OUTBOUND_SPAM": (lambda: outbound(folder_roles=("spam",)), ("spam",)),
    "SENDAS_FROM_KEPT": (lambda: outbound(), ("kept From: hello@example.me", "envelope")),
    "SENDAS_FROM_REWRITTEN": (
        lambda: outbound(**REWRITTEN),
        ("rewrote the From header to owner@gmail.com", "default sending identity",
         "X-Google-Original-From: hello@example.me", "Sender: owner@gmail.com",
         "Send mail as")),
    "SENDAS_SETUP_MISTAKES": (
        lambda: outbound(**REWRITTEN),
        ("smtp.example.me", "(hello)", "owner@gmail.com", "app password", "587 with SSL",
         "465 with TLS")),
    "SENDAS_GMAIL_SIGNED": (lambda: outbound(),
                            ("signed this message for gmail.com", "Sender: owner@gmail.com")),
    "SENDAS_GMAIL_UNSIGNED": (lambda: outbound(gmail_signed=False),
                              ("did not sign this message", "dkim=none")),
    "SENDAS_DMARC_FAIL": (lambda: outbound(),
                          ("DMARC fails for example.me", "envelope", "p=none")),
    "SENDAS_DMARC_REJECTED": (
        lambda: outbound(folder_roles=(), dmarc_policy="reject", bounces=(bounce(
            "550 5.7.26 Unauthenticated email from example.me is not accepted due to "
            "domain's DMARC policy", "mx.sender.example", reporting="googlemail.com"),)),
        ("Refused by the receiver", "550 5.7.26", "p=reject")),
    "SENDAS_FIXES": (lambda: outbound(), ("keep p=none", "d=example.me")),
    "RECEIVER_AR_MISSING": (lambda: outbound(auth=None), ("Authentication-Results",)),
    "RECEIVER_VERDICT": (lambda: outbound(),
                         ("SPF pass for gmail.com", "DKIM pass", "DMARC fail")),
    "DMARC_LOOKUP_FAILED": (
        lambda: outbound(dmarc_record="unknown", dmarc_policy="",
                         dmarc_detail="servfail at _dmarc.example.me"),
        ("could not be read", "servfail at _dmarc.example.me", "not the same as no policy")),
    "GMAIL_SEND_LIMIT": (
        lambda: [submission_refused("owner@gmail.com", "550 5.4.5 Daily user sending limit "
                                                       "exceeded.")],
        ("daily sending limit", "owner@gmail.com", "limits.daily_sends")),
    "GMAIL_LOGIN_THROTTLED": (
        lambda: [submission_refused("owner@gmail.com", "454 4.7.0 Too many login attempts")],
        ("refusing logins", "owner@gmail.com")),
    "GMAIL_RATE_LIMITED": (
        lambda: [submission_refused("owner@gmail.com", "421 4.7.0 Try again later")],
        ("limiting how fast", "limits.send_interval_s")),
    "GMAIL_SEND_REFUSED": (
        lambda: [submission_refused("owner@gmail.com", "552 5.3.4 Message too big")],
        ("did not take", "552 5.3.4")),
    "LATE": (lambda: inbound(latency_s=20.0), ("Late", "20 s", "failure threshold")),
    "SLOW": (lambda: inbound(latency_s=6.0), ("Slow", "6.00 s", "warning threshold")),
    "SAME_ACCOUNT": (
        lambda: list(error_result("inbound", "hello@example.me", "ft-x", "The probe account "
                                  "is the Gmail account", code="SAME_ACCOUNT").findings),
        ("probe account is the Gmail account",)),
    "LOGIN_REFUSED": (lambda: error("LOGIN_REFUSED", AuthError(
        "535 5.7.8", endpoint="SMTP smtp.gmail.com:587", account="owner@gmail.com")),
        ("login as owner@gmail.com refused", "smtp.gmail.com")),
    "TLS_REFUSED": (lambda: error("TLS_REFUSED", TLSError(
        "certificate verify failed", endpoint="IMAP imap.gmail.com:993")),
        ("certificate", "imap.gmail.com")),
    "SERVER_UNREACHABLE": (lambda: error("SERVER_UNREACHABLE", TransportError(
        "cannot connect: refused", endpoint="SMTP smtp.sender.example:587")),
        ("cannot connect", "smtp.sender.example")),
    "SERVER_REFUSED": (lambda: error("SERVER_REFUSED", TransportError(
        "554 5.7.1 relay denied", endpoint="SMTP smtp.sender.example:587", code=554)),
        ("554 5.7.1", "smtp.sender.example")),
    "WATCH_FAILED": (
        lambda: list(error_result("inbound", "hello@example.me", "ft-x",
                                  "Watching owner@gmail.com failed: connection lost",
                                  code="WATCH_FAILED").findings),
        ("Watching owner@gmail.com failed",)),
    "NOT_TESTED": (lambda: error("NOT_TESTED", FlowtestError("something else")),
                   ("something else",)),
    "NOTE": (lambda: list(ProbeResult("inbound", "a@example.me", "ft-x", "pass", True, "INBOX",
                                      1.0, diagnosis=("A plain sentence.",)).findings),
             ("A plain sentence.",)),
    # joined with Cloudflare's activity log (issue 17)
    "CF_NEVER_REACHED": (lambda: cf_log(None, waited_s=1300), ("never reached Cloudflare",)),
    "CF_LOG_PENDING": (lambda: cf_log(None), ("Not in Cloudflare's log yet", "explain")),
    "CF_REJECTED": (lambda: cf_log(("rejected", "reject", "", "554 x found on one or more "
                                                            "RBLs (abusixip)")),
                    ("rejected", "RBL")),
    "CF_FORWARD_REFUSED": (lambda: cf_log(("deliveryFailed", "forward", "r1",
                                           "Unknown error: transient error (421): 4.7.27 This "
                                           "mail has been rate limited because SPF does not "
                                           "pass.")),
                           ("Gmail refused", "4.7.27", "retry")),
    "CF_DELIVERED_NOT_FILED": (lambda: cf_log(("delivered", "forward", "r1", "")),
                               ("delivered", "no Gmail folder")),
    "CF_LOG_DELIVERED": (lambda: cf_log(("delivered", "forward", "r1", ""), delivered=True),
                         ("forwarded", "after it was sent")),
    "CF_DROPPED": (lambda: cf_log(("dropped", "drop", "r1", "")), ("dropped", "drop")),
    "CF_DROPPED_CATCH_ALL": (lambda: cf_log(("dropped", "drop", "catch-all", "")),
                             ("catch-all",)),
    "CF_LOG_STATUS": (lambda: cf_log(("queued", "forward", "r1", "")), ("queued",)),
    "CF_LOG_UNAVAILABLE": (lambda: cf_unavailable(), ("could not be read", "Analytics")),
}


def cf_log(row: tuple[str, str, str, str] | None, *, delivered: bool = False,
           waited_s: float = 60) -> list[Diagnosis]:
    from flowtest.mail import cflog
    rows = [] if row is None else [cflog.LogRow(
        at=105.0, message_id="<ft-x@sender.example>", to="hello@example.me", status=row[0],
        action=row[1], rule=row[2], spf="pass", dkim="pass", dmarc="pass", arc="none",
        error=row[3])]
    return cflog.judge(rows, alias="hello@example.me", delivered=delivered, sent_at=100.0,
                       waited_s=waited_s)


def cf_unavailable() -> list[Diagnosis]:
    from flowtest.flows import cfjoin
    return cfjoin.judged(None, message_id="<x@y>", alias="hello@example.me", delivered=False,
                         sent_at=0.0, looked_at=1.0, failure="not authorized (Analytics Read)",
                         settled_s=1200)[1]


def test_every_code_has_a_case() -> None:
    assert set(CASES) == set(CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_codes_sentence_holds_its_key_words(code: str) -> None:
    situation, words = CASES[code]
    findings = situation()
    [found] = [f for f in findings if f.code == code]
    for word in words:
        assert word in found.text, (code, word, found.text)
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", code)


def test_every_code_is_documented_with_a_fix() -> None:
    docs = (ROOT / "docs" / "verdicts.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|[^|]*\|[^|]*\|([^|]*)\|$", docs, re.M))
    missing = sorted(set(CODES) - set(rows))
    assert not missing, f"docs/verdicts.md lacks {missing}"
    assert not [c for c, fix in rows.items() if c in CODES and not fix.strip()]


def test_an_unknown_code_is_refused() -> None:
    from flowtest.mail.judge import finding
    with pytest.raises(ValueError):
        finding("NO_SUCH_CODE", "fail", "x")


def test_the_verdict_is_the_worst_finding() -> None:
    findings = inbound(folder_roles=("spam", "spam"), latency_s=6.0)
    assert [f.code for f in findings][:3] == ["SPAM_FOLDER", "DUPLICATE_DELIVERY", "SLOW"]
    assert verdict_of(findings) == "fail"
    assert verdict_of(inbound()) == "pass"


def test_sentences_and_findings_stay_one_list() -> None:
    r = ProbeResult("inbound", "a@example.me", "ft-x", "warn", True, "INBOX", 1.0,
                    findings=(Diagnosis("SLOW", "Slow: it took 6 s.", "warn"),))
    assert r.diagnosis == ("Slow: it took 6 s.",) and r.codes == ("SLOW",)
    data = r.to_json()
    assert data["diagnosis"] == ["Slow: it took 6 s."]
    assert data["findings"] == [{"code": "SLOW", "verdict": "warn",
                                 "message": "Slow: it took 6 s."}]
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    probe_schema = {"$ref": "#/$defs/probe", "$defs": schema["$defs"]}
    jsonschema.Draft202012Validator(probe_schema).validate(data)
    with_relay = dataclasses.replace(r, relay_auth=CLOUDFLARE_AUTH).to_json()
    jsonschema.Draft202012Validator(probe_schema).validate(with_relay)
    # Code that knows only sentences (and replaces only them) keeps every
    # sentence coded: known ones keep their code, a new one gets NOTE.
    added = dataclasses.replace(r, diagnosis=(*r.diagnosis, "Interrupted."))
    assert added.codes == ("SLOW", "NOTE") and added.diagnosis[-1] == "Interrupted."
    failed = dataclasses.replace(r, verdict="error", diagnosis=("Stopped.",))
    assert [(f.code, f.verdict) for f in failed.findings] == [("NOT_TESTED", "error")]


# -- issue 14 item 6: the right party blamed --------------------------------

def test_a_non_cloudflare_bounce_is_quoted_not_blamed_on_the_mx() -> None:
    # Before: any final 5xx not from Cloudflare read "MX still points at another
    # provider". With Cloudflare's MX in DNS, the bounce is quoted with who
    # refused and who reported it.
    b = bounce("550 5.7.1 Message content rejected", "mx.other.example")
    for mx in ((CF_MX, "route2.mx.cloudflare.net"), None):
        [d] = inbound(folder_roles=(), mx_hosts=mx, bounces=(b,))
        assert d.code == "BOUNCED", mx
        assert "another provider" not in d.text


def test_gmails_words_passed_back_are_told_from_cloudflares_own() -> None:
    gone = bounce("550 5.1.1 The email account that you tried to reach does not exist.",
                  "route3.mx.cloudflare.net")
    own = bounce("550 5.1.1 Address does not exist", "route3.mx.cloudflare.net")
    assert [d.code for d in inbound(folder_roles=(), bounces=(gone,))] == ["GMAIL_ACCOUNT_GONE"]
    assert [d.code for d in inbound(folder_roles=(), bounces=(own,))] == ["NO_ROUTING_RULE"]


def test_a_failed_dmarc_lookup_never_reads_as_no_policy() -> None:
    findings = outbound(dmarc_record="unknown", dmarc_policy="",
                        auth=dataclasses.replace(RECEIVER_AUTH, dmarc_policy=""))
    text = " ".join(f.text for f in findings)
    assert [f.code for f in findings][:2] == ["DMARC_LOOKUP_FAILED", "SENDAS_DMARC_FAIL"]
    assert "publishes no DMARC policy" not in text and "unknown" in text
    absent = outbound(dmarc_record="absent", dmarc_policy="",
                      auth=dataclasses.replace(RECEIVER_AUTH, dmarc_policy=""))
    assert "publishes no DMARC policy" in " ".join(f.text for f in absent)


# -- issue 13 item 5: what the message shows ---------------------------------

def test_the_receivers_own_disposition_decides_the_consequence() -> None:
    # The receiver says what it did (dis=); that wins over the published policy.
    quarantined = outbound(auth=dataclasses.replace(RECEIVER_AUTH,
                                                    dmarc_disposition="quarantine"))
    [dmarc] = [f for f in quarantined if f.code == "SENDAS_DMARC_FAIL"]
    assert dmarc.verdict == "fail" and "dis=quarantine" in dmarc.text
    [relaxed] = [f for f in outbound(dmarc_policy="quarantine", auth=dataclasses.replace(
        RECEIVER_AUTH, dmarc_disposition="none")) if f.code == "SENDAS_DMARC_FAIL"]
    # A lenient receiver does not make a strict policy harmless elsewhere.
    assert relaxed.verdict == "fail" and "dis=none under p=quarantine" in relaxed.text
    assert "Other receivers follow p=quarantine" in relaxed.text
    [lenient] = [f for f in outbound(auth=dataclasses.replace(
        RECEIVER_AUTH, dmarc_disposition="none")) if f.code == "SENDAS_DMARC_FAIL"]
    assert lenient.verdict == "warn" and "dis=none under p=none" in lenient.text


def test_signed_and_unsigned_send_as_are_told_apart() -> None:
    signed = [f.code for f in outbound(gmail_signed=True)]
    unsigned = [f.code for f in outbound(gmail_signed=False, sender_header="")]
    assert "SENDAS_GMAIL_SIGNED" in signed and "SENDAS_GMAIL_UNSIGNED" not in signed
    assert "SENDAS_GMAIL_UNSIGNED" in unsigned and "SENDAS_GMAIL_SIGNED" not in unsigned
    [dmarc] = [f for f in outbound(gmail_signed=False) if f.code == "SENDAS_DMARC_FAIL"]
    assert "did not sign" in dmarc.text and "signs for gmail.com" not in dmarc.text


def test_a_rewrite_to_another_alias_is_still_a_rewrite() -> None:
    # Gmail rewrites to the account's default identity, which may be another
    # verified alias at the same domain.
    findings = outbound(from_header="Owner <owner@example.me>",
                        original_from="Hello <hello@example.me>")
    assert [f.code for f in findings][:2] == ["SENDAS_FROM_REWRITTEN", "SENDAS_SETUP_MISTAKES"]
    assert "another of your aliases" in findings[0].text


# Header excerpts of the real send-as samples (../shared/samples/real/sendas-*.eml).
SIGNED = (b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
          b"        d=gmail.com; s=20230601; t=1716749238; x=1717354038;\r\n"
          b"        h=from:to:sender; bh=kY/rVz04n65z=; b=IExAs+PLJaq=\r\n"
          b"X-Google-DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
          b"        d=1e100.net; s=20230601; h=from; bh=kY=; b=AAA=\r\n"
          b"Sender: Tejun Heo <htejun@gmail.com>\r\nFrom: Tejun Heo <tj@kernel.org>\r\n\r\nx\r\n")
UNSIGNED = (b"X-Google-DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
            b"        d=1e100.net; s=20230601; h=from; bh=jV=; b=Kn3=\r\n"
            b"From: Johannes Thumshirn <jth@kernel.org>\r\n\r\nx\r\n")
OTHER = (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.me; s=s1; h=from; bh=x=; b=y=\r\n"
         b"From: a@example.me\r\n\r\nx\r\n")


@pytest.mark.parametrize(("raw", "signed"), [(SIGNED, True), (UNSIGNED, False),
                                              (OTHER, False), (b"\xff\xfe\x00garbage", False)])
def test_gmail_signed_is_read_from_the_raw_message(raw: bytes, signed: bool) -> None:
    assert gmail_signed(raw) is signed


# -- Cloudflare's own verdict, by authserv-id --------------------------------

def _aar(instance: int, authserv: str, spf: str) -> bytes:
    return (f"ARC-Authentication-Results: i={instance}; {authserv};\r\n\tdkim=pass "
            f"header.d=sender.example header.s=s1 header.b=abc;\r\n\tdmarc=pass "
            f"header.from=sender.example;\r\n\tspf={spf} smtp.mailfrom=p@sender.example\r\n"
            ).encode()


def test_cloudflares_verdict_is_found_by_authserv_id_not_instance() -> None:
    # The message arrived with an ARC set of its own (a list, another forwarder):
    # Cloudflare's set is i=2, and a forged i=1 claiming its id sits below.
    raw = (_aar(3, "mx.google.com", "pass") + _aar(2, "mx.cloudflare.net", "fail")
           + _aar(1, "mx.cloudflare.net", "pass") + b"From: p@sender.example\r\n\r\nx\r\n")
    v = arc_verdict(raw, CLOUDFLARE_AUTHSERV_ID)
    assert v.found and v.spf.result == "fail" and v.dmarc.result == "pass"
    assert not arc_verdict(b"From: p@sender.example\r\n\r\nx\r\n", CLOUDFLARE_AUTHSERV_ID).found


def test_error_codes_come_from_the_errors_class() -> None:
    assert error_code(AuthError("x", endpoint="e", account="a")) == "LOGIN_REFUSED"
    assert error_code(TLSError("x", endpoint="e")) == "TLS_REFUSED"
    assert error_code(TransportError("x", endpoint="e", code=550)) == "SERVER_REFUSED"
    assert error_code(TransportError("x", endpoint="e")) == "SERVER_UNREACHABLE"
    assert error_code(ValueError("x")) == "NOT_TESTED"


# -- the fault matrix, by code ----------------------------------------------
# tests/test_fault_matrix.py asserts the verdicts; this asserts the problem
# codes (every finding that is not a note) of each leg under the same faults.
# check_matrix_codes() is what that test can call to do both in one run.

SENDAS = ("SENDAS_DMARC_FAIL", "SENDAS_FIXES")
MATRIX_CODES: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {
    (): ((), SENDAS),
    ("forward-drop",): (("INBOUND_LOST",), SENDAS),
    ("forward-delay=2",): (("LATE",), SENDAS),
    ("no-rule",): (("NO_ROUTING_RULE",), SENDAS),
    ("spam",): (("SPAM_FOLDER",), SENDAS),
    ("mx-icloud",): (("MX_FOREIGN",), SENDAS),
    ("spf-duplicate",): (("FORWARD_SPF_ERROR",), SENDAS),
    ("dkim-missing",): (("CLOUDFLARE_DKIM_FAIL",), SENDAS),
    ("dmarc-reject",): ((), ("SENDAS_DMARC_REJECTED", "SENDAS_FIXES")),
    ("sendas-unverified",): ((), ("SENDAS_FROM_REWRITTEN", "SENDAS_SETUP_MISTAKES")),
    ("sendas-unsigned",): ((), SENDAS),
    ("bad-app-password",): (("LOGIN_REFUSED",), ("LOGIN_REFUSED",)),
    ("gmail-tempfail",): (("GMAIL_TEMPFAIL", "INBOUND_TIMEOUT", "CF_FORWARD_REFUSED"), SENDAS),
    ("body-modified",): (("ALTERED_IN_TRANSIT",), SENDAS),
    ("imap-drop",): (("IMAP_RECONNECTED",), SENDAS),
    ("spoofed-ar",): (("FORGED_AR_IGNORED",), SENDAS),
    ("duplicate",): (("DUPLICATE_DELIVERY",), SENDAS),
    ("gmail-send-limit",): ((), ("GMAIL_SEND_LIMIT",)),
    ("cf-destination-unverified",): (("NO_ROUTING_RULE",), SENDAS),
    ("cf-rule-disabled",): (("NO_ROUTING_RULE",), SENDAS),
    ("cf-routing-misconfigured",): ((), SENDAS),
    ("cf-token-scope",): ((), SENDAS),
    ("cf-log-lag=600",): ((), SENDAS),
    ("cf-catch-all-drop",): ((), SENDAS),
    ("gmail-silent-discard",): (("INBOUND_LOST", "CF_DELIVERED_NOT_FILED"), SENDAS),
    ("spoofed-ar", "spam"): (("SPAM_FOLDER", "FORGED_AR_IGNORED"), SENDAS),
    ("imap-drop", "duplicate"): (("DUPLICATE_DELIVERY", "IMAP_RECONNECTED"), SENDAS),
    ("dkim-missing", "dmarc-reject"): (("CLOUDFLARE_DKIM_FAIL",),
                                       ("SENDAS_DMARC_REJECTED", "SENDAS_FIXES")),
    ("body-modified", "spam"): (("SPAM_FOLDER", "ALTERED_IN_TRANSIT"), SENDAS),
    ("mx-icloud", "sendas-unverified"): (("MX_FOREIGN",),
                                         ("SENDAS_FROM_REWRITTEN", "SENDAS_SETUP_MISTAKES")),
    ("cf-rule-disabled", "cf-catch-all-drop"): (("INBOUND_LOST", "CF_DROPPED_CATCH_ALL"),
                                                SENDAS),
    ("gmail-silent-discard", "cf-log-lag=600"): (("INBOUND_LOST",), SENDAS),
}


def problems(r: ProbeResult) -> tuple[str, ...]:
    return tuple(f.code for f in r.findings if f.verdict != "pass")


def check_matrix_codes(faults: tuple[str, ...], inb: ProbeResult, out: ProbeResult) -> None:
    assert (problems(inb), problems(out)) == MATRIX_CODES[faults], (inb.diagnosis,
                                                                    out.diagnosis)


def test_the_code_matrix_follows_the_fault_matrix() -> None:
    from tests.test_fault_matrix import MATRIX
    assert set(MATRIX_CODES) == set(MATRIX)


def test_a_hostile_bounce_is_quoted_inert_and_bounded() -> None:
    raw = (b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
           b"Reporting-MTA: dns; smtp.sender.example\r\n\r\nAction: failed\r\n"
           b"Remote-MTA: dns; evil\x1b[2J.example [/] extra words\r\nStatus: 5.7.1\r\n"
           b"Diagnostic-Code: smtp; 550 5.7.1 \x1b[31m" + b"x" * 10_000 + b"\r\n--B--\r\n")
    from flowtest.mail.bounce import parse
    b = parse(raw)
    assert b is not None and b.remote_mta == "evil?[2j.example"
    [d] = inbound(folder_roles=(), bounces=(b,))
    assert d.code == "BOUNCED" and "\x1b" not in d.text and len(d.text) < 600
