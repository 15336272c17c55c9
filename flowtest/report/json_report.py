"""The JSON report of a run, as docs/report.schema.json describes it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowtest import __version__
from flowtest.model import ProbeResult, Verdict, worst
from flowtest.secrets import redact


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def build(*, target: str, started_at: float, finished_at: float,
          probes: list[ProbeResult], dns: list[dict[str, Any]] | None = None,
          insecure: bool = False, run_id: str = "",
          plaintext: Sequence[str] = (), dns_checked: bool = True) -> dict[str, Any]:
    """The run's report (docs/report.schema.json). ``plaintext`` names the
    endpoints reached with no TLS at all: every output says so."""
    verdicts: list[Verdict] = [p.verdict for p in probes]
    verdicts += [("fail" if f.get("severity") == "error" else "warn")
                 for f in (dns or []) if f.get("severity") in ("error", "warning")]
    return {
        "flowtest_version": __version__,
        "run_id": run_id,
        "target": target,
        "insecure": insecure,
        "plaintext": list(plaintext),
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "verdict": worst(verdicts),
        "probes": [p.to_json() for p in probes],
        "dns_checked": dns_checked,
        "dns": list(dns or []),
    }


def write(report: dict[str, Any], path: Path | str) -> Path:
    """Write atomically, secrets scrubbed, so a reader never sees half a report."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = redact(json.dumps(report, indent=2, ensure_ascii=False)) + "\n"
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target
