"""`flowtest report`: the latest report.html rebuilt from the history."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flowtest.cli import console as show
from flowtest.errors import ConfigError


def add(sub: Any) -> None:
    sp = sub.add_parser("report", help="rebuild the latest report.html from the history",
                        description="Rebuild the latest run's report.html with every probe in "
                                    "history.jsonl.")
    sp.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                    help="the report folder (default: reports/)")
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from flowtest.report import run_folder

    path = run_folder.rebuild(args.report_dir)
    if path is None:
        raise ConfigError("no run found here; run `flowtest demo` or `flowtest run` first",
                          file=args.report_dir)
    show.say(show.console(), f"rebuilt {path}")
    return 0
