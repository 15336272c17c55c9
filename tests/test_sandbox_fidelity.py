"""The sandbox imitates what real messages show (samples/real/ and FACTS.md),
one test per behaviour: Gmail send-as signed and unsigned, the unverified
From rewrite, Cloudflare's verdict, envelope and the headers that come and
go, Gmail's receiving side, and each probe provider's Authentication-Results
in its real form and position."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from typing import Any

import dkim
import pytest

from flowtest import providers
from flowtest.flows import outbound
from flowtest.flows.common import Options
from flowtest.mail.authresults import arc_instance, trusted
from flowtest.sandbox import World, checks, cloudflare, hosts
from flowtest.sandbox.dns_server import txt_rdata
from flowtest.sandbox.smtp import Relay
from tests import clients

FAST = Options(poll_s=0.5, settle_s=0.3)


# -- helpers -----------------------------------------------------------------


def _fields(raw: bytes) -> list[tuple[str, str]]:
    """(name, unfolded value) of every header field, top to bottom."""
    return [(k, " ".join(str(v).split())) for k, v in BytesHeaderParser().parsebytes(raw).items()]


def _names(raw: bytes) -> list[str]:
    return [k for k, _ in _fields(raw)]


def _send_as(world: World, sender: str = "hello@example.me") -> bytes:
    """Send through smtp.gmail.com to the probe account; the copy it received."""
    config = world.config()
    mid = f"<{uuid.uuid4().hex}@example.me>"
    msg = clients.message(sender, world.probe_address, "fidelity", message_id=mid)
    asyncio.run(clients.submit(config, config.gmail, msg, rcpts=[world.probe_address]))
    assert world.truth.wait_for(mid, "stored", 10) is not None, world.truth.events(mid)
    return next(r for _, r, _ in world.probe_folder() if mid.encode() in r)


def _inbound(world: World, *, mail_from: str | None = None, message_id: str | None = None,
             signed: bool = True) -> bytes:
    """A message into Cloudflare for hello@example.me; Gmail's stored copy.

    ``signed=False`` or a ``mail_from`` of its own: sent straight from the
    probe provider's outbound host (its SPF range), with no DKIM signature."""
    config = world.config()
    mid = message_id or f"<{uuid.uuid4().hex}@sender.example>"
    msg = clients.message(world.probe_address, "hello@example.me", "fidelity", message_id=mid)
    if signed and mail_from is None:
        asyncio.run(clients.submit(config, config.probe, msg, rcpts=["hello@example.me"]))
    else:
        assert world.ctx is not None
        relay = Relay(source=hosts.EXT_EGRESS, helo=world.names.ext_egress,
                      dns_server=world.ctx.dns_server, ports=world.ctx.ports,
                      tls=world.ctx.client_tls)
        reply = world.call(relay.send(mail_from or world.probe_address, "hello@example.me",
                                      msg.as_bytes().replace(b"\n", b"\r\n")))
        assert reply.ok, reply
    assert world.truth.wait_for(mid, "stored", 10) is not None, world.truth.events(mid)
    return next(r for _, r, _ in world.gmail_folder() if mid.encode() in r)


def _message_id_for(**want: Any) -> str:
    """A Message-ID whose Cloudflare variant has the wanted properties."""
    for _ in range(10_000):
        mid = f"<{uuid.uuid4().hex}@sender.example>"
        var = cloudflare.variant(mid)
        if all(getattr(var, k) == v if not callable(v) else v(getattr(var, k))
               for k, v in want.items()):
            return mid
    raise AssertionError(f"no Message-ID gives {want}")


def _dnsfunc(world: World) -> Any:
    assert world.ctx is not None
    return checks.make_dnsfunc(world.ctx.resolver())


# -- Gmail send-as -------------------------------------------------------------


