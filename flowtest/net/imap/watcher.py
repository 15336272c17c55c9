"""One long-lived watcher per mailbox, shared by every waiting probe.

The watcher IDLEs on INBOX, wakes on each push (or on a slow poll, because
Gmail's IDLE occasionally misses one), and scans only the UIDs that are new
since its last look, in INBOX and in the \\Junk folder.

Scanning new UIDs rather than searching per probe with X-GM-RAW keeps one
code path for Gmail and every other provider, and works on the sandbox too, so
no part of it goes untested. A look costs two round trips: NOOP pipelined with
one ranged ``UID FETCH last+1:*`` of the token header, then one FETCH of the
probes found.

A watcher that stops for any reason other than being told to fails every
waiter at once with the cause: a probe must never be judged lost, blaming the
mail path, because flowtest itself stopped looking (issue 14, item 5).
"""

from __future__ import annotations

import asyncio
import logging
import time

import aioimaplib

from flowtest.config import Account, Timeouts, TlsSettings
from flowtest.errors import AuthError, ConfigError, TLSError, TransportError
from flowtest.i18n import gettext as _
from flowtest.mail import bounce, probe
from flowtest.net.imap import slots
from flowtest.net.imap.arrivals import Arrival, Arrivals
from flowtest.net.imap.session import ImapSession
from flowtest.net.imap.wire import Folders
from flowtest.secrets import redact

log = logging.getLogger("flowtest.imap")

# Errors that a new connection would only repeat: the watcher stops on them.
_FATAL = (AuthError, TLSError, ConfigError, slots.SlotsBusy, slots.UnsafeSlotDir)


class WatcherDied(TransportError):
    """The watcher stopped on an error it did not expect (a reply it cannot
    read, a bug): ``cause`` is that exception."""

    def __init__(self, cause: BaseException, *, endpoint: str) -> None:
        self.cause = cause
        super().__init__(_("watching stopped on {error_type}: {detail}").format(
            error_type=type(cause).__name__, detail=redact(str(cause)) or _("no detail")),
            endpoint=endpoint)


