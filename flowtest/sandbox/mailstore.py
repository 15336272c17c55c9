"""An IMAP mail store: pymap's in-memory backend, embedded on a loopback port.

pymap is built by hand rather than through ``IMAPService`` (which binds a
fixed port and never says which). Gmail-like additions live here: SPECIAL-USE
attributes (RFC 6154, which pymap lacks), app passwords accepted with or
without spaces, refusing logins under a fault, and cutting connections.

``own_thread=True`` runs the server on an event loop in a thread of its own
(the standalone ``flowtest sandbox`` does, docs/sandbox.md): an IMAP look is
then answered as soon as the thread gets the interpreter, not after whatever
SMTP work is queued on the world's loop. pymap's state is still touched from
one thread only: every method hands its work to the store's loop.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from argparse import Namespace
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import Config as DictConfig
from pymap.backend.dict import Identity, Login, Session
from pymap.concurrent import Subsystem
from pymap.exceptions import InvalidAuth
from pymap.imap import IMAPServer
from pymap.parsing.message import AppendMessage
from pymap.parsing.specials.flag import Flag
from pymap.user import Passwords, UserMetadata
from pysasl.creds.plain import PlainCredentials
from pysasl.hashing import BuiltinHash

from flowtest.sandbox import loopthread

# pymap asks socket.getfqdn() for every greeting unless FQDN is set: a real
# DNS lookup per connection, which the network guard would refuse.
os.environ.setdefault("FQDN", "sandbox.invalid")

T = TypeVar("T")


class _Config(DictConfig):
    def __init__(self, *args: Any, special_use: dict[str, bytes],
                 on_listed: Callable[[bytes], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.special_use = special_use
        self.on_listed = on_listed

    @property
    def login_capability(self) -> Sequence[bytes]:
        return [*super().login_capability, b"SPECIAL-USE"]


class _Session(Session):
    async def check_mailbox(self, selected: Any, *, wait_on: Any = None,
                            housekeeping: bool = False) -> Any:
        # pymap's IDLE first waits for the *next* change, so a message stored
        # between the client's last command and IDLE is announced only when
        # another one arrives. Real servers report pending changes when IDLE
        # starts (RFC 2177); do that here.
        if wait_on is not None:
            mailbox = await self._get_selected(selected)
            told: set[int] = getattr(getattr(selected, "_prev", None), "uids", set())
            stored = set(getattr(mailbox, "_messages", {}))
            if stored - told:  # messages the client has not been told about yet
                wait_on = None
        return await super().check_mailbox(selected, wait_on=wait_on,
                                           housekeeping=housekeeping)

    async def search_mailbox(self, selected: Any, keys: Any) -> Any:
        found, updated = await super().search_mailbox(selected, keys)
        return self._listed(found), updated

    def _listed(self, found: Any) -> Any:
        on_listed = getattr(self.config, "on_listed", None)
        if on_listed is None:
            return found
        # Ground truth for benchmarks: the moment a client's SEARCH or FETCH
        # could first tell it about a message, whichever client it is.
        found = list(found)
        for _, message in found:
            on_listed(bytes(getattr(message, "_content", b"") or b""))
        return found

    async def fetch_messages(self, selected: Any, sequence_set: Any, set_seen: bool) -> Any:
        hook = getattr(self.config, "on_fetch", None)
        if hook is not None:
            hook()  # may cut every connection, this one included: a drop mid-FETCH
        found, updated = await super().fetch_messages(selected, sequence_set, set_seen)
        return self._listed(found), updated

    async def list_mailboxes(self, ref_name: str, filter_: str, subscribed: bool = False,
                             selected: Any = None) -> Any:
        entries, updates = await super().list_mailboxes(ref_name, filter_, subscribed, selected)
        special: dict[str, bytes] = getattr(self.config, "special_use", {})
        return [(name, delim, [*attrs, special[name]] if name in special else attrs)
                for name, delim, attrs in entries], updates


class _Identity(Identity):
    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[_Session]:
        async with super().new_session() as s:
            yield _Session(s.owner, s.config, s.mailbox_set, s.filter_set)


class _Login(Login):
    def __init__(self, config: _Config, refuse: Callable[[], bool], strip_spaces: bool) -> None:
        super().__init__(config)
        self._refuse = refuse
        self._strip_spaces = strip_spaces

    async def authenticate(self, credentials: Any) -> _Identity:
        if self._refuse():
            raise InvalidAuth("Invalid credentials (Failure)")  # pymap adds the code
        if self._strip_spaces and isinstance(credentials, PlainCredentials):
            # pysasl keeps the secret in a private slot, with no getter.
            secret = credentials._secret.replace(" ", "")
            credentials = PlainCredentials(credentials.authcid, secret, credentials.authzid)
        identity = await super().authenticate(credentials)
        return _Identity(identity.name, self, None, identity.roles)

    async def authorize(self, authenticated: Any, authzid: str) -> _Identity:
        identity = await super().authorize(authenticated, authzid)
        return _Identity(identity.name, self, None, identity.roles)


class _Coalescing:
    """pymap's writer, gathering what it writes in one turn of the loop.

    pymap writes every response, and parts of one, with a write() of its own
    and drains after each: over TLS each became a record and a send() (six
    for one IDLE push of a new message), and with the store on a thread of
    its own each send gives up the interpreter. The bytes on the wire are the
    same; they go out in one record when pymap next waits, or at once (and
    drained, so a large FETCH keeps the stream's back-pressure) when more than
    FLUSH_AT bytes are waiting."""

    FLUSH_AT = 64 * 1024

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(bytes(data))
        self._size += len(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            if not self._writer.transport.is_closing():
                self._writer.write(data)

    async def drain(self) -> None:
        if self._size > self.FLUSH_AT:
            self._flush()
        transport = self._writer.transport
        if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            await self._writer.drain()

    def close(self) -> None:
        self._flush()
        self._writer.close()

    async def start_tls(self, *args: Any, **kwargs: Any) -> None:
        self._flush()
        await self._writer.start_tls(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


class MailStore:
    """One provider's IMAP service, implicit TLS on :attr:`port` of ``host``."""

    def __init__(self, host: str, ssl_context: ssl.SSLContext, *,
                 special_use: dict[str, bytes] | None = None,
                 refuse_login: Callable[[], bool] = lambda: False,
                 strip_spaces: bool = False,
                 on_listed: Callable[[bytes], None] | None = None,
                 on_connection: Callable[[str, int], None] | None = None,
                 own_thread: bool = False) -> None:
        self.host = host
        self.own_thread = own_thread
        self._loop: asyncio.AbstractEventLoop | None = None  # its own, with own_thread
        self._thread: threading.Thread | None = None
        self._on_connection = on_connection
        self.port = 0
        self._ssl = ssl_context
        args = Namespace(passlib_cfg=None, proxy_protocol=None, debug=False)
        self.config = _Config(
            args, host=host, port=0, ssl_context=ssl_context, tls_enabled=False,
            reject_dnsbl=False, invalid_user_sleep=0.0, demo_data=False,
            demo_user="nobody", demo_password="nobody", hash_context=BuiltinHash(rounds=1000),
            cpu_subsystem=Subsystem.for_asyncio(), special_use=special_use or {},
            on_listed=on_listed)
        self.login = _Login(self.config, refuse_login, strip_spaces)
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._accepted: set[asyncio.StreamWriter] = set()  # from TLS up, before pymap
        self._down = False
        self.connections_total = 0
        self.connections_peak = 0  # most connections open at once (providers cap this)
        self.drop_on_fetch = 0     # cut all connections at each of the next N FETCHes
        self.fetch_drops = 0
        self.restarts = 0
        self._callback: Any = None
        self.config.on_fetch = self._on_fetch  # type: ignore[attr-defined]

    def _on_fetch(self) -> None:
        if self.drop_on_fetch > 0:
            self.drop_on_fetch -= 1
            self.fetch_drops += 1
            self.drop_connections()

    # -- its own loop ---------------------------------------------------------------

    def _elsewhere(self) -> asyncio.AbstractEventLoop | None:
        """The store's loop when the caller is not on it, else None."""
        loop = self._loop
        if loop is None:
            return None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        return None if running is loop else loop

    async def _here(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the store's own loop (cancelling this cancels it there)."""
        loop = self._elsewhere()
        if loop is None:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def _start_thread(self) -> None:
        self._loop, self._thread = loopthread.start(f"sandbox-imap-{self.host}")

    def _stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            loopthread.stop(self._loop, self._thread, timeout=10)
        self._loop = self._thread = None

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self.own_thread and self._loop is None:
            self._start_thread()
        await self._here(self._start())

    async def _start(self) -> None:
        self.config.apply_context()
        imap = IMAPServer(self.login, self.config)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        sock_info: Any) -> None:
            # The PROXY-protocol reader runs this as a task of its own: track it
            # here so connections can be cut and stop() can wait for them.
            task = asyncio.current_task()
            assert task is not None
            self._connections[task] = writer
            self.connections_total += 1
            self.connections_peak = max(self.connections_peak, len(self._connections))
            if self._on_connection is not None:
                self._on_connection("imap-open", len(self._connections))
            try:
                await imap(reader, _Coalescing(writer), sock_info)  # type: ignore[arg-type]
            finally:
                self._connections.pop(task, None)
                if self._on_connection is not None:
                    self._on_connection("imap-close", len(self._connections))

        inner = ProxyProtocolReader(self.config.proxy_protocol).get_callback(serve)

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Tracked from the moment TLS is up (the PROXY-header reader hands
            # the connection to pymap in a task of its own, so ``serve`` may not
            # have it yet): a restart or stop then cuts every connection and
            # none is left for the garbage collector (a ResourceWarning seen in
            # the soak under load).
            if self._down:  # accepted while going away: refuse it
                writer.transport.abort()
                return
            self._accepted = {w for w in self._accepted if not w.transport.is_closing()}
            self._accepted.add(writer)
            await inner(reader, writer)

        self._callback = accept
        self._down = False
        self._server = await asyncio.start_server(self._callback, self.host, self.port,
                                                  ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]

    async def restart(self, down_s: float) -> None:
        """Go away for ``down_s`` seconds (connections cut, new ones refused),
        then listen again on the same port with the same mailboxes: a
        provider's restart or failover as a client sees it."""
        await self._here(self._restart(down_s))

    async def _restart(self, down_s: float) -> None:
        if self._server is None:
            return
        self._down = True
        self._server.close()
        self.drop_connections()
        await self._server.wait_closed()
        self._server = None
        await asyncio.sleep(down_s)
        self._server = await asyncio.start_server(self._callback, self.host, self.port,
                                                  ssl=self._ssl)
        self._down = False
        self.restarts += 1

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def drop_connections(self) -> int:
        """Cut every open connection, as a provider's restart or a network blip does
        (from another thread: on the store's loop, next in its queue)."""
        writers = list(self._connections.values())
        loop = self._elsewhere()
        if loop is not None:
            loop.call_soon_threadsafe(self._drop)
            return len(writers)
        self._drop()
        return len(writers)

    def _drop(self) -> None:
        writers = list(self._connections.values())
        for writer in {*writers, *self._accepted}:
            writer.transport.abort()

    async def stop(self) -> None:
        try:
            await self._here(self._stop())
        finally:
            self._stop_thread()

    async def _stop(self) -> None:
        if self._server is not None:
            self._down = True
            self._server.close()
            self.drop_connections()
            tasks = list(self._connections)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def add_user(self, name: str, password: str, folders: Iterable[str] = ()) -> None:
        await self._here(self._add_user(name, password, list(folders)))

    async def _add_user(self, name: str, password: str, folders: list[str]) -> None:
        hashed = await Passwords(self.config).hash_password(password)
        await _Identity(name, self.login, None, frozenset()).set(
            UserMetadata(self.config, name, password=hashed))
        async with _Identity(name, self.login, None, frozenset()).new_session() as session:
            for folder in folders:
                await session.mailbox_set.add_mailbox(folder)

    async def append(self, user: str, folder: str, raw: bytes, *,
                     flags: Iterable[str] = (), when: datetime | None = None,
                     on_stored: Callable[[int], object] | None = None) -> int:
        """Store a message as the provider's delivery agent does; returns its UID.
        ``on_stored(uid)`` runs the moment it is in the mailbox, on the store's
        thread: before any IMAP client can hear of it (the truth's "stored")."""
        return await self._here(self._append(user, folder, raw, list(flags), when, on_stored))

    async def _append(self, user: str, folder: str, raw: bytes, flags: list[str],
                      when: datetime | None, on_stored: Callable[[int], object] | None) -> int:
        async with _Identity(user, self.login, None, frozenset()).new_session() as session:
            mailbox = await session.mailbox_set.get_mailbox(folder)
            message = await mailbox.append(
                AppendMessage(raw, when or datetime.now(UTC),
                              frozenset(Flag(f.encode()) for f in flags)),
                recent=True)
            if on_stored is not None:
                on_stored(int(message.uid))
            return int(message.uid)

    async def add_folder(self, user: str, folder: str) -> None:
        await self._here(self._add_folder(user, folder))

    async def _add_folder(self, user: str, folder: str) -> None:
        async with _Identity(user, self.login, None, frozenset()).new_session() as session:
            await session.mailbox_set.add_mailbox(folder)

    async def folder_contents(self, user: str, folder: str) -> list[tuple[int, bytes, set[str]]]:
        """(uid, raw message, flags) of every message: the sandbox's own view."""
        return await self._here(self._folder_contents(user, folder))

    async def _folder_contents(self, user: str, folder: str) -> list[tuple[int, bytes, set[str]]]:
        async with _Identity(user, self.login, None, frozenset()).new_session() as session:
            mailbox = await session.mailbox_set.get_mailbox(folder)
            out = []
            for uid in sorted(mailbox._messages):  # the dict backend keeps them here
                msg = mailbox._messages[uid]
                raw = bytes(msg._content or b"")
                out.append((uid, raw, {bytes(f).decode() for f in msg.permanent_flags}))
            return out

    async def folders(self, user: str) -> list[str]:
        return await self._here(self._folders(user))

    async def _folders(self, user: str) -> list[str]:
        async with _Identity(user, self.login, None, frozenset()).new_session() as session:
            tree = await session.mailbox_set.list_mailboxes()
            return [entry.name for entry in tree.list() if entry.exists]
