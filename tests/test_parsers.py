"""Received and Authentication-Results readers, on header blocks shaped like
the real ones (FACTS.md), and fuzzed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flowtest.mail import authresults, bounce, probe, received
from flowtest.mail.orgdomain import org_domain

GMAIL_BLOCK = b"""\
Delivered-To: owner@gmail.com
Received: by 2002:a05:6a10:9e8c:b0:5c1:2f0e:1a0 with SMTP id lz12csp123456pxb;
        Sat, 21 Mar 2026 02:25:58 -0700 (PDT)
X-Received: by 2002:a17:902:e5c4:b0:2a0:9d2d:1f0e with SMTP id u4mr53737005ad.9.1774085158806;
        Sat, 21 Mar 2026 02:25:58 -0700 (PDT)
ARC-Seal: i=2; a=rsa-sha256; t=1774085158; cv=pass; d=google.com; s=arc-20240605; b=abc
ARC-Authentication-Results: i=2; mx.google.com;
       dkim=pass header.i=@cloudflare-email.net header.s=cf2024-1 header.b=AbCdEfGh
Return-Path: <SRS0=Ab1c=BD=sender.example=alice@example.me>
Received: from i-ab.cloudflare-email.net (i-ab.cloudflare-email.net. [104.30.8.99])
        by mx.google.com with ESMTPS id d9443c01a7336-2a0b1c2d3e4f5sor1234567ad.9.2026.03.21.02.25.57
        for <owner@gmail.com>
        (Google Transport Security);
        Sat, 21 Mar 2026 02:25:57 -0700 (PDT)
Received-SPF: pass (google.com: domain of srs0=ab1c=bd=sender.example=alice@example.me designates 104.30.8.99 as permitted sender) client-ip=104.30.8.99;
Authentication-Results: mx.google.com;
       dkim=pass header.i=@cloudflare-email.net header.s=cf2024-1 header.b=AbCdEfGh;
       dkim=pass header.i=@example.me header.s=cf2024-1 header.b=IjKlMnOp;
       arc=pass (i=1 spf=pass spfdomain=sender.example dkim=pass dkdomain=sender.example dmarc=pass fromdomain=sender.example);
       spf=pass (google.com: domain of srs0=ab1c=bd=sender.example=alice@example.me designates 104.30.8.99 as permitted sender) smtp.mailfrom="SRS0=Ab1c=BD=sender.example=alice@example.me";
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=sender.example
ARC-Seal: i=1; a=rsa-sha256; cv=none; d=cloudflare-email.net; s=cf2024-1; b=x
ARC-Authentication-Results: i=1; mx.cloudflare.net;
 dkim=pass header.d=sender.example header.s=s1 header.b=QrStUvWx;
 dmarc=pass header.from=sender.example policy.dmarc=none;
 spf=pass (mx.cloudflare.net: domain of alice@sender.example designates 203.0.113.7 as permitted sender) smtp.mailfrom=alice@sender.example;
 arc=none smtp.remote-ip=203.0.113.7
Received: from mail.sender.example (203.0.113.7)
        by cloudflare-email.net (cloudflare) id AbCdEfGhIjKl
        for <hello@example.me>; Sat, 21 Mar 2026 09:25:56 +0000
Authentication-Results: mx.google.com; spf=pass; dkim=pass; dmarc=pass (p=REJECT) header.from=sender.example
Received: from [192.168.1.20] by mail.sender.example with ESMTPSA id 1a2b;
        Sat, 21 Mar 2026 09:25:55 +0000
From: Alice <alice@sender.example>
To: hello@example.me
Subject: hi
Date: Sat, 21 Mar 2026 09:25:54 +0000
Message-ID: <1@sender.example>

