"""Gmail: the MX that stamps mx.google.com's Authentication-Results and ARC
i=N+1, the submission server smtp.gmail.com with app passwords and
Send-mail-as, and imap.gmail.com."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import secrets
import string
import time
from email.parser import BytesHeaderParser
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from flowtest.sandbox import hosts
from flowtest.sandbox.checks import Verdicts
from flowtest.sandbox.context import Context
from flowtest.sandbox.mailstore import MailStore
from flowtest.sandbox.message import crlf, prepend, random_id, replace_header
from flowtest.sandbox.signing import body_hash, fold_tags, header_names, signature
from flowtest.sandbox.smtp import (
    Outbox,
    Reply,
    SmtpServer,
    bounce_message,
    message_id_of,
    peer_ip,
)

INBOX = "INBOX"
SPAM = "[Gmail]/Spam"
TRASH = "[Gmail]/Trash"
SENT = "[Gmail]/Sent Mail"
FOLDERS = {SPAM: b"Junk", TRASH: b"Trash", SENT: b"Sent"}
# Gmail's words when an account has sent to its daily quota of recipients.
SEND_LIMIT = ("550 5.4.5 Daily user sending limit exceeded. For more information on Gmail "
              "sending limits go to https://support.google.com/mail/?p=ReachedSendingLimit "
              "- gsmtp")
# What Gmail's send-as signatures cover (samples/real/sendas-*.eml): the
# present ones bottom-up, then from:to:cc:subject:date:message-id:reply-to
# again, signed as absent so nobody can add a second one.
GMAIL_SIGNABLE = ("in-reply-to", "content-transfer-encoding", "content-disposition",
                  "mime-version", "references", "message-id", "subject", "cc", "to", "from",
                  "date", "sender", "reply-to", "x-google-original-from")
GMAIL_FROZEN = ("from", "to", "cc", "subject", "date", "message-id", "reply-to")
# What its ARC-Message-Signature covers on receipt (samples/real/cf-gmail-*.eml).
GMAIL_ARC_SIGNABLE = ("date", "from", "reply-to", "to", "cc", "message-id", "in-reply-to",
                      "references", "subject", "mime-version", "content-transfer-encoding",
                      "precedence", "list-id", "list-archive", "list-post", "list-unsubscribe",
                      "list-unsubscribe-post", "feedback-id", "sender", "dkim-signature")
WEEK = 7 * 86400
GMAIL_INDENT = " " * 8  # Gmail folds its headers with eight spaces

BAD_CREDENTIALS = ("535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
                   "535 5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp")
TEMPFAIL = ("421 4.7.0 Try again later, closing connection. (EHLO) For more information, go to "
            "https://support.google.com/mail/answer/7720 - gsmtp")


def pacific_date(at: float) -> str:
    """Gmail's trace dates: Pacific time with a zone comment (FACTS.md)."""
    return formatdate(at - 8 * 3600, localtime=False).replace("-0000", "-0800") + " (PST)"


def gmail_id(kind: str = "sor", at: float | None = None) -> str:
    """Gmail's SMTP ids: ``d9443c01a7336-2949aada82fsi4765095ad.288.2025.10.24.21.54.52``
    (``si`` on its MX, ``sm`` on smtp.gmail.com: the date is Pacific time)."""
    base = (f"d9443c01a7336-{random_id(11, '0123456789abcdef')}"
            f"{kind}{secrets.randbelow(10**7)}ad.{secrets.randbelow(300)}")
    if at is None:
        return base
    return base + "." + time.strftime("%Y.%m.%d.%H.%M.%S", time.gmtime(at - 8 * 3600))


def _b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def internal_hop(at: float) -> str:
    """The hop inside Gmail on top of every stored message (samples/real/cf-gmail-*)."""
    return (f"Received: by 2002:a17:907:{random_id(4, '0123456789abcdef')}:b0:"
            f"{random_id(3, '0123456789abcdef')}:{random_id(4, '0123456789abcdef')}:"
            f"{random_id(4, '0123456789abcdef')} with SMTP id "
            f"{random_id(2, string.ascii_lowercase)}"
            f"{secrets.randbelow(99)}csp{secrets.randbelow(10**7)}ejc;\r\n        "
            f"{pacific_date(at)}")


