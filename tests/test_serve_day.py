"""A simulated day of `flowtest serve`: the schedule scaled down to seconds,
faults coming and going every "hour". After each change the states must
follow, nothing may be left in the mailboxes, and memory stays steady
(first third against last third, loosely: a leak grows with every run)."""

from __future__ import annotations

import asyncio
import gc
import itertools
import tracemalloc
from pathlib import Path

import pytest

from flowtest.sandbox import World
from flowtest.serve.service import Service
from tests.test_serve import WAIT_S, probes_left, serve_config, serving

# Each "hour": the faults in force, and what the inbound state must become.
HOURS = [((), "ok"), (("spam",), "failing"), ((), "ok"),
         (("no-rule=hello@example.me",), "failing"), (("forward-delay=6",), "warning")] * 3


# The sandbox keeps every message (Trash grows) and every ground-truth event:
# memory allocated under its frames is the world's, not the service's.
WORLD = ("*/flowtest/sandbox/*", "*/pymap/*", "*/aiosmtpd/*", "*/dkim/*", "*/authheaders/*",
         "*/spf.py", "*/dns/*", "*/tracemalloc.py")


def serve_memory() -> int:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, pattern, all_frames=True) for pattern in WORLD])
    return sum(stat.size for stat in snapshot.statistics("filename"))


@pytest.mark.slow
def test_a_simulated_day(world: World, tmp_path: Path) -> None:
    config = serve_config(world, inbound_every_s=0.5, outbound_every_s=2.0,
                          doctor_every_s=5.0, cleanup_every_s=7.0, jitter=0.2)
    alias = config.aliases[0].address
    sizes: list[int] = []
    changes: list[tuple[str, float]] = []

    async def hour(service: Service, faults: tuple[str, ...], want: str) -> None:
        world.clear_fault()
        for spec in faults:
            world.set_fault(spec)
        # A run that started before the change may still see the old world:
        # the second one after it cannot.
        done = service.counts["inbound"]
        await service.wait_for_runs("inbound", done + 2, WAIT_S)
        state = service.board.get("inbound", alias)
        assert state is not None and state.state == want, (faults, state)
        if not changes or changes[-1][0] != want:
            changes.append((want, state.since))
        gc.collect()
        sizes.append(serve_memory())

    async def day() -> Service:
        async with serving(config, tmp_path) as (service, _url):
            for faults, want in HOURS:
                await hour(service, faults, want)
            world.clear_fault()
            await service.wait_for_runs("inbound", service.counts["inbound"] + 1, WAIT_S)
            return service

    tracemalloc.start(6)
    try:
        service = asyncio.run(day())
    finally:
        tracemalloc.stop()
    # Each state change is recorded once, with its own since-when.
    assert [w for w, _ in changes] == [w for _, w in HOURS]
    assert all(a[1] < b[1] for a, b in itertools.pairwise(changes))
    assert service.counts["doctor"] >= 1 and service.counts["outbound"] >= 1
    assert probes_left(world) == []
    third = len(sizes) // 3
    first, last = sum(sizes[:third]) / third, sum(sizes[-third:]) / third
    assert last < first * 1.5 + 4_000_000, sizes