def test_send_as_signed_adds_sender_and_signs_it(world: World) -> None:
    raw = _send_as(world)
    fields = _fields(raw)
    h = BytesHeaderParser().parsebytes(raw)
    sig = [v for k, v in fields if k == "DKIM-Signature"]
    assert len(sig) == 1 and "d=gmail.com;" in sig[0]
    signed = re.search(r"h=([^;]+);", sig[0]).group(1).replace(" ", "").split(":")
    assert "sender" in signed and signed.count("from") == 2  # frozen: from signed twice
    assert h["Sender"] == f"<{world.gmail_address}>" and h["From"] == "hello@example.me"
    assert "d=1e100.net;" in h["X-Google-DKIM-Signature"]
    assert dkim.DKIM(raw).verify(idx=0, dnsfunc=_dnsfunc(world))
    # Gmail's own order above the user's headers (samples/real/sendas-2.eml).
    names = _names(raw)
    start = names.index("DKIM-Signature") - 1
    assert names[start:start + 9] == [
        "Received", "DKIM-Signature", "X-Google-DKIM-Signature", "X-Gm-Message-State",
        "X-Google-Smtp-Source", "X-Received", "Received", "Sender", "From"]
    received = [v for k, v in fields if k == "Received"]
    assert received[1].startswith(f"by {hosts.GMAIL_EGRESS_NAME} with SMTP id ")
    assert "by smtp.gmail.com with ESMTPSA id" in received[2]


@pytest.mark.faults("sendas-unsigned")
def test_fault_sendas_unsigned_leaves_only_the_1e100_signature(world: World) -> None:
    raw = _send_as(world)
    h = BytesHeaderParser().parsebytes(raw)
    assert h.get_all("DKIM-Signature") is None
    assert "d=1e100.net;" in h["X-Google-DKIM-Signature"]
    assert h["Sender"] is None  # samples/real/sendas-1.eml
    ar = h["Authentication-Results"]
    assert "dkim=none" in ar and "dmarc=fail" in ar


def test_signing_is_a_world_setting(flowtest_keys: Any) -> None:
    with World(keys=flowtest_keys, aliases=["hello"], gmail_signs_send_as=False) as world:
        raw = _send_as(world)
        world.check_errors()
    assert b"\r\nDKIM-Signature:" not in raw and not raw.startswith(b"DKIM-Signature:")
    assert b"X-Google-DKIM-Signature:" in raw


@pytest.mark.faults("sendas-unsigned")
def test_outbound_verdict_when_gmail_does_not_sign(world: World) -> None:
    config = world.config()
    [r] = asyncio.run(outbound.run(config, aliases=list(config.aliases[:1]), options=FAST))
    assert r.delivered and r.verdict == "warn"  # p=none: delivered, DMARC fails
    assert r.auth is not None and r.auth.found
    # What the judge can see: no DKIM result for gmail.com at all.
    assert r.auth.dkim.result == "none"
    assert not any(d.domain == "gmail.com" for d in r.auth.dkim_all)
    assert (r.auth.spf.result, r.auth.spf.domain, r.auth.spf.aligned) == (
        "pass", "gmail.com", False)
    assert r.auth.dmarc.result == "fail"


@pytest.mark.faults("sendas-unsigned")
def test_outbound_sentence_when_gmail_does_not_sign(world: World) -> None:
    config = world.config()
    [r] = asyncio.run(outbound.run(config, aliases=list(config.aliases[:1]), options=FAST))
    assert "SENDAS_GMAIL_UNSIGNED" in r.codes and "SENDAS_GMAIL_SIGNED" not in r.codes


def test_outbound_sentence_when_gmail_signs(world: World) -> None:
    config = world.config()
    [r] = asyncio.run(outbound.run(config, aliases=list(config.aliases[:1]), options=FAST))
    assert "SENDAS_GMAIL_SIGNED" in r.codes and "SENDAS_GMAIL_UNSIGNED" not in r.codes


def test_unverified_from_goes_to_the_default_identity(flowtest_keys: Any) -> None:
    # The default sending identity may be another verified alias (FACTS.md).
    with World(keys=flowtest_keys, aliases=["hello", "billing"],
               gmail_default_from="billing@example.me", faults=["sendas-unverified"]) as world:
        raw = _send_as(world, "Hello <hello@example.me>")
        world.check_errors()
        h = BytesHeaderParser().parsebytes(raw)
        assert h["From"] == "billing@example.me"
        assert h["X-Google-Original-From"] == "Hello <hello@example.me>"
        assert h["Sender"] == f"<{world.gmail_address}>"


@pytest.mark.faults("sendas-unverified")
def test_unverified_from_defaults_to_the_account(world: World) -> None:
    h = BytesHeaderParser().parsebytes(_send_as(world, "Hello <hello@example.me>"))
    assert h["From"] == world.gmail_address
    assert h["X-Google-Original-From"] == "Hello <hello@example.me>"
    assert h["Sender"] == f"<{world.gmail_address}>"


