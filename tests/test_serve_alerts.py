"""flowtest serve wired to the alerter (issue 16 item 4): a fault that lasts
two runs sends one "down" with its code to a real loopback receiver, its end
one "recovered", and the dead-man's switch hears of every run; the alerter's
memory survives a restart of the service through its SQLite store."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from flowtest.cli.serve import build_alerter, notify_targets
from flowtest.sandbox import World
from flowtest.serve.service import Service
from tests.alert_receiver import Receiver, receiver
from tests.test_serve import probes_left, serve_config

__all__ = ["receiver"]


def _service(config: object, report_dir: Path, hook: Receiver) -> Service:
    service = Service(config, report_dir=report_dir, poll_s=1.0,  # type: ignore[arg-type]
                      settle_s=0.3)
    args = argparse.Namespace(notify=[hook.url("json", "/hook")])
    service.alerter = build_alerter(config, notify_targets(config, args),
                                    service.store.meta("alerter"))
    return service


def test_serve_alerts_once_down_and_once_recovered(world: World, tmp_path: Path,
                                                  receiver: Receiver) -> None:
    before = probes_left(world)
    config = serve_config(world, notify_after=2)

    async def leg(service: Service) -> None:
        await service.run_leg("inbound")

    async def scenario() -> None:
        service = _service(config, tmp_path, receiver)
        service.ready.set()   # runs driven by the test, not the schedule
        try:
            world.set_fault("spam")
            await leg(service)
            assert receiver.at("/hook") == []          # one failure is not an alert
        finally:
            await service.stop()
        # A restart in the middle of the episode: the count goes on from SQLite.
        service = _service(config, tmp_path, receiver)
        service.ready.set()   # runs driven by the test, not the schedule
        try:
            await leg(service)
            world.clear_fault("spam")
            await leg(service)
            await leg(service)                         # still ok: nothing more is sent
        finally:
            await service.stop()

    asyncio.run(scenario())
    got = [r.json() for r in receiver.at("/hook")]
    assert len(got) == 2, got
    down, recovered = got
    assert "SPAM_FOLDER" in down["message"] and "SPAM_FOLDER" not in recovered["title"]
    assert probes_left(world, before) == set()
