"""What every party of the world shares."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

import dns.resolver

from flowtest.sandbox import checks
from flowtest.sandbox.faults import Faults
from flowtest.sandbox.hosts import Names
from flowtest.sandbox.keys import Keyring
from flowtest.sandbox.smtp import Relay
from flowtest.sandbox.truth import Truth


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

    def resolver(self) -> dns.resolver.Resolver:
        """A blocking resolver on the world's DNS, for the checking libraries."""
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [self.dns_server[0]]
        r.port = self.dns_server[1]
        r.lifetime = 3
        return r

    def relay(self, source: str, helo: str) -> Relay:
        return Relay(source=source, helo=helo, dns_server=self.dns_server, ports=self.ports,
                     tls=self.client_tls)

    async def evaluate(self, raw: bytes, *, ip: str, mail_from: str,
                       helo: str) -> checks.Verdicts:
        return await asyncio.to_thread(checks.evaluate, raw, ip=ip, mail_from=mail_from,
                                       helo=helo, resolver=self.resolver())

    def failed(self, exc: BaseException) -> None:
        """A handler error: kept, so the test that caused it can re-raise it."""
        self.errors.append(exc)
