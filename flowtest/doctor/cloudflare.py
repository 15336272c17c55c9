"""The doctor reads Cloudflare's own view: the token, the zone, Email
Routing's settings, rules, catch-all and destination addresses, DNSSEC, and
the registration's expiry (RDAP). Read-only; FACTS.md has the shapes.

Every API answer is untrusted data: a value of the wrong type is "unknown",
never a crash; a permission the token lacks is one finding naming it, and
the checks that do not need it still run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flowtest.config import Config
from flowtest.doctor.findings import Finding
from flowtest.mail.text import quote
from flowtest.net.cloudflare import ApiReply, CloudflareClient
from flowtest.net.dns import DnsClient

MAX_RULES = 200
EXPIRY_WARN_DAYS = 30
TOKEN_PAGE = "My Profile → API Tokens"

# The permission each request needs (docs/setup.md), in the dashboard's words.
PERMISSION = {
    "zones": "Zone → Zone → Read",
    "settings": "Zone → Zone Settings → Read",
    "rules": "Zone → Email Routing Rules → Read",
    "addresses": "Account → Email Routing Addresses → Read",
    "analytics": "Zone → Analytics → Read",
}
ROUTING = "Email → Email Routing"


def _s(value: object, limit: int = 200) -> str:
    """An API string, shown inert and bounded (it is the server's text)."""
    return quote(value if isinstance(value, str) else "", limit)


def _list(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


@dataclass
class View:
    """What the API said, request by request (a reply per name)."""

    replies: dict[str, ApiReply] = field(default_factory=dict)
    graph_denied: bool = False
    zone: dict[str, Any] = field(default_factory=dict)
    rdap: tuple[int, dict[str, Any] | None, str] = (0, None, "")


async def read(client: CloudflareClient, zone_name: str, domain: str) -> View:
    view = View()
    view.replies["verify"] = await client.get("/user/tokens/verify")
    if view.replies["verify"].unreachable:
        return view
    zones = view.replies["zones"] = await client.get_all("/zones", {"name": zone_name})
    found = _list(zones.result) if zones.success else []
    if found:
        view.zone = found[0]
        zid = _s(view.zone.get("id"), 64)
        account = view.zone.get("account")
        aid = _s(account.get("id"), 64) if isinstance(account, dict) else ""
        base = f"/zones/{zid}/email/routing"
        view.replies["settings"] = await client.get(base)
        view.replies["dns"] = await client.get(f"{base}/dns")
        view.replies["rules"] = await client.get_all(f"{base}/rules")
        view.replies["catch_all"] = await client.get(f"{base}/rules/catch_all")
        view.replies["dnssec"] = await client.get(f"/zones/{zid}/dnssec")
        if aid:
            view.replies["addresses"] = await client.get_all(
                f"/accounts/{aid}/email/routing/addresses")
        graph = await client.graphql(
            "query($z: String!, $since: Time!) { viewer { zones(filter: {zoneTag: $z}) { "
            "emailRoutingAdaptive(limit: 1, filter: {datetime_geq: $since}) { datetime } } } }",
            {"z": zid, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                              time.gmtime(time.time() - 3600))})
        view.graph_denied = graph.denied
    view.rdap = await client.rdap_domain(domain)
    return view


def _denied(view: View, names: tuple[str, ...]) -> list[Finding]:
    out = []
    for name in names:
        reply = view.replies.get(name)
        if reply is not None and reply.denied:
            out.append(Finding(
                "CF_PERMISSION_MISSING", "error",
                f"The API token lacks the permission {PERMISSION[name]} ({reply.describe()}), "
                f"so flowtest cannot read this part of Email Routing.",
                f"In the Cloudflare dashboard, {TOKEN_PAGE}: edit the token and add "
                f"{PERMISSION[name]} (docs/setup.md lists exactly what it needs)."))
    if view.graph_denied:
        out.append(Finding(
            "CF_PERMISSION_MISSING", "error",
            f"The API token lacks the permission {PERMISSION['analytics']}: lost probes cannot "
            "be looked up in Email Routing's activity log.",
            f"In the Cloudflare dashboard, {TOKEN_PAGE}: edit the token and add "
            f"{PERMISSION['analytics']}."))
    return out


def token(view: View) -> list[Finding]:
    reply = view.replies["verify"]
    if reply.unreachable:
        return [Finding("CF_API_UNREACHABLE", "error",
                        f"Cloudflare's API could not be reached ({reply.describe()}): none of "
                        "its checks ran. This is not an all-clear.",
                        "Check the network, [cloudflare] api_base and the TLS settings.")]
    status = reply.result.get("status") if isinstance(reply.result, dict) else None
    if not reply.success or status != "active":
        why = f"its status is {_s(status)}" if status else reply.describe()
        return [Finding("CF_TOKEN_INVALID", "error",
                        f"Cloudflare refuses the API token ({why}): none of its checks ran.",
                        f"In the Cloudflare dashboard, {TOKEN_PAGE}: roll the token or create "
                        "a new one (docs/setup.md), and update [cloudflare] api_token.")]
    return [Finding("CF_TOKEN_OK", "info", "The Cloudflare API token is active.")]


async def zone(view: View, zone_name: str, dns: DnsClient) -> list[Finding]:
    reply = view.replies["zones"]
    if reply.denied:
        return []
    if not view.zone:
        return [Finding("CF_ZONE_NOT_FOUND", "error",
                        f"This token sees no zone named {zone_name} ({reply.describe()}).",
                        f"Check [cloudflare] zone, and that the token's Zone Resources include "
                        f"{zone_name} ({TOKEN_PAGE}).")]
    out = []
    status = _s(view.zone.get("status"), 40)
    if status != "active":
        out.append(Finding("CF_ZONE_PENDING", "error",
                           f"The zone {zone_name} is {status or 'not active'} at Cloudflare: "
                           "until it is active, Cloudflare does not answer for it and Email "
                           "Routing receives nothing.",
                           "At your registrar, set the two name servers Cloudflare shows under "
                           "Overview; then on Overview click \"Check nameservers now\"."))
    assigned = sorted(_s(n, 255).lower().rstrip(".") for n in view.zone.get("name_servers") or []
                      if isinstance(n, str))
    ns = await dns.query(zone_name, "NS")
    if assigned and not ns.failed:
        served = sorted(ns.records)
        if served != assigned:
            out.append(Finding(
                "CF_NS_MISMATCH", "error",
                f"DNS serves the name servers {', '.join(served) or 'none'}, but Cloudflare "
                f"assigned {', '.join(assigned)} to this zone: the world may not see the "
                "records you set in Cloudflare.",
                "At your registrar, set exactly the two name servers shown in Cloudflare's "
                "Overview (DNS → Records shows them too), and remove any others."))
    return out


def settings(view: View) -> list[Finding]:
    reply = view.replies.get("settings")
    if reply is None or not reply.success or not isinstance(reply.result, dict):
        return [] if reply is None or reply.denied else [_unread("Email Routing's settings",
                                                                 reply)]
    s = reply.result
    if s.get("enabled") is not True:
        return [Finding("CF_ROUTING_DISABLED", "error",
                        "Email Routing is not enabled for the zone: mail to every alias bounces "
                        "or goes elsewhere.",
                        f"In the Cloudflare dashboard, {ROUTING}: click \"Enable Email "
                        "Routing\" and add the records it proposes.")]
    status = _s(s.get("status"), 40)
    if status == "ready":
        return [Finding("CF_ROUTING_READY", "info", "Email Routing is enabled and ready.")]
    meaning = {
        "misconfigured": "the DNS records it needs are not all in place",
        "misconfigured/locked": "its DNS records are missing and locked against changes",
        "unlocked": "its DNS records were unlocked and may be edited away",
        "unconfigured": "it was never set up",
    }.get(status, "Cloudflare gives no more detail")
    return [Finding("CF_ROUTING_STATUS", "warning" if status == "unlocked" else "error",
                    f"Email Routing's status is {status or 'unknown'}: {meaning}.",
                    f"In the Cloudflare dashboard, {ROUTING} → Settings: review the DNS "
                    "records and click \"Add records and enable\" (or \"Lock DNS records\").")]


def _unread(what: str, reply: ApiReply) -> Finding:
    return Finding("CF_API_ERROR", "warning",
                   f"Cloudflare's API did not give {what} ({reply.describe()}), so it could "
                   "not be checked. This is not an all-clear.", "Try again later.")


def _missing_records(result: object) -> list[dict[str, Any]]:
    """Both shapes of /email/routing/dns: a list means all is expected and
    nothing reported missing; the object carries ``errors[].missing``."""
    if isinstance(result, dict):
        return [e["missing"] for e in _list(result.get("errors"))
                if isinstance(e.get("missing"), dict)]
    return []


async def records(view: View, dns: DnsClient) -> list[Finding]:
    reply = view.replies.get("dns")
    if reply is None or reply.denied:
        return []
    if not reply.success:
        return [_unread("the records Email Routing expects", reply)]
    out = []
    for rec in _missing_records(reply.result):
        rtype = _s(rec.get("type"), 10).upper()
        name = _s(rec.get("name"), 255).lower().rstrip(".")
        content = _s(rec.get("content"), 255)
        served = await dns.query(name, rtype) if rtype in ("MX", "TXT") and name else None
        there = served is not None and any(
            content.lower().rstrip(".") in r.lower() for r in served.records)
        truth = ("DNS does serve it now, so Cloudflare has not re-checked yet" if there else
                 "DNS indeed does not serve it" if served is not None and not served.failed
                 else "DNS could not be asked")
        out.append(Finding("CF_RECORD_MISSING", "warning" if there else "error",
                           f"Cloudflare says the {rtype} record {content!r} at {name} is "
                           f"missing; {truth}.",
                           f"In the Cloudflare dashboard, {ROUTING} → Settings: click \"Add "
                           f"records and enable\" (or add the {rtype} record in DNS → Records)."))
    return out


@dataclass(frozen=True)
class RuleView:
    """One literal rule, its untrusted fields checked."""

    address: str
    enabled: bool
    action: str
    destinations: tuple[str, ...]
    order: int


def rule_views(result: object) -> list[RuleView]:
    out = []
    for i, r in enumerate(_list(result)):
        matchers = _list(r.get("matchers"))
        actions = _list(r.get("actions"))
        if not matchers or matchers[0].get("type") != "literal" or not actions:
            continue
        values = actions[0].get("value")
        out.append(RuleView(
            address=_s(matchers[0].get("value"), 320).lower(),
            enabled=r.get("enabled") is True, action=_s(actions[0].get("type"), 20),
            destinations=tuple(_s(v, 320).lower() for v in values if isinstance(v, str))
            if isinstance(values, list) else (), order=i))
    return out


def destinations(view: View) -> dict[str, bool] | None:
    """email -> verified, or None when they could not be read."""
    reply = view.replies.get("addresses")
    if reply is None or not reply.success:
        return None
    return {_s(a.get("email"), 320).lower(): bool(a.get("verified"))
            for a in _list(reply.result)}


def aliases(view: View, config: Config) -> list[Finding]:
    reply = view.replies.get("rules")
    if reply is None or reply.denied:
        return []
    if not reply.success:
        return [_unread("the routing rules", reply)]
    rules = rule_views(reply.result)
    gmail = config.gmail.address.lower()
    known = destinations(view)
    out: list[Finding] = []
    create = (f"In the Cloudflare dashboard, {ROUTING} → Routing rules: \"Create address\", "
              f"custom address {{alias}}, action \"Send to an email\", destination {gmail}.")
    for alias in config.aliases:
        mine = sorted((r for r in rules if r.address == alias.address), key=lambda r: r.order)
        if not mine:
            out.append(Finding("CF_RULE_MISSING", "error",
                               f"No routing rule matches {alias.address}: Cloudflare answers "
                               "550 5.1.1 Address does not exist (or the catch-all takes it).",
                               create.format(alias=alias.local)))
            continue
        if len(mine) > 1:
            out.append(Finding("CF_RULE_DUPLICATE", "warning",
                               f"{len(mine)} rules match {alias.address}; only the newest "
                               "applies, so the others only confuse whoever edits them.",
                               f"In {ROUTING} → Routing rules, delete the older rules for "
                               f"{alias.address}."))
        rule = mine[-1]  # of several rules for one address only the newest applies
        if rule.action == "drop":
            out.append(Finding("CF_RULE_DROP", "error",
                               f"The rule for {alias.address} drops the mail: it is accepted "
                               "and never delivered, and the sender is not told.",
                               f"In {ROUTING} → Routing rules, edit {alias.address}: action "
                               f"\"Send to an email\", destination {gmail}."))
        elif rule.action != "forward":
            out.append(Finding("CF_RULE_ELSEWHERE", "warning",
                               f"The rule for {alias.address} sends mail to a Worker "
                               f"({rule.action}), not to {gmail}.",
                               f"If that is not intended, edit the rule in {ROUTING}."))
        elif gmail not in rule.destinations:
            out.append(Finding("CF_RULE_ELSEWHERE", "warning",
                               f"The rule for {alias.address} forwards to "
                               f"{', '.join(rule.destinations) or 'nobody'}, not to {gmail}: "
                               "probes to it can never reach the configured Gmail.",
                               f"In {ROUTING} → Routing rules, edit {alias.address}: "
                               f"destination {gmail} (or fix [gmail] address)."))
        if not rule.enabled:
            unverified = known is not None and rule.action == "forward" and any(
                not known.get(d, False) for d in rule.destinations)
            out.append(Finding("CF_RULE_DISABLED", "error",
                               f"The rule for {alias.address} is disabled"
                               + (" (its destination is not verified, and Cloudflare keeps "
                                  "such rules disabled)" if unverified else "")
                               + ": Cloudflare answers 550 5.1.1 for it.",
                               f"In {ROUTING} → Routing rules, switch the rule for "
                               f"{alias.address} to Active."))
    out += _destinations(view, rules, gmail, known)
    out += _others(rules, config, gmail)
    return out


def _destinations(view: View, rules: list[RuleView], gmail: str,
                  known: dict[str, bool] | None) -> list[Finding]:
    if known is None:
        reply = view.replies.get("addresses")
        return [] if reply is None or reply.denied else [_unread("the destination addresses",
                                                                 reply)]
    out = []
    verify = (f"In {ROUTING} → Destination addresses: add {gmail} (or \"Resend verification\"), "
              "then click the link in the mail Cloudflare sends to it.")
    if gmail not in known:
        out.append(Finding("CF_DESTINATION_MISSING", "error",
                           f"{gmail} is not a destination address of this account: no rule "
                           "can forward to it.", verify))
    elif not known[gmail]:
        out.append(Finding("CF_DESTINATION_UNVERIFIED", "error",
                           f"The destination {gmail} is not verified: Cloudflare keeps every "
                           "rule that forwards to it disabled.", verify))
    gone = sorted({d for r in rules if r.action == "forward" for d in r.destinations
                   if d not in known})
    for d in gone:
        out.append(Finding("CF_RULE_DESTINATION_GONE", "warning",
                           f"Rules forward to {d}, which is no longer a destination address: "
                           "Cloudflare disabled them when it was deleted.",
                           f"In {ROUTING}: add {d} again under Destination addresses, or "
                           "point those rules elsewhere."))
    return out


def _others(rules: list[RuleView], config: Config, gmail: str) -> list[Finding]:
    aliases = {a.address for a in config.aliases}
    out = []
    for r in rules:
        if r.address in aliases:
            continue
        if r.action == "drop" and r.enabled:
            out.append(Finding("CF_RULE_DROP", "info",
                               f"The rule for {r.address} (not an alias in the config) drops "
                               "its mail.", ""))
        elif r.action == "forward" and gmail not in r.destinations and r.enabled:
            out.append(Finding("CF_RULE_ELSEWHERE", "info",
                               f"The rule for {r.address} (not an alias in the config) "
                               f"forwards to {', '.join(r.destinations)}.", ""))
    used = len(rules)
    out.append(Finding("CF_RULES_LIMIT", "warning" if used >= MAX_RULES * 0.9 else "info",
                       f"{used} of the {MAX_RULES} routing rules a zone may have are in use.",
                       "" if used < MAX_RULES * 0.9 else
                       f"Delete unused rules in {ROUTING}, or route rarely used addresses "
                       "through the catch-all."))
    return out


def catch_all(view: View) -> list[Finding]:
    reply = view.replies.get("catch_all")
    if reply is None or reply.denied:
        return []
    if not reply.success or not isinstance(reply.result, dict):
        return [_unread("the catch-all", reply)]
    c = reply.result
    actions = _list(c.get("actions"))
    action = _s(actions[0].get("type"), 20) if actions else ""
    if c.get("enabled") is not True:
        return [Finding("CF_CATCH_ALL", "info",
                        "The catch-all is disabled: mail to a mistyped address bounces with "
                        "550 5.1.1, so its sender learns of the mistake.")]
    if action == "drop":
        return [Finding("CF_CATCH_ALL_DROP", "warning",
                        "The catch-all is enabled with action drop: mail to any mistyped or "
                        "unknown address is accepted and silently thrown away; its sender "
                        "never learns it was lost.",
                        f"In {ROUTING} → Routing rules → Catch-all address: disable it (senders "
                        "then get a bounce), or send it to your Gmail address.")]
    return [Finding("CF_CATCH_ALL", "info",
                    f"The catch-all is enabled ({action or 'unknown action'}): mail to any "
                    "address at the domain, mistyped or not, is accepted, and spammers who "
                    "guess addresses reach you too.")]


async def dnssec(view: View, domain: str, dns: DnsClient) -> list[Finding]:
    reply = view.replies.get("dnssec")
    if reply is None or not reply.success or not isinstance(reply.result, dict):
        return []
    status = _s(reply.result.get("status"), 20)
    ds_cf = _s(reply.result.get("ds"), 500)
    parent = await dns.query(domain, "DS")
    if parent.failed:
        return []
    published = list(parent.records)
    if published and status != "active":
        return [Finding("CF_DNSSEC_STALE_DS", "error",
                        f"The parent zone publishes a DS record for {domain}, but DNSSEC is "
                        f"{status or 'off'} at Cloudflare: validating resolvers reject every "
                        "answer, so for many senders the whole domain does not resolve.",
                        "Remove the DS record at your registrar, or in Cloudflare's DNS → "
                        "Settings enable DNSSEC and publish the DS record it shows.")]
    if published and ds_cf:
        fields = ds_cf.split()
        wanted = " ".join(fields[-4:]).lower() if len(fields) >= 4 else ds_cf.lower()
        if not any(wanted.replace(" ", "") in p.lower().replace(" ", "") for p in published):
            return [Finding("CF_DNSSEC_STALE_DS", "error",
                            f"The DS record the parent publishes for {domain} does not match "
                            "Cloudflare's key: validating resolvers reject the domain.",
                            "At your registrar, replace the DS record with the one Cloudflare "
                            "shows under DNS → Settings → DNSSEC.")]
    if status == "active" and not published:
        return [Finding("CF_DNSSEC_PENDING", "warning",
                        "DNSSEC is on at Cloudflare, but the parent zone publishes no DS "
                        "record, so nothing is protected yet.",
                        "Add the DS record Cloudflare shows (DNS → Settings → DNSSEC) at your "
                        "registrar.")]
    return [Finding("CF_DNSSEC_OK", "info",
                    f"DNSSEC: {'signed, and the parent' if published else 'off, and the parent'}"
                    f" {'publishes a matching DS' if published else 'publishes no DS'}.")]


def expiry(view: View, domain: str, now: float | None = None) -> list[Finding]:
    status, doc, failure = view.rdap
    if doc is None:
        return [Finding("RDAP_UNAVAILABLE", "info",
                        f"The registration of {domain} could not be read through RDAP "
                        f"({failure or f'HTTP {status}'}); its expiry was not checked.")]
    when = None
    for event in _list(doc.get("events")):
        if event.get("eventAction") == "expiration" and isinstance(event.get("eventDate"), str):
            try:
                when = datetime.fromisoformat(event["eventDate"].replace("Z", "+00:00"))
            except ValueError:
                when = None
    if when is None or when.tzinfo is None:
        return [Finding("RDAP_UNAVAILABLE", "info",
                        f"The registry's RDAP answer for {domain} has no expiry date.")]
    days = (when.timestamp() - (time.time() if now is None else now)) / 86400
    date = when.date().isoformat()
    if days < 0:
        return [Finding("DOMAIN_EXPIRED", "error",
                        f"The registration of {domain} expired on {date}: once the registry "
                        "removes it, no mail reaches any alias.",
                        "Renew the domain at your registrar now.")]
    if days < EXPIRY_WARN_DAYS:
        return [Finding("DOMAIN_EXPIRES_SOON", "warning",
                        f"The registration of {domain} expires on {date}, in {int(days)} days "
                        "(free one-year domains are not always renewed automatically).",
                        "Renew the domain at your registrar, or turn on auto-renew.")]
    return [Finding("DOMAIN_EXPIRY", "info",
                    f"The registration of {domain} runs until {date}.")]


async def diagnose(config: Config, dns: DnsClient) -> list[Finding]:
    """Every Cloudflare finding; one info line when [cloudflare] is absent."""
    cf = config.cloudflare
    if cf is None:
        return [Finding("CF_NOT_CONFIGURED", "info",
                        "No [cloudflare] section: Cloudflare's own view (routing rules, "
                        "destinations, the activity log) was not checked.",
                        "Add a read-only API token as docs/setup.md describes.")]
    async with CloudflareClient(cf, tls=config.tls, dns=config.dns,
                                timeout_s=config.timeouts.command_s) as client:
        view = await read(client, cf.zone, config.domain)
    first = token(view)
    if first[0].severity == "error":
        return first
    return [*first, *_denied(view, ("zones", "settings", "rules", "addresses")),
            *await zone(view, cf.zone, dns), *settings(view), *await records(view, dns),
            *aliases(view, config), *catch_all(view), *await dnssec(view, config.domain, dns),
            *expiry(view, config.domain)]
