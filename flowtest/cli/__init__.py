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

from flowtest import __version__
from flowtest.cli import (
    cleanup,
    demo,
    doctor,
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

__all__ = ["EXIT_FAIL", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3

# In the order `flowtest --help` lists them.
COMMANDS = (demo, run, serve, sandbox, doctor, cleanup, login_check, inspect, latency, report,
            init)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flowtest",
        description="Prove a personal domain's mail works end to end: Cloudflare Email "
                    "Routing in, Gmail send-as out. With no live config, everything runs "
                    "against the embedded sandbox.",
        epilog="Exit codes: 0 all checks passed (warnings allowed), 1 a check failed or "
               "could not be made, 2 usage or configuration error, 130/143 stopped by "
               "Ctrl-C/SIGTERM (after moving the run's probes to Trash).")
    p.add_argument("--version", action="version", version=f"flowtest {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show tracebacks and protocol logs (secrets stay redacted)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
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
        print(f"flowtest: config error: {shown(exc)}", file=sys.stderr)
        if nagios:  # a monitoring system reads 2 as CRITICAL; this is "could not test"
            print(f"FLOWTEST UNKNOWN - config error: {shown(exc)}")
            return EXIT_UNKNOWN
        return EXIT_USAGE
    if isinstance(exc, UnknownFault):
        print(f"flowtest: {shown(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, FlowtestError):
        if args.debug:
            import traceback
            print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
        print(f"flowtest: error: {shown(exc)}", file=sys.stderr)
        if nagios:
            print(f"FLOWTEST UNKNOWN - {shown(exc)}")
            return EXIT_UNKNOWN
        return EXIT_FAIL
    stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
    print(f"flowtest: interrupted by {stopped}; exit {stopped.exit_code}", file=sys.stderr)
    if nagios:
        print(f"FLOWTEST UNKNOWN - interrupted by {stopped}")
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
