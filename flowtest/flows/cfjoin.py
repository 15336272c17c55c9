"""Lost, late, spammed and bounced inbound probes joined with Cloudflare's
activity log, by Message-ID (GraphQL ``emailRoutingAdaptive``).

Rows appear minutes late (FACTS.md: 2 to 17), so a run polls with back-off
up to its own timeout and then records "not in Cloudflare's log yet";
``flowtest explain RUN_ID`` looks again later and amends the report. The
judging itself is pure (:mod:`flowtest.mail.cflog`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from flowtest.config import Config
from flowtest.i18n import gettext as _
from flowtest.mail import cflog
from flowtest.mail.codes import finding
from flowtest.model import CloudflareLog, Diagnosis, ProbeResult, worst
from flowtest.net.cloudflare import CloudflareClient

QUERY = """
query ProbeRows($zone: String!, $messageId: String!, $since: Time!) {
  viewer {
    zones(filter: {zoneTag: $zone}) {
      emailRoutingAdaptive(limit: 20, orderBy: ["datetime_ASC"],
                           filter: {messageId: $messageId, datetime_geq: $since}) {
        datetime messageId to status action ruleMatched spf dkim dmarc arc errorDetail
      }
    }
  }
}
"""
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
JOIN_CODES = frozenset(("CF_NEVER_REACHED", "CF_REJECTED", "CF_FORWARD_REFUSED",
                        "CF_DELIVERED_NOT_FILED", "CF_DROPPED", "CF_DROPPED_CATCH_ALL",
                        "CF_LOG_STATUS", "CF_LOG_DELIVERED", "CF_LOG_PENDING",
                        "CF_LOG_UNAVAILABLE"))


# Bounces the log cannot add to: refused at RCPT (no Message-ID has been
# sent yet, so no row can carry it) or by another provider's MX.
SETTLED_BY_BOUNCE = frozenset({"NO_ROUTING_RULE", "MX_FOREIGN", "MX_MISSING"})


def wanted(result: ProbeResult) -> bool:
    """Only probes that need explaining: lost, late, in Spam or bounced."""
    return (result.leg == "inbound" and result.verdict in ("warn", "fail")
            and not SETTLED_BY_BOUNCE & set(result.codes))


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class LogReader:
    """One client and one zone lookup for every probe of a run."""

    def __init__(self, client: CloudflareClient, zone: str) -> None:
        self.client = client
        self.zone_name = zone
        self.zone_id: str | None = None
        # Machine text (the report's ``cloudflare_log.detail``, the same in every
        # language): what failed, in Cloudflare's own words or an HTTP status.
        self.failure = ""

    async def zone(self) -> str | None:
        if self.zone_id is None and not self.failure:
            reply = await self.client.get("/zones", {"name": self.zone_name})
            found = reply.result if reply.success and isinstance(reply.result, list) else []
            first = found[0] if found and isinstance(found[0], dict) else {}
            zid = first.get("id")
            if isinstance(zid, str) and zid.isalnum():
                self.zone_id = zid
            else:
                self.failure = (f"zone {self.zone_name}: "
                                f"{reply.describe() if not reply.success else 'not found'}")
        return self.zone_id

    async def rows(self, message_id: str, since: float) -> list[cflog.LogRow] | None:
        """The rows for one Message-ID (angle brackets kept, as Cloudflare
        keeps them), or None when the log could not be read."""
        zid = await self.zone()
        if zid is None:
            return None
        reply = await self.client.graphql(QUERY, {"zone": zid, "messageId": message_id,
                                                  "since": _iso(since)})
        if reply.data is None or reply.errors:
            self.failure = "; ".join(reply.errors)[:300] or f"HTTP {reply.http_status}"
            return None
        return cflog.rows_of(reply.data)


def judged(rows: list[cflog.LogRow] | None, *, message_id: str, alias: str, delivered: bool,
           sent_at: float | None, looked_at: float, failure: str,
           settled_s: float) -> tuple[CloudflareLog, list[Diagnosis]]:
    if rows is None:
        return (CloudflareLog("unavailable", message_id, looked_at, detail=failure),
                [finding("CF_LOG_UNAVAILABLE", "pass",
                         _("Cloudflare's activity log could not be read ({failure})."
                           ).format(failure=failure))])
    waited = looked_at - sent_at if sent_at is not None else 0.0
    diags = cflog.judge(rows, alias=alias, delivered=delivered, sent_at=sent_at,
                        waited_s=waited, settled_s=settled_s)
    state: Literal["found", "absent", "pending"] = (
        "found" if rows else "absent" if diags[0].code == "CF_NEVER_REACHED" else "pending")
    return (CloudflareLog(state, message_id, looked_at, tuple(r.to_json() for r in rows)),
            diags)


def amended(result: ProbeResult, log: CloudflareLog, diags: list[Diagnosis]) -> ProbeResult:
    kept = tuple(f for f in result.findings if f.code not in JOIN_CODES)
    findings = kept + tuple(diags)
    return dataclasses.replace(result, findings=findings, diagnosis=(), cloudflare_log=log,
                               verdict=worst([result.verdict, *(d.verdict for d in diags)]))


async def amend(config: Config, results: Sequence[ProbeResult], message_ids: Mapping[str, str],
                *, settled_s: float = cflog.LOG_SETTLED_S,
                backoff: Sequence[float] = BACKOFF_S) -> list[ProbeResult]:
    """Join every probe that needs it, polling each until its rows show or
    the run's own timeout (sent_at + delivery timeout) passes."""
    out = list(results)
    todo = [i for i, r in enumerate(out) if wanted(r) and r.token in message_ids]
    if config.cloudflare is None or not todo:
        return out
    async with CloudflareClient(config.cloudflare, tls=config.tls, dns=config.dns,
                                timeout_s=config.timeouts.command_s) as client:
        reader = LogReader(client, config.cloudflare.zone)
        delays = iter(backoff)
        while todo:
            left = []
            for i in todo:
                r = out[i]
                sent = r.sent_at if r.sent_at is not None else time.time()
                rows = await reader.rows(message_ids[r.token], sent - 300)
                now = time.time()
                deadline = sent + config.timeouts.delivery_s
                if rows == [] and now < deadline:
                    left.append(i)
                    continue
                log, diags = judged(rows, message_id=message_ids[r.token], alias=r.alias,
                                    delivered=r.delivered, sent_at=r.sent_at, looked_at=now,
                                    failure=reader.failure, settled_s=settled_s)
                out[i] = amended(r, log, diags)
            todo = left
            if todo:
                last = max((out[i].sent_at or 0.0) for i in todo) + config.timeouts.delivery_s
                delay = next(delays, backoff[-1] if backoff else 1.0)
                # Never past the run's own timeout: the last look happens at it.
                await asyncio.sleep(max(0.0, min(delay, last - time.time())))
    return out


