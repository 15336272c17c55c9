"""`flowtest init`: a commented flowtest.toml to fill in, asked for or from flags."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowtest.cli import console as show
from flowtest.errors import ConfigError


def add(sub: Any) -> None:
    sp = sub.add_parser("init", help="write a commented flowtest.toml template",
                        description="Write a commented config template to fill in.")
    sp.add_argument("--path", metavar="FILE", type=Path, default=Path("flowtest.toml"),
                    help="where to write it (default: ./flowtest.toml)")
    sp.add_argument("--domain", help="your domain (e.g. example.me)")
    sp.add_argument("--alias", dest="aliases", metavar="NAME", action="append",
                    help="an alias to test (repeatable)")
    sp.add_argument("--gmail", help="the Gmail address Cloudflare forwards to")
    sp.add_argument("--probe", help="the probe account's address (another provider)")
    sp.add_argument("--probe-provider", metavar="NAME",
                    help="the probe account's provider: gmail, outlook, icloud, qq, 163, "
                         "fastmail, yahoo or custom (default: guessed from --probe)")
    sp.add_argument("--secrets", choices=("env", "file", "keyring"),
                    help="where the passwords will come from (default env)")
    sp.add_argument("--non-interactive", action="store_true",
                    help="never ask; take flags and defaults (also when stdin is not a "
                         "terminal)")
    sp.add_argument("--force", action="store_true", help="overwrite an existing file")
    sp.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import tomllib

    from flowtest import config as cfg
    from flowtest import providers

    path: Path = args.path
    if path.exists() and not args.force:
        raise ConfigError("already exists; use --force to overwrite it", file=path)
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

    domain = ask(args.domain, "Your domain", "example.me", cfg.check_domain,
                 "that is not a domain name").lower()
    alias_text = ask(",".join(args.aliases) if args.aliases else None,
                     "Aliases to test (comma-separated)", "hello")
    aliases = tuple(a.strip() for a in alias_text.split(",") if a.strip())
    gmail = ask(args.gmail, "Your Gmail address", "you@gmail.com", cfg.check_address,
                "that is not a mail address")
    probe = ask(args.probe, "The probe account (at another provider)", "probe@fastmail.com",
                lambda a: cfg.check_address(a) and a.lower() != gmail.lower(),
                "give a mail address other than the Gmail account")
    guess = next((name for name, p in providers.PROVIDERS.items()
                  if probe.rpartition("@")[2] in (f"{name}.com", p.imap[0].split(".", 1)[1])),
                 "custom")
    provider = ask(args.probe_provider, "Its provider (" + ", ".join(providers.PROVIDERS)
                   + ", custom)", guess, lambda v: v == "custom" or providers.get(v) is not None,
                   "unknown provider")
    secrets = ask(args.secrets, "Where passwords come from (env, file, keyring)", "env",
                  lambda v: v in cfg.SECRET_SOURCES, "answer env, file or keyring")
    text = cfg.template(domain=domain, aliases=aliases, gmail=gmail, probe=probe,
                        provider=provider, secrets=secrets)
    cfg.parse(tomllib.loads(text), file=path)  # never write a file that would not load
    path.write_text(text, encoding="utf-8")
    profile = providers.get(provider)
    out = show.console()
    show.say(out, f"wrote {path}")
    show.say(out, f"next: put the Gmail app password and the probe account's "
                  f"{profile.password_kind if profile else 'password'} where the file says "
                  f"({secrets}), then run `flowtest login-check -c {path}`.")
    return 0
