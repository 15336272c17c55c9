"""What a watcher found, and who waits for what: the book both sides share.

The watcher writes each arrival in; probes wait for the nth arrival of their
token. When the watcher dies the book is closed with the cause, and every
waiter, present or future, gets that cause instead of a timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from flowtest.errors import ProbeTimeout


@dataclass(frozen=True)
class Arrival:
    """A probe as found in a mailbox."""

    token: str
    folder: str
    role: str               # inbox, spam, other
    uid: int
    raw: bytes
    flags: frozenset[str]
    seen_at: float          # time.time() when the watcher saw it
    bounce: bool = False    # a delivery status notification about the probe


class Arrivals:
    def __init__(self) -> None:
        self._found: dict[str, list[Arrival]] = {}
        # token -> (arrivals needed, future); resolved with the arrival that makes the count
        self._waiters: dict[str, list[tuple[int, asyncio.Future[Arrival]]]] = {}
        self.closed_by: BaseException | None = None

    def of(self, token: str) -> list[Arrival]:
        return list(self._found.get(token, []))

    def tokens(self) -> list[str]:
        return list(self._found)

    def forget(self, tokens: list[str]) -> None:
        """Drop what was found for these tokens: a watcher that stays up for
        months (flowtest serve) forgets each run once it is over."""
        for token in tokens:
            self._found.pop(token, None)

    def add(self, arrival: Arrival) -> None:
        got = self._found.setdefault(arrival.token, [])
        got.append(arrival)
        for nth, future in self._waiters.get(arrival.token, []):
            if nth == len(got) and not future.done():
                future.set_result(arrival)

    def close(self, cause: BaseException) -> None:
        """No more arrivals: every waiter gets ``cause`` now."""
        self.closed_by = cause
        for waiters in self._waiters.values():
            for _, future in waiters:
                if not future.done():
                    future.set_exception(cause)
        self._waiters.clear()

    async def wait(self, token: str, timeout: float, *, nth: int = 1) -> Arrival:
        """The ``nth`` arrival of ``token``; raises :class:`ProbeTimeout`, or
        the cause the book was closed with."""
        found = self._found.get(token, [])
        if len(found) >= nth:
            return found[nth - 1]
        if self.closed_by is not None:
            raise self.closed_by
        future: asyncio.Future[Arrival] = asyncio.get_running_loop().create_future()
        entry = (nth, future)
        self._waiters.setdefault(token, []).append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise ProbeTimeout(token, timeout) from None
        finally:
            waiters = self._waiters.get(token, [])
            if entry in waiters:
                waiters.remove(entry)
