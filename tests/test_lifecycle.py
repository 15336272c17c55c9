"""Starting and stopping the world leaks no thread, socket or task; stopping a
run half way leaves none of its probes."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import pytest

from flowtest.errors import SandboxError
from flowtest.flows import inbound
from flowtest.mail import probe
from flowtest.sandbox import Keyring, World
from flowtest.sandbox import external as ext
from flowtest.sandbox import gmail as gm


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_fifty_starts_and_stops_leak_nothing(flowtest_keys: Keyring) -> None:
    # One round first, so lazily created process-wide things exist before counting.
    with World(keys=flowtest_keys):
        pass
    gc.collect()
    threads, fds = threading.active_count(), _open_fds()
    for _ in range(50):
        world = World(keys=flowtest_keys)
        world.start()
        assert world.gmail is not None and world.gmail.store.port > 0
        world.stop()
    gc.collect()
    assert threading.active_count() == threads, threading.enumerate()
    assert _open_fds() == fds


def test_world_cannot_start_twice_and_refuses_calls_when_stopped(
        flowtest_keys: Keyring) -> None:
    world = World(keys=flowtest_keys)
    with pytest.raises(SandboxError):
        world.config()
    with world, pytest.raises(SandboxError, match="already running"):
        world.start()
    assert not world.running

    async def nothing() -> None:
        return None

    with pytest.raises(SandboxError, match="not running"):
        world.call(nothing())


class Broken(RuntimeError):
    pass


def test_a_run_that_fails_after_sending_still_moves_its_probes(world: World) -> None:
    """Whatever goes wrong after sending, the run's probes go to Trash (issue
    14, item 3). Here the progress hook raises once the first probe is judged,
    as the command line's did on a bounce holding `[/]` (rich's MarkupError)."""
    def progress(event: str, alias: str, detail: str) -> None:
        if event == "judged":
            raise Broken(alias)

    run_id = probe.new_run_id()
    prefix = probe.run_prefix(run_id).encode()

    def mine(folder: list[tuple[int, bytes, set[str]]]) -> int:
        return sum(prefix in raw for _uid, raw, _flags in folder)

    with pytest.raises(Broken):
        asyncio.run(inbound.run(world.config(), run_id=run_id, progress=progress))
    aliases = len(world.config().aliases)
    assert mine(world.gmail_folder(gm.INBOX)) == mine(world.probe_folder(ext.SENT)) == 0
    assert mine(world.gmail_folder(gm.TRASH)) == mine(world.probe_folder(ext.TRASH)) == aliases
