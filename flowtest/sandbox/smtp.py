"""SMTP plumbing of the sandbox: aiosmtpd servers on loopback, and the
client side of server-to-server relay (MX lookup in the sandbox's DNS, a
source address per host, STARTTLS verified against the world's CA)."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import ssl
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.resolver
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from flowtest.sandbox.truth import Truth


class _QuietLoginData(logging.Filter):
    # aiosmtpd warns about its own use of Session.login_data on every AUTH.
    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_QuietLoginData())

Authenticator = Callable[[str, str], str | None]  # (login, password) -> error reply or None


class SmtpServer:
    """An aiosmtpd server on ``host``, port 0; :attr:`port` is known after start."""

    def __init__(self, host: str, handler: Any, *, hostname: str, tls: ssl.SSLContext | None,
                 require_starttls: bool = False, authenticator: Authenticator | None = None,
                 implicit_tls: bool = False) -> None:
        self.host = host
        self.handler = handler
        self.hostname = hostname
        self.tls = tls
        self.require_starttls = require_starttls
        self.authenticator = authenticator
        self.implicit_tls = implicit_tls
        self.port = 0
        self._server: asyncio.Server | None = None
        self._protocols: list[SMTP] = []

    def _auth(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
              auth_data: Any) -> AuthResult:
        assert self.authenticator is not None
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        error = self.authenticator(login, password)
        if error is None:
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False, message=error)

    def _factory(self) -> SMTP:
        auth = self.authenticator is not None
        with warnings.catch_warnings():
            # A server without TLS but with AUTH is what a STARTTLS-stripping
            # man in the middle looks like; the sandbox builds one on purpose.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            proto = self._protocol(auth)
        self._protocols = [p for p in self._protocols if p.transport is not None]
        self._protocols.append(proto)
        return proto

    def _protocol(self, auth: bool) -> SMTP:
        return SMTP(
            self.handler,
            hostname=self.hostname,
            ident=f"{self.hostname} ESMTP",
            tls_context=None if self.implicit_tls else self.tls,
            require_starttls=self.require_starttls and not self.implicit_tls,
            auth_required=auth,
            auth_require_tls=not self.implicit_tls and self.tls is not None,
            authenticator=self._auth if auth else None,
            auth_exclude_mechanism=["CRAM-MD5"] if auth else None,
            data_size_limit=25 * 1024 * 1024,  # Cloudflare's 25 MiB message limit
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory, self.host, 0, ssl=self.tls if self.implicit_tls else None)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        tasks = []
        for proto in self._protocols:
            transport = proto.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            task = getattr(proto, "_handler_coroutine", None)
            if task is not None and not task.done():
                task.cancel()
                tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        self._protocols.clear()


def peer_ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else "127.0.0.1"


def used_tls(server: SMTP) -> bool:
    transport = server.transport
    return transport is not None and transport.get_extra_info("sslcontext") is not None


def smtp_date(at: float | None = None) -> str:
    return email.utils.formatdate(at if at is not None else time.time(), localtime=False)


def message_id_of(raw: bytes) -> str:
    from email.parser import BytesHeaderParser
    value = BytesHeaderParser().parsebytes(raw).get("Message-ID", "")
    return str(value).strip()


@dataclass(frozen=True)
class Reply:
    code: int
    text: str
    host: str = ""  # the remote server that said it

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class Relay:
    """Delivers from one sending host to the MX of a recipient's domain."""

    def __init__(self, *, source: str, helo: str, dns_server: tuple[str, int],
                 ports: dict[str, int], tls: ssl.SSLContext,
                 cache: Callable[[], dns.resolver.Cache] | None = None) -> None:
        self.source = source
        self.cache = cache  # the world's resolver cache for the zone as it is now
        self.helo = helo
        self.ports = ports
        self.tls = tls
        self.resolver = dns.asyncresolver.Resolver(configure=False)
        self.resolver.nameservers = [dns_server[0]]
        self.resolver.port = dns_server[1]
        self.resolver.lifetime = 3

    async def mx_hosts(self, domain: str) -> list[tuple[str, str]]:
        """(name, address) of the domain's MX hosts, best preference first."""
        if self.cache is not None:
            self.resolver.cache = self.cache()
        try:
            answer = await self.resolver.resolve(domain, "MX", search=False)
            exchanges = sorted((r.preference, r.exchange.to_text(omit_final_dot=True))
                               for r in answer)
            names = [name for _, name in exchanges]
        except dns.resolver.NoAnswer:
            names = [domain]  # implicit MX (RFC 5321 §5.1)
        except dns.resolver.NXDOMAIN:
            return []
        out: list[tuple[str, str]] = []
        for name in names:
            try:
                a = await self.resolver.resolve(name, "A", search=False)
            except dns.exception.DNSException:
                continue
            out.extend((name, r.address) for r in a)
        return out

    async def send(self, mail_from: str, rcpt: str, data: bytes, *, helo: str | None = None,
                   source: str | None = None) -> Reply:
        """Deliver one copy; ``helo``/``source`` override the host's own (a
        provider with many outbound hosts, such as Cloudflare)."""
        domain = rcpt.rpartition("@")[2]
        try:
            hosts = await self.mx_hosts(domain)
        except dns.exception.DNSException as exc:
            return Reply(451, f"4.4.3 DNS lookup of {domain} failed: {exc}")
        if not hosts:
            return Reply(550, f"5.1.2 no mail exchanger for {domain}")
        last = Reply(451, f"4.4.1 no MX of {domain} answered")
        tried: set[str] = set()
        for name, address in hosts:
            if address in tried:  # several MX names on one host: one attempt is enough
                continue
            tried.add(address)
            port = self.ports.get(address)
            if port is None:
                last = Reply(451, f"4.4.1 connection to {name} [{address}] refused")
                continue
            reply = await self._send_to(name, address, port, mail_from, rcpt, data,
                                        helo or self.helo, source or self.source)
            reply = Reply(reply.code, reply.text, name)
            if reply.code < 400 or reply.code >= 500 or reply.code not in (421, 451, 452):
                return reply
            last = reply
        return last

    async def _send_to(self, name: str, address: str, port: int, mail_from: str, rcpt: str,
                       data: bytes, helo: str, source: str) -> Reply:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((source, 0))
            await asyncio.wait_for(loop.sock_connect(sock, (address, port)), 5)
        except (OSError, TimeoutError) as exc:
            sock.close()
            return Reply(451, f"4.4.1 connection to {name} [{address}] failed: {exc}")
        except BaseException:  # cancelled while connecting (the world is stopping)
            sock.close()
            raise
        client = aiosmtplib.SMTP(sock=sock, hostname=name, local_hostname=helo,
                                 tls_context=self.tls, start_tls=True, timeout=30)
        transport: asyncio.BaseTransport | None = None
        try:
            await client.connect()
            transport = client.transport
            errors, response = await client.sendmail(mail_from, [rcpt], data)
            if errors:
                code, text = next(iter(errors.values()))
                return Reply(code, text)
            return Reply(250, response)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            return Reply(first.code, first.message)
        except aiosmtplib.SMTPResponseException as exc:
            return Reply(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Reply(451, f"4.4.2 connection to {name} lost: {exc}")
        finally:
            transport = client.transport or transport
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
            finally:  # also when cancelled during QUIT
                if isinstance(transport, asyncio.Transport):
                    transport.abort()
                sock.close()


BounceSink = Callable[[str, str, bytes, Reply, bool], Awaitable[None]]  # ..., final


class Outbox:
    """A provider's queue: retries after 4xx, bounces after 5xx or when too old.

    Real queues retry over minutes to days; the sandbox's schedule is short so
    tests stay fast, and configurable.
    """

    def __init__(self, relay: Relay, *, party: str, truth: Truth, bounce: BounceSink,
                 retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0),
                 max_age_s: float = 120.0, delay_notice: bool = False) -> None:
        self.relay = relay
        self.party = party
        self.truth = truth
        self.bounce = bounce
        self.retry_delays = retry_delays
        self.max_age_s = max_age_s
        # Real providers warn the sender after hours of retrying; the sandbox
        # warns after the first deferral so tests see it.
        self.delay_notice = delay_notice
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, mail_from: str, rcpts: list[str], data: bytes) -> None:
        for rcpt in rcpts:
            task = asyncio.get_running_loop().create_task(self._deliver(mail_from, rcpt, data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _deliver(self, mail_from: str, rcpt: str, data: bytes) -> None:
        message_id = message_id_of(data)
        started = time.monotonic()
        attempt = 0
        while True:
            reply = await self.relay.send(mail_from, rcpt, data)
            if reply.ok:
                self.truth.record("delivered", self.party, message_id, rcpt, str(reply))
                return
            if not reply.transient:
                self.truth.record("bounced", self.party, message_id, rcpt, str(reply))
                await self.bounce(mail_from, rcpt, data, reply, True)
                return
            self.truth.record("deferred", self.party, message_id, rcpt, str(reply))
            if attempt == 0 and self.delay_notice:
                await self.bounce(mail_from, rcpt, data, reply, False)
            delay = self.retry_delays[min(attempt, len(self.retry_delays) - 1)]
            attempt += 1
            if time.monotonic() - started + delay > self.max_age_s:
                self.truth.record("bounced", self.party, message_id, rcpt,
                                  f"gave up after {attempt} attempts: {reply}")
                await self.bounce(mail_from, rcpt, data, reply, True)
                return
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def bounce_message(*, reporting_mta: str, sender: str, rcpt: str, original: bytes,
                   reply: Reply, final: bool = True) -> bytes:
    """A delivery status notification (RFC 3464) carrying the original headers;
    ``final=False`` makes it a delay warning (Action: delayed)."""
    head, _, _ = original.partition(b"\r\n\r\n")
    boundary = f"dsn-{uuid.uuid4().hex}"
    status = reply.text.split(" ", 1)[0] if reply.text[:1].isdigit() else (
        "5.0.0" if reply.code >= 500 else "4.0.0")
    text = (
        f"From: Mail Delivery Subsystem <mailer-daemon@{reporting_mta}>\r\n"
        f"To: {sender}\r\n"
        f"Subject: Delivery Status Notification ({'Failure' if final else 'Delay'})\r\n"
        f"Date: {smtp_date()}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{reporting_mta}>\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        f"\r\n--{boundary}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + (f"Your message wasn't delivered to {rcpt}.\r\n\r\n" if final else
           f"Delivery to {rcpt} is delayed; the server will keep trying.\r\n\r\n")
        + f"The response from the remote server {reply.host} was:\r\n{reply}\r\n"
        f"\r\n--{boundary}\r\n"
        f"Content-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; {reporting_mta}\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\n"
        f"Action: {'failed' if final else 'delayed'}\r\n"
        + (f"Remote-MTA: dns; {reply.host}\r\n" if reply.host else "")
        + f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {reply}\r\n"
        f"\r\n--{boundary}\r\n"
        f"Content-Type: text/rfc822-headers\r\n\r\n"
    ).encode()
    return text + head + f"\r\n\r\n--{boundary}--\r\n".encode()
