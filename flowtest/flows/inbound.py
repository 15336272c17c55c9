"""The inbound leg: probe account -> name@domain -> Cloudflare -> Gmail.

Every probe of a run is sent through one SMTP session and waited for on one
shared IMAP watcher per mailbox: Gmail for the forwarded copy, the probe
account for bounces and delay warnings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flowtest.config import Alias, Config
from flowtest.errors import FlowtestError, ProbeTimeout, TransportError
from flowtest.mail import authresults, bounce, judge, probe, received
from flowtest.net.imap import Arrival, Watcher, trash
from flowtest.net.smtp import Receipt, Submission
from flowtest.results import ProbeResult
from flowtest.secrets import redact

log = logging.getLogger("flowtest.inbound")
CLOUDFLARE_AUTHSERV_ID = "mx.cloudflare.net"

Progress = Callable[[str, str, str], None]  # (event, alias, detail)


def _quiet(event: str, alias: str, detail: str) -> None:
    pass


@dataclass(frozen=True)
class Options:
    poll_s: float = 5.0
    settle_s: float = 1.0        # after a probe arrives, keep watching this long for copies
    html: bool = False
    attachment: bytes | None = None


def same_account_problem(config: Config) -> str | None:
    if config.probe.address.lower() == config.gmail.address.lower():
        return (f"The probe account is the Gmail account ({config.gmail.address}). Gmail "
                "silently drops a message it sent itself when it comes back through "
                "forwarding, so every inbound probe would look lost. Use an account at "
                "another provider as [probe].")
    return None


def _error_result(alias: Alias, token: str, message: str) -> ProbeResult:
    return ProbeResult(leg="inbound", alias=alias.address, token=token, verdict="error",
                       delivered=False, folder=None, latency_s=None,
                       diagnosis=(redact(message),))


async def run(config: Config, *, aliases: Sequence[Alias] | None = None,
              run_id: str | None = None, options: Options | None = None,
              progress: Progress = _quiet) -> list[ProbeResult]:
    """Probe every alias at once; one result per alias, in the order given."""
    opts = options or Options()
    targets = list(aliases if aliases is not None else config.aliases)
    rid = run_id or probe.new_run_id()
    probes = [probe.build(probe.token_for(rid, i), leg="inbound", sender=config.probe.address,
                          recipient=a.address, html=opts.html, attachment=opts.attachment)
              for i, a in enumerate(targets)]
    trap = same_account_problem(config)
    if trap:
        return [_error_result(a, p.token, trap) for a, p in zip(targets, probes, strict=True)]

    prefix = probe.run_prefix(rid)
    gmail = Watcher(config.gmail, tls=config.tls, timeouts=config.timeouts, prefix=prefix,
                    poll_s=opts.poll_s, app_password=True)
    sender_box = Watcher(config.probe, tls=config.tls, timeouts=config.timeouts, prefix=prefix,
                         poll_s=opts.poll_s, bounces=True)
    progress("connect", "", f"watching {config.gmail.address} and {config.probe.address}")
    try:
        await asyncio.gather(gmail.start(), sender_box.start())
    except FlowtestError as exc:
        await asyncio.gather(gmail.stop(), sender_box.stop())
        return [_error_result(a, p.token, str(exc)) for a, p in zip(targets, probes, strict=True)]

    results: list[ProbeResult] = []
    try:
        receipts: dict[str, Receipt | FlowtestError] = {}
        try:
            async with Submission(config.probe, tls=config.tls,
                                  timeouts=config.timeouts) as smtp:
                for alias, p in zip(targets, probes, strict=True):
                    try:
                        receipts[p.token] = await smtp.send(p.raw, mail_from=p.sender,
                                                            rcpts=[p.recipient])
                        progress("sent", alias.address, p.token)
                    except TransportError as exc:
                        receipts[p.token] = exc
                        progress("send-failed", alias.address, str(exc))
        except FlowtestError as exc:
            for p in probes:
                receipts.setdefault(p.token, exc)
        results = list(await asyncio.gather(*(
            _await_probe(config, alias, p, receipts[p.token], gmail, sender_box, opts, progress)
            for alias, p in zip(targets, probes, strict=True))))
        if config.cleanup == "trash":
            await _cleanup(config, probes, gmail, sender_box, progress)
    finally:
        await asyncio.gather(gmail.stop(), sender_box.stop())
    return results


async def _await_probe(config: Config, alias: Alias, p: probe.Probe,
                       receipt: Receipt | FlowtestError, gmail: Watcher, sender_box: Watcher,
                       opts: Options, progress: Progress) -> ProbeResult:
    if isinstance(receipt, FlowtestError):
        return _error_result(alias, p.token, f"The probe could not be sent: {receipt}")
    deadline = receipt.accepted_at + config.timeouts.delivery_s
    arrival: Arrival | None = None
    bounces: list[bounce.Bounce] = []
    seen_bounces = 0
    while arrival is None:
        left = deadline - time.time()
        if left <= 0:
            break
        found = asyncio.ensure_future(gmail.wait(p.token, left))
        bounced = asyncio.ensure_future(sender_box.wait(p.token, left, nth=seen_bounces + 1))
        done, _ = await asyncio.wait({found, bounced}, return_when=asyncio.FIRST_COMPLETED)
        for task in (found, bounced):
            if task not in done:
                task.cancel()
        await asyncio.gather(found, bounced, return_exceptions=True)
        if found in done and found.exception() is None:
            arrival = found.result()
            break
        if bounced in done and bounced.exception() is None:
            seen_bounces += 1
            parsed = bounce.parse(bounced.result().raw)
            if parsed is not None:
                bounces.append(parsed)
                progress("bounce" if parsed.final else "delayed", alias.address,
                         parsed.diagnostic)
                if parsed.final:
                    break
            continue
        if found in done and isinstance(found.exception(), ProbeTimeout):
            break
        if found in done:  # the watcher died (auth, TLS): report, do not hang
            exc = found.exception()
            return _error_result(alias, p.token, f"Watching Gmail failed: {exc}")
        if bounced in done and not isinstance(bounced.exception(), ProbeTimeout):
            exc = bounced.exception()
            return _error_result(alias, p.token, f"Watching the probe account failed: {exc}")
    copies: list[Arrival] = []
    if arrival is not None:
        progress("arrived", alias.address, arrival.folder)
        # Keep watching briefly: a second copy means a duplicate delivery.
        with contextlib.suppress(ProbeTimeout):
            await gmail.wait(p.token, opts.settle_s, nth=2)
        copies = gmail.arrivals(p.token)
    waited = time.time() - receipt.accepted_at
    latency = arrival.seen_at - receipt.accepted_at if arrival else None
    auth = authresults.trusted(arrival.raw, config.gmail.authserv_id or "mx.google.com") \
        if arrival else None
    relay_auth = authresults.arc_instance(arrival.raw, 1, CLOUDFLARE_AUTHSERV_ID) \
        if arrival else None
    intact = probe.content_digest(arrival.raw) == p.digest if arrival else None
    facts = judge.InboundFacts(
        alias=alias.address, sender_domain=p.sender.rpartition("@")[2],
        folder_roles=tuple(c.role for c in copies), latency_s=latency, intact=intact,
        auth=auth, relay_auth=relay_auth, bounces=tuple(bounces), waited_s=waited,
        reconnects=gmail.reconnects)
    verdict, diagnosis = judge.judge_inbound(facts, config.thresholds)
    progress("judged", alias.address, verdict)
    return ProbeResult(
        leg="inbound", alias=alias.address, token=p.token, verdict=verdict,
        delivered=arrival is not None, folder=arrival.folder if arrival else None,
        latency_s=latency,
        hops=tuple(received.hops(arrival.raw, sent_at=receipt.accepted_at)) if arrival else (),
        auth=auth, relay_auth=relay_auth, intact=intact, copies=len(copies),
        diagnosis=tuple(redact(s) for s in diagnosis), sent_at=receipt.accepted_at,
        seen_at=arrival.seen_at if arrival else None, smtp_timings=receipt.timings)


async def _cleanup(config: Config, probes: list[probe.Probe], gmail: Watcher,
                   sender_box: Watcher, progress: Progress) -> None:
    """Move this run's probes (and bounces about them) to Trash; nothing else."""
    gmail_found = [a for p in probes for a in gmail.arrivals(p.token)]
    probe_found = [a for p in probes for a in sender_box.arrivals(p.token)]
    # A bounce can carry several tokens: move each message once.
    unique = {(a.folder, a.uid): a for a in probe_found}
    await gmail.stop()
    await sender_box.stop()
    prefix = probe.run_prefix(probe.run_id_of(probes[0].token)) if probes else None
    for account, found, app, sent in ((config.gmail, gmail_found, True, None),
                                      (config.probe, list(unique.values()), False, prefix)):
        if not found and sent is None:
            continue
        try:
            # The probe account keeps a Sent copy of each probe at many providers.
            moved = await trash(account, found, tls=config.tls, timeouts=config.timeouts,
                                app_password=app, sent_prefix=sent)
            progress("cleanup", account.address, f"{moved} moved to Trash")
        except FlowtestError as exc:
            log.warning("cleanup in %s failed: %s", account.address, redact(str(exc)))
            progress("cleanup-failed", account.address, redact(str(exc)))
