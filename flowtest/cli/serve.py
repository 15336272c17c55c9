"""`flowtest serve`: the legs on a schedule, with metrics, a status page and
memory across restarts (docs/serve.md).

SIGHUP reloads the config file (a bad one is refused and the old kept);
SIGTERM or Ctrl-C stops: the probes in flight are cleaned up, and the
process exits within 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from pathlib import Path
from typing import Any

from flowtest import i18n
from flowtest.cli.target import add_config_option, add_fault_option, opened, seconds
from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _

log = logging.getLogger("flowtest.serve")

EXIT_OK = 0
# After SIGTERM: a few seconds for cleanup, well inside systemd's default 90 s
# and our promised 10 s.
STOP_GRACE_S = 8.0


def add(sub: Any) -> None:
    sp = sub.add_parser("serve", help=_("probe on a schedule; metrics, status page, alerts"),
                        description=_("Run the legs on the schedule of the config's [serve] "
                                      "section, keep the IMAP watchers logged in between "
                                      "probes, remember results in SQLite, and answer "
                                      "/metrics, /probe and a status page over HTTP. SIGHUP "
                                      "reloads the config; SIGTERM stops after cleaning up the "
                                      "probes in flight."))
    add_config_option(sp)
    sp.add_argument("--sandbox", action="store_true",
                    help=_("serve against an embedded sandbox, on a schedule of seconds "
                           "(a demo)"))
    add_fault_option(sp, _("with --sandbox: start with this fault (repeatable)"))
    sp.add_argument("--aliases", metavar="N", type=int,
                    help=_("with --sandbox: how many aliases (default: the sandbox's three)"))
    sp.add_argument("--listen", metavar="HOST:PORT",
                    help=_("HTTP address (default: serve.listen, 127.0.0.1:9466); anything "
                           "but loopback needs serve.bearer_token or "
                           "serve.basic_user/password"))
    sp.add_argument("--vantage", metavar="NAME",
                    help=_("the vantage label of every metric (default: serve.vantage)"))
    sp.add_argument("--notify", metavar="URL", action="append", default=[],
                    help=_("an apprise URL to alert on state changes, beside serve.notify "
                           "(repeatable)"))
    sp.add_argument("--poll-s", metavar="S", type=seconds,
                    help=_("how often the watchers look without a push (default: 30 live, "
                           "1 sandbox); IDLE announces new mail at once anyway"))
    sp.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                    help=_("where serve.sqlite3, history.jsonl and the run folders go "
                           "(default: reports/)"))
    sp.set_defaults(func=main)


def listen_address(config: Any, args: argparse.Namespace) -> tuple[str, int]:
    """Where to listen; refuses a non-loopback address without credentials."""
    from flowtest.config.serve import is_loopback, split_listen

    text = args.listen or config.serve.listen
    try:
        host, port = split_listen(text)
    except ValueError:
        raise ConfigError(_("must be IP:PORT like {example}, not {value}").format(
            example="127.0.0.1:9466", value=repr(text)), key="--listen") from None
    settings = config.serve
    if not is_loopback(host) and settings.bearer_token is None and settings.basic_user is None:
        raise ConfigError(_("{host} is not a loopback address: set serve.bearer_token or "
                            "serve.basic_user and serve.basic_password (secret references) "
                            "first, or listen on 127.0.0.1").format(host=host),
                          key="--listen", file=config.path)
    return host, port


def with_vantage(config: Any, vantage: str | None) -> Any:
    if vantage is None:
        return config
    from flowtest.config.serve import parse_serve

    def fail(key: str, reason: str) -> ConfigError:
        return ConfigError(reason, key="--vantage")

    parse_serve({"vantage": vantage}, fail, live=False)  # the same rule as the config's
    return dataclasses.replace(config, serve=dataclasses.replace(config.serve, vantage=vantage))


def notify_targets(config: Any, args: argparse.Namespace) -> list[str]:
    """serve.notify (secret references, revealed here) and --notify URLs."""
    return [s.reveal() for s in config.serve.notify] + list(args.notify)


def build_alerter(config: Any, targets: list[str], state: Any) -> Any:
    """The notifier the service calls on each run: state-change alerts after
    ``serve.notify_after`` failures and the dead-man's switch, remembered
    across restarts through ``state`` (the SQLite meta row the service keeps)."""
    if not targets and config.serve.ping_url is None:
        return None
    from flowtest.flows.alerting import Alerter

    return Alerter(targets, after=config.serve.notify_after,
                   ping_url=config.serve.ping_url.reveal() if config.serve.ping_url else None,
                   state=state if isinstance(state, dict) else None)


def main(args: argparse.Namespace) -> int:
    logging.getLogger("flowtest.serve").setLevel(logging.INFO)
    with opened(args, sandbox=args.sandbox, aliases=_sandbox_aliases(args),
                fault_hint=_("--fault needs --sandbox")) as target:
        config = target.config
        if target.world is not None:
            config = dataclasses.replace(config, serve=config.serve.scaled_for_sandbox())
        config = with_vantage(config, args.vantage)
        host, port = listen_address(config, args)
        live = config.target != "sandbox"
        poll_s = args.poll_s or (30.0 if live else 1.0)
        asyncio.run(_serve(config, args, host, port, poll_s=poll_s,
                           settle_s=3.0 if live else 0.3))
    return EXIT_OK


def _sandbox_aliases(args: argparse.Namespace) -> list[str] | None:
    if args.aliases is None:
        return None
    if not args.sandbox:
        raise ConfigError(_("--aliases needs --sandbox"), key="--aliases")
    if not 1 <= args.aliases <= 50:
        raise ConfigError(_("must be 1 to 50"), key="--aliases")
    names = ["hello", "shop", "billing"] + [f"alias{i:03d}" for i in range(3, args.aliases)]
    return names[:args.aliases]


async def _serve(config: Any, args: argparse.Namespace, host: str, port: int, *,
                 poll_s: float, settle_s: float) -> None:
    from aiohttp import web

    from flowtest.serve.app import make_app
    from flowtest.serve.service import Service

    service = Service(config, report_dir=args.report_dir, poll_s=poll_s, settle_s=settle_s)
    service.alerter = build_alerter(config, notify_targets(config, args),
                                    service.store.meta("alerter"))
    runner = web.AppRunner(make_app(service), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, shutdown_timeout=1.0)
    try:
        await site.start()
    except OSError as exc:
        service.store.close()
        await runner.cleanup()
        raise ConfigError(_("cannot listen on {host}:{port}: {reason}").format(
            host=host, port=port, reason=exc.strerror), key="--listen") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stopped_by: list[str] = []

    def on_stop(sig: signal.Signals) -> None:
        stopped_by.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop, sig)
    loop.add_signal_handler(signal.SIGHUP, _reload, service, args)
    try:
        for address in runner.addresses:
            log.info("listening on http://%s:%d/ (target %s, vantage %r)",
                     *address[:2], config.target, config.serve.vantage)
        await service.start()
        await stop.wait()
        log.info("stopping on %s: cleaning up the probes in flight", stopped_by[0])
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await service.stop(STOP_GRACE_S)
        await runner.cleanup()
    log.info("stopped")


def _reload(service: Any, args: argparse.Namespace) -> None:
    """SIGHUP: read the config file again; keep the old one if the new is bad."""
    from flowtest import config as cfg
    from flowtest.cli.target import overrides
    from flowtest.secrets import redact

    if args.sandbox:
        log.warning("config reload refused: --sandbox has no config file; keeping the old")
        return
    try:
        new = with_vantage(overrides(cfg.load(args.config), args), args.vantage)
        if new.target != service.config.target:
            raise ConfigError(_("target cannot change on reload; restart instead"),
                              key="target", file=args.config)
        service.reload(new)
        if not getattr(args, "lang", None):
            # The page speaks the config's language unless --lang chose one
            # (as cli.target applies it at start); without it, the locale's.
            i18n.activate(i18n.resolve(config=new.lang))
    except ConfigError as exc:
        log.error("config reload refused, keeping the old config: %s", redact(str(exc)))
        return
    log.info("config reloaded from %s", args.config)
