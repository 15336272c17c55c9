"""IMAP: one long-lived watcher per mailbox, shared by every waiting probe.

The watcher IDLEs on INBOX, wakes on each push (or on a slow poll, because
Gmail's IDLE occasionally misses one), and scans only the UIDs that are new
since its last look, in INBOX and in the \\Junk folder. It fetches with
BODY.PEEK and opens folders with EXAMINE, so it never sets \\Seen or any other
flag. Cleanup moves only this run's probes, by UID, to \\Trash.

Scanning new UIDs rather than searching per probe with X-GM-RAW keeps one
code path for Gmail and every other provider, costs one FETCH per new message,
and works on the sandbox too, so no part of it goes untested.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import aioimaplib
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from flowtest.config import Account, Timeouts, TlsSettings
from flowtest.errors import AuthError, ProbeTimeout, TLSError, TransportError, is_transient
from flowtest.net.tls import client_context, describe
from flowtest.secrets import normalize_app_password, redact

log = logging.getLogger("flowtest.imap")

TOKEN_HEADER = "X-Flowtest-Probe"
# Gmail's signs of overload (FACTS.md): back off on each of them.
THROTTLE_SIGNS = ("[THROTTLED]", "[OVERQUOTA]", "[UNAVAILABLE]", "Too many simultaneous")
# Gmail drops IDLE after about 10 minutes; renew before that (FACTS.md).
IDLE_RENEW_S = 540.0

_LIST_RE = re.compile(rb'^\((?P<attrs>[^)]*)\)\s+(?:"(?P<delim>[^"]*)"|NIL)\s+(?P<name>.+)$')
_UID_RE = re.compile(rb"UID (\d+)")
_FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """Notes every untagged EXISTS. aioimaplib drops those that arrive during
    SEARCH or FETCH, and they are the sign that a result may already be stale."""

    announced = False

    def _untagged_response(self, line: bytes) -> Any:
        if line.rstrip().endswith(b" EXISTS"):
            self.announced = True
        return super()._untagged_response(line)


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    """aioimaplib over implicit TLS to an address, verifying the certificate
    against the host *name* (aioimaplib itself only knows one host value)."""

    def __init__(self, address: str, port: int, server_hostname: str,
                 ssl_context: ssl.SSLContext | None, timeout: float,
                 conn_lost_cb: Callable[[Exception | None], None]) -> None:
        self._server_hostname = server_hostname
        self._tls = ssl_context
        super().__init__(address, port, None, timeout, conn_lost_cb, ssl_context)

    def create_client(self, host: str, port: int, loop: asyncio.AbstractEventLoop | None,
                      conn_lost_cb: Callable[[Exception | None], None] | None = None,
                      ssl_context: ssl.SSLContext | None = None) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop, conn_lost_cb)
        if self._tls is not None:
            connect = local_loop.create_connection(lambda: self.protocol, host, port,
                                                   ssl=self._tls,
                                                   server_hostname=self._server_hostname)
        else:
            connect = local_loop.create_connection(lambda: self.protocol, host, port)
        self._client_task = local_loop.create_task(connect)


@dataclass(frozen=True)
class Folders:
    """Folders found by SPECIAL-USE attribute, never by name (FACTS.md)."""

    inbox: str = "INBOX"
    junk: str | None = None
    trash: str | None = None
    sent: str | None = None
    all: list[str] = field(default_factory=list)

    def role(self, name: str) -> str:
        if name == self.inbox:
            return "inbox"
        if name == self.junk:
            return "spam"
        return "other"


def parse_list(lines: Iterable[bytes | bytearray]) -> Folders:
    found: dict[str, str] = {}
    names: list[str] = []
    for line in lines:
        m = _LIST_RE.match(bytes(line).strip())
        if not m:
            continue
        raw_name = m.group("name").strip()
        name = raw_name[1:-1].decode() if raw_name.startswith(b'"') else raw_name.decode()
        attrs = {a.lower() for a in m.group("attrs").decode().split()}
        if "\\noselect" in attrs:
            continue
        names.append(name)
        for attr in ("\\junk", "\\trash", "\\sent"):
            if attr in attrs and attr not in found:
                found[attr] = name
    if "\\junk" not in found:
        # Servers without SPECIAL-USE: fall back to the usual names.
        for name in names:
            if name.rsplit("/", 1)[-1].lower() in ("spam", "junk", "junk e-mail", "bulk mail"):
                found["\\junk"] = name
                break
    return Folders(junk=found.get("\\junk"), trash=found.get("\\trash"),
                   sent=found.get("\\sent"), all=names)


def _search_uids(response: aioimaplib.Response) -> list[int]:
    uids: list[int] = []
    for line in response.lines[:-1]:  # the last line is the tagged completion
        words = bytes(line).split()
        # aioimaplib strips the "SEARCH" keyword of the untagged reply; accept both.
        if words and words[0].upper() == b"SEARCH":
            words = words[1:]
        if words and all(w.isdigit() for w in words):
            uids.extend(int(w) for w in words)
    return uids


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fetch_items(lines: list[bytes | bytearray]) -> list[tuple[int, bytes, frozenset[str]]]:
    """(uid, literal, flags) from an aioimaplib FETCH response."""
    out: list[tuple[int, bytes, frozenset[str]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if isinstance(line, bytes) and b"FETCH" in line:
            m = _UID_RE.search(line)
            literal = b""
            meta = line
            if i + 1 < len(lines) and isinstance(lines[i + 1], bytearray):
                literal = bytes(lines[i + 1])
                if i + 2 < len(lines) and isinstance(lines[i + 2], bytes):
                    meta += lines[i + 2]
                i += 1
            fm = _FLAGS_RE.search(meta)
            flags = frozenset(fm.group(1).decode().split()) if fm else frozenset()
            if m:
                out.append((int(m.group(1)), literal, flags))
        i += 1
    return out


# limits.imap_connections: slots per mailbox shared by every flowtest process
# of this user on this machine (two cron runs that overlap count together).
# A slot is an exclusive flock on one of N files; the kernel frees it when a
# process dies, so a crash never leaks one. Gmail allows about 15 connections
# per account, shared with the user's phone and mail apps.
def _slot_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"flowtest-{os.getuid()}" / "imap-slots"


def _slot_files(account: Account, limit: int) -> list[Path]:
    key = f"{account.imap.host.lower()}:{account.imap.port}:{account.username.lower()}"
    folder = _slot_dir() / hashlib.sha256(key.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return [folder / f"{i}.lock" for i in range(limit)]


def _try_slot(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _free_slot(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _fail_pending(protocol: Any, client_tasks: Iterable[asyncio.Future[Any]] = ()) -> None:
    """aioimaplib does nothing for commands in flight when the connection goes:
    they wait for their timeout, or for ever (the CAPABILITY of its greeting
    handler has none). That handler holds the protocol's state lock, so a
    cancelled wait_hello_from_server() could never finish and a run hung
    (found by the soak test). End them all now."""
    lost = aioimaplib.AioImapException("connection lost")
    commands = [protocol.pending_sync_command, *protocol.pending_async_commands.values()]
    for command in commands:
        if command is not None and not command._event.is_set():
            command._exception = lost
            command._timer.cancel()
            command._event.set()
    for task in list(protocol.tasks):
        task.cancel()
    # The IDLE task aioimaplib keeps on the client ends with that exception and
    # nobody awaits it: retrieve it, or asyncio prints "Task exception was
    # never retrieved" with a traceback at exit.
    for task in list(client_tasks):
        task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class ImapSession:
    """One authenticated IMAP connection with the few commands flowtest uses.

    With ``limit``, at most that many sessions of this mailbox are open at once
    among all of this user's flowtest processes on this machine; opening one
    more waits for a slot."""

    def __init__(self, account: Account, *, tls: TlsSettings, timeouts: Timeouts,
                 app_password: bool = False, limit: int | None = None) -> None:
        self.account = account
        self.tls = tls
        self.timeouts = timeouts
        self.app_password = app_password
        self.limit = limit
        self._slot: int | None = None   # the locked slot file's descriptor
        self.waiting_for_slot = False
        self._protocol: Any = None
        self._aio_client: Any = None
        self.client: _Client | None = None
        self.lost = asyncio.Event()
        self.capabilities: set[str] = set()
        self.selected: str | None = None


    @property
    def name(self) -> str:
        return f"IMAP {self.account.imap}"

    @property
    def announced(self) -> bool:
        """The server announced new messages (untagged EXISTS) since the last
        SEARCH began: that SEARCH's result may predate them, so look again."""
        return self.client is not None and bool(self.client.protocol.announced)

    async def __aenter__(self) -> ImapSession:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _lost(self, exc: Exception | None) -> None:
        self.lost.set()
        if self._protocol is not None:
            _fail_pending(self._protocol, getattr(self._aio_client, "tasks", ()))

    async def open(self) -> None:
        ep = self.account.imap
        if ep.tls != "implicit" and not self.tls.insecure:
            raise TLSError(f"IMAP over {ep.tls} is not supported without --insecure; use port "
                           "993 with implicit TLS", endpoint=self.name)
        if self.limit is not None and self._slot is None:
            self._slot = await self._take_slot(self.limit)
        ctx = client_context(self.tls) if ep.tls == "implicit" else None
        client = _Client(ep.connect_host, ep.port, ep.host, ctx, self.timeouts.command_s,
                         self._lost)
        self.client = client
        self._protocol = client.protocol
        self._aio_client = client
        try:
            await asyncio.wait_for(client.wait_hello_from_server(), self.timeouts.connect_s)
        except ssl.SSLError as exc:
            await self.close()
            raise TLSError(describe(exc), endpoint=self.name) from None
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            await self.close()
            raise TransportError(f"cannot connect: {exc or 'timed out'}", endpoint=self.name,
                                 transient=True) from None
        password = self.account.password.reveal()
        if self.app_password:
            password = normalize_app_password(password)
        try:
            response = await client.login(self.account.username, password)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            await self.close()
            raise TransportError(f"login failed: {redact(str(exc))}", endpoint=self.name,
                                 transient=True) from None
        if response.result != "OK":
            text = redact(b" ".join(bytes(x) for x in response.lines).decode(errors="replace"))
            await self.close()
            if any(sign in text for sign in THROTTLE_SIGNS):
                raise TransportError(f"throttled: {text}", endpoint=self.name, transient=True)
            raise AuthError(text, endpoint=self.name, account=self.account.username)
        response = await client.protocol.capability()
        self.capabilities = {c.upper() for c in client.protocol.capabilities}

    async def _take_slot(self, limit: int) -> int:
        files = _slot_files(self.account, limit)
        delay = 0.02
        self.waiting_for_slot = True
        try:
            while True:
                for path in files:
                    fd = _try_slot(path)
                    if fd is not None:
                        return fd
                if delay == 0.02:
                    log.info("%s: all %d connection slots in use (limits.imap_connections); "
                             "waiting", self.name, limit)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)
        finally:
            self.waiting_for_slot = False

    async def close(self) -> None:
        client, self.client = self.client, None
        slot, self._slot = self._slot, None
        try:
            if client is not None:
                await self._logout(client)
        finally:
            if slot is not None:
                _free_slot(slot)

    async def _logout(self, client: _Client) -> None:
        try:
            if client.has_pending_idle():
                client.idle_done()  # LOGOUT is not allowed while IDLE is running
            if client.protocol.state in ("AUTH", "SELECTED") and not self.lost.is_set():
                await asyncio.wait_for(client.logout(), 1)
                # The server closes the connection after LOGOUT; wait for that,
                # so a slot is given back only when the server too counts the
                # connection as gone (no overlap at a hand-over).
                await asyncio.wait_for(self.lost.wait(), 0.5)
        except (OSError, TimeoutError, aioimaplib.AioImapException, asyncio.CancelledError):
            pass
        finally:
            transport = getattr(client.protocol, "transport", None)
            if transport is not None:
                transport.abort()  # release the socket now (see net/smtp.py close())

    def _client(self) -> _Client:
        if self.client is None or self.lost.is_set():
            raise TransportError("connection lost", endpoint=self.name, transient=True)
        return self.client

    def _check(self, response: aioimaplib.Response, what: str) -> aioimaplib.Response:
        if response.result != "OK":
            text = redact(b" ".join(bytes(x) for x in response.lines[-1:]).decode(
                errors="replace"))
            transient = any(sign in text for sign in THROTTLE_SIGNS) or response.result == "BYE"
            raise TransportError(f"{what} failed: {response.result} {text}", endpoint=self.name,
                                 transient=transient)
        tail = bytes(response.lines[-1]) if response.lines else b""
        if b"[THROTTLED]" in tail:
            log.info("%s: server says THROTTLED after %s", self.name, what)
        return response

    async def folders(self) -> Folders:
        response = self._check(await self._client().list('""', '"*"'), "LIST")
        return parse_list(response.lines)

    async def examine(self, folder: str) -> int:
        """Open read-only; returns UIDNEXT (or 0 if the server did not say)."""
        client = self._client()
        response = self._check(await client.examine(_quote(folder)), f"EXAMINE {folder}")
        # aioimaplib leaves its state at AUTH after EXAMINE and would then refuse
        # SEARCH and FETCH on its own side; the server has selected the folder.
        client.protocol.state = "SELECTED"
        self.selected = folder
        for line in response.lines:
            m = re.search(rb"UIDNEXT (\d+)", bytes(line))
            if m:
                return int(m.group(1))
        return 0

    async def select(self, folder: str) -> None:
        self._check(await self._client().select(_quote(folder)), f"SELECT {folder}")
        self.selected = folder

    async def noop(self) -> None:
        self._check(await self._client().noop(), "NOOP")

    async def uids_after(self, last: int) -> list[int]:
        # Gmail and pymap give stale SEARCH results until NOOP (FACTS.md, LIBRARY-NOTES.md).
        await self.noop()
        self._client().protocol.announced = False
        response = self._check(
            await self._client().uid_search(f"UID {last + 1}:*", charset=None), "UID SEARCH")
        # "n:*" always matches the last message, even below n.
        return sorted(u for u in _search_uids(response) if u > last)

    async def fetch_headers(self, uids: list[int], fields: tuple[str, ...]
                            ) -> list[tuple[int, bytes, frozenset[str]]]:
        if not uids:
            return []
        items = " ".join(f.upper() for f in fields)
        response = self._check(
            await self._client().uid("fetch", ",".join(map(str, uids)),
                                     f"(UID FLAGS BODY.PEEK[HEADER.FIELDS ({items})])"),
            "UID FETCH")
        return _fetch_items(response.lines)

    async def fetch_raw(self, uids: list[int]) -> dict[int, tuple[bytes, frozenset[str]]]:
        """Whole messages (BODY.PEEK: no \\Seen), in one round trip."""
        if not uids:
            return {}
        response = self._check(
            await self._client().uid("fetch", ",".join(map(str, uids)),
                                     "(UID FLAGS BODY.PEEK[])"), "UID FETCH")
        return {uid: (literal, flags) for uid, literal, flags in _fetch_items(response.lines)
                if uid in uids}

    async def probes_in_folder(self, prefix: str) -> list[int]:
        """UIDs in the selected folder whose probe token starts with ``prefix``."""
        return sorted(await self.tokens_in_folder(prefix))

    async def tokens_in_folder(self, prefix: str) -> dict[int, str]:
        """UID -> probe token in the selected folder, for tokens starting with ``prefix``.

        HEADER search is a substring match (LIBRARY-NOTES.md), so each hit is
        confirmed by reading the header itself.
        """
        response = self._check(await self._client().uid_search(
            "HEADER", TOKEN_HEADER, f'"{prefix}"', charset=None), "UID SEARCH")
        confirmed: dict[int, str] = {}
        for uid, header, _ in await self.fetch_headers(_search_uids(response), (TOKEN_HEADER,)):
            token = str(BytesHeaderParser().parsebytes(header).get(TOKEN_HEADER, "")).strip()
            if token.startswith(prefix):
                confirmed[uid] = token
        return confirmed

    async def report_uids(self) -> list[int]:
        """UIDs of delivery reports (multipart/report) in the selected folder."""
        response = self._check(await self._client().uid_search(
            "HEADER", "Content-Type", '"multipart/report"', charset=None), "UID SEARCH")
        return _search_uids(response)

    async def move(self, uids: list[int], destination: str) -> None:
        """Move by UID only (never a blanket EXPUNGE)."""
        if not uids:
            return
        uid_set = ",".join(map(str, uids))
        client = self._client()
        if "MOVE" in self.capabilities:
            self._check(await client.uid("move", uid_set, _quote(destination)), "UID MOVE")
            return
        if "UIDPLUS" not in self.capabilities:
            raise TransportError("server has neither MOVE nor UIDPLUS: cannot remove only the "
                                 "probes, so cleanup is skipped", endpoint=self.name)
        self._check(await client.uid("copy", uid_set, _quote(destination)), "UID COPY")
        self._check(await client.uid("store", uid_set, "+FLAGS.SILENT (\\Deleted)"),
                    "UID STORE")
        self._check(await client.uid("expunge", uid_set), "UID EXPUNGE")

    async def idle(self, wake: asyncio.Event, timeout: float) -> bool:
        """IDLE until a push, ``wake`` or ``timeout``; True if the server pushed."""
        client = self._client()
        if "IDLE" not in self.capabilities:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
            return False
        idle_task = await client.idle_start(timeout=IDLE_RENEW_S)
        push = asyncio.ensure_future(client.wait_server_push(timeout=timeout + 1))
        woken = asyncio.ensure_future(wake.wait())
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            done, _ = await asyncio.wait({push, woken, lost}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (push, woken, lost):
                task.cancel()
            await asyncio.gather(push, woken, lost, return_exceptions=True)
        if lost in done or self.lost.is_set():
            idle_task.cancel()
            await asyncio.gather(idle_task, return_exceptions=True)
            raise TransportError("connection lost during IDLE", endpoint=self.name,
                                 transient=True)
        pushed = push in done and not push.cancelled() and push.exception() is None
        client.idle_done()
        try:
            await asyncio.wait_for(idle_task, self.timeouts.command_s)
        except (TimeoutError, aioimaplib.AioImapException) as exc:
            raise TransportError(f"IDLE did not end: {exc}", endpoint=self.name,
                                 transient=True) from None
        return pushed


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
        self._arrivals: dict[str, list[Arrival]] = {}
        # token -> (arrivals needed, future); resolved with the arrival that makes the count
        self._waiters: dict[str, list[tuple[int, asyncio.Future[Arrival]]]] = {}
        self._last_uid: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fatal: BaseException | None = None
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
                done, _ = await asyncio.wait({ready, self._task},
                                             timeout=max(0.0, deadline - loop.time()),
                                             return_when=asyncio.FIRST_COMPLETED)
                connecting = self._connecting
                if done or connecting is None or not connecting.waiting_for_slot:
                    break
                deadline = loop.time() + self.timeouts.connect_s * 2
        finally:
            ready.cancel()
        if self._fatal is not None:
            await self.stop()
            raise self._fatal
        if not self._ready.is_set():
            await self.stop()
            raise TransportError("could not start watching in time", endpoint=self.name,
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
        return list(self._arrivals.get(token, []))

    def arrived_tokens(self) -> list[str]:
        return list(self._arrivals)

    async def wait(self, token: str, timeout: float, *, nth: int = 1) -> Arrival:
        """The ``nth`` arrival of ``token``; raises :class:`ProbeTimeout`."""
        if self._fatal is not None:
            raise self._fatal
        found = self._arrivals.get(token, [])
        if len(found) >= nth:
            return found[nth - 1]
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
                pushed = False
                while not self._stopping:
                    self._wake.clear()
                    wanted = self._full_scan_wanted
                    # A push concerns INBOX; other folders (Spam) get no push and
                    # are looked at on the poll, so a push costs few round trips.
                    await self._scan_all(session, inbox_only=pushed and not wanted)
                    if wanted is not None and not wanted.done():
                        wanted.set_result(None)
                    pushed = await session.idle(self._wake, self.poll_s)
            except asyncio.CancelledError:
                raise
            except (AuthError, TLSError) as exc:
                self._fail_all(exc)
                return
            except (TransportError, OSError, TimeoutError, aioimaplib.AioImapException) as exc:
                if self._stopping:
                    return
                self.reconnects += 1
                log.info("%s: %s; reconnecting in %.1f s", self.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.reconnect_max_s)
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

    async def _scan_all(self, session: ImapSession, *, inbox_only: bool = False) -> None:
        inbox = self.folders.inbox
        # INBOX is still selected after IDLE: look there first, it matters most.
        if session.selected == inbox:
            await self._scan(session, inbox)
            if inbox_only:
                return
        for folder in self._watched():
            if folder != inbox:
                await session.examine(folder)
                await self._scan(session, folder)
        # Last, INBOX again right before IDLE: whatever lands after this scan
        # is announced by the server when IDLE starts, so nothing waits for a poll.
        if session.selected != inbox:
            await session.examine(inbox)
        await self._scan(session, inbox)

    async def _scan(self, session: ImapSession, folder: str) -> None:
        # A message stored while SEARCH runs is announced in its reply but may
        # be missing from its result (pymap does this; Gmail's view can be
        # stale too): look again until a reply announces nothing new.
        for _ in range(5):
            await self._scan_once(session, folder)
            if not session.announced:
                return

    async def _scan_once(self, session: ImapSession, folder: str) -> None:
        last = self._last_uid.get(folder, 0)
        uids = await session.uids_after(last)
        if not uids:
            return
        # The moment the server first listed it: the arrival time on our clock.
        seen_at = time.time()
        fields = (TOKEN_HEADER, "Content-Type") if self.bounces else (TOKEN_HEADER,)
        probes: dict[int, str] = {}
        reports: list[int] = []
        for uid, header, _flags in await session.fetch_headers(uids, fields):
            parsed = BytesHeaderParser().parsebytes(header)
            token = str(parsed.get(TOKEN_HEADER, "")).strip()
            # Compare the whole token: other runs' probes (and other mail) stay untouched.
            if token.startswith(self.prefix):
                probes[uid] = token
            elif self.bounces and "multipart/report" in str(parsed.get("Content-Type", "")):
                reports.append(uid)
        role = self.folders.role(folder)
        fetched = await session.fetch_raw(sorted([*probes, *reports]))
        for uid, (raw, flags) in sorted(fetched.items()):
            if uid in probes:
                self._arrived(Arrival(probes[uid], folder, role, uid, raw, flags, seen_at))
                continue
            pattern = rb"X-Flowtest-Probe:\s*(" + re.escape(self.prefix.encode()) + rb"\S+)"
            for token in sorted(set(re.findall(pattern, raw, re.IGNORECASE))):
                self._arrived(Arrival(token.decode(), folder, role, uid, raw, flags, seen_at,
                                      bounce=True))
        self._last_uid[folder] = max(uids)

    def _arrived(self, arrival: Arrival) -> None:
        got = self._arrivals.setdefault(arrival.token, [])
        got.append(arrival)
        for nth, future in self._waiters.get(arrival.token, []):
            if nth == len(got) and not future.done():
                future.set_result(arrival)

    def _fail_all(self, exc: BaseException) -> None:
        self._fatal = exc
        self._ready.set()
        for waiters in self._waiters.values():
            for _, future in waiters:
                if not future.done():
                    future.set_exception(exc)
        self._waiters.clear()


async def trash(account: Account, arrivals: Iterable[Arrival], *, tls: TlsSettings,
                timeouts: Timeouts, app_password: bool = False,
                sent_prefix: str | None = None, limit: int | None = None,
                attempts: int = 8) -> int:
    """Move exactly these messages to the \\Trash folder; returns how many.

    With ``sent_prefix``, the account's own copies of this run's probes in its
    \\Sent folder go too (matched by the whole token prefix of the run).
    On Gmail, moving to Trash removes every label; deleting from INBOX would
    only remove the Inbox label (FACTS.md).

    A dropped connection or a throttle sign is retried on a new connection:
    moving by UID again is harmless (UIDs already moved are gone from the
    folder), and a probe left behind is what the user would notice.
    """
    by_folder: dict[str, list[int]] = {}
    for arrival in arrivals:
        by_folder.setdefault(arrival.folder, []).append(arrival.uid)
    if not by_folder and sent_prefix is None:
        return 0
    retrying = AsyncRetrying(retry=retry_if_exception(is_transient),
                             stop=stop_after_attempt(attempts),
                             wait=wait_exponential(multiplier=0.2, max=5), reraise=True)
    async for attempt in retrying:
        with attempt:
            return await _trash_once(account, by_folder, tls=tls, timeouts=timeouts,
                                     app_password=app_password, sent_prefix=sent_prefix,
                                     limit=limit)
    raise AssertionError("unreachable")  # pragma: no cover


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
        raise TransportError(f"connection lost: {exc or 'timed out'}", endpoint=session.name,
                             transient=True) from None
    finally:
        await session.close()


async def _trash_once(account: Account, by_folder: dict[str, list[int]], *,
                      tls: TlsSettings, timeouts: Timeouts, app_password: bool,
                      sent_prefix: str | None, limit: int | None) -> int:
    moved = 0
    by_folder = {f: list(u) for f, u in by_folder.items()}
    async with open_session(account, tls=tls, timeouts=timeouts, app_password=app_password,
                            limit=limit) as session:
        folders = await session.folders()
        if folders.trash is None:
            raise TransportError("no \\Trash folder found; probes were left in place",
                                 endpoint=session.name)
        if sent_prefix is not None and folders.sent is not None:
            await session.examine(folders.sent)
            sent = await session.probes_in_folder(sent_prefix)
            if sent:
                by_folder.setdefault(folders.sent, []).extend(sent)
        for folder, uids in by_folder.items():
            if folder == folders.trash:
                continue
            await session.select(folder)
            await session.move(sorted(set(uids)), folders.trash)
            moved += len(set(uids))
    return moved
