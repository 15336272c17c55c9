"""The inbound leg: probe account -> name@domain -> Cloudflare -> Gmail.

Every probe of a run is sent through one SMTP session and waited for on one
shared IMAP watcher per mailbox: Gmail for the forwarded copy, the probe
account for bounces and delay warnings.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowtest.config import Alias, Config, receiver
from flowtest.errors import FlowtestError
from flowtest.flows import cfjoin
from flowtest.flows.common import (
    Options,
    Progress,
    WarmWatchers,
    error_code,
    error_result,
    quiet,
    run_leg,
)
from flowtest.flows.common import wait_for as wait_for_probe
from flowtest.i18n import gettext as _
from flowtest.mail import authresults, judge, probe, received
from flowtest.mail.bounce import Bounce
from flowtest.model import Diagnosis, ProbeResult
from flowtest.net.dns import DnsClient
from flowtest.net.imap import Watcher
from flowtest.net.smtp import Receipt
from flowtest.secrets import redact

__all__ = ["Options", "run", "same_account_problem"]

CLOUDFLARE_AUTHSERV_ID = authresults.CLOUDFLARE_AUTHSERV_ID


def same_account_problem(config: Config) -> str | None:
    if config.probe.address.lower() == config.gmail.address.lower():
        return _("The probe account is the Gmail account ({account}). Gmail silently drops a "
                 "message it sent itself when it comes back through forwarding, so every "
                 "inbound probe would look lost. Use an account at another provider as "
                 "[probe].").format(account=config.gmail.address)
    return None


async def run(config: Config, *, aliases: Sequence[Alias] | None = None,
              run_id: str | None = None, options: Options | None = None,
              progress: Progress = quiet, warm: WarmWatchers | None = None,
              ) -> list[ProbeResult]:
    """Probe every alias at once; one result per alias, in the order given.
    ``warm``: already started watchers to use (and leave running)."""
    opts = options or Options()
    targets = list(aliases if aliases is not None else config.aliases)
    rid = run_id or probe.new_run_id()
    probes = [probe.build(probe.token_for(rid, i), leg="inbound", sender=config.probe.address,
                          recipient=a.address, html=opts.html, attachment=opts.attachment)
              for i, a in enumerate(targets)]
    trap = same_account_problem(config)
    if trap:
        return [error_result("inbound", a.address, p.token, trap, code="SAME_ACCOUNT")
                for a, p in zip(targets, probes, strict=True)]

    prefix = probe.run_prefix(rid)
    gmail = warm.gmail if warm else Watcher(
        config.gmail, tls=config.tls, timeouts=config.timeouts, prefix=prefix,
        limit=config.limits.imap_connections, poll_s=opts.poll_s, app_password=True)
    # The probe account receives bounces and delay warnings about the probes.
    sender_box = warm.probe if warm else Watcher(
        config.probe, tls=config.tls, timeouts=config.timeouts, prefix=prefix,
        limit=config.limits.imap_connections, poll_s=opts.poll_s, bounces=True)

    async def judge_one(alias: Alias, p: probe.Probe,
                        receipt: Receipt | FlowtestError) -> ProbeResult:
        return await _await_probe(config, alias, p, receipt, gmail, sender_box, opts, progress)

    results = await run_leg(config, "inbound", targets, probes, rid, sender=config.probe,
                            app_password=False, target=(gmail, True),
                            reports=(sender_box, False), judge=judge_one, progress=progress,
                            warm=warm is not None)
    # Cloudflare's activity log explains what the mailboxes cannot (issue 17).
    return await cfjoin.amend(config, results, {p.token: p.message_id for p in probes})


async def _await_probe(config: Config, alias: Alias, p: probe.Probe,
                       receipt: Receipt | FlowtestError, gmail: Watcher, sender_box: Watcher,
                       opts: Options, progress: Progress) -> ProbeResult:
    if isinstance(receipt, FlowtestError):
        return error_result("inbound", alias.address, p.token,
                            _("The probe could not be sent: {reply}").format(reply=receipt),
                            code=error_code(receipt))
    w = await wait_for_probe(p.token, alias.address, target=gmail, reports=sender_box,
                             accepted_at=receipt.accepted_at, timeout=config.timeouts.delivery_s,
                             settle_s=opts.settle_s, progress=progress)
    if w.error:
        return error_result("inbound", alias.address, p.token, w.error, code="WATCH_FAILED")
    arrival = w.arrival
    latency = arrival.seen_at - receipt.accepted_at if arrival else None
    auth = authresults.trusted(arrival.raw, receiver(config.gmail)) if arrival else None
    relay_auth = authresults.arc_verdict(arrival.raw, CLOUDFLARE_AUTHSERV_ID) if arrival else None
    intact = probe.content_digest(arrival.raw) == p.digest if arrival else None
    facts = judge.InboundFacts(
        alias=alias.address, sender_domain=p.sender.rpartition("@")[2],
        folder_roles=tuple(c.role for c in w.copies), latency_s=latency, intact=intact,
        auth=auth, relay_auth=relay_auth, bounces=tuple(w.bounces), waited_s=w.waited_s,
        reconnects=gmail.reconnects,
        mx_hosts=await _mx_if_it_matters(config, w.bounces) if arrival is None else None)
    findings = judge.judge_inbound(facts, config.thresholds)
    verdict = judge.verdict_of(findings)
    progress("judged", alias.address, verdict)
    return ProbeResult(
        leg="inbound", alias=alias.address, token=p.token, verdict=verdict,
        delivered=arrival is not None, folder=arrival.folder if arrival else None,
        latency_s=latency,
        hops=tuple(received.hops(arrival.raw, sent_at=receipt.accepted_at)) if arrival else (),
        auth=auth, relay_auth=relay_auth, intact=intact, copies=len(w.copies),
        findings=tuple(Diagnosis(f.code, redact(f.text), f.verdict) for f in findings),
        sent_at=receipt.accepted_at,
        seen_at=arrival.seen_at if arrival else None, smtp_timings=receipt.timings)


async def _mx_if_it_matters(config: Config, bounces: list[Bounce]) -> tuple[str, ...] | None:
    """The domain's MX hosts, looked up only when a final bounce came from a
    server that is not Cloudflare's: the one case where "the MX points
    elsewhere" is a candidate. None when the lookup failed: no MX verdict is
    drawn from a resolver that could not say."""
    if not any(b.final and not judge.is_cloudflare(b.remote_mta) for b in bounces):
        return None
    answer = await DnsClient(config.dns).query(config.domain, "MX")
    if answer.failed:
        return None
    return tuple(r.split()[-1].rstrip(".") for r in answer.records)
