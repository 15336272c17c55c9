"""How each receiving provider stamps a message it accepts: its
Authentication-Results in its real form and position, and its own hops above
them, so the sandbox's external provider can play each profile of
flowtest.providers and flowtest's reader meets every form.

Forms follow samples/real/ and FACTS.md ("How other receivers write
Authentication-Results"). Where those say nothing (a provider's internal hops,
a failure's wording), the choice is marked unconfirmed here and listed in
docs/sandbox.md.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import uuid
from dataclasses import dataclass
from email.utils import formatdate

from flowtest.sandbox import gmail
from flowtest.sandbox.checks import Verdicts
from flowtest.sandbox.message import prepend, random_id, split
from flowtest.sandbox.signing import signature
from flowtest.sandbox.smtp import message_id_of, smtp_date

STYLES = ("custom", "gmail", "outlook", "icloud", "qq", "163", "fastmail", "yahoo")
HEX = "0123456789abcdef"

# Fastmail's ARC signer (its key is the external provider's, published under
# this selector by the sandbox's DNS).
FASTMAIL_ARC = ("messagingengine.com", "fm2")


@dataclass(frozen=True)
class Arrival:
    """A message as the provider's MX accepted it, and what it concluded."""

    raw: bytes
    v: Verdicts
    ip: str
    helo: str
    mail_from: str
    rcpt: str
    own: str             # the custom style's authserv-id (mx.<external domain>)
    junk: bool           # the provider files it as spam
    at: float


def _date(at: float, zone_hours: int = 0, comment: str = "") -> str:
    text = formatdate(at + zone_hours * 3600, localtime=False).replace(
        "-0000", f"{'+' if zone_hours >= 0 else '-'}{abs(zone_hours):02d}00")
    return text + (f" ({comment})" if comment else "")


def _b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def _fold(text: str, width: int = 78, indent: str = " ") -> str:
    """Fold at spaces (RFC 5322 §2.2.3), as most providers do."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n".join(lines)


def _dmarc(v: Verdicts) -> tuple[str, str, str]:
    """(result, header.from domain, published policy)."""
    m = v.dmarc
    return (m.result, m.from_domain, m.policy) if m else ("none", "", "none")


# -- the forms ---------------------------------------------------------------


def _custom(a: Arrival) -> bytes:
    """The sandbox's own provider: one plain header from mx.<its domain>."""
    v = a.v
    spf = v.spf
    result, domain, policy = _dmarc(v)
    clauses = [*(f"dkim={d.result} header.d={d.domain} header.s={d.selector} header.b={d.b}"
                 for d in v.dkim), *([] if v.dkim else ["dkim=none"]),
               f"spf={spf.result} smtp.mailfrom={spf.mail_from}",
               f"dmarc={result} (p={policy}) header.from={domain}" if v.dmarc else "dmarc=none"]
    if v.arc.result != "none":
        clauses.append(f"arc={v.arc.result}")
    return prepend(
        a.raw,
        f"Return-Path: <{a.mail_from}>",
        f"Received: from {a.helo} ({a.helo} [{a.ip}])\r\n\tby {a.own} (flowtest sandbox) with "
        f"ESMTPS id {random_id(10)}\r\n\tfor <{a.rcpt}>; {smtp_date(a.at)}",
        f"Authentication-Results: {a.own};\r\n\t" + ";\r\n\t".join(clauses))


def _gmail(a: Arrival, arc_key: bytes) -> bytes:
    """Gmail receiving, as on the inbound leg: its results, ARC i=1 and top hops."""
    v = a.v
    results = "mx.google.com;\r\n       " + ";\r\n       ".join(gmail.results_clauses(v, ""))
    spf_word = "neutral" if v.spf.result == "none" else v.spf.result
    msg = prepend(
        a.raw,
        f"Return-Path: <{a.mail_from}>",
        f"Received: from {a.helo} ({a.helo}. [{a.ip}])\r\n        by mx.google.com with "
        f"ESMTPS id {gmail.gmail_id('si', a.at)}\r\n        for <{a.rcpt}>\r\n        "
        f"(version=TLS1_3 cipher=TLS_AES_128_GCM_SHA256 bits=128/128);\r\n        "
        f"{gmail.pacific_date(a.at)}",
        f"Received-SPF: {spf_word} {gmail.spf_comment(v)} client-ip={a.ip};",
        f"Authentication-Results: {results}")
    msg = gmail.arc_seal(msg, results, v.arc.result, arc_key, int(a.at))
    return prepend(msg, f"Delivered-To: {a.rcpt}", gmail.internal_hop(a.at),
                   f"X-Google-Smtp-Source: AGHT+I{_b64(54)}", gmail.x_received(a.at))


