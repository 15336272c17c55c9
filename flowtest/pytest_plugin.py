"""flowtest's pytest plugin: checks of your own mail setup as pytest tests.

Registered by the repository's conftest.py and as the ``flowtest`` pytest11
entry point. Options:

- ``--flowtest-config FILE``: the config (default: $FLOWTEST_CONFIG, else
  ./flowtest.toml when it exists);
- ``--flowtest-target auto|sandbox|live``: auto is live when a config is found,
  else the embedded sandbox;
- ``--flowtest-report-dir DIR``: write a run folder (report.json, junit.xml,
  report.html) and append to DIR/history.jsonl at the end of the session.

Fixtures: ``flowtest_target``, ``flowtest_config``, ``world`` (sandbox only),
``inbound`` and ``outbound`` (run a leg; the results are attached to the test
and to the session's report), ``flowtest_alias`` (parametrized over every
configured alias). Markers: dns, inbound, outbound, latency, slow, faults(...).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
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
_RESULTS = pytest.StashKey[list[Any]]()
_STARTED = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flowtest")
    group.addoption("--flowtest-config", metavar="FILE", default=None,
                    help="flowtest.toml to test (default: $FLOWTEST_CONFIG or ./flowtest.toml)")
    group.addoption("--flowtest-target", choices=("auto", "sandbox", "live"), default="auto",
                    help="auto: live when a config is found, else the embedded sandbox")
    group.addoption("--flowtest-report-dir", metavar="DIR", default=None,
                    help="write the session's flowtest report folder and history here")
    group.addoption("--flowtest-no-guard", action="store_true", default=False,
                    help="do not install the network guard in sandbox mode")


def _config_path(config: pytest.Config) -> Path | None:
    given = config.getoption("flowtest_config") or os.environ.get("FLOWTEST_CONFIG")
    if given:
        return Path(given)
    default = Path("flowtest.toml")
    return default if default.exists() else None


def _target(config: pytest.Config) -> str:
    chosen = str(config.getoption("flowtest_target"))
    if chosen != "auto":
        return chosen
    return "live" if _config_path(config) is not None else "sandbox"


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.stash[_RESULTS] = []
    config.stash[_STARTED] = time.time()
    if _target(config) == "sandbox" and not config.getoption("flowtest_no_guard"):
        guard.enable()


def pytest_report_header(config: pytest.Config) -> str:
    target = _target(config)
    if target == "sandbox":
        state = "off" if config.getoption("flowtest_no_guard") else "on (127.0.0.0/8 only)"
        return f"flowtest: target sandbox, network guard {state}"
    return f"flowtest: target live, config {_config_path(config)}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "flowtest_alias" not in metafunc.fixturenames:
        return
    config = metafunc.config
    if _target(config) == "live":
        from flowtest import config as cfg
        path = _config_path(config)
        if path is None:
            raise pytest.UsageError("--flowtest-target live needs --flowtest-config")
        aliases = [a.address for a in cfg.load(path).aliases]
    else:
        from flowtest.sandbox.world import DEFAULT_ALIASES
        aliases = [f"{a}@example.me" for a in DEFAULT_ALIASES]
    metafunc.parametrize("flowtest_alias", aliases, ids=aliases)


@pytest.fixture(scope="session")
def flowtest_target(pytestconfig: pytest.Config) -> str:
    """"sandbox" or "live"."""
    return _target(pytestconfig)


@pytest.fixture(scope="session")
def flowtest_keys() -> Any:
    """DKIM/ARC keys for every sandbox world of the session (RSA keys are slow to make)."""
    from flowtest.sandbox import Keyring
    return Keyring.generate()


@pytest.fixture(scope="session")
def sandbox_world(flowtest_keys: Any, flowtest_target: str) -> Iterator[Any]:
    """One running sandbox world for the session."""
    if flowtest_target != "sandbox":
        pytest.skip("needs the sandbox target")
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
    def reset() -> None:
        sandbox_world.clear_fault()
        sandbox_world.dns_extra.clear()
        sandbox_world.dns_servfail.clear()

    reset()
    marker = request.node.get_closest_marker("faults")
    for spec in marker.args if marker else ():
        sandbox_world.set_fault(spec)
    try:
        yield sandbox_world
        sandbox_world.check_errors()
    finally:
        reset()
        if sandbox_world.ctx is not None:
            sandbox_world.ctx.errors.clear()


@pytest.fixture
def flowtest_config(request: pytest.FixtureRequest, flowtest_target: str) -> Any:
    """The config under test: the sandbox world's, or the live flowtest.toml."""
    if flowtest_target == "sandbox":
        return request.getfixturevalue("world").config()
    from flowtest import config as cfg
    path = _config_path(request.config)
    if path is None:
        raise pytest.UsageError("--flowtest-target live needs --flowtest-config")
    return cfg.load(path)


def _leg_runner(leg: str, request: pytest.FixtureRequest, config: Any) -> Callable[..., Any]:
    from flowtest.flows import inbound, outbound
    from flowtest.flows.common import Options

    fast = config.target == "sandbox"
    options = Options(poll_s=1.0 if fast else 10.0, settle_s=0.5 if fast else 3.0)

    def run(aliases: list[str] | None = None) -> list[Any]:
        chosen = None
        if aliases is not None:
            chosen = [a for a in config.aliases if a.address in aliases]
        flow = inbound.run if leg == "inbound" else outbound.run
        results = asyncio.run(flow(config, aliases=chosen, options=options))
        request.node.stash.setdefault(_RESULTS, []).extend(results)
        request.config.stash[_RESULTS].extend(results)
        for r in results:
            request.node.user_properties.append(
                (f"flowtest.{r.leg}.{r.alias}", f"{r.verdict}: {' '.join(r.diagnosis)}"))
        return results

    return run


@pytest.fixture
def inbound(request: pytest.FixtureRequest, flowtest_config: Any) -> Callable[..., Any]:
    """``inbound(aliases=None)`` runs the inbound leg and returns its ProbeResults."""
    return _leg_runner("inbound", request, flowtest_config)


@pytest.fixture
def outbound(request: pytest.FixtureRequest, flowtest_config: Any) -> Callable[..., Any]:
    """``outbound(aliases=None)`` runs the outbound leg and returns its ProbeResults."""
    return _leg_runner("outbound", request, flowtest_config)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, [])
    if not results:
        return
    terminalreporter.section("flowtest")
    for r in results:
        latency = "-" if r.latency_s is None else f"{r.latency_s:.3f} s"
        terminalreporter.line(f"{r.verdict.upper():5} {r.leg:8} {r.alias} {latency} "
                              f"{r.diagnosis[0] if r.diagnosis else ''}")
    report_dir = config.getoption("flowtest_report_dir")
    if report_dir:
        from flowtest.mail.probe import new_run_id
        from flowtest.report import json_report, run_folder
        report = json_report.build(target=_target(config),
                                   started_at=config.stash[_STARTED], finished_at=time.time(),
                                   probes=results, run_id=new_run_id())
        folder = run_folder.write(report, Path(report_dir))
        terminalreporter.line(f"flowtest report: {folder}")
