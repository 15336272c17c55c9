"""The human-readable summary of a run (rich): a table, then the diagnoses in
full sentences, so nothing a person needs is cut off in a narrow terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from flowtest.model import ProbeResult

STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "error": "bold magenta"}


def _auth_cell(p: ProbeResult) -> str:
    if p.auth is None or not p.auth.found:
        return "-"
    a = p.auth
    aligned = " (aligned)" if a.dkim.aligned or a.spf.aligned else ""
    return (f"spf={a.spf.result} dkim={a.dkim.result} dmarc={a.dmarc.result} "
            f"arc={a.arc.result}{aligned}")


def render(console: Console, results: list[ProbeResult], *, title: str) -> None:
    table = Table(title=title, expand=False)
    for name, justify in (("leg", "left"), ("alias", "left"), ("verdict", "left"),
                          ("folder", "left"), ("latency", "right"), ("auth (trusted)", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for p in results:
        latency = f"{p.latency_s:.3f} s" if p.latency_s is not None else "-"
        table.add_row(p.leg, p.alias, f"[{STYLE[p.verdict]}]{p.verdict.upper()}[/]",
                      p.folder or "-", latency, _auth_cell(p))
    console.print(table)
    for p in results:
        console.print(f"[{STYLE[p.verdict]}]{p.verdict.upper():5}[/] {p.leg} {p.alias}")
        for sentence in p.diagnosis:
            console.print(f"      {sentence}", soft_wrap=True)
