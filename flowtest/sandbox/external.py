"""The external provider of the probe account: submission with STARTTLS and
AUTH, DKIM signing, a queue that retries after 4xx, an MX that stamps its own
Authentication-Results, and IMAP."""

from __future__ import annotations

import asyncio
import time
from email.parser import BytesHeaderParser
from email.utils import formatdate, make_msgid
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from flowtest.sandbox import hosts, styles
from flowtest.sandbox.context import Context
from flowtest.sandbox.mailstore import MailStore
from flowtest.sandbox.message import crlf, prepend, random_id
from flowtest.sandbox.signing import signature
from flowtest.sandbox.smtp import (
    Outbox,
    Reply,
    SmtpServer,
    bounce_message,
    message_id_of,
    peer_ip,
    smtp_date,
)

INBOX = "INBOX"
JUNK = "Junk"
TRASH = "Trash"
SENT = "Sent"
FOLDERS = {JUNK: b"Junk", TRASH: b"Trash", SENT: b"Sent"}
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
          b"x-flowtest-probe"]


class External:
    def __init__(self, ctx: Context, *, address: str, password: str,
                 style: str = "custom") -> None:
        self.ctx = ctx
        self.address = address.lower()
        self.password = password
        # How its MX writes Authentication-Results: its own way, or a real provider's.
        self.style = style
        self.authserv_id = ctx.names.ext_mx
        self.store = MailStore(hosts.EXT_IMAP, ctx.server_tls, special_use=FOLDERS,
                               own_thread=ctx.imap_threads, **ctx.store_hooks("external"))
        self.mx = SmtpServer(hosts.EXT_MX, _Mx(self), hostname=ctx.names.ext_mx,
                             tls=ctx.server_tls)
        self.submission = SmtpServer(hosts.EXT_SMTP, _Submission(self),
                                     hostname=ctx.names.ext_smtp, tls=ctx.server_tls,
                                     require_starttls=True, authenticator=self._check_login)
        self.outbox = Outbox(ctx.relay(hosts.EXT_EGRESS, ctx.names.ext_egress),
                             party="external", truth=ctx.truth, bounce=self._bounce,
                             retry_delays=ctx.retry_delays, delay_notice=True)
        self._held: set[asyncio.Task[None]] = set()   # realistic timing: not yet sent on

    async def start(self) -> None:
        await self.store.start()
        await self.store.add_user(self.address, self.password, [JUNK, TRASH, SENT])
        await self.mx.start()
        await self.submission.start()
        self.ctx.ports[hosts.EXT_MX] = self.mx.port

    async def stop(self) -> None:
        for task in list(self._held):
            task.cancel()
        await asyncio.gather(*self._held, return_exceptions=True)
        await self.outbox.stop()
        await self.submission.stop()
        await self.mx.stop()
        await self.store.stop()

    def _check_login(self, login: str, password: str) -> str | None:
        if login.lower() != self.address or password != self.password:
            return "535 5.7.8 Authentication failed"
        return None

    async def _bounce(self, mail_from: str, rcpt: str, data: bytes, reply: Reply,
                      final: bool) -> None:
        dsn = bounce_message(reporting_mta=self.ctx.names.ext_smtp, sender=self.address,
                             rcpt=rcpt, original=data, reply=reply, final=final)
        await self.store.append(self.address, INBOX, dsn)

    async def submit(self, raw: bytes, mail_from: str, rcpts: list[str], helo: str,
                     ip: str) -> str:
        headers = BytesHeaderParser().parsebytes(raw)
        if not headers.get("Message-ID"):
            raw = prepend(raw, f"Message-ID: {make_msgid(domain=self.ctx.names.external)}")
        if not headers.get("Date"):
            raw = prepend(raw, f"Date: {formatdate(localtime=False)}")
        if self.ctx.faults.on("spoofed-ar"):
            # What a spammer (or a careless client) can write: it sits below
            # every real receiver's header and must never be believed.
            raw = prepend(raw, "Authentication-Results: mx.google.com;\r\n       dkim=pass "
                               f"header.i=@{self.ctx.names.domain};\r\n       spf=pass "
                               f"smtp.mailfrom={self.address};\r\n       dmarc=pass (p=REJECT "
                               f"sp=REJECT dis=NONE) header.from={self.ctx.names.external}")
        now = time.time()
        raw = prepend(raw, f"Received: from {helo} ({helo} [{ip}])\r\n\tby "
                           f"{self.ctx.names.ext_smtp} (flowtest sandbox) with ESMTPSA id "
                           f"{random_id(10)}\r\n\tfor <{', '.join(rcpts)}>; {smtp_date(now)}")
        domain = self.ctx.names.external
        # dkimpy's sign() tags, with the RSA step in OpenSSL (sandbox/signing.py).
        sig = await asyncio.to_thread(signature, raw, "DKIM-Signature", [
            ("v", "1"), ("a", "rsa-sha256"), ("c", "relaxed/relaxed"), ("d", domain),
            ("i", f"@{domain}"), ("q", "dns/txt"), ("s", "s1"), ("t", str(int(now))),
            ("h", ":".join(h.decode() for h in SIGNED)), ("bh", "")],
            [h.decode() for h in SIGNED], self.ctx.keys.external.private_pem, indent=" ")
        raw = sig + raw
        message_id = message_id_of(raw)
        await self.store.append(self.address, SENT, raw, flags=["\\Seen"])
        self.ctx.truth.record("submitted", "external", message_id, ",".join(rcpts))
        if self.ctx.timing is None:
            self.outbox.submit(mail_from or self.address, rcpts, raw)
        else:   # its queue holds the message a while before sending it on (issue 20)
            task = asyncio.get_running_loop().create_task(
                self._hold_then_send(mail_from or self.address, rcpts, raw, message_id))
            self._held.add(task)
            task.add_done_callback(self._held.discard)
        return f"250 2.0.0 Ok: queued as {random_id(10)}"

    async def _hold_then_send(self, mail_from: str, rcpts: list[str], raw: bytes,
                              message_id: str) -> None:
        await self.ctx.hold("sender", "external", message_id, ",".join(rcpts))
        self.outbox.submit(mail_from, rcpts, raw)

    async def receive(self, raw: bytes, *, ip: str, helo: str, mail_from: str,
                      rcpt: str) -> str:
        message_id = message_id_of(raw)
        v = await self.ctx.evaluate(raw, ip=ip, mail_from=mail_from, helo=helo)
        folder = INBOX
        if v.dmarc is not None and v.dmarc.result == "fail":
            if v.dmarc.disposition == "reject":
                reply = (f"550 5.7.26 Unauthenticated email from {v.dmarc.from_domain} is not "
                         "accepted due to domain's DMARC policy")
                self.ctx.truth.record("rejected", "external", message_id, rcpt, reply)
                return reply
            if v.dmarc.disposition == "quarantine":
                folder = JUNK
        arrival = styles.Arrival(raw=raw, v=v, ip=ip, helo=helo, mail_from=mail_from, rcpt=rcpt,
                                 own=self.authserv_id, junk=folder == JUNK, at=time.time())
        keys = self.ctx.keys
        arc_key = (keys.google_arc if self.style == "gmail" else keys.external).private_pem
        stamped = await asyncio.to_thread(styles.stamp, self.style, arrival, arc_key=arc_key)
        await self.store.append(self.address, folder, stamped, on_stored=lambda _uid: (
            self.ctx.truth.record("stored", "external", message_id, rcpt, folder)))
        return f"250 2.0.0 Ok: queued as {random_id(10)}"


