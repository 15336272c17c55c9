"""Politeness: a large sweep holds one IMAP connection per mailbox at a time
and leaves nothing behind."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowtest import cli
from flowtest.config import Config
from flowtest.flows import inbound
from flowtest.flows.common import Options
from flowtest.model import ProbeResult
from flowtest.sandbox import Keyring, World


@pytest.mark.slow
def test_a_50_alias_sweep_holds_one_imap_connection_per_mailbox(
        flowtest_keys: Keyring) -> None:
    aliases = [f"a{i:02d}" for i in range(50)]
    with World(keys=flowtest_keys, aliases=aliases, retry_delays=(0.1, 0.2)) as world:
        config = world.config()
        config = dataclasses.replace(config, limits=dataclasses.replace(
            config.limits, imap_connections=1))
        results = asyncio.run(inbound.run(config, options=Options(poll_s=1.0, settle_s=0.5)))
        world.check_errors()
        assert world.gmail is not None and world.external is not None
        gmail, external = world.gmail.store, world.external.store
        assert [r.verdict for r in results] == ["pass"] * 50
        # The watcher's connection, then cleanup's, never both at once: within
        # the configured limits.imap_connections = 1, counted by the servers.
        assert gmail.connections_peak == 1 and external.connections_peak == 1
        assert gmail.connections_total <= 2 and external.connections_total <= 2
        assert world.gmail_folder() == [] and len(world.gmail_folder("[Gmail]/Trash")) == 50
        submissions = [e for e in world.truth.events(kind="submitted") if e.party == "external"]
        assert len(submissions) == 50


def _with_limits(config: Config, **limits: object) -> Config:
    return dataclasses.replace(config, limits=dataclasses.replace(config.limits, **limits))


def test_two_runs_in_one_process_share_the_imap_connection_cap(world: World) -> None:
    """limits.imap_connections = 1: two overlapping runs take turns on each
    mailbox instead of opening a second connection; both still pass."""
    assert world.gmail is not None and world.external is not None
    config = _with_limits(world.config(), imap_connections=1)
    peak_before = world.call(_reset_peaks(world))
    assert peak_before == (0, 0)

    async def both() -> list[list[ProbeResult]]:
        return list(await asyncio.gather(
            inbound.run(config, aliases=[config.aliases[0]],
                        options=Options(poll_s=1.0, settle_s=0.2)),
            inbound.run(config, aliases=[config.aliases[1]],
                        options=Options(poll_s=1.0, settle_s=0.2))))

    first, second = asyncio.run(both())
    assert [r.verdict for r in first + second] == ["pass", "pass"]
    assert world.gmail.store.connections_peak == 1
    assert world.external.store.connections_peak == 1


async def _reset_peaks(world: World) -> tuple[int, int]:
    assert world.gmail is not None and world.external is not None
    for store in (world.gmail.store, world.external.store):
        store.connections_peak = store.open_connections
    return world.gmail.store.open_connections, world.external.store.open_connections


def test_send_interval_spaces_the_submissions(world: World) -> None:
    """The sandbox's own clock: each submission reached the provider at least
    limits.send_interval_s after the one before."""
    config = _with_limits(world.config(), send_interval_s=0.3)
    start = time.time()
    results = asyncio.run(inbound.run(config, options=Options(poll_s=1.0, settle_s=0.2)))
    assert [r.verdict for r in results] == ["pass"] * len(config.aliases)
    tokens = {f"<{r.token}@sender.example>" for r in results}
    at = sorted(e.at for e in world.truth.events(kind="submitted")
                if e.at >= start and e.message_id in tokens)
    assert len(at) == len(config.aliases) == 3
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert min(gaps) >= 0.3, gaps


def _history(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_daily_send_budget_refuses_an_outbound_run_before_sending(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    path.write_text(path.read_text() + "\n[limits]\ndaily_sends = 5\n")
    now = time.time()
    rows: list[dict[str, object]] = [
        {"leg": "outbound", "target": "sandbox", "sent_at": now - 3600 * h, "alias": "x"}
        for h in (1, 2, 3)]
    # Not counted: older than a day, the other leg, another target, damaged.
    rows += [{"leg": "outbound", "target": "sandbox", "sent_at": now - 90000},
             {"leg": "inbound", "target": "sandbox", "sent_at": now - 60},
             {"leg": "outbound", "target": "live", "sent_at": now - 60}]
    reports = tmp_path / "reports"
    _history(reports / "history.jsonl", rows)
    with (reports / "history.jsonl").open("a") as f:
        f.write("{damaged\n")
    submitted = len(world.truth.events(kind="submitted"))
    code = cli.main(["run", "-c", str(path), "--leg", "outbound", "--report-dir", str(reports)])
    err = capsys.readouterr().err
    assert code == 2
    assert "limits.daily_sends" in err and "3 outbound probes in the last 24 hours" in err
    assert "budget of 5" in err and "free again at" in err
    assert len(world.truth.events(kind="submitted")) == submitted  # nothing was sent
    # Inbound probes do not go through Gmail's sending: allowed.
    assert cli.main(["run", "-c", str(path), "--leg", "inbound",
                     "--report-dir", str(reports)]) == 0
    # Within the budget: 2 sent + 3 more = 5. The known send-as DMARC failure
    # under p=none is a warning, and warnings exit 0 (docs/scheduled.md).
    _history(reports / "history.jsonl", rows[1:])
    before = len(world.truth.events(kind="submitted"))
    assert cli.main(["run", "-c", str(path), "--leg", "outbound",
                     "--report-dir", str(reports)]) == 0, capsys.readouterr()
    sent = [e for e in world.truth.events(kind="submitted")[before:] if e.party == "gmail"]
    assert len(sent) == len(world.aliases) == 3


def test_the_sandbox_has_no_budget_unless_configured(world: World) -> None:
    config = world.config()
    assert config.limits.daily_budget("sandbox") is None
    assert config.limits.daily_budget("live") == 100
    assert dataclasses.replace(config.limits, daily_sends=0).daily_budget("live") is None


def test_two_processes_share_the_imap_connection_cap(world: World, tmp_path: Path) -> None:
    """The cap holds across processes: two overlapping `flowtest run`s with
    limits.imap_connections = 1 take turns; the servers never see two."""
    assert world.gmail is not None and world.external is not None
    path = world.write_config(tmp_path / "flowtest.toml")
    path.write_text(path.read_text() + "\n[limits]\nimap_connections = 1\n")
    world.call(_reset_peaks(world))
    runs = [subprocess.Popen(
        [sys.executable, "-m", "flowtest.cli", "run", "-c", str(path), "--leg", "inbound",
         "--report-dir", str(tmp_path / f"r{i}")], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    for proc in runs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert world.gmail.store.connections_peak == 1
    assert world.external.store.connections_peak == 1
