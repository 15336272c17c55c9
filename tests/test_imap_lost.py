"""A connection that goes at the wrong moment never stalls a watcher, and a
run that missed a probe never leaves it behind (found by the soak test under
CPU load: a probe of a run with cleanup on was left in Gmail's INBOX).

aioimaplib registers a command as pending, then sends it; when the connection
goes, flowtest ends the commands in flight (``fail_pending``). A command
registered after that, such as the IDLE that aioimaplib starts in a task of
its own one loop turn after it is asked to, was written into the void and
waited for ever: the watcher stalled in ``idle_start()`` for the rest of its
run, every probe still to come waited its whole delivery_s, and cleanup,
trusting what the watcher had found, left them in the mailbox.

The loss is delivered here in the order the event loop can give it under
load: the connection is reset for real, and the loop's one call of the
protocol's ``connection_lost`` is held back until the watcher has asked for
IDLE, so that it runs one callback ahead of aioimaplib's task. The servers
are the sandbox's real ones. Command timeouts
are set far beyond each test's own wait, so that only the fix, not a timer,
can end the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aioimaplib
import pytest

from flowtest.config import Config
from flowtest.errors import TransportError
from flowtest.flows.common import cleanup, quiet
from flowtest.mail import probe
from flowtest.net.imap import ImapSession, Watcher
from flowtest.sandbox import World
from flowtest.sandbox import gmail as gm
from tests.trash import move_to_trash

FOREVER_S = 3600.0


def _patient(config: Config) -> Config:
    """Commands that would wait an hour for a reply: no timer rescues a stall."""
    return dataclasses.replace(config, timeouts=dataclasses.replace(
        config.timeouts, command_s=FOREVER_S))


async def _reset_told_next_turn(session: ImapSession) -> None:
    """The server resets the connection; the loop's word of it (the
    protocol's ``connection_lost``, delivered once, as always) is held back
    and given one turn later, when the caller has gone on: the order a
    loaded loop can give."""
    protocol: Any = session._protocol
    held: list[Exception | None] = []
    told = asyncio.Event()

    def hold(exc: Exception | None) -> None:
        held.append(exc)
        told.set()

    protocol.connection_lost = hold
    protocol.transport.abort()
    await told.wait()
    del protocol.connection_lost
    asyncio.get_running_loop().call_soon(protocol.connection_lost, held[0])


def _planted(world: World, token: str) -> bytes:
    return (f"From: a@b.example\r\nTo: {world.gmail_address}\r\nSubject: x\r\n"
            f"X-Flowtest-Probe: {token}\r\n\r\nhi\r\n").encode()


async def _plant(world: World, token: str) -> None:
    assert world.gmail is not None
    await asyncio.to_thread(world.call, world.gmail.store.append(
        world.gmail_address, "INBOX", _planted(world, token)))


def _where(world: World, token: str) -> list[str]:
    """The folders of Gmail that hold the message with this token."""
    assert world.gmail is not None
    store = world.gmail.store
    return [folder for folder in world.call(store.folders(world.gmail_address))
            for _uid, raw, _flags in world.call(store.folder_contents(world.gmail_address,
                                                                      folder))
            if token.encode() in raw]


@pytest.mark.timeout(120)
def test_a_command_after_the_connection_went_fails_at_once(world: World) -> None:
    """No command is sent, and waited for, on a connection that is gone."""
    config = _patient(world.config())

    async def go() -> None:
        async with ImapSession(config.gmail, tls=config.tls, timeouts=config.timeouts,
                               app_password=True) as session:
            session._protocol.transport.abort()
            await session.lost.wait()  # the loop said so, once
            protocol: Any = session._protocol
            noop = aioimaplib.Command("NOOP", protocol.new_tag(), loop=protocol.loop)
            with pytest.raises(aioimaplib.AioImapException):
                await protocol.execute(noop)  # no timeout of its own: a hang before

    asyncio.run(go())


@pytest.mark.timeout(120)
def test_a_connection_lost_as_idle_starts_ends_the_idle(world: World) -> None:
    """The loss lands after the watcher asked for IDLE and before aioimaplib's
    task sent it: IDLE raises a transient TransportError instead of waiting
    for a "+" that cannot come, and closing leaves no task of aioimaplib's
    waiting."""
    config = _patient(world.config())

    async def go() -> None:
        session = ImapSession(config.gmail, tls=config.tls, timeouts=config.timeouts,
                              app_password=True)
        await session.open()
        client = session.client
        assert client is not None
        try:
            await session.examine("INBOX")
            await _reset_told_next_turn(session)
            with pytest.raises(TransportError) as lost:
                await session.idle(asyncio.Event(), FOREVER_S)
            assert lost.value.transient
        finally:
            await session.close()
        # Each ends (a task left waiting for the "+" would hang this test).
        await asyncio.gather(*list(client.tasks), return_exceptions=True)

    asyncio.run(go())


@pytest.mark.timeout(300)
def test_a_watcher_whose_connection_goes_as_it_idles_still_sees_the_probe(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The soak's stall, on a watcher: its first IDLE meets the loss; it
    reconnects and sees a probe stored afterwards, within the delivery time
    (it stalled until the end of the run before)."""
    config = _patient(world.config())
    prefix = probe.run_prefix(probe.new_run_id())
    token = f"{prefix}0001x"
    real_idle = ImapSession.idle
    struck = asyncio.Event()

    async def idle_meeting_a_reset(self: ImapSession, wake: asyncio.Event,
                                   timeout: float) -> bool:
        if not struck.is_set():
            struck.set()
            await _reset_told_next_turn(self)
        return await real_idle(self, wake, timeout)

    monkeypatch.setattr(ImapSession, "idle", idle_meeting_a_reset)

    async def go() -> None:
        watcher = Watcher(config.gmail, tls=config.tls, timeouts=config.timeouts,
                          prefix=prefix, poll_s=1.0, app_password=True)
        await watcher.start()
        try:
            await struck.wait()  # the probe lands after the loss
            await _plant(world, token)
            arrival = await watcher.wait(token, config.timeouts.delivery_s)
            assert arrival.folder == gm.INBOX
            assert watcher.reconnects >= 1
        finally:
            await watcher.stop()
            await move_to_trash(config, prefix)

    asyncio.run(go())