def outlook_skew(message_id: str) -> int:
    """Seconds Microsoft's inner stamps run behind its edge for this message:
    0, or 8 to 11 (decided by the Message-ID, so tests can pick either)."""
    h = hashlib.sha256(message_id.strip().encode("utf-8", "replace")).digest()
    return 0 if h[0] & 1 else 8 + h[1] % 4


def _outlook(a: Arrival) -> bytes:
    """Outlook.com (samples/real/outlook-*.eml): an AR with no authserv-id
    below Microsoft's internal hops through *.outlook.office365.com,
    *.prod.outlook.com and *.protection.outlook.com; its spam verdict in
    headers appended at the bottom."""
    v = a.v
    spf = v.spf
    result, domain, _policy = _dmarc(v)
    action = {"quarantine": "quarantine", "reject": "reject"}.get(
        v.dmarc.disposition if v.dmarc and result == "fail" else "none", "none")
    if result == "pass":
        compauth = "pass reason=100"
    elif action == "none":
        compauth = "softpass reason=201"  # unconfirmed for p=none failures
    else:
        compauth = "fail reason=001"      # FACTS.md
    dkims = [f"dkim={d.result} (signature was verified) header.d={d.domain}"
             if d.result == "pass" else f"dkim={d.result} (signature did not verify) "
             f"header.d={d.domain}" for d in v.dkim] or ["dkim=none (message not signed) "
                                                      "header.d=none"]
    ar = (f"spf={spf.result} (sender IP is {a.ip}) smtp.mailfrom={spf.domain}; "
          + "; ".join(dkims) + f";dmarc={result} action={action} header.from={domain};"
          f"compauth={compauth}")
    region = random_id(2, string.ascii_uppercase) + "P279"
    edge = f"HE1EUR04FT{secrets.randbelow(900) + 100}"
    frontend = f"SV0P279CA{secrets.randbelow(9000) + 1000:04d}"
    mailbox = f"AS8PR09MB{secrets.randbelow(9000) + 1000}"
    store = f"DB6PR0902MB{secrets.randbelow(9000) + 1000}"
    tls = ("(version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)")
    ms_date = _date(a.at)
    # Microsoft's own stamps can run 8 to 11 s backwards (FACTS.md): for about
    # half the messages, chosen by Message-ID, its inner hops say so.
    inner = _date(a.at - outlook_skew(message_id_of(a.raw)))
    # Microsoft's stamps, newest on top, each hop through its own hosts.
    top = [
        _fold(f"Received: from {mailbox}.eurprd09.prod.outlook.com (2603:10a6:20b:29e::22) by "
              f"{store}.eurprd09.prod.outlook.com with HTTPS; {inner}"),
        _fold(f"Received: from {frontend}.{region}.PROD.OUTLOOK.COM (2603:10a6:f10:11::14) by "
              f"{mailbox}.eurprd09.prod.outlook.com (2603:10a6:20b:29e::22) with Microsoft "
              f"SMTP Server {tls} id 15.20.5417.20; {inner}"),
        _fold(f"Received: from {edge}.eop-eur04.prod.protection.outlook.com "
              f"(2603:10a6:f10:11:cafe::52) by {frontend}.outlook.office365.com "
              f"(2603:10a6:f10:11::14) with Microsoft SMTP Server {tls} id 15.20.5438.14 via "
              f"Frontend Transport; {inner}"),
        _fold(f"Authentication-Results: {ar}"),
        _fold(f"Received-SPF: {spf.result.capitalize()} (protection.outlook.com: domain of "
              f"{spf.domain} {'designates' if spf.result == 'pass' else 'does not designate'} "
              f"{a.ip} as permitted sender) receiver=protection.outlook.com; client-ip={a.ip}; "
              f"helo={a.helo}; pr=C"),
        _fold(f"Received: from {a.helo} ({a.ip}) by {edge}.mail.protection.outlook.com "
              f"(10.152.27.36) with Microsoft SMTP Server {tls} id 15.20.5438.12 via Frontend "
              f"Transport; {ms_date}"),
        f"X-IncomingTopHeaderMarker:\r\n OriginalChecksum:{random_id(64, HEX).upper()};"
        f"UpperCasedChecksum:{random_id(64, HEX).upper()};SizeAsReceived:{len(a.raw)};Count:"
        f"{a.raw.count(b': ')}",
    ]
    scl, dest, sfv = (5, "J", "SPM") if a.junk else (1, "I", "NSPM")
    bottom = [
        f"Return-Path: {a.mail_from}",
        "X-MS-Exchange-Organization-AuthAs: Anonymous",
        f"X-MS-Exchange-Organization-SCL: {scl}",
        f"X-Forefront-Antispam-Report:\r\n CIP:{a.ip};CTRY:;LANG:en;SCL:{scl};SRV:;IPV:NLI;"
        f"SFV:{sfv};H:{a.helo};PTR:;CAT:NONE;SFS:;DIR:INB;",
        "X-MS-Exchange-Transport-EndToEndLatency: 00:00:00.0000000",
        f"X-Microsoft-Antispam-Mailbox-Delivery:\r\n\tucf:0;jmr:0;ex:0;auth:1;dest:{dest};"
        "ENG:(5062000285)(90000117)(90010023);",
    ]
    return _append(prepend(a.raw, *top), bottom)


