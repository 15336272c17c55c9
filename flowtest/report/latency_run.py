"""Where a latency run keeps what it measured, probe by probe: its folder
(reports/<time>-<run id>/) with probes.jsonl, one full probe per line written
as each completes, and reports/latency-run.json, the plan of the run not yet
finished, which --resume reads. Each probe also goes to history.jsonl at once.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowtest.model import Hop, ProbeResult
from flowtest.report import history, html, json_report, junit
from flowtest.secrets import redact

PLAN = "latency-run.json"
JOURNAL = "probes.jsonl"
HISTORY = "history.jsonl"


def new_folder(report_dir: Path, run_id: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = report_dir / f"{stamp}-{run_id}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_plan(report_dir: Path, plan: dict[str, Any], folder: Path) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / PLAN
    tmp = path.with_name(f".{PLAN}.tmp")
    tmp.write_text(json.dumps({**plan, "folder": folder.name}, indent=2) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def load_plan(report_dir: Path) -> tuple[dict[str, Any], Path] | None:
    """The unfinished run's plan and folder, or None."""
    path = report_dir / PLAN
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("folder"), str):
        return None
    folder = report_dir / Path(data["folder"]).name   # never a path out of report_dir
    return data, folder


def finish_plan(report_dir: Path) -> None:
    (report_dir / PLAN).unlink(missing_ok=True)


def record(folder: Path, report_dir: Path, probe: ProbeResult, *, run_id: str,
           target: str) -> None:
    """One probe, kept twice: in full in the run's journal, and in the history."""
    data = probe.to_json()
    data["hops"] = [{**h.to_json(), "resolution_s": h.resolution_s} for h in probe.hops]
    line = redact(json.dumps(data, ensure_ascii=False)) + "\n"
    fd = os.open(folder / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    history.append(report_dir / HISTORY, {
        "run_id": run_id, "target": target, "probes": [data],
        "finished_at": json_report._iso(time.time())})


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _hop(h: object) -> Hop | None:
    if not isinstance(h, dict):
        return None
    res = _num(h.get("resolution_s"))
    at = _num(h.get("at"))
    if res is None:   # written before resolutions were kept
        res = 0.001 if h.get("source") == "X-Received" or (at is not None and at % 1) else 1.0
    return Hop(str(h.get("by") or ""), str(h.get("from") or ""), at, _num(h.get("delay_s")),
               str(h.get("source") or "Received"), bool(h.get("clock_skew")), res)


def read_journal(folder: Path) -> list[ProbeResult]:
    """The run's probes so far; a damaged line is skipped."""
    out = []
    for row in history.read(folder / JOURNAL):
        leg = row.get("leg")
        verdict = row.get("verdict")
        if leg not in ("inbound", "outbound") or verdict not in ("pass", "warn", "fail",
                                                                 "error"):
            continue
        hops = tuple(h for h in map(_hop, row.get("hops") or []) if h is not None)
        out.append(ProbeResult(
            leg=leg, alias=str(row.get("alias") or ""), token=str(row.get("token") or ""),
            verdict=verdict, delivered=bool(row.get("delivered")),
            folder=row.get("folder") if isinstance(row.get("folder"), str) else None,
            latency_s=_num(row.get("latency_s")), hops=hops,
            diagnosis=tuple(str(d) for d in row.get("diagnosis") or []),
            sent_at=_num(row.get("sent_at")), seen_at=_num(row.get("seen_at"))))
    return out


def journal_rows(folder: Path) -> list[dict[str, Any]]:
    """The run's probes as the JSON report holds them (hops without the
    journal's own resolution_s)."""
    out = []
    for row in history.read(folder / JOURNAL):
        if "leg" in row and "token" in row:
            row["hops"] = [{k: v for k, v in h.items() if k != "resolution_s"}
                           for h in row.get("hops") or [] if isinstance(h, dict)]
            out.append(row)
    return out


def write_folder(folder: Path, report_dir: Path, report: dict[str, Any]) -> Path:
    """report.json, junit.xml and report.html of the run (its probes are in
    the history already, one by one)."""
    json_report.write(report, folder / "report.json")
    junit.write(report, folder / "junit.xml")
    html.write(report, history.read(report_dir / HISTORY), folder / "report.html")
    return folder


def rows_of_run(report_dir: Path, run_id: str) -> int:
    return sum(1 for row in history.read(report_dir / HISTORY) if row.get("run_id") == run_id)
