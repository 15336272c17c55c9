"""flowtest's pytest plugin: checks of your own mail setup as pytest tests.

Registered by the repository's conftest.py and as the ``flowtest`` pytest11
entry point.

Tests run against the embedded sandbox with the network guard on, whatever
files or variables are around (a ./flowtest.toml, $FLOWTEST_CONFIG): nothing
leaves 127.0.0.0/8 unless the user asks for it on the command line.

- ``--flowtest-live``: check the real setup. The config is
  ``--flowtest-config FILE``, else $FLOWTEST_CONFIG, else ./flowtest.toml.
  Outbound probes are counted against ``limits.daily_sends`` like ``flowtest
  run`` does (refused before sending when the budget is spent), and the
  session's report and history go to ``--flowtest-report-dir`` (default
  ``reports``), where the budget is counted from.
- ``--flowtest-sandbox``: the default, spelled out; it wins over an earlier
  ``--flowtest-live`` (``make test`` passes it, so $PYTEST_ADDOPTS cannot make
  the suite go live).
- ``--flowtest-config FILE``: without ``--flowtest-live`` only a sandbox config
  (``target = "sandbox"``, as ``flowtest sandbox --write-config`` writes) is
  accepted, and the guard stays on; a live config is refused.
- ``--flowtest-report-dir DIR``: write a run folder (report.json, junit.xml,
  report.html) and append to DIR/history.jsonl at the end of the session.

Fixtures: ``flowtest_target``, ``flowtest_config``, ``world`` (the embedded
sandbox only), ``inbound`` and ``outbound`` (run a leg; the results are
attached to the test and to the session's report), ``flowtest_alias``
(parametrized over every configured alias). Markers: dns, inbound, outbound,
latency, slow, faults(...).
"""

from __future__ import annotations

import asyncio
import base64
import os
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flowtest import guard
from flowtest.config import Config, load, plaintext_endpoints
from flowtest.errors import ConfigError
from flowtest.mail.text import inert
from flowtest.report import history
from flowtest.report.run_folder import HISTORY
from flowtest.secrets import redact_logs

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
_PLAN = pytest.StashKey["Plan"]()


@dataclass(frozen=True)
class Plan:
    """What this session tests, decided once from the command line only."""

    target: str                  # "sandbox" or "live"
    config: Config | None        # None: the embedded sandbox world
    guard: bool                  # the network guard is on
    report_dir: Path | None

    @property
    def path(self) -> Path | None:
        return self.config.path if self.config is not None else None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("flowtest")
    group.addoption("--flowtest-live", dest="flowtest_target", action="store_const",
                    const="live", default="sandbox",
                    help="check the real setup: send real probes through the config's "
                         "accounts (--flowtest-config, else $FLOWTEST_CONFIG, else "
                         "./flowtest.toml). Without it, tests never leave 127.0.0.0/8")
    group.addoption("--flowtest-sandbox", dest="flowtest_target", action="store_const",
                    const="sandbox",
                    help="test against the sandbox (the default); wins over an earlier "
                         "--flowtest-live")
    group.addoption("--flowtest-config", metavar="FILE", default=None,
                    help="the config to test; without --flowtest-live only a sandbox "
                         "config (target = \"sandbox\") is accepted")
    group.addoption("--flowtest-report-dir", metavar="DIR", default=None,
                    help="write the session's flowtest report folder and history here "
                         "(with --flowtest-live: default reports)")
    group.addoption("--flowtest-no-guard", action="store_true", default=False,
                    help="do not install the network guard in sandbox mode")


def _load(path: Path) -> Config:
    try:
        return load(path)
    except ConfigError as exc:
        raise pytest.UsageError(f"flowtest: config error: {exc}") from None


