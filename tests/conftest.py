"""Fixtures of flowtest's own tests (the world fixtures come from the plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flowtest.sandbox import World

# Every test world carries this canary app password; nothing may ever print it.
CANARY_APP_PASSWORD = "qzxv kwjh ptmy rbnc"


@pytest.fixture(scope="session")
def sandbox_world(flowtest_keys: Any) -> Iterator[World]:
    world = World(keys=flowtest_keys, gmail_app_password=CANARY_APP_PASSWORD,
                  retry_delays=(0.1, 0.2, 0.5))
    world.start()
    try:
        yield world
    finally:
        world.stop()
