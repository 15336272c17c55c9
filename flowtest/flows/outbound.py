"""The outbound leg: Gmail "Send mail as" name@domain -> the probe mailbox.

Submits through smtp.gmail.com with the app password, From: the alias, and
reads what the receiving provider concluded: its trusted
Authentication-Results, the From it saw, the envelope, and any bounce Gmail
sent back to the account.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from email.parser import BytesHeaderParser

from flowtest import config as cfg
from flowtest.config import Alias, Config
from flowtest.errors import FlowtestError
from flowtest.flows.common import Options, Progress, error_result, quiet, run_leg
from flowtest.flows.common import wait_for as wait_for_probe
from flowtest.mail import authresults, judge, probe, received
from flowtest.mail.dmarc import DmarcRecord, is_dmarc, parse_record
from flowtest.mail.orgdomain import org_domain
from flowtest.model import ProbeResult
from flowtest.net.dns import DnsClient
from flowtest.net.imap import Watcher
from flowtest.net.smtp import Receipt
from flowtest.secrets import redact

__all__ = ["Options", "run"]


async def dmarc_record(client: DnsClient, domain: str) -> str | None:
    """The one DMARC record at _dmarc.<domain> (or, failing that, at the
    organizational domain), as text; None if there is none or several."""
    for name in dict.fromkeys((domain, org_domain(domain))):
        answer = await client.query(f"_dmarc.{name}", "TXT")
        records = [r for r in answer.records if is_dmarc(r)]
        if len(records) == 1:
            return records[0]
        if records:
            return None  # several records: receivers ignore DMARC (RFC 7489 §6.6.3)
    return None


async def run(config: Config, *, aliases: Sequence[Alias] | None = None,
              run_id: str | None = None, options: Options | None = None,
              progress: Progress = quiet,
              expect_dmarc_pass: bool = False) -> list[ProbeResult]:
    """Send one probe as each alias; one result per alias, in the order given.

    The domain's DMARC record, read from DNS, gives the policy the verdict is
    judged under and the alignment modes (relaxed or strict).
    """
    opts = options or Options()
    text = await dmarc_record(DnsClient(config.dns), config.domain)
    dmarc = parse_record(text) if text else None
    targets = list(aliases if aliases is not None else config.aliases)
    rid = run_id or probe.new_run_id()
    # Outbound tokens are numbered after any inbound ones of the same run.
    probes = [probe.build(probe.token_for(rid, 5000 + i), leg="outbound", sender=a.address,
                          recipient=config.probe.address, html=opts.html,
                          attachment=opts.attachment)
              for i, a in enumerate(targets)]
    prefix = probe.run_prefix(rid)
    receiver = Watcher(config.probe, tls=config.tls, timeouts=config.timeouts, prefix=prefix,
                       limit=config.limits.imap_connections,
                       poll_s=opts.poll_s)
    # Gmail sends bounces about refused send-as mail back to the account.
    gmail = Watcher(config.gmail, tls=config.tls, timeouts=config.timeouts, prefix=prefix,
                    limit=config.limits.imap_connections,
                    poll_s=opts.poll_s, app_password=True, bounces=True)

    async def judge_one(alias: Alias, p: probe.Probe,
                        receipt: Receipt | FlowtestError) -> ProbeResult:
        return await _await_probe(config, alias, p, receipt, receiver, gmail, opts, progress,
                                  dmarc, expect_dmarc_pass)

    return await run_leg(config, "outbound", targets, probes, rid, sender=config.gmail,
                         app_password=True, target=(receiver, False), reports=(gmail, True),
                         judge=judge_one, progress=progress)


async def _await_probe(config: Config, alias: Alias, p: probe.Probe,
                       receipt: Receipt | FlowtestError, receiver: Watcher, gmail: Watcher,
                       opts: Options, progress: Progress, dmarc: DmarcRecord | None,
                       expect_dmarc_pass: bool) -> ProbeResult:
    if isinstance(receipt, FlowtestError):
        verdict, sentence = judge.submission_refused(config.gmail.address, str(receipt))
        result = error_result("outbound", alias.address, p.token, sentence)
        return dataclasses.replace(result, verdict=verdict)
    w = await wait_for_probe(p.token, alias.address, target=receiver, reports=gmail,
                             accepted_at=receipt.accepted_at, timeout=config.timeouts.delivery_s,
                             settle_s=opts.settle_s, progress=progress)
    if w.error:
        return error_result("outbound", alias.address, p.token, w.error)
    arrival = w.arrival
    modes = {"aspf": dmarc.aspf, "adkim": dmarc.adkim} if dmarc else {}
    trust = cfg.receiver(config.probe)
    auth = authresults.trusted(arrival.raw, trust, **modes) if arrival else None
    headers = BytesHeaderParser().parsebytes(arrival.raw) if arrival else None
    latency = arrival.seen_at - receipt.accepted_at if arrival else None
    facts = judge.OutboundFacts(
        alias=alias.address, gmail_address=config.gmail.address,
        folder_roles=tuple(c.role for c in w.copies), latency_s=latency,
        intact=probe.content_digest(arrival.raw) == p.digest if arrival else None,
        auth=auth,
        from_header=str(headers.get("From", "")) if headers else "",
        original_from=str(headers.get("X-Google-Original-From", "")) if headers else "",
        envelope=str(headers.get("Return-Path", "")) if headers else "",
        dmarc_policy=dmarc.policy if dmarc else "", bounces=tuple(w.bounces),
        waited_s=w.waited_s,
        expect_dmarc_pass=expect_dmarc_pass)
    verdict, diagnosis = judge.judge_outbound(facts, config.thresholds)
    progress("judged", alias.address, verdict)
    return ProbeResult(
        leg="outbound", alias=alias.address, token=p.token, verdict=verdict,
        delivered=arrival is not None, folder=arrival.folder if arrival else None,
        latency_s=latency,
        hops=tuple(received.hops(arrival.raw, sent_at=receipt.accepted_at)) if arrival else (),
        auth=auth, intact=facts.intact, copies=len(w.copies),
        diagnosis=tuple(redact(s) for s in diagnosis), sent_at=receipt.accepted_at,
        seen_at=arrival.seen_at if arrival else None, smtp_timings=receipt.timings)