class _Submission:
    def __init__(self, ext: External) -> None:
        self.ext = ext

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> Any:
        raw = crlf(bytes(envelope.original_content or b""))
        try:
            return await self.ext.submit(raw, envelope.mail_from or "", list(envelope.rcpt_tos),
                                         session.host_name or "", peer_ip(session))
        except Exception as exc:
            self.ext.ctx.failed(exc)
            return "451 4.3.0 internal error"


class _Mx:
    def __init__(self, ext: External) -> None:
        self.ext = ext

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.lower() != self.ext.address:
            return "550 5.1.1 <" + address + ">: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address.lower())
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = crlf(bytes(envelope.original_content or b""))
        try:
            reply = ""
            for rcpt in envelope.rcpt_tos:
                reply = await self.ext.receive(raw, ip=peer_ip(session),
                                               helo=session.host_name or "",
                                               mail_from=envelope.mail_from or "", rcpt=rcpt)
            return reply
        except Exception as exc:
            self.ext.ctx.failed(exc)
            return "451 4.3.0 internal error"


class ICloud:
    """iCloud Mail's MX, where a forgotten MX record still sends the domain's mail:
    the custom domain is no longer set up there, so every address is unknown."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.mx = SmtpServer(hosts.ICLOUD_MX, self, hostname="mx01.mail.icloud.com",
                             tls=ctx.server_tls)

    async def start(self) -> None:
        await self.mx.start()
        self.ctx.ports[hosts.ICLOUD_MX] = self.mx.port

    async def stop(self) -> None:
        await self.mx.stop()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        return f"550 5.1.1 <{address}>: user unknown"
