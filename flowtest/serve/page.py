"""/ : the live status page. One document, inline CSS and SVG, no script and
no external resource; every piece of text that came from mail, DNS or a
server is HTML-escaped (report.html's rules, whose styles it shares)."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import Any

from flowtest import __version__, i18n
from flowtest.i18n import N_
from flowtest.i18n import gettext as _
from flowtest.report.html import COLORS, CSS, LEGS
from flowtest.report.latency_plot import distribution
from flowtest.serve.states import LegState

STATE_COLORS = {"ok": COLORS["pass"], "warning": COLORS["warn"], "failing": COLORS["fail"],
                "unknown": COLORS["error"]}
_SEVERITY = {"error": COLORS["fail"], "warning": COLORS["warn"], "info": "#59636e"}
# The states in people's words; JSON, SQLite and the metrics keep the English values.
STATE_WORDS = {"ok": N_("ok"), "warning": N_("warning"), "failing": N_("failing"),
               "unknown": N_("unknown")}
# What each kind of run is called on the page (the store keeps the English kind).
RUN_KINDS = {**LEGS, "doctor": N_("DNS check"), "cleanup": N_("cleanup")}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def _badge(text: str, color: str) -> str:
    return f'<span class="badge" style="background:{color}">{_e(text.upper())}</span>'


def _hops(last: dict[str, Any] | None) -> str:
    hops = [h for h in (last or {}).get("hops", []) if h.get("delay_s") is not None]
    if not hops:
        return "<span class=muted>" + _e(_("no hops")) + "</span>"
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
        or "<li class=muted>" + _e(_("nothing to say")) + "</li>"
    return f"<ul>{items}</ul>"


def _th(*labels: str) -> str:
    return "<tr>" + "".join(f"<th>{_e(label)}</th>" for label in labels) + "</tr>"


def _muted(text: str) -> str:
    return f"<p class=muted>{_e(text)}</p>"


def render(*, title: str, vantage: str, states: Sequence[LegState],
           last: dict[tuple[str, str], dict[str, Any] | None],
           latencies: dict[tuple[str, str], list[float]], dns: Sequence[dict[str, Any]],
           runs: Sequence[Any], budget: float, running: dict[str, str]) -> str:
    """The page in the language in use (i18n.active()); only words change with
    it: codes, addresses, times and numbers are the same in every language."""
    rows = []
    for s in states:
        word = _(STATE_WORDS.get(s.state, s.state))
        rows.append(
            f"<tr><td>{_e(_(LEGS.get(s.leg, s.leg)))}</td><td>{_e(s.alias)}</td>"
            f"<td>{_badge(word, STATE_COLORS.get(s.state, '#59636e'))}</td>"
            f"<td>{_e(_when(s.since))}</td><td>{_e(_when(s.updated))}</td>"
            f"<td>{s.failures}</td><td>{_diagnosis(last.get((s.leg, s.alias)))}</td>"
            f"<td>{_hops(last.get((s.leg, s.alias)))}</td></tr>")
    table = ("<table>" + _th(_("leg"), _("alias"), _("state"), _("since"), _("last probe"),
                             _("failures in a row"), _("last diagnosis"),
                             _("hops of the last probe"))
             + "".join(rows) + "</table>" if rows else _muted(_("No probe has finished yet.")))
    plots = "".join(
        "<div>" + distribution(values, title=_(
            "{leg} {alias}: latency of the last {count} probes (s)").format(
                leg=_(LEGS.get(leg, leg)), alias=alias, count=len(values)))
        + "</div>" for (leg, alias), values in sorted(latencies.items()) if values)
    findings = "".join(
        f"<tr><td>{_badge(f.get('severity', '?'), _SEVERITY.get(f.get('severity', ''), '#59636e'))}"
        f"</td><td><code>{_e(f.get('code', ''))}</code></td><td>{_e(f.get('message', ''))}</td>"
        f"<td>{_e(f.get('fix', ''))}</td></tr>" for f in dns)
    dns_html = ("<table>" + _th(_("severity"), _("code"), _("finding"), _("fix"))
                + findings + "</table>" if findings
                else _muted(_("No DNS check yet, or nothing found.")))
    run_rows = "".join(
        f"<tr><td>{_e(_when(r.finished))}</td><td>{_e(_(RUN_KINDS.get(r.kind, r.kind)))}</td>"
        f"<td>{_badge(r.verdict, COLORS.get(r.verdict, '#59636e'))}</td>"
        f"<td>{_e(r.summary)}</td></tr>" for r in runs)
    budget_text = _("no limit") if budget == float("inf") else f"{budget:g}"
    now_running = ", ".join(_("{kind} ({run_id})").format(kind=_(RUN_KINDS.get(k, k)), run_id=v)
                            for k, v in sorted(running.items())) or _("none")
    # The sentence is translated whole, then escaped with the values it carries.
    about = _e(_("flowtest {version} · vantage {vantage} · now {now} · running: {running} · "
                 "outbound sends left in 24 h: {budget}")).format(
        version=_e(__version__), vantage=_e(vantage or "-"), now=_e(_when(time.time())),
        running=_e(now_running), budget=_e(budget_text))
    lang = {"zh": "zh-CN"}.get(i18n.active(), "en")
    # Babel's extractor does not look inside f-strings: every word is named here.
    heads = {"states": _("State per leg and alias"), "latency": _("Latency history"),
             "runs": _("Recent runs"), "metrics": _("metrics")}
    plots = plots or _muted(_("No delivered probe yet."))
    run_head = _th(_("finished"), _("run"), _("verdict"), _("summary"))
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>{_e(title)}</title><style>{CSS}</style></head><body>
<h1>{_e(title)}</h1>
<p class=muted>{about} · <a href="metrics">{_e(heads["metrics"])}</a></p>
<h2>{_e(heads["states"])}</h2>{table}
<h2>{_e(heads["latency"])}</h2>{plots}
<h2>DNS</h2>{dns_html}
<h2>{_e(heads["runs"])}</h2><table>{run_head}
{run_rows}</table>
</body></html>
"""
