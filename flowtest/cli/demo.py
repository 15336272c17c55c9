"""`flowtest demo`: the sandbox world, its DNS checked, every alias probed both ways."""

from __future__ import annotations

import argparse
from typing import Any

from flowtest.cli import console as show
from flowtest.cli import legs
from flowtest.cli.target import add_fault_option, add_timing_option, check_faults, opened
from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _


def add(sub: Any) -> None:
    sp = sub.add_parser("demo", help=_("run the DNS check and both legs against the sandbox"),
                        description=_("Start the sandbox world, check its DNS, probe every "
                                      "alias inbound and outbound, and show what arrived. "
                                      "--fault shows what a broken setup looks like."))
    add_fault_option(sp, _("break the sandbox on purpose (repeatable); "
                           "`flowtest sandbox --list-faults` lists them"))
    sp.add_argument("--aliases", metavar="N", type=int, default=3,
                    help=_("how many aliases the sandbox routes (default 3, at most 200)"))
    legs.add_run_options(sp)
    add_timing_option(sp)
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    check_faults(args.fault)
    if not 1 <= args.aliases <= 200:
        raise ConfigError(_("must be between 1 and 200 (Cloudflare's rule limit)"),
                          key="--aliases")
    names = ["hello", "shop", "billing"] + [f"alias{i:03d}" for i in range(3, args.aliases)]
    show.progress(show.console(stderr=True), _("Starting the sandbox world (Cloudflare, "
                                               "Gmail, an external provider, DNS)…"))
    with opened(args, sandbox=True, aliases=names[:args.aliases]) as target:
        config = target.config
        findings = legs.check_dns(config)
        results, started, finished, run_id = legs.probe(config, args, poll_s=1.0, settle_s=0.5)
        target.world.check_errors()
    title = (_("flowtest demo (sandbox) — faults: {faults}").format(faults=", ".join(args.fault))
             if args.fault else _("flowtest demo (sandbox)"))
    return legs.finish(config, results, started, finished, run_id, args, title, findings)