def x_received(at: float) -> str:
    """X-Received, its id ending in a millisecond Unix time (FACTS.md)."""
    return (f"X-Received: by 2002:a17:90b:3ec3:b0:{random_id(3, '0123456789abcdef')} with SMTP "
            f"id {random_id(6, string.ascii_lowercase)}mr{secrets.randbelow(10**8)}"
            f"ad.{secrets.randbelow(99)}.{int(at * 1000)};\r\n        {pacific_date(at)}")


def present_bottom_up(msg: bytes, signable: tuple[str, ...]) -> list[str]:
    """The signable header names present in ``msg``, bottom-up, one per field
    (how Gmail lists them in h=)."""
    return [n.lower() for n in reversed(header_names(msg)) if n.lower() in signable]


def spf_comment(v: Verdicts) -> str:
    """Gmail's comment on its SPF result, in its words (FACTS.md)."""
    s = v.spf
    who = s.mail_from.lower() or f"postmaster@{s.domain}"
    if s.result == "pass":
        return f"(google.com: domain of {who} designates {s.ip} as permitted sender)"
    if s.result == "softfail":
        return (f"(google.com: domain of transitioning {who} does not designate {s.ip} as "
                "permitted sender)")
    if s.result == "fail":
        return f"(google.com: domain of {who} does not designate {s.ip} as permitted sender)"
    if s.result == "none":
        return (f"(google.com: {s.ip} is neither permitted nor denied by best guess record for "
                f"domain of {who})")
    if s.result == "permerror":
        return f"(google.com: permanent error in processing during lookup of {who})"
    if s.result == "temperror":
        return f"(google.com: error in processing during lookup of {who}: DNS error)"
    return f"(google.com: {s.ip} is neither permitted nor denied by domain of {who})"


def _mailfrom(address: str) -> str:
    # Gmail quotes smtp.mailfrom when it contains "=" (SRS addresses).
    return f'"{address}"' if "=" in address else address


_AAR_RE = re.compile(r"\b(spf|dkim|dmarc)=(\w+)")
_AAR_DOMAIN = {"spf": r"smtp\.mailfrom=\"?[^@\s;]*@?([^\s;\"]+)",
               "dkim": r"header\.(?:d|i)=@?([^\s;]+)", "dmarc": r"header\.from=([^\s;]+)"}


def _arc_comment(raw: bytes) -> str:
    """``arc=pass (i=1 spf=pass spfdomain=… dkim=pass dkdomain=… dmarc=pass fromdomain=…)``."""
    headers = BytesHeaderParser().parsebytes(raw)
    for value in headers.get_all("ARC-Authentication-Results") or []:
        text = " ".join(str(value).split())
        if not text.startswith("i=1;"):
            continue
        found: dict[str, str] = {}
        for clause in text.split(";")[2:]:
            m = _AAR_RE.search(clause)
            if not m or m.group(1) in found:
                continue
            if m.group(1) == "spf" and "smtp.mailfrom=" not in clause:
                continue  # Cloudflare's HELO clause: Gmail repeats the MAIL FROM one
            method, result = m.groups()
            dm = re.search(_AAR_DOMAIN[method], clause)
            domain = dm.group(1) if dm else ""
            key = {"spf": "spfdomain", "dkim": "dkdomain", "dmarc": "fromdomain"}[method]
            found[method] = f"{method}={result} {key}={domain}" if domain else f"{method}={result}"
        return " ".join(["i=1", *(found[m] for m in ("spf", "dkim", "dmarc") if m in found)])
    return ""


