"""What a command tests: the sandbox world, started here, or a config file; the
command line's overrides applied, and the network guard on for any sandbox.

The sandbox is imported only when a command asks for it (it pulls in the mail
servers; `flowtest --help` and a live run need none of that).
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from flowtest import i18n
from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _

DEFAULT_CONFIG = Path("flowtest.toml")


class Target(NamedTuple):
    config: Any               # flowtest.config.Config
    world: Any = None         # the sandbox World when this command started one


def add_config_option(sp: argparse.ArgumentParser, *, default: Path | None = DEFAULT_CONFIG,
                      help: str | None = None) -> None:
    sp.add_argument("--config", "-c", metavar="FILE", type=Path, default=default,
                    help=help or _("the config file (default: ./flowtest.toml)"))


def add_fault_option(sp: argparse.ArgumentParser, help: str) -> None:
    sp.add_argument("--fault", metavar="NAME[=VALUE]", action="append", default=[], help=help)


def add_insecure_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--insecure", action="store_true",
                    help=_("accept plaintext and unverified TLS (loudly marked in all output: "
                           "PLAINTEXT, INSECURE)"))


def add_timing_option(sp: argparse.ArgumentParser) -> None:
    """--realistic-timing [SCALE]: the sandbox's hops take real time (issue 20)."""
    sp.add_argument("--realistic-timing", metavar="SCALE", type=_timing_scale, nargs="?",
                    const=1.0, help="sandbox only: each hop takes time shaped like "
                                    "Cloudflare's and Gmail's (about 3-6 s a probe; SCALE "
                                    "shrinks it, default 1)")


def _timing_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("must be between 0 and 100")
    return value


def timing_options(args: argparse.Namespace) -> dict[str, Any]:
    """World(...) keywords for --realistic-timing, if given."""
    scale = getattr(args, "realistic_timing", None)
    if scale is None:
        return {}
    from flowtest.sandbox.timing import Timing
    return {"timing": Timing(scale=scale)}


def seconds(text: str) -> float:
    """A duration flag: more than 0 and finite (0 would mean 'never wait')."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("{value} is not a number of seconds").format(value=repr(text))) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            _("must be more than 0 seconds, not {value}").format(value=text))
    return value


def check_faults(specs: Sequence[str]) -> None:
    from flowtest.sandbox.faults import parse

    for spec in specs:
        parse(spec)


@contextlib.contextmanager
def opened(args: argparse.Namespace, *, sandbox: bool, aliases: Sequence[str] | None = None,
           fault_hint: str | None = None) -> Iterator[Target]:
    """The target, for the length of the ``with``. With ``sandbox`` the world
    runs until the block ends (so the whole command is tested against it);
    otherwise ``args.config`` is loaded, and a sandbox config file turns the
    guard on too."""
    from flowtest import guard

    faults: list[str] = getattr(args, "fault", None) or []
    if sandbox:
        from flowtest.sandbox import World

        check_faults(faults)
        options: dict[str, Any] = {"aliases": list(aliases)} if aliases else {}
        options.update(timing_options(args))
        with guard.guarded(), World(faults=faults, **options) as world:
            yield Target(overrides(world.config(), args), world)
        return
    from flowtest import config as cfg

    if faults:
        raise ConfigError(fault_hint or _("--fault needs --sandbox"), key="--fault")
    config = overrides(cfg.load(getattr(args, "config", None) or DEFAULT_CONFIG), args)
    if config.lang and not getattr(args, "lang", None):
        # The config's language, unless --lang chose one; the CLI's main restores
        # the previous language when the command ends.
        i18n.activate(config.lang)
    if config.target == "sandbox":
        guard.enable()
    yield Target(config)


def overrides(config: Any, args: argparse.Namespace) -> Any:
    """--keep, --timeout and --insecure, where the command has them."""
    import dataclasses

    changes: dict[str, Any] = {}
    if getattr(args, "keep", False):
        changes["cleanup"] = "keep"
    timeout = getattr(args, "timeout", None)
    if timeout is not None:
        if not math.isfinite(timeout) or timeout <= 0:  # also when called without argparse
            raise ConfigError(_("must be more than 0 seconds"), key="--timeout")
        changes["timeouts"] = dataclasses.replace(config.timeouts, delivery_s=timeout)
    if getattr(args, "insecure", False):
        changes["tls"] = dataclasses.replace(config.tls, insecure=True)
    return dataclasses.replace(config, **changes) if changes else config
