"""The outbound leg: Gmail "Send mail as" name@domain -> the probe mailbox.

Submits through smtp.gmail.com with the app password, From: the alias, and
reads what the receiving provider concluded: its trusted
Authentication-Results, the From it saw, the envelope, and any bounce Gmail
sent back to the account.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

from flowtest import config as cfg
from flowtest.config import Alias, Config
from flowtest.errors import FlowtestError
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
from flowtest.mail.dmarc import DmarcRecord, is_dmarc, parse_record
from flowtest.mail.judge import DmarcRecordState
from flowtest.mail.orgdomain import org_domain
from flowtest.model import Diagnosis, ProbeResult
from flowtest.net.dns import DnsClient
from flowtest.net.imap import Watcher
from flowtest.net.smtp import Receipt
from flowtest.secrets import redact

__all__ = ["DmarcLookup", "Options", "dmarc_record", "gmail_signed", "run"]


@dataclass(frozen=True)
class DmarcLookup:
    """What the DMARC lookup of a domain found. ``unknown`` (a timeout or
    SERVFAIL) is its own state: it never reads as "no policy published"."""

    state: DmarcRecordState
    record: str = ""          # the record's text when found
    detail: str = ""          # which lookup failed and how, when unknown


async def dmarc_record(client: DnsClient, domain: str) -> DmarcLookup:
    """The one DMARC record at _dmarc.<domain> (or, failing that, at the
    organizational domain, RFC 7489 §6.6.3)."""
    for name in dict.fromkeys((domain, org_domain(domain))):
        answer = await client.query(f"_dmarc.{name}", "TXT")
        if answer.failed:
            # Falling through to the org domain here would read a policy the
            # subdomain may override: stop, and say the answer is unknown.
            return DmarcLookup("unknown", detail=_("{status} at {name}").format(
                status=answer.status, name=f"_dmarc.{name}"))
        records = [r for r in answer.records if is_dmarc(r)]
        if len(records) == 1:
            return DmarcLookup("found", records[0])
        if records:
            return DmarcLookup("several")  # receivers ignore DMARC (RFC 7489 §6.6.3)
    return DmarcLookup("absent")


_GMAIL_D_RE = re.compile(r"(?:^|;)\s*d\s*=\s*gmail\.com\s*(?:;|$)", re.IGNORECASE)


def gmail_signed(raw: bytes | Message) -> bool:
    """Whether Gmail signed the message: a DKIM-Signature with d=gmail.com.
    Gmail's send-as mail comes in both forms (FACTS.md); X-Google-DKIM-Signature
    (d=1e100.net) is not a signature any receiver checks. Takes the raw
    message or its already parsed headers."""
    try:
        headers = BytesHeaderParser().parsebytes(raw) if isinstance(raw, bytes) else raw
        values = headers.get_all("DKIM-Signature") or []
    except Exception:  # hostile input must not crash a reader
        return False
    return any(_GMAIL_D_RE.search(" ".join(str(v).split())) for v in values)


async def run(config: Config, *, aliases: Sequence[Alias] | None = None,
              run_id: str | None = None, options: Options | None = None,
              progress: Progress = quiet,
              expect_dmarc_pass: bool = False,
              warm: WarmWatchers | None = None) -> list[ProbeResult]:
    """Send one probe as each alias; one result per alias, in the order given.

    The domain's DMARC record, read from DNS, gives the policy the verdict is
    judged under and the alignment modes (relaxed or strict).
    """
    opts = options or Options()
    lookup = await dmarc_record(DnsClient(config.dns), config.domain)
    dmarc = parse_record(lookup.record) if lookup.state == "found" else None
    targets = list(aliases if aliases is not None else config.aliases)
    rid = run_id or probe.new_run_id()
    # Outbound tokens are numbered after any inbound ones of the same run.
    probes = [probe.build(probe.token_for(rid, 5000 + i), leg="outbound", sender=a.address,
                          recipient=config.probe.address, html=opts.html,
                          attachment=opts.attachment)
              for i, a in enumerate(targets)]
    prefix = probe.run_prefix(rid)
    receiver = warm.probe if warm else Watcher(
        config.probe, tls=config.tls, timeouts=config.timeouts, prefix=prefix,
        limit=config.limits.imap_connections, poll_s=opts.poll_s)
    # Gmail sends bounces about refused send-as mail back to the account.
    gmail = warm.gmail if warm else Watcher(
        config.gmail, tls=config.tls, timeouts=config.timeouts, prefix=prefix,
        limit=config.limits.imap_connections, poll_s=opts.poll_s, app_password=True,
        bounces=True)

    async def judge_one(alias: Alias, p: probe.Probe,
                        receipt: Receipt | FlowtestError) -> ProbeResult:
        return await _await_probe(config, alias, p, receipt, receiver, gmail, opts, progress,
                                  dmarc, lookup, expect_dmarc_pass)

    return await run_leg(config, "outbound", targets, probes, rid, sender=config.gmail,
                         app_password=True, target=(receiver, False), reports=(gmail, True),
                         judge=judge_one, progress=progress, warm=warm is not None)


async def _await_probe(config: Config, alias: Alias, p: probe.Probe,
                       receipt: Receipt | FlowtestError, receiver: Watcher, gmail: Watcher,
                       opts: Options, progress: Progress, dmarc: DmarcRecord | None,
                       lookup: DmarcLookup, expect_dmarc_pass: bool) -> ProbeResult:
    if isinstance(receipt, FlowtestError):
        code = error_code(receipt)
        refused = judge.submission_refused(
            config.gmail.address, str(receipt),
            otherwise="GMAIL_SEND_REFUSED" if code == "SERVER_REFUSED" else code)
        # Gmail's daily limit is a finding about the mail path (fail), not an error.
        return ProbeResult(leg="outbound", alias=alias.address, token=p.token,
                           verdict=refused.verdict, delivered=False, folder=None,
                           latency_s=None, findings=(dataclasses.replace(
                               refused, text=redact(refused.text)),))
    w = await wait_for_probe(p.token, alias.address, target=receiver, reports=gmail,
                             accepted_at=receipt.accepted_at, timeout=config.timeouts.delivery_s,
                             settle_s=opts.settle_s, progress=progress)
    if w.error:
        return error_result("outbound", alias.address, p.token, w.error, code="WATCH_FAILED")
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
        expect_dmarc_pass=expect_dmarc_pass,
        sender_header=str(headers.get("Sender", "")) if headers else "",
        gmail_signed=gmail_signed(headers) if headers else None,
        dmarc_record=lookup.state, dmarc_detail=lookup.detail)
    findings = judge.judge_outbound(facts, config.thresholds)
    verdict = judge.verdict_of(findings)
    progress("judged", alias.address, verdict)
    return ProbeResult(
        leg="outbound", alias=alias.address, token=p.token, verdict=verdict,
        delivered=arrival is not None, folder=arrival.folder if arrival else None,
        latency_s=latency,
        hops=tuple(received.hops(arrival.raw, sent_at=receipt.accepted_at)) if arrival else (),
        auth=auth, intact=facts.intact, copies=len(w.copies),
        findings=tuple(Diagnosis(f.code, redact(f.text), f.verdict) for f in findings),
        sent_at=receipt.accepted_at,
        seen_at=arrival.seen_at if arrival else None, smtp_timings=receipt.timings)
