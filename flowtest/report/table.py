"""The human-readable table of a run (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from flowtest.results import ProbeResult

STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "error": "bold magenta"}


def _auth_cell(p: ProbeResult) -> str:
    if p.auth is None or not p.auth.found:
        return "-"
    a = p.auth
    return (f"spf={a.spf.result} dkim={a.dkim.result}"
            f"{'✓' if a.dkim.aligned else ''} dmarc={a.dmarc.result} arc={a.arc.result}")


def render(console: Console, results: list[ProbeResult], *, title: str) -> None:
    table = Table(title=title, show_lines=True, expand=False)
    table.add_column("leg")
    table.add_column("alias")
    table.add_column("verdict")
    table.add_column("folder")
    table.add_column("latency", justify="right")
    table.add_column("auth (trusted)")
    table.add_column("diagnosis", overflow="fold", max_width=60)
    for p in results:
        latency = f"{p.latency_s:.3f} s" if p.latency_s is not None else "-"
        table.add_row(p.leg, p.alias, f"[{STYLE[p.verdict]}]{p.verdict.upper()}[/]",
                      p.folder or "-", latency, _auth_cell(p), "\n".join(p.diagnosis))
    console.print(table)
