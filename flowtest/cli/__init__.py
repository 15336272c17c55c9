"""flowtest's command line: one module per command, each adding its own
sub-parser; ``main`` and the one mapping of errors to exit codes are here.

Exit codes: 0 every check passed (warnings included), 1 a check failed or could
not be made, 2 usage or configuration error, 130 / 143 stopped by SIGINT /
SIGTERM; with --nagios, 3 when it could not test.

The command modules import the engine inside their command, not at the top:
`flowtest --help` then starts in well under 100 ms instead of importing the
mail servers of the sandbox (docs/performance.md measures it).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from flowtest import __version__, i18n
from flowtest.cli import (
    cleanup,
    demo,
    doctor,
    explain,
    init,
    inspect,
    latency,
    login_check,
    report,
    run,
    sandbox,
    serve,
)
from flowtest.cli.console import inert
from flowtest.cli.interrupt import Interrupted, sigterm_interrupts
from flowtest.errors import ConfigError, FlowtestError, UnknownFault
from flowtest.i18n import gettext as _

__all__ = ["EXIT_FAIL", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3

# In the order `flowtest --help` lists them.
COMMANDS = (demo, run, serve, sandbox, doctor, cleanup, login_check, inspect, latency, report,
            init, explain)


class Parser(argparse.ArgumentParser):
    """argparse in the reader's language: its own few words (usage, the
    section titles, -h) come from flowtest's catalog, as every sub-parser's
    do (argparse makes sub-parsers of the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._positionals.title = _("positional arguments")
        self._optionals.title = _("options")
        for action in self._actions:
            if isinstance(action, argparse._HelpAction):
                action.help = _("show this help message and exit")

    def format_usage(self) -> str:
        formatter = self._get_formatter()
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups,
                            prefix=_("usage: "))
        return formatter.format_help()

    def format_help(self) -> str:
        return super().format_help().replace("usage: ", _("usage: "), 1)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, _("{prog}: error: {message}\n").format(prog=self.prog,
                                                                      message=message))


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="flowtest",
        description=_("Prove a personal domain's mail works end to end: Cloudflare Email "
                      "Routing in, Gmail send-as out. With no live config, everything runs "
                      "against the embedded sandbox."),
        epilog=_("Exit codes: 0 all checks passed (warnings allowed), 1 a check failed or "
                 "could not be made, 2 usage or configuration error, 130/143 stopped by "
                 "Ctrl-C/SIGTERM (after moving the run's probes to Trash)."))
    p.add_argument("--version", action="version", version=f"flowtest {__version__}",
                   help=_("show the version and exit"))
    p.add_argument("--debug", action="store_true",
                   help=_("show tracebacks and protocol logs (secrets stay redacted)"))
    p.add_argument("--lang", choices=tuple(i18n.LANGUAGES), metavar="{en,zh}",
                   help=_("the language of what flowtest prints (default: the config's "
                          "'lang', else the locale: LANGUAGE, LC_ALL, LC_MESSAGES, LANG; "
                          "else English). Codes, JSON and metrics never change with it."))
    sub = p.add_subparsers(dest="command", metavar=_("COMMAND"))
    for command in COMMANDS:
        command.add(sub)
    return p


def language(argv: Sequence[str] | None) -> str:
    """The language chosen before the parser is built (its help is translated):
    --lang wins, then the locale. The config's ``lang`` applies once the
    config is read (cli.target), as nothing is read before that."""
    early = _Early(add_help=False)
    early.add_argument("--lang", default=None)
    try:
        known, _rest = early.parse_known_args(list(sys.argv[1:] if argv is None else argv))
        return i18n.resolve(known.lang)
    except ValueError:
        return i18n.resolve()  # the real parser says what is wrong with it


class _Early(argparse.ArgumentParser):
    """Finds --lang only; a mistake is left for the real parser to report."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def main(argv: Sequence[str] | None = None) -> int:
    with i18n.use(language(argv)):
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return EXIT_USAGE
    _logging(debug=args.debug)
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        with sigterm_interrupts():
            return command(args)
    except (FlowtestError, Interrupted, KeyboardInterrupt) as exc:
        return _exit_code(exc, args)


def _exit_code(exc: FlowtestError | Interrupted | KeyboardInterrupt,
               args: argparse.Namespace) -> int:
    """The one place an error becomes a message and an exit code. Messages
    quote files and servers: redacted, and their control characters shown."""
    from flowtest.secrets import redact

    def shown(exc: BaseException) -> str:
        return inert(redact(str(exc)))

    nagios = getattr(args, "nagios", False)
    if isinstance(exc, ConfigError):
        print(_("flowtest: config error: {error}").format(error=shown(exc)), file=sys.stderr)
        if nagios:  # a monitoring system reads 2 as CRITICAL; this is "could not test"
            # The status word is machine-read (never translated); the words after it are not.
            print("FLOWTEST UNKNOWN - "
                  + _("config error: {error}").format(error=shown(exc)))
            return EXIT_UNKNOWN
        return EXIT_USAGE
    if isinstance(exc, UnknownFault):
        print(f"flowtest: {shown(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, FlowtestError):
        if args.debug:
            import traceback
            print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
        print(_("flowtest: error: {error}").format(error=shown(exc)), file=sys.stderr)
        if nagios:
            print(f"FLOWTEST UNKNOWN - {shown(exc)}")
            return EXIT_UNKNOWN
        return EXIT_FAIL
    stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
    print(_("flowtest: interrupted by {signal}; exit {code}").format(
        signal=stopped, code=stopped.exit_code), file=sys.stderr)
    if nagios:
        print("FLOWTEST UNKNOWN - " + _("interrupted by {signal}").format(signal=stopped))
    return stopped.exit_code


def _logging(*, debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        return
    from flowtest.secrets import redact

    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg = redact(record.getMessage())
            record.args = ()
            return True

    for handler in logging.getLogger().handlers:
        handler.addFilter(Redact())
