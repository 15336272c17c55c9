"""flowtest against the sandbox, and side by side with check_email_delivery.

    .venv/bin/python benchmarks/bench.py [--probes 200] [--sweep 200] [--sweeps 3]
                                         [--peer-default 10] [--peer-tuned 20] [--no-peer]
                                         [--processes 20] [--serve-idle 60]
                                         [--serve-probes 10] [--no-serve]

The sandbox runs in a process of its own (`flowtest sandbox --truth`), so the
figures for this process are flowtest's alone, and flowtest and the peer face
the same servers. Writes reports/bench/summary.json and prints a table.

Detection overhead is "the sandbox stored the message" to "the client knew":
against the limit, a bare aioimaplib client in IDLE on the same sandbox
(idle_push.py: stored -> EXISTS heard), as ``detect_over_push_p50``;
for flowtest its own seen_at (client side), and, for a like-for-like
comparison with the peer, the sandbox's record of the first IMAP SEARCH that
listed the message (server side; the peer reports only whole seconds).

CPU of a one-probe run (``cpu_ms_per_sequential_probe``) is a whole
`flowtest run --leg inbound --no-dns` process, as cron starts it, minus the
interpreter's own start-up (`python -c pass`); ``cpu_ms_run_imports`` is the
part spent loading the modules such a run loads. flowtest is byte-compiled
first, as a wheel install is. `flowtest serve`'s cost (serve_* keys) comes
from serve_cost.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harness import SandboxProcess
from idle_push import idle_push
from peer import ensure_installed, run_one
from serve_cost import measure as serve_cost

from flowtest import guard
from flowtest.flows import inbound
from flowtest.flows.common import Options
from flowtest.mail.stats import percentile


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> dict[str, float]:
    xs = [v * scale for v in values]
    return {"n": len(xs), "p50": round(statistics.median(xs), digits),
            "p95": round(percentile(xs, 95), digits), "min": round(min(xs), digits),
            "max": round(max(xs), digits)}


def progress(label: str, i: int, n: int) -> None:
    print(f"\r  {label}: {i}/{n}", end="" if i < n else "\n", file=sys.stderr, flush=True)


def cli_help(runs: int = 10) -> dict[str, object]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "flowtest.cli", "--help"], capture_output=True,
                       check=True)
        times.append((time.perf_counter() - t) * 1000)
    s = spread(times, digits=1)
    return {"cli_help_ms": s["p50"], "cli_help_ms_spread": s}


def sweep(aliases: int, repeats: int) -> dict[str, object]:
    """200 aliases at once, repeated: flowtest's sweep time against the
    sandbox's own delivery time for the same messages."""
    ratios, sweep_s, delivery_s, cpu_ms, conns = [], [], [], [], []
    lag: list[float] = []  # per probe: sandbox stored -> flowtest saw it, in the sweep
    listed_lag: list[float] = []  # per probe: stored -> flowtest's FETCH listed it (server side)
    sandbox_cpu: list[float] = []  # the sandbox's CPU per message delivered and watched
    with SandboxProcess(aliases=aliases) as sb:
        config = sb.config()
        for i in range(repeats):
            progress("sweep", i, repeats)
            started = time.time()
            cpu0, sandbox_cpu0 = time.process_time(), sb.cpu_s()
            results = asyncio.run(inbound.run(config, options=Options(poll_s=1.0,
                                                                      settle_s=0.0)))
            cpu = time.process_time() - cpu0
            sandbox_cpu.append((sb.cpu_s() - sandbox_cpu0) / aliases * 1000)
            bad = [r for r in results if r.verdict != "pass"]
            if bad:
                raise SystemExit(f"sweep: {len(bad)} probes did not pass: "
                                 f"{bad[0].diagnosis}")
            ids = {f"<{r.token}@{config.probe.address.partition('@')[2]}>" for r in results}
            submitted = sb.first("submitted", "external")
            stored = sb.first("stored", "gmail")
            seen = [r.seen_at for r in results if r.seen_at is not None]
            sent = [r.sent_at for r in results if r.sent_at is not None]
            sweep_s.append(max(seen) - min(sent))
            delivery_s.append(max(stored[m] for m in ids) - min(submitted[m] for m in ids))
            ratios.append(sweep_s[-1] / delivery_s[-1])
            domain = config.probe.address.partition('@')[2]
            lag += [r.seen_at - stored[f"<{r.token}@{domain}>"] for r in results
                    if r.seen_at is not None]
            listed = sb.first("listed", "gmail")
            listed_lag += [listed[m] - stored[m] for m in ids if m in listed]
            cpu_ms.append(cpu / aliases * 1000)
            conns.append(sb.connections_peak(since=started).get("gmail", 0))
        progress("sweep", repeats, repeats)
        bits = sb.key_bits()
    return {
        "sandbox_key_bits": bits,
        "sweep_aliases": aliases,
        "sweep_repeats": repeats,
        "sweep_s": round(statistics.median(sweep_s), 3),
        "sweep_s_spread": spread(sweep_s, digits=3),
        "sandbox_delivery_s": round(statistics.median(delivery_s), 3),
        "sandbox_delivery_s_spread": spread(delivery_s, digits=3),
        "sweep_ratio": round(statistics.median(ratios), 3),
        "sweep_ratio_spread": spread(ratios, digits=3),
        "sweep_imap_connections_max": max(conns),
        "sweep_detect_overhead_ms_spread": spread(lag, 1000),
        "sweep_detect_overhead_p95_ms": spread(lag, 1000)["p95"],
        # Where that time goes: stored -> the server answered flowtest's look
        # (the sandbox's queue and flowtest's turn), the rest is the reply's way back.
        "sweep_detect_listed_ms_spread": spread(listed_lag, 1000),
        "sandbox_cpu_ms_per_message": round(statistics.median(sandbox_cpu), 1),
        "sandbox_cpu_ms_per_message_spread": spread(sandbox_cpu, digits=1),
        "cpu_ms_per_probe": round(statistics.median(cpu_ms), 2),
        "cpu_ms_per_probe_spread": spread(cpu_ms),
        # This process runs only flowtest (the sandbox is another process).
        "sweep_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def detect(probes: int) -> dict[str, object]:
    """One probe at a time, each a whole `inbound.run` (connect, log in, send,
    wait, clean up), as a scheduled check does."""
    client, server, wall, cpu = [], [], [], []
    with SandboxProcess(aliases="hello") as sb:
        config = sb.config()
        domain = config.probe.address.partition("@")[2]
        for i in range(probes):
            progress("flowtest, one probe at a time", i, probes)
            t, c = time.time(), time.process_time()
            [r] = asyncio.run(inbound.run(config, options=Options(poll_s=1.0, settle_s=0.0)))
            wall.append(time.time() - t)
            cpu.append(time.process_time() - c)
            message_id = f"<{r.token}@{domain}>"
            stored = sb.wait_for(message_id, "stored", 5)
            listed = sb.wait_for(message_id, "listed", 5)
            if r.verdict != "pass" or stored is None or listed is None or r.seen_at is None:
                raise SystemExit(f"probe {i}: {r.verdict} {r.diagnosis}")
            client.append(r.seen_at - stored)
            server.append(listed - stored)
        progress("flowtest, one probe at a time", probes, probes)
        # The limit, in the same sandbox: a bare client in IDLE (idle_push.py).
        push = idle_push(config, max(10, probes // 4),
                         lambda message_id: sb.wait_for(message_id, "stored", 5))
    c_ms, s_ms, p_ms = spread(client, 1000), spread(server, 1000), spread(push, 1000)
    return {
        "idle_push_p50_ms": p_ms["p50"],
        "idle_push_ms_spread": p_ms,
        "detect_over_push_p50": round(c_ms["p50"] / p_ms["p50"], 2),
        "detect_probes": probes,
        "detect_overhead_p50_ms": c_ms["p50"],
        "detect_overhead_p95_ms": c_ms["p95"],
        "detect_overhead_ms_spread": c_ms,
        "detect_listed_ms_spread": s_ms,
        "wall_s_per_probe": round(statistics.median(wall), 3),
        "wall_s_per_probe_spread": spread(wall, digits=3),
        # inbound.run alone in a warm process; the whole process is process_cost().
        "cpu_ms_per_sequential_probe_in_process": round(statistics.median(cpu) * 1000, 1),
        "cpu_ms_per_sequential_probe_in_process_spread": spread(cpu, 1000, 1),
    }


# Imports every module named on the command line, as a run would, and nothing else.
IMPORT_ALL = """
import importlib, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""
# Runs the CLI as `python -m flowtest.cli` does, then lists the modules it loaded.
LIST_MODULES = """
import runpy, sys
out, sys.argv = sys.argv[1], ["flowtest"] + sys.argv[2:]
try:
    runpy.run_module("flowtest.cli", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
open(out, "w").write("\\n".join(sys.modules))
"""


def children_cpu_ms(argv: list[str], runs: int) -> list[float]:
    """CPU (user + system) of each of ``runs`` processes, from RUSAGE_CHILDREN."""
    out = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
    return out


def process_cost(runs: int) -> dict[str, object]:
    """A one-probe `flowtest run` as cron starts it: the whole process's CPU
    minus the interpreter's own start-up (`python -c pass`), with where it
    goes: loading the modules the run loads, and the rest (TLS, IMAP, SMTP,
    judging, reports)."""
    with SandboxProcess(aliases="hello") as sb:
        scratch = Path(tempfile.mkdtemp(prefix="ft-bench-run-"))

        def run(n: int) -> list[str]:
            # A report folder per run: a growing history.jsonl would cost later runs more.
            return ["run", "-c", str(sb.config_path), "--leg", "inbound", "--report-dir",
                    str(scratch / f"reports-{n}")]
        listing = scratch / "modules.txt"
        subprocess.run([sys.executable, "-c", LIST_MODULES, str(listing), *run(0), "--no-dns"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        modules = [m for m in listing.read_text().split() if m != "__main__"]
        cli = [sys.executable, "-m", "flowtest.cli"]
        start, imports, probe, checked = [], [], [], []
        for i in range(runs):  # interleaved, so a change in load touches all four alike
            progress("whole `flowtest run` processes", i, runs)
            start += children_cpu_ms([sys.executable, "-c", "pass"], 1)
            imports += children_cpu_ms([sys.executable, "-c", IMPORT_ALL, *modules], 1)
            probe += children_cpu_ms([*cli, *run(2 * i + 1), "--no-dns"], 1)
            checked += children_cpu_ms([*cli, *run(2 * i + 2)], 1)
        progress("whole `flowtest run` processes", runs, runs)
        shutil.rmtree(scratch, ignore_errors=True)
    base = statistics.median(start)
    minus = [c - base for c in probe]
    return {
        "cpu_ms_per_sequential_probe": round(statistics.median(minus), 1),
        "cpu_ms_per_sequential_probe_spread": spread(minus, digits=1),
        "process_runs": runs,
        "cpu_ms_interpreter_startup": round(base, 1),
        "cpu_ms_run_imports": round(statistics.median(imports) - base, 1),
        "run_modules_loaded": len(modules),
        "cpu_ms_run_with_dns_check": round(statistics.median(checked) - base, 1),
    }


def peer(label: str, runs: int, *, tuned: bool) -> dict[str, object]:
    detect_s, wall, cpu, failures = [], [], [], []
    with SandboxProcess(aliases="hello") as sb:
        for i in range(runs):
            progress(f"check_email_delivery {label}", i, runs)
            p = run_one(sb, "hello@example.me", tuned=tuned)
            if not p.ok or p.detect_s is None:
                failures.append(p.output)
                continue
            detect_s.append(p.detect_s)
            wall.append(p.wall_s)
            cpu.append(p.cpu_s)
        progress(f"check_email_delivery {label}", runs, runs)
    if not detect_s:
        raise SystemExit(f"check_email_delivery {label}: every run failed: {failures[:1]}")
    return {"runs": runs, "failed": len(failures),
            "detect_overhead_ms": spread(detect_s, 1000, 1),
            "wall_s_per_probe": spread(wall, digits=3),
            "cpu_ms_per_probe": spread(cpu, 1000, 1)}


def ratios(summary: dict[str, object], peers: dict[str, dict[str, object]]) -> dict[str, object]:
    """peer / flowtest: how many times slower or costlier the peer is."""
    def p50(d: object, key: str) -> float:
        assert isinstance(d, dict)
        v = d[key]["p50"] if isinstance(d[key], dict) else d[key]
        return float(v)
    out: dict[str, object] = {}
    for name, figures in peers.items():
        out[name] = {
            "detect_overhead": round(p50(figures, "detect_overhead_ms")
                                     / p50(summary, "detect_overhead_p50_ms"), 1),
            "detect_overhead_server_side": round(
                p50(figures, "detect_overhead_ms") / p50(summary, "detect_listed_ms_spread"), 1),
            "wall_per_probe": round(p50(figures, "wall_s_per_probe")
                                    / p50(summary, "wall_s_per_probe"), 2),
            # The peer's figure is a whole process (perl start-up included);
            # so is flowtest's here: a `flowtest run --no-dns` process.
            "cpu_per_probe": round(p50(figures, "cpu_ms_per_probe")
                                   / (p50(summary, "cpu_ms_per_sequential_probe")
                                      + p50(summary, "cpu_ms_interpreter_startup")), 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200, help="flowtest probes, one at a time")
    parser.add_argument("--sweep", type=int, default=200, help="aliases in the sweep (<= 200)")
    parser.add_argument("--sweeps", type=int, default=3, help="how many times to sweep")
    parser.add_argument("--peer-default", type=int, default=10,
                        help="check_email_delivery runs at its defaults")
    parser.add_argument("--peer-tuned", type=int, default=20,
                        help="check_email_delivery runs with --wait 1 --imap-check-interval 1")
    parser.add_argument("--no-peer", action="store_true", help="skip check_email_delivery")
    parser.add_argument("--processes", type=int, default=20,
                        help="whole `flowtest run` processes for the per-process CPU")
    parser.add_argument("--serve-idle", type=float, default=60.0,
                        help="seconds `flowtest serve` is watched idle, per poll setting")
    parser.add_argument("--serve-probes", type=int, default=10,
                        help="scheduled probes on warm connections, and cold runs")
    parser.add_argument("--no-serve", action="store_true", help="skip `flowtest serve`'s cost")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/summary.json"))
    args = parser.parse_args()
    guard.enable()  # this process talks only to the loopback sandbox
    # As an installed wheel is: PYTHONDONTWRITEBYTECODE (set on some machines)
    # would otherwise make every flowtest process compile its modules again.
    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    str(Path(__file__).resolve().parent.parent / "flowtest")],
                   check=True, stdout=subprocess.DEVNULL)
    summary: dict[str, object] = {
        "machine": f"{sys.platform}, {_cores()} cores, python {sys.version.split()[0]}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    summary.update(cli_help())
    summary.update(sweep(min(args.sweep, 200), args.sweeps))
    summary.update(detect(args.probes))
    summary.update(process_cost(args.processes))
    if not args.no_serve:
        summary.update(serve_cost(args.serve_idle, args.serve_probes))
    peers: dict[str, dict[str, object]] = {}
    why_not = "skipped (--no-peer)" if args.no_peer else ensure_installed()
    if why_not is None:
        peers["defaults"] = peer("at its defaults", args.peer_default, tuned=False)
        peers["tuned"] = peer("--wait 1 --imap-check-interval 1", args.peer_tuned, tuned=True)
        summary["peer"] = peers
        fastest = peers["tuned"]
        summary["peer_detect_overhead_p50_ms"] = _p50(fastest, "detect_overhead_ms")
        summary["peer_wall_s_per_probe"] = _p50(fastest, "wall_s_per_probe")
        summary["peer_cpu_ms_per_probe"] = _p50(fastest, "cpu_ms_per_probe")
        summary["peer_over_flowtest"] = ratios(summary, peers)
    else:
        summary["peer"] = {"skipped": why_not}
        print(f"check_email_delivery not measured: {why_not}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    _table(summary)
    print(f"written to {args.out}")


def _p50(figures: dict[str, object], key: str) -> float:
    value = figures[key]
    assert isinstance(value, dict)
    return float(value["p50"])


def _cores() -> int:
    import os
    return len(os.sched_getaffinity(0))


def _table(summary: dict[str, object]) -> None:
    flat: list[tuple[str, str]] = []

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict) and not {"p50", "p95"} <= set(value):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, dict):
            flat.append((prefix, f"p50 {value['p50']}  p95 {value['p95']}  "
                                 f"min {value['min']}  max {value['max']}  (n={value['n']})"))
        else:
            flat.append((prefix, str(value)))
    walk("", summary)
    width = max(len(k) for k, _ in flat)
    for k, v in flat:
        print(f"{k:{width}}  {v}")


if __name__ == "__main__":
    main()
