"""Latency statistics over repeated probes: end to end and per hop."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from flowtest.model import ProbeResult


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    name: str
    count: int
    p50: float
    p90: float
    p99: float
    max: float

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "count": self.count, "p50_s": round(self.p50, 3),
                "p90_s": round(self.p90, 3), "p99_s": round(self.p99, 3),
                "max_s": round(self.max, 3)}


def summarize(name: str, values: Sequence[float]) -> Summary | None:
    if not values:
        return None
    return Summary(name, len(values), percentile(values, 50), percentile(values, 90),
                   percentile(values, 99), max(values))


def by_hop(results: Sequence[ProbeResult]) -> list[Summary]:
    """End to end first, then each hop by position and receiving host."""
    out = []
    e2e = summarize("end to end", [r.latency_s for r in results if r.latency_s is not None])
    if e2e:
        out.append(e2e)
    hops: dict[str, list[float]] = {}
    for r in results:
        for i, hop in enumerate(r.hops, 1):
            if hop.delay_s is not None:
                # Gmail's internal hosts are IPv6-like ids that change per message.
                host = "Gmail internal" if ":" in hop.by else (hop.by or "?")
                hops.setdefault(f"hop {i}: {host}", []).append(hop.delay_s)
    for name, values in hops.items():
        summary = summarize(name, values)
        if summary:
            out.append(summary)
    return out
