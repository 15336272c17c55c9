"""`flowtest run`: the DNS check and the legs, with a config file (live or sandbox)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from flowtest.cli import legs
from flowtest.cli.target import add_config_option, add_insecure_option, opened
from flowtest.errors import ConfigError


def add(sub: Any) -> None:
    sp = sub.add_parser("run", help="run the DNS and inbound checks with a config file",
                        description="Check the domain's DNS, then probe every alias of the "
                                    "config, live or sandbox. Ctrl-C or SIGTERM stops the run "
                                    "after moving its probes to Trash (exit 130 or 143); a "
                                    "second signal exits at once.")
    add_config_option(sp)
    add_insecure_option(sp)
    legs.add_run_options(sp)
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from flowtest.flows.inbound import same_account_problem

    with opened(args, sandbox=False) as target:
        config = target.config
        problem = same_account_problem(config)
        if problem:
            raise ConfigError(problem, file=args.config, key="probe.address")
        check_send_budget(config, args)
        findings = legs.check_dns(config)
        live = config.target != "sandbox"
        results, started, finished, run_id = legs.probe(
            config, args, poll_s=10.0 if live else 1.0, settle_s=3.0 if live else 0.5)
    return legs.finish(config, results, started, finished, run_id, args,
                       f"flowtest run ({config.target}: {config.domain})", findings)


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
        when = (f"; enough of the budget is free again at "
                f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(state.free_at))}"
                if state.free_at is not None else "")
        raise ConfigError(
            f"{state.used} outbound probes in the last 24 hours (from "
            f"{args.report_dir / HISTORY}) and {state.wanted} more would pass the budget of "
            f"{budget}{when}. Run --leg inbound, or raise the budget if this account "
            "sends little else", key="limits.daily_sends", file=config.path)
