"""Moving messages to \\Trash, by UID only: never a blanket EXPUNGE of
messages flowtest did not mark. Which messages to move is the callers'
policy (flows/common.py for a run's own probes, flows/sweep.py for stale ones).

On Gmail, moving to Trash removes every label; deleting from INBOX would only
remove the Inbox label (FACTS.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import aioimaplib
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from flowtest.config import Account, Timeouts, TlsSettings
from flowtest.errors import TransportError, is_transient
from flowtest.i18n import gettext as _
from flowtest.net.imap import wire
from flowtest.net.imap.session import ImapSession
from flowtest.secrets import redact


class Located(Protocol):
    """Where a message is: what moving it needs (an Arrival is one)."""

    @property
    def folder(self) -> str: ...
    @property
    def uid(self) -> int: ...


@contextlib.asynccontextmanager
async def open_session(account: Account, *, tls: TlsSettings, timeouts: Timeouts,
                       app_password: bool = False, limit: int | None = None
                       ) -> AsyncIterator[ImapSession]:
    """A session for a short job (cleanup, the stale sweep), always closed. A
    connection cut mid-command, which aioimaplib surfaces as OSError, a timeout
    or its own exception, becomes a transient TransportError to retry on."""
    session = ImapSession(account, tls=tls, timeouts=timeouts, app_password=app_password,
                          limit=limit)
    try:
        await session.open()
        yield session
    except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
        raise TransportError(_("connection lost: {error}").format(
            error=redact(str(exc)) or _("timed out")), endpoint=session.name,
            transient=True) from None
    finally:
        await session.close()


async def move(session: ImapSession, uids: list[int], destination: str) -> None:
    """Move these UIDs of the selected folder: UID MOVE (RFC 6851), or else
    UID COPY, then \\Deleted and UID EXPUNGE (RFC 4315) of exactly those UIDs."""
    if not uids:
        return
    uid_set = ",".join(map(str, uids))
    if "MOVE" in session.capabilities:
        await session.uid("move", uid_set, wire.quote(destination))
        return
    if "UIDPLUS" not in session.capabilities:
        raise TransportError(_("server has neither MOVE nor UIDPLUS: cannot remove only the "
                               "probes, so cleanup is skipped"), endpoint=session.name)
    await session.uid("copy", uid_set, wire.quote(destination))
    await session.uid("store", uid_set, "+FLAGS.SILENT (\\Deleted)")
    await session.uid("expunge", uid_set)


async def trash(account: Account, found: Iterable[Located], *, tls: TlsSettings,
                timeouts: Timeouts, app_password: bool = False,
                sent_prefix: str | None = None, search_watched: bool = False,
                limit: int | None = None, attempts: int = 8) -> int:
    """Move exactly these messages to the \\Trash folder; returns how many.

    With ``sent_prefix``, the account's own copies of this run's probes in its
    \\Sent folder go too (matched by the whole token prefix of the run), and
    with ``search_watched`` also those in INBOX and \\Junk: for a mailbox
    whose watcher died and so did not see every probe (costs a SEARCH and a
    FETCH per folder, so only then).

    A dropped connection or a throttle sign is retried on a new connection:
    moving by UID again is harmless (UIDs already moved are gone from the
    folder), and a probe left behind is what the user would notice.
    """
    by_folder: dict[str, list[int]] = {}
    for message in found:
        by_folder.setdefault(message.folder, []).append(message.uid)
    if not by_folder and sent_prefix is None:
        return 0
    retrying = AsyncRetrying(retry=retry_if_exception(is_transient),
                             stop=stop_after_attempt(attempts),
                             wait=wait_exponential(multiplier=0.2, max=5), reraise=True)
    async for attempt in retrying:
        with attempt:
            return await _trash_once(account, by_folder, tls=tls, timeouts=timeouts,
                                     app_password=app_password, sent_prefix=sent_prefix,
                                     search_watched=search_watched, limit=limit)
    raise AssertionError("unreachable")  # pragma: no cover


async def _trash_once(account: Account, by_folder: dict[str, list[int]], *,
                      tls: TlsSettings, timeouts: Timeouts, app_password: bool,
                      sent_prefix: str | None, search_watched: bool,
                      limit: int | None) -> int:
    moved = 0
    by_folder = {f: list(u) for f, u in by_folder.items()}
    async with open_session(account, tls=tls, timeouts=timeouts, app_password=app_password,
                            limit=limit) as session:
        folders = await session.folders()
        if folders.trash is None:
            raise TransportError(_("no \\Trash folder found; probes were left in place"),
                                 endpoint=session.name)
        searched = [folders.sent, *((folders.inbox, folders.junk) if search_watched else ())]
        for where in searched:
            if where is None or sent_prefix is None:
                continue
            await session.examine(where)
            found_there = await session.tokens_in_folder(sent_prefix)
            if found_there:
                by_folder.setdefault(where, []).extend(found_there)
        for folder, uids in by_folder.items():
            if folder == folders.trash:
                continue
            await session.select(folder)
            await move(session, sorted(set(uids)), folders.trash)
            moved += len(set(uids))
    return moved