def _icloud(a: Arrival) -> bytes:
    """iCloud (samples/real/icloud-ar.eml, FACTS.md): one AR per method, each
    with its own authserv-id, below a domain-less gateway hop; the MX is a
    *.me.com host."""
    v = a.v
    spf = v.spf
    result, domain, _policy = _dmarc(v)
    mx = f"mr85p00im-ztdg{secrets.randbelow(10**8):08d}.me.com"  # unconfirmed name
    gateway = f"p44-mailgateway-smtp-{random_id(10, HEX)}-{random_id(5, string.ascii_lowercase)}"
    spf_word = "designates" if spf.result == "pass" else "does not designate"
    # The sandbox's keys are RSA-1024 (docs/sandbox.md); real ones say 2048-bit.
    dkims = [f"dkim={d.result} (1024-bit key) header.d={d.domain} header.i=@{d.domain} "
             f"header.b={d.b}" for d in v.dkim] or ["dkim=none"]
    return prepend(
        a.raw,
        f"Return-Path: <{a.mail_from}>",
        f"Received: from {mx} by {gateway} (mailgateway 2546B10)\r\n\twith SMTP id "
        f"{uuid.uuid4()}\r\n\tfor <{a.rcpt}>; {_date(a.at, 0, 'UTC')}",
        'Authentication-Results: bimi.icloud.com; bimi=skipped reason="insufficient dmarc"',
        f"Authentication-Results: dmarc.icloud.com; dmarc={result} header.from={domain}",
        "Authentication-Results: dkim-verifier.icloud.com;\r\n\t" + ";\r\n\t".join(dkims),
        f"Authentication-Results: spf.icloud.com; spf={spf.result} (spf.icloud.com: domain of "
        f"{spf.mail_from} {spf_word} {a.ip} as permitted sender) smtp.mailfrom={spf.mail_from}",
        f"Received: from {a.helo} ({a.helo} [{a.ip}])\r\n\tby {mx} (Postfix) with ESMTPS id "
        f"{random_id(10, HEX).upper()}\r\n\tfor <{a.rcpt}>; {_date(a.at, 0, 'UTC')}")


