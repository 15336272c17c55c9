"""One authenticated IMAP connection with the few commands flowtest uses.

It opens folders with EXAMINE and fetches with BODY.PEEK, so it never sets
\\Seen or any other flag; moving lives in :mod:`.trash`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

import aioimaplib

from flowtest.config import Account, Endpoint, Timeouts, TlsSettings
from flowtest.errors import AuthError, ConfigError, TLSError, TransportError, Unreachable
from flowtest.i18n import gettext as _
from flowtest.mail import probe
from flowtest.net.imap import slots, wire
from flowtest.net.imap.protocol import Client, fail_pending, retrieve
from flowtest.net.tls import client_context, describe
from flowtest.secrets import normalize_app_password, redact

log = logging.getLogger("flowtest.imap")

# Gmail's signs of overload (FACTS.md): back off on each of them.
THROTTLE_SIGNS = ("[THROTTLED]", "[OVERQUOTA]", "[UNAVAILABLE]", "Too many simultaneous")
# Gmail drops IDLE after about 10 minutes; renew before that (FACTS.md).
IDLE_RENEW_S = 540.0


def refuse_starttls(endpoint: Endpoint, *, key: str = "imap.tls") -> None:
    """aioimaplib has no STARTTLS. Connecting without it would send the
    password in plaintext while the config says TLS, so such an endpoint is
    refused, --insecure or not (issue 14, item 7); 993 with implicit TLS is
    what every provider flowtest knows offers."""
    if endpoint.tls == "starttls":
        raise ConfigError(_('IMAP with STARTTLS ({endpoint}) is not supported; use port 993 '
                            'with tls = "implicit"').format(endpoint=endpoint), key=key)


class ImapSession:
    """One authenticated IMAP connection with the few commands flowtest uses.

    With ``limit``, at most that many sessions of this mailbox are open at once
    among all of this user's flowtest processes on this machine; opening one
    more waits for a slot."""

    def __init__(self, account: Account, *, tls: TlsSettings, timeouts: Timeouts,
                 app_password: bool = False, limit: int | None = None,
                 slot_wait_s: float | None = None) -> None:
        self.account = account
        self.tls = tls
        self.timeouts = timeouts
        self.app_password = app_password
        self.limit = limit
        # Another run holds a slot for about as long as a run lasts.
        self.slot_wait_s = (slot_wait_s if slot_wait_s is not None
                            else timeouts.delivery_s + 4 * timeouts.connect_s)
        self._slot: slots.Slot | None = None
        self.waiting_for_slot = False
        self._protocol: Any = None
        self._aio_client: Any = None
        self.client: Client | None = None
        self.lost = asyncio.Event()
        self.capabilities: set[str] = set()
        self.selected: str | None = None
        # An IDLE whose end was decided but whose DONE is not sent yet: the next
        # command sends it (``_ready``), or a look sends it with itself.
        self._idle_open: asyncio.Future[Any] | None = None

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
            fail_pending(self._protocol, getattr(self._aio_client, "tasks", ()))

    async def open(self) -> None:
        ep = self.account.imap
        refuse_starttls(ep)
        if ep.tls != "implicit" and not self.tls.insecure:
            raise TLSError(_("IMAP over {tls} is not supported without --insecure; use port "
                             "993 with implicit TLS").format(tls=ep.tls), endpoint=self.name)
        if self.limit is not None and self._slot is None:
            self.waiting_for_slot = True
            try:
                self._slot = await slots.take(
                    slots.mailbox_key(ep.host, ep.port, self.account.username), self.limit,
                    deadline_s=self.slot_wait_s, endpoint=self.name)
            finally:
                self.waiting_for_slot = False
        ctx = client_context(self.tls) if ep.tls == "implicit" else None
        client = Client(ep.connect_host, ep.port, ep.host, ctx, self.timeouts.command_s,
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
            # Refused, timed out, or dropped before the greeting: nothing usable
            # answered (callers tell it by the type, not the translated text).
            raise Unreachable(_("cannot connect: {error}").format(
                error=redact(str(exc)) or _("timed out")), endpoint=self.name) from None
        password = self.account.password.reveal()
        if self.app_password:
            password = normalize_app_password(password)
        try:
            response = await client.login(self.account.username, password)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            await self.close()
            raise TransportError(_("login failed: {error}").format(
                error=redact(str(exc)) or _("timed out")), endpoint=self.name,
                transient=True) from None
        if response.result != "OK":
            text = redact(b" ".join(bytes(x) for x in response.lines).decode(errors="replace"))
            await self.close()
            if any(sign in text for sign in THROTTLE_SIGNS):
                raise TransportError(_("the server is throttling this account: {reply}").format(
                    reply=text), endpoint=self.name, transient=True)
            raise AuthError(text, endpoint=self.name, account=self.account.username)
        try:
            # Bounded: a server that takes LOGIN and then says nothing must not
            # hold a watcher's reconnect for ever.
            await asyncio.wait_for(client.protocol.capability(), self.timeouts.command_s)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            await self.close()
            raise TransportError(_("CAPABILITY failed: {error}").format(
                error=redact(str(exc)) or _("timed out")), endpoint=self.name,
                transient=True) from None
        self.capabilities = {c.upper() for c in client.protocol.capabilities}

    async def close(self) -> None:
        client, self.client = self.client, None
        slot, self._slot = self._slot, None
        try:
            if client is not None:
                await self._logout(client)
        finally:
            if slot is not None:
                slot.free()

    async def _logout(self, client: Client) -> None:
        try:
            idle, self._idle_open = self._idle_open, None
            if idle is not None:
                idle.add_done_callback(retrieve)
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
            # aioimaplib's own tasks of this connection (IDLE, waiting for its
            # "+", stopping it) that are still waiting now never get a reply:
            # end them, or they wait until the garbage collector finds them
            # ("Task was destroyed but it is pending").
            for task in list(client.tasks):
                task.add_done_callback(retrieve)
                task.cancel()

    def _client(self) -> Client:
        if self.client is None or self.lost.is_set():
            raise TransportError(_("connection lost"), endpoint=self.name, transient=True)
        return self.client

    def _check(self, response: aioimaplib.Response, what: str) -> aioimaplib.Response:
        if response.result != "OK":
            text = redact(b" ".join(bytes(x) for x in response.lines[-1:]).decode(
                errors="replace"))
            transient = any(sign in text for sign in THROTTLE_SIGNS) or response.result == "BYE"
            raise TransportError(_("{command} failed: {result} {reply}").format(
                command=what, result=response.result, reply=text), endpoint=self.name,
                transient=transient)
        tail = bytes(response.lines[-1]) if response.lines else b""
        if b"[THROTTLED]" in tail:
            log.info("%s: server says THROTTLED after %s", self.name, what)
        return response

    async def _ready(self) -> Client:
        """The client, with a pending IDLE ended (DONE sent, completion read)."""
        client = self._client()
        idle, self._idle_open = self._idle_open, None
        if idle is not None:
            if not idle.done():
                client.idle_done()
            await self._idle_ended(idle)
        return client

    async def _idle_ended(self, idle: asyncio.Future[Any]) -> None:
        try:
            await asyncio.wait_for(idle, self.timeouts.command_s)
        except (TimeoutError, aioimaplib.AioImapException) as exc:
            raise TransportError(_("IDLE did not end: {error}").format(
                error=redact(str(exc)) or _("timed out")), endpoint=self.name,
                transient=True) from None

    async def _response(self, command: Any) -> aioimaplib.Response:
        """The reply to a command sent with ``send_pipelined``."""
        try:
            await command.wait()
        except aioimaplib.CommandTimeout:
            self._client().protocol.pending_async_commands.pop(command.untagged_resp_name, None)
            raise
        return command.response

    async def uid(self, command: str, *args: str) -> aioimaplib.Response:
        """A UID command (FETCH, MOVE, COPY, STORE, EXPUNGE) whose refusal raises."""
        client = await self._ready()
        return self._check(await client.uid(command, *args), f"UID {command.upper()}")

    async def folders(self) -> wire.Folders:
        response = self._check(await (await self._ready()).list('""', '"*"'), "LIST")
        return wire.parse_list(response.lines)

    async def examine(self, folder: str) -> int:
        """Open read-only; returns UIDNEXT (or 0 if the server did not say)."""
        client = await self._ready()
        response = self._check(await client.examine(wire.quote(folder)), f"EXAMINE {folder}")
        # aioimaplib leaves its state at AUTH after EXAMINE and would then refuse
        # SEARCH and FETCH on its own side; the server has selected the folder.
        client.protocol.state = "SELECTED"
        self.selected = folder
        return wire.uidnext(response.lines)

    async def select(self, folder: str) -> None:
        self._check(await (await self._ready()).select(wire.quote(folder)), f"SELECT {folder}")
        self.selected = folder

    async def noop(self) -> None:
        self._check(await (await self._ready()).noop(), "NOOP")

    async def uids_after(self, last: int) -> list[int]:
        # Gmail and pymap give stale SEARCH results until NOOP (FACTS.md, LIBRARY-NOTES.md).
        await self.noop()
        self._client().protocol.announced = False
        response = self._check(
            await self._client().uid_search(f"UID {last + 1}:*", charset=None), "UID SEARCH")
        # "n:*" always matches the last message, even below n.
        return sorted(u for u in wire.search_uids(response.lines) if u > last)

    async def headers_after(self, last: int, fields: tuple[str, ...], *, refresh: bool = True
                            ) -> list[tuple[int, bytes, frozenset[str]]]:
        """(uid, header fields, flags) of every message with a UID above ``last``,
        in one round trip: NOOP and a ranged ``UID FETCH last+1:*`` are sent
        together (pipelined, RFC 3501 5.5), instead of NOOP, then SEARCH, then
        FETCH. The NOOP goes first because Gmail and pymap resolve ``*`` against
        a view that only a command other than FETCH refreshes (FACTS.md,
        LIBRARY-NOTES.md); the server answers them in order. Without ``refresh``
        (right after the server pushed EXISTS, which already brought the
        session's view up to date) the FETCH goes alone."""
        client = self._client()
        proto = client.protocol
        wanted = " ".join(f.upper() for f in fields)
        # EXISTS in the NOOP's reply is covered by the FETCH that follows it;
        # only one after the NOOP completed can be missing from the FETCH.
        proto.announced = False
        proto.announce_after_noop = True
        timeout = self.timeouts.command_s
        noop = (aioimaplib.Command("NOOP", proto.new_tag(), loop=proto.loop, timeout=timeout)
                if refresh else None)
        fetch = aioimaplib.FetchCommand(
            proto.new_tag(), f"{last + 1}:*", f"(UID FLAGS BODY.PEEK[HEADER.FIELDS ({wanted})])",
            prefix="UID", loop=proto.loop, timeout=timeout)
        commands = [fetch] if noop is None else [noop, fetch]
        try:
            idle, self._idle_open = self._idle_open, None
            if idle is not None and not idle.done():
                # DONE, NOOP and FETCH in one write, not each after the other's
                # completion: a push costs one round trip, not three.
                proto.send_pipelined(*commands, done=True)
                await self._idle_ended(idle)
            else:
                if idle is not None:
                    await self._idle_ended(idle)
                proto.send_pipelined(*commands)
            replies = await asyncio.gather(*map(self._response, commands))
        finally:
            proto.announce_after_noop = False
        if noop is not None:
            self._check(replies[0], "NOOP")
        response = replies[-1]
        if response.result in ("NO", "BAD"):
            # Some servers refuse "n:*" in an empty folder (there is no "*"):
            # ask the slow way, which says what is wrong if something is.
            return await self.fetch_headers(await self.uids_after(last), fields)
        self._check(response, "UID FETCH")
        items = wire.fetch_items(response.lines, section=b"BODY[")
        if len(items) < sum(1 for line in response.lines
                            if isinstance(line, bytes) and b" FETCH (" in line):
            # Unsolicited FETCH responses: the server is telling of messages
            # stored while it answered; look again (see ``announced``).
            client.protocol.announced = True
        # "n:*" always matches the last message, even below n.
        return [item for item in items if item[0] > last]

    async def fetch_headers(self, uids: list[int], fields: tuple[str, ...]
                            ) -> list[tuple[int, bytes, frozenset[str]]]:
        if not uids:
            return []
        items = " ".join(f.upper() for f in fields)
        response = await self.uid("fetch", ",".join(map(str, uids)),
                                  f"(UID FLAGS BODY.PEEK[HEADER.FIELDS ({items})])")
        return wire.fetch_items(response.lines, section=b"BODY[")

    async def fetch_raw(self, uids: list[int]) -> dict[int, tuple[bytes, frozenset[str]]]:
        """Whole messages (BODY.PEEK: no \\Seen), in one round trip."""
        if not uids:
            return {}
        response = await self.uid("fetch", ",".join(map(str, uids)), "(UID FLAGS BODY.PEEK[])")
        return {uid: (literal, flags) for uid, literal, flags
                in wire.fetch_items(response.lines, section=b"BODY[") if uid in uids}

    async def tokens_in_folder(self, prefix: str) -> dict[int, str]:
        """UID -> probe token in the selected folder, for tokens starting with ``prefix``.

        HEADER search is a substring match (LIBRARY-NOTES.md), so each hit is
        confirmed by reading the header itself.
        """
        response = self._check(await (await self._ready()).uid_search(
            "HEADER", probe.TOKEN_HEADER, f'"{prefix}"', charset=None), "UID SEARCH")
        confirmed: dict[int, str] = {}
        for uid, header, _flags in await self.fetch_headers(wire.search_uids(response.lines),
                                                            (probe.TOKEN_HEADER,)):
            token = probe.token_in_header(header)
            if token is not None and token.startswith(prefix):
                confirmed[uid] = token
        return confirmed

    async def report_uids(self) -> list[int]:
        """UIDs of delivery reports (multipart/report) in the selected folder."""
        response = self._check(await (await self._ready()).uid_search(
            "HEADER", "Content-Type", '"multipart/report"', charset=None), "UID SEARCH")
        return wire.search_uids(response.lines)

    async def idle(self, wake: asyncio.Event, timeout: float) -> bool:
        """IDLE until a push, ``wake`` or ``timeout``; True if the server pushed."""
        client = self._client()
        if "IDLE" not in self.capabilities:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
            return False
        try:
            # aioimaplib waits for the server's "+" without a bound: a server
            # that never answers would hold the watcher, and every probe's
            # wait, for ever.
            idle_task = await asyncio.wait_for(client.idle_start(timeout=IDLE_RENEW_S),
                                               self.timeouts.command_s)
        except (TimeoutError, aioimaplib.AioImapException) as exc:
            raise TransportError(_("IDLE did not start: {error}").format(
                error=redact(str(exc)) or _("timed out")), endpoint=self.name,
                transient=True) from None
        push = asyncio.ensure_future(client.wait_server_push(timeout=timeout + 1))
        woken = asyncio.ensure_future(wake.wait())
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            done, _pending = await asyncio.wait({push, woken, lost}, timeout=timeout,
                                                  return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (push, woken, lost):
                task.cancel()
            await asyncio.gather(push, woken, lost, return_exceptions=True)
        if lost in done or self.lost.is_set():
            idle_task.cancel()
            await asyncio.gather(idle_task, return_exceptions=True)
            raise TransportError(_("connection lost during IDLE"), endpoint=self.name,
                                 transient=True)
        pushed = push in done and not push.cancelled() and push.exception() is None
        # DONE goes with the next command (``_ready``), so that a look can be
        # sent in the same write (``headers_after``).
        self._idle_open = idle_task
        return pushed