async def explain(config: Config, report: dict[str, Any], *,
                  settled_s: float = cflog.LOG_SETTLED_S) -> int:
    """Look once more for a report's unexplained inbound probes and amend
    their entries in place; returns how many were amended."""
    if config.cloudflare is None:
        return 0
    probes = [p for p in report.get("probes", []) if isinstance(p, dict)
              and p.get("leg") == "inbound" and p.get("verdict") in ("warn", "fail")
              and not SETTLED_BY_BOUNCE & {f.get("code") for f in p.get("findings", [])
                                           if isinstance(f, dict)}]
    domain = config.probe.address.rpartition("@")[2]
    changed = 0
    async with CloudflareClient(config.cloudflare, tls=config.tls, dns=config.dns,
                                timeout_s=config.timeouts.command_s) as client:
        reader = LogReader(client, config.cloudflare.zone)
        for p in probes:
            raw = p.get("cloudflare_log")
            prior: dict[str, Any] = raw if isinstance(raw, dict) else {}
            if prior.get("state") in ("found", "absent"):
                continue
            message_id = str(prior.get("message_id") or f"<{p.get('token')}@{domain}>")
            sent = p.get("sent_at") if isinstance(p.get("sent_at"), int | float) else None
            rows = await reader.rows(message_id, (sent or time.time()) - 300)
            log, diags = judged(rows, message_id=message_id, alias=str(p.get("alias", "")),
                                delivered=bool(p.get("delivered")), sent_at=sent,
                                looked_at=time.time(), failure=reader.failure,
                                settled_s=settled_s)
            findings = [f for f in p.get("findings", []) if isinstance(f, dict)
                        and f.get("code") not in JOIN_CODES] + [d.to_json() for d in diags]
            p["findings"] = findings
            p["diagnosis"] = [str(f.get("message", "")) for f in findings]
            p["verdict"] = worst([p["verdict"], *(d.verdict for d in diags)])
            p["cloudflare_log"] = log.to_json()
            changed += 1
    if changed:
        verdicts = [p.get("verdict") for p in report.get("probes", []) if isinstance(p, dict)]
        report["verdict"] = worst([report.get("verdict", "pass"), *verdicts])  # type: ignore[list-item]
    return changed