def _fastmail(a: Arrival, arc_key: bytes) -> bytes:
    """Fastmail (samples/real/fastmail-ar.eml): its own ARC set at i=1 with
    the AAR of mx6.messagingengine.com, then four AR headers."""
    v = a.v
    spf = v.spf
    result, domain, policy = _dmarc(v)
    sub = v.dmarc.subdomain_policy if v.dmarc else "none"
    host = "mx6.messagingengine.com"
    dkims = [f"dkim={d.result} (1024-bit rsa key sha256) header.d={d.domain}\r\n      "
             f"header.i=@{d.domain} header.b={d.b} header.a=rsa-sha256\r\n      "
             f"header.s={d.selector} x-bits=1024" for d in v.dkim] or [
        "dkim=none (no signatures found)"]
    dmarc = (f"dmarc={result} policy.published-domain-policy={policy}\r\n      "
             f"policy.published-subdomain-policy={sub}\r\n      "
             f"policy.applied-disposition={v.dmarc.disposition if v.dmarc else 'none'} "
             f"policy.evaluated-disposition={v.dmarc.disposition if v.dmarc else 'none'}"
             f"\r\n      (p={policy},sp={sub},d=none,d.eval=none) policy.policy-from=p\r\n"
             f"      header.from={domain}")
    main = [*dkims, dmarc, f"iprev=pass smtp.remote-ip={a.ip} ({a.helo})",
            f"spf={spf.result} smtp.mailfrom={spf.mail_from}\r\n      smtp.helo={a.helo}"]
    first = ["x-csa=none", "x-me-sender=none",
             f"x-ptr=pass smtp.helo={a.helo}\r\n      policy.ptr={a.helo}"]
    bimi = "bimi=skipped (DMARC Policy is not at enforcement)"
    arc = f"arc={v.arc.result} (no signatures found)" if v.arc.result == "none" else (
        f"arc={v.arc.result}")
    msg = prepend(
        a.raw,
        f"Received: from {a.helo} ({a.helo} [{a.ip}])\r\n\tby {host} (Postfix) with ESMTPS\r\n\t"
        f"for <{a.rcpt}>; {_date(a.at, -5, 'EST')}")
    msg = prepend(
        msg,
        f"Authentication-Results: {host};\r\n    " + ";\r\n    ".join(first),
        f"Authentication-Results: {host};\r\n    {bimi}",
        f"Authentication-Results: {host};\r\n    {arc}",
        f"Authentication-Results: {host};\r\n    " + ";\r\n    ".join(main))
    aar_clauses = ";\r\n    ".join([*first, bimi, arc, *main])
    aar = f"ARC-Authentication-Results: i=1; {host};\r\n    {aar_clauses}\r\n".encode()
    names = ["date", "from", "to", "subject", "message-id", "mime-version", "content-type"]
    d, s = FASTMAIL_ARC
    ams = signature(aar + msg, "ARC-Message-Signature", [
        ("i", "1"), ("a", "rsa-sha256"), ("c", "relaxed/relaxed"), ("d", d), ("h", ":".join(
            names)), ("s", s), ("t", str(int(a.at))), ("bh", "")], names, arc_key)
    seal = signature(ams + aar + msg, "ARC-Seal", [
        ("i", "1"), ("a", "rsa-sha256"), ("cv", "none"), ("d", d), ("s", s),
        ("t", str(int(a.at)))], ["arc-authentication-results", "arc-message-signature"], arc_key)
    msg = seal + ams + aar + msg
    return prepend(
        msg,
        f"Received: from {host} (localhost [127.0.0.1])\r\n\tby {host} (Authentication Milter) "
        f"with ESMTP\r\n\tid {random_id(10, HEX).upper()};\r\n\t{_date(a.at, -5, 'EST')}")


def _yahoo(a: Arrival) -> bytes:
    """Yahoo (samples/real/yahoo-ar.eml): authserv-id atlasNNN…yahoo.com,
    dkim by header.i only, dmarc's comment glued to the result, a trailing ;."""
    v = a.v
    spf = v.spf
    result, domain, policy = _dmarc(v)
    sub = v.dmarc.subdomain_policy if v.dmarc else "none"
    atlas = f"atlas{secrets.randbelow(300) + 100}.free.mail.bf1.yahoo.com"
    clauses = [f"dkim={d.result} header.i=@{d.domain} header.s={d.selector}" for d in v.dkim]
    clauses += [f"spf={spf.result} smtp.mailfrom={spf.domain}",
                f"dmarc={result}(p={policy.upper()},sp={sub.upper()}) header.from={domain}"
                if v.dmarc else f"dmarc=unknown header.from={domain}"]
    mta = f"mta{secrets.randbelow(9000) + 1000}.mail.bf1.yahoo.com"  # unconfirmed hops
    return prepend(
        a.raw,
        f"Received: from 10.217.{secrets.randbelow(255)}.{secrets.randbelow(255)}\r\n by "
        f"{atlas} with HTTP; {_date(a.at)}",
        f"Authentication-Results: {atlas};\r\n " + ";\r\n ".join(clauses) + ";",
        f"Received-SPF: {spf.result} (domain of {spf.domain} designates {a.ip} as permitted "
        "sender)",
        f"X-Originating-Ip: [{a.ip}]",
        f"Received: from {a.helo} (EHLO {a.helo}) ({a.ip})\r\n by {mta} with SMTPS; "
        f"{_date(a.at)}")


