"""Latency statistics over repeated probes, end to end and per hop, as honest
as the number of probes and the stamps allow (issue 20).

- A percentile needs enough probes to mean anything: p90 needs 10, p99 100.
  Below that it is None (``null`` in JSON, "n<10" on screen), never the
  maximum passed off as a p99.
- The median carries a 95% confidence interval from order statistics (the
  binomial distribution of how many probes fall below the true median; no
  assumption about the shape of the latency distribution). Below 6 probes no
  pair of order statistics covers 95%, and the interval is None.
- A hop's delay is the difference of two stamps, so it is only as fine as the
  coarser of them: two whole-second ``Received`` dates give ±1 s, two
  millisecond ``X-Received`` epochs ±0.001 s.
- Neighbouring hops on the same provider's internal hosts are one segment
  ("Gmail internal"), measured to its latest trusted stamp, which is the
  millisecond X-Received one when Gmail wrote it.
- Whole-second stamps are truncated, so a hop can look longer than the whole
  trip measured by flowtest's own clock; each hop is capped at its probe's end
  to end time, and a hop's percentile at the end-to-end one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from flowtest.model import Hop, ProbeResult

# Fewest probes for each percentile: below 1/(1-q) probes the "percentile" is
# just the largest value seen.
MIN_COUNT = {50: 1, 90: 10, 99: 100}
# 95% order-statistic interval for the median needs at least this many probes
# (with 5, min..max covers only 93.75%).
MIN_CI_COUNT = 6
CONFIDENCE = 0.95
END_TO_END = "end to end"
# Gmail's internal hosts: "2002:a17:907:3ec3:b0:abc:1234:5678" (samples/real/cf-gmail-*).
_INTERNAL_ID = re.compile(r"[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,8}", re.IGNORECASE)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def supported(q: int, n: int) -> bool:
    """Whether n probes can support percentile q (50, 90, 99)."""
    return n >= MIN_COUNT.get(q, math.ceil(100 / max(100 - q, 1e-9)))


def _binom_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2)."""
    return float(sum(math.comb(n, i) for i in range(k + 1))) / 2.0 ** n