# -- Cloudflare ----------------------------------------------------------------


def _cf_results(raw: bytes) -> tuple[str, str]:
    fields = _fields(raw)
    ar = next(v for k, v in fields if k == "Authentication-Results"
              and v.startswith("mx.cloudflare.net;"))
    aar = next(v for k, v in fields if k == "ARC-Authentication-Results"
               and v.startswith("i=1;"))
    return ar, aar


def _clauses(value: str) -> list[str]:
    return [c.strip().split("=", 1)[0] + "=" + c.strip().split("=", 1)[1].split(" ")[0]
            for c in value.split(";")[1:] if "=" in c]


def test_cloudflare_spf_clauses_helo_first_then_mail_from(world: World) -> None:
    ar, aar = _cf_results(_inbound(world))
    assert aar == "i=1; " + ar  # its AAR repeats its AR word for word
    methods = [c.split("=")[0] for c in _clauses(ar)]
    assert methods == ["dkim", "dmarc", "spf", "spf", "arc"]
    helo, mail_from = [c for c in ar.split(";") if c.strip().startswith("spf=")]
    # The probe provider's HELO name publishes no SPF, like GitHub's in cf-gmail-1.eml.
    assert helo.strip() == ("spf=none (mx.cloudflare.net: no SPF records found for "
                            "postmaster@out.sender.example) smtp.helo=out.sender.example")
    assert mail_from.strip().startswith("spf=pass (mx.cloudflare.net: domain of "
                                        "probe@sender.example designates 127.0.3.9")
    assert mail_from.strip().endswith("smtp.mailfrom=probe@sender.example")


def test_cloudflare_helo_pass_and_mail_from_fail(world: World) -> None:
    world.dns_extra[("out.sender.example", "TXT")] = [txt_rdata("v=spf1 a -all")]
    world.dns_extra[("sender.example", "TXT")] = [txt_rdata("v=spf1 -all")]
    raw = _inbound(world)  # DKIM still passes, so Cloudflare forwards it
    ar, _ = _cf_results(raw)
    spf = [c.strip().split(" ")[0] for c in ar.split(";") if c.strip().startswith("spf=")]
    assert spf == ["spf=pass", "spf=fail"]


def test_flowtest_reads_cloudflare_mail_from_clause_not_helo(world: World) -> None:
    world.dns_extra[("out.sender.example", "TXT")] = [txt_rdata("v=spf1 a -all")]
    world.dns_extra[("sender.example", "TXT")] = [txt_rdata("v=spf1 -all")]
    relay = arc_instance(_inbound(world), 1, "mx.cloudflare.net")
    assert (relay.spf.result, relay.spf.domain) == ("fail", "sender.example")


def test_cloudflare_writes_no_dkim_clause_for_an_unsigned_message(world: World) -> None:
    raw = _inbound(world, signed=False)
    ar, aar = _cf_results(raw)
    assert [c.split("=")[0] for c in _clauses(ar)] == ["dmarc", "spf", "spf", "arc"]
    assert "dkim=" not in aar


def test_cloudflare_envelope_cfbounces_when_the_original_holds_equals(world: World) -> None:
    verp = "bounces+1234-hello=example.me@sender.example"
    h = BytesHeaderParser().parsebytes(_inbound(world, mail_from=verp))
    assert h["Return-Path"] == "<cfbounces+ndrdrop@example.me>"
    gmail_ar = h["Authentication-Results"]
    assert "smtp.mailfrom=cfbounces+ndrdrop@example.me" in " ".join(gmail_ar.split())
    assert "spf=pass" in gmail_ar
    plain = BytesHeaderParser().parsebytes(_inbound(world, signed=False))
    assert re.fullmatch(r"<SRS0=[^=]+=\w\w=sender\.example=probe@example\.me>",
                        plain["Return-Path"])


@pytest.mark.parametrize("feedback, spamh, word, prefix", [
    (True, False, "cloudflare", "i-"), (False, False, "unknown", "ba-"),
    (True, True, "unknown", "i-"), (False, True, "cloudflare", "ba-")])
