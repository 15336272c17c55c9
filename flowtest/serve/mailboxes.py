"""The service's warm watchers: one per mailbox, logged in and IDLE between
probes, so that a scheduled probe costs a submission and a wait, not a login.

A watcher that stopped on its own (a refused login, a TLS error) is replaced
at the next run, so a password fixed in the keyring heals without a restart.
A dropped connection is the watcher's own business: it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from flowtest.config import Account, Config
from flowtest.flows.common import WarmWatchers
from flowtest.mail import probe
from flowtest.net.imap import Watcher

log = logging.getLogger("flowtest.serve")


def _same_mailbox(a: Account, b: Account) -> bool:
    return (a.address, a.username, a.password.ref, a.imap) == \
        (b.address, b.username, b.password.ref, b.imap)


class Mailboxes:
    def __init__(self, *, poll_s: float) -> None:
        self.poll_s = poll_s
        self._watchers: dict[str, Watcher] = {}
        self._lock = asyncio.Lock()

    async def ensure(self, config: Config) -> WarmWatchers:
        """Both watchers, running; raises the FlowtestError that kept one from
        starting (the run then reports it for every alias)."""
        async with self._lock:
            for name, account in (("gmail", config.gmail), ("probe", config.probe)):
                current = self._watchers.get(name)
                if current is not None and (current.died is not None or not _same_mailbox(
                        current.account, account) or current.tls != config.tls):
                    await current.stop()
                    current = None
                    del self._watchers[name]
                if current is None:
                    # The bare prefix: one watcher serves every run of both legs;
                    # each run takes only its own tokens (flows.common.cleanup).
                    watcher = Watcher(account, tls=config.tls, timeouts=config.timeouts,
                                      prefix=probe.TOKEN_PREFIX, poll_s=self.poll_s,
                                      app_password=name == "gmail", bounces=True,
                                      limit=config.limits.imap_connections)
                    await watcher.start()
                    self._watchers[name] = watcher
            return WarmWatchers(gmail=self._watchers["gmail"], probe=self._watchers["probe"])

    def forget(self, keep_prefixes: Iterable[str]) -> None:
        """Forget every arrival but those of the runs still in flight: months
        of probes (and other processes' probes) must not pile up in memory."""
        keep = tuple(keep_prefixes)
        for watcher in self._watchers.values():
            watcher.forget([t for t in watcher.arrived_tokens() if not t.startswith(keep)])

    @property
    def watchers(self) -> list[Watcher]:
        return list(self._watchers.values())

    async def close(self) -> None:
        async with self._lock:
            await asyncio.gather(*(w.stop() for w in self._watchers.values()))
            self._watchers.clear()
