"""`flowtest report --latency`: the inbound latency of one stretch of the
history against another (this week against last week, the last run against
the one before, or alias against alias), with each median's interval and one
plain sentence on whether the difference is larger than the noise.

"Larger than the noise" is the Mann-Whitney U test at the 5% level: it asks
whether one group's probes are generally slower than the other's, without
assuming the latency's shape (long tails are the rule). The medians' 95%
intervals are shown beside it; when they do not overlap the difference is
clear by eye too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flowtest.i18n import gettext as _
from flowtest.mail import stats

By = Literal["week", "run", "alias"]
WEEK_S = 7 * 86400.0
ALPHA = 0.05


@dataclass(frozen=True)
class Group:
    label: str          # "this week", "last week", "run <id>" or an alias: see shown()
    latencies: tuple[float, ...]
    lost: int

    def shown(self) -> str:
        """The label in people's language (an alias or a run id stays as it is)."""
        if self.label == "this week":
            return _("this week")
        if self.label == "last week":
            return _("last week")
        if self.label.startswith("run "):
            return _("run {id}").format(id=self.label[4:])
        return self.label

    @property
    def median(self) -> float | None:
        return stats.percentile(self.latencies, 50) if self.latencies else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return stats.median_ci(self.latencies)


def _rows(history: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inbound probes with a send time: the ones latency is about."""
    return [r for r in history if r.get("leg") == "inbound"
            and isinstance(r.get("sent_at"), int | float) and math.isfinite(r["sent_at"])]


def _group(label: str, rows: Sequence[dict[str, Any]]) -> Group:
    values = tuple(float(r["latency_s"]) for r in rows
                   if isinstance(r.get("latency_s"), int | float)
                   and math.isfinite(r["latency_s"]) and r["latency_s"] >= 0)
    return Group(label, values, len(rows) - len(values))


def groups(history: Iterable[dict[str, Any]], by: By, *, now: float | None = None) -> list[Group]:
    """The groups to compare, the most recent (or first alias) first."""
    rows = _rows(history)
    if by == "week":
        t = time.time() if now is None else now
        this = [r for r in rows if t - WEEK_S < r["sent_at"] <= t]
        last = [r for r in rows if t - 2 * WEEK_S < r["sent_at"] <= t - WEEK_S]
        return [_group("this week", this), _group("last week", last)]
    if by == "run":
        last_seen: dict[str, float] = {}
        for r in rows:
            rid = str(r.get("run_id") or "")
            last_seen[rid] = max(last_seen.get(rid, 0.0), r["sent_at"])
        recent = sorted(last_seen, key=last_seen.__getitem__, reverse=True)[:2]
        return [_group(f"run {rid}", [r for r in rows if str(r.get("run_id") or "") == rid])
                for rid in recent]
    t = time.time() if now is None else now
    week = [r for r in rows if t - WEEK_S < r["sent_at"] <= t]
    aliases = sorted({str(r.get("alias") or "") for r in week})
    return [_group(a, [r for r in week if str(r.get("alias") or "") == a]) for a in aliases]


def describe(g: Group) -> str:
    if g.median is None:
        return _("{group}: no delivered probes (n = 0, {lost} lost)").format(
            group=g.shown(), lost=g.lost)
    ci = (_("no interval below 6 probes") if g.ci is None
          else _("95% CI {low}–{high} s").format(low=f"{g.ci[0]:.3f}", high=f"{g.ci[1]:.3f}"))
    values = {"group": g.shown(), "median": f"{g.median:.3f}", "ci": ci,
              "count": len(g.latencies), "lost": g.lost}
    if g.lost:
        return _("{group}: median {median} s ({ci}, n = {count}, {lost} lost)").format(**values)
    return _("{group}: median {median} s ({ci}, n = {count})").format(**values)


@dataclass(frozen=True)
class Verdict:
    sentence: str
    larger_than_noise: bool | None   # None: too few probes to tell
    p_value: float | None


def compare(groups_: Sequence[Group]) -> Verdict:
    """One sentence about the slowest group against the fastest."""
    usable = [g for g in groups_ if g.median is not None]
    if len(usable) < 2:
        return Verdict(_("Nothing to compare: fewer than two groups with delivered probes."),
                       None, None)
    slow = max(usable, key=lambda g: g.median or 0.0)
    fast = min(usable, key=lambda g: g.median or 0.0)
    if slow is fast:
        slow, fast = usable[0], usable[1]
    diff = (slow.median or 0.0) - (fast.median or 0.0)
    p = stats.mann_whitney_p(slow.latencies, fast.latencies)
    names = {"slow": slow.shown(), "fast": fast.shown(), "diff": f"{diff:.3f}"}
    head = (_("{slow} is slower than {fast} by {diff} s at the median").format(**names)
            if diff > 0 else _("{slow} and {fast} have the same median").format(**names))
    if p is None:
        return Verdict(_("{head}; too few probes to tell that from noise (5 a side "
                         "needed).").format(head=head), None, None)
    apart = (slow.ci is not None and fast.ci is not None and slow.ci[0] > fast.ci[1])
    if p < ALPHA:
        sentence = (_("{head}: larger than the noise (Mann-Whitney p = {p}); their 95% "
                      "intervals do not overlap.") if apart
                    else _("{head}: larger than the noise (Mann-Whitney p = {p})."))
        return Verdict(sentence.format(head=head, p=f"{p:.3g}"), True, p)
    return Verdict(_("{head}: within the noise (Mann-Whitney p = {p}); no real change can "
                     "be claimed.").format(head=head, p=f"{p:.3g}"), False, p)
