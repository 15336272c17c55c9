"""Ctrl-C and SIGTERM while a run is sending or waiting.

The first signal cancels the run: its legs move the probes they sent to Trash
(bounded by flows.common.INTERRUPTED_CLEANUP_S), the command says so and exits
128 + the signal's number (130 for SIGINT, 143 for SIGTERM). A second signal
exits at once: the user asked twice, and a probe left behind is what
`flowtest cleanup` is for. Outside a run (starting the sandbox, writing the
reports) SIGTERM raises ``Interrupted`` like Ctrl-C raises KeyboardInterrupt,
so that the process still exits 143 and not by the default action.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from flowtest.cli.console import ERROR, console, say
from flowtest.i18n import gettext as _

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The user (or the service manager) stopped the command with a signal. A
    BaseException, like KeyboardInterrupt: no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """For the length of a command: SIGTERM raises Interrupted."""
    def stop(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    if not _in_main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(main: Coroutine[Any, Any, T], *, cleanup_s: float | None,
        on_signal: Callable[[], None] = lambda: None) -> T:
    """``asyncio.run(main)``, with the first SIGINT or SIGTERM cancelling it
    (its cleanup runs, then Interrupted is raised) and a second exiting at once.
    ``cleanup_s`` is how long the cleanup may take, None when there is none
    (--keep)."""
    got: list[int] = []
    err = console(stderr=True)

    async def supervised() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(signum: int) -> None:
            name = signal.Signals(signum).name
            if got:
                say(err, (_("{signal} again: exiting now.").format(signal=name), ERROR),
                    " " + _("Probes of this run may be left in the mailboxes; `flowtest "
                            "cleanup` moves them later."))
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(128 + signum)
            got.append(signum)
            then = (_("keeping this run's probes (--keep)") if cleanup_s is None else
                    _("moving this run's probes to Trash (at most {seconds} s)").format(
                        seconds=f"{cleanup_s:g}"))
            say(err, (_("{signal}: stopping the run").format(signal=name), ERROR),
                _("; {then}. A second signal exits at once.").format(then=then))
            on_signal()
            task.cancel()

        if not _in_main_thread():
            return await main
        for s in SIGNALS:
            loop.add_signal_handler(s, stop, s)
        try:
            return await main
        finally:
            for s in SIGNALS:
                loop.remove_signal_handler(s)

    # remove_signal_handler leaves SIGTERM at its default action: put back ours.
    previous = {s: signal.getsignal(s) for s in SIGNALS} if _in_main_thread() else {}
    try:
        result = asyncio.run(supervised())
    except asyncio.CancelledError:
        if got:
            raise Interrupted(got[0]) from None
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if got:  # the run ended by itself just as the signal came: still the user's word
        raise Interrupted(got[0])
    return result


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
