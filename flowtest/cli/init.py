"""`flowtest init`: a commented flowtest.toml to fill in, asked for or from flags."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowtest.cli import console as show
from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _
from flowtest.i18n import ngettext


def add(sub: Any) -> None:
    sp = sub.add_parser("init", help=_("write a commented flowtest.toml template"),
                        description=_("Write a commented config template to fill in."))
    sp.add_argument("--path", metavar="FILE", type=Path, default=Path("flowtest.toml"),
                    help=_("where to write it (default: ./flowtest.toml)"))
    sp.add_argument("--domain", help=_("your domain (e.g. example.me)"))
    sp.add_argument("--alias", dest="aliases", metavar="NAME", action="append",
                    help=_("an alias to test (repeatable)"))
    sp.add_argument("--gmail", help=_("the Gmail address Cloudflare forwards to"))
    sp.add_argument("--probe", help=_("the probe account's address (another provider)"))
    sp.add_argument("--probe-provider", metavar="NAME",
                    help=_("the probe account's provider: gmail, outlook, icloud, qq, 163, "
                           "fastmail, yahoo or custom (default: guessed from --probe)"))
    sp.add_argument("--secrets", choices=("env", "file", "keyring"),
                    help=_("where the passwords will come from (default env)"))
    sp.add_argument("--non-interactive", action="store_true",
                    help=_("never ask; take flags and defaults (also when stdin is not a "
                           "terminal)"))
    sp.add_argument("--force", action="store_true", help=_("overwrite an existing file"))
    cf = sp.add_argument_group(_("from Cloudflare"))
    cf.add_argument("--from-cloudflare", action="store_true",
                    help=_("propose the aliases from the zone's routing rules that forward to "
                           "--gmail (read-only API token, docs/setup.md)"))
    cf.add_argument("--cloudflare-token", metavar="REF", default="env:CLOUDFLARE_API_TOKEN",
                    help=_("the token by reference (default env:CLOUDFLARE_API_TOKEN); "
                           "written into [cloudflare]"))
    cf.add_argument("--sandbox", action="store_true",
                    help=_("with --from-cloudflare: ask the sandbox world's Cloudflare "
                           "instead"))
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import tomllib

    from flowtest import config as cfg
    from flowtest import providers

    path: Path = args.path
    if path.exists() and not args.force:
        raise ConfigError(_("already exists; use --force to overwrite it"), file=path)
    interactive = not args.non_interactive and sys.stdin.isatty()

    def ask(value: str | None, question: str, default: str,
            valid: Callable[[str], bool] = lambda v: True, why: str = "") -> str:
        while value is None and interactive:
            answer = input(f"{question} [{default}]: ").strip() or default
            if valid(answer):
                return answer
            print(f"  {why}")
        value = value if value is not None else default
        if not valid(value):
            raise ConfigError(why, key=question)
        return value

    domain = ask(args.domain, _("Your domain"), "example.me", cfg.check_domain,
                 _("that is not a domain name")).lower()

    def ask_gmail() -> str:
        return ask(args.gmail, _("Your Gmail address"), "you@gmail.com", cfg.check_address,
                   _("that is not a mail address"))

    def ask_aliases(proposed: list[str]) -> str:
        return ask(",".join(args.aliases) if args.aliases else None,
                   _("Aliases to test (comma-separated)"), ",".join(proposed) or "hello")

    if args.from_cloudflare:  # the rules are read for the Gmail address: ask it first
        gmail = ask_gmail()
        alias_text = ask_aliases(_from_cloudflare(args, domain, gmail))
    else:
        alias_text = ask_aliases([])
        gmail = ask_gmail()
    aliases = tuple(a.strip() for a in alias_text.split(",") if a.strip())
    probe = ask(args.probe, _("The probe account (at another provider)"),
                "probe@fastmail.com",
                lambda a: cfg.check_address(a) and a.lower() != gmail.lower(),
                _("give a mail address other than the Gmail account"))
    guess = next((name for name, p in providers.PROVIDERS.items()
                  if probe.rpartition("@")[2] in (f"{name}.com", p.imap[0].split(".", 1)[1])),
                 "custom")
    provider = ask(args.probe_provider, _("Its provider ({names}, custom)").format(
                       names=", ".join(providers.PROVIDERS)), guess,
                   lambda v: v == "custom" or providers.get(v) is not None,
                   _("unknown provider"))
    secrets = ask(args.secrets, _("Where passwords come from (env, file, keyring)"), "env",
                  lambda v: v in cfg.SECRET_SOURCES, _("answer env, file or keyring"))
    text = cfg.template(domain=domain, aliases=aliases, gmail=gmail, probe=probe,
                        provider=provider, secrets=secrets)
    if args.from_cloudflare and not args.sandbox:
        # English like the rest of the template (config/template.py says why).
        text += (f'\n# Cloudflare\'s own view (docs/setup.md: a read-only token)\n[cloudflare]\n'
                 f'api_token = "{args.cloudflare_token}"\nzone = "{domain}"\n')
    cfg.parse(tomllib.loads(text), file=path)  # never write a file that would not load
    path.write_text(text, encoding="utf-8")
    profile = providers.get(provider)
    out = show.console()
    show.say(out, _("wrote {path}").format(path=path))
    show.say(out, _("next: put the Gmail app password and the probe account's {kind} where the "
                    "file says ({secrets}), then run `flowtest login-check -c {path}`.").format(
                        kind=_(profile.password_kind) if profile else _("password"),
                        secrets=secrets, path=path))
    return 0


def _from_cloudflare(args: argparse.Namespace, domain: str, gmail: str) -> list[str]:
    """The aliases the zone's rules already forward to ``gmail``."""
    import asyncio
    import contextlib
    import dataclasses

    from flowtest import config as cfg
    from flowtest.net.cloudflare import CloudflareClient
    from flowtest.net.cloudflare_rules import forwarding_to
    from flowtest.secrets import Secret

    with contextlib.ExitStack() as stack:
        if args.sandbox:
            from flowtest import guard
            from flowtest.sandbox import World
            stack.enter_context(guard.guarded())
            world = stack.enter_context(World(domain=domain, gmail_address=gmail))
            conf = world.config()
            assert conf.cloudflare is not None
            settings, tls, dns = conf.cloudflare, conf.tls, conf.dns
        else:
            try:
                token = Secret(args.cloudflare_token)
            except ConfigError as exc:
                raise ConfigError(exc.reason, key="--cloudflare-token") from None
            settings = cfg.CloudflareSettings(api_token=token, zone=domain)
            tls, dns = cfg.TlsSettings(), cfg.DnsSettings()

        async def read() -> tuple[list[str], str]:
            async with CloudflareClient(dataclasses.replace(settings, zone=domain), tls=tls,
                                        dns=dns) as client:
                found, failed = await forwarding_to(client, domain, gmail)
            return found, failed.describe() if failed is not None else ""

        found, failure = asyncio.run(read())
    out = show.console()
    if failure:
        raise ConfigError(_("Cloudflare's API did not list the rules ({failure})").format(
            failure=failure), key="--from-cloudflare")
    show.say(out, ngettext("Cloudflare forwards {count} address at {domain} to {gmail}",
                           "Cloudflare forwards {count} addresses at {domain} to {gmail}",
                           len(found)).format(count=len(found), domain=domain, gmail=gmail)
             + (": " + ", ".join(found) if found else ""))
    return [a.partition("@")[0] for a in found]
