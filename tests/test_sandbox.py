"""The sandbox world, driven by plain aiosmtplib and aioimaplib clients."""

from __future__ import annotations

import asyncio
import re
import uuid
from email.parser import BytesHeaderParser

import aiosmtplib
import dkim
import pytest

from flowtest.sandbox import World, checks, cloudflare
from flowtest.sandbox.gmail import SENT, SPAM
from tests import clients


def _send_inbound(world: World, alias: str | None = None, **kw: str) -> str:
    config = world.config()
    rcpt = alias or config.aliases[0].address
    mid = f"<{uuid.uuid4().hex}@{world.names.external}>"
    msg = clients.message(config.probe.address, rcpt, "sandbox test", message_id=mid, **kw)
    asyncio.run(clients.submit(config, config.probe, msg, rcpts=[rcpt]))
    return mid


def _stored(world: World, mid: str, folder: str = "INBOX") -> bytes:
    event = world.truth.wait_for(mid, "stored", 10)
    assert event is not None, world.truth.events(mid)
    assert event.detail == folder
    for _, raw, _ in world.gmail_folder(folder):
        if BytesHeaderParser().parsebytes(raw)["Message-ID"] == mid:
            return raw
    raise AssertionError(f"{mid} not in {folder}")


def test_forwarded_copy_has_the_facts_headers(world: World) -> None:
    mid = _send_inbound(world)
    raw = _stored(world, mid)
    headers = BytesHeaderParser().parsebytes(raw)
    text = raw.decode()
    # Gmail's own stamps, on top.
    assert headers["Delivered-To"] == world.gmail_address
    assert re.search(r"X-Received: by \S+ with SMTP id \S+\.\d{13};", text)
    ar = headers.get_all("Authentication-Results")
    assert ar[0].startswith("mx.google.com;")
    assert ar[1].startswith("mx.cloudflare.net;")
    assert "dkim=pass header.i=@cloudflare-email.net header.s=cf2024-1" in ar[0]
    assert "dkim=pass header.i=@example.me header.s=cf2024-1" in ar[0]
    assert re.search(r'smtp\.mailfrom="SRS0=[^"]+=sender\.example=probe@example\.me"', ar[0])
    assert "dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=sender.example" in ar[0]
    assert "arc=pass (i=1 spf=pass spfdomain=sender.example dkim=pass" in ar[0]
    assert headers["Return-Path"].startswith("<SRS0=")
    assert headers["Return-Path"].endswith("@example.me>")
    # Cloudflare's forwarded copy.
    assert headers["X-Forwarded-To"] == world.gmail_address
    assert headers["X-Forwarded-For"] == f"hello@example.me {world.gmail_address}"
    var = cloudflare.variant(mid)  # what comes and goes (test_sandbox_fidelity.py)
    assert headers["Feedback-ID"] == ("example.me:1:1:Cloudflare" if var.feedback_id else None)
    assert ("X-CF-SpamH-Score" in headers) == var.spamh_score
    received = headers.get_all("Received")[1:]  # [0] is Gmail's internal hop
    assert "by mx.google.com with ESMTPS" in received[0]
    assert received[0].startswith(f"from {var.host}")
    assert re.search(rf"by cloudflare-email\.net \({var.received_word}\) id \w{{12}}\s+for "
                     r"<hello@example\.me>", " ".join(received[1].split()))
    assert headers["From"] == world.probe_address  # From: is unchanged
    seals = headers.get_all("ARC-Seal")
    assert [re.search(r"i=(\d)", s).group(1) for s in seals] == ["2", "1"]
    assert "cv=none" in seals[1] and "d=cloudflare-email.net" in seals[1]
    assert "cv=pass" in seals[0] and "d=google.com" in seals[0]
    aar1 = [v for v in headers.get_all("ARC-Authentication-Results") if v.startswith("i=1")]
    assert aar1 and "mx.cloudflare.net" in aar1[0] and "smtp.remote-ip=127.0.3.9" in aar1[0]
    signers = [re.search(r"d=([^;\s]+)", s).group(1) for s in headers.get_all("DKIM-Signature")]
    assert signers == ["cloudflare-email.net", "example.me", "sender.example"]


def test_stored_copy_verifies_with_real_libraries(world: World) -> None:
    raw = _stored(world, _send_inbound(world))
    dnsfunc = checks.make_dnsfunc(world.ctx.resolver())
    for idx in range(3):  # every DKIM signature, checked with dkimpy directly
        assert dkim.DKIM(raw).verify(idx=idx, dnsfunc=dnsfunc)
    cv, _results, _comment = dkim.arc_verify(raw, dnsfunc=dnsfunc)
    assert cv == b"pass"
    spf = checks.check_spf("127.0.1.8", BytesHeaderParser().parsebytes(raw)["Return-Path"]
                           .strip("<>"), "i-1a2b.cloudflare-email.net", world.ctx.resolver())
    assert spf.result == "pass"
    # The same message from an address outside Cloudflare's SPF range fails SPF.
    assert checks.check_spf("127.0.9.9", spf.mail_from, "x", world.ctx.resolver()).result \
        == "softfail"


