"""The settings a flowtest.toml turns into: frozen, typed dataclasses.

Nothing here reads files; :mod:`flowtest.config.reader` builds these from
TOML and checks every value first, so code that holds a :class:`Config` can
trust its types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from flowtest import providers
from flowtest.config.cloudflare import CloudflareSettings
from flowtest.config.serve import ServeSettings
from flowtest.model import Receiver, Thresholds
from flowtest.secrets import Secret

TlsMode = Literal["implicit", "starttls", "plain"]
Target = Literal["sandbox", "live"]
CleanupMode = Literal["trash", "keep"]

# Cloudflare Email Routing allows 200 rules per domain (FACTS.md).
MAX_ALIASES = 200

_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                        r"[A-Za-z][A-Za-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Endpoint:
    """Where a server is. ``address`` overrides name resolution (the sandbox
    uses it); the certificate is still verified against ``host``."""

    host: str
    port: int
    tls: TlsMode
    address: str | None = None

    @property
    def connect_host(self) -> str:
        return self.address or self.host

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def receiver(account: Account) -> Receiver:
    """Whose Authentication-Results to trust for mail this account receives."""
    return providers.receiver_for(account.provider, account.authserv_id,
                                  account.address.rpartition("@")[2], fallback=account.imap.host)


@dataclass(frozen=True)
class Account:
    """A mailbox flowtest logs in to: the Gmail account or the probe account.

    ``provider`` names a profile in flowtest.providers (endpoints, how it
    stamps Authentication-Results); ``authserv_id`` overrides the latter."""

    address: str
    username: str
    password: Secret
    smtp: Endpoint
    imap: Endpoint
    provider: str = "custom"
    authserv_id: str | None = None


@dataclass(frozen=True)
class Alias:
    """An address at the domain that Cloudflare routes to Gmail."""

    address: str

    @property
    def local(self) -> str:
        return self.address.partition("@")[0]

    @property
    def domain(self) -> str:
        return self.address.partition("@")[2]

    def __str__(self) -> str:
        return self.address


@dataclass(frozen=True)
class DnsSettings:
    """Which resolver the doctor and the flows ask. Empty = the system's."""

    nameservers: tuple[tuple[str, int], ...] = ()
    timeout_s: float = 5.0


@dataclass(frozen=True)
class TlsSettings:
    ca_file: Path | None = None
    insecure: bool = False


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 15.0
    command_s: float = 30.0
    delivery_s: float = 300.0


@dataclass(frozen=True)
class Limits:
    """Politeness towards the providers (FACTS.md: about 15 simultaneous IMAP
    connections per Gmail account, about 500 recipients a day)."""

    imap_connections: int = 2        # per mailbox, at once, in one flowtest process
    send_interval_s: float = 0.0     # least time between two submissions in a session
    # Outbound probes through Gmail in any 24 hours, counted from the history;
    # None: 100 for a live target, no limit for the sandbox.
    daily_sends: int | None = None

    def daily_budget(self, target: str) -> int | None:
        if self.daily_sends is not None:
            return self.daily_sends or None  # 0 turns the budget off
        return 100 if target == "live" else None


@dataclass(frozen=True)
class Config:
    domain: str
    aliases: tuple[Alias, ...]
    gmail: Account
    probe: Account
    target: Target = "live"
    dns: DnsSettings = field(default_factory=DnsSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    timeouts: Timeouts = field(default_factory=Timeouts)
    thresholds: Thresholds = field(default_factory=Thresholds)
    limits: Limits = field(default_factory=Limits)
    cleanup: CleanupMode = "trash"
    dkim_selectors: tuple[str, ...] = ()   # checked besides Cloudflare's cf2024-1
    require_dmarc_pass: bool = False       # outbound: a DMARC failure fails even under p=none
    serve: ServeSettings = field(default_factory=ServeSettings)   # flowtest serve
    path: Path | None = None
    lang: str | None = None                # "en" or "zh"; None: --lang or the locale decides
    cloudflare: CloudflareSettings | None = None  # [cloudflare]: the API's view, optional


def plaintext_endpoints(config: Config) -> list[str]:
    """Where this config talks without any TLS (``tls = "plain"``, allowed only
    with --insecure): every output of such a run says PLAINTEXT."""
    return [f"{role}.{kind} {endpoint}"
            for role, account in (("gmail", config.gmail), ("probe", config.probe))
            for kind, endpoint in (("smtp", account.smtp), ("imap", account.imap))
            if endpoint.tls == "plain"]


def check_domain(name: str) -> bool:
    return bool(_DOMAIN_RE.match(name))


def check_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and _LOCAL_RE.match(local) and check_domain(domain))
