"""Real messages, published by others (tests/data/real/README.md has each
one's source and a careful human reading). flowtest must read every one
exactly as that reading says: the trusted receiver, SPF/DKIM/DMARC/ARC with
domains and alignment, hops with delays, end-to-end time.

Nothing here is fitted to file names: the reader gets only the bytes (and,
in the second test, the profile name a user would give with --provider).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flowtest.mail import authresults, received, receivers
from flowtest.mail.inspect import inspect

DATA = Path(__file__).parent / "data" / "real"


def load(name: str) -> bytes:
    # Saved files have LF endings; mail on the wire has CRLF.
    return (DATA / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Reading:
    file: str
    receiver: tuple[str, str, bool]          # (name, how it was chosen, final receiver)
    authserv_id: str                          # of the trusted header ("" = id-less)
    spf: tuple[str, str, bool]               # result, domain, aligned
    dkim: tuple[tuple[str, str, bool], ...]  # every dkim= result
    dmarc: tuple[str, str]                   # result, header.from
    arc: str = "none"
    policy: str = ""                          # p= as the receiver reported it
    consequence: str = ""                     # dis= / action=
    compauth: str = ""
    delays: tuple[float | None, ...] = ()     # per hop, oldest first
    total_s: float | None = None
    relay: tuple[str, str, str, int] | None = None   # Cloudflare's SPF, its domain, DMARC, i=
    codes: tuple[str, ...] = ()               # finding codes that must be there
    provider: str | None = None               # the profile a user would name
    extra: dict[str, object] = field(default_factory=dict)


READINGS = [
    Reading("cf-gmail-1.eml", ("gmail", "hops", True), "mx.google.com",
            ("pass", "skogsund.se", False),
            (("pass", "cloudflare-email.net", False), ("pass", "skogsund.se", False),
             ("pass", "github.com", True)),
            ("pass", "github.com"), arc="pass", policy="reject", consequence="none",
            delays=(0.0, 0.0, 3.0, 0.121, 0.0), total_s=3.121,
            relay=("pass", "github.com", "pass", 1), codes=("AUTH_RESULTS", "RELAY_CLOUDFLARE"),
            provider="gmail"),
    Reading("cf-gmail-2.eml", ("gmail", "hops", True), "mx.google.com",
            ("pass", "skogsund.se", False),
            (("pass", "cloudflare-email.net", False), ("pass", "skogsund.se", False),
             ("pass", "tm.openai.com", True)),
            ("pass", "tm.openai.com"), arc="pass", policy="reject", consequence="none",
            delays=(0.526, 0.038, 0.0, 3.0, 0.544, 0.0), total_s=3.544,
            relay=("pass", "em7877.tm.openai.com", "pass", 1),
            codes=("AUTH_RESULTS", "RELAY_CLOUDFLARE"), provider="gmail"),
    Reading("sendas-1.eml", ("smtp.subspace.kernel.org", "header", False),
            "smtp.subspace.kernel.org", ("pass", "gmail.com", False), (),
            ("fail", "kernel.org"), policy="quarantine", consequence="none",
            delays=(9.0, 0.432, 1.568, 0.0, 2.0, 35.0, 7.0), total_s=55.0,
            codes=("RECEIVER_NO_AR", "INTERMEDIATE_VERDICT", "GMAIL_UNSIGNED")),
    Reading("sendas-2.eml", ("smtp.subspace.kernel.org", "header", False),
            "smtp.subspace.kernel.org", ("pass", "gmail.com", False),
            (("pass", "gmail.com", False),), ("fail", "kernel.org"), policy="none",
            consequence="none", delays=(1.0, 1.115, 0.0, 0.0, 2.0, 8.0, 2.0), total_s=14.0,
            codes=("RECEIVER_NO_AR", "INTERMEDIATE_VERDICT", "GMAIL_SIGNED", "SENDER_ADDED")),
    Reading("outlook-ar.eml", ("outlook", "header", True), "", ("pass", "gmail.com", True),
            (("pass", "gmail.com", True),), ("pass", "gmail.com"), consequence="none",
            compauth="pass", provider="outlook"),
    Reading("outlook-full.eml", ("outlook", "hops", True), "",
            ("pass", "externos.unared.es", True), (("pass", "unared.es", True),),
            ("pass", "unared.es"), consequence="none", compauth="pass",
            delays=(0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0),
            total_s=5.0, provider="outlook", extra={"implied_folder": "inbox"},
            codes=("RECEIVER_LATENCY",)),
    Reading("icloud-ar.eml", ("icloud", "header", True), "bimi.icloud.com",
            ("pass", "gmail.com", True), (("pass", "gmail.com", True),), ("pass", "gmail.com"),
            provider="icloud"),
    Reading("fastmail-ar.eml", ("fastmail", "header", True), "mx6.messagingengine.com",
            ("pass", "gmail.com", True), (("pass", "gmail.com", True),), ("pass", "gmail.com"),
            policy="none", consequence="none", provider="fastmail"),
    Reading("yahoo-ar.eml", ("yahoo", "header", True), "atlas216.free.mail.bf1.yahoo.com",
            ("pass", "gmail.com", True), (("pass", "gmail.com", True),), ("pass", "gmail.com"),
            policy="none", provider="yahoo"),
    Reading("qq-ar.eml", ("qq", "hops", True), "mx.qq.com", ("none", "", False),
            (("none", "", False),), ("none", "solar.sec"), delays=(0.0, 0.0), total_s=0.0,
            provider="qq"),
    Reading("netease-ar.eml", ("163", "hops", True), "mx19",
            ("pass", "us-west-2.amazonses.com", False), (("pass", "amazonses.com", False),),
            ("none", ""), delays=(4.0,), total_s=4.0, provider="163",
            extra={"trusted_by": "appended", "header_from": "gmail.com"}),
]


def test_every_sample_has_a_reading() -> None:
    files = {p.name for p in DATA.glob("*.eml")}
    assert files == {r.file for r in READINGS}
    notes = (DATA / "README.md").read_text(encoding="utf-8")
    assert all(f"### {name}" in notes for name in files)   # each keeps its source notes


@pytest.mark.parametrize("r", READINGS, ids=lambda r: r.file)
def test_sample_is_read_as_its_reading_says(r: Reading) -> None:
    raw = load(r.file)
    result = inspect(raw)
    assert result.receiver is not None
    assert (result.receiver.name, result.receiver.how, result.receiver.final) == r.receiver
    a = result.auth
    assert a.found and a.authserv_id == r.authserv_id
    assert (a.spf.result, a.spf.domain, bool(a.spf.aligned)) == r.spf
    assert tuple((d.result, d.domain, bool(d.aligned)) for d in a.dkim_all) == r.dkim
    assert (a.dmarc.result, a.header_from if not a.dmarc.domain else a.dmarc.domain) == r.dmarc \
        or (a.dmarc.result, a.dmarc.domain) == r.dmarc
    assert a.arc.result == r.arc
    assert a.dmarc_policy == r.policy
    assert a.dmarc_consequence == r.consequence
    assert a.compauth == r.compauth
    for key, value in r.extra.items():
        assert getattr(a, key) == value, key
    assert tuple(h.delay_s for h in result.hops) == r.delays
    assert not any(h.clock_skew for h in result.hops)
    assert result.total_s == r.total_s
    if r.relay is None:
        assert result.relay_auth is None
    else:
        c = result.relay_auth
        assert c is not None
        assert (c.spf.result, c.spf.domain, c.dmarc.result, c.instance) == r.relay
    assert set(r.codes) <= set(result.codes)
    data = result.to_json()
    assert data["receiver"] == {"name": r.receiver[0], "how": r.receiver[1],
                                "final": r.receiver[2]}
    assert data["total_s"] == r.total_s
    assert [h["delay_s"] for h in data["hops"]] == list(r.delays)


@pytest.mark.parametrize("r", [r for r in READINGS if r.provider], ids=lambda r: r.file)
def test_naming_the_provider_gives_the_same_reading(r: Reading) -> None:
    assert r.provider is not None
    result = inspect(load(r.file), provider=r.provider)
    assert result.receiver is not None and result.receiver.how == "provider"
    assert result.auth.found and result.auth.authserv_id == r.authserv_id
    assert (result.auth.dmarc.result, result.auth.spf.result) == (r.dmarc[0], r.spf[0])


def test_the_wrong_provider_trusts_nothing() -> None:
    # Gmail's verdict is not Outlook's: with the wrong profile nothing is trusted.
    result = inspect(load("cf-gmail-1.eml"), provider="outlook")
    assert not result.auth.found and "AR_UNTRUSTED" in result.codes
    with pytest.raises(ValueError, match="unknown provider"):
        inspect(load("cf-gmail-1.eml"), provider="nosuch")


def test_cloudflares_verdict_is_found_by_authserv_id_at_any_instance() -> None:
    raw = load("cf-gmail-1.eml").replace(b"ARC-Authentication-Results: i=1; mx.cloudflare.net",
                                         b"ARC-Authentication-Results: i=2; mx.cloudflare.net")
    raw = raw.replace(b"ARC-Authentication-Results: i=2; mx.google.com",
                      b"ARC-Authentication-Results: i=3; mx.google.com")
    v = authresults.arc_verdict(raw, "mx.cloudflare.net")
    assert v.found and v.instance == 2 and v.dmarc.result == "pass"
    assert not authresults.arc_instance(raw, 1, "mx.cloudflare.net").found
    assert authresults.arc_instance(raw, 2, "mx.cloudflare.net").found


def test_cloudflares_mail_from_clause_counts_not_its_helo_clause() -> None:
    # Cloudflare writes HELO first, MAIL FROM second (FACTS.md); a HELO pass must
    # not hide a MAIL FROM fail.
    raw = load("cf-gmail-1.eml").replace(
        b"spf=none (mx.cloudflare.net: no SPF records found for postmaster@out-17.smtp.github.com)",
        b"spf=pass (helo)").replace(
        b"spf=pass (mx.cloudflare.net: domain of noreply@github.com", b"spf=fail (domain of")
    v = authresults.arc_verdict(raw, "mx.cloudflare.net")
    assert (v.spf.result, v.spf.domain) == ("fail", "github.com")
    helo_only = authresults.parse_value("mx.cloudflare.net; spf=pass smtp.helo=out.example.com")
    assert helo_only is not None and (helo_only.spf.result, helo_only.spf.domain) == \
        ("pass", "out.example.com")


def test_receiver_profiles_cover_every_provider() -> None:
    from flowtest import providers

    for name, p in providers.PROVIDERS.items():
        assert receivers.profile(name) == p.receiver


def test_the_sample_totals_are_end_to_end() -> None:
    # sendas-1: git-send-email dated the message 9 s before Gmail took it; that
    # counts (a sender hands over within seconds), a Date years off does not.
    raw = load("sendas-1.eml")
    assert received.total_s(raw) == 55.0
    wrong = raw.replace(b"Date: Tue, 22 Jul 2025 13:39:11 +0200",
                        b"Date: Tue, 15 Nov 1994 08:12:31 GMT")
    chain = received.chain(wrong)
    assert not chain.date_trusted and chain.total_s == 46.0
    assert chain.hops[0].delay_s is None
    assert "DATE_UNTRUSTED" in inspect(wrong).codes