def test_unknown_alias_is_refused_by_cloudflare(world: World) -> None:
    config = world.config()

    async def probe() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.1.1", port=world.ctx.ports["127.0.1.1"],
                                   start_tls=False, local_hostname="x.test") as smtp:
            await smtp.mail(config.probe.address)
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await smtp.rcpt("nobody@example.me")
            assert refused.value.code == 550
            assert refused.value.message == "5.1.1 Address does not exist"

    asyncio.run(probe())


@pytest.mark.parametrize("password", ["wrong-password-16", None])
def test_gmail_submission_app_password(world: World, password: str | None) -> None:
    config = world.config()
    msg = clients.message(world.gmail_address, world.probe_address, "x",
                          message_id=f"<{uuid.uuid4().hex}@gmail.com>")
    if password is None:  # the right one, without its spaces: also accepted
        password = world.gmail_app_password.replace(" ", "")
        asyncio.run(clients.submit(config, config.gmail, msg, rcpts=[world.probe_address],
                                   password=password))
        return
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        asyncio.run(clients.submit(config, config.gmail, msg, rcpts=[world.probe_address],
                                   password=password))
    assert refused.value.code == 535
    assert "5.7.8 Username and Password not accepted" in refused.value.message


def test_gmail_send_as_keeps_verified_from_and_signs_for_gmail(world: World) -> None:
    config = world.config()
    mid = f"<{uuid.uuid4().hex}@example.me>"
    msg = clients.message("hello@example.me", world.probe_address, "send-as", message_id=mid)
    asyncio.run(clients.submit(config, config.gmail, msg, mail_from="hello@example.me",
                               rcpts=[world.probe_address]))
    stored = world.truth.wait_for(mid, "stored", 10)
    assert stored is not None and stored.party == "external"
    raw = next(r for _, r, _ in world.probe_folder() if mid.encode() in r)
    headers = BytesHeaderParser().parsebytes(raw)
    assert headers["From"] == "hello@example.me"
    assert "X-Google-Original-From" not in headers
    assert headers["Return-Path"] == f"<{world.gmail_address}>"  # Gmail's envelope
    ar = headers["Authentication-Results"]
    assert ar.startswith("mx.sender.example;")
    assert "dkim=pass header.d=gmail.com" in ar
    assert "spf=pass smtp.mailfrom=flowtest.owner@gmail.com" in ar
    assert "dmarc=fail (p=none) header.from=example.me" in ar  # the known send-as failure
    sent = [r for _, r, flags in world.gmail_folder(SENT) if mid.encode() in r]
    assert sent, "Gmail keeps a Sent copy"


@pytest.mark.faults("sendas-unverified")
def test_unverified_send_as_rewrites_from(world: World) -> None:
    config = world.config()
    mid = f"<{uuid.uuid4().hex}@example.me>"
    msg = clients.message("Hello <hello@example.me>", world.probe_address, "x", message_id=mid)
    asyncio.run(clients.submit(config, config.gmail, msg, rcpts=[world.probe_address]))
    assert world.truth.wait_for(mid, "stored", 10) is not None
    raw = next(r for _, r, _ in world.probe_folder() if mid.encode() in r)
    headers = BytesHeaderParser().parsebytes(raw)
    assert headers["From"] == world.gmail_address
    assert headers["X-Google-Original-From"] == "Hello <hello@example.me>"


@pytest.mark.faults("bad-app-password")
def test_bad_app_password_fault_refuses_smtp_and_imap(world: World) -> None:
    config = world.config()
    msg = clients.message(world.gmail_address, world.probe_address, "x", message_id="<a@b>")
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        asyncio.run(clients.submit(config, config.gmail, msg, rcpts=[world.probe_address]))
    assert refused.value.code == 535
    with pytest.raises(PermissionError, match="AUTHENTICATIONFAILED"):
        asyncio.run(clients.imap_login(config, config.gmail))


@pytest.mark.faults("gmail-send-limit")
def test_fault_gmail_send_limit_refuses_every_message(world: World) -> None:
    config = world.config()
    msg = clients.message("hello@example.me", world.probe_address, "x", message_id="<l@b>")
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        asyncio.run(clients.submit(config, config.gmail, msg, rcpts=[world.probe_address]))
    assert refused.value.code == 550
    assert refused.value.message.startswith("5.4.5 Daily user sending limit exceeded")
    assert world.truth.events("<l@b>") == []  # nothing was sent


