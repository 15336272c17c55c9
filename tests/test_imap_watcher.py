"""A watcher that dies says so (issue 14, item 5).

A hostile (or merely unusual) IMAP reply that flowtest cannot read must end
the wait of every probe at once with an error naming the cause: before, the
watcher task died silently and each probe was judged "Lost", blaming
Cloudflare for flowtest's own failure.

The hostile replies come from a small TLS proxy in front of the sandbox's real
Gmail IMAP server: it forwards every byte, and adds one thing a real server
may send (an 8-bit folder name in LIST, an 8-bit keyword in FETCH FLAGS).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from flowtest.config import Config
from flowtest.flows import inbound, sweep
from flowtest.flows.common import Options
from flowtest.mail import probe
from flowtest.model import ProbeResult
from flowtest.net.imap import Watcher, WatcherDied
from flowtest.sandbox import World
from tests.trash import move_to_trash

IMAP_NAME = "imap.gmail.com"


def _list_8bit(line: bytes) -> bytes:
    # ISO-8859-1 "Café": neither UTF-8 nor modified UTF-7 (RFC 3501 5.1.3).
    if line.startswith(b"* LIST "):
        return b'* LIST (\\HasNoChildren) "/" "Caf\xe9"\r\n' + line
    return line


def _flags_8bit(line: bytes) -> bytes:
    if b" FETCH (" in line:
        return line.replace(b"FLAGS (", b"FLAGS (\xe9 ", 1)
    return line


class HostileImap:
    """Forwards a client to the sandbox's Gmail IMAP, rewriting the server's
    lines on the first connection only (cleanup's later ones stay clean)."""

    def __init__(self, world: World, config: Config, ca: trustme.CA, rewrite: str) -> None:
        self.upstream = config.gmail.imap
        self.to_server = ssl.create_default_context(cafile=str(world.ca_file))
        self.to_client = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(IMAP_NAME).configure_cert(self.to_client)
        self.rewrite = {"list": _list_8bit, "flags": _flags_8bit}[rewrite]
        self.connections = 0
        self.port = 0
        self._open: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        first = self.connections == 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        up_reader, up_writer = await asyncio.open_connection(
            self.upstream.connect_host, self.upstream.port, ssl=self.to_server,
            server_hostname=IMAP_NAME, limit=2**22)
        self._open += [writer, up_writer]

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def server_to_client() -> None:
            while line := await up_reader.readline():
                writer.write(self.rewrite(line) if first else line)
                await writer.drain()
            writer.close()

        await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)
        for w in (writer, up_writer):
            w.transport.abort()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HostileImap]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.to_client)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for w in self._open:
                w.transport.abort()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()


def _through(config: Config, proxy: HostileImap, bundle: Path) -> Config:
    """The same config, with Gmail's IMAP reached through the proxy."""
    imap = dataclasses.replace(config.gmail.imap, port=proxy.port, address="127.0.0.1")
    return dataclasses.replace(config, gmail=dataclasses.replace(config.gmail, imap=imap),
                               tls=dataclasses.replace(config.tls, ca_file=bundle))


@pytest.fixture
def ca_bundle(world: World, tmp_path: Path) -> tuple[trustme.CA, Path]:
    """A CA of the test's own for the proxy, trusted beside the sandbox's."""
    ca = trustme.CA()
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_bytes(world.ca_file.read_bytes() + b"\n" + ca.cert_pem.bytes())
    return ca, bundle


@pytest.mark.parametrize("rewrite", ["list", "flags"])
def test_a_watcher_that_dies_fails_its_waiters_with_the_cause(
        world: World, ca_bundle: tuple[trustme.CA, Path], rewrite: str) -> None:
    """At start (LIST) or mid-run (FETCH): start() or wait() raise WatcherDied
    with the exception that ended the watcher, long before the wait's timeout."""
    config = world.config()
    run_prefix = probe.run_prefix(probe.new_run_id())
    token = f"{run_prefix}0001x"

    async def go() -> BaseException:
        proxy = HostileImap(world, config, ca_bundle[0], rewrite)
        async with proxy.running():
            conf = _through(config, proxy, ca_bundle[1])
            watcher = Watcher(conf.gmail, tls=conf.tls, timeouts=conf.timeouts,
                              prefix=run_prefix, poll_s=1.0, app_password=True)
            try:
                await watcher.start()
                # Something new to fetch, so the watcher reads a FETCH reply.
                raw = (f"From: a@b.example\r\nTo: {world.gmail_address}\r\nSubject: x\r\n"
                       f"X-Flowtest-Probe: {token}\r\n\r\nhi\r\n").encode()
                assert world.gmail is not None
                await asyncio.to_thread(world.call, world.gmail.store.append(
                    world.gmail_address, "INBOX", raw))
                watcher.poke()
                await watcher.wait(token, conf.timeouts.delivery_s)
            except WatcherDied as exc:
                return exc
            finally:
                await watcher.stop()
                await move_to_trash(config, run_prefix)
        raise AssertionError("the watcher did not die")

    died = asyncio.run(go())
    assert isinstance(died, WatcherDied)
    assert isinstance(died.cause, UnicodeDecodeError)
    assert "UnicodeDecodeError" in str(died)


@pytest.mark.parametrize("rewrite", ["list", "flags"])
def test_the_leg_reports_an_error_not_a_lost_probe(
        world: World, ca_bundle: tuple[trustme.CA, Path], rewrite: str) -> None:
    """The whole inbound leg: the probe is delivered, the watcher cannot read
    the server's reply, and the verdict is `error` naming the cause, where it
    was `fail` ("Lost … Cloudflare did not forward it")."""
    config = world.config()

    async def go() -> ProbeResult:
        proxy = HostileImap(world, config, ca_bundle[0], rewrite)
        async with proxy.running():
            conf = _through(config, proxy, ca_bundle[1])
            [result] = await inbound.run(conf, aliases=[conf.aliases[0]],
                                         options=Options(poll_s=1.0, settle_s=0.2))
        return result

    result = asyncio.run(go())
    assert result.verdict == "error", result.diagnosis
    assert any("UnicodeDecodeError" in line for line in result.diagnosis)
    # The watcher never saw the probe. Cleanup looked for it by token through a
    # new, clean connection; but the watcher can die at its first look, before
    # the probe lands (a ranged FETCH reads an older message's FLAGS), and then
    # the run cannot wait for it: the probe is a stale one for `flowtest
    # cleanup`, which moves it and nothing else of the user's.
    mid = next((e.message_id for e in world.truth.events(kind="submitted")
                if result.token in e.message_id), None)
    # (A watcher that dies while starting stops the run before it sends.)
    assert mid is None or world.truth.wait_for(mid, "stored", 30) is not None
    if [m for m in world.gmail_folder() if result.token.encode() in m[1]]:
        age = sweep.shortest_safe_age(config)
        asyncio.run(sweep.stale(config, age, now=time.time() + age + 60))
    assert not [m for m in world.gmail_folder() if result.token.encode() in m[1]]
