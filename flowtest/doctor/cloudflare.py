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
from typing import Any

from flowtest.config import Config
from flowtest.doctor import registration
from flowtest.doctor.findings import Finding
from flowtest.i18n import N_
from flowtest.i18n import gettext as _
from flowtest.mail.text import quote
from flowtest.net.cloudflare import ApiReply, CloudflareClient
from flowtest.net.dns import DnsClient

MAX_RULES = 200
# The dashboard's labels, translated where shown (the Chinese dashboard's words).
TOKEN_PAGE = N_("My Profile → API Tokens")

# The permission each request needs (docs/setup.md), in the dashboard's words.
PERMISSION = {
    "zones": N_("Zone → Zone → Read"),
    "settings": N_("Zone → Zone Settings → Read"),
    "rules": N_("Zone → Email Routing Rules → Read"),
    "addresses": N_("Account → Email Routing Addresses → Read"),
    "analytics": N_("Zone → Analytics → Read"),
}


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
                _("The API token lacks the permission {permission} ({reply}), so flowtest "
                  "cannot read this part of Email Routing.").format(
                      permission=_(PERMISSION[name]), reply=reply.describe()),
                _("In the Cloudflare dashboard, {page}: edit the token and add {permission} "
                  "(docs/setup.md lists exactly what it needs).").format(
                      page=_(TOKEN_PAGE), permission=_(PERMISSION[name]))))
    if view.graph_denied:
        out.append(Finding(
            "CF_PERMISSION_MISSING", "error",
            _("The API token lacks the permission {permission}: lost probes cannot be looked "
              "up in Email Routing's activity log.").format(
                  permission=_(PERMISSION["analytics"])),
            _("In the Cloudflare dashboard, {page}: edit the token and add {permission}."
              ).format(page=_(TOKEN_PAGE), permission=_(PERMISSION["analytics"]))))
    return out


def token(view: View) -> list[Finding]:
    reply = view.replies["verify"]
    if reply.unreachable:
        return [Finding("CF_API_UNREACHABLE", "error",
                        _("Cloudflare's API could not be reached ({reply}): none of its checks "
                          "ran. This is not an all-clear.").format(reply=reply.describe()),
                        _("Check the network, [cloudflare] api_base and the TLS settings."))]
    status = reply.result.get("status") if isinstance(reply.result, dict) else None
    if not reply.success or status != "active":
        why = (_("its status is {status}").format(status=_s(status)) if status
               else reply.describe())
        return [Finding("CF_TOKEN_INVALID", "error",
                        _("Cloudflare refuses the API token ({why}): none of its checks ran."
                          ).format(why=why),
                        _("In the Cloudflare dashboard, {page}: roll the token or create a new "
                          "one (docs/setup.md), and update [cloudflare] api_token.").format(
                              page=_(TOKEN_PAGE)))]
    return [Finding("CF_TOKEN_OK", "info", _("The Cloudflare API token is active."))]


async def zone(view: View, zone_name: str, dns: DnsClient) -> list[Finding]:
    reply = view.replies["zones"]
    if reply.denied:
        return []
    if not view.zone:
        return [Finding("CF_ZONE_NOT_FOUND", "error",
                        _("This token sees no zone named {zone} ({reply}).").format(
                            zone=zone_name, reply=reply.describe()),
                        _("Check [cloudflare] zone, and that the token's Zone Resources include "
                          "{zone} ({page}).").format(zone=zone_name, page=_(TOKEN_PAGE)))]
    out = []
    status = _s(view.zone.get("status"), 40)
    if status != "active":
        # status is Cloudflare's own word (pending, moved…), quoted as it is.
        out.append(Finding("CF_ZONE_PENDING", "error",
                           _("The zone {zone} is {status} at Cloudflare: until it is active, "
                             "Cloudflare does not answer for it and Email Routing receives "
                             "nothing.").format(zone=zone_name, status=status or _("not active")),
                           _("At your registrar, set the two name servers Cloudflare shows "
                             "under Overview; then on Overview click \"Check nameservers "
                             "now\".")))
    assigned = sorted(_s(n, 255).lower().rstrip(".") for n in view.zone.get("name_servers") or []
                      if isinstance(n, str))
    ns = await dns.query(zone_name, "NS")
    if assigned and not ns.failed:
        served = sorted(ns.records)
        if served != assigned:
            out.append(Finding(
                "CF_NS_MISMATCH", "error",
                _("DNS serves the name servers {served}, but Cloudflare assigned {assigned} "
                  "to this zone: the world may not see the records you set in Cloudflare."
                  ).format(served=", ".join(served) or "-", assigned=", ".join(assigned)),
                _("At your registrar, set exactly the two name servers shown in Cloudflare's "
                  "Overview (DNS → Records shows them too), and remove any others.")))
    return out