def _qq(a: Arrival) -> bytes:
    """QQ Mail (samples/real/qq-ar.eml): its MX hop on top, X-QQ-*, then
    mx.qq.com's AR; dates in +0800."""
    v = a.v
    spf = v.spf
    result, domain, _policy = _dmarc(v)
    dkims = [f"dkim={d.result} header.i=@{d.domain}" for d in v.dkim] or ["dkim=none"]
    dmarc = f"dmarc={result} header.from={domain}" if v.dmarc else (
        f"dmarc=none(permerror) header.from={domain}")
    return prepend(
        a.raw,
        f"Received: from {a.helo} ([{a.ip}])\r\n\tby newxmmxszc6-1.qq.com (NewMX) with SMTP id "
        f"{random_id(8, HEX).upper()}\r\n\tfor <{a.rcpt}>; {_date(a.at, 8)}",
        f"X-QQ-mid: xmmxszc6-1t{int(a.at)}t{random_id(7, string.ascii_lowercase + '0123456789')}",
        f"X-QQ-XMRINFO: {_b64(18)}",
        f"Authentication-Results: mx.qq.com; spf={spf.result} smtp.mailfrom={spf.mail_from};\r\n"
        f"\t " + "; ".join([*dkims, dmarc]))


def _coremail_fold(text: str) -> str:
    """Coremail folds at a fixed width wherever it falls, even inside a token
    (samples/real/netease-ar.eml: ``dkim=\\r\\n\\tpass``)."""
    lines = [text[:70]]
    rest = text[70:]
    while rest:
        lines.append("\t" + rest[:70])
        rest = rest[70:]
    return "\r\n".join(lines)


def _netease(a: Arrival) -> bytes:
    """NetEase 163/126 (Coremail, samples/real/netease-ar.eml): its hop on top,
    by a bare host ``mx19``; the AR (``smtp.mail=``, no dmarc clause) and
    X-CM-TRANSID appended below the message's own headers."""
    v = a.v
    transid = (f"{random_id(12, string.ascii_letters + string.digits)}--."
               f"{secrets.randbelow(99999)}S3")
    clauses = [f"spf={v.spf.result} smtp.mail={v.spf.mail_from}",
               *(f"dkim={d.result} header.i=@{d.domain}" for d in v.dkim)]
    msg = prepend(
        a.raw,
        f"Received: from {a.helo} (unknown [{a.ip}])\r\n\tby mx19 (Coremail) with SMTP id "
        f"{transid};\r\n\t{_date(a.at, 8, 'CST')}")
    return _append(msg, [
        f"X-CM-TRANSID:{transid}",
        _coremail_fold("Authentication-Results: mx19; " + "; ".join(clauses)),
        "X-Coremail-Antispam: 1Uf129KBjDUn29KB7ZKAUJUUUUU529EdanIXcx71UUUUU7v73\r\n"
        "\tVFW2AGmfu7bjvjm3AaLaJ3UbIYCTnIWIevJa73UjIFyTuYvjxUh8sqDUUUU"])


def _append(raw: bytes, fields: list[str]) -> bytes:
    """Add header fields at the bottom of the header block."""
    head, body = split(raw)
    block = "".join(f.rstrip("\r\n") + "\r\n" for f in fields).encode("utf-8")
    return head + block + b"\r\n" + body


def stamp(style: str, a: Arrival, *, arc_key: bytes) -> bytes:
    """The message as the provider of ``style`` stores it."""
    if style == "gmail":
        return _gmail(a, arc_key)
    if style == "outlook":
        return _outlook(a)
    if style == "icloud":
        return _icloud(a)
    if style == "fastmail":
        return _fastmail(a, arc_key)
    if style == "yahoo":
        return _yahoo(a)
    if style == "qq":
        return _qq(a)
    if style == "163":
        return _netease(a)
    return _custom(a)