class Watcher:
    """Watches one mailbox for probes whose token starts with ``prefix``."""

    def __init__(self, account: Account, *, tls: TlsSettings, timeouts: Timeouts,
                 prefix: str, poll_s: float = 5.0, app_password: bool = False,
                 bounces: bool = False, reconnect_max_s: float = 30.0,
                 limit: int | None = None) -> None:
        self.account = account
        self.limit = limit
        self.tls = tls
        self.timeouts = timeouts
        self.prefix = prefix
        self.poll_s = poll_s
        self.app_password = app_password
        self.bounces = bounces
        self.reconnect_max_s = reconnect_max_s
        self.folders = Folders()
        self.connections = 0          # how many times it connected (for tests and benches)
        self.reconnects = 0
        self._book = Arrivals()
        self._last_uid: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: ImapSession | None = None
        self._connecting: ImapSession | None = None
        self._full_scan_wanted: asyncio.Future[None] | None = None
        self._stopping = False

    @property
    def name(self) -> str:
        return f"IMAP {self.account.imap}"

    async def __aenter__(self) -> Watcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def slot_key(self) -> tuple[str, int, str]:
        """Watchers start in this order, so two runs sharing the connection cap
        never each hold one mailbox while waiting for the other's."""
        imap = self.account.imap
        return (imap.host.lower(), imap.port, self.account.username.lower())

    async def start(self) -> None:
        """Connect, note where each folder ends now, and start watching.

        Time spent waiting for a connection slot (limits.imap_connections,
        another run in this process holding it) does not count against the
        connect timeout."""
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run())
        ready = asyncio.ensure_future(self._ready.wait())
        try:
            deadline = loop.time() + self.timeouts.connect_s * 2
            while True:
                done, _pending = await asyncio.wait({ready, self._task},
                                                    timeout=max(0.0, deadline - loop.time()),
                                                    return_when=asyncio.FIRST_COMPLETED)
                connecting = self._connecting
                if done or connecting is None or not connecting.waiting_for_slot:
                    break
                deadline = loop.time() + self.timeouts.connect_s * 2
        finally:
            ready.cancel()
        if self._book.closed_by is not None:
            await self.stop()
            raise self._book.closed_by
        if not self._ready.is_set():
            await self.stop()
            raise TransportError(_("could not start watching in time"), endpoint=self.name,
                                 transient=True)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def arrivals(self, token: str) -> list[Arrival]:
        return self._book.of(token)

    def arrived_tokens(self) -> list[str]:
        return self._book.tokens()

    def forget(self, tokens: list[str]) -> None:
        self._book.forget(tokens)

    async def wait(self, token: str, timeout: float, *, nth: int = 1) -> Arrival:
        """The ``nth`` arrival of ``token``; raises :class:`ProbeTimeout`, or
        why the watcher stopped (:class:`WatcherDied`, an AuthError…)."""
        return await self._book.wait(token, timeout, nth=nth)

    @property
    def died(self) -> BaseException | None:
        """Why the watcher stopped on its own (None if it runs or was stopped):
        then it may have missed this run's probes, and cleanup must look for
        them by token instead of trusting :meth:`arrivals`."""
        return self._book.closed_by

    def poke(self) -> None:
        """Look now rather than at the next push or poll."""
        self._wake.set()

    async def catch_up(self, timeout: float) -> bool:
        """Look at every watched folder once more, now, and wait until that
        look is done (False if it could not finish in ``timeout``, e.g. while
        reconnecting). Cleanup calls it first, so that a delivery report that
        landed while the watcher was busy or reconnecting is not left behind."""
        if self._task is None or self._task.done():
            return False
        wanted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._full_scan_wanted = wanted
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(wanted), timeout)
        except TimeoutError:
            return False
        finally:
            if self._full_scan_wanted is wanted:
                self._full_scan_wanted = None
        return True

    # -- the loop ----------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            session = ImapSession(self.account, tls=self.tls, timeouts=self.timeouts,
                                  app_password=self.app_password, limit=self.limit)
            self._connecting = session
            try:
                await session.open()
                self._session = session
                self.connections += 1
                self.folders = await session.folders()
                await self._baseline(session)
                self._ready.set()
                backoff = 0.2
                pushed = again = False
                clock = asyncio.get_running_loop().time
                last_full = clock()
                while not self._stopping:
                    self._wake.clear()
                    wanted = self._full_scan_wanted
                    # A push concerns INBOX; other folders (Spam) get no push and
                    # are looked at on the poll, so a push costs few round trips.
                    inbox_only = ((pushed or again) and not wanted
                                  and clock() - last_full < self.poll_s)
                    found = await self._scan_all(session, inbox_only=inbox_only, pushed=pushed)
                    if not inbox_only:
                        last_full = clock()
                    if wanted is not None and not wanted.done():
                        wanted.set_result(None)
                    # A look that found mail is likely in a burst: look again at
                    # once, not through IDLE (IDLE, its push and DONE are two more
                    # round trips on a server busy delivering), until one finds nothing.
                    pushed, again = False, found
                    if not found:
                        pushed = await session.idle(self._wake, self.poll_s)
            except asyncio.CancelledError:
                raise
            except _FATAL as exc:
                self._fail_all(exc)
                return
            except (TransportError, OSError, TimeoutError, aioimaplib.AioImapException) as exc:
                if self._stopping:
                    return
                self.reconnects += 1
                log.info("%s: %s; reconnecting in %.1f s", self.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.reconnect_max_s)
            except Exception as exc:  # anything else: say so now, never end silently
                if not self._stopping:
                    died = WatcherDied(exc, endpoint=self.name)
                    log.warning("%s", died)  # redacted; no traceback, which would not be
                    self._fail_all(died)
                return
            finally:
                self._session = None
                await session.close()

    def _watched(self) -> list[str]:
        junk = [self.folders.junk] if self.folders.junk else []
        return [self.folders.inbox, *junk]

    async def _baseline(self, session: ImapSession) -> None:
        for folder in self._watched():
            if folder in self._last_uid:
                continue  # a reconnect: keep scanning from where we were
            uidnext = await session.examine(folder)
            if uidnext:
                self._last_uid[folder] = uidnext - 1
            else:
                uids = await session.uids_after(0)
                self._last_uid[folder] = max(uids, default=0)

    async def _scan_all(self, session: ImapSession, *, inbox_only: bool = False,
                        pushed: bool = False) -> bool:
        """Look at the watched folders; True if any new message was found."""
        inbox = self.folders.inbox
        found = False
        # INBOX is still selected after IDLE: look there first, it matters most.
        if session.selected == inbox:
            found = await self._scan(session, inbox, pushed=pushed)
            if inbox_only:
                return found
        for folder in self._watched():
            if folder != inbox:
                await session.examine(folder)
                found = await self._scan(session, folder) or found
        # Last, INBOX again right before IDLE: whatever lands after this scan
        # is announced by the server when IDLE starts, so nothing waits for a poll.
        if session.selected != inbox:
            await session.examine(inbox)
        return await self._scan(session, inbox) or found

    async def _scan(self, session: ImapSession, folder: str, *, pushed: bool = False) -> bool:
        # A message stored while FETCH runs is announced in its reply but may
        # be missing from its result (pymap does this; Gmail's view can be
        # stale too): look again until a reply announces nothing new.
        # Right after a push, the server has just told this session of the new
        # messages (EXISTS), so they are in its view: no NOOP is needed first.
        found = False
        for i in range(5):
            found = await self._scan_once(session, folder, refresh=not (pushed and i == 0)) \
                or found
            if not session.announced:
                break
        return found

    async def _scan_once(self, session: ImapSession, folder: str, *,
                         refresh: bool = True) -> bool:
        last = self._last_uid.get(folder, 0)
        fields = (probe.TOKEN_HEADER, "Content-Type") if self.bounces else (probe.TOKEN_HEADER,)
        found = await session.headers_after(last, fields, refresh=refresh)
        if not found:
            return False
        # The moment the server first listed it: the arrival time on our clock.
        seen_at = time.time()
        uids = [uid for uid, _, _ in found]
        probes: dict[int, str] = {}
        reports: list[int] = []
        for uid, header, _flags in found:
            token = probe.token_in_header(header)
            # Compare the whole token: other runs' probes (and other mail) stay untouched.
            if token is not None and token.startswith(self.prefix):
                probes[uid] = token
            elif self.bounces and bounce.is_report(header):
                reports.append(uid)
        role = self.folders.role(folder)
        fetched = await session.fetch_raw(sorted([*probes, *reports]))
        for uid, (raw, flags) in sorted(fetched.items()):
            if uid in probes:
                self._book.add(Arrival(probes[uid], folder, role, uid, raw, flags, seen_at))
                continue
            # A report quotes the probe's headers, so it names the probes it is about.
            for about in sorted(t for t in bounce.probe_tokens(raw) if t.startswith(self.prefix)):
                self._book.add(Arrival(about, folder, role, uid, raw, flags, seen_at, bounce=True))
        self._last_uid[folder] = max(uids)
        return True

    def _fail_all(self, exc: BaseException) -> None:
        self._book.close(exc)
        self._ready.set()
