"""Starting and stopping the world leaks no thread, socket or task."""

from __future__ import annotations

import gc
import os
import threading

import pytest

from flowtest.errors import SandboxError
from flowtest.sandbox import Keyring, World


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