def test_gmail_imap_special_use_and_idle(world: World) -> None:
    config = world.config()

    async def watch() -> tuple[list[bytes], bytes]:
        client = await clients.imap_login(config, config.gmail)
        listing = await client.list('""', '"*"')
        await client.select("INBOX")
        idle = await client.idle_start(timeout=10)
        await asyncio.to_thread(_send_inbound, world)
        push = await client.wait_server_push(timeout=10)
        client.idle_done()
        await asyncio.wait_for(idle, 5)
        await clients.close(client)
        return listing.lines, b" ".join(bytes(x) for x in push)

    listing, push = asyncio.run(watch())
    text = b"\n".join(listing).decode()
    assert re.search(r'\\Junk\) "/" "?\[Gmail\]/Spam', text)
    assert re.search(r'\\Trash\) "/" "?\[Gmail\]/Trash', text)
    assert re.search(r'\\Sent\) "/" "?\[Gmail\]/Sent Mail', text)
    assert b"EXISTS" in push


def test_dns_answers_over_udp_and_tcp_and_truncates(world: World) -> None:
    import dns.flags
    import dns.message
    import dns.query

    from flowtest.sandbox.dns_server import txt_rdata

    host, port = world.ctx.dns_server
    world.dns_extra[("big.example.me", "TXT")] = [txt_rdata("v=spf1 " + "a" * 1500)]
    # A long record, asked without EDNS: the 512-octet limit applies.
    q = dns.message.make_query("big.example.me", "TXT", use_edns=False)
    udp = dns.query.udp(q, host, port=port, timeout=3)
    assert udp.flags & dns.flags.TC and not udp.answer  # too big for 512 octets
    tcp = dns.query.tcp(q, host, port=port, timeout=3)
    assert len(b"".join(tcp.answer[0][0].strings)) == 1507
    key = dns.query.tcp(dns.message.make_query("cf2024-1._domainkey.example.me", "TXT"), host,
                        port=port, timeout=3)
    assert b"".join(key.answer[0][0].strings).startswith(b"v=DKIM1; k=rsa; p=")
    mx = dns.query.udp(dns.message.make_query("example.me", "MX"), host, port=port, timeout=3)
    assert sorted(r.exchange.to_text() for r in mx.answer[0]) == [
        "route1.mx.cloudflare.net.", "route2.mx.cloudflare.net.", "route3.mx.cloudflare.net."]
    nx = dns.query.udp(dns.message.make_query("nope.invalid", "A"), host, port=port, timeout=3)
    assert nx.rcode() == dns.rcode.NXDOMAIN


# --- faults: each changes what a client observes, the way its name says ---------


def _txt(world: World, name: str) -> list[str]:
    records = world._lookup(name, "TXT") or []
    return [r.strip('"') for r in records]


@pytest.mark.faults("forward-drop")
def test_fault_forward_drop(world: World) -> None:
    mid = _send_inbound(world)
    assert world.truth.wait_for(mid, "dropped", 10) is not None
    assert world.truth.events(mid, "accepted")
    assert not world.truth.events(mid, "stored")


@pytest.mark.faults("forward-delay=1.5")
def test_fault_forward_delay(world: World) -> None:
    mid = _send_inbound(world)
    stored = world.truth.wait_for(mid, "stored", 10)
    accepted = world.truth.events(mid, "accepted")[0]
    assert stored is not None and stored.at - accepted.at >= 1.5


@pytest.mark.faults("no-rule")
def test_fault_no_rule_bounces_to_the_sender(world: World) -> None:
    mid = _send_inbound(world)
    bounced = world.truth.wait_for(mid, "bounced", 10)
    assert bounced is not None and "550 5.1.1 Address does not exist" in bounced.detail
    # Refused at RCPT (final), before the sender wrote its bounce: Cloudflare
    # never took the message, so it was never relayed or stored.
    assert bounced.party == "external"
    assert not any(world.truth.events(mid, kind) for kind in ("accepted", "relayed", "stored"))
    assert any(b"Address does not exist" in raw and mid.encode() in raw
               for _, raw, _ in world.probe_folder())


@pytest.mark.faults("spam")
def test_fault_spam(world: World) -> None:
    _stored(world, _send_inbound(world), SPAM)


@pytest.mark.faults("gmail-tempfail")
def test_fault_gmail_tempfail_is_passed_back_and_retried(world: World) -> None:
    mid = _send_inbound(world)
    at_cloudflare = world.truth.wait_for(mid, "deferred", 10, party="cloudflare")
    at_sender = world.truth.wait_for(mid, "deferred", 10, party="external")
    # Cloudflare did not queue: the 421 went back to the sender, whose queue holds it.
    assert at_cloudflare is not None and at_cloudflare.detail.startswith("421 4.7.0")
    assert at_sender is not None and at_sender.detail.startswith("421 4.7.0")
    world.clear_fault("gmail-tempfail")
    _stored(world, mid)  # the sender's queue retried


