"""report.html: one self-contained file (inline CSS and SVG, no script, no
external resource) that works offline: summary, DNS, per-probe auth table,
per-hop latency bars, and the latency history over time."""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from flowtest import i18n
from flowtest.i18n import N_
from flowtest.i18n import gettext as _
from flowtest.secrets import redact

# The legs in people's words (as in report.table, which imports rich); the
# JSON keeps "inbound"/"outbound".
LEGS = {"inbound": N_("inbound"), "outbound": N_("outbound")}
COLORS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "error": "#8250df"}
CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","Noto Sans SC","PingFang SC","Microsoft YaHei",
sans-serif;margin:2rem;color:#1f2328;max-width:72rem}
h1{margin-bottom:.2rem} .muted{color:#59636e} .badge{color:#fff;border-radius:4px;
padding:.1rem .5rem;font-weight:600} table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border-bottom:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} .insecure{background:#cf222e;color:#fff;padding:.5rem;font-weight:700}
.bar{height:.9rem;background:#0969da;display:inline-block;vertical-align:middle}
.hops td{border:none;padding:.1rem .5rem} svg{background:#f6f8fa;border:1px solid #d1d9e0}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(verdict: str) -> str:
    return f'<span class="badge" style="background:{COLORS.get(verdict, "#59636e")}">' \
           f"{_e(verdict.upper())}</span>"


def _auth(auth: dict[str, Any]) -> str:
    cells = []
    for method in ("spf", "dkim", "dmarc", "arc"):
        r = auth.get(method, {})
        aligned = " ✓" + _("aligned") if r.get("aligned") else ""
        cells.append(f"<td>{_e(r.get('result', '-'))} <span class=muted>"
                     f"{_e(r.get('domain', ''))}{aligned}</span></td>")
    return "".join(cells)


def _relay(probe: dict[str, Any]) -> str:
    """Cloudflare's own verdict on arrival, when the report has it."""
    relay = probe.get("relay_auth")
    if not relay or not relay.get("found"):
        return ""
    parts = " ".join(f"{m}={_e(relay.get(m, {}).get('result', '-'))}"
                     for m in ("spf", "dkim", "dmarc"))
    return "<div class=muted>" + _e(_("Cloudflare saw:")) + f" {parts}</div>"


def _hops(probe: dict[str, Any]) -> str:
    hops = [h for h in probe["hops"] if h.get("delay_s") is not None]
    if not hops:
        return ""
    longest = max(max(h["delay_s"] for h in hops), 0.001)
    rows = []
    for h in hops:
        width = max(2, int(300 * max(h["delay_s"], 0) / longest))
        rows.append(f"<tr><td>{_e(h['from'] or '?')} → {_e(h['by'] or '?')}</td>"
                    f'<td><span class="bar" style="width:{width}px"></span> '
                    f"{h['delay_s']:.3f} s</td></tr>")
    return f'<table class="hops">{"".join(rows)}</table>'


def _history_svg(rows: list[dict[str, Any]]) -> str:
    points = [r for r in rows if isinstance(r.get("latency_s"), int | float)
              and isinstance(r.get("sent_at"), int | float)]
    if len(points) < 2:
        return "<p class=muted>" + _e(_("Not enough history yet for a chart.")) + "</p>"
    width, height, pad = 900, 260, 40
    t0: float = min(float(p["sent_at"]) for p in points)
    t1: float = max(float(p["sent_at"]) for p in points)
    top: float = max(float(p["latency_s"]) for p in points) * 1.1 or 1.0
    span = (t1 - t0) or 1.0

    def x(t: float) -> float:
        return pad + (t - t0) / span * (width - 2 * pad)

    def y(v: float) -> float:
        return height - pad - v / top * (height - 2 * pad)

    label = _e(_("latency history"))
    parts = [f'<svg role="img" aria-label="{label}" width="{width}" height="{height}"'
             f' viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}"'
             ' stroke="#59636e"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#59636e"/>',
             f'<text x="4" y="{pad - 8}" font-size="11">{top:.2f} s</text>',
             f'<text x="4" y="{height - pad + 4}" font-size="11">0</text>']
    series: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(points, key=lambda r: r["sent_at"]):
        series.setdefault(f"{p.get('leg')} {p.get('alias')}", []).append(p)
    for name, pts in series.items():
        line = " ".join(f"{x(p['sent_at']):.1f},{y(p['latency_s']):.1f}" for p in pts)
        parts.append(f'<polyline fill="none" stroke="#0969da" stroke-opacity=".5" '
                     f'points="{line}"><title>{_e(name)}</title></polyline>')
        for p in pts:
            parts.append(f'<circle cx="{x(p["sent_at"]):.1f}" cy="{y(p["latency_s"]):.1f}" r="3"'
                         f' fill="{COLORS.get(p.get("verdict", ""), "#59636e")}"><title>'
                         f'{_e(name)}: {p["latency_s"]:.3f} s</title></circle>')
    for t, anchor in ((t0, "start"), (t1, "end")):
        label = datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")
        parts.append(f'<text x="{x(t):.0f}" y="{height - 12}" font-size="11" '
                     f'text-anchor="{anchor}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def build(report: dict[str, Any], history: Iterable[dict[str, Any]] = ()) -> str:
    rows = list(history)
    probes = report["probes"]
    body = [f"<h1>flowtest {_badge(report['verdict'])}</h1>",
            "<p class=muted>" + _e(_("{target} · run {run_id} · {started} → {finished}").format(
                target=report["target"], run_id=report["run_id"],
                started=report["started_at"], finished=report["finished_at"])) + "</p>"]
    if report.get("plaintext"):
        body.append('<p class="insecure">PLAINTEXT: ' + _e(_(
            "no TLS at all to {endpoints}; passwords and probes crossed the network readable "
            "by anyone on the path.").format(endpoints=", ".join(report["plaintext"]))) + "</p>")
    if report.get("insecure"):
        body.append('<p class="insecure">INSECURE: '
                    + _e(_("TLS verification was off for this run.")) + "</p>")
    counts = {v: sum(p["verdict"] == v for p in probes) for v in COLORS}
    body.append("<p>" + " · ".join(f"{n} {v}" for v, n in counts.items() if n) + "</p>")
    if report["dns"]:
        body.append("<h2>DNS</h2><table><tr>" + _th(_("severity"), _("code"), _("what"),
                                                    _("fix")) + "</tr>")
        for f in report["dns"]:
            body.append(f"<tr><td>{_e(f['severity'])}</td><td>{_e(f['code'])}</td>"
                        f"<td>{_e(f['message'])}</td><td>{_e(f['fix'])}</td></tr>")
        body.append("</table>")
    if probes:
        body.append("<h2>" + _e(_("Probes")) + "</h2><table><tr>"
                    + _th(_("leg"), _("alias"), _("verdict"), _("folder"), _("latency"),
                          "SPF", "DKIM", "DMARC", "ARC") + "</tr>")
        for p in probes:
            latency = "-" if p["latency_s"] is None else f"{p['latency_s']:.3f} s"
            leg = _(LEGS.get(p["leg"], p["leg"]))
            body.append(f"<tr><td>{_e(leg)}</td><td>{_e(p['alias'])}</td>"
                        f"<td>{_badge(p['verdict'])}</td><td>{_e(p['folder'] or '-')}</td>"
                        f"<td>{latency}</td>{_auth(p['auth'])}</tr>")
            # Reports written before codes existed carry only the sentences.
            findings = p.get("findings") or [{"code": "", "message": s} for s in p["diagnosis"]]
            body.append('<tr><td></td><td colspan="8">'
                        + "".join(f"<div><code class=muted>{_e(f['code'])}</code> "
                                  f"{_e(f['message'])}</div>" for f in findings)
                        + _relay(p) + _hops(p) + "</td></tr>")
        body.append("</table>")
    body.append("<h2>" + _e(_("Latency history")) + "</h2>" + _history_svg(rows))
    lang = {"zh": "zh-CN"}.get(i18n.active(), "en")
    page = (f"<!DOCTYPE html><html lang={lang}><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width'>"
            f"<title>flowtest {_e(report['verdict'])}</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")
    return redact(page)


def _th(*labels: str) -> str:
    return "".join(f"<th>{_e(label)}</th>" for label in labels)


def write(report: dict[str, Any], history: Iterable[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build(report, history), encoding="utf-8")
    return path
