"""`flowtest login-check`: log in everywhere, verify TLS, list folders; send nothing."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from flowtest.cli import console as show
from flowtest.cli.target import (
    add_config_option,
    add_fault_option,
    add_insecure_option,
    opened,
)
from flowtest.i18n import gettext as _

EXIT_OK, EXIT_FAIL = 0, 1


def add(sub: Any) -> None:
    sp = sub.add_parser("login-check", help=_("log in to every endpoint; send nothing"),
                        description=_("Connect and log in to both SMTP servers and both IMAP "
                                      "mailboxes, verify TLS, list the folders flowtest will "
                                      "watch. Sends nothing."))
    add_config_option(sp)
    add_insecure_option(sp)
    sp.add_argument("--sandbox", action="store_true",
                    help=_("check the sandbox world's endpoints instead (with --fault)"))
    add_fault_option(sp, _("with --sandbox: start the world with this fault (repeatable)"))
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from flowtest.flows import login_check

    with opened(args, sandbox=args.sandbox) as target:
        config = target.config
        checks = asyncio.run(login_check.check(config))
    out = show.console()
    show.banner(out, config)
    for c in checks:
        mark = ("OK  ", show.GOOD) if c.ok else ("FAIL", show.ERROR)
        show.say(out, mark, f" {c.role:22} {c.endpoint}: {c.detail}")
        if c.hint:
            show.say(out, "     " + _("hint: {hint}").format(hint=c.hint))
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAIL
