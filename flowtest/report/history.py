"""reports/history.jsonl: one line per probe, appended by every run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowtest.secrets import redact


def append(path: Path, report: dict[str, Any]) -> int:
    """Append every probe of a report; returns how many lines were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for probe in report["probes"]:
        lines.append(json.dumps({
            "run_id": report["run_id"], "target": report["target"],
            "finished_at": report["finished_at"], "leg": probe["leg"], "alias": probe["alias"],
            "verdict": probe["verdict"], "latency_s": probe["latency_s"],
            "sent_at": probe["sent_at"], "folder": probe["folder"],
            "hops": [{"by": h["by"], "delay_s": h["delay_s"]} for h in probe["hops"]],
            "auth": {k: v["result"] for k, v in probe["auth"].items()},
            "codes": [f["code"] for f in probe.get("findings", ())],
        }, ensure_ascii=False))
    if lines:
        # One write of whole lines in append mode: concurrent runs do not interleave.
        data = redact("\n".join(lines)) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data.encode("utf-8"))
        finally:
            os.close(fd)
    return len(lines)


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every readable line; a damaged line is skipped, never fatal."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                yield row


def recent_sends(path: Path, *, leg: str, target: str, now: float,
                 window_s: float = 86400.0) -> list[float]:
    """When each probe of this leg and target was sent within the window:
    what the daily sending budget (limits.daily_sends) is counted from."""
    out = []
    for row in read(path):
        sent = row.get("sent_at")
        if row.get("leg") == leg and row.get("target") == target \
                and isinstance(sent, int | float) and now - window_s < sent <= now:
            out.append(float(sent))
    return sorted(out)


@dataclass(frozen=True)
class Budget:
    """The outbound send budget (limits.daily_sends) against the history: what
    ``flowtest run``, the pytest plugin and ``flowtest serve`` refuse on."""

    budget: int
    used: int                 # outbound probes sent in the last 24 hours
    wanted: int
    free_at: float | None     # when enough is free again (None: never, wanted > budget)

    @property
    def exceeded(self) -> bool:
        return self.used + self.wanted > self.budget


def send_budget(path: Path | None, *, budget: int, target: str, wanted: int, now: float,
                also_sent: Sequence[float] = ()) -> Budget:
    """The budget for ``wanted`` more outbound probes, counting the history at
    ``path`` (None: no history kept) and ``also_sent`` (probes of this session
    not yet written there)."""
    kept = recent_sends(path, leg="outbound", target=target, now=now) if path else []
    sent = sorted([*kept, *also_sent])
    over = len(sent) + wanted - budget
    free_at = (sent[over - 1] + 86400.0 if 0 < over <= len(sent) and wanted <= budget
               else None)
    return Budget(budget, len(sent), wanted, free_at)