def results_clauses(v: Verdicts, arc_comment: str) -> list[str]:
    out = []
    for d in v.dkim:
        reason = f" ({d.reason})" if d.result != "pass" and d.reason else ""
        out.append(f"dkim={d.result}{reason} header.i=@{d.domain} header.s={d.selector} "
                   f"header.b={d.b}")
    if v.arc.result != "none":
        comment = f" ({arc_comment})" if arc_comment and v.arc.result == "pass" else (
            " (signature failed)" if v.arc.result == "fail" else "")  # FACTS.md
        out.append(f"arc={v.arc.result}{comment}")
    out.append(f"spf={'neutral' if v.spf.result == 'none' else v.spf.result} {spf_comment(v)} "
               f"smtp.mailfrom={_mailfrom(v.spf.mail_from)}")
    if v.dmarc is not None:
        m = v.dmarc
        out.append(f"dmarc={m.result} (p={m.policy.upper()} sp={m.subdomain_policy.upper()} "
                   f"dis={m.disposition.upper()}) header.from={m.from_domain}")
    return out


class Gmail:
    def __init__(self, ctx: Context, *, address: str, app_password: str,
                 send_as: list[str], signs_send_as: bool = True,
                 default_from: str | None = None) -> None:
        self.ctx = ctx
        self.address = address
        self.app_password = app_password.replace(" ", "")
        self.send_as = {a.lower() for a in send_as}
        # Both forms are seen in 2026 (FACTS.md): d=gmail.com and Sender:, or
        # no DKIM-Signature at all. The fault sendas-unsigned forces the second.
        self.signs_send_as = signs_send_as
        # The account's default sending identity: where an unverified From goes.
        self.default_from = (default_from or address).lower()
        self.sent_ids: set[str] = set()
        self.store = MailStore(hosts.GMAIL_IMAP, ctx.server_tls, special_use=FOLDERS,
                               refuse_login=lambda: ctx.faults.on("bad-app-password"),
                               strip_spaces=True, own_thread=ctx.imap_threads,
                               **ctx.store_hooks("gmail"))
        self.mx = SmtpServer(hosts.GMAIL_MX, _MxHandler(self), hostname="mx.google.com",
                             tls=ctx.server_tls)
        self.submission = SmtpServer(hosts.GMAIL_SMTP, _SubmissionHandler(self),
                                     hostname="smtp.gmail.com", tls=ctx.server_tls,
                                     require_starttls=True, authenticator=self._check_login)
        self.outbox = Outbox(ctx.relay(hosts.GMAIL_EGRESS, hosts.GMAIL_EGRESS_NAME),
                             party="gmail", truth=ctx.truth, bounce=self._bounce,
                             retry_delays=ctx.retry_delays)

    async def start(self) -> None:
        await self.store.start()
        await self.store.add_user(self.address, self.app_password, [SPAM, TRASH, SENT])
        await self.mx.start()
        await self.submission.start()
        self.ctx.ports[hosts.GMAIL_MX] = self.mx.port

    async def stop(self) -> None:
        await self.outbox.stop()
        await self.submission.stop()
        await self.mx.stop()
        await self.store.stop()

    def _check_login(self, login: str, password: str) -> str | None:
        if self.ctx.faults.on("bad-app-password"):
            return BAD_CREDENTIALS
        if login.lower() != self.address or password.replace(" ", "") != self.app_password:
            return BAD_CREDENTIALS
        return None

    async def _bounce(self, mail_from: str, rcpt: str, data: bytes, reply: Reply,
                      final: bool) -> None:
        dsn = bounce_message(reporting_mta="googlemail.com", sender=self.address, rcpt=rcpt,
                             original=data, reply=reply, final=final)
        await self.store.append(self.address, INBOX, dsn)

    # -- receiving -------------------------------------------------------------

    async def receive(self, raw: bytes, *, ip: str, helo: str, mail_from: str,
                      rcpt: str) -> str:
        message_id = message_id_of(raw)
        if message_id and message_id in self.sent_ids:
            # The account's own message coming back through forwarding: Gmail
            # keeps only the Sent copy (FACTS.md, "the same-account trap").
            self.ctx.truth.record("dropped", "gmail", message_id, rcpt, "duplicate of sent mail")
            return "250 2.0.0 OK - gsmtp"
        if self.ctx.faults.on("gmail-silent-discard"):
            # 250 to the sender and filed nowhere (FACTS.md: 3 of 19 messages
            # Cloudflare logged as delivered were in no Gmail folder).
            self.ctx.truth.record("dropped", "gmail", message_id, rcpt, "silent discard")
            return "250 2.0.0 OK " + str(int(time.time())) + " " + random_id(12) + " - gsmtp"
        v = await self.ctx.evaluate(raw, ip=ip, mail_from=mail_from, helo=helo)
        arc_trusted = v.arc.result == "pass"
        folder = INBOX
        if v.dmarc is not None and v.dmarc.result == "fail" and not arc_trusted:
            if v.dmarc.disposition == "reject":
                reply = (f"550-5.7.26 Unauthenticated email from {v.dmarc.from_domain} is not "
                         "accepted due to domain's\r\n550 5.7.26 DMARC policy. - gsmtp")
                self.ctx.truth.record("rejected", "gmail", message_id, rcpt, reply)
                return reply
            if v.dmarc.disposition == "quarantine":
                folder = SPAM
        elif v.dmarc is not None and v.dmarc.result == "fail":
            # A trusted ARC chain (the forwarder vouched for it) overrides the
            # policy, and Gmail reports what it did: dis=NONE.
            v = dataclasses.replace(v, dmarc=dataclasses.replace(v.dmarc, disposition="none"))
        if self.ctx.faults.on("spam"):
            folder = SPAM
        stamped = await asyncio.to_thread(self._stamp, raw, v, ip, helo, mail_from, rcpt)
        if self.ctx.faults.on("imap-drop"):
            self.store.drop_connections()
        # From its MX to storage (realistic timing only).
        await self.ctx.hold("gmail", "gmail", message_id, rcpt)
        now = time.time()
        # Gmail's top, as in samples/real/cf-gmail-*.eml: Delivered-To, its
        # internal hop, X-Google-Smtp-Source, X-Received, then the ARC set.
        stamped = prepend(stamped, f"Delivered-To: {rcpt}", internal_hop(now),
                          f"X-Google-Smtp-Source: AGHT+I{_b64(54)}", x_received(now))
        await self.store.append(self.address, folder, stamped, on_stored=lambda _uid: (
            self.ctx.truth.record("stored", "gmail", message_id, rcpt, folder)))
        return "250 2.0.0 OK " + str(int(now)) + " " + random_id(12) + " - gsmtp"

    def _stamp(self, raw: bytes, v: Verdicts, ip: str, helo: str, mail_from: str,
               rcpt: str) -> bytes:
        now = time.time()
        clauses = results_clauses(v, _arc_comment(raw))
        results = "mx.google.com;\r\n       " + ";\r\n       ".join(clauses)
        spf_word = "neutral" if v.spf.result == "none" else v.spf.result
        msg = prepend(
            raw,
            f"Return-Path: <{mail_from}>",
            f"Received: from {helo} ({helo}. [{ip}])\r\n        by mx.google.com with ESMTPS id "
            f"{gmail_id('si', now)}\r\n        for <{rcpt}>\r\n        (version=TLS1_3 "
            f"cipher=TLS_AES_128_GCM_SHA256 bits=128/128);\r\n        {pacific_date(now)}",
            f"Received-SPF: {spf_word} {spf_comment(v)} client-ip={ip};",
            f"Authentication-Results: {results}",
        )
        return arc_seal(msg, results, v.arc.result, self.ctx.keys.google_arc.private_pem,
                        int(now))

    # -- sending ---------------------------------------------------------------

    @property
    def signing(self) -> bool:
        return self.signs_send_as and not self.ctx.faults.on("sendas-unsigned")

    def verified(self, address: str) -> bool:
        """Whether Gmail sends as ``address`` (a verified Send-mail-as address)."""
        if address in (self.address, self.default_from):
            return True
        return address in self.send_as and not self.ctx.faults.on("sendas-unverified")

    async def submit(self, raw: bytes, rcpts: list[str], helo: str, ip: str) -> str:
        headers = BytesHeaderParser().parsebytes(raw)
        from_values = [str(v) for v in headers.get_all("From") or []]
        addresses = [a for _, a in getaddresses(from_values) if a]
        from_addr = addresses[0].lower() if addresses else self.address
        signing = self.signing
        rewritten = not self.verified(from_addr)
        if rewritten:
            # Not a verified Send-mail-as address: Gmail sends as the account's
            # default identity (maybe another alias) and says so (FACTS.md).
            raw = replace_header(raw, "From", self.default_from,
                                 add=f"X-Google-Original-From: {from_values[0]}")
            from_addr = self.default_from
        if not headers.get("Message-ID"):
            raw = prepend(raw, f"Message-ID: {make_msgid(domain='mail.gmail.com')}")
        if not headers.get("Date"):
            raw = prepend(raw, f"Date: {formatdate(localtime=False)}")
        if (rewritten or (signing and from_addr != self.address)) and not headers.get("Sender"):
            # samples/real/sendas-2.eml: Sender: on top of the user's headers.
            raw = prepend(raw, f"Sender: <{self.address}>")
        now = time.time()
        raw = prepend(
            raw,
            f"X-Google-Smtp-Source: AGHT+I{_b64(66)}",
            x_received(now),
            f"Received: from {helo} ([{ip}])\r\n        by smtp.gmail.com with ESMTPSA id "
            f"{gmail_id('sm', now)}\r\n        (version=TLS1_3 "
            f"cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\r\n        {pacific_date(now)}")
        raw = prepend(raw, f"X-Gm-Message-State: AOJu0Y{_b64(57)}")
        raw = await asyncio.to_thread(self._sign, raw, rcpts, int(now), signing)
        message_id = message_id_of(raw)
        self.sent_ids.add(message_id)
        await self.store.append(self.address, SENT, raw, flags=["\\Seen"])
        self.ctx.truth.record("submitted", "gmail", message_id, ",".join(rcpts))
        # The hop out of Gmail, on top of what the receiver gets.
        for_rcpt = f"\r\n        for <{rcpts[0]}>" if len(rcpts) == 1 else ""
        raw = prepend(raw, f"Received: by {hosts.GMAIL_EGRESS_NAME} with SMTP id "
                           f"{gmail_id('so')}{for_rcpt};\r\n        {pacific_date(now)}")
        # Gmail's envelope sender is always the account (FACTS.md).
        self.outbox.submit(self.address, rcpts, raw)
        return f"250 2.0.0 OK  {int(now)} {gmail_id('sm')} - gsmtp"

    def _sign(self, raw: bytes, rcpts: list[str], now: int, signing: bool) -> bytes:
        """X-Google-DKIM-Signature (d=1e100.net) always; DKIM-Signature
        (d=gmail.com, ``sender`` in h=) only in the signed form. Nobody checks
        the 1e100.net one, so its b= is random bytes of the right length."""
        present = present_bottom_up(raw, GMAIL_SIGNABLE)
        tags = [("v", "1"), ("a", "rsa-sha256"), ("c", "relaxed/relaxed"), ("d", "1e100.net"),
                ("s", "20230601"), ("t", str(now)), ("x", str(now + WEEK)),
                ("h", ":".join([*present, "x-gm-message-state", *GMAIL_FROZEN])),
                ("bh", body_hash(raw))]
        sig = _b64(256)
        x_google = (fold_tags("X-Google-DKIM-Signature", tags, GMAIL_INDENT) + "\r\n"
                    + GMAIL_INDENT + "b=" + ("\r\n" + GMAIL_INDENT + " ").join(
                        sig[i:i + 70] for i in range(0, len(sig), 70)))
        raw = prepend(raw, x_google)
        if not signing:
            return raw
        names = [*present, *GMAIL_FROZEN]
        darn = rcpts[0].rpartition("@")[2] if rcpts else ""
        return signature(raw, "DKIM-Signature", [
            ("v", "1"), ("a", "rsa-sha256"), ("c", "relaxed/relaxed"), ("d", "gmail.com"),
            ("s", "20230601"), ("t", str(now)), ("x", str(now + WEEK)),
            *([("darn", darn)] if darn else []), ("h", ":".join(names)), ("bh", "")],
            names, self.ctx.keys.gmail.private_pem, indent=GMAIL_INDENT) + raw