def median_ci(values: Sequence[float],
              confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Distribution-free interval for the median: the l-th and (n+1-l)-th
    smallest values, l the largest rank whose two tails together stay within
    1 - confidence. None when n is too small for any interval to reach it."""
    n = len(values)
    if n < MIN_CI_COUNT:
        return None
    alpha = 1 - confidence
    low_rank = 0
    for k in range(1, n // 2 + 1):
        # [x(k), x(n+1-k)] misses the median with probability 2 * P(B <= k-1).
        if 2 * _binom_cdf(k - 1, n) <= alpha:
            low_rank = k
        else:
            break
    if low_rank == 0:
        return None
    ordered = sorted(values)
    return ordered[low_rank - 1], ordered[n - low_rank]


@dataclass(frozen=True)
class Summary:
    name: str
    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float
    p50_ci: tuple[float, float] | None = None
    resolution_s: float | None = None   # None: end to end, timed by flowtest's own clock

    def to_json(self) -> dict[str, object]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        out: dict[str, object] = {
            "name": self.name, "count": self.count, "p50_s": r(self.p50),
            "p90_s": r(self.p90), "p99_s": r(self.p99), "max_s": r(self.max),
            "p50_ci_s": None if self.p50_ci is None else [r(self.p50_ci[0]),
                                                          r(self.p50_ci[1])]}
        if self.resolution_s is not None:
            out["resolution_s"] = self.resolution_s
        return out

    def capped(self, top: Summary) -> Summary:
        """This hop's figures, none above the end-to-end figure it is part of."""
        def cap(v: float | None, t: float | None) -> float | None:
            return v if v is None or t is None else min(v, t)

        ci = self.p50_ci
        if ci is not None:
            ci = (min(ci[0], top.max), min(ci[1], top.max))
        return Summary(self.name, self.count, cap(self.p50, top.p50), cap(self.p90, top.p90),
                       cap(self.p99, top.p99), min(self.max, top.max), ci, self.resolution_s)


def summarize(name: str, values: Sequence[float], *,
              resolution_s: float | None = None) -> Summary | None:
    if not values:
        return None
    n = len(values)

    def p(q: int) -> float | None:
        return percentile(values, q) if supported(q, n) else None

    return Summary(name, n, p(50), p(90), p(99), max(values), median_ci(values), resolution_s)


@dataclass(frozen=True)
class Segment:
    """A stretch of a probe's trip: one hop, or a provider's internal hops."""

    label: str
    delay_s: float
    resolution_s: float


def host_label(hop: Hop) -> str:
    """How a hop is named: Gmail's internal hosts are IPv6-like ids that
    change per message, so they are one label."""
    return "Gmail internal" if _INTERNAL_ID.fullmatch(hop.by) else (hop.by or "?")


def segments(result: ProbeResult) -> list[Segment]:
    """The probe's trusted hops as segments, consecutive hops with the same
    label merged and measured to their latest stamp. Each segment starts at
    the previous segment's latest stamp (or flowtest's send time) and is
    capped at the probe's end-to-end time."""
    groups: list[tuple[str, list[Hop]]] = []
    for hop in result.hops:
        if hop.at is None or hop.clock_skew:
            continue
        label = host_label(hop)
        if groups and groups[-1][0] == label:
            groups[-1][1].append(hop)
        else:
            groups.append((label, [hop]))
    out: list[Segment] = []
    # flowtest's own send time is a millisecond clock; without it the first
    # hop has no start.
    previous: tuple[float, float] | None = (
        (result.sent_at, 0.001) if result.sent_at is not None else None)
    if previous is None and groups and groups[0][1][0].delay_s is not None:
        # No send time (a saved message): the chain anchored its first hop on
        # the message's Date:, whole seconds.
        first = groups[0][1][0]
        assert first.at is not None and first.delay_s is not None
        previous = (first.at - first.delay_s, 1.0)
    for label, hops in groups:
        # The latest stamp; among equal ones the finest (X-Received over its
        # own whole-second Received).
        last = max(hops, key=lambda h: (h.at or 0.0, -h.resolution_s))
        assert last.at is not None
        if previous is not None:
            delay = max(0.0, last.at - previous[0])
            if result.latency_s is not None:
                delay = min(delay, result.latency_s)
            out.append(Segment(label, round(delay, 3), max(last.resolution_s, previous[1])))
        else:
            out.append(Segment(label, math.nan, last.resolution_s))
        if previous is not None and last.at < previous[0]:
            # A truncated whole-second stamp below a finer one before it: the
            # hop happened after that finer stamp, so the next segment starts
            # there, and the segments add up to the whole trip.
            previous = (previous[0], max(previous[1], last.resolution_s))
        else:
            previous = (last.at, last.resolution_s)
    return out


def by_hop(results: Sequence[ProbeResult]) -> list[Summary]:
    """End to end first, then each segment by position and receiving host."""
    out: list[Summary] = []
    e2e = summarize(END_TO_END, [r.latency_s for r in results if r.latency_s is not None])
    if e2e:
        out.append(e2e)
    values: dict[str, list[float]] = {}
    resolution: dict[str, float] = {}
    for r in results:
        for i, seg in enumerate(segments(r), 1):
            if math.isnan(seg.delay_s):
                continue
            name = f"hop {i}: {seg.label}"
            values.setdefault(name, []).append(seg.delay_s)
            resolution[name] = max(resolution.get(name, 0.0), seg.resolution_s)
    for name, vs in values.items():
        summary = summarize(name, vs, resolution_s=resolution[name])
        if summary:
            out.append(summary.capped(e2e) if e2e else summary)
    return out


def fmt(value: float | None, q: int = 50) -> str:
    """A figure for the screen: seconds, or why there is none."""
    if value is None:
        return f"n<{MIN_COUNT.get(q, 1)}"
    return f"{value:.3f}s"


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation with
    the tie correction): how likely a difference this large between the two
    samples' ranks is when both come from one distribution. None below 5
    probes on either side, where the approximation is not to be trusted."""
    n1, n2 = len(a), len(b)
    if n1 < 5 or n2 < 5:
        return None
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, side) in zip(ranks, pooled, strict=True) if side == 0)
    u = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(var)   # with continuity correction
    return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))
