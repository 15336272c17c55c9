"""The zone's routing rules, read for ``flowtest init --from-cloudflare``:
which addresses already forward to the owner's Gmail."""

from __future__ import annotations

from flowtest.net.cloudflare import ApiReply, CloudflareClient


async def forwarding_to(client: CloudflareClient, zone: str,
                        gmail: str) -> tuple[list[str], ApiReply | None]:
    """(addresses whose enabled literal rule forwards to ``gmail``, the reply
    that failed or None). Of several rules for one address only the newest
    applies (FACTS.md), so a later rule sending it elsewhere wins."""
    zones = await client.get("/zones", {"name": zone})
    found = zones.result if zones.success and isinstance(zones.result, list) else []
    zid = found[0].get("id") if found and isinstance(found[0], dict) else None
    if not isinstance(zid, str) or not zid.isalnum():
        return [], zones
    rules = await client.get_all(f"/zones/{zid}/email/routing/rules")
    if not rules.success or not isinstance(rules.result, list):
        return [], rules
    newest: dict[str, bool] = {}
    for rule in rules.result:
        if not isinstance(rule, dict):
            continue
        matchers, actions = rule.get("matchers"), rule.get("actions")
        if not (isinstance(matchers, list) and matchers and isinstance(matchers[0], dict)
                and matchers[0].get("type") == "literal"):
            continue
        address = matchers[0].get("value")
        if not isinstance(address, str) or not address.endswith("@" + zone):
            continue
        first = actions[0] if isinstance(actions, list) and actions else {}
        values = first.get("value") if isinstance(first, dict) else None
        newest[address.lower()] = (rule.get("enabled") is True and first.get("type") == "forward"
                                   and isinstance(values, list)
                                   and gmail.lower() in (str(v).lower() for v in values))
    return sorted(a for a, ok in newest.items() if ok), None
