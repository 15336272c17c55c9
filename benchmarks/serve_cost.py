"""What `flowtest serve` costs: idle, and per scheduled probe.

    .venv/bin/python benchmarks/serve_cost.py [--idle 60] [--probes 10]

The sandbox runs in a process of its own (harness.SandboxProcess), so the
figures are flowtest's alone.

1. Idle: a real `flowtest serve -c …` process whose schedule has nothing due
   (every job hourly, after the first runs); CPU seconds (utime+stime from
   /proc) over the window, scaled to an hour, and VmRSS, with both watchers
   logged in and IDLE. Once with the sandbox's 1 s poll, once with the 30 s
   poll a live target gets (--poll-s).
2. One inbound probe: warm (Service.run_leg on logged-in watchers) against
   cold (flows.inbound.run, which logs in and out like `flowtest run`) in
   this process, and a whole `flowtest run --leg inbound` process.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import SandboxProcess, process_cpu_s

from flowtest import guard
from flowtest.flows import inbound
from flowtest.flows.common import Options
from flowtest.serve.service import Service

HOURLY = """
[serve]
inbound_every_s = 3600
outbound_every_s = 3600
doctor_every_s = 3600
cleanup_every_s = 3600
jitter = 0
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def idle(conf: Path, window_s: float, poll_s: float) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="ft-serve-idle-"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowtest.cli", "serve", "-c", str(conf), "--listen",
         "127.0.0.1:0", "--report-dir", str(workdir), "--poll-s", str(poll_s)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    done: set[str] = set()
    for line in proc.stderr:  # the first run of each job, then nothing is due for an hour
        for kind in ("inbound", "outbound", "doctor", "cleanup"):
            if f"run {kind} " in line:
                done.add(kind)
        if len(done) == 4:
            break
    before, t0 = process_cpu_s(proc.pid), time.monotonic()
    time.sleep(window_s)  # a measurement window, not a synchronisation
    used, elapsed = process_cpu_s(proc.pid) - before, time.monotonic() - t0
    rss = rss_mb(proc.pid)
    proc.terminate()
    proc.wait(timeout=15)
    return {"poll_s": poll_s, "cpu_s_per_hour": round(used / elapsed * 3600, 2),
            "rss_mb": round(rss, 1)}


def rusage_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def probes(conf: Path, n: int) -> dict[str, dict[str, float]]:
    from flowtest import config as cfg

    config = cfg.load(conf)
    out: dict[str, dict[str, float]] = {}
    service = Service(config, report_dir=Path(tempfile.mkdtemp(prefix="ft-serve-warm-")),
                      poll_s=30.0, settle_s=0.3)
    await service.mailboxes.ensure(config)
    await service.run_leg("inbound")  # warm-up
    walls, cpus = [], []
    for _ in range(n):
        c0, t0 = rusage_s(), time.perf_counter()
        results = await service.run_leg("inbound")
        walls.append(time.perf_counter() - t0)
        cpus.append(rusage_s() - c0)
        assert all(r.verdict == "pass" for r in results), results
    out["warm"] = {"wall_ms": round(statistics.median(walls) * 1000, 1),
                   "cpu_ms": round(statistics.median(cpus) * 1000, 1),
                   "logins": sum(w.connections for w in service.mailboxes.watchers)}
    await service.stop()
    walls, cpus = [], []
    for _ in range(n):
        c0, t0 = rusage_s(), time.perf_counter()
        await inbound.run(config, options=Options(poll_s=30.0, settle_s=0.3))
        walls.append(time.perf_counter() - t0)
        cpus.append(rusage_s() - c0)
    out["cold_leg"] = {"wall_ms": round(statistics.median(walls) * 1000, 1),
                       "cpu_ms": round(statistics.median(cpus) * 1000, 1)}
    return out


def cold_process(conf: Path, n: int) -> dict[str, float]:
    walls, cpus = [], []
    workdir = Path(tempfile.mkdtemp(prefix="ft-serve-cold-"))
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "flowtest.cli", "run", "-c", str(conf), "--leg",
                        "inbound", "--report-dir", str(workdir)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {"wall_ms": round(statistics.median(walls) * 1000, 1),
            "cpu_ms": round(statistics.median(cpus) * 1000, 1)}


def measure(idle_s: float = 60.0, n: int = 10) -> dict[str, object]:
    """The serve_* keys of reports/bench/summary.json (bench.py calls this)."""
    with SandboxProcess(aliases=1) as sandbox:
        conf = sandbox.config_path
        with conf.open("a", encoding="utf-8") as f:
            f.write(HOURLY)
        live = idle(conf, idle_s, 30.0)
        fast = idle(conf, idle_s, 1.0)
        legs = asyncio.run(probes(conf, n))
        cold = cold_process(conf, n)
    return {
        # With the 30 s poll a live target gets (the watchers sit in IDLE between).
        "serve_idle_cpu_s_per_h": live["cpu_s_per_hour"],
        "serve_rss_mb": live["rss_mb"],
        "serve_idle_cpu_s_per_h_poll_1s": fast["cpu_s_per_hour"],
        "serve_idle_window_s": idle_s,
        "serve_probe_cpu_ms": legs["warm"]["cpu_ms"],
        "serve_probe_wall_s": round(legs["warm"]["wall_ms"] / 1000, 3),
        "serve_probes": n,
        "cold_leg_cpu_ms": legs["cold_leg"]["cpu_ms"],
        "cold_leg_wall_s": round(legs["cold_leg"]["wall_ms"] / 1000, 3),
        "cold_run_process_cpu_ms": cold["cpu_ms"],
        "cold_run_process_wall_s": round(cold["wall_ms"] / 1000, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=60.0, help="idle window in seconds")
    ap.add_argument("--probes", type=int, default=10)
    args = ap.parse_args()
    guard.enable()
    for key, value in measure(args.idle, args.probes).items():
        print(f"{key:34} {value}")


if __name__ == "__main__":
    main()
