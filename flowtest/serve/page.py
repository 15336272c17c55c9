"""/ : the live status page. One document, inline CSS and SVG, no script and
no external resource; every piece of text that came from mail, DNS or a
server is HTML-escaped (report.html's rules, whose styles it shares)."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

from flowtest import __version__
from flowtest.report.html import COLORS, CSS
from flowtest.report.latency_plot import distribution
from flowtest.serve.states import LegState

STATE_COLORS = {"ok": COLORS["pass"], "warning": COLORS["warn"], "failing": COLORS["fail"],
                "unknown": COLORS["error"]}
_SEVERITY = {"error": COLORS["fail"], "warning": COLORS["warn"], "info": "#59636e"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def _badge(text: str, color: str) -> str:
    return f'<span class="badge" style="background:{color}">{_e(text.upper())}</span>'


def _hops(last: dict[str, Any] | None) -> str:
    hops = [h for h in (last or {}).get("hops", []) if h.get("delay_s") is not None]
    if not hops:
        return "<span class=muted>no hops</span>"
    longest = max(max(float(h["delay_s"]) for h in hops), 0.001)
    rows = "".join(
        f'<tr><td>{_e(h.get("by", "?"))}</td><td><span class="bar" style="width:'
        f'{max(1, int(200 * float(h["delay_s"]) / longest))}px"></span> '
        f'{float(h["delay_s"]):.1f} s</td></tr>' for h in hops)
    return f'<table class="hops">{rows}</table>'


def _diagnosis(last: dict[str, Any] | None) -> str:
    findings = (last or {}).get("findings", [])
    items = "".join(f"<li><code>{_e(f.get('code', ''))}</code> {_e(f.get('text', ''))}</li>"
                    for f in findings if f.get("verdict") != "pass") \
        or "<li class=muted>nothing to say</li>"
    return f"<ul>{items}</ul>"


def render(*, title: str, vantage: str, states: Sequence[LegState],
           last: dict[tuple[str, str], dict[str, Any] | None],
           latencies: dict[tuple[str, str], list[float]], dns: Sequence[dict[str, Any]],
           runs: Sequence[Any], budget: float, running: dict[str, str]) -> str:
    rows = []
    for s in states:
        rows.append(
            f"<tr><td>{_e(s.leg)}</td><td>{_e(s.alias)}</td>"
            f"<td>{_badge(s.state, STATE_COLORS.get(s.state, '#59636e'))}</td>"
            f"<td>{_e(_when(s.since))}</td><td>{_e(_when(s.updated))}</td>"
            f"<td>{s.failures}</td><td>{_diagnosis(last.get((s.leg, s.alias)))}</td>"
            f"<td>{_hops(last.get((s.leg, s.alias)))}</td></tr>")
    table = ("<table><tr><th>leg</th><th>alias</th><th>state</th><th>since</th>"
             "<th>last probe</th><th>failures in a row</th><th>last diagnosis</th>"
             "<th>hops of the last probe</th></tr>" + "".join(rows) + "</table>"
             if rows else "<p class=muted>No probe has finished yet.</p>")
    plots = "".join(
        "<div>" + distribution(
            values, title=f"{leg} {alias}: latency of the last {len(values)} probes (s)")
        + "</div>" for (leg, alias), values in sorted(latencies.items()) if values)
    findings = "".join(
        f"<tr><td>{_badge(f.get('severity', '?'), _SEVERITY.get(f.get('severity', ''), '#59636e'))}"
        f"</td><td><code>{_e(f.get('code', ''))}</code></td><td>{_e(f.get('message', ''))}</td>"
        f"<td>{_e(f.get('fix', ''))}</td></tr>" for f in dns)
    dns_html = (f"<table><tr><th>severity</th><th>code</th><th>finding</th><th>fix</th></tr>"
                f"{findings}</table>" if findings else "<p class=muted>No DNS check yet, or "
                "nothing found.</p>")
    run_rows = "".join(
        f"<tr><td>{_e(_when(r.finished))}</td><td>{_e(r.kind)}</td>"
        f"<td>{_badge(r.verdict, COLORS.get(r.verdict, '#59636e'))}</td>"
        f"<td>{_e(r.summary)}</td></tr>" for r in runs)
    budget_text = "no limit" if budget == float("inf") else f"{budget:g}"
    now_running = ", ".join(f"{_e(k)} ({_e(v)})" for k, v in sorted(running.items())) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>{_e(title)}</title><style>{CSS}</style></head><body>
<h1>{_e(title)}</h1>
<p class=muted>flowtest {_e(__version__)} · vantage {_e(vantage or '-')} · now
{_e(_when(time.time()))} · running: {now_running} · outbound sends left in 24 h:
{_e(budget_text)} · <a href="metrics">metrics</a></p>
<h2>State per leg and alias</h2>{table}
<h2>Latency history</h2>{plots or "<p class=muted>No delivered probe yet.</p>"}
<h2>DNS</h2>{dns_html}
<h2>Recent runs</h2><table><tr><th>finished</th><th>run</th><th>verdict</th>
<th>summary</th></tr>{run_rows}</table>
</body></html>
"""
