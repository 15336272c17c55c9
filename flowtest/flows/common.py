"""What both legs share: sending a batch through one SMTP session, waiting for
each probe (or a bounce about it), and removing this run's probes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from flowtest.config import Account, Alias, Config
from flowtest.errors import AuthError, FlowtestError, ProbeTimeout, TLSError, TransportError
from flowtest.i18n import gettext as _
from flowtest.mail import bounce, probe
from flowtest.model import Diagnosis, ProbeResult
from flowtest.net.imap import Arrival, Watcher, trash
from flowtest.net.smtp import Receipt, Submission
from flowtest.secrets import redact

log = logging.getLogger("flowtest.flows")

Progress = Callable[[str, str, str], None]  # (event, alias, detail)


def quiet(event: str, alias: str, detail: str) -> None:
    pass


@dataclass(frozen=True)
class Options:
    poll_s: float = 5.0
    settle_s: float = 1.0        # after a probe arrives, keep watching this long for copies
    html: bool = False
    attachment: bytes | None = None


@dataclass(frozen=True)
class WarmWatchers:
    """One watcher per mailbox that a long-running caller (``flowtest serve``)
    keeps logged in and IDLE across runs: started with the bare token prefix
    and ``bounces=True``, so one serves both legs (tokens differ per run and
    leg). Runs given these neither start nor stop them."""

    gmail: Watcher
    probe: Watcher


Judge = Callable[[Alias, probe.Probe, "Receipt | FlowtestError"], Awaitable[ProbeResult]]


async def run_leg(config: Config, leg: str, targets: Sequence[Alias],
                  probes: Sequence[probe.Probe], run_id: str, *, sender: Account,
                  app_password: bool, target: tuple[Watcher, bool],
                  reports: tuple[Watcher, bool], judge: Judge,
                  progress: Progress, warm: bool = False) -> list[ProbeResult]:
    """The skeleton of both legs: watch the two mailboxes, send every probe
    through one session, judge each, clean up, always stop the watchers.
    Each watcher comes with whether its account logs in with an app password.

    ``warm``: the watchers were started by the caller (``flowtest serve``) and
    stay logged in after the run; they are neither started nor stopped here."""
    progress("connect", "", _("watching {mailbox} and {reports}").format(
        mailbox=target[0].account.address, reports=reports[0].account.address))
    failure = (next((w.died for w in (target[0], reports[0]) if w.died is not None), None)
               if warm else await start_watchers(target[0], reports[0]))
    if failure is not None:
        return [error_result(leg, a.address, p.token, str(failure), code=error_code(failure))
                for a, p in zip(targets, probes, strict=True)]
    interrupted = False
    results: list[ProbeResult] = []
    try:
        receipts = await send_all(sender, probes, config, app_password=app_password,
                                  progress=progress)
        results = list(await asyncio.gather(*(
            judge(alias, p, receipts[p.token]) for alias, p in zip(targets, probes,
                                                                   strict=True))))
    except asyncio.CancelledError:
        interrupted = True
        raise
    finally:
        # Whatever went wrong after sending (an exception in a judge, Ctrl-C,
        # SIGTERM), this run's probes are moved, not left for the user.
        try:
            if config.cleanup == "trash":
                await bounded_cleanup(config, run_id, [target, reports], progress,
                                      interrupted=interrupted, warm=warm,
                                      missed=len(results) < len(probes)
                                      or any(not r.delivered for r in results))
        finally:
            if not warm:
                await asyncio.gather(target[0].stop(), reports[0].stop())
    return results


# An interrupted run still moves its probes, but the user is waiting: after
# this long the rest is left to `flowtest cleanup` (it finds them by token).
INTERRUPTED_CLEANUP_S = 5.0


async def bounded_cleanup(config: Config, run_id: str,
                          watchers: Sequence[tuple[Watcher, bool]], progress: Progress, *,
                          interrupted: bool, warm: bool = False,
                          missed: bool = False) -> None:
    """Run ``cleanup`` in a task of its own, so that an interruption (before
    the cleanup or during it) gives it at most INTERRUPTED_CLEANUP_S more
    instead of cutting it off at once."""
    job = asyncio.ensure_future(cleanup(config, run_id, watchers, progress,
                                        look_again=interrupted, warm=warm, missed=missed))
    if interrupted:
        await _finish_within(job, watchers, progress)
        return
    try:
        await asyncio.shield(job)
    except asyncio.CancelledError:
        await _finish_within(job, watchers, progress)
        raise


async def _finish_within(job: asyncio.Future[None], watchers: Sequence[tuple[Watcher, bool]],
                         progress: Progress) -> None:
    done, _pending = await asyncio.wait({job}, timeout=INTERRUPTED_CLEANUP_S)
    if not done:
        job.cancel()
    failure = (await asyncio.gather(job, return_exceptions=True))[0]
    if failure is None:
        return
    said = (_("gave up after {seconds} s; `flowtest cleanup` moves what is left").format(
                seconds=f"{INTERRUPTED_CLEANUP_S:g}") if not done
            else _("failed: {error}; `flowtest cleanup` moves what is left").format(
                error=redact(str(failure))))
    for watcher, _app in watchers:
        progress("cleanup-failed", watcher.account.address, said)


async def start_watchers(*watchers: Watcher) -> FlowtestError | None:
    """Start them one by one, in the order of their connection slots (two
    overlapping runs then cannot each hold one mailbox while waiting for the
    other); on failure stop them all and return the error."""
    try:
        for watcher in sorted(watchers, key=lambda w: w.slot_key):
            await watcher.start()
    except FlowtestError as exc:
        await asyncio.gather(*(w.stop() for w in watchers))
        return exc
    except asyncio.CancelledError:  # interrupted while logging in: leave no session open
        await asyncio.gather(*(w.stop() for w in watchers))
        raise
    return None


def error_result(leg: str, alias: str, token: str, message: str, *,
                 code: str = "NOT_TESTED") -> ProbeResult:
    return ProbeResult(leg=leg, alias=alias, token=token,  # type: ignore[arg-type]
                       verdict="error", delivered=False, folder=None, latency_s=None,
                       findings=(Diagnosis(code, redact(message), "error"),))


def error_code(exc: BaseException) -> str:
    """The diagnosis code of an error that kept flowtest from testing
    (docs/verdicts.md); decided by the error's class and fields, never its text."""
    if isinstance(exc, AuthError):
        return "LOGIN_REFUSED"
    if isinstance(exc, TLSError):
        return "TLS_REFUSED"
    if isinstance(exc, TransportError):
        return "SERVER_REFUSED" if exc.code else "SERVER_UNREACHABLE"
    return "NOT_TESTED"


