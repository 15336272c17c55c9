"""flowtest's measured inbound latency against the sandbox's ground truth.

    .venv/bin/python benchmarks/ground_truth.py --runs 20

Prints, for one probe at a time and for three at once: flowtest's latency
minus the sandbox's (stored - submitted), and the detection overhead (stored
-> flowtest saw it), as median, p90, min and max in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from flowtest import guard
from flowtest.flows import inbound
from flowtest.flows.common import Options
from flowtest.sandbox import World


def summary(values: list[float]) -> str:
    xs = sorted(values)
    return (f"n={len(xs)} median={statistics.median(xs):.1f} p90={xs[int(0.9 * (len(xs) - 1))]:.1f}"
            f" min={xs[0]:.1f} max={xs[-1]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per mode (default 20)")
    args = parser.parse_args()
    guard.enable()
    with World(aliases=["hello", "shop", "billing"]) as world:
        config = world.config()
        for mode in ("one at a time", "three at once"):
            diff: list[float] = []
            overhead: list[float] = []
            for i in range(args.runs):
                aliases = [config.aliases[i % 3]] if mode == "one at a time" else None
                results = asyncio.run(inbound.run(config, aliases=aliases,
                                                  options=Options(poll_s=1.0, settle_s=0.0)))
                for r in results:
                    events = {e.kind: e.at for e in world.truth.events(
                        f"<{r.token}@{world.names.external}>")}
                    truth = events["stored"] - events["submitted"]
                    assert r.latency_s is not None and r.seen_at is not None
                    diff.append((r.latency_s - truth) * 1000)
                    overhead.append((r.seen_at - events["stored"]) * 1000)
            print(f"{mode}: latency - ground truth (ms): {summary(diff)}")
            print(f"{mode}: detection overhead, stored -> seen (ms): {summary(overhead)}")


if __name__ == "__main__":
    main()
