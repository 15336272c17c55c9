"""SMTP submission: STARTTLS or implicit TLS, verified certificates, AUTH,
one session reused for many probes, retries on transient errors only, and a
timing for every step."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from types import TracebackType

import aiosmtplib
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from flowtest.config import Account, Endpoint, Timeouts, TlsSettings
from flowtest.errors import AuthError, TLSError, TransportError, Unreachable, is_transient
from flowtest.i18n import gettext as _
from flowtest.net.tls import client_context, describe
from flowtest.secrets import normalize_app_password, redact


@dataclass(frozen=True)
class Receipt:
    """What the submission server said, and when."""

    response: str
    accepted_at: float              # time.time() when the 250 to DATA arrived
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds


class Submission:
    """``async with Submission(account, ...) as s: await s.send(...)``."""

    def __init__(self, account: Account, *, tls: TlsSettings, timeouts: Timeouts,
                 local_hostname: str = "flowtest.localdomain", attempts: int = 3,
                 app_password: bool = False, interval_s: float = 0.0) -> None:
        self.account = account
        self.endpoint: Endpoint = account.smtp
        # limits.send_interval_s: pace a batch so a provider's per-minute
        # limits (Gmail's 421 4.7.0) are not what decides a sweep.
        self.interval_s = interval_s
        self._last_send = float("-inf")
        self.tls = tls
        self.timeouts = timeouts
        self.local_hostname = local_hostname
        self.attempts = attempts
        self.app_password = app_password
        self._client: aiosmtplib.SMTP | None = None
        self.session_timings: dict[str, float] = {}
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return f"SMTP {self.endpoint}"

    async def __aenter__(self) -> Submission:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def connect(self) -> None:
        ep = self.endpoint
        if ep.tls == "plain" and not self.tls.insecure:
            raise TLSError(_("refusing a plaintext SMTP connection (use --insecure to allow "
                             "it)"), endpoint=self.name)
        ctx = client_context(self.tls)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in ep.connect_host else socket.AF_INET,
                                 socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, (ep.connect_host, ep.port)),
                                       self.timeouts.connect_s)
            except BaseException:
                sock.close()
                raise
        except (OSError, TimeoutError) as exc:
            raise Unreachable(_("cannot connect: {error}").format(
                error=exc or _("timed out")), endpoint=self.name) from None
        timings["tcp"] = time.perf_counter() - t0
        client = aiosmtplib.SMTP(sock=sock, hostname=ep.host,
                                 local_hostname=self.local_hostname, tls_context=ctx,
                                 use_tls=ep.tls == "implicit", start_tls=False,
                                 timeout=self.timeouts.command_s)
        self._client = client
        try:
            t = time.perf_counter()
            await client.connect()
            timings["greeting"] = time.perf_counter() - t
            t = time.perf_counter()
            await client.ehlo()
            timings["ehlo"] = time.perf_counter() - t
            offered = client.supports_extension("starttls")
            if ep.tls == "starttls" and not offered and not self.tls.insecure:
                # A man in the middle can delete STARTTLS from EHLO (RFC 3207 §6).
                raise TLSError(_("server does not offer STARTTLS (stripped or misconfigured); "
                                 "refusing to log in in plaintext (--insecure allows it)"),
                               endpoint=self.name)
            if ep.tls == "starttls" and offered:
                t = time.perf_counter()
                await client.starttls()
                await client.ehlo()  # capabilities change after STARTTLS (RFC 3207 §4.2)
                timings["starttls"] = time.perf_counter() - t
            t = time.perf_counter()
            # The password is never a local of this frame: a traceback shown
            # with its locals (pytest -l) must not carry it. aiosmtplib logs
            # nothing; the AUTH PLAIN/LOGIN base64 that aiosmtpd's debug log
            # prints on the sandbox side is caught by secrets.redact.
            await client.login(self.account.username, self._password())
            timings["auth"] = time.perf_counter() - t
        except TLSError:
            await self.close()
            raise
        except ssl.SSLError as exc:
            await self.close()
            raise TLSError(describe(exc), endpoint=self.name) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            await self.close()
            raise AuthError(redact(exc.message.replace("\n", " ")), endpoint=self.name,
                            account=self.account.username, code=exc.code) from None
        except aiosmtplib.SMTPResponseException as exc:
            await self.close()
            raise TransportError(f"{exc.code} {redact(exc.message)}", endpoint=self.name,
                                 code=exc.code, transient=400 <= exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            if isinstance(exc.__cause__, ssl.SSLError):
                raise TLSError(describe(exc.__cause__), endpoint=self.name) from None
            # Dropped before or while the server greeted us: nothing usable answered.
            raise Unreachable(_("connection failed: {error}").format(error=redact(str(exc))),
                              endpoint=self.name) from None
        self.session_timings = timings

    def _password(self) -> str:
        password = self.account.password.reveal()
        return normalize_app_password(password) if self.app_password else password

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        transport = client.transport
        try:
            if client.is_connected:
                await asyncio.wait_for(client.quit(), 5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
        finally:
            # Closing a TLS transport starts an asynchronous TLS shutdown that a
            # finishing event loop never completes; abort releases the socket now.
            if isinstance(transport, asyncio.Transport):
                transport.abort()

    async def send(self, message: bytes, *, mail_from: str, rcpts: list[str]) -> Receipt:
        """Submit one message; reconnects and retries on transient errors only."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=0.5, max=10),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                async with self._lock:
                    wait = self._last_send + self.interval_s - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    try:
                        return await self._send_once(message, mail_from, rcpts)
                    finally:
                        self._last_send = time.monotonic()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(self, message: bytes, mail_from: str, rcpts: list[str]) -> Receipt:
        fresh = self._client is None or not self._client.is_connected
        if fresh:
            await self.connect()
        client = self._client
        assert client is not None
        timings: dict[str, float] = dict(self.session_timings) if fresh else {}
        try:
            t = time.perf_counter()
            await client.mail(mail_from)
            timings["mail"] = time.perf_counter() - t
            for rcpt in rcpts:
                t = time.perf_counter()
                await client.rcpt(rcpt)
                timings["rcpt"] = timings.get("rcpt", 0.0) + time.perf_counter() - t
            t = time.perf_counter()
            response = await client.data(message)
            timings["data"] = time.perf_counter() - t
            accepted_at = time.time()
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            raise TransportError(f"{exc.code} {redact(exc.message)}", endpoint=self.name,
                                 code=exc.code, transient=400 <= exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            raise TransportError(_("connection lost: {error}").format(error=redact(str(exc))),
                                 endpoint=self.name, transient=True) from None
        return Receipt(f"{response.code} {response.message}", accepted_at, timings)

    async def _reset(self) -> None:
        client = self._client
        if client is None:
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self.close()