async def send_all(account: Account, probes: Sequence[probe.Probe], config: Config, *,
                   app_password: bool, progress: Progress) -> dict[str, Receipt | FlowtestError]:
    """Submit every probe through one session; a failure is kept per probe."""
    receipts: dict[str, Receipt | FlowtestError] = {}
    try:
        async with Submission(account, tls=config.tls, timeouts=config.timeouts,
                              app_password=app_password,
                              interval_s=config.limits.send_interval_s) as smtp:
            for p in probes:
                try:
                    receipts[p.token] = await smtp.send(p.raw, mail_from=p.sender,
                                                        rcpts=[p.recipient])
                    progress("sent", p.recipient if p.leg == "inbound" else p.sender, p.token)
                except TransportError as exc:
                    receipts[p.token] = exc
                    progress("send-failed", p.recipient, str(exc))
    except FlowtestError as exc:
        for p in probes:
            receipts.setdefault(p.token, exc)
    return receipts


@dataclass
class Waited:
    arrival: Arrival | None = None
    copies: list[Arrival] = field(default_factory=list)
    bounces: list[bounce.Bounce] = field(default_factory=list)
    error: str | None = None
    waited_s: float = 0.0


async def wait_for(token: str, alias: str, *, target: Watcher, reports: Watcher,
                   accepted_at: float, timeout: float, settle_s: float,
                   progress: Progress) -> Waited:
    """Wait for the probe in ``target`` while reading bounces in ``reports``.

    A delay warning keeps the wait going; a final bounce ends it.
    """
    w = Waited()
    deadline = accepted_at + timeout
    while w.arrival is None:
        left = deadline - time.time()
        if left <= 0:
            break
        found = asyncio.ensure_future(target.wait(token, left))
        bounced = asyncio.ensure_future(reports.wait(token, left, nth=len(w.bounces) + 1))
        done, _pending = await asyncio.wait({found, bounced},
                                            return_when=asyncio.FIRST_COMPLETED)
        for task in (found, bounced):
            if task not in done:
                task.cancel()
        await asyncio.gather(found, bounced, return_exceptions=True)
        if found in done and found.exception() is None:
            w.arrival = found.result()
            break
        if bounced in done and bounced.exception() is None:
            parsed = bounce.parse(bounced.result().raw) or bounce.Bounce(
                True, "", _("an unreadable delivery report"), "")
            w.bounces.append(parsed)
            progress("bounce" if parsed.final else "delayed", alias, parsed.diagnostic)
            if parsed.final:
                break
            continue
        failure = next((t.exception() for t in (found, bounced) if t in done
                        and not isinstance(t.exception(), ProbeTimeout)), None)
        if failure is not None:  # a watcher died (auth, TLS): report, do not hang
            watcher = target if found in done else reports
            w.error = _("Watching {mailbox} failed: {error}").format(
                mailbox=watcher.account.address, error=failure)
            return w
        break  # timed out
    if w.arrival is not None:
        progress("arrived", alias, w.arrival.folder)
        # Keep watching briefly: a second copy means a duplicate delivery
        # (best effort: a watcher dying now must not undo the arrival).
        with contextlib.suppress(FlowtestError):
            await target.wait(token, settle_s, nth=2)
        w.copies = target.arrivals(token)
    w.waited_s = time.time() - accepted_at
    return w


