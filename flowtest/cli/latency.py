"""`flowtest latency`: inbound probes on a schedule (a count or a duration),
honest percentiles end to end and per hop, a page of charts, the history
written probe by probe, --resume after Ctrl-C."""

from __future__ import annotations

import argparse
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
    add_timing_option,
    opened,
)
from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _


def _duration(text: str) -> float:
    from flowtest.flows.latency import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add(sub: Any) -> None:
    sp = sub.add_parser("latency", help=_("measure forwarding latency with repeated probes"),
                        description=_("Send inbound probes on a schedule (-n of them, or for "
                                      "--duration), print p50 with its 95%% interval, p90, "
                                      "p99 and max end to end and per hop, write a page of "
                                      "charts, and add each probe to the history as it "
                                      "completes."))
    add_config_option(sp, default=None, help=_("the config (default: the embedded sandbox)"))
    sp.add_argument("--count", "-n", metavar="N", type=int,
                    help=_("how many probes (default 10, or one per interval for "
                           "--duration)"))
    sp.add_argument("--duration", metavar="TIME", type=_duration,
                    help=_("probe for this long: 90s, 10m, 24h, 2d"))
    sp.add_argument("--interval", metavar="TIME", type=_duration, default=1.0,
                    help=_("time between probes: seconds, or 30s, 10m (default 1)"))
    sp.add_argument("--alias", metavar="ADDRESS", action="append", default=[],
                    help=_("an alias to probe, repeatable: probes alternate between them "
                           "(default: the first configured)"))
    sp.add_argument("--all-aliases", action="store_true",
                    help=_("alternate over every alias"))
    sp.add_argument("--resume", action="store_true",
                    help=_("continue the last run that did not finish (same plan, same "
                           "folder)"))
    add_fault_option(sp, _("sandbox only: start the world with this fault (repeatable)"))
    add_timing_option(sp)
    add_insecure_option(sp)
    sp.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                    help=_("run folder (latency.html and SVGs) and history (default: "
                           "reports/)"))
    sp.add_argument("--json", metavar="PATH", type=Path,
                    help=_("write the JSON report, with the percentiles under 'latency'"))
    sp.add_argument("--csv", metavar="PATH", type=Path,
                    help=_("write every probe with its hop times as CSV"))
    sp.set_defaults(func=main)


def _check(args: argparse.Namespace) -> None:
    if args.count is not None and not 1 <= args.count <= 10_000:
        raise ConfigError(_("must be between 1 and 10000"), key="--count")
    if not args.interval >= 0:  # also NaN
        raise ConfigError(_("must be 0 or more"), key="--interval")
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(_("must be more than 0"), key="--duration")
    if args.resume and (args.alias or args.all_aliases or args.duration or args.count):
        raise ConfigError(_("--resume continues the saved plan; give no other plan options"),
                          key="--resume")


def _plan(config: Any, args: argparse.Namespace) -> tuple[Any, Path, int]:
    """The plan, its folder, and how many probes of it are done already."""
    from flowtest.flows import latency as flow
    from flowtest.mail.probe import new_run_id
    from flowtest.report import history, latency_run

    if args.resume:
        saved = latency_run.load_plan(args.report_dir)
        if saved is None:
            raise ConfigError(_("no unfinished latency run to resume here"),
                              file=args.report_dir / latency_run.PLAN)
        try:
            plan = flow.Plan.from_json(saved[0])
        except ValueError as exc:
            raise ConfigError(str(exc), file=args.report_dir / latency_run.PLAN) from None
        done = len(latency_run.read_journal(saved[1]))
        saved[1].mkdir(parents=True, exist_ok=True)
        # Probes that were due while the run was stopped are not sent in a burst.
        plan = flow.Plan(plan.run_id, plan.aliases, plan.count, plan.interval_s,
                         time.time() - done * plan.interval_s)
        return plan, saved[1], done
    aliases = flow.pick_aliases(config, args.alias, args.all_aliases)
    count = flow.probe_count(count=args.count, duration_s=args.duration,
                             interval_s=args.interval)
    if count > flow.MAX_PROBES:
        raise ConfigError(_("{count} probes is more than {most}").format(
            count=count, most=flow.MAX_PROBES), key="--duration")
    plan = flow.Plan(new_run_id(), tuple(a.address for a in aliases), count, args.interval,
                     time.time())
    recent = history.recent_sends(args.report_dir / latency_run.HISTORY, leg="inbound",
                                  target=config.target, now=time.time())
    flow.check_budget(plan, budget=config.limits.daily_budget(config.target),
                      recent=len(recent))
    folder = latency_run.new_folder(args.report_dir, plan.run_id)
    latency_run.save_plan(args.report_dir, plan.to_json(), folder)
    return plan, folder, 0


