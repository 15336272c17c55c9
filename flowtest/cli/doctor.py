"""`flowtest doctor`: the domain's DNS, and Cloudflare's own view when
[cloudflare] is configured, checked for this setup; sends no mail."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from flowtest.cli import legs
from flowtest.cli.target import add_config_option, add_fault_option, opened
from flowtest.i18n import gettext as _


def add(sub: Any) -> None:
    sp = sub.add_parser("doctor", help=_("check the domain's DNS (and Cloudflare's API when "
                                         "configured) for this setup"),
                        description=_("Check NS, MX, SPF, DKIM and DMARC as Cloudflare Email "
                                      "Routing and Gmail send-as need them, and what "
                                      "conflicts with them. With a [cloudflare] section, also "
                                      "read Cloudflare's API (read-only): Email Routing's "
                                      "status, routing rules, destination addresses, "
                                      "catch-all, DNSSEC and the registration's expiry. "
                                      "Sends no mail."))
    add_config_option(sp, default=None,
                      help=_("the config file (default: ./flowtest.toml; with --sandbox, none)"))
    sp.add_argument("--sandbox", action="store_true",
                    help=_("check the sandbox world's DNS instead (with --fault to break it)"))
    add_fault_option(sp, _("with --sandbox: start the world with this fault (repeatable)"))
    sp.add_argument("--json", metavar="PATH", type=Path,
                    help=_("write the JSON report (findings under 'dns', Cloudflare's "
                           "included) to PATH"))
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    started = time.time()
    with opened(args, sandbox=args.sandbox) as target:
        config = target.config
        findings = legs.check_dns(config)
    return legs.finish(config, [], started, time.time(), "", args,
                       _("flowtest doctor ({domain})").format(domain=config.domain), findings)