def test_cloudflare_headers_that_come_and_go(world: World, feedback: bool, spamh: bool,
                                             word: str, prefix: str) -> None:
    mid = _message_id_for(feedback_id=feedback, spamh_score=spamh, received_word=word,
                          host=lambda host: host.startswith(prefix))
    var = cloudflare.variant(mid)
    raw = _inbound(world, message_id=mid)
    h = BytesHeaderParser().parsebytes(raw)
    assert (h["Feedback-ID"] == "example.me:1:1:Cloudflare") is feedback
    assert ("Feedback-ID" in h) is feedback
    assert ("X-CF-SpamH-Score" in h) is spamh
    received = [v for k, v in _fields(raw) if k == "Received"]
    assert received[1].startswith(f"from {var.host} ({var.host}. [{var.address}]) by "
                                  "mx.google.com")
    assert re.fullmatch(r"(i|ba)-[a-z]{2,3}\.cloudflare-email\.net", var.host)
    assert received[2].startswith(f"from out.sender.example (127.0.3.9) by cloudflare-email.net "
                                  f"({word}) id ")
    dk = [v for k, v in _fields(raw) if k == "DKIM-Signature"][:2]
    assert all(("Feedback-ID" in d) is feedback for d in dk)  # signed only when present


def test_cloudflare_and_gmail_headers_in_the_real_order(world: World) -> None:
    mid = _message_id_for(feedback_id=True, spamh_score=False)
    raw = _inbound(world, message_id=mid)
    names = _names(raw)
    # samples/real/cf-gmail-2.eml from the top to the sender's own headers, less
    # X-Forwarded-Encrypted (not imitated: docs/sandbox.md).
    assert names[:22] == [
        "Delivered-To", "Received", "X-Google-Smtp-Source", "X-Received",
        "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results",
        "Return-Path", "Received", "Received-SPF", "Authentication-Results",
        "DKIM-Signature", "DKIM-Signature", "X-Forwarded-To", "X-Forwarded-For", "Feedback-ID",
        "Received", "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results",
        "Received-SPF", "Authentication-Results"]
    fields = _fields(raw)
    assert re.fullmatch(r"by 2002:[0-9a-f:]+ with SMTP id \w+; .* -0800 \(PST\)", fields[1][1])
    seals = [v for k, v in fields if k == "ARC-Seal"]
    assert re.match(r"i=2; a=rsa-sha256; t=\d+; cv=pass; d=google\.com; s=arc-20240605;",
                    seals[0])
    assert re.match(r"i=1; a=rsa-sha256; s=cf2024-1; d=cloudflare-email\.net; cv=none; b=",
                    seals[1])
    assert " t=" not in seals[1]  # Cloudflare's real seal has no t=
    ams1 = [v for k, v in fields if k == "ARC-Message-Signature"][1]
    assert re.search(r"; t=(\d+); x=(\d+);", ams1)
    gmail_ar = next(v for k, v in fields if k == "Authentication-Results")
    gmail_aar = next(v for k, v in fields if k == "ARC-Authentication-Results")
    assert gmail_aar == "i=2; " + gmail_ar  # word for word, comments included
    cv, _, _ = dkim.arc_verify(raw, dnsfunc=_dnsfunc(world))
    assert cv == b"pass"
    for idx in range(3):
        assert dkim.DKIM(raw).verify(idx=idx, dnsfunc=_dnsfunc(world))


# -- the probe provider's side: each profile's real form and position -----------

STYLES = ["custom", "gmail", "outlook", "icloud", "fastmail", "yahoo", "qq", "163"]


@pytest.fixture(scope="module")
def styled(flowtest_keys: Any) -> Iterator[dict[str, tuple[bytes, Any]]]:
    """One send-as message received by each style of probe provider."""
    out: dict[str, tuple[bytes, Any]] = {}
    for style in STYLES:
        with World(keys=flowtest_keys, aliases=["hello"], external_style=style,
                   retry_delays=(0.1, 0.2)) as world:
            raw = _send_as(world)
            world.check_errors()
            out[style] = (raw, world.config())
    yield out


def test_style_custom(styled: dict[str, tuple[bytes, Any]]) -> None:
    names = _names(styled["custom"][0])
    assert names[:3] == ["Return-Path", "Received", "Authentication-Results"]


