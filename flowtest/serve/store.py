"""The service's memory: an SQLite file beside the reports (serve.sqlite3).

WAL journal, synchronous=FULL, and one transaction per run: a crash or a
SIGKILL loses at most the run in flight and never leaves half a run (SQLite's
atomic commit, https://sqlite.org/atomiccommit.html). Every value written is
already redacted by the caller's result shapes; rows are plain JSON.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowtest.model import ProbeResult
from flowtest.secrets import redact
from flowtest.serve.states import LegState

FILE = "serve.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, started REAL NOT NULL, finished REAL NOT NULL,
  verdict TEXT NOT NULL, summary TEXT NOT NULL, on_demand INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS results (
  run_id TEXT NOT NULL REFERENCES runs(id), leg TEXT NOT NULL, alias TEXT NOT NULL,
  verdict TEXT NOT NULL, latency_s REAL, sent_at REAL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS results_by_alias ON results(leg, alias, sent_at);
CREATE TABLE IF NOT EXISTS states (
  leg TEXT NOT NULL, alias TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL,
  failures INTEGER NOT NULL, code TEXT NOT NULL, detail TEXT NOT NULL, updated REAL NOT NULL,
  PRIMARY KEY (leg, alias));
CREATE TABLE IF NOT EXISTS sends (at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Run:
    id: str
    kind: str              # inbound, outbound, doctor, cleanup
    started: float
    finished: float
    verdict: str
    summary: str
    on_demand: bool = False


class Store:
    """One connection, used from the event loop's thread only (each write is
    a few milliseconds: not worth a thread of its own)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def record(self, run: Run, results: Sequence[ProbeResult], states: Sequence[LegState], *,
               meta: dict[str, Any] | None = None) -> None:
        """The whole run, or nothing of it."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?)",
                       (run.id, run.kind, run.started, run.finished, run.verdict,
                        redact(run.summary), int(run.on_demand)))
            db.executemany("INSERT INTO results VALUES (?,?,?,?,?,?,?)", [
                (run.id, r.leg, r.alias, r.verdict, r.latency_s, r.sent_at,
                 redact(json.dumps(r.to_json(), ensure_ascii=False))) for r in results])
            db.executemany("INSERT INTO sends VALUES (?)", [
                (r.sent_at if r.sent_at is not None else run.started,)
                for r in results if r.leg == "outbound"])
            db.executemany("INSERT OR REPLACE INTO states VALUES (?,?,?,?,?,?,?,?)", [
                (s.leg, s.alias, s.state, s.since, s.failures, s.code, redact(s.detail),
                 s.updated) for s in states])
            for key, value in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)",
                           (key, redact(json.dumps(value, ensure_ascii=False))))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def states(self) -> list[LegState]:
        rows = self.db.execute("SELECT leg, alias, state, since, failures, code, detail, updated "
                               "FROM states ORDER BY leg, alias").fetchall()
        return [LegState(*row) for row in rows]

    def runs(self, limit: int = 50) -> list[Run]:
        rows = self.db.execute("SELECT id, kind, started, finished, verdict, summary, on_demand "
                               "FROM runs ORDER BY finished DESC LIMIT ?", (limit,)).fetchall()
        return [Run(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6])) for row in rows]

    def count_runs(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM runs").fetchone()[0])

    def latencies(self, leg: str, alias: str, limit: int = 200) -> list[float]:
        rows = self.db.execute(
            "SELECT latency_s FROM results WHERE leg=? AND alias=? AND latency_s IS NOT NULL "
            "ORDER BY sent_at DESC LIMIT ?", (leg, alias, limit)).fetchall()
        return [float(r[0]) for r in reversed(rows)]

    def last_result(self, leg: str, alias: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM results WHERE leg=? AND alias=? "
                              "ORDER BY rowid DESC LIMIT 1", (leg, alias)).fetchone()
        return json.loads(row[0]) if row else None

    def sends_since(self, since: float) -> int:
        return int(self.db.execute("SELECT count(*) FROM sends WHERE at > ?",
                                   (since,)).fetchone()[0])

    def forget_sends_before(self, before: float) -> None:
        self.db.execute("DELETE FROM sends WHERE at <= ?", (before,))

    def meta(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None


def budget_left(store: Store, budget: int | None, *, now: float | None = None) -> float:
    """Outbound sends left in the last 24 hours (inf when unlimited)."""
    if budget is None:
        return float("inf")
    at = time.time() if now is None else now
    return float(max(0, budget - store.sends_since(at - 86400.0)))