def _plan(config: pytest.Config) -> Plan:
    """Only the command line can make a session live: $FLOWTEST_CONFIG and
    ./flowtest.toml are read only under --flowtest-live (issue 14, item 1)."""
    target = str(config.getoption("flowtest_target"))
    given = config.getoption("flowtest_config")
    report_dir = config.getoption("flowtest_report_dir")
    no_guard = bool(config.getoption("flowtest_no_guard"))
    if target == "live":
        found = given or os.environ.get("FLOWTEST_CONFIG") or (
            "flowtest.toml" if Path("flowtest.toml").exists() else None)
        if not found:
            raise pytest.UsageError("--flowtest-live needs a config: --flowtest-config FILE, "
                                    "$FLOWTEST_CONFIG or ./flowtest.toml")
        live = _load(Path(found))
        sandbox = live.target == "sandbox"
        return Plan("sandbox" if sandbox else "live", live, guard=sandbox and not no_guard,
                    report_dir=Path(report_dir or "reports"))
    conf: Config | None = None
    if given:
        conf = _load(Path(given))
        if conf.target != "sandbox":
            raise pytest.UsageError(
                f"{given} is a live config (target = \"{conf.target}\"): add --flowtest-live "
                "to send real probes through it")
    return Plan("sandbox", conf, guard=not no_guard,
                report_dir=Path(report_dir) if report_dir else None)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.stash[_RESULTS] = []
    config.stash[_STARTED] = time.time()
    plan = _plan(config)
    config.stash[_PLAN] = plan
    if plan.target != "sandbox" and _under_xdist(config):
        # Each worker would count only its own sends against limits.daily_sends.
        raise pytest.UsageError("flowtest: a live run sends real probes and keeps one "
                                "daily budget: run it in one process, without -n")
    redact_logs()  # pytest's own log capture shows protocol logs of failed tests
    if plan.guard:
        guard.enable()


def _worker(config: pytest.Config) -> bool:
    """A pytest-xdist worker (its results travel to the controller)."""
    return hasattr(config, "workerinput")


