"""`flowtest latency`: repeated inbound probes; percentiles end to end and per hop."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from flowtest.cli import console as show
from flowtest.cli import interrupt
from flowtest.cli.legs import exit_for
from flowtest.cli.target import (
    add_config_option,
    add_fault_option,
    add_insecure_option,
    opened,
)
from flowtest.errors import ConfigError


def add(sub: Any) -> None:
    sp = sub.add_parser("latency", help="measure forwarding latency with repeated probes",
                        description="Send N inbound probes, S seconds apart, and print p50, "
                                    "p90, p99 and max end to end and per hop; write a plot and "
                                    "add the probes to the history.")
    add_config_option(sp, default=None, help="the config (default: the embedded sandbox)")
    sp.add_argument("--count", "-n", metavar="N", type=int, default=10,
                    help="how many probes (default 10, at most 1000)")
    sp.add_argument("--interval", metavar="S", type=float, default=1.0,
                    help="seconds between probes (default 1)")
    sp.add_argument("--alias", metavar="ADDRESS",
                    help="the alias to probe (default: the first configured)")
    add_fault_option(sp, "sandbox only: start the world with this fault (repeatable)")
    add_insecure_option(sp)
    sp.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                    help="run folder (with latency.svg) and history (default: reports/)")
    sp.add_argument("--json", metavar="PATH", type=Path,
                    help="write the JSON report, with the percentiles under 'latency'")
    sp.set_defaults(func=main)


async def _measure(config: Any, args: argparse.Namespace) -> list[Any]:
    from rich.markup import escape
    from rich.progress import Progress

    from flowtest.flows import inbound
    from flowtest.flows.common import Options
    from flowtest.mail.probe import new_run_id

    aliases = [a for a in config.aliases if args.alias in (None, a.address)]
    if not aliases:
        raise ConfigError(f"{args.alias} is not one of the configured aliases", key="--alias")
    sandbox = config.target == "sandbox"
    options = Options(poll_s=1.0 if sandbox else 10.0, settle_s=0.0)
    results: list[Any] = []
    # The progress bar's description is markup: the address goes in escaped.
    with Progress(console=show.console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"probing {escape(aliases[0].address)}", total=args.count)
        for i in range(args.count):
            if i:
                await asyncio.sleep(args.interval)
            results += await inbound.run(config, aliases=aliases[:1], run_id=new_run_id(),
                                         options=options)
            bar.advance(task)
    return results


def main(args: argparse.Namespace) -> int:
    import json

    from flowtest.config import plaintext_endpoints
    from flowtest.flows.common import INTERRUPTED_CLEANUP_S
    from flowtest.mail.probe import new_run_id
    from flowtest.mail.stats import by_hop
    from flowtest.report import json_report, latency_plot, run_folder

    if not 1 <= args.count <= 1000:
        raise ConfigError("must be between 1 and 1000", key="--count")
    if not args.interval >= 0:  # also NaN
        raise ConfigError("must be 0 or more", key="--interval")
    started = time.time()
    with opened(args, sandbox=args.config is None,
                fault_hint="--fault works only with the sandbox (no --config)") as target:
        config = target.config
        results = interrupt.run(_measure(config, args), cleanup_s=(
            None if config.cleanup == "keep" else INTERRUPTED_CLEANUP_S))
    summaries = by_hop(results)
    report = json_report.build(target=config.target, started_at=started, finished_at=time.time(),
                               probes=results, insecure=config.tls.insecure, run_id=new_run_id(),
                               plaintext=plaintext_endpoints(config))
    folder = run_folder.write(report, args.report_dir)
    latencies = [r.latency_s for r in results if r.latency_s is not None]
    plot = latency_plot.write(folder / "latency.svg", latencies,
                              title=f"flowtest latency: {results[0].alias}, {len(latencies)} "
                                    f"of {len(results)} delivered")
    out = show.console()
    show.banner(out, config)
    show.say(out, f"{'':34} {'n':>4} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}")
    for s in summaries:
        show.say(out, f"{s.name[:34]:34} {s.count:>4} {s.p50:>8.3f}s {s.p90:>8.3f}s "
                      f"{s.p99:>8.3f}s {s.max:>8.3f}s")
    lost = len(results) - len(latencies)
    if lost:
        show.say(out, (f"{lost} of {len(results)} probes were not delivered", show.ERROR))
    show.say(out, f"plot: {plot}")
    show.say(out, f"run folder: {folder}")
    if args.json:
        report["latency"] = [s.to_json() for s in summaries]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return exit_for(report["verdict"])