body
""".replace(b"\n", b"\r\n")


def test_gmail_verdict_is_read_from_the_topmost_trusted_header() -> None:
    v = authresults.trusted(GMAIL_BLOCK, "mx.google.com")
    assert v.found and v.authserv_id == "mx.google.com"
    assert [(d.result, d.domain) for d in v.dkim_all] == [("pass", "cloudflare-email.net"),
                                                          ("pass", "example.me")]
    assert v.spf.result == "pass" and v.spf.domain == "example.me" and not v.spf.aligned
    assert v.dmarc.result == "pass" and v.dmarc.domain == "sender.example"
    assert v.dmarc_policy == "none" and v.dmarc_disposition == "none"
    assert v.arc.result == "pass" and "i=1 spf=pass" in v.arc.comment
    assert v.header_from == "sender.example"
    # The forged mx.google.com header sits below the first hop into Google.
    assert v.ignored == 1


def test_cloudflare_verdict_comes_from_its_arc_instance() -> None:
    v = authresults.arc_instance(GMAIL_BLOCK, 1, "mx.cloudflare.net")
    assert v.found and v.spf.result == "pass" and v.spf.domain == "sender.example"
    assert v.dkim.result == "pass" and v.dkim.domain == "sender.example" and v.dkim.aligned
    assert v.spf.aligned


def test_a_header_forged_above_the_receivers_trace_is_not_trusted() -> None:
    forged_only = b"Authentication-Results: mx.google.com; dmarc=pass header.from=x.example\r\n" \
                  b"Received: from a.example by b.example; Sat, 21 Mar 2026 09:25:55 +0000\r\n" \
                  b"From: x@x.example\r\n\r\nbody\r\n"
    # Nothing from Google's own hosts above it: the message never reached
    # Google, so no receiver verdict at all (the rule: a trace that reaches the
    # receiver's hosts is needed whenever the message has a trace).
    v = authresults.trusted(forged_only, "mx.google.com")
    assert not v.found and v.ignored == 1
    swapped = forged_only.replace(b"by b.example", b"by mx.google.com")
    assert authresults.trusted(swapped, "mx.google.com").found
    lower = b"Received: from a.example by mail.x.example; Sat, 21 Mar 2026 09:25:55 +0000\r\n" \
            + forged_only
    assert not authresults.trusted(lower, "mx.google.com").found


def test_missing_dmarc_clause_and_dkim_failures() -> None:
    value = ("mx.google.com; dkim=neutral (body hash did not verify) header.i=@sender.example "
             "header.s=s1 header.b=AAAA; spf=softfail (google.com: domain of transitioning "
             "a@b.example does not designate 1.2.3.4 as permitted sender) smtp.mailfrom=a@b.example")
    v = authresults.parse_value(value, "sender.example")
    assert v is not None
    assert v.dmarc.result == "none" and v.dkim.result == "neutral" and not v.dkim.aligned
    assert v.spf.result == "softfail"


def test_hops_in_travel_order_with_gmail_milliseconds() -> None:
    hops = received.hops(GMAIL_BLOCK)
    assert [h.by for h in hops] == ["mail.sender.example", "cloudflare-email.net",
                                    "mx.google.com", "2002:a17:902:e5c4:b0:2a0:9d2d:1f0e",
                                    "2002:a05:6a10:9e8c:b0:5c1:2f0e:1a0"]
    assert hops[0].delay_s == 1.0  # after the Date header
    assert hops[1].delay_s == 1.0 and hops[2].delay_s == 1.0
    assert hops[3].source == "X-Received" and hops[3].at == 1774085158.806
    # X-Received's millisecond time after a whole-second Received: the lower bound.
    # X-Received's millisecond time counts its real delay from the whole-second
    # Received before it (not the "+0.000" a lower bound of it used to give).
    assert hops[3].delay_s == 1.806 and hops[3].resolution_s == 0.001
    assert received.parse_received("from x by y").at is None


def test_org_domain() -> None:
    assert org_domain("a.b.example.co.uk") == "example.co.uk"
    assert org_domain("mail.sender.test") == "sender.test"
    assert org_domain("sender.test") != org_domain("other.test")
    assert org_domain("Mail.Example.ME.") == "example.me"


def test_probe_tokens_are_unambiguous_and_digest_survives_transport() -> None:
    a, b = probe.token_for("r1", 7), probe.token_for("r1", 70)
    assert a not in b and b not in a
    p = probe.build(a, leg="inbound", sender="p@x.example", recipient="h@example.me",
                    html=True, attachment=b"\x00\x01binary")
    relayed = b"Received: from x by y; Sat, 21 Mar 2026 09:25:55 +0000\r\n" + p.raw
    assert probe.content_digest(relayed) == p.digest
    assert probe.content_digest(relayed.replace(b"This is a flowtest", b"This is a changed")) \
        != p.digest


def test_bounce_reports() -> None:
    raw = (b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
           b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
           b"Final-Recipient: rfc822; a@example.me\r\nAction: failed\r\n"
           b"Remote-MTA: dns; route1.mx.cloudflare.net\r\nStatus: 5.1.1\r\n"
           b"Diagnostic-Code: smtp; 550 5.1.1 Address does not exist\r\n--B--\r\n")
    b = bounce.parse(raw)
    assert b is not None and b.final and b.code == 550 and b.status == "5.1.1"
    assert b.remote_mta == "route1.mx.cloudflare.net"
    assert bounce.parse(b"Subject: hi\r\n\r\nx") is None


header_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)


@settings(max_examples=300, deadline=None)
@given(value=header_text)
def test_authentication_results_parser_never_raises(value: str) -> None:
    authresults.parse_value(value)
    raw = f"Authentication-Results: {value}\r\nFrom: a@b.c\r\n\r\n".encode("utf-8", "replace")
    authresults.trusted(raw, "mx.google.com")
    authresults.arc_instance(raw.replace(b"Authentication", b"ARC-Authentication"), 1,
                             "mx.cloudflare.net")


@settings(max_examples=300, deadline=None)
@given(value=header_text, date=header_text)
def test_received_parser_never_raises(value: str, date: str) -> None:
    received.parse_received(f"{value}; {date}")
    received.hops(f"Received: {value}; {date}\r\nDate: {date}\r\n\r\n".encode(
        "utf-8", "replace"))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=2000))
def test_hostile_messages_never_crash_the_readers(raw: bytes) -> None:
    received.hops(raw)
    authresults.trusted(raw, "mx.google.com")
    probe.content_digest(raw)
    bounce.parse(raw)


def test_inspect_a_real_shaped_gmail_message(tmp_path: object) -> None:
    from flowtest.mail.inspect import inspect

    result = inspect(GMAIL_BLOCK)
    assert result.authserv_id == "mx.google.com"
    data = result.to_json()
    assert set(data["auth"]) == {"spf", "dkim", "dmarc", "arc"}
    assert data["auth"]["dmarc"] == {"result": "pass", "domain": "sender.example"}
    assert data["relay_auth"]["spf"]["result"] == "pass"
    assert {"RECEIVER", "AUTH_RESULTS", "RELAY_CLOUDFLARE", "AR_IGNORED", "HOPS"} <= \
        set(result.codes)
    assert len(data["hops"]) == 5
