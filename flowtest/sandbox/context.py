"""What every party of the world shares."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dns.resolver

from flowtest.sandbox import checks
from flowtest.sandbox.checker import Checker
from flowtest.sandbox.faults import Faults
from flowtest.sandbox.hosts import Names
from flowtest.sandbox.keys import Keyring
from flowtest.sandbox.smtp import Relay
from flowtest.sandbox.timing import Timing
from flowtest.sandbox.truth import Truth

_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*(<[^>\r\n]*>)")


@dataclass
class Context:
    names: Names
    keys: Keyring
    faults: Faults
    truth: Truth
    server_tls: ssl.SSLContext
    client_tls: ssl.SSLContext
    dns_server: tuple[str, int]
    ports: dict[str, int] = field(default_factory=dict)  # address -> port: "port 25"
    retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0)
    errors: list[BaseException] = field(default_factory=list)
    timing: Timing | None = None   # realistic hop delays (issue 20); None: as fast as it goes
    # The resolver cache for the zone as it is now (world.py); None: a fresh
    # cache per message's checks.
    dns_cache: Callable[[], dns.resolver.Cache] | None = None
    # IMAP servers on event loops in threads of their own (mailstore.py).
    imap_threads: bool = False
    # The checks in a worker process (sandbox/checker.py), with what the
    # zone's answers depend on now (its resolver cache follows it).
    checker: Checker | None = None
    zone: Callable[[], object] | None = None

    def store_hooks(self, party: str) -> dict[str, Any]:
        """Callbacks for a MailStore that put its clients' view into the truth:
        when a SEARCH or FETCH first listed each message, and connections opening and
        closing (with how many are open)."""
        listed: set[str] = set()

        def on_listed(raw: bytes) -> None:
            match = _MESSAGE_ID.search(raw, 0, 64 * 1024)
            message_id = match.group(1).decode("ascii", "replace") if match else ""
            if message_id and message_id not in listed:
                listed.add(message_id)
                self.truth.record("listed", party, message_id)

        def on_connection(kind: str, open_now: int) -> None:
            self.truth.record(kind, party, "", detail=str(open_now))

        hooks: dict[str, Callable[..., None]] = {"on_listed": on_listed,
                                                 "on_connection": on_connection}
        return hooks

    def resolver(self) -> dns.resolver.Resolver:
        """A blocking resolver on the world's DNS, for the checking libraries."""
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [self.dns_server[0]]
        r.port = self.dns_server[1]
        r.lifetime = 3
        if self.dns_cache is not None:
            r.cache = self.dns_cache()
        return r

    def relay(self, source: str, helo: str) -> Relay:
        return Relay(source=source, helo=helo, dns_server=self.dns_server, ports=self.ports,
                     tls=self.client_tls, cache=self.dns_cache)

    async def evaluate(self, raw: bytes, *, ip: str, mail_from: str,
                       helo: str) -> checks.Verdicts:
        if self.checker is not None and self.zone is not None:
            return await self.checker.evaluate(raw, ip=ip, mail_from=mail_from, helo=helo,
                                               dns_server=self.dns_server, zone=self.zone())
        return await asyncio.to_thread(checks.evaluate, raw, ip=ip, mail_from=mail_from,
                                       helo=helo, resolver=self.resolver())

    async def hold(self, hop: str, party: str, message_id: str, rcpt: str = "") -> None:
        """With realistic timing, keep the message at this hop for a drawn
        delay, recorded in the truth as ``held`` ("<hop> <seconds>")."""
        if self.timing is None:
            return
        delay = self.timing.draw(hop)
        self.truth.record("held", party, message_id, rcpt, f"{hop} {delay:.4f}")
        await asyncio.sleep(delay)

    def failed(self, exc: BaseException) -> None:
        """A handler error: kept, so the test that caused it can re-raise it."""
        self.errors.append(exc)