def test_style_gmail(styled: dict[str, tuple[bytes, Any]]) -> None:
    raw = styled["gmail"][0]
    assert _names(raw)[:11] == [
        "Delivered-To", "Received", "X-Google-Smtp-Source", "X-Received", "ARC-Seal",
        "ARC-Message-Signature", "ARC-Authentication-Results", "Return-Path", "Received",
        "Received-SPF", "Authentication-Results"]
    ar = _fields(raw)[10][1]
    assert ar.startswith("mx.google.com; dkim=pass header.i=@gmail.com header.s=20230601")
    assert "dmarc=fail (p=NONE sp=NONE dis=NONE) header.from=example.me" in ar


def test_style_outlook(styled: dict[str, tuple[bytes, Any]]) -> None:
    raw = styled["outlook"][0]
    fields = _fields(raw)
    names = [k for k, _ in fields]
    assert names[:7] == ["Received", "Received", "Received", "Authentication-Results",
                         "Received-SPF", "Received", "X-IncomingTopHeaderMarker"]
    by = [re.search(r"\bby (\S+)", v).group(1).lower() for _, v in fields[:3]]
    assert by[0].endswith(".prod.outlook.com") and by[1].endswith(".prod.outlook.com")
    assert by[2].endswith(".outlook.office365.com")
    assert fields[2][1].startswith("from ") and ".prod.protection.outlook.com" in fields[2][1]
    assert fields[5][1].split(" by ")[1].split(" ")[0].endswith(".mail.protection.outlook.com")
    ar = fields[3][1]
    assert ar.startswith("spf=pass (sender IP is 127.0.2.9) smtp.mailfrom=gmail.com; dkim=pass "
                         "(signature was verified) header.d=gmail.com;dmarc=fail action=none "
                         "header.from=example.me;compauth=")
    # Microsoft's own verdict headers sit at the bottom, below the message's.
    assert names.index("X-Microsoft-Antispam-Mailbox-Delivery") > names.index("Subject")
    assert "dest:I;" in dict(fields)["X-Microsoft-Antispam-Mailbox-Delivery"]


def test_style_icloud(styled: dict[str, tuple[bytes, Any]]) -> None:
    fields = _fields(styled["icloud"][0])
    ars = [v.split(";")[0] for k, v in fields if k == "Authentication-Results"]
    assert ars == ["bimi.icloud.com", "dmarc.icloud.com", "dkim-verifier.icloud.com",
                   "spf.icloud.com"]
    top = next(v for k, v in fields if k == "Received")
    gateway = re.search(r"\bby (\S+)", top).group(1)
    assert gateway.startswith("p44-mailgateway-smtp-") and "." not in gateway
    assert re.search(r"from \S+\.me\.com by", top)


def test_style_fastmail(styled: dict[str, tuple[bytes, Any]]) -> None:
    raw, _ = styled["fastmail"]
    fields = _fields(raw)
    names = [k for k, _ in fields]
    assert names[:9] == ["Received", "ARC-Seal", "ARC-Message-Signature",
                         "ARC-Authentication-Results", "Authentication-Results",
                         "Authentication-Results", "Authentication-Results",
                         "Authentication-Results", "Received"]
    assert fields[3][1].startswith("i=1; mx6.messagingengine.com; x-csa=none;")
    first = [v.split(";", 2)[1].strip().split("=")[0] for _, v in fields[4:8]]
    assert first == ["x-csa", "bimi", "arc", "dkim"]


def test_style_yahoo(styled: dict[str, tuple[bytes, Any]]) -> None:
    ar = next(v for k, v in _fields(styled["yahoo"][0]) if k == "Authentication-Results")
    assert re.fullmatch(r"atlas\d+\.free\.mail\.bf1\.yahoo\.com; dkim=pass header\.i=@gmail\.com "
                        r"header\.s=20230601; spf=pass smtp\.mailfrom=gmail\.com; "
                        r"dmarc=fail\(p=NONE,sp=NONE\) header\.from=example\.me;", ar)


def test_style_qq(styled: dict[str, tuple[bytes, Any]]) -> None:
    fields = _fields(styled["qq"][0])
    assert [k for k, _ in fields][:4] == ["Received", "X-QQ-mid", "X-QQ-XMRINFO",
                                          "Authentication-Results"]
    assert "by newxmmxszc6-1.qq.com (NewMX)" in fields[0][1] and fields[0][1].endswith("+0800")
    assert fields[3][1].startswith("mx.qq.com; spf=pass smtp.mailfrom=flowtest.owner@gmail.com;")