def settings(view: View) -> list[Finding]:
    reply = view.replies.get("settings")
    if reply is None or not reply.success or not isinstance(reply.result, dict):
        return [] if reply is None or reply.denied else [
            _unread(_("Email Routing's settings"), reply)]
    s = reply.result
    if s.get("enabled") is not True:
        return [Finding("CF_ROUTING_DISABLED", "error",
                        _("Email Routing is not enabled for the zone: mail to every alias "
                          "bounces or goes elsewhere."),
                        _("In the Cloudflare dashboard, Email → Email Routing: click \"Enable "
                          "Email Routing\" and add the records it proposes."))]
    status = _s(s.get("status"), 40)
    if status == "ready":
        return [Finding("CF_ROUTING_READY", "info", _("Email Routing is enabled and ready."))]
    said = {
        "misconfigured": N_("the DNS records it needs are not all in place"),
        "misconfigured/locked": N_("its DNS records are missing and locked against changes"),
        "unlocked": N_("its DNS records were unlocked and may be edited away"),
        "unconfigured": N_("it was never set up"),
    }.get(status, N_("Cloudflare gives no more detail"))
    meaning = _(said)
    # status is Cloudflare's own word, quoted as it is; meaning says it in words.
    return [Finding("CF_ROUTING_STATUS", "warning" if status == "unlocked" else "error",
                    _("Email Routing's status is {status}: {meaning}.").format(
                        status=status or _("unknown"), meaning=meaning),
                    _("In the Cloudflare dashboard, Email → Email Routing → Settings: review "
                      "the DNS records and click \"Add records and enable\" (or \"Lock DNS "
                      "records\")."))]


