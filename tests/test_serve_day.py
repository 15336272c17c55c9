"""A simulated day of a real `flowtest serve` process: the schedule scaled
down to seconds, faults coming and going every "hour". After each change the
state must follow (in its database), nothing may be left in the mailboxes,
and the process's memory stays steady (RSS, first third against last third,
loosely: a leak grows with every run)."""

from __future__ import annotations

import itertools
import sqlite3
import time
from pathlib import Path

import pytest

from flowtest.sandbox import World
from flowtest.serve.store import FILE
from tests.test_serve import probes_left
from tests.test_serve_process import STOP_BOUND_S, Serve, write_config

# Each "hour": the faults in force, and what the inbound state must become.
HOURS = [((), "ok"), (("spam",), "failing"), ((), "ok"),
         (("no-rule=hello@example.me",), "failing"), (("forward-delay=6",), "warning")] * 4
DAY = """
[serve]
inbound_every_s = 1
outbound_every_s = 2
doctor_every_s = 5
cleanup_every_s = 7
jitter = 0.2
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def wait_for_a_run_started_after(serve: Serve, db_file: Path, changed_at: float) -> None:
    """Until a finished inbound run started after ``changed_at`` (both times
    are this machine's clock: the process records ``time.time()``)."""
    while True:
        run_id = serve.wait_for("run inbound").split("run inbound ")[1].split(":")[0]
        with sqlite3.connect(db_file) as db:
            (started,) = db.execute("SELECT started FROM runs WHERE id=?",
                                    (run_id,)).fetchone()
        if started > changed_at:
            return


@pytest.mark.slow
def test_a_simulated_day(world: World, tmp_path: Path) -> None:
    before = probes_left(world)
    conf = write_config(world, tmp_path / "flowtest.toml", DAY)
    reports = tmp_path / "reports"
    alias = world.config().aliases[0].address
    sizes: list[int] = []
    changes: list[tuple[str, float]] = []
    with Serve(["-c", str(conf), "--report-dir", str(reports)], tmp_path) as serve:
        for faults, want in HOURS:
            world.clear_fault()
            for spec in faults:
                world.set_fault(spec)
            # A run that started before the change may still see the old
            # world: wait for the first one that started after it.
            wait_for_a_run_started_after(serve, reports / FILE, time.time())
            with sqlite3.connect(reports / FILE) as db:
                state, since = db.execute("SELECT state, since FROM states WHERE leg='inbound' "
                                          "AND alias=?", (alias,)).fetchone()
            assert state == want, (faults, "".join(serve.err[-5:]))
            if not changes or changes[-1][0] != want:
                changes.append((want, since))
            sizes.append(rss_kb(serve.proc.pid))
        world.clear_fault()
        serve.wait_for("run inbound")
        serve.proc.terminate()
        code, err = serve.finish(STOP_BOUND_S)
    assert code == 0, err
    assert "run doctor" in err and "run outbound" in err and "run cleanup" in err
    # Each state change is recorded once, with its own since-when.
    assert [w for w, _ in changes] == [w for _, w in HOURS]
    assert all(a[1] < b[1] for a, b in itertools.pairwise(changes))
    assert probes_left(world, before) == set()
    third = len(sizes) // 3
    first, last = sum(sizes[:third]) / third, sum(sizes[-third:]) / third
    assert last < first * 1.25 + 8_000, sizes  # kB
