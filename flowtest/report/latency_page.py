"""latency.html: one self-contained page (inline SVG and CSS, nothing
fetched) with the figures and the charts of a latency run, and each chart
also as its own SVG file beside it."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from flowtest.i18n import active
from flowtest.i18n import gettext as _
from flowtest.mail import stats
from flowtest.model import ProbeResult
from flowtest.report import latency_plot as plot
from flowtest.report.latency_plot import Point, e, stretch

DAY_S = 86400.0
_CSS = ("body{font-family:system-ui,'Noto Sans CJK SC','Noto Sans SC','PingFang SC',"
        "'Microsoft YaHei',sans-serif;margin:24px;color:#1f2328;max-width:820px}"
        "table{border-collapse:collapse;margin:12px 0}td,th{border-bottom:1px solid #d0d7de;"
        "padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}"
        ".na{color:#59636e}figure{margin:18px 0}svg{max-width:100%;height:auto}"
        ".lost{color:#cf222e}")


def points(results: Sequence[ProbeResult]) -> list[Point]:
    return [Point(r.sent_at if r.sent_at is not None else 0.0, r.latency_s, r.alias)
            for r in results]


def _cell(value: float | None, q: int) -> str:
    if value is None:
        why = _("too few probes for p{q}").format(q=q)
        return f'<td class="na" title="{e(why)}">n&lt;{stats.MIN_COUNT[q]}</td>'
    return f"<td>{value:.3f}</td>"


def table(summaries: Sequence[stats.Summary]) -> str:
    heads = (_("stretch"), "n", "p50 (s)", _("p50 95% CI (s)"), "p90 (s)", "p99 (s)",
             _("max (s)"), _("resolution"))
    rows = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in heads) + "</tr>"]
    needs = e(_("needs 6 probes"))
    for s in summaries:
        ci = (f'<td class="na" title="{needs}">n&lt;6</td>' if s.p50_ci is None
              else f"<td>{s.p50_ci[0]:.3f} – {s.p50_ci[1]:.3f}</td>")
        res = _("flowtest's clock") if s.resolution_s is None else f"±{s.resolution_s:g} s"
        rows.append(f"<tr><td>{e(stretch(s.name))}</td><td>{s.count}</td>{_cell(s.p50, 50)}{ci}"
                    f"{_cell(s.p90, 90)}{_cell(s.p99, 99)}<td>{s.max:.3f}</td>"
                    f"<td>{e(res)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def charts(pts: Sequence[Point], summaries: Sequence[stats.Summary],
           title: str) -> dict[str, str]:
    """File name -> SVG, in the order they appear on the page."""
    values = [p.latency_s for p in pts if p.latency_s is not None]
    out = {"latency.svg": plot.timeline(pts, title=_("latency over time")),
           "latency-cdf.svg": plot.distribution(values, title=_("distribution (CDF)")),
           "latency-hops.svg": plot.hops(summaries,
                                         title=_("where the time goes (median per hop)"))}
    ats = [p.at for p in pts]
    if ats and max(ats) - min(ats) >= DAY_S * 0.99:
        out["latency-hours.svg"] = plot.hour_profile(pts, title=_("by hour of day"))
    return out


def page(pts: Sequence[Point], summaries: Sequence[stats.Summary], *, title: str,
         svgs: dict[str, str] | None = None, note: str = "") -> str:
    svgs = svgs if svgs is not None else charts(pts, summaries, title)
    lost = sum(1 for p in pts if p.latency_s is None)
    lost_text = _("{lost} of {total} probes were not delivered.").format(lost=lost,
                                                                       total=len(pts))
    lost_line = f'<p class="lost">{e(lost_text)}</p>' if lost else ""
    figures = "".join(f"<figure>{svg}</figure>" for svg in svgs.values())
    intro = _("{count} probes. A percentile is shown only when there are enough probes for "
              "it (p90: 10, p99: 100); the median's interval is 95% (order statistics). Hop "
              "delays are differences of the servers' own stamps: whole-second Received dates "
              "give ±1 s.").format(count=len(pts))
    lang = "zh-CN" if active() == "zh" else "en"
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width">'
            f"<title>{e(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{e(title)}</h1><p>{e(intro)}</p>"
            f"{e(note) and f'<p>{e(note)}</p>'}{lost_line}{table(summaries)}{figures}"
            "</body></html>\n")


def write(folder: Path, results: Sequence[ProbeResult], summaries: Sequence[stats.Summary],
          *, title: str) -> Path:
    """latency.html and the SVG files in ``folder``; returns the page."""
    pts = points(results)
    svgs = charts(pts, summaries, title)
    folder.mkdir(parents=True, exist_ok=True)
    for name, svg in svgs.items():
        plot.write(folder / name, svg)
    return plot.write(folder / "latency.html", page(pts, summaries, title=title, svgs=svgs))


def _safe(value: object) -> object:
    """A spreadsheet runs a cell that starts with = + - @ as a formula; host
    names and aliases come from the outside world."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(results: Sequence[ProbeResult], run_id: str = "") -> str:
    """Every probe, one row, with the time of each hop (segment) in columns."""
    names: list[str] = []
    rows = []
    for r in results:
        segs = {}
        for i, seg in enumerate(stats.segments(r), 1):
            name = f"hop {i}: {seg.label}"
            if name not in names:
                names.append(name)
            segs[name] = seg
        rows.append((r, segs))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["run_id", "alias", "token", "sent_at", "verdict", "delivered", "latency_s"]
    for n in names:
        head += [f"{n} s", f"{n} resolution s"]
    w.writerow([_safe(h) for h in head])
    for r, segs in rows:
        row: list[object] = [run_id, r.alias, r.token, r.sent_at, r.verdict, r.delivered,
                             r.latency_s]
        for n in names:
            found = segs.get(n)
            if found is None or math.isnan(found.delay_s):
                row += ["", ""]
            else:
                row += [found.delay_s, found.resolution_s]
        w.writerow([_safe(v) for v in row])
    return buf.getvalue()