@pytest.mark.faults("body-modified")
def test_fault_body_modified_breaks_dkim_not_arc(world: World) -> None:
    raw = _stored(world, _send_inbound(world))
    ar = BytesHeaderParser().parsebytes(raw)["Authentication-Results"]
    assert "dkim=neutral (body hash did not verify) header.i=@sender.example" in ar
    assert "arc=pass" in ar


@pytest.mark.faults("imap-drop")
def test_fault_imap_drop_cuts_connections(world: World) -> None:
    config = world.config()

    async def idle_until_cut() -> bool:
        client = await clients.imap_login(config, config.gmail)
        await client.select("INBOX")
        await client.idle_start(timeout=10)
        await asyncio.to_thread(_send_inbound, world)
        for _ in range(100):
            if client.protocol.state == "LOGOUT" or client.protocol.transport.is_closing():
                await clients.close(client)
                return True
            await asyncio.sleep(0.05)  # polling a client-side state flag, bounded
        await clients.close(client)
        return False

    assert asyncio.run(idle_until_cut())


@pytest.mark.faults("spoofed-ar")
def test_fault_spoofed_ar_is_below_the_real_one(world: World) -> None:
    raw = _stored(world, _send_inbound(world))
    ars = BytesHeaderParser().parsebytes(raw).get_all("Authentication-Results")
    claims = [i for i, v in enumerate(ars) if v.startswith("mx.google.com")]
    assert len(claims) == 2 and claims[0] == 0  # the forged one sits lower


@pytest.mark.faults("duplicate")
def test_fault_duplicate(world: World) -> None:
    mid = _send_inbound(world)
    assert world.truth.wait_for(mid, "stored", 10) is not None
    first = world.truth.wait_for(mid, "relayed", 10)
    # Cloudflare relays the second copy only after Gmail answered the first.
    second = world.truth.wait_for(mid, "relayed", 10, count=2)
    assert first is not None and second is not None and second.at >= first.at
    assert world.truth.wait_for(mid, "stored", 10, count=2) is not None


@pytest.mark.faults("mx-icloud")
def test_fault_mx_icloud(world: World) -> None:
    assert world._lookup("example.me", "MX") == ["10 mx01.mail.icloud.com.",
                                                 "10 mx02.mail.icloud.com."]
    mid = _send_inbound(world)
    bounced = world.truth.wait_for(mid, "bounced", 10)
    assert bounced is not None and "user unknown" in bounced.detail
    assert not world.truth.events(mid, "accepted")


@pytest.mark.faults("spf-duplicate")
def test_fault_spf_duplicate(world: World) -> None:
    spf = [t for t in _txt(world, "example.me") if t.startswith("v=spf1")]
    assert len(spf) == 2
    raw = _stored(world, _send_inbound(world))
    assert "spf=permerror" in BytesHeaderParser().parsebytes(raw)["Authentication-Results"]


@pytest.mark.faults("dkim-missing")
def test_fault_dkim_missing(world: World) -> None:
    assert world._lookup("cf2024-1._domainkey.example.me", "TXT") is None
    raw = _stored(world, _send_inbound(world))
    ar = BytesHeaderParser().parsebytes(raw)["Authentication-Results"]
    assert "dkim=neutral (no key for signature) header.i=@example.me" in " ".join(ar.split())


@pytest.mark.faults("dmarc-reject")
def test_fault_dmarc_reject_refuses_gmail_send_as(world: World) -> None:
    assert "p=reject" in _txt(world, "_dmarc.example.me")[0]
    config = world.config()
    mid = f"<{uuid.uuid4().hex}@example.me>"
    msg = clients.message("hello@example.me", world.probe_address, "x", message_id=mid)
    asyncio.run(clients.submit(config, config.gmail, msg, rcpts=[world.probe_address]))
    rejected = world.truth.wait_for(mid, "rejected", 10)
    assert rejected is not None and "5.7.26" in rejected.detail and "DMARC" in rejected.detail
    # The refusal comes back to the Gmail account as a bounce.
    assert world.truth.wait_for(mid, "bounced", 10) is not None


def test_routing_rules_limit_and_catch_all(flowtest_keys: object) -> None:
    from flowtest.sandbox.cloudflare import MAX_RULES, Routing, Rule
    routing = Routing("example.me")
    for i in range(MAX_RULES):
        routing.forward(f"a{i}@example.me", "x@gmail.com")
    with pytest.raises(ValueError, match="at most 200"):
        routing.forward("one-more@example.me", "x@gmail.com")
    assert routing.route("unknown@example.me") is None
    routing.catch_all = Rule("forward", "x@gmail.com")
    assert routing.route("unknown@example.me") == Rule("forward", "x@gmail.com")
    routing.drop("a1@example.me")
    assert routing.route("a1@example.me") == Rule("drop")
