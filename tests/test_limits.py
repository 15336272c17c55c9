"""Politeness: a large sweep holds one IMAP connection per mailbox at a time
and leaves nothing behind."""

from __future__ import annotations

import asyncio

import pytest

from flowtest.flows import inbound
from flowtest.flows.common import Options
from flowtest.sandbox import Keyring, World


@pytest.mark.slow
def test_a_50_alias_sweep_holds_one_imap_connection_per_mailbox(
        flowtest_keys: Keyring) -> None:
    aliases = [f"a{i:02d}" for i in range(50)]
    with World(keys=flowtest_keys, aliases=aliases, retry_delays=(0.1, 0.2)) as world:
        results = asyncio.run(inbound.run(world.config(),
                                          options=Options(poll_s=1.0, settle_s=0.5)))
        world.check_errors()
        assert world.gmail is not None and world.external is not None
        gmail, external = world.gmail.store, world.external.store
        assert [r.verdict for r in results] == ["pass"] * 50
        # The watcher's connection, then cleanup's, never both at once.
        assert gmail.connections_peak == 1 and external.connections_peak == 1
        assert gmail.connections_total <= 2 and external.connections_total <= 2
        assert world.gmail_folder() == [] and len(world.gmail_folder("[Gmail]/Trash")) == 50
        submissions = [e for e in world.truth.events(kind="submitted") if e.party == "external"]
        assert len(submissions) == 50