def _under_xdist(config: pytest.Config) -> bool:
    return _worker(config) or bool(getattr(config.option, "numprocesses", None))


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist every worker keeps its own results; hand them to the
    # controller, which shows the summary and writes the one report. Pickled:
    # the data is our own dataclasses, between processes of the same run.
    if _worker(session.config):
        results = session.config.stash.get(_RESULTS, [])
        output: dict[str, Any] = session.config.workeroutput  # type: ignore[attr-defined]
        output["flowtest_results"] = base64.b64encode(pickle.dumps(results)).decode()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: a worker finished; keep its probe results."""
    data = getattr(node, "workeroutput", {}).get("flowtest_results")
    if data:
        node.config.stash[_RESULTS].extend(pickle.loads(base64.b64decode(data)))


def pytest_unconfigure(config: pytest.Config) -> None:
    plan = config.stash.get(_PLAN, None)
    if plan is not None and plan.guard:
        guard.disable()


def _insecure(conf: Config | None) -> str | None:
    """What `flowtest run` would warn about: tls.insecure, and plaintext endpoints."""
    if conf is None or not conf.tls.insecure:
        return None
    plain = plaintext_endpoints(conf)
    return ("INSECURE: TLS verification is off" +
            (f"; PLAINTEXT: {', '.join(plain)}" if plain else ""))


def pytest_report_header(config: pytest.Config) -> list[str]:
    plan = config.stash[_PLAN]
    insecure = _insecure(plan.config)
    extra = [f"flowtest: {insecure}"] if insecure else []
    if plan.target == "sandbox":
        state = "on (127.0.0.0/8 only)" if plan.guard else "off"
        where = f" (config {plan.path})" if plan.path else ""
        return [f"flowtest: target sandbox{where}, network guard {state}", *extra]
    assert plan.config is not None
    budget = plan.config.limits.daily_budget(plan.config.target)
    return [f"flowtest: target LIVE, config {plan.path}, network guard off; real probes, "
            f"outbound budget {budget if budget is not None else 'none'} a day "
            f"(history in {plan.report_dir})", *extra]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "flowtest_alias" not in metafunc.fixturenames:
        return
    plan = metafunc.config.stash[_PLAN]
    if plan.config is not None:
        aliases = [a.address for a in plan.config.aliases]
    else:
        from flowtest.sandbox.world import DEFAULT_ALIASES
        aliases = [f"{a}@example.me" for a in DEFAULT_ALIASES]
    metafunc.parametrize("flowtest_alias", aliases, ids=aliases)


@pytest.fixture(scope="session")
def flowtest_target(pytestconfig: pytest.Config) -> str:
    """"sandbox" or "live"."""
    return pytestconfig.stash[_PLAN].target


@pytest.fixture(scope="session")
def flowtest_keys() -> Any:
    """DKIM/ARC keys for every sandbox world of the session (RSA keys are slow to make)."""
    from flowtest.sandbox import Keyring
    return Keyring.generate()


@pytest.fixture(scope="session")
def sandbox_world(flowtest_keys: Any, pytestconfig: pytest.Config) -> Iterator[Any]:
    """One running sandbox world for the session."""
    if pytestconfig.stash[_PLAN].config is not None:
        pytest.skip("needs the embedded sandbox (not --flowtest-config)")
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
def flowtest_config(request: pytest.FixtureRequest) -> Any:
    """The config under test: the embedded sandbox world's, or the file's."""
    plan = request.config.stash[_PLAN]
    if plan.config is None:
        return request.getfixturevalue("world").config()
    return plan.config


def _leg_runner(leg: str, request: pytest.FixtureRequest, config: Any) -> Callable[..., Any]:
    from flowtest.flows import inbound, outbound
    from flowtest.flows.common import Options

    fast = config.target == "sandbox"
    options = Options(poll_s=1.0 if fast else 10.0, settle_s=0.5 if fast else 3.0)

    def run(aliases: list[str] | None = None) -> list[Any]:
        chosen = None
        if aliases is not None:
            chosen = [a for a in config.aliases if a.address in aliases]
        if leg == "outbound":
            _check_send_budget(request.config, config,
                               len(chosen) if chosen is not None else len(config.aliases))
        flow = inbound.run if leg == "inbound" else outbound.run
        results = asyncio.run(flow(config, aliases=chosen, options=options))
        request.node.stash.setdefault(_RESULTS, []).extend(results)
        request.config.stash[_RESULTS].extend(results)
        for r in results:
            request.node.user_properties.append(
                (f"flowtest.{r.leg}.{r.alias}",
                 f"{r.verdict}: " + " ".join(f"[{f.code}] {f.text}" for f in r.findings)))
        return results

    return run


def _check_send_budget(pytestconfig: pytest.Config, config: Any, wanted: int) -> None:
    """Refuse, before sending, outbound probes past limits.daily_sends in 24
    hours, counted from the history and from this session's probes not yet
    written there: the same budget as ``flowtest run`` (Gmail refuses all
    sending for up to a day past its own limit, shared with the user's mail)."""
    budget = config.limits.daily_budget(config.target)
    if budget is None:
        return
    report_dir = pytestconfig.stash[_PLAN].report_dir
    this_session = [r.sent_at for r in pytestconfig.stash[_RESULTS]
                    if r.leg == "outbound" and r.sent_at is not None]
    state = history.send_budget(report_dir / HISTORY if report_dir else None,
                                budget=budget, target=config.target, wanted=wanted,
                                now=time.time(), also_sent=this_session)
    if state.exceeded:
        pytest.fail(f"flowtest: {state.used} outbound probes in the last 24 hours and {wanted} "
                    "more "
                    f"would pass limits.daily_sends = {budget} (history: "
                    f"{report_dir / HISTORY if report_dir else 'none'}); nothing was sent",
                    pytrace=False)


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
    if not results or _worker(config):
        return
    terminalreporter.section("flowtest")
    plan = config.stash[_PLAN]
    insecure = _insecure(plan.config)
    if insecure:
        terminalreporter.line(insecure, red=True, bold=True)
    for r in results:
        latency = "-" if r.latency_s is None else f"{r.latency_s:.3f} s"
        head = r.findings[0] if r.findings else None
        # Strangers' words (aliases, quoted replies) made inert: one line each.
        terminalreporter.line(inert(f"{r.verdict.upper():5} {r.leg:8} {r.alias} {latency} "
                                    + (f"{head.code} {head.text}" if head else "")))
    report_dir = config.stash[_PLAN].report_dir
    if report_dir:
        from flowtest.mail.probe import new_run_id
        from flowtest.report import json_report, run_folder
        report = json_report.build(target=plan.target, insecure=insecure is not None,
                                   plaintext=plaintext_endpoints(plan.config) if plan.config
                                   else (),
                                   started_at=config.stash[_STARTED], finished_at=time.time(),
                                   probes=results, run_id=new_run_id(), dns_checked=False)
        folder = run_folder.write(report, Path(report_dir))
        terminalreporter.line(f"flowtest report: {folder}")
