"""`flowtest inspect`: a saved message read offline: hops, trusted verdicts, diagnosis."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flowtest.cli import console as show
from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _

EXIT_OK = 0


def add(sub: Any) -> None:
    sp = sub.add_parser("inspect", help=_("read a saved message: hops, auth, diagnosis"),
                        description=_("Read a message you saved (Gmail: ⋮ → Show original → "
                                      "Download original) and show its hops with delays, the "
                                      "receiver's trusted verdicts, alignment and what they "
                                      "mean. Offline: no network at all."))
    sp.add_argument("message", metavar="MESSAGE.eml", type=Path, help=_("the saved message"))
    sp.add_argument("--authserv-id", metavar="ID",
                    help=_("whose Authentication-Results to trust (default: the topmost "
                           "header's, e.g. mx.google.com)"))
    sp.add_argument("--provider", metavar="NAME", type=str.lower,
                    help=_("the receiving provider's profile, as in flowtest.toml (gmail, "
                           "outlook, fastmail, …; an unknown name lists them): how it stamps "
                           "its verdicts"))
    sp.add_argument("--json", metavar="PATH", type=Path,
                    help=_("write hops, auth and diagnosis as JSON to PATH"))
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import json

    from flowtest import providers
    from flowtest.mail.inspect import inspect

    if args.provider is not None and args.provider not in providers.PROVIDERS:
        raise ConfigError(_("unknown provider {name}; known: {known}").format(
            name=repr(args.provider), known=", ".join(sorted(providers.PROVIDERS))),
            key="--provider")
    try:
        raw = args.message.read_bytes()
    except OSError as exc:
        raise ConfigError(_("cannot read: {reason}").format(reason=exc.strerror),
                          file=args.message) from None
    if not raw.strip():
        raise ConfigError(_("the file is empty"), file=args.message)
    # Only when given: the keyword is new in mail.inspect.
    by_provider = {"provider": args.provider} if args.provider else {}
    result = inspect(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), args.authserv_id,
                     **by_provider)
    out = show.console()
    trusting = (_(" (trusting {authserv_id})").format(authserv_id=result.authserv_id)
                if result.authserv_id else _(" (trusting nobody)"))
    show.say(out, (str(args.message), show.STRONG), trusting)
    for i, hop in enumerate(result.hops, 1):
        delay = f"+{hop.delay_s:.3f} s" if hop.delay_s is not None else "?"
        show.say(out, f"  {i}. {hop.from_ or '?'} → {hop.by or '?'}  {delay}  [{hop.source}]")
    show.lines(out, (f"  {sentence}" for sentence in result.diagnosis))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        show.say(out, f"JSON: {args.json}")
    return EXIT_OK
