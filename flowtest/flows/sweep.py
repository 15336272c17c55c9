"""The stale sweep: probes that no run will clean up any more.

A run moves its own probes to Trash when it ends. A probe that arrived after
its run gave up on it (slower than timeouts.delivery_s), or whose run was
killed, stays in the mailbox. `flowtest cleanup` moves those: messages whose
X-Flowtest-Probe header is exactly a token of flowtest's making, from a run
that started longer ago than any run can last. Nothing else is touched.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from flowtest.config import Account, Config
from flowtest.errors import FlowtestError
from flowtest.mail import probe
from flowtest.net.imap import Swept, sweep
from flowtest.secrets import redact


@dataclass(frozen=True)
class SweepReport:
    account: str
    swept: list[Swept] = field(default_factory=list)
    error: str | None = None

    @property
    def count(self) -> int:
        return sum(len(s.tokens) for s in self.swept)


def shortest_safe_age(config: Config) -> float:
    """Younger probes may belong to a run that is still waiting for them."""
    return config.timeouts.delivery_s + 600.0


async def stale(config: Config, older_than_s: float, *, dry_run: bool = False,
                now: float | None = None) -> list[SweepReport]:
    at = time.time() if now is None else now

    def is_stale(token: str) -> bool:
        return probe.is_stale(token, at, older_than_s)

    async def one(account: Account, app_password: bool) -> SweepReport:
        try:
            swept = await sweep(account, is_stale, tls=config.tls, timeouts=config.timeouts,
                                app_password=app_password,
                                limit=config.limits.imap_connections, dry_run=dry_run)
        except FlowtestError as exc:
            return SweepReport(account.address, error=redact(str(exc)))
        return SweepReport(account.address, swept)

    return list(await asyncio.gather(one(config.gmail, True), one(config.probe, False)))
