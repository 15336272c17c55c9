"""Each run writes reports/<time>-<run id>/ (report.json, junit.xml,
report.html) and appends its probes to reports/history.jsonl."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowtest.report import history, html, json_report, junit

HISTORY = "history.jsonl"


def write(report: dict[str, Any], report_dir: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = report_dir / f"{stamp}-{report['run_id'] or 'run'}"
    folder.mkdir(parents=True, exist_ok=True)
    json_report.write(report, folder / "report.json")
    junit.write(report, folder / "junit.xml")
    history.append(report_dir / HISTORY, report)
    html.write(report, history.read(report_dir / HISTORY), folder / "report.html")
    return folder


def latest(report_dir: Path) -> Path | None:
    folders = sorted(p for p in report_dir.glob("*/report.json"))
    return folders[-1].parent if folders else None


def rebuild(report_dir: Path) -> Path | None:
    """Rebuild the latest run's report.html with the whole history."""
    folder = latest(report_dir)
    if folder is None:
        return None
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    return html.write(report, history.read(report_dir / HISTORY), folder / "report.html")