class FreezingProxy:
    """Forwards bytes, TLS and all, to the sandbox's Gmail IMAP; ``freeze()``
    stalls the connections open at that moment (nothing is dropped or closed,
    nothing more passes): a server that stops answering. Later connections
    pass as before."""

    def __init__(self, config: Config) -> None:
        self.upstream = config.gmail.imap
        self.port = 0
        self._gates: list[asyncio.Event] = []
        self._open: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[Any]] = []

    def freeze(self) -> None:
        for gate in self._gates:
            gate.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        gate = asyncio.Event()
        gate.set()
        self._gates.append(gate)
        up_reader, up_writer = await asyncio.open_connection(self.upstream.connect_host,
                                                             self.upstream.port)
        self._open += [writer, up_writer]

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                await gate.wait()
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer),
                             return_exceptions=True)
        for w in (writer, up_writer):
            w.transport.abort()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FreezingProxy]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for w in self._open:
                w.transport.abort()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()


@pytest.mark.timeout(300)
def test_a_run_that_missed_a_probe_moves_it_even_if_its_watcher_stalled(
        world: World) -> None:
    """The watcher stops hearing from its server (and would wait an hour for
    a reply); a probe lands that it therefore never sees. Cleanup of a run
    that missed a probe looks once more; the stalled watcher cannot finish
    that look, so cleanup searches the watched folders by token on a new
    connection and moves the probe. Before, it trusted the watcher's finds
    and left the probe in INBOX."""
    base = _patient(world.config())
    run_id = probe.new_run_id()
    prefix = probe.run_prefix(run_id)
    token = f"{prefix}0001x"

    async def go() -> None:
        proxy = FreezingProxy(base)
        async with proxy.running():
            imap = dataclasses.replace(base.gmail.imap, port=proxy.port, address="127.0.0.1")
            config = dataclasses.replace(base, gmail=dataclasses.replace(base.gmail,
                                                                         imap=imap))
            watcher = Watcher(config.gmail, tls=config.tls, timeouts=config.timeouts,
                              prefix=prefix, poll_s=1.0, app_password=True)
            await watcher.start()
            try:
                proxy.freeze()
                await _plant(world, token)
                await cleanup(config, run_id, [(watcher, True)], quiet, missed=True)
            finally:
                await watcher.stop()
            assert watcher.arrivals(token) == []  # it never saw the probe

    try:
        asyncio.run(go())
        assert _where(world, token) == [gm.TRASH]
    finally:
        asyncio.run(move_to_trash(world.config(), prefix))
