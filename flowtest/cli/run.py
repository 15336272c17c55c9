"""`flowtest run`: the DNS check and the legs, with a config file (live or sandbox)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from flowtest.cli import legs
from flowtest.cli.interrupt import Interrupted
from flowtest.cli.target import add_config_option, add_insecure_option, opened
from flowtest.errors import ConfigError, FlowtestError
from flowtest.i18n import gettext as _


def add(sub: Any) -> None:
    sp = sub.add_parser("run", help=_("run the DNS and inbound checks with a config file"),
                        description=_("Check the domain's DNS, then probe every alias of the "
                                      "config, live or sandbox. Ctrl-C or SIGTERM stops the "
                                      "run after moving its probes to Trash (exit 130 or "
                                      "143); a second signal exits at once."))
    add_config_option(sp)
    add_insecure_option(sp)
    legs.add_run_options(sp)
    sp.add_argument("--no-dns", action="store_true",
                    help=_("skip the DNS check (and Cloudflare's, when configured) and only "
                           "probe: for runs every few minutes, with `flowtest doctor` or "
                           "`flowtest serve` checking the DNS on its own schedule"))
    add_alert_options(sp)
    sp.set_defaults(func=main)


def add_alert_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--notify", metavar="URL", action="append", default=[],
                    help=_("send a message when an alias goes down (after --alert-after "
                           "failed runs in a row) and when it recovers, never once per run: "
                           "an apprise URL (ntfys://, tgram://, mailtos://, slack://, "
                           "discord://, json://, schan://, pushplus://, wecombot://, "
                           "dingtalk://, feishu://…) or a reference to one (env:NAME, "
                           "file:PATH); repeatable. The state is kept in "
                           "REPORT_DIR/alerts.json between runs (docs/alerts.md)"))
    sp.add_argument("--ping", metavar="URL",
                    help=_("dead-man's switch, healthchecks.io style: URL/start when the "
                           "run starts, URL when it passes, URL/fail with the short report "
                           "when not (rid = the run); or a reference to the URL. A ping that "
                           "fails is logged and never fails the run"))
    sp.add_argument("--alert-after", metavar="K", type=_positive, default=2,
                    help=_("failed runs in a row before a 'down' message (default: 2)"))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(_("{text} is not a whole number").format(
            text=repr(text))) from None
    if value < 1:
        raise argparse.ArgumentTypeError(_("must be 1 or more, not {value}").format(
            value=value))
    return value


def main(args: argparse.Namespace) -> int:
    from flowtest.flows.inbound import same_account_problem
    from flowtest.mail.probe import new_run_id

    run_id = new_run_id()
    # The start ping goes out once the target is open: a sandbox config turns
    # the network guard on first, so nothing of a sandbox run leaves loopback.
    with opened(args, sandbox=False) as target, alerting(args, run_id) as alerts:
        config = target.config
        problem = same_account_problem(config)
        if problem:
            raise ConfigError(problem, file=args.config, key="probe.address")
        check_send_budget(config, args)
        findings = None if args.no_dns else legs.check_dns(config)
        live = config.target != "sandbox"
        results, started, finished, run_id = legs.probe(
            config, args, poll_s=10.0 if live else 1.0, settle_s=3.0 if live else 0.5,
            run_id=run_id)
        code = legs.finish(config, results, started, finished, run_id, args,
                           _("flowtest run ({target}: {domain})").format(
                               target=config.target, domain=config.domain), findings,
                           dns_checked=not args.no_dns)
        alerts.finished(results, findings or [])
    return code


class RunAlerts:
    """`run --notify/--ping`: the Alerter of one run, its state in the report dir."""

    def __init__(self, alerter: Any, args: argparse.Namespace, run_id: str) -> None:
        self.alerter, self.args, self.run_id = alerter, args, run_id

    def finished(self, results: list[Any], findings: list[Any]) -> None:
        if self.alerter is None:
            return  # before the imports: a run without --notify/--ping never loads them
        from flowtest.flows.alerting import STATE_FILE, save_state, short_report
        from flowtest.report.json_report import build

        verdict = build(target="", started_at=0, finished_at=0, probes=results,
                        dns=[f.to_json() for f in findings])["verdict"]
        asyncio.run(self.alerter.observe(results, run_id=self.run_id))
        if self.args.report_dir is not None:
            save_state(self.args.report_dir / STATE_FILE, self.alerter.state())
        asyncio.run(self.alerter.run_finished(
            self.run_id, verdict, short_report(results, verdict, run_id=self.run_id,
                                               dns=findings)))

    def failed(self, why: str) -> None:
        if self.alerter is not None:
            asyncio.run(self.alerter.run_finished(self.run_id, "error",
                                                  f"flowtest run {self.run_id}: {why}"))


@contextlib.contextmanager
def alerting(args: argparse.Namespace, run_id: str) -> Iterator[RunAlerts]:
    """The run between its /start ping and its end; a run that ends in an
    error (config, budget, signal) still pings /fail with why."""
    if not args.notify and not args.ping:
        yield RunAlerts(None, args, run_id)
        return
    from flowtest.flows.alerting import STATE_FILE, Alerter, load_state
    from flowtest.secrets import redact

    state = load_state(args.report_dir / STATE_FILE) if args.report_dir is not None else None
    alerts = RunAlerts(Alerter(args.notify, after=args.alert_after, ping_url=args.ping,
                               state=state), args, run_id)
    asyncio.run(alerts.alerter.run_started(run_id))
    try:
        yield alerts
    except FlowtestError as exc:
        alerts.failed(_("error: {error}").format(error=redact(str(exc))))
        raise
    except (Interrupted, KeyboardInterrupt) as exc:
        alerts.failed(_("interrupted ({signal})").format(
            signal=f"{type(exc).__name__} {exc}"))
        raise


def check_send_budget(config: Any, args: argparse.Namespace) -> None:
    """Refuse, before sending anything, an outbound run that would take this
    Gmail account past limits.daily_sends in 24 hours (Gmail's own limit of
    about 500 is shared with the user's real mail; over it, Gmail refuses all
    sending with 550 5.4.5 for up to a day)."""
    from flowtest.report import history
    from flowtest.report.run_folder import HISTORY

    budget = config.limits.daily_budget(config.target)
    if budget is None or args.leg not in ("both", "outbound") or args.report_dir is None:
        return
    state = history.send_budget(args.report_dir / HISTORY, budget=budget, target=config.target,
                                wanted=len(config.aliases), now=time.time())
    if state.exceeded:
        values = {"used": state.used, "history": args.report_dir / HISTORY,
                  "wanted": state.wanted, "budget": budget}
        if state.free_at is None:
            reason = _("{used} outbound probes in the last 24 hours (from {history}) and "
                       "{wanted} more would pass the budget of {budget}. Run --leg inbound, "
                       "or raise the budget if this account sends little else").format(**values)
        else:
            reason = _("{used} outbound probes in the last 24 hours (from {history}) and "
                       "{wanted} more would pass the budget of {budget}; enough of the budget "
                       "is free again at {time}. Run --leg inbound, or raise the budget if "
                       "this account sends little else").format(
                time=time.strftime("%Y-%m-%d %H:%M", time.localtime(state.free_at)), **values)
        raise ConfigError(reason, key="limits.daily_sends", file=config.path)