def arc_seal(msg: bytes, results: str, cv: str, key_pem: bytes, now: int) -> bytes:
    """Gmail's ARC set on receipt (samples/real/cf-gmail-*.eml): ARC-Seal,
    ARC-Message-Signature, ARC-Authentication-Results on top, the AAR word for
    word its AR; instance one above the highest already there."""
    instances = [int(m) for m in re.findall(rb"(?im)^arc-seal:[^\r\n]*?\bi=(\d+)", msg)]
    instance = max(instances, default=0) + 1
    cv = {"pass": "pass", "fail": "fail"}.get(cv, "none") if instance > 1 else "none"
    aar = f"ARC-Authentication-Results: i={instance}; {results}\r\n".encode()
    names = present_bottom_up(msg, GMAIL_ARC_SIGNABLE)
    ams = signature(aar + msg, "ARC-Message-Signature", [
        ("i", str(instance)), ("a", "rsa-sha256"), ("c", "relaxed/relaxed"), ("d", "google.com"),
        ("s", "arc-20240605"), ("h", ":".join(names)), ("bh", "")], names, key_pem,
        indent=GMAIL_INDENT)
    # The seal covers every earlier set in order (RFC 8617 §5.1.1), only its own
    # when the chain failed.
    sealed: list[str] = []
    base = msg
    if cv == "fail":
        base = replace_header(replace_header(replace_header(
            msg, "ARC-Seal", None), "ARC-Message-Signature", None),
            "ARC-Authentication-Results", None)
    else:
        sealed = ["arc-authentication-results", "arc-message-signature",
                  "arc-seal"] * (instance - 1)
    seal = signature(ams + aar + base, "ARC-Seal", [
        ("i", str(instance)), ("a", "rsa-sha256"), ("t", str(now)), ("cv", cv),
        ("d", "google.com"), ("s", "arc-20240605")],
        [*sealed, "arc-authentication-results", "arc-message-signature"], key_pem,
        indent=GMAIL_INDENT)
    return seal + ams + aar + msg


