"""`flowtest cleanup`: stale probes of finished (or killed) runs go to Trash."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from flowtest.cli import console as show
from flowtest.cli.target import add_config_option, add_insecure_option, opened
from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _

EXIT_OK, EXIT_FAIL = 0, 1


def age(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(value) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("{value} is not an age like 90m, 6h or 2d").format(value=repr(text))) from None
    if not seconds > 0:  # also NaN
        raise argparse.ArgumentTypeError(_("must be more than 0"))
    return seconds


def add(sub: Any) -> None:
    sp = sub.add_parser("cleanup", help=_("move stale probes of finished runs to Trash"),
                        description=_("Move flowtest probes that no run will clean up any more "
                                      "(they arrived after their run gave up, or the run was "
                                      "killed) from INBOX, Spam and Sent to Trash, in both "
                                      "mailboxes. Only messages whose X-Flowtest-Probe header "
                                      "is exactly a flowtest token from a run older than "
                                      "--older-than are moved; nothing else is touched."))
    add_config_option(sp)
    sp.add_argument("--older-than", metavar="AGE", type=age, default=age("6h"),
                    help=_("only probes of runs that started longer ago than this: 90m, 6h, "
                           "2d or seconds (default 6h; at least timeouts.delivery_s + 10 min)"))
    sp.add_argument("--dry-run", action="store_true",
                    help=_("list what would be moved and move nothing (folders opened "
                           "read-only)"))
    add_insecure_option(sp)
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from flowtest.flows import sweep

    with opened(args, sandbox=False) as target:
        config = target.config
    floor = sweep.shortest_safe_age(config)
    if args.older_than < floor:
        raise ConfigError(_("{age} s would reach probes of runs that may still be waiting "
                            "for them; use at least {floor} s (timeouts.delivery_s + 10 min)"
                            ).format(age=f"{args.older_than:g}", floor=f"{floor:g}"),
                          key="--older-than")
    reports = asyncio.run(sweep.stale(config, args.older_than, dry_run=args.dry_run))
    out = show.console()
    show.banner(out, config)
    failed = False
    for report in reports:
        if report.error is not None:
            failed = True
            show.say(out, ("ERROR", show.ERROR), f" {report.account}: {report.error}")
            continue
        parts = ", ".join(f"{s.folder} {len(s.probes) + len(s.reports)}" for s in report.swept)
        values = {"account": report.account, "probes": report.probes,
                  "reports": report.reports, "folders": parts}
        if args.dry_run:
            said = _("{account}: would move {probes} stale probe(s) and {reports} report(s) "
                     "about them to Trash ({folders})")
        else:
            said = _("{account}: moved {probes} stale probe(s) and {reports} report(s) about "
                     "them to Trash ({folders})")
        show.say(out, said.format(**values))
        if args.dry_run:
            for swept in report.swept:
                for token in swept.probes:
                    show.say(out, f"  {swept.folder}: {token}")
                for tokens in swept.reports:
                    show.say(out, "  " + _("{folder}: report about {tokens}").format(
                        folder=swept.folder, tokens=", ".join(tokens)))
    return EXIT_FAIL if failed else EXIT_OK
