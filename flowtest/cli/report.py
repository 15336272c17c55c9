"""`flowtest report`: the latest report.html rebuilt from the history, or
(--latency) the latency of this week against last week, run against run, or
alias against alias."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flowtest.cli import console as show
from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _


def add(sub: Any) -> None:
    sp = sub.add_parser("report", help=_("rebuild the latest report.html from the history"),
                        description=_("Rebuild the latest run's report.html with every probe "
                                      "in history.jsonl; with --latency, compare latency "
                                      "instead."))
    sp.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                    help=_("the report folder (default: reports/)"))
    sp.add_argument("--latency", action="store_true",
                    help=_("compare inbound latency from the history: medians with their 95%% "
                           "intervals side by side, and whether the difference beats the "
                           "noise"))
    sp.add_argument("--by", choices=("week", "run", "alias"), default="week",
                    help=_("with --latency: this week against last week (default), the last "
                           "run against the one before, or each alias of the last 7 days"))
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from flowtest.report import run_folder

    if args.latency:
        return _latency(args)
    path = run_folder.rebuild(args.report_dir)
    if path is None:
        raise ConfigError(_("no run found here; run `flowtest demo` or `flowtest run` first"),
                          file=args.report_dir)
    show.say(show.console(), _("rebuilt {path}").format(path=path))
    return 0


def _latency(args: argparse.Namespace) -> int:
    from flowtest.report import history, latency_compare
    from flowtest.report.run_folder import HISTORY

    path = args.report_dir / HISTORY
    if not path.exists():
        raise ConfigError(_("no history here; run `flowtest latency` first"), file=path)
    groups = latency_compare.groups(history.read(path), args.by)
    out = show.console()
    for g in groups:
        show.say(out, latency_compare.describe(g))   # aliases are untrusted: plain text
    show.say(out, latency_compare.compare(groups).sentence)
    return 0
