"""The service: the legs on a schedule, warm watchers, memory, metrics.

Each job (inbound, outbound, doctor, cleanup) has a loop of its own and a
lock of its own: a scheduled run and an on-demand /probe of the same leg
never overlap. Outbound runs never pass limits.daily_sends. Every run ends
in one log line, one SQLite transaction and one line per probe in
history.jsonl (so `flowtest report` and `flowtest run`'s budget see it).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import random
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from flowtest.config import Alias, Config
from flowtest.doctor import diagnose
from flowtest.errors import ConfigError, FlowtestError
from flowtest.flows import inbound, outbound, sweep
from flowtest.flows.common import Options, error_code, error_result
from flowtest.i18n import gettext as _
from flowtest.i18n import ngettext
from flowtest.mail import probe
from flowtest.model import ProbeResult, worst
from flowtest.report import history, json_report, run_folder
from flowtest.secrets import redact
from flowtest.serve import schedule
from flowtest.serve.mailboxes import Mailboxes
from flowtest.serve.metrics import Metrics
from flowtest.serve.states import Board, LegState
from flowtest.serve.store import FILE, Run, Store, budget_left

log = logging.getLogger("flowtest.serve")

LEGS = ("inbound", "outbound")
T = TypeVar("T")


class Notifier(Protocol):
    """What the service asks of an alerter (flowtest.flows.alerting.Alerter
    fits): told of every run; it decides itself when to send."""

    async def run_started(self, run_id: str) -> None: ...
    async def observe(self, results: Sequence[ProbeResult], *, run_id: str) -> Sequence[Any]: ...
    async def run_finished(self, run_id: str, verdict: str, summary: str) -> None: ...
    def state(self) -> dict[str, Any]: ...


def check(config: Config) -> None:
    """What serve needs beyond a valid config."""
    if config.limits.imap_connections < 2:
        raise ConfigError(_("flowtest serve keeps one connection per mailbox open and needs "
                            "one more to clean up: set at least 2"),
                          key="limits.imap_connections", file=config.path)


def summary(results: Sequence[ProbeResult]) -> str:
    parts = []
    for r in results:
        code = next((f.code for f in r.findings if f.verdict == r.verdict), "")
        latency = f" {r.latency_s:.1f}s" if r.latency_s is not None else ""
        parts.append(f"{r.alias} {r.verdict}{latency}{' ' + code if code else ''}")
    return ", ".join(parts)


class Service:
    def __init__(self, config: Config, *, report_dir: Path, alerter: Notifier | None = None,
                 poll_s: float = 30.0, settle_s: float = 3.0, seed: int | None = None) -> None:
        check(config)
        self.config = config
        self.report_dir = report_dir
        self.alerter = alerter
        self.options = Options(poll_s=poll_s, settle_s=settle_s)
        self.mailboxes = Mailboxes(poll_s=poll_s)
        self.store = Store(report_dir / FILE)
        self.board = Board(self.store.states())
        self.metrics = Metrics(config.serve.vantage)
        self.locks = {name: asyncio.Lock() for name in schedule.JOBS}
        self.jobs = schedule.jobs(config.serve)
        self.rng = random.Random(seed)
        self.in_flight: set[str] = set()
        self.running: dict[str, str] = {}       # job -> run id, while it runs
        self.dns: list[dict[str, str]] = self.store.meta("dns") or []
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._work: set[asyncio.Task[Any]] = set()
        self.counts: collections.Counter[str] = collections.Counter()  # runs done, by kind
        self._ran = asyncio.Event()
        self.metrics.dns_findings([f.get("severity", "") for f in self.dns])
        self._update_budget()

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Log in to both mailboxes (failures are reported by the runs, and
        retried by them), then start the job loops."""
        try:
            await self.mailboxes.ensure(self.config)
        except FlowtestError as exc:
            log.warning("watching the mailboxes failed: %s (each run tries again)",
                        redact(str(exc)))
        self._tasks = [asyncio.create_task(self._loop(name), name=f"serve-{name}")
                       for name in schedule.JOBS]
        self.ready.set()

    async def stop(self, grace_s: float = 8.0) -> None:
        """Stop the loops; runs in flight get their cleanup (flows.common bounds
        it to a few seconds), all within ``grace_s``."""
        self._stop.set()
        self._changed.set()
        for task in [*self._tasks, *self._work]:
            task.cancel()
        pending = [*self._tasks, *self._work]
        if pending:
            await asyncio.wait(pending, timeout=grace_s)
        await self.mailboxes.close()
        self.store.close()

    def reload(self, config: Config) -> None:
        """A new config (already validated): the next runs use it; the
        watchers follow at the next run if the mailboxes changed."""
        check(config)
        if config.serve.vantage != self.config.serve.vantage:
            log.warning("serve.vantage changes only with a restart; keeping %r",
                        self.config.serve.vantage)
        self.config = config
        self.jobs = schedule.jobs(config.serve)
        self._update_budget()
        self._changed.set()

    # -- the schedule ----------------------------------------------------------------

    async def _loop(self, name: str) -> None:
        last = self.store.db.execute("SELECT max(finished) FROM runs WHERE kind=?",
                                     (name,)).fetchone()[0]
        due = time.time() + self.jobs[name].first_delay(self.rng, last_finished=last,
                                                        now=time.time())
        period = self.jobs[name].every_s
        while not self._stop.is_set():
            if self.jobs[name].every_s != period:  # reloaded: count from now
                period = self.jobs[name].every_s
                due = min(due, time.time() + self.jobs[name].delay(self.rng))
            left = due - time.time()
            if left > 0:
                self._changed.clear()
                wake = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait({wake}, timeout=left)
                wake.cancel()
                continue
            try:
                await self.run_job(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in one run must not end the schedule
                log.error("%s run failed: %s: %s", name, type(exc).__name__, redact(str(exc)))
            due = time.time() + self.jobs[name].delay(self.rng)

    async def run_job(self, name: str) -> None:
        if name in LEGS:
            await self.run_leg(name)
        elif name == "doctor":
            await self.run_doctor()
        else:
            await self.run_cleanup()

    # -- the runs --------------------------------------------------------------------

    def budget(self, *, with_history: bool = False) -> float:
        """Outbound sends left. ``with_history``: also count what other
        processes (a cron `flowtest run`) sent, from history.jsonl, which serve
        appends to as well; read before each outbound run only."""
        limit = self.config.limits.daily_budget(self.config.target)
        left = budget_left(self.store, limit)
        if with_history and limit is not None:
            sent = history.recent_sends(self.report_dir / run_folder.HISTORY, leg="outbound",
                                        target=self.config.target, now=time.time())
            left = min(left, float(max(0, limit - len(sent))))
        return left

    def _update_budget(self) -> None:
        self.metrics.budget_left(self.budget())

    async def run_leg(self, leg: str, aliases: Sequence[Alias] | None = None, *,
                      on_demand: bool = False, delivery_s: float | None = None,
                      ) -> list[ProbeResult]:
        """One run of a leg (every alias, or those given); [] if the send
        budget does not allow it."""
        async with self.locks[leg]:
            config = self.config
            targets = list(aliases if aliases is not None else config.aliases)
            if leg == "outbound" and self.budget(with_history=True) < len(targets):
                log.warning("outbound skipped: %g send(s) left of limits.daily_sends in 24 "
                            "hours, %d needed", self.budget(with_history=True), len(targets))
                self._count("outbound-skipped")
                return []
            if delivery_s is not None:
                config = dataclasses.replace(config, timeouts=dataclasses.replace(
                    config.timeouts, delivery_s=min(delivery_s, config.timeouts.delivery_s)))
            run_id = probe.new_run_id()
            prefix = probe.run_prefix(run_id)
            self.in_flight.add(prefix)
            self.running[leg] = run_id
            started = time.time()
            await self._alert("run_started", run_id)
            try:
                results = await self._probe(config, leg, targets, run_id)
            finally:
                self.in_flight.discard(prefix)
                self.running.pop(leg, None)
                self.mailboxes.forget(self.in_flight)
            self._finish_leg(config, leg, run_id, started, results, on_demand=on_demand)
            await self._alert("observe", results, run_id=run_id)
            verdict = worst([r.verdict for r in results])
            await self._alert("run_finished", run_id, verdict, summary(results))
            self._count(leg)
            return results

    async def _probe(self, config: Config, leg: str, targets: list[Alias],
                     run_id: str) -> list[ProbeResult]:
        try:
            warm = await self.mailboxes.ensure(config)
        except FlowtestError as exc:
            return [error_result(leg, a.address, probe.token_for(run_id, i), str(exc),
                                 code=error_code(exc)) for i, a in enumerate(targets)]
        if leg == "inbound":
            return await inbound.run(config, aliases=targets, run_id=run_id,
                                     options=self.options, warm=warm)
        return await outbound.run(config, aliases=targets, run_id=run_id, options=self.options,
                                  expect_dmarc_pass=config.require_dmarc_pass, warm=warm)

    def _finish_leg(self, config: Config, leg: str, run_id: str, started: float,
                    results: list[ProbeResult], *, on_demand: bool) -> None:
        finished = time.time()
        verdict = worst([r.verdict for r in results])
        states, changed = self.board.apply(results, at=finished)
        text = summary(results)
        self.store.record(Run(run_id, leg, started, finished, verdict, text, on_demand),
                          results, states)
        report = json_report.build(target=config.target, started_at=started,
                                   finished_at=finished, probes=results,
                                   insecure=config.tls.insecure, run_id=run_id,
                                   dns_checked=False)  # the doctor is a job of its own
        try:
            if changed or not run_folder.latest(self.report_dir):
                run_folder.write(report, self.report_dir)  # a report.html per state change
            else:
                history.append(self.report_dir / run_folder.HISTORY, report)
        except OSError as exc:
            log.warning("could not write the reports in %s: %s", self.report_dir, exc)
        self.metrics.observe(results)
        self.metrics.observe_run(leg, verdict)
        self._update_budget()
        changes = "".join(f"; {s.alias} now {s.state}" for s in changed)
        log.info("run %s %s%s: %s in %.1f s: %s%s", leg, run_id, " (on demand)" if on_demand
                 else "", verdict, finished - started, redact(text), changes)

    async def run_doctor(self) -> None:
        async with self.locks["doctor"]:
            run_id, started = probe.new_run_id(), time.time()
            findings = await diagnose(self.config)
            self.dns = [f.to_json() for f in findings]
            severities = [f.severity for f in findings]
            verdict = "fail" if "error" in severities else "warn" if "warning" in severities \
                else "pass"
            text = ", ".join(f.code for f in findings if f.severity != "info") \
                or _("no problems")
            self.store.record(Run(run_id, "doctor", started, time.time(), verdict, text), [],
                              [], meta={"dns": self.dns})
            self.metrics.dns_findings(severities)
            self.metrics.observe_run("doctor", verdict)
            log.info("run doctor %s: %s in %.1f s: %s", run_id, verdict, time.time() - started,
                     text)
            self._count("doctor")

    async def run_cleanup(self) -> None:
        async with self.locks["cleanup"]:
            run_id, started = probe.new_run_id(), time.time()
            reports = await sweep.stale(self.config, sweep.shortest_safe_age(self.config))
            failed = [r for r in reports if r.error is not None]
            moved = sum(r.probes + r.reports for r in reports if r.error is None)
            verdict = "error" if failed else "pass"
            # In the language in use: the page and the alerter show it to people.
            text = ngettext("{count} stale message moved to Trash",
                            "{count} stale messages moved to Trash", moved).format(
                count=moved) + "".join(
                f"; {r.account}: {r.error}" for r in failed)
            self.store.forget_sends_before(time.time() - 2 * 86400)
            self.store.record(Run(run_id, "cleanup", started, time.time(), verdict, text), [],
                              [])
            self.metrics.observe_run("cleanup", verdict)
            log.info("run cleanup %s: %s in %.1f s: %s", run_id, verdict,
                     time.time() - started, redact(text))
            self._count("cleanup")

    def _count(self, kind: str) -> None:
        self.counts[kind] += 1
        self._ran.set()

    async def wait_for_runs(self, kind: str, count: int, timeout: float) -> None:
        """Until ``count`` runs of ``kind`` are done (tests and benchmarks wait
        on this instead of sleeping); TimeoutError otherwise."""
        async def reached() -> None:
            while self.counts[kind] < count:
                self._ran.clear()
                await self._ran.wait()

        await asyncio.wait_for(reached(), timeout)

    async def _alert(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Alerts never break a run: a failing notifier is logged, redacted."""
        if self.alerter is None:
            return
        try:
            await getattr(self.alerter, method)(*args, **kwargs)
            if method == "run_finished":
                self.store.db.execute("INSERT OR REPLACE INTO meta VALUES ('alerter', ?)",
                                      (redact(json.dumps(self.alerter.state())),))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("notifying (%s) failed: %s: %s", method, type(exc).__name__,
                        redact(str(exc)))

    def states(self) -> list[LegState]:
        return self.board.all()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Work started outside the schedule (/probe): stopped with the service."""
        task = asyncio.ensure_future(coro)
        self._work.add(task)
        task.add_done_callback(self._work.discard)
        return task

