"""A latency run: inbound probes on a fixed schedule, for a count or a
duration, alternating between aliases, each probe handed to the caller as it
completes (so a run of a day written to the history probe by probe loses
nothing to Ctrl-C), and a plan that can be resumed.

Probes go out on a fixed cadence (start + i * interval), not "interval after
the last one finished": a slow probe does not shift the rest of the day, and
the hour-of-day profile stays even.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from flowtest.config import Alias, Config
from flowtest.errors import ConfigError
from flowtest.flows import inbound
from flowtest.flows.common import Options
from flowtest.i18n import gettext as _
from flowtest.mail.probe import new_run_id
from flowtest.model import ProbeResult

DAY_S = 86400.0
MAX_PROBES = 10_000
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """"24h", "10m", "90s", "1.5d", or plain seconds."""
    m = _DURATION_RE.fullmatch(text)
    if not m:
        raise ValueError(_("{text} is not a duration (e.g. 90s, 10m, 24h, 2d)").format(
            text=repr(text)))
    value = float(m.group(1)) * _UNIT_S[(m.group(2) or "s").lower()]
    if not math.isfinite(value):
        raise ValueError(_("{text} is not a duration").format(text=repr(text)))
    return value


def human(seconds: float) -> str:
    """A duration for a person: 45s, 12m 5s, 3h 20m, 2d 4h."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


@dataclass(frozen=True)
class Plan:
    """What a run will do; saved beside the history so --resume can go on."""

    run_id: str
    aliases: tuple[str, ...]
    count: int
    interval_s: float
    started_at: float

    def alias_for(self, index: int) -> str:
        return self.aliases[index % len(self.aliases)]

    def due_at(self, index: int) -> float:
        return self.started_at + index * self.interval_s

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "aliases": list(self.aliases)}

    @classmethod
    def from_json(cls, data: object) -> Plan:
        if not isinstance(data, dict):
            raise ValueError(_("not a plan"))
        aliases = data.get("aliases")
        if not isinstance(aliases, list) or not aliases or not all(
                isinstance(a, str) for a in aliases):
            raise ValueError(_("a plan needs its aliases"))
        count, interval, started = (data.get("count"), data.get("interval_s"),
                                    data.get("started_at"))
        if not isinstance(count, int) or not 1 <= count <= MAX_PROBES:
            raise ValueError(_("a plan needs a count"))
        if not isinstance(interval, int | float) or not 0 <= interval < 30 * DAY_S:
            raise ValueError(_("a plan needs an interval"))
        if not isinstance(started, int | float) or not math.isfinite(started):
            raise ValueError(_("a plan needs a start"))
        return cls(str(data.get("run_id") or new_run_id())[:64], tuple(aliases), count,
                   float(interval), float(started))


def probe_count(*, count: int | None, duration_s: float | None, interval_s: float) -> int:
    """-n as given; with --duration, one probe per interval from start to end."""
    if duration_s is None:
        return count if count is not None else 10
    if interval_s <= 0:
        raise ConfigError(_("--duration needs an --interval of more than 0"), key="--interval")
    n = math.floor(duration_s / interval_s) + 1
    return min(n, count) if count is not None else n


def pick_aliases(config: Config, wanted: Sequence[str], everyone: bool) -> list[Alias]:
    if everyone:
        return list(config.aliases)
    if not wanted:
        return list(config.aliases[:1])
    by_address = {a.address.lower(): a for a in config.aliases}
    out = []
    for w in wanted:
        alias = by_address.get(w.lower())
        if alias is None:
            raise ConfigError(_("{alias} is not one of the configured aliases").format(alias=w),
                              key="--alias")
        if alias not in out:
            out.append(alias)
    return out


def check_budget(plan: Plan, *, budget: int | None, recent: int, done: int = 0) -> None:
    """Refuse a plan that would send more inbound probes in any 24 hours than
    limits.daily_sends allows, counting what the history shows already sent.
    Inbound probes go out from the probe account, whose provider limits daily
    sending like Gmail does; a run of a day must fit in the same budget."""
    if budget is None:
        return
    left = plan.count - done
    per_day = left if plan.interval_s <= 0 else min(left, math.floor(DAY_S / plan.interval_s) + 1)
    if recent + per_day > budget:
        fit = max(budget - recent, 0)
        values = {"probes": per_day, "recent": recent, "budget": budget}
        if fit > 1:
            reason = _("{probes} probes in 24 hours, with {recent} already sent in the last "
                       "24 hours (history), would pass the budget of {budget}; an --interval "
                       "of at least {interval} fits").format(
                interval=human(DAY_S / max(fit - 1, 1)), **values)
        else:
            reason = _("{probes} probes in 24 hours, with {recent} already sent in the last "
                       "24 hours (history), would pass the budget of {budget}").format(**values)
        raise ConfigError(reason, key="limits.daily_sends")


Progress = Callable[[int, int, float], None]   # (done, total, seconds left)
Sink = Callable[[ProbeResult], None]


async def run(config: Config, plan: Plan, *, done: int = 0, on_probe: Sink,
              progress: Progress, options: Options | None = None,
              clock: Callable[[], float] = time.time) -> list[ProbeResult]:
    """Probe from index ``done`` to the end of the plan; each result goes to
    ``on_probe`` as soon as it is judged. Cancelling (Ctrl-C) keeps every
    result already handed over."""
    by_address = {a.address.lower(): a for a in config.aliases}
    results: list[ProbeResult] = []
    probe_s = 0.0   # how long the last probe took: the tail of the estimate
    for index in range(done, plan.count):
        wait = plan.due_at(index) - clock()
        if wait > 0:
            progress(index, plan.count, _left(plan, index, clock(), probe_s))
            await asyncio.sleep(wait)
        alias = by_address.get(plan.alias_for(index).lower())
        if alias is None:
            raise ConfigError(_("{alias} is no longer a configured alias").format(
                alias=plan.alias_for(index)), key="--alias")
        began = clock()
        [result] = await inbound.run(config, aliases=[alias], run_id=new_run_id(),
                                     options=options)
        probe_s = clock() - began
        results.append(result)
        on_probe(result)
        progress(index + 1, plan.count, _left(plan, index + 1, clock(), probe_s))
    return results


def _left(plan: Plan, next_index: int, now: float, probe_s: float) -> float:
    if next_index >= plan.count:
        return 0.0
    return max(plan.due_at(plan.count - 1) - now, 0.0) + probe_s * (
        1 if plan.interval_s > 0 else plan.count - next_index)
