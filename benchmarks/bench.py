"""flowtest's own benchmarks against the sandbox (the check_email_delivery
comparison of issue #9 is not here yet).

    .venv/bin/python benchmarks/bench.py [--probes 200] [--sweep 200]

Writes reports/bench/summary.json and prints a table. The sandbox runs in the
same process as flowtest, so CPU and memory figures include the sandbox's own
work (its DKIM/ARC signing dominates); detection overhead is measured from the
sandbox's "stored" event to flowtest's first listing of the message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from flowtest import guard
from flowtest.flows import inbound
from flowtest.flows.common import Options
from flowtest.mail.stats import percentile
from flowtest.sandbox import Keyring, World


def detect(keys: Keyring, probes: int) -> dict[str, float]:
    overhead: list[float] = []
    with World(keys=keys, aliases=["hello"]) as world:
        config = world.config()
        for _ in range(probes):
            [r] = asyncio.run(inbound.run(config, options=Options(poll_s=1.0, settle_s=0.0)))
            stored = world.truth.events(f"<{r.token}@{world.names.external}>", "stored")
            if r.seen_at is not None and stored:
                overhead.append((r.seen_at - stored[0].at) * 1000)
    return {"detect_probes": len(overhead),
            "detect_overhead_p50_ms": round(statistics.median(overhead), 2),
            "detect_overhead_p95_ms": round(percentile(overhead, 95), 2),
            "detect_overhead_max_ms": round(max(overhead), 2)}


def sweep(keys: Keyring, aliases: int) -> dict[str, float]:
    names = [f"a{i:03d}" for i in range(aliases)]
    with World(keys=keys, aliases=names) as world:
        config = world.config()
        cpu0, own0, t0 = time.process_time(), time.thread_time(), time.time()
        results = asyncio.run(inbound.run(config, options=Options(poll_s=1.0, settle_s=0.0)))
        cpu = time.process_time() - cpu0
        # flowtest's event loop runs in this thread; the sandbox in threads of its own.
        own = time.thread_time() - own0
        seen = [r.seen_at for r in results if r.seen_at is not None]
        sent = [r.sent_at for r in results if r.sent_at is not None]
        submitted = [e.at for e in world.truth.events(kind="submitted")]
        stored = [e.at for e in world.truth.events(kind="stored")]
        assert world.gmail is not None
        out = {
            "sweep_aliases": aliases,
            "sweep_delivered": len(seen),
            "sweep_s": round(max(seen) - min(sent), 3),
            "sandbox_delivery_s": round(max(stored) - min(submitted), 3),
            "sweep_run_wall_s": round(time.time() - t0, 3),
            "sweep_imap_connections_max": world.gmail.store.connections_peak,
            "cpu_ms_per_probe": round(own / aliases * 1000, 2),
            "cpu_ms_per_probe_incl_sandbox": round(cpu / aliases * 1000, 2),
        }
        out["sweep_ratio"] = round(out["sweep_s"] / out["sandbox_delivery_s"], 3)
    out["peak_rss_mb_incl_sandbox"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def cli_help(runs: int = 10) -> dict[str, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "flowtest.cli", "--help"], capture_output=True,
                       check=True)
        times.append((time.perf_counter() - t) * 1000)
    return {"cli_help_ms": round(statistics.median(times), 1),
            "cli_help_ms_max": round(max(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200, help="probes for detection overhead")
    parser.add_argument("--sweep", type=int, default=200, help="aliases in the sweep (<= 200)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/summary.json"))
    args = parser.parse_args()
    guard.enable()
    keys = Keyring.generate()
    summary: dict[str, object] = {"machine": f"{sys.platform}, python {sys.version.split()[0]}"}
    summary.update(cli_help())
    summary.update(detect(keys, args.probes))
    summary.update(sweep(keys, min(args.sweep, 200)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        print(f"{key:{width}}  {value}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