def _unread(what: str, reply: ApiReply) -> Finding:
    return Finding("CF_API_ERROR", "warning",
                   _("Cloudflare's API did not give {what} ({reply}), so it could not be "
                     "checked. This is not an all-clear.").format(what=what,
                                                                  reply=reply.describe()),
                   _("Try again later."))


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
        return [_unread(_("the records Email Routing expects"), reply)]
    out = []
    for rec in _missing_records(reply.result):
        rtype = _s(rec.get("type"), 10).upper()
        name = _s(rec.get("name"), 255).lower().rstrip(".")
        content = _s(rec.get("content"), 255)
        served = await dns.query(name, rtype) if rtype in ("MX", "TXT") and name else None
        there = served is not None and any(
            content.lower().rstrip(".") in r.lower() for r in served.records)
        truth = (_("DNS does serve it now, so Cloudflare has not re-checked yet") if there
                 else _("DNS indeed does not serve it")
                 if served is not None and not served.failed else _("DNS could not be asked"))
        out.append(Finding("CF_RECORD_MISSING", "warning" if there else "error",
                           _("Cloudflare says the {rtype} record {content} at {name} is "
                             "missing; {truth}.").format(rtype=rtype, content=repr(content),
                                                         name=name, truth=truth),
                           _("In the Cloudflare dashboard, Email → Email Routing → Settings: "
                             "click \"Add records and enable\" (or add the {rtype} record in "
                             "DNS → Records).").format(rtype=rtype)))
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
        return [_unread(_("the routing rules"), reply)]
    rules = rule_views(reply.result)
    gmail = config.gmail.address.lower()
    known = destinations(view)
    out: list[Finding] = []
    for alias in config.aliases:
        mine = sorted((r for r in rules if r.address == alias.address), key=lambda r: r.order)
        if not mine:
            out.append(Finding("CF_RULE_MISSING", "error",
                               _("No routing rule matches {address}: Cloudflare answers 550 "
                                 "5.1.1 Address does not exist (or the catch-all takes it)."
                                 ).format(address=alias.address),
                               _("In the Cloudflare dashboard, Email → Email Routing → Routing "
                                 "rules: \"Create address\", custom address {alias}, action "
                                 "\"Send to an email\", destination {gmail}.").format(
                                     alias=alias.local, gmail=gmail)))
            continue
        if len(mine) > 1:
            out.append(Finding("CF_RULE_DUPLICATE", "warning",
                               _("{count} rules match {address}; only the newest applies, so "
                                 "the others only confuse whoever edits them.").format(
                                     count=len(mine), address=alias.address),
                               _("In Email → Email Routing → Routing rules, delete the older "
                                 "rules for {address}.").format(address=alias.address)))
        rule = mine[-1]  # of several rules for one address only the newest applies
        if rule.action == "drop":
            out.append(Finding("CF_RULE_DROP", "error",
                               _("The rule for {address} drops the mail: it is accepted and "
                                 "never delivered, and the sender is not told.").format(
                                     address=alias.address),
                               _("In Email → Email Routing → Routing rules, edit {address}: "
                                 "action \"Send to an email\", destination {gmail}.").format(
                                     address=alias.address, gmail=gmail)))
        elif rule.action != "forward":
            out.append(Finding("CF_RULE_ELSEWHERE", "warning",
                               _("The rule for {address} sends mail to a Worker ({action}), "
                                 "not to {gmail}.").format(address=alias.address,
                                                           action=rule.action, gmail=gmail),
                               _("If that is not intended, edit the rule in Email → Email "
                                 "Routing.")))
        elif gmail not in rule.destinations:
            out.append(Finding("CF_RULE_ELSEWHERE", "warning",
                               _("The rule for {address} forwards to {destinations}, not to "
                                 "{gmail}: probes to it can never reach the configured Gmail."
                                 ).format(address=alias.address, gmail=gmail,
                                          destinations=", ".join(rule.destinations) or "-"),
                               _("In Email → Email Routing → Routing rules, edit {address}: "
                                 "destination {gmail} (or fix [gmail] address).").format(
                                     address=alias.address, gmail=gmail)))
        if not rule.enabled:
            unverified = known is not None and rule.action == "forward" and any(
                not known.get(d, False) for d in rule.destinations)
            out.append(Finding("CF_RULE_DISABLED", "error",
                               (_("The rule for {address} is disabled (its destination is not "
                                  "verified, and Cloudflare keeps such rules disabled): "
                                  "Cloudflare answers 550 5.1.1 for it.") if unverified else
                                _("The rule for {address} is disabled: Cloudflare answers 550 "
                                  "5.1.1 for it.")).format(address=alias.address),
                               _("In Email → Email Routing → Routing rules, switch the rule "
                                 "for {address} to Active.").format(address=alias.address)))
    out += _destinations(view, rules, gmail, known)
    out += _others(rules, config, gmail)
    return out


def _destinations(view: View, rules: list[RuleView], gmail: str,
                  known: dict[str, bool] | None) -> list[Finding]:
    if known is None:
        reply = view.replies.get("addresses")
        return [] if reply is None or reply.denied else [
            _unread(_("the destination addresses"), reply)]
    out = []
    verify = _("In Email → Email Routing → Destination addresses: add {gmail} (or \"Resend "
               "verification\"), then click the link in the mail Cloudflare sends to it."
               ).format(gmail=gmail)
    if gmail not in known:
        out.append(Finding("CF_DESTINATION_MISSING", "error",
                           _("{gmail} is not a destination address of this account: no rule "
                             "can forward to it.").format(gmail=gmail), verify))
    elif not known[gmail]:
        out.append(Finding("CF_DESTINATION_UNVERIFIED", "error",
                           _("The destination {gmail} is not verified: Cloudflare keeps every "
                             "rule that forwards to it disabled.").format(gmail=gmail), verify))
    gone = sorted({d for r in rules if r.action == "forward" for d in r.destinations
                   if d not in known})
    for d in gone:
        out.append(Finding("CF_RULE_DESTINATION_GONE", "warning",
                           _("Rules forward to {address}, which is no longer a destination "
                             "address: Cloudflare disabled them when it was deleted.").format(
                                 address=d),
                           _("In Email → Email Routing: add {address} again under Destination "
                             "addresses, or point those rules elsewhere.").format(address=d)))
    return out