async def cleanup(config: Config, run_id: str, watchers: Sequence[tuple[Watcher, bool]],
                  progress: Progress, *, look_again: bool = False, warm: bool = False,
                  missed: bool = False) -> None:
    """Move this run's probes (and bounces about them, and Sent copies) to Trash;
    nothing else. The watchers are stopped first: one connection per mailbox.

    ``missed``: some probe of the run was not seen arriving; every watcher
    looks once more, so that one that landed late, or that a watcher failed
    to see, is moved too (it costs a look only in runs that lost a probe)."""
    prefix = probe.run_prefix(run_id)
    # One last look in a mailbox whose watcher lost its connection during the
    # run: a delivery report or copy that landed while it was reconnecting is
    # still this run's to remove. (A watcher that stayed connected was told of
    # each message within milliseconds; the look costs a dozen round trips.)
    # An interrupted run looks everywhere: it stopped at an arbitrary moment,
    # perhaps between a message's arrival and the watcher's fetch of it. The
    # look may take half its time; the moving needs the other half.
    # So does a run that missed a probe: it may have landed late, or while
    # the watcher was held up (the soak found one left behind so).
    look_s = INTERRUPTED_CLEANUP_S / 2 if look_again else config.timeouts.connect_s * 2
    caught_up = await asyncio.gather(*(
        _look_again(watcher, look_s, look_again or missed or bool(watcher.reconnects))
        for watcher, _ in watchers))
    # A warm watcher (flowtest serve) watches every run's tokens: take this run's.
    found_by = [{(a.folder, a.uid): a for token in watcher.arrived_tokens()
                 if token.startswith(prefix) for a in watcher.arrivals(token)}
                for watcher, _ in watchers]
    # Stop every watcher before cleaning any mailbox: holding no connection
    # while waiting for one is what keeps overlapping runs from deadlocking
    # under limits.imap_connections. Warm watchers stay: serve needs
    # limits.imap_connections >= 2 for that reason.
    if not warm:
        await asyncio.gather(*(watcher.stop() for watcher, _ in watchers))
    for (watcher, app_password), found, looked in zip(watchers, found_by, caught_up,
                                                      strict=True):
        # A watcher that died, or could not finish that last look, may have
        # missed some of this run's probes: search its folders by token too
        # (a SEARCH and a FETCH per folder), rather than leave them behind.
        try:
            moved = await trash(watcher.account, list(found.values()), tls=config.tls,
                                timeouts=config.timeouts, app_password=app_password,
                                sent_prefix=prefix, limit=config.limits.imap_connections,
                                search_watched=watcher.died is not None or not looked)
            progress("cleanup", watcher.account.address,
                     _("{count} moved to Trash").format(count=moved))
        except FlowtestError as exc:
            log.warning("cleanup in %s failed: %s", watcher.account.address, redact(str(exc)))
            progress("cleanup-failed", watcher.account.address, redact(str(exc)))


async def _look_again(watcher: Watcher, look_s: float, needed: bool) -> bool:
    """Whether the watcher's arrivals can be trusted for cleanup: it needed
    no last look, or the last look finished within ``look_s``."""
    return await watcher.catch_up(look_s) if needed else True
