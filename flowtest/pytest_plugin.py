"""flowtest's pytest plugin: the sandbox world as fixtures, the network guard,
and flowtest's markers.

Registered by the repository's conftest.py and as the ``flowtest`` pytest11
entry point.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flowtest import guard

MARKERS = {
    "dns": "checks of the domain's DNS",
    "inbound": "the inbound leg (probe account -> Cloudflare -> Gmail)",
    "outbound": "the outbound leg (Gmail send-as -> probe account)",
    "latency": "latency measurement of forwarding",
    "slow": "takes more than a few seconds",
    "faults(*names)": "sandbox faults active for this test",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flowtest")
    group.addoption("--flowtest-no-guard", action="store_true", default=False,
                    help="do not install the network guard (it refuses any traffic outside "
                         "127.0.0.0/8)")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if not config.getoption("flowtest_no_guard", False):
        guard.enable()


def pytest_report_header(config: pytest.Config) -> str:
    state = "off" if config.getoption("flowtest_no_guard", False) else "on (127.0.0.0/8 only)"
    return f"flowtest: target sandbox, network guard {state}"


@pytest.fixture(scope="session")
def flowtest_keys() -> Any:
    """DKIM/ARC keys for every sandbox world of the session (RSA keys are slow to make)."""
    from flowtest.sandbox import Keyring
    return Keyring.generate()


@pytest.fixture(scope="session")
def sandbox_world(flowtest_keys: Any) -> Iterator[Any]:
    """One running sandbox world for the session."""
    from flowtest.sandbox import World
    world = World(keys=flowtest_keys, retry_delays=(0.1, 0.2, 0.5))
    world.start()
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture
def world(sandbox_world: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's world with this test's faults (``@pytest.mark.faults(...)``),
    reset afterwards; a server error inside the world fails the test that caused it."""
    sandbox_world.clear_fault()
    sandbox_world.dns_extra.clear()
    sandbox_world.dns_servfail.clear()
    marker = request.node.get_closest_marker("faults")
    for spec in marker.args if marker else ():
        sandbox_world.set_fault(spec)
    try:
        yield sandbox_world
        sandbox_world.check_errors()
    finally:
        sandbox_world.clear_fault()
        sandbox_world.dns_extra.clear()
        sandbox_world.dns_servfail.clear()
        if sandbox_world.ctx is not None:
            sandbox_world.ctx.errors.clear()


@pytest.fixture
def flowtest_config(world: Any) -> Any:
    """An ordinary flowtest config for the sandbox world."""
    return world.config()
