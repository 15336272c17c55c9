"""Fixtures of flowtest's own tests (the world fixtures come from the plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flowtest import i18n
from flowtest.sandbox import World

# Every test world carries this canary app password; nothing may ever print it.
CANARY_APP_PASSWORD = "qzxv kwjh ptmy rbnc"


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts in English, whatever the locale of the shell that runs
    the suite (LANG=zh_CN.UTF-8 included): the tests that assert on wording
    assert on the English words, and the ones about Chinese ask for it
    (``--lang zh``, ``i18n.use("zh")`` or an explicit environment). The locale
    variables go too, so that ``cli.main`` and the subprocesses a test starts
    resolve English as well; the language in use is put back afterwards."""
    for name in i18n.ENV_ORDER:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    with i18n.use("en"):
        yield


@pytest.fixture(scope="session")
def sandbox_world(flowtest_keys: Any) -> Iterator[World]:
    world = World(keys=flowtest_keys, gmail_app_password=CANARY_APP_PASSWORD,
                  retry_delays=(0.1, 0.2, 0.5))
    world.start()
    try:
        yield world
    finally:
        world.stop()