def _measure(config: Any, args: argparse.Namespace) -> tuple[Any, Path,
                                                              interrupt.Interrupted | None]:
    from rich.progress import Progress

    from flowtest.flows import latency as flow
    from flowtest.flows.common import INTERRUPTED_CLEANUP_S, Options
    from flowtest.report import latency_run

    plan, folder, done = _plan(config, args)
    sandbox = config.target == "sandbox"
    options = Options(poll_s=1.0 if sandbox else 10.0, settle_s=0.0)
    stopped: interrupt.Interrupted | None = None
    # The progress bar's description is markup: nothing untrusted goes in it.
    with Progress(console=show.console(stderr=True), transient=True) as bar:
        task = bar.add_task(_("probing"), total=plan.count, completed=done)

        def progress(n: int, total: int, left_s: float) -> None:
            bar.update(task, completed=n, description=_(
                "probe {n} of {total}, about {left} left").format(
                    n=min(n + 1, total), total=total, left=flow.human(left_s)))

        def keep(result: Any) -> None:
            latency_run.record(folder, args.report_dir, result, run_id=plan.run_id,
                               target=config.target)

        try:
            interrupt.run(flow.run(config, plan, done=done, on_probe=keep, progress=progress,
                                   options=options),
                          cleanup_s=None if config.cleanup == "keep" else INTERRUPTED_CLEANUP_S)
        except interrupt.Interrupted as exc:
            stopped = exc   # what was measured is kept: report it, then exit 130
    if stopped is None:
        latency_run.finish_plan(args.report_dir)
    return plan, folder, stopped


def main(args: argparse.Namespace) -> int:
    _check(args)
    started = time.time()
    sandbox = args.config is None
    if args.realistic_timing is not None and not sandbox:
        raise ConfigError(_("--realistic-timing works only with the sandbox (no --config)"),
                          key="--realistic-timing")
    with opened(args, sandbox=sandbox,
                fault_hint=_("--fault works only with the sandbox (no --config)")) as target:
        config = target.config
        plan, folder, stopped = _measure(config, args)
    code = _report(config, args, plan, folder, started, stopped)
    if stopped is not None:
        raise stopped
    return code


def _report(config: Any, args: argparse.Namespace, plan: Any, folder: Path, started: float,
            stopped: interrupt.Interrupted | None) -> int:
    from rich.cells import set_cell_size

    from flowtest.config import plaintext_endpoints
    from flowtest.mail import stats
    from flowtest.model import worst
    from flowtest.report import json_report, latency_page, latency_run
    from flowtest.report.latency_plot import stretch

    results = latency_run.read_journal(folder)
    summaries = stats.by_hop(results)
    report = json_report.build(target=config.target, started_at=started,
                               finished_at=time.time(), probes=[],
                               insecure=config.tls.insecure, run_id=plan.run_id,
                               plaintext=plaintext_endpoints(config), dns_checked=False)
    report["probes"] = latency_run.journal_rows(folder)
    report["verdict"] = worst([r.verdict for r in results])
    report["latency"] = [s.to_json() for s in summaries]
    latency_run.write_folder(folder, args.report_dir, report)
    aliases = ", ".join(plan.aliases)
    delivered = sum(1 for r in results if r.latency_s is not None)
    page = latency_page.write(folder, results, summaries,
                              title=_("flowtest latency: {aliases}, {delivered} of {total} "
                                      "delivered").format(aliases=aliases, delivered=delivered,
                                                          total=len(results)))
    out = show.console()
    show.banner(out, config)
    show.say(out, f"{'':34} {'n':>5} {'p50':>9} {'p50 95% CI':>17} {'p90':>9} {'p99':>9} "
                  f"{'max':>9}  " + _("resolution"))
    for s in summaries:
        ci = "n<6" if s.p50_ci is None else f"{s.p50_ci[0]:.3f}–{s.p50_ci[1]:.3f}s"
        res = "" if s.resolution_s is None else f"±{s.resolution_s:g}s"
        # Padded by terminal cells: a Chinese character takes two.
        name = set_cell_size(stretch(s.name), 34)
        show.say(out, f"{name} {s.count:>5} "
                      f"{stats.fmt(s.p50):>9} {ci:>17} "
                      f"{stats.fmt(s.p90, 90):>9} {stats.fmt(s.p99, 99):>9} "
                      f"{s.max:>8.3f}s  {res}")
    lost = len(results) - delivered
    if lost:
        show.say(out, (_("{lost} of {total} probes were not delivered").format(
            lost=lost, total=len(results)), show.ERROR))
    if stopped is not None:
        show.say(out, (_("stopped after {done} of {count} probes").format(
            done=len(results), count=plan.count), show.ERROR),
            _("; `flowtest latency --resume` continues this run"))
    show.say(out, _("charts: {path}").format(path=page))
    show.say(out, _("run folder: {folder}").format(folder=folder))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        args.csv.write_text(latency_page.to_csv(results, plan.run_id), encoding="utf-8")
        show.say(out, _("csv: {path}").format(path=args.csv))
    if args.json:
        json_report.write(report, args.json)
    return exit_for(report["verdict"])
