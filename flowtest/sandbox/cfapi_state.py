"""Cloudflare's account as its API shows it: the zone, Email Routing's
settings, rules, catch-all, destination addresses, the token's permissions
and the activity log.

One state with the mail path: the sandbox's Cloudflare asks :meth:`route`
which rule applies and writes what it did into :attr:`log`, and the API
server reads the same objects. A fault changes both at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowtest.sandbox import hosts
from flowtest.sandbox.faults import TOKEN_PERMISSIONS, Faults


class _Rule(Protocol):
    @property
    def action(self) -> str: ...
    @property
    def destination(self) -> str: ...


class _Routing(Protocol):
    """sandbox.cloudflare.Routing, seen from here (it imports this module)."""

    domain: str
    rules: dict[str, Any]
    catch_all: Any

# The permissions a read-only token for flowtest needs (docs/setup.md), by
# the dashboard's names.
PERMISSIONS = TOKEN_PERMISSIONS
ZONE_READ, ZONE_SETTINGS_READ, RULES_READ, ADDRESSES_READ, ANALYTICS_READ = PERMISSIONS


def _hex_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


@dataclass(frozen=True)
class ExtraRule:
    """A rule a test adds beside the world's own (a duplicate, a drop, a
    forward elsewhere); newer than every base rule."""

    address: str
    action: str                     # forward, drop, worker
    destination: str = ""
    enabled: bool = True


@dataclass
class Account:
    routing: _Routing
    faults: Faults
    gmail_address: str
    token: str
    created: float = field(default_factory=time.time)
    # email -> when it was verified (None: the owner never clicked the mail)
    destinations: dict[str, float | None] = field(default_factory=dict)
    extra_rules: list[ExtraRule] = field(default_factory=list)
    # Destinations the owner deleted (their rules stay, disabled); any other
    # destination a rule names is registered and verified, as the world's
    # own Routing.forward() implies.
    deleted: set[str] = field(default_factory=set)
    zone_status: str = "active"
    dnssec_status: str = "disabled"
    expires_in_days: float = 200.0
    log: ActivityLog = field(default_factory=lambda: ActivityLog())

    def __post_init__(self) -> None:
        if self.gmail_address:
            self.destinations.setdefault(self.gmail_address, self.created)

    # -- identities -------------------------------------------------------------

    @property
    def zone_id(self) -> str:
        return _hex_id("zone", self.routing.domain)

    @property
    def account_id(self) -> str:
        return _hex_id("account", self.gmail_address)

    def permissions(self) -> set[str]:
        """The token's permissions; ``cf-token-scope=NAME`` takes one away
        (by default the destination addresses, the one most often forgotten)."""
        granted = set(PERMISSIONS)
        if self.faults.on("cf-token-scope"):
            granted.discard(self.faults.value("cf-token-scope") or ADDRESSES_READ)
        return granted

    # -- what applies to mail -----------------------------------------------------

    def _sync(self) -> None:
        for rule in [*self.routing.rules.values(), self.routing.catch_all, *self.extra_rules]:
            email = getattr(rule, "destination", "")
            if email and email not in self.deleted:
                self.destinations.setdefault(email, self.created)

    def verified(self, email: str) -> bool:
        if self.faults.on("cf-destination-unverified") and email == self.gmail_address:
            return False
        return email not in self.deleted and self.destinations.get(email) is not None

    def _enabled(self, address: str, rule: _Rule) -> bool:
        disabled = self.faults.value("cf-rule-disabled") if self.faults.on(
            "cf-rule-disabled") else None
        if self.faults.on("cf-rule-disabled") and (disabled is None or disabled == address):
            return False
        # A rule stays disabled until its destination is verified, and
        # deleting a destination disables its rules (FACTS.md).
        return rule.action != "forward" or self.verified(rule.destination)

    def rules(self) -> list[dict[str, Any]]:
        """Every rule as the API lists it (oldest first)."""
        self._sync()
        out = []
        for i, (address, rule) in enumerate(self.routing.rules.items()):
            out.append(self._rule_json(address, rule.action, rule.destination,
                                       self._enabled(address, rule), i))
        base = len(out)
        for i, extra in enumerate(self.extra_rules):
            enabled = extra.enabled and (extra.action != "forward"
                                         or self.verified(extra.destination))
            out.append(self._rule_json(extra.address, extra.action, extra.destination, enabled,
                                       base + i))
        return out

    def _rule_json(self, address: str, action: str, destination: str, enabled: bool,
                   n: int) -> dict[str, Any]:
        tag = _hex_id("rule", address, str(n))
        return {"id": tag, "tag": tag, "name": f"Rule created at {iso(self.created + n)}",
                "enabled": enabled, "priority": n,
                "matchers": [{"type": "literal", "field": "to", "value": address}],
                "actions": [{"type": action, "value": [destination]} if action != "drop"
                            else {"type": "drop"}]}

    def catch_all(self) -> dict[str, Any]:
        rule = self.routing.catch_all
        enabled, action, value = False, "drop", ""
        if self.faults.on("cf-catch-all-drop"):
            enabled = True
        elif rule is not None:
            enabled, action, value = True, rule.action, rule.destination
        tag = _hex_id("catch-all", self.routing.domain)
        return {"id": tag, "tag": tag, "name": "Catch-All", "enabled": enabled,
                "matchers": [{"type": "all"}],
                "actions": [{"type": action, "value": [value]} if action == "forward"
                            else {"type": "drop"}]}

    def route(self, address: str) -> tuple[str, str, str] | None:
        """(action, destination, rule id) for mail to ``address``: the newest
        enabled literal rule (only the newest applies), else an enabled
        catch-all ("catch-all"), else None: 550 5.1.1."""
        # The same answer as searching rules() newest first, without building
        # all 200 rules' JSON twice per message (a burst's hot spot).
        address = address.lower()
        self._sync()
        base = len(self.routing.rules)
        for i in reversed(range(len(self.extra_rules))):
            extra = self.extra_rules[i]
            if extra.address == address and extra.enabled and (
                    extra.action != "forward" or self.verified(extra.destination)):
                return (extra.action, extra.destination if extra.action != "drop" else "",
                        _hex_id("rule", extra.address, str(base + i)))
        rule = self.routing.rules.get(address)
        if rule is not None and self._enabled(address, rule):
            n = list(self.routing.rules).index(address)
            return (rule.action, rule.destination if rule.action != "drop" else "",
                    _hex_id("rule", address, str(n)))
        c = self.catch_all()
        if c["enabled"]:
            action = c["actions"][0]
            return action["type"], (action.get("value") or [""])[0], "catch-all"
        return None

    # -- settings and the records it expects -------------------------------------

    def settings(self) -> dict[str, Any]:
        status = "misconfigured" if self.faults.on("cf-routing-misconfigured") else "ready"
        return {"id": _hex_id("settings", self.routing.domain), "tag": self.zone_id,
                "name": self.routing.domain, "enabled": True, "status": status,
                "skip_wizard": True, "created": iso(self.created), "modified": iso(self.created)}

    def expected_records(self) -> list[dict[str, Any]]:
        d = self.routing.domain
        mx = [{"type": "MX", "name": d, "content": h, "priority": p, "ttl": 1}
              for h, p in zip(hosts.CF_MX_HOSTS, (66, 48, 5), strict=True)]
        return [*mx, {"type": "TXT", "name": d, "content": SPF, "ttl": 1},
                {"type": "TXT", "name": f"cf2024-1._domainkey.{d}", "content": "v=DKIM1; …",
                 "ttl": 1}]

    def dns_result(self) -> Any:
        """The /dns result: a plain list when all is in place, the object with
        ``errors[].missing`` when something is missing (both shapes are real)."""
        records = self.expected_records()
        if not self.faults.on("cf-routing-misconfigured"):
            return records
        spf = next(r for r in records if r["content"] == SPF)
        return {"errors": [{"code": "spf.missing", "missing": spf}], "record": records}

    def addresses(self) -> list[dict[str, Any]]:
        self._sync()
        out = []
        for email, at in self.destinations.items():
            if email in self.deleted:
                continue
            out.append({"id": _hex_id("address", email), "tag": _hex_id("address", email),
                        "email": email, "created": iso(self.created),
                        "modified": iso(self.created),
                        "verified": iso(at) if at is not None and self.verified(email)
                        else None})
        return out


SPF = "v=spf1 include:_spf.mx.cloudflare.net ~all"


class ActivityLog:
    """Rows of ``emailRoutingAdaptive`` as Cloudflare writes them; each
    becomes visible ``cf-log-lag`` seconds after it happened (field reports:
    2 to 17 minutes in the real service)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[tuple[float, dict[str, Any]]] = []

    def record(self, *, message_id: str, sender: str, to: str, subject: str, action: str,
               status: str, rule: str = "", error: str = "", verdicts: dict[str, str] | None
               = None, session: str = "") -> None:
        now = time.time()
        v = verdicts or {}
        row = {"datetime": iso(now), "sessionId": session, "messageId": message_id,
               "from": sender, "to": to, "subject": subject, "status": status,
               "action": action, "eventType": "email", "ruleMatched": rule,
               "spf": v.get("spf", "none"), "dkim": v.get("dkim", "none"),
               "dmarc": v.get("dmarc", "none"), "arc": v.get("arc", "none"),
               "errorDetail": error, "isSpam": 0, "isNDR": 0, "isLastEvent": 1,
               "spamScore": 0, "spamThreshold": 5}
        with self._lock:
            self._rows.append((now, row))

    def rows(self, lag_s: float, now: float | None = None) -> list[dict[str, Any]]:
        cutoff = (time.time() if now is None else now) - lag_s
        with self._lock:
            return [dict(row) for at, row in self._rows if at <= cutoff]


def log_error(code: int, text: str) -> str:
    """errorDetail as Cloudflare writes a destination's refusal (FACTS.md:
    ``Unknown error: transient error (421): 4.7.0 …``)."""
    kind = "transient" if 400 <= code < 500 else "permanent"
    return f"Unknown error: {kind} error ({code}): {' '.join(text.split())}"[:1000]
