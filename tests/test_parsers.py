"""Received and Authentication-Results readers, on header blocks shaped like
the real ones (FACTS.md), and fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowtest.mail import authresults, bounce, probe, received, receivers
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


# ---------------------------------------------------------------- real syntax (issue 13, item 4)

def _ar(value: str) -> authresults.AuthVerdict:
    v = authresults.parse_value(value)
    assert v is not None, value
    return v


def test_real_syntax_forms() -> None:
    netease = _ar("mx19; spf=pass smtp.mail=0101016f-a63b\r\n\t8f9e@us-west-2.amazonses.com; "
                  "dkim=\r\n\tpass header.i=@amazonses.com")
    assert (netease.spf.result, netease.spf.domain) == ("pass", "us-west-2.amazonses.com")
    assert (netease.dkim.result, netease.dkim.domain) == ("pass", "amazonses.com")
    yahoo = _ar("atlas1.free.mail.bf1.yahoo.com; dmarc=pass(p=NONE,sp=QUARANTINE) "
                "header.from=gmail.com;")
    assert (yahoo.dmarc.result, yahoo.dmarc_policy) == ("pass", "none")
    assert _ar("x.example; dmarc=unknown header.from=a.example").dmarc.result == "unknown"
    guess = _ar("spf=none smtp.mailfrom=a.example; dmarc=bestguesspass action=none "
                "header.from=a.example;compauth=pass reason=109")
    assert (guess.dmarc.result, guess.dmarc_action, guess.compauth, guess.compauth_reason) == \
        ("bestguesspass", "none", "pass", "109")
    # Microsoft's pre-2019 form: bare "hotmail.com;" tokens inside the value.
    old = _ar("spf=fail (sender IP is 52.35.228.94) smtp.mailfrom=terra.com.br; hotmail.com; "
              "dkim=none (message not signed) header.d=none;hotmail.com; dmarc=none "
              "action=none header.from=infoemail.com.br;")
    assert old.authserv_id == "" and (old.spf.result, old.spf.domain) == ("fail", "terra.com.br")
    assert (old.dkim.result, old.dkim.domain) == ("none", "")
    assert (old.dmarc.result, old.dmarc.domain) == ("none", "infoemail.com.br")
    quoted = _ar('smtp.subspace.kernel.org; dkim=pass (2048-bit key) header.d=gmail.com '
                 'header.i=@gmail.com header.b="IExA/+;PL"; spf=pass smtp.mailfrom=gmail.com')
    assert quoted.dkim.domain == "gmail.com" and quoted.spf.result == "pass"
    qq = _ar("mx.qq.com; spf=none smtp.mailfrom=;\r\n dkim=none; dmarc=none(permerror) "
             "header.from=solar.sec")
    assert (qq.spf.result, qq.spf.domain, qq.dmarc.domain) == ("none", "", "solar.sec")
    assert qq.dmarc.comment == "permerror"
    m365 = _ar("mx.microsoft.com 1; spf=pass smtp.mailfrom=a.example; dmarc=fail "
               "action=quarantine header.from=b.example; compauth=fail reason=001")
    assert m365.authserv_id == "mx.microsoft.com" and m365.dmarc_consequence == "quarantine"
    assert m365.compauth_reason == "001"


def test_several_spf_clauses_mail_from_counts() -> None:
    cf = ("mx.cloudflare.net; spf=pass smtp.helo=out.a.example; "
          "spf=fail smtp.mailfrom=bounce@a.example; arc=none")
    v = _ar(cf)
    assert (v.spf.result, v.spf.domain) == ("fail", "a.example")
    # HELO only when there is no MAIL FROM result.
    assert _ar("x.example; spf=pass smtp.helo=out.a.example").spf.domain == "out.a.example"
    # Fastmail: one clause with both.
    fm = _ar("mx6.messagingengine.com; spf=pass smtp.mailfrom=a@b.example smtp.helo=h.c.example")
    assert fm.spf.domain == "b.example"


def test_encoded_word_value_is_read() -> None:
    # Outlook writes the whole value as RFC 2047 encoded-words when the From
    # domain is not ASCII (FACTS.md).
    import base64

    plain = ("spf=pass (sender IP is 209.85.221.68) smtp.mailfrom=xn--bcher-kva.example; "
             "dkim=pass (signature was verified) header.d=xn--bcher-kva.example;dmarc=pass "
             "action=none header.from=xn--bcher-kva.example;compauth=pass reason=100")
    encoded = "=?utf-8?B?" + base64.b64encode(plain.encode()).decode() + "?="
    raw = (f"Authentication-Results: {encoded}\r\n"
           "Received: from mail-wr1-f68.google.com (209.85.221.68) by "
           "AM0EUR02FT011.mail.protection.outlook.com; Sat, 21 Mar 2026 09:25:55 +0000\r\n"
           "From: a@xn--bcher-kva.example\r\n\r\nbody\r\n").encode()
    v = authresults.trusted(raw, receivers.PROFILES["outlook"])
    assert v.found and v.trusted_by == "position" and v.dmarc.result == "pass"
    assert v.dkim.aligned


MS_TOP = ("Received: from AS8PR09MB4758.eurprd09.prod.outlook.com by "
          "DB6PR0902MB2040.eurprd09.prod.outlook.com with HTTPS; Tue, 19 Jul 2022 07:41:10 +0000\r\n"
          "Received: from HE1EUR04FT033.eop-eur04.prod.protection.outlook.com by "
          "AS8PR09MB4758.outlook.office365.com; Tue, 19 Jul 2022 07:41:09 +0000\r\n")
MS_ENTRY = ("Received: from mail-wr1-f68.google.com (209.85.221.68) by "
            "HE1EUR04FT033.mail.protection.outlook.com; Tue, 19 Jul 2022 07:41:08 +0000\r\n")
IDLESS = ("Authentication-Results: spf=pass smtp.mailfrom=gmail.com; dkim=pass "
          "header.d=gmail.com;dmarc=pass action=none header.from=gmail.com;compauth=pass "
          "reason=100\r\n")
FORGED_IDLESS = IDLESS.replace("pass", "fail")
SENDER = ("Received: from [10.0.0.2] by smtp.gmail.com with ESMTPSA; "
          "Tue, 19 Jul 2022 00:41:07 -0700\r\nFrom: a@gmail.com\r\n"
          "Date: Tue, 19 Jul 2022 07:41:06 +0000\r\n\r\nbody\r\n")


def test_idless_header_is_trusted_only_directly_above_the_entry_hop() -> None:
    outlook = receivers.PROFILES["outlook"]
    real = (MS_TOP + IDLESS + "Received-SPF: Pass\r\n" + MS_ENTRY + SENDER).encode()
    v = authresults.trusted(real, outlook)
    assert v.found and v.trusted_by == "position" and v.dmarc.result == "pass"
    assert v.compauth == "pass"
    # A sender's id-less header below the entry hop is never Outlook's.
    forged_below = (MS_TOP + MS_ENTRY + FORGED_IDLESS + SENDER).encode()
    assert not authresults.trusted(forged_below, outlook).found
    with_real = (MS_TOP + IDLESS + MS_ENTRY + FORGED_IDLESS + SENDER).encode()
    v = authresults.trusted(with_real, outlook)
    assert v.dmarc.result == "pass" and v.ignored == 1
    # Nor is one above Microsoft's internal hops: only directly above the entry.
    too_high = (IDLESS + MS_TOP + MS_ENTRY + SENDER).encode()
    assert not authresults.trusted(too_high, outlook).found
    # Gmail never trusts an id-less header.
    assert not authresults.trusted(real, "mx.google.com").found


def test_microsoft_365_versioned_id_and_the_renamed_upstream_header() -> None:
    m365 = ("Authentication-Results: mx.microsoft.com 1; spf=pass smtp.mailfrom=gmail.com; "
            "dmarc=fail action=oreject header.from=example.me; compauth=fail reason=001\r\n")
    upstream = ("Authentication-Results-Original: mx.microsoft.com 1; dmarc=pass "
                "header.from=example.me\r\n")
    raw = (MS_TOP + m365 + MS_ENTRY + upstream + SENDER).encode()
    v = authresults.trusted(raw, receivers.PROFILES["office365"])
    assert v.found and v.authserv_id == "mx.microsoft.com" and v.trusted_by == "authserv-id"
    assert (v.dmarc.result, v.dmarc_consequence) == ("fail", "quarantine")
    # Authentication-Results-Original is never the receiver's own.
    only_upstream = (MS_TOP + MS_ENTRY + upstream + SENDER).encode()
    assert not authresults.trusted(only_upstream, receivers.PROFILES["outlook"]).found


def test_microsoft_spam_verdict_implies_junk() -> None:
    base = MS_TOP + IDLESS + MS_ENTRY + SENDER.split("\r\n\r\n")[0] + "\r\n"
    outlook = receivers.PROFILES["outlook"]
    for extra in ("X-Forefront-Antispam-Report: CIP:1.2.3.4;CTRY:;LANG:en;SCL:5;SRV:;\r\n",
                  "X-Forefront-Antispam-Report: CIP:1.2.3.4;SFV:SPM;H:x;\r\n",
                  "X-Microsoft-Antispam-Mailbox-Delivery: ucf:0;jmr:0;dest:J;OFR:x;\r\n",
                  "X-MS-Exchange-Organization-SCL: 6\r\n"):
        v = authresults.trusted((base + extra + "\r\nbody\r\n").encode(), outlook)
        assert v.found and v.dmarc.result == "pass" and v.implied_folder == "junk", extra
    clean = base + "X-Forefront-Antispam-Report: SCL:1;SFV:NSPM;\r\n\r\nbody\r\n"
    assert authresults.trusted(clean.encode(), outlook).implied_folder == ""
    # Gmail's verdict says nothing about Microsoft's headers.
    assert authresults.trusted(GMAIL_BLOCK, "mx.google.com").implied_folder == ""


ICLOUD = ("Received: from st43p00im-qukt05021701.me.com by p44-mailgateway-smtp-778464bd6-glqrh "
          "(mailgateway 2403B92) with SMTP id d8; Mon, 18 Dec 2023 10:56:29 GMT\r\n"
          "Received: from i-bf.email.cloudflare.net (i-bf.email.cloudflare.net [104.30.8.15]) "
          "by st43p00im-qukt05021701.me.com (Postfix); Mon, 18 Dec 2023 10:56:23 +0000 (UTC)\r\n"
          "X-ICL-SCORE: 3.3\r\n"
          "Authentication-Results: bimi.icloud.com; bimi=none\r\n"
          "Authentication-Results: arc.icloud.com; arc=none\r\n"
          "Authentication-Results: dmarc.icloud.com; dmarc=pass header.from=qq.com\r\n"
          "Authentication-Results: dkim-verifier.icloud.com; dkim=pass header.d=qq.com\r\n"
          "Authentication-Results: spf.icloud.com; spf=pass smtp.mailfrom=a@wh1te.dev\r\n"
          "Received: from out1.mail.qq.com (203.205.251.72) by email.cloudflare.net (unknown); "
          "Mon, 18 Dec 2023 10:56:16 +0000\r\n"
          "Authentication-Results: spf.icloud.com; spf=pass smtp.mailfrom=a@qq.com\r\n"
          "From: a@qq.com\r\nDate: Mon, 18 Dec 2023 10:56:15 +0000\r\n\r\nbody\r\n")


def test_icloud_one_header_per_method_below_its_entry_hop() -> None:
    icloud = receivers.PROFILES["icloud"]
    v = authresults.trusted(ICLOUD.encode(), icloud)
    assert v.found and (v.dmarc.result, v.dmarc.domain) == ("pass", "qq.com")
    assert (v.dkim.result, v.dkim.domain, v.dkim.aligned) == ("pass", "qq.com", True)
    assert (v.spf.result, v.spf.domain, v.spf.aligned) == ("pass", "wh1te.dev", False)
    assert v.ignored == 1   # the sender's spf.icloud.com below Cloudflare's hop
    # A method is read only from its own id: a "dmarc=" in the spf header is not iCloud's DMARC.
    odd = ICLOUD.replace("dmarc=pass header.from=qq.com", "bimi=none").replace(
        "spf=pass smtp.mailfrom=a@wh1te.dev", "spf=pass smtp.mailfrom=a@wh1te.dev; dmarc=pass")
    assert authresults.trusted(odd.encode(), icloud).dmarc.result == "none"


NETEASE = ("Received: from a27-38.smtp-out.us-west-2.amazonses.com (unknown [54.240.27.38]) "
           "by mx19 (Coremail) with SMTP id x8mowAAX4tcS6zReRf_REg--.49102S3; "
           "Sat, 01 Feb 2020 11:05:57 +0800 (CST)\r\n"
           "Authentication-Results: mx19; spf=pass smtp.mail=a@gmail.com; dkim=pass "
           "header.i=@gmail.com\r\n"     # the sender's: above its own From
           "From: a@gmail.com\r\nDate: Sat, 1 Feb 2020 03:05:53 +0000\r\n"
           "X-CM-TRANSID:x8mowAAX4tcS6zReRf_REg--.49102S3\r\n"
           "Authentication-Results: mx19; spf=pass smtp.mail=b@us-west-2.amazonses.com; "
           "dkim=pass header.i=@amazonses.com\r\n\r\nbody\r\n")


def test_netease_appends_its_header_and_the_bottom_one_wins() -> None:
    v = authresults.trusted(NETEASE.encode(), receivers.PROFILES["163"])
    assert v.found and v.trusted_by == "appended" and v.ignored == 1
    assert v.spf.domain == "us-west-2.amazonses.com" and not v.spf.aligned


def test_only_the_topmost_header_counts_unless_the_receiver_splits_its_verdict() -> None:
    # A forged Gmail header right below the real one (a sender talking to Gmail
    # directly) must not add the DMARC clause the real one left out.
    raw = (b"Received: from evil.example (evil.example [203.0.113.9]) by mx.google.com; "
           b"Sat, 21 Mar 2026 09:25:57 +0000\r\n"
           b"Authentication-Results: mx.google.com; spf=fail smtp.mailfrom=evil.example\r\n"
           b"Authentication-Results: mx.google.com; dmarc=pass header.from=bank.example\r\n"
           b"From: a@bank.example\r\n\r\nbody\r\n")
    v = authresults.trusted(raw, receivers.PROFILES["gmail"])
    assert v.found and v.spf.result == "fail" and v.dmarc.result == "none" and v.ignored == 1


# ---------------------------------------------------------------- hops (issue 13 item 4, 14 item 10)

def test_received_dates_real_servers_write() -> None:
    frac = received.parse_received(
        "from MjAy (unknown) by geopod-ismtpd-9 (SG) with HTTP id PPZ Sat, 25 Oct 2025 "
        "04:54:50.526 +0000 (UTC)")
    assert frac.at == 1761368090.526 and frac.resolution_s == 0.001 and frac.by == "geopod-ismtpd-9"
    go = received.parse_received("by recvd-86 with SMTP id recvd-86-1 2025-10-25 "
                                 "04:54:50.563674155 +0000 UTC m=+6852734.027865782")
    assert go.at is not None and abs(go.at - 1761368090.563674) < 1e-3
    folded = received.parse_received("from A by B with HTTPS; Tue, 19 Jul 2022\r\n 07:41:10 +0000")
    assert folded.at == 1658216470.0 and folded.resolution_s == 1.0
    assert received.parse_received("from x by y; not a date").at is None


def _trace(*received_lines: str, date: str = "Tue, 19 Jul 2022 07:41:05 +0000") -> bytes:
    return ("".join(f"Received: {r}\r\n" for r in received_lines)
            + f"Date: {date}\r\n\r\nbody\r\n").encode()


def test_microsoft_stamps_running_backwards_are_clock_skew() -> None:
    raw = _trace("from B.prod.outlook.com by C.prod.outlook.com; Tue, 19 Jul 2022 07:41:09 +0000",
                 "from A.prod.outlook.com by B.prod.outlook.com; Tue, 19 Jul 2022 07:40:59 +0000",
                 "from x.example by A.prod.outlook.com; Tue, 19 Jul 2022 07:41:08 +0000")
    chain = received.chain(raw)
    assert [h.clock_skew for h in chain.hops] == [False, True, False]
    assert [h.delay_s for h in chain.hops] == [3.0, None, 1.0]
    assert chain.total_s == 4.0   # the skewed stamp is left out
    assert received.total_s(raw) == 4.0


def test_an_x_received_epoch_far_from_its_own_date_is_clock_skew() -> None:
    raw = (b"Received: by 2002:a05::1 with SMTP id x; Sat, 21 Mar 2026 02:26:10 -0700 (PDT)\r\n"
           b"X-Received: by 2002:a17::2 with SMTP id u4mr.9.1774085058806;\r\n"
           b"        Sat, 21 Mar 2026 02:25:58 -0700 (PDT)\r\n"
           b"Received: from a.example by mx.google.com; Sat, 21 Mar 2026 09:25:57 +0000\r\n"
           b"Date: Sat, 21 Mar 2026 09:25:56 +0000\r\n\r\nbody\r\n")
    hops = received.hops(raw)
    assert [h.clock_skew for h in hops] == [False, True, False]
    assert hops[1].delay_s is None and hops[2].delay_s == 13.0


def test_a_sender_date_years_off_is_not_a_hop() -> None:
    raw = _trace("from x.example by mx.example.net; Tue, 19 Jul 2022 07:41:08 +0000",
                 date="Tue, 15 Nov 1994 08:12:31 GMT")
    chain = received.chain(raw)
    assert not chain.date_trusted and chain.hops[0].delay_s is None and chain.total_s == 0.0
    late = _trace("from x.example by mx.example.net; Tue, 19 Jul 2022 07:41:08 +0000",
                  date="Tue, 19 Jul 2022 09:41:08 +0000")   # two hours after the hop
    assert not received.chain(late).date_trusted
    # flowtest's own clock always anchors.
    assert received.hops(raw, sent_at=1658216467.5)[0].delay_s == 0.5


# ---------------------------------------------------------------- alignment (RFC 7489 §3.1, §3.2)

@pytest.mark.parametrize(("identifier", "from_domain", "mode", "expected"), [
    ("example.com", "example.com", "r", True),
    ("example.com", "example.com", "s", True),
    ("mail.example.com", "example.com", "r", True),      # subdomain: relaxed only
    ("mail.example.com", "example.com", "s", False),
    ("example.com", "news.example.com", "r", True),      # parent: relaxed only
    ("example.com", "news.example.com", "s", False),
    ("a.example.com", "b.example.com", "r", True),       # siblings share the org domain
    ("a.example.com", "b.example.com", "s", False),
    ("EXAMPLE.com.", "example.COM", "s", True),           # case and the root dot don't matter
    ("example.net", "example.com", "r", False),
    ("example.co.uk", "other.co.uk", "r", False),        # public suffix co.uk: two orgs
    ("mail.example.co.uk", "example.co.uk", "r", True),
    ("a.github.io", "b.github.io", "r", False),          # private suffix in the PSL
    ("x.a.github.io", "a.github.io", "r", True),
    ("co.uk", "example.co.uk", "r", False),              # a suffix is its own org, no parent
    ("gmail.com", "example.me", "r", False),             # Gmail send-as never aligns
    ("", "example.com", "r", False),
    ("example.com", "", "r", False),
])
def test_rfc7489_alignment_vectors(identifier: str, from_domain: str, mode: str,
                                   expected: bool) -> None:
    from flowtest.mail.dmarc import aligned

    assert aligned(identifier, from_domain, mode) is expected


def test_org_domain_vectors() -> None:
    assert org_domain("a.b.example.co.uk") == "example.co.uk"
    assert org_domain("x.a.github.io") == "a.github.io"
    assert org_domain("co.uk") == "co.uk"
    assert org_domain("mx19") == "mx19"


# ---------------------------------------------------------------- inspect: one sentence per code

def test_no_ar_at_all_is_said_plainly() -> None:
    from flowtest.mail.inspect import inspect

    raw = _trace("from x.example by mail.lfdr.de; Tue, 19 Jul 2022 07:41:08 +0000")
    result = inspect(raw)
    assert result.codes[:1] == ("RECEIVER_NO_AR",)
    assert "mail.lfdr.de" in result.findings[0].text
    assert "NO_AR" in inspect(b"From: a@b.example\r\n\r\nx").codes


def _code_cases() -> list[tuple[str, bytes, dict[str, object], str]]:
    """(code, message, inspect kwargs, a word its sentence must hold)."""
    gmail_sent = ("Received: from [10.0.0.2] by smtp.gmail.com with ESMTPSA; "
                  "Sat, 21 Mar 2026 02:25:57 -0700\r\n")
    unsigned = (gmail_sent + "X-Google-DKIM-Signature: v=1; d=1e100.net; s=2\r\n"
                "From: a@example.me\r\n\r\nx").encode()
    signed = (gmail_sent + "DKIM-Signature: v=1; a=rsa-sha256; d=gmail.com; s=20230601; "
              "h=from:sender\r\nSender: Owner <owner@gmail.com>\r\nFrom: a@example.me\r\n"
              "X-Google-Original-From: b@example.me\r\n\r\nx").encode()
    quarantined = (b"Received: from e.example (e.example [203.0.113.9]) by mx.google.com; "
                   b"Sat, 21 Mar 2026 09:25:57 +0000\r\n"
                   b"Authentication-Results: mx.google.com; arc=pass; dmarc=fail "
                   b"(p=QUARANTINE dis=QUARANTINE) header.from=example.me\r\n"
                   b"From: a@example.me\r\n\r\nx")
    rejected = quarantined.replace(b"QUARANTINE dis=QUARANTINE", b"REJECT dis=REJECT")
    junk = (MS_TOP + IDLESS + MS_ENTRY + "X-Forefront-Antispam-Report: SFV:SPM;\r\n"
            + SENDER).encode()
    skew = _trace("from B.x.example by C.x.example; Tue, 19 Jul 2022 07:41:09 +0000",
                  "from A.x.example by B.x.example; Tue, 19 Jul 2022 07:40:59 +0000",
                  "from x.example by A.x.example; Tue, 19 Jul 2022 07:41:08 +0000")
    old_date = _trace("from x.example by mx.example.net; Tue, 19 Jul 2022 07:41:08 +0000",
                      date="Tue, 15 Nov 1994 08:12:31 GMT")
    return [
        ("RECEIVER", GMAIL_BLOCK, {}, "gmail"),
        ("AUTH_RESULTS", GMAIL_BLOCK, {}, "aligned"),
        ("RELAY_CLOUDFLARE", GMAIL_BLOCK, {}, "Cloudflare"),
        ("AR_IGNORED", GMAIL_BLOCK, {}, "ignored"),
        ("HOPS", GMAIL_BLOCK, {}, "end to end"),
        ("AR_UNTRUSTED", GMAIL_BLOCK, {"provider": "yahoo"}, "trustworthy"),
        ("NO_AR", b"From: a@b.example\r\n\r\nx", {}, "unknown"),
        ("RECEIVER_NO_AR", old_date, {}, "mx.example.net"),
        ("GMAIL_UNSIGNED", unsigned, {}, "did not sign"),
        ("GMAIL_SIGNED", signed, {}, "signed for gmail.com"),
        ("SENDER_ADDED", signed, {}, "owner@gmail.com"),
        ("FROM_REWRITTEN", signed, {}, "b@example.me"),
        ("DMARC_QUARANTINED", quarantined, {}, "spam"),
        ("DMARC_REJECTED", rejected, {}, "reject"),
        ("ARC_VOUCHED", quarantined, {}, "ARC"),
        ("RECEIVER_JUNK", junk, {}, "Junk"),
        ("CLOCK_SKEW", skew, {}, "clock skew"),
        ("DATE_UNTRUSTED", old_date, {}, "Date"),
        ("RECEIVER_LATENCY", b"X-MS-Exchange-Transport-EndToEndLatency: 00:01:02.5000\r\n\r\nx",
         {}, "62.50 s"),
    ]


@pytest.mark.parametrize(("code", "raw", "kwargs", "word"), _code_cases(),
                         ids=[c[0] for c in _code_cases()])
def test_each_inspect_code_has_its_sentence(code: str, raw: bytes, kwargs: dict[str, object],
                                            word: str) -> None:
    from flowtest.mail.inspect import inspect

    result = inspect(raw, **kwargs)  # type: ignore[arg-type]
    found = [f for f in result.findings if f.code == code]
    assert found, (code, result.codes)
    assert word in found[0].text
    assert code == code.upper() and " " not in code


def test_intermediate_verdict_code() -> None:
    from flowtest.mail.inspect import inspect

    raw = (b"Received: from relay.list.example by mail.archive.example; "
           b"Tue, 19 Jul 2022 07:41:09 +0000\r\n"
           b"Received: from mail-wr1.google.com (mail-wr1.google.com [209.85.221.46]) by "
           b"relay.list.example; Tue, 19 Jul 2022 07:41:08 +0000\r\n"
           b"Authentication-Results: relay.list.example; dmarc=fail (p=none dis=none) "
           b"header.from=kernel.org\r\nFrom: a@kernel.org\r\n\r\nx")
    result = inspect(raw)
    assert "INTERMEDIATE_VERDICT" in result.codes and result.auth.dmarc.result == "fail"
    assert result.receiver is not None and not result.receiver.final


# ---------------------------------------------------------------- hostile input

@settings(max_examples=300, deadline=None)
@given(value=header_text, date=header_text)
def test_new_readers_never_raise(value: str, date: str) -> None:
    from flowtest.mail.inspect import inspect

    authresults.parse(value)
    raw = (f"Received: from {value} by {date}; {date}\r\nAuthentication-Results: {value}\r\n"
           f"X-Received: {value}.1774085158806; {date}\r\n"
           f"ARC-Authentication-Results: i=1; {value}\r\nDate: {date}\r\n"
           f"X-Forefront-Antispam-Report: {value}\r\n\r\n").encode("utf-8", "replace")
    received.chain(raw)
    for name in receivers.PROFILES:
        authresults.trusted(raw, receivers.PROFILES[name])
        authresults.intermediate(raw, receivers.PROFILES[name])
    authresults.arc_verdict(raw, "mx.cloudflare.net")
    inspect(raw)
    inspect(raw, provider="outlook")


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=3000))
def test_hostile_bytes_never_crash_inspect(raw: bytes) -> None:
    from flowtest.mail.inspect import inspect

    inspect(raw)
    received.chain(raw)


def test_a_by_inside_a_comment_is_not_the_receiving_host() -> None:
    hop = received.parse_received(
        "from mail.a.example (mail.a.example [203.0.113.7]) (Authenticated sender: by "
        "evil.example) (using TLSv1.3 (256/256 bits)) by mx.b.example (Postfix) with ESMTPS; "
        "Sat, 21 Mar 2026 09:25:55 +0000")
    assert (hop.from_, hop.by) == ("mail.a.example", "mx.b.example")
    raw = (b"Received: from e.example (Authenticated by mx.google.com) by mx.evil.example; "
           b"Sat, 21 Mar 2026 09:25:57 +0000\r\n"
           b"Authentication-Results: mx.google.com; dmarc=pass header.from=bank.example\r\n"
           b"From: a@bank.example\r\n\r\nbody\r\n")
    assert not authresults.trusted(raw, "mx.google.com").found


def test_the_first_stamp_may_precede_flowtests_accepted_time() -> None:
    # The submission server stamps during DATA, before the 250 that sent_at records.
    raw = _trace("from x.example by smtp.example.net; Tue, 19 Jul 2022 07:41:08 +0000")
    [hop] = received.hops(raw, sent_at=1658216470.4)
    assert hop.delay_s == 0.0 and not hop.clock_skew
    [hop] = received.hops(raw, sent_at=1658216488.0)
    assert hop.delay_s is None and hop.clock_skew


def test_hostile_values_come_out_short_and_on_one_line() -> None:
    from flowtest.mail.inspect import inspect

    long_host = "a" * 10_000 + ".example"
    raw = (f"Received: from x.example by {long_host}\x1b[31m; Tue, 19 Jul 2022 07:41:08 +0000\r\n"
           f"Authentication-Results: mx.google.com; spf=pass smtp.mailfrom=b@{long_host}\r\n"
           "From: a@b.example\r\n\r\nx").encode()
    result = inspect(raw)
    assert all(len(f.text) < 1000 and "\x1b" not in f.text for f in result.findings)
    assert all(len(h.by) <= 255 for h in result.hops)
