"""Ctrl-C, SIGTERM and SIGKILL in the middle of a run (issue 14, item 4), with
real `flowtest run` processes against the session's sandbox.

The run is caught waiting: Cloudflare drops every forwarded copy
(forward-drop), and billing@ has no routing rule, so its probe bounces. Once
the run has printed that bounce, it has sent three probes (their copies are in
the probe account's Sent folder) and read one delivery report: everything it
must move if it is stopped now, and it would wait 120 s more on its own."""

from __future__ import annotations

import asyncio
import email
import signal
import time
from pathlib import Path

import pytest

from flowtest import config as cfg
from flowtest.flows import sweep
from flowtest.mail import bounce, probe
from flowtest.sandbox import World
from flowtest.sandbox import external as ext
from flowtest.sandbox import gmail as gm
from tests.processes import FlowtestProcess

pytestmark = pytest.mark.faults("forward-drop", "no-rule=billing@example.me")

BOUNCED = "billing@example.me"
FOLDERS = {"gmail": (gm.INBOX, gm.SPAM, gm.SENT), "external": (ext.INBOX, ext.SENT)}
TRASH = {"gmail": gm.TRASH, "external": ext.TRASH}


def _tokens(world: World, party: str, folder: str) -> set[str]:
    """Every flowtest token a folder holds: probes by header, reports by content."""
    read = world.gmail_folder if party == "gmail" else world.probe_folder
    found: set[str] = set()
    for _uid, raw, _flags in read(folder):
        header = email.message_from_bytes(raw).get("X-Flowtest-Probe")
        found |= {str(header).strip()} if header else bounce.probe_tokens(raw)
    return found


def _outside_trash(world: World) -> set[str]:
    return {t for party, folders in FOLDERS.items() for f in folders
            for t in _tokens(world, party, f)}


def _in_trash(world: World) -> set[str]:
    return {t for party, folder in TRASH.items() for t in _tokens(world, party, folder)}


class Run(FlowtestProcess):
    """`flowtest run` in a process of its own; its stderr read line by line."""

    def __init__(self, world: World, tmp_path: Path) -> None:
        path = world.write_config(tmp_path / "flowtest.toml")
        self.config = cfg.load(path)
        super().__init__(["run", "-c", str(path), "--leg", "inbound", "--timeout", "120",
                          "--report-dir", str(tmp_path / "reports")])

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """The timeout is far below the run's own 120 s: an exit within it is
        the interruption's doing."""
        return super().finish(timeout)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_moves_its_probes_then_exits(
        world: World, tmp_path: Path, signum: signal.Signals, code: int) -> None:
    before = _outside_trash(world)
    with Run(world, tmp_path) as run:
        run.wait_for(f"{BOUNCED}: bounce")
        mine = _outside_trash(world) - before
        assert len(mine) == 3  # three probes sent (Sent copies); one bounce is about one
        run.proc.send_signal(signum)
        exit_code, err = run.finish()
    assert exit_code == code, err
    assert signum.name in err  # it says what stopped it
    assert _outside_trash(world) - before == set()
    assert mine <= _in_trash(world)


def test_a_second_signal_exits_at_once(world: World, tmp_path: Path) -> None:
    """Both signals are made pending while the process is stopped, so the
    second is handled before any cleanup could start (which one comes first
    is the kernel's choice): the exit is the second's, and the probes stay."""
    before = _outside_trash(world)
    with Run(world, tmp_path) as run:
        run.wait_for(f"{BOUNCED}: bounce")
        run.proc.send_signal(signal.SIGSTOP)
        run.proc.send_signal(signal.SIGINT)
        run.proc.send_signal(signal.SIGTERM)
        run.proc.send_signal(signal.SIGCONT)
        exit_code, err = run.finish()
    assert exit_code in (130, 143), err
    assert "flowtest cleanup" in err
    # Left behind, as the user asked; the stale sweep takes them later.
    _swept_later(world, run.config, _outside_trash(world) - before)


def test_a_killed_run_leaves_only_what_flowtest_cleanup_moves(world: World,
                                                              tmp_path: Path) -> None:
    before = _outside_trash(world)
    with Run(world, tmp_path) as run:
        run.wait_for(f"{BOUNCED}: bounce")
        run.proc.kill()
        assert run.proc.wait(timeout=30) == -signal.SIGKILL
    _swept_later(world, run.config, _outside_trash(world) - before)


def _swept_later(world: World, config: cfg.Config, left: set[str]) -> None:
    """What a stopped run left is its own probes, and `flowtest cleanup` (the
    stale sweep, run here as if the run were old enough) moves all of it and
    only it."""
    assert len(left) == 3 and len({t.rsplit("-", 1)[0] for t in left}) == 1  # one run's
    others = _outside_trash(world) - left
    age = sweep.shortest_safe_age(config)
    reports = asyncio.run(sweep.stale(config, age, now=time.time() + age + 60))
    assert all(r.error is None for r in reports)
    assert _outside_trash(world) == others - {t for t in others if _stale(t, age)}
    assert left <= _in_trash(world)


def _stale(token: str, age: float) -> bool:
    return probe.is_stale(token, time.time() + age + 60, age)
