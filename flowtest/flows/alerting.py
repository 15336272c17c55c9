"""When to tell people: state per leg and alias, and messages on changes only.

A run's results move each (leg, alias) between four states: ``ok`` (pass),
``warning`` (warn: the mail arrived, with something to say, e.g. slow or a
duplicate), ``failing`` (fail: the mail path is broken) and ``unknown``
(error: flowtest could not test, e.g. a refused app password; or never
probed). After ``after`` consecutive runs that failed or could not test
(default 2, so that one lost probe or one dropped connection stays quiet), one
"down" message goes out with the diagnosis and its code; the first pass or
warn after it sends one "recovered". Nothing else: never a message per run
(alert fatigue, STYLE.md). A warning is not a failure and sends nothing: it
ends a failing streak like a pass does; reports, metrics and the status page
show it.

The dead-man's switch is the other half: ``/start`` when a run starts, the
bare URL when it ends well, ``/fail`` with the short report when it does not,
so the owner also learns when flowtest itself stops (healthchecks.io alerts
when the pings stop coming).

Used by ``flowtest serve`` (state kept in its database through ``state()``)
and by ``flowtest run --notify`` (state kept in ``alerts.json`` of the report
directory, :func:`load_state` / :func:`save_state`), so "after K consecutive
failures" holds across cron runs too.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from flowtest.i18n import gettext as _
from flowtest.i18n import ngettext
from flowtest.mail.text import inert, quote
from flowtest.model import ProbeResult, Verdict
from flowtest.net.notify import Notifier, Sender, Target, notify_target, ping_target
from flowtest.secrets import redact

log = logging.getLogger("flowtest.alerts")

State = Literal["ok", "warning", "failing", "unknown"]
STATES: dict[str, State] = {"pass": "ok", "warn": "warning", "fail": "failing",
                            "error": "unknown"}
FAILED: tuple[Verdict, ...] = ("fail", "error")
STATE_FILE = "alerts.json"
STATE_VERSION = 1
TEXT_LIMIT = 500        # one diagnosis sentence in a message
REPORT_LIMIT = 8_000    # the short report a /fail ping carries


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _name(text: str) -> str:
    """An alias in a message title: titles are not escaped by every service
    (apprise escapes bodies only), so nothing there may read as markup."""
    safe = "".join(c if c.isalnum() or c in "@._+-" else "?" for c in text)
    return safe[:80]


@dataclass
class AlertState:
    """What is known of one (leg, alias) between runs."""

    leg: str
    alias: str
    state: State = "unknown"
    since: float = 0.0          # Unix time the current state began (0: never probed)
    failures: int = 0           # consecutive runs that failed or could not test
    failing_since: float = 0.0  # the first run of that streak
    down: bool = False          # a "down" went out: a "recovered" is owed
    code: str = ""              # the diagnosis code of the last failed run
    text: str = ""              # and its sentence (inert, bounded)

    def to_json(self) -> dict[str, Any]:
        return {"leg": self.leg, "alias": self.alias, "state": self.state,
                "since": self.since, "failures": self.failures,
                "failing_since": self.failing_since, "down": self.down,
                "code": self.code, "text": self.text}

    @classmethod
    def from_json(cls, data: Any) -> AlertState:
        """Read back what to_json wrote; ValueError on anything else."""
        if not isinstance(data, dict):
            raise ValueError("an alert state is an object")

        def get(key: str, kind: type, default: Any) -> Any:
            value = data.get(key, default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"alert state: {key} is not a {kind.__name__}")
            return value

        state = get("state", str, "unknown")
        if state not in STATES.values():
            raise ValueError(f"alert state: unknown state {state!r}")
        failures = get("failures", int, 0)
        if failures < 0:
            raise ValueError("alert state: failures < 0")
        return cls(leg=get("leg", str, ""), alias=get("alias", str, ""), state=state,
                   since=get("since", float, 0.0), failures=failures,
                   failing_since=get("failing_since", float, 0.0),
                   down=get("down", bool, False), code=get("code", str, "")[:64],
                   text=inert(get("text", str, ""))[:TEXT_LIMIT])


@dataclass(frozen=True)
class Alert:
    """One state change worth a message."""

    kind: Literal["down", "recovered"]
    leg: str
    alias: str
    code: str                   # the diagnosis code (down), or the last one (recovered)
    text: str                   # its sentence: inert, bounded
    at: float
    run_id: str = ""
    failures: int = 0           # runs in the streak
    since: float = 0.0          # when the streak began
    verdict: str = "fail"       # fail or error (could not test)

    # Titles and bodies are people's words, in the run's language; the code,
    # the leg and the alias in them are the same in every language.
    def title(self) -> str:
        values = {"leg": _leg(self.leg), "alias": _name(self.alias), "code": self.code}
        if self.kind == "recovered":
            return _("flowtest: {leg} {alias} recovered").format(**values)
        if self.verdict == "error":
            return _("flowtest: {leg} {alias} CANNOT BE TESTED ({code})").format(**values)
        return _("flowtest: {leg} {alias} DOWN ({code})").format(**values)

    def body(self) -> str:
        values = {"leg": _leg(self.leg), "alias": self.alias, "run": self.run_id,
                  "at": _when(self.at), "since": _when(self.since), "code": self.code,
                  "failures": self.failures}
        if self.kind == "recovered":
            return inert(ngettext(
                "{leg} {alias} works again (run {run}, {at}), after {failures} failed run "
                "since {since}; the last said {code}.",
                "{leg} {alias} works again (run {run}, {at}), after {failures} failed runs "
                "since {since}; the last said {code}.", self.failures).format(**values))
        if self.verdict == "error":
            head = _("{leg} {alias} could not be tested in {failures} runs in a row, since "
                     "{since} (run {run}).")
        else:
            head = _("{leg} {alias} failed in {failures} runs in a row, since {since} "
                     "(run {run}).")
        return (inert(head.format(**values)) + "\n"
                f"{self.code}: {quote(self.text, TEXT_LIMIT)}\n"
                + _("The codes are explained in docs/verdicts.md. One message is sent when "
                    "it works again; none before."))


def _leg(leg: str) -> str:
    """The leg's word in a message: inbound/outbound in people's language."""
    return {"inbound": _("inbound"), "outbound": _("outbound")}.get(leg, leg)


def _diagnosis(result: ProbeResult) -> tuple[str, str]:
    """The finding that explains the verdict: its code and sentence."""
    findings = result.findings
    for pick in ([f for f in findings if f.verdict == result.verdict],
                 [f for f in findings if f.verdict != "pass"], list(findings)):
        if pick:
            return pick[0].code, pick[0].text
    return ("NOT_TESTED" if result.verdict == "error" else result.verdict.upper()), ""


def _compose(alerts: Sequence[Alert]) -> tuple[str, str]:
    """One message for the changes of one observation (a broken MX takes every
    alias down at once: one message, not one per alias)."""
    if len(alerts) == 1:
        return alerts[0].title(), alerts[0].body()
    kind = alerts[0].kind
    n = len(alerts)
    title = (ngettext("flowtest: {count} mail path recovered",
                      "flowtest: {count} mail paths recovered", n) if kind == "recovered"
             else ngettext("flowtest: {count} mail path DOWN",
                           "flowtest: {count} mail paths DOWN", n)).format(count=n)
    return title, "\n\n".join(a.body() for a in alerts)


class Alerter:
    """State per (leg, alias), "down"/"recovered" messages on its changes,
    and the dead-man's-switch pings. No method ever raises for a target that
    cannot be reached."""

    def __init__(self, targets: Sequence[str | Target], *, after: int = 2,
                 ping_url: str | Target | None = None, state: dict[str, Any] | None = None,
                 sender: Sender | None = None) -> None:
        if after < 1:
            raise ValueError("after must be at least 1")
        self.after = after
        self.targets = [t if isinstance(t, Target) else notify_target(t) for t in targets]
        self.ping = (ping_url if isinstance(ping_url, Target) or ping_url is None
                     else ping_target(ping_url))
        self.sender: Sender = sender or Notifier()
        self.states: dict[tuple[str, str], AlertState] = {}
        if state:
            self._restore(state)

    def _restore(self, state: dict[str, Any]) -> None:
        try:
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {state.get('version')!r}")
            rows = state.get("states")
            if not isinstance(rows, list):
                raise ValueError("states is not a list")
            loaded = [AlertState.from_json(row) for row in rows]
        except (ValueError, AttributeError) as exc:
            log.warning("alert state ignored, starting afresh: %s", inert(str(exc))[:200])
            return
        self.states = {(s.leg, s.alias): s for s in loaded}

    def state(self) -> dict[str, Any]:
        """Everything to keep between runs, as JSON-able data."""
        return {"version": STATE_VERSION,
                "states": [s.to_json() for s in self.states.values()]}

    async def run_started(self, run_id: str) -> None:
        if self.ping is not None:
            await self.sender.ping(self.ping, "start", run_id=run_id)

    async def run_finished(self, run_id: str, verdict: str, summary: str) -> None:
        """Success for pass and warn; /fail, with the short report, otherwise."""
        if self.ping is not None:
            event: Literal["success", "fail"] = ("success" if verdict in ("pass", "warn")
                                                 else "fail")
            await self.sender.ping(self.ping, event, run_id=run_id,
                                   body=summary[:REPORT_LIMIT])

    async def observe(self, results: Sequence[ProbeResult], *, run_id: str) -> list[Alert]:
        """Fold a run's results into the states; send and return the changes."""
        now = time.time()
        downs: list[Alert] = []
        ups: list[Alert] = []
        for r in results:
            at = r.sent_at or now
            st = self.states.setdefault((r.leg, r.alias), AlertState(r.leg, r.alias))
            new = STATES[r.verdict]
            if new != st.state or not st.since:
                st.state, st.since = new, at
            if r.verdict in FAILED:
                st.failures += 1
                if st.failures == 1:
                    st.failing_since = at
                code, text = _diagnosis(r)
                st.code, st.text = code[:64], inert(text)[:TEXT_LIMIT]
                if not st.down and st.failures >= self.after:
                    downs.append(Alert("down", r.leg, r.alias, st.code, st.text, now, run_id,
                                       st.failures, st.failing_since, r.verdict))
            else:
                if st.down:
                    ups.append(Alert("recovered", r.leg, r.alias, st.code, st.text, now,
                                     run_id, st.failures, st.failing_since, r.verdict))
                st.failures, st.down, st.failing_since = 0, False, 0.0
        if downs:
            # Delivered to none (all targets unreachable): the next failed run
            # tries again, so an outage of the alert channel does not swallow it.
            delivered = await self._send(downs, "failure")
            for a in downs:
                self.states[(a.leg, a.alias)].down = delivered
        if ups:
            await self._send(ups, "success")
        return downs + ups

    async def _send(self, alerts: Sequence[Alert], kind: Literal["failure", "success"]) -> bool:
        for a in alerts:
            log.warning("alert: %s", inert(a.title()))
        if not self.targets:
            return True
        title, body = _compose(alerts)
        return await self.sender.send(self.targets, title, body, kind=kind) > 0


def short_report(results: Sequence[ProbeResult], verdict: str, *, run_id: str,
                 dns: Sequence[Any] = ()) -> str:
    """The few lines a /fail ping carries: the verdict, then one line per
    probe and DNS problem with its code (inert, bounded)."""
    lines = [f"flowtest run {run_id}: {verdict}"]
    for r in results:
        code, text = _diagnosis(r)
        lines.append(f"{r.leg} {inert(r.alias)}: {r.verdict} {code}: {quote(text, 200)}")
    for f in dns:
        if getattr(f, "severity", "") in ("error", "warning"):
            lines.append(f"dns: {f.severity} {f.code}: {quote(str(f.message), 200)}")
    return "\n".join(lines)[:REPORT_LIMIT]


def load_state(path: Path) -> dict[str, Any] | None:
    """The state a previous one-shot run left; None when there is none (or it
    is unreadable: then the count of failures starts afresh, with a log line)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s ignored: %s", path, inert(str(exc))[:200])
        return None
    return data if isinstance(data, dict) else None


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Atomically: a run killed while writing leaves the old file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = redact(json.dumps(state, indent=1, ensure_ascii=False))  # a diagnosis may quote one
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