class _MxHandler:
    def __init__(self, gmail: Gmail) -> None:
        self.gmail = gmail

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.gmail.ctx.faults.on("gmail-tempfail"):
            return TEMPFAIL
        if address.lower() != self.gmail.address:
            return ("550-5.1.1 The email account that you tried to reach does not exist.\r\n"
                    "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser - gsmtp")
        envelope.rcpt_tos.append(address.lower())
        return "250 2.1.5 OK - gsmtp"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = crlf(bytes(envelope.original_content or b""))
        try:
            reply = ""
            for rcpt in envelope.rcpt_tos:
                reply = await self.gmail.receive(raw, ip=peer_ip(session),
                                                 helo=session.host_name or "",
                                                 mail_from=envelope.mail_from or "", rcpt=rcpt)
            return reply
        except Exception as exc:
            self.gmail.ctx.failed(exc)
            return "451 4.3.0 Temporary System Problem. Try again later. - gsmtp"


class _SubmissionHandler:
    def __init__(self, gmail: Gmail) -> None:
        self.gmail = gmail

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> Any:
        raw = crlf(bytes(envelope.original_content or b""))
        if self.gmail.ctx.faults.on("gmail-send-limit"):
            return SEND_LIMIT
        try:
            return await self.gmail.submit(raw, list(envelope.rcpt_tos),
                                           session.host_name or "", peer_ip(session))
        except Exception as exc:
            self.gmail.ctx.failed(exc)
            return "451 4.3.0 Temporary System Problem. Try again later. - gsmtp"