def test_style_163(styled: dict[str, tuple[bytes, Any]]) -> None:
    raw = styled["163"][0]
    fields = _fields(raw)
    names = [k for k, _ in fields]
    assert names[0] == "Received" and "by mx19 (Coremail) with SMTP id" in fields[0][1]
    # Appended below the message's own headers, with X-CM-TRANSID.
    assert names[-3:] == ["X-CM-TRANSID", "Authentication-Results", "X-Coremail-Antispam"]
    assert names.index("Authentication-Results") > names.index("Subject")
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    ar_lines = head[head.index("Authentication-Results: mx19;"):].split("\r\n")[:2]
    assert len(ar_lines[0]) == 70 and ar_lines[1].startswith("\t")  # folded mid-token
    ar = fields[names.index("Authentication-Results")][1]
    assert "smtp.mail=" in ar and "smtp.mailfrom" not in ar and "dmarc" not in ar


@pytest.mark.parametrize("style", STYLES)
def test_flowtest_reads_each_style(styled: dict[str, tuple[bytes, Any]], style: str) -> None:
    raw, config = styled[style]
    probe = config.probe
    receiver = providers.receiver_for(probe.provider, probe.authserv_id,
                                      probe.address.rpartition("@")[2])
    a = trusted(raw, receiver)
    assert a.found, style
    assert (a.spf.result, a.spf.domain) == ("pass", "gmail.com"), style
    assert (a.dkim.result, a.dkim.domain) == ("pass", "gmail.com"), style
    # NetEase writes no dmarc clause at all (samples/real/netease-ar.eml).
    assert a.dmarc.result == ("none" if style == "163" else "fail"), style


def test_style_outlook_junk_says_so_in_microsofts_headers(flowtest_keys: Any) -> None:
    with World(keys=flowtest_keys, aliases=["hello"], external_style="outlook",
               retry_delays=(0.1, 0.2)) as world:
        world.dns_extra[("_dmarc.example.me", "TXT")] = [txt_rdata("v=DMARC1; p=quarantine")]
        config = world.config()
        mid = f"<{uuid.uuid4().hex}@example.me>"
        msg = clients.message("hello@example.me", world.probe_address, "junk", message_id=mid)
        asyncio.run(clients.submit(config, config.gmail, msg, rcpts=[world.probe_address]))
        stored = world.truth.wait_for(mid, "stored", 10)
        assert stored is not None and stored.detail == "Junk"
        raw = next(r for _, r, _ in world.probe_folder("Junk") if mid.encode() in r)
        world.check_errors()
    fields = dict(_fields(raw))
    assert "dest:J;" in fields["X-Microsoft-Antispam-Mailbox-Delivery"]
    assert "SCL:5;" in fields["X-Forefront-Antispam-Report"]
    assert "SFV:SPM;" in fields["X-Forefront-Antispam-Report"]
    assert "dmarc=fail action=quarantine" in fields["Authentication-Results"]
    assert "compauth=fail reason=001" in fields["Authentication-Results"]


@pytest.mark.parametrize("skewed", [False, True])
def test_style_outlook_inner_stamps_can_run_backwards(flowtest_keys: Any, skewed: bool) -> None:
    from email.utils import parsedate_to_datetime

    from flowtest.sandbox.styles import outlook_skew
    for _ in range(1000):
        mid = f"<{uuid.uuid4().hex}@example.me>"
        if (outlook_skew(mid) > 0) is skewed:
            break
    with World(keys=flowtest_keys, aliases=["hello"], external_style="outlook",
               retry_delays=(0.1, 0.2)) as world:
        config = world.config()
        msg = clients.message("hello@example.me", world.probe_address, "skew", message_id=mid)
        asyncio.run(clients.submit(config, config.gmail, msg, rcpts=[world.probe_address]))
        assert world.truth.wait_for(mid, "stored", 10) is not None
        raw = next(r for _, r, _ in world.probe_folder() if mid.encode() in r)
        world.check_errors()
    received = [v for k, v in _fields(raw) if k == "Received"]
    at = [parsedate_to_datetime(v.rpartition(";")[2].strip()).timestamp() for v in received[:4]]
    edge_to_inner = at[2] - at[3]  # the hop after the edge, minus the edge's own stamp
    if skewed:
        assert -11 <= edge_to_inner <= -7  # whole-second stamps: 8-11 s, +-1
    else:
        assert 0 <= edge_to_inner <= 1