def _others(rules: list[RuleView], config: Config, gmail: str) -> list[Finding]:
    aliases = {a.address for a in config.aliases}
    out = []
    for r in rules:
        if r.address in aliases:
            continue
        if r.action == "drop" and r.enabled:
            out.append(Finding("CF_RULE_DROP", "info",
                               _("The rule for {address} (not an alias in the config) drops "
                                 "its mail.").format(address=r.address), ""))
        elif r.action == "forward" and gmail not in r.destinations and r.enabled:
            out.append(Finding("CF_RULE_ELSEWHERE", "info",
                               _("The rule for {address} (not an alias in the config) "
                                 "forwards to {destinations}.").format(
                                     address=r.address, destinations=", ".join(r.destinations)),
                               ""))
    used = len(rules)
    out.append(Finding("CF_RULES_LIMIT", "warning" if used >= MAX_RULES * 0.9 else "info",
                       _("{used} of the {limit} routing rules a zone may have are in use."
                         ).format(used=used, limit=MAX_RULES),
                       "" if used < MAX_RULES * 0.9 else
                       _("Delete unused rules in Email → Email Routing, or route rarely used "
                         "addresses through the catch-all.")))
    return out


def catch_all(view: View) -> list[Finding]:
    reply = view.replies.get("catch_all")
    if reply is None or reply.denied:
        return []
    if not reply.success or not isinstance(reply.result, dict):
        return [_unread(_("the catch-all"), reply)]
    c = reply.result
    actions = _list(c.get("actions"))
    action = _s(actions[0].get("type"), 20) if actions else ""
    if c.get("enabled") is not True:
        return [Finding("CF_CATCH_ALL", "info",
                        _("The catch-all is disabled: mail to a mistyped address bounces with "
                          "550 5.1.1, so its sender learns of the mistake."))]
    if action == "drop":
        return [Finding("CF_CATCH_ALL_DROP", "warning",
                        _("The catch-all is enabled with action drop: mail to any mistyped or "
                          "unknown address is accepted and silently thrown away; its sender "
                          "never learns it was lost."),
                        _("In Email → Email Routing → Routing rules → Catch-all address: "
                          "disable it (senders then get a bounce), or send it to your Gmail "
                          "address."))]
    # action is Cloudflare's own word (forward, worker), quoted as it is.
    return [Finding("CF_CATCH_ALL", "info",
                    _("The catch-all is enabled ({action}): mail to any address at the domain, "
                      "mistyped or not, is accepted, and spammers who guess addresses reach you "
                      "too.").format(action=action or "?"))]


async def diagnose(config: Config, dns: DnsClient) -> list[Finding]:
    """Every Cloudflare finding; one info line when [cloudflare] is absent."""
    cf = config.cloudflare
    if cf is None:
        return [Finding("CF_NOT_CONFIGURED", "info",
                        _("No [cloudflare] section: Cloudflare's own view (routing rules, "
                          "destinations, the activity log) was not checked."),
                        _("Add a read-only API token as docs/setup.md describes."))]
    async with CloudflareClient(cf, tls=config.tls, dns=config.dns,
                                timeout_s=config.timeouts.command_s) as client:
        view = await read(client, cf.zone, config.domain)
    first = token(view)
    if first[0].severity == "error":
        return first
    return [*first, *_denied(view, ("zones", "settings", "rules", "addresses")),
            *await zone(view, cf.zone, dns), *settings(view), *await records(view, dns),
            *aliases(view, config), *catch_all(view),
            *await registration.dnssec(view.replies.get("dnssec"), config.domain, dns),
            *registration.expiry(view.rdap, config.domain)]
