"""The domain's registration as the doctor sees it beside Cloudflare: the DS
record the parent publishes against Cloudflare's DNSSEC state, and the
expiry date RDAP gives. Split from :mod:`flowtest.doctor.cloudflare`, which
reads the API (the ``View`` these checks are given)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from flowtest.doctor.findings import Finding
from flowtest.i18n import gettext as _
from flowtest.mail.text import quote
from flowtest.net.cloudflare import ApiReply
from flowtest.net.dns import DnsClient

EXPIRY_WARN_DAYS = 30


def _s(value: object, limit: int = 200) -> str:
    return quote(value if isinstance(value, str) else "", limit)


def _list(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


async def dnssec(reply: ApiReply | None, domain: str, dns: DnsClient) -> list[Finding]:
    if reply is None or not reply.success or not isinstance(reply.result, dict):
        return []
    status = _s(reply.result.get("status"), 20)
    ds_cf = _s(reply.result.get("ds"), 500)
    parent = await dns.query(domain, "DS")
    if parent.failed:
        return []
    published = list(parent.records)
    if published and status != "active":
        # status is Cloudflare's own word (machine text), quoted as it is.
        return [Finding("CF_DNSSEC_STALE_DS", "error",
                        _("The parent zone publishes a DS record for {domain}, but DNSSEC is "
                          "{status} at Cloudflare: validating resolvers reject every answer, "
                          "so for many senders the whole domain does not resolve.").format(
                              domain=domain, status=status or _("off")),
                        _("Remove the DS record at your registrar, or in Cloudflare's DNS → "
                          "Settings enable DNSSEC and publish the DS record it shows."))]
    if published and ds_cf:
        fields = ds_cf.split()
        wanted = " ".join(fields[-4:]).lower() if len(fields) >= 4 else ds_cf.lower()
        if not any(wanted.replace(" ", "") in p.lower().replace(" ", "") for p in published):
            return [Finding("CF_DNSSEC_STALE_DS", "error",
                            _("The DS record the parent publishes for {domain} does not match "
                              "Cloudflare's key: validating resolvers reject the domain."
                              ).format(domain=domain),
                            _("At your registrar, replace the DS record with the one "
                              "Cloudflare shows under DNS → Settings → DNSSEC."))]
    if status == "active" and not published:
        return [Finding("CF_DNSSEC_PENDING", "warning",
                        _("DNSSEC is on at Cloudflare, but the parent zone publishes no DS "
                          "record, so nothing is protected yet."),
                        _("Add the DS record Cloudflare shows (DNS → Settings → DNSSEC) at "
                          "your registrar."))]
    return [Finding("CF_DNSSEC_OK", "info",
                    _("DNSSEC: signed, and the parent publishes a matching DS.") if published
                    else _("DNSSEC: off, and the parent publishes no DS."))]


def expiry(rdap: tuple[int, dict[str, Any] | None, str], domain: str,
           now: float | None = None) -> list[Finding]:
    status, doc, failure = rdap
    if doc is None:
        return [Finding("RDAP_UNAVAILABLE", "info",
                        _("The registration of {domain} could not be read through RDAP "
                          "({failure}); its expiry was not checked.").format(
                              domain=domain, failure=failure or f"HTTP {status}"))]
    when = None
    for event in _list(doc.get("events")):
        if event.get("eventAction") == "expiration" and isinstance(event.get("eventDate"), str):
            try:
                when = datetime.fromisoformat(event["eventDate"].replace("Z", "+00:00"))
            except ValueError:
                when = None
    if when is None or when.tzinfo is None:
        return [Finding("RDAP_UNAVAILABLE", "info",
                        _("The registry's RDAP answer for {domain} has no expiry date."
                          ).format(domain=domain))]
    days = (when.timestamp() - (time.time() if now is None else now)) / 86400
    date = when.date().isoformat()
    if days < 0:
        return [Finding("DOMAIN_EXPIRED", "error",
                        _("The registration of {domain} expired on {date}: once the registry "
                          "removes it, no mail reaches any alias.").format(domain=domain,
                                                                          date=date),
                        _("Renew the domain at your registrar now."))]
    if days < EXPIRY_WARN_DAYS:
        return [Finding("DOMAIN_EXPIRES_SOON", "warning",
                        _("The registration of {domain} expires on {date}, in {days} days "
                          "(free one-year domains are not always renewed automatically)."
                          ).format(domain=domain, date=date, days=int(days)),
                        _("Renew the domain at your registrar, or turn on auto-renew."))]
    return [Finding("DOMAIN_EXPIRY", "info",
                    _("The registration of {domain} runs until {date}.").format(
                        domain=domain, date=date))]
