"""The stale sweep: probes that no run will clean up any more.

A run moves its own probes to Trash when it ends. A probe that arrived after
its run gave up on it (slower than timeouts.delivery_s), or whose run was
killed, stays in the mailbox, and so does a delivery report about it that
came later. `flowtest cleanup` moves those: messages whose X-Flowtest-Probe
header is exactly a token of flowtest's making, from a run that started
longer ago than any run can last, and reports about such probes only.
Nothing else is touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flowtest.config import Account, Config
from flowtest.errors import FlowtestError, TransportError
from flowtest.i18n import gettext as _
from flowtest.mail import bounce, probe
from flowtest.net.imap import ImapSession, move, open_session
from flowtest.secrets import redact


@dataclass(frozen=True)
class Swept:
    """What the sweep found (and moved, unless it was a dry run) in one folder."""

    folder: str
    probes: tuple[str, ...]                 # their tokens
    reports: tuple[tuple[str, ...], ...]    # per report, the tokens it is about


@dataclass(frozen=True)
class SweepReport:
    account: str
    swept: list[Swept] = field(default_factory=list)
    error: str | None = None

    @property
    def probes(self) -> int:
        return sum(len(s.probes) for s in self.swept)

    @property
    def reports(self) -> int:
        return sum(len(s.reports) for s in self.swept)


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
            async with open_session(account, tls=config.tls, timeouts=config.timeouts,
                                    app_password=app_password,
                                    limit=config.limits.imap_connections) as session:
                swept = await _sweep(session, is_stale, dry_run=dry_run)
        except FlowtestError as exc:
            return SweepReport(account.address, error=redact(str(exc)))
        return SweepReport(account.address, swept)

    return list(await asyncio.gather(one(config.gmail, True), one(config.probe, False)))


async def _sweep(session: ImapSession, is_stale: Callable[[str], bool], *,
                 dry_run: bool) -> list[Swept]:
    """INBOX, \\Junk and \\Sent: stale probes, and (not in Sent) reports about
    stale probes only, moved to \\Trash by UID."""
    folders = await session.folders()
    if folders.trash is None and not dry_run:
        raise TransportError(_("no \\Trash folder found; nothing was moved"),
                             endpoint=session.name)
    out: list[Swept] = []
    for folder in (folders.inbox, folders.junk, folders.sent):
        if folder is None:
            continue
        await (session.examine(folder) if dry_run else session.select(folder))
        probes = {uid: token for uid, token in
                  (await session.tokens_in_folder(probe.TOKEN_PREFIX)).items() if is_stale(token)}
        reports: dict[int, tuple[str, ...]] = {}
        if folder != folders.sent:
            fetched = await session.fetch_raw(await session.report_uids())
            for uid, (raw, _flags) in fetched.items():
                tokens = bounce.probe_tokens(raw)
                if tokens and all(is_stale(t) for t in tokens):
                    reports[uid] = tuple(sorted(tokens))
        if (probes or reports) and not dry_run:
            assert folders.trash is not None
            await move(session, sorted({*probes, *reports}), folders.trash)
        out.append(Swept(folder, tuple(sorted(probes.values())),
                         tuple(sorted(reports.values()))))
    return out
