"""Ground truth: what the world did with each message, and when.

Times are ``time.time()`` of the sandbox process, the same clock flowtest's
own measurements use when both run in one process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    at: float
    # submitted, accepted, rejected, relayed, deferred, stored, dropped, bounced;
    # listed (a client's SEARCH first returned it); imap-open, imap-close
    kind: str
    party: str       # external, cloudflare, gmail
    message_id: str
    rcpt: str = ""
    detail: str = ""


class Truth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._changed = threading.Condition(self._lock)
        self._sinks: list[Callable[[Event], None]] = []

    def subscribe(self, sink: Callable[[Event], None]) -> None:
        """Call ``sink`` with every event from now on, in order (under the lock,
        so keep it short): how `flowtest sandbox --truth` streams them out."""
        with self._lock:
            self._sinks.append(sink)

    def record(self, kind: str, party: str, message_id: str, rcpt: str = "",
               detail: str = "") -> Event:
        event = Event(time.time(), kind, party, message_id, rcpt, detail)
        with self._changed:
            self._events.append(event)
            for sink in self._sinks:
                sink(event)
            self._changed.notify_all()
        return event

    def events(self, message_id: str | None = None, kind: str | None = None) -> list[Event]:
        with self._lock:
            return [e for e in self._events
                    if (message_id is None or e.message_id == message_id)
                    and (kind is None or e.kind == kind)]

    def wait_for(self, message_id: str, kind: str, timeout: float,
                 party: str | None = None, count: int = 1) -> Event | None:
        """Block until ``count`` events of this kind for this message are
        recorded; the last of them, or None at the timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [e for e in self._events
                         if e.message_id == message_id and e.kind == kind and (
                             party is None or e.party == party)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
