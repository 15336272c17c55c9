"""The human-readable summary of a run (rich): a table, then the diagnoses in
full sentences, so nothing a person needs is cut off in a narrow terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

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
        # Text, never markup: aliases, folders and sentences come from configs and servers.
        table.add_row(Text(p.leg), Text(p.alias), Text(p.verdict.upper(), STYLE[p.verdict]),
                      Text(p.folder or "-"), latency, Text(_auth_cell(p)))
    console.print(table)
    for p in results:
        console.print(Text.assemble((f"{p.verdict.upper():5}", STYLE[p.verdict]),
                                    f" {p.leg} {p.alias}"))
        for sentence in p.diagnosis:
            console.print(Text(f"      {sentence}"), soft_wrap=True)
