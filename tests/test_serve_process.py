"""Real `flowtest serve` processes against the session's sandbox: SIGKILL
loses at most the run in flight, SIGHUP refuses a bad config and keeps the
old, SIGTERM cleans up the probes in flight and exits in time.

Each test waits for the process's own log lines (one per run), read from
its stderr, and for the sandbox's ground truth; never for a fixed time."""

from __future__ import annotations

import email
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from flowtest.mail import bounce
from flowtest.sandbox import World
from flowtest.sandbox import external as ext
from flowtest.sandbox import gmail as gm
from flowtest.serve.store import FILE
from tests.processes import FlowtestProcess

WAIT_S = 120.0  # a bound for a busy machine, never a means to sync
# The promise of docs/serve.md: SIGTERM to exit in at most 10 s.
STOP_BOUND_S = 10.0
FAST = """
[serve]
inbound_every_s = 1
outbound_every_s = 3600
doctor_every_s = 3600
cleanup_every_s = 3600
jitter = 0
"""


class Serve(FlowtestProcess):
    """`flowtest serve` in a process of its own; its stderr read line by line."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        super().__init__(["serve", "--listen", "127.0.0.1:0", *args], cwd=cwd, wait_s=WAIT_S)
        self.url = ""

    def __enter__(self) -> Serve:
        line = self.wait_for("listening on http://")
        self.url = line.split("listening on ")[1].split()[0].rstrip("/")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_config(world: World, path: Path, extra: str = FAST) -> Path:
    world.write_config(path)
    with path.open("a", encoding="utf-8") as f:
        f.write(extra)
    return path


def test_sigkill_loses_at_most_the_run_in_flight(world: World, tmp_path: Path) -> None:
    conf = write_config(world, tmp_path / "flowtest.toml")
    reports = tmp_path / "reports"
    args = ["-c", str(conf), "--report-dir", str(reports)]
    with Serve(args, tmp_path) as serve:
        serve.wait_for("run inbound")
        serve.wait_for("run inbound")
        serve.proc.send_signal(signal.SIGKILL)
        serve.proc.wait()
    db = sqlite3.connect(reports / FILE)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    runs = db.execute("SELECT id FROM runs WHERE kind='inbound'").fetchall()
    assert len(runs) >= 2
    for (run_id,) in runs:  # every run is whole: its result rows came with it
        n = db.execute("SELECT count(*) FROM results WHERE run_id=?", (run_id,)).fetchone()[0]
        assert n == len(world.config().aliases), run_id
    db.close()
    with Serve(args, tmp_path) as serve:  # memory across restarts: it goes on from there
        serve.wait_for("run inbound")
        serve.proc.send_signal(signal.SIGTERM)
        code, err = serve.finish(STOP_BOUND_S)
    assert code == 0, err
    db = sqlite3.connect(reports / FILE)
    assert db.execute("SELECT count(*) FROM runs WHERE kind='inbound'").fetchone()[0] > len(runs)
    assert {r[0] for r in db.execute("SELECT state FROM states WHERE leg='inbound'")} == {"ok"}


def test_sighup_refuses_a_bad_config_and_keeps_the_old(world: World, tmp_path: Path) -> None:
    conf = write_config(world, tmp_path / "flowtest.toml")
    good = conf.read_text(encoding="utf-8")
    with Serve(["-c", str(conf), "--report-dir", str(tmp_path / "r")], tmp_path) as serve:
        serve.wait_for("run inbound")
        conf.write_text(good.replace("inbound_every_s = 1", "inbound_every_s = \"often\""),
                        encoding="utf-8")
        serve.proc.send_signal(signal.SIGHUP)
        refused = serve.wait_for("config reload refused")
        assert "serve.inbound_every_s" in refused
        serve.wait_for("run inbound")  # still probing, on the old config
        conf.write_text(good, encoding="utf-8")
        serve.proc.send_signal(signal.SIGHUP)
        serve.wait_for("config reloaded")
        serve.wait_for("run inbound")
        serve.proc.send_signal(signal.SIGTERM)
        code, err = serve.finish(STOP_BOUND_S)
    assert code == 0, err


def _outside_trash(world: World) -> tuple[set[str], int]:
    """Tokens of probes and reports outside Trash, and how many reports."""
    found: set[str] = set()
    reports = 0
    for read, folders in ((world.gmail_folder, (gm.INBOX, gm.SPAM, gm.SENT)),
                          (world.probe_folder, (ext.INBOX, ext.SENT))):
        for folder in folders:
            for _uid, raw, _flags in read(folder):
                header = email.message_from_bytes(raw).get("X-Flowtest-Probe")
                if header:
                    found.add(str(header).strip())
                    continue
                tokens = bounce.probe_tokens(raw)
                reports += bool(tokens)
                found |= tokens
    return found, reports


@pytest.mark.faults("forward-drop", "no-rule=billing@example.me")
def test_sigterm_cleans_up_the_probes_in_flight_and_exits_in_time(world: World,
                                                                 tmp_path: Path) -> None:
    """Cloudflare drops the copies and bounces billing@: once the bounce is in
    the probe mailbox the run is waiting (for 20 s more); SIGTERM then."""
    before, reports_before = _outside_trash(world)
    changed = threading.Event()
    world.truth.subscribe(lambda event: changed.set())
    conf = write_config(world, tmp_path / "flowtest.toml")
    with Serve(["-c", str(conf), "--report-dir", str(tmp_path / "r")], tmp_path) as serve:
        deadline = time.monotonic() + WAIT_S
        while True:  # woken by each event of the sandbox
            found, reports = _outside_trash(world)
            if reports > reports_before and len(found - before) >= 3:
                break
            assert time.monotonic() < deadline, "no bounce in the probe mailbox"
            changed.wait(timeout=5)
            changed.clear()
        serve.proc.send_signal(signal.SIGTERM)
        code, err = serve.finish(STOP_BOUND_S)
    assert code == 0, err
    assert "stopping on SIGTERM" in err
    assert _outside_trash(world)[0] - before == set(), err
