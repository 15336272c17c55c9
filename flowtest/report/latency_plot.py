"""Latency charts as plain SVG: over time, the distribution, the hops, the
hour of day. Viewable offline in any browser, no script, no fonts to fetch.

Hand-built rather than matplotlib: four simple chart types do not need it, a
run stays free of a 40 MB dependency (with numpy) and its import time, and
every label is escaped here, where aliases and host names (untrusted) go in.
"""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flowtest.i18n import gettext as _
from flowtest.mail.stats import END_TO_END, Summary, percentile, supported

W, H = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 36, 52
PALETTE = ("#0969da", "#8250df", "#1a7f37", "#bc4c00", "#bf3989", "#4d2d00")
LOST = "#cf222e"
AXIS = "#59636e"
FONT = 'font-family="sans-serif"'


@dataclass(frozen=True)
class Point:
    """One probe: when it was sent, its end-to-end latency (None: lost), its alias."""

    at: float
    latency_s: float | None
    alias: str


_HOP_NAME = re.compile(r"hop (\d+): (.*)", re.DOTALL)


def stretch(name: str) -> str:
    """A stretch's name (mail.stats: "end to end", "hop 2: mx.example") in
    people's language; the name itself stays as it is in JSON and CSV."""
    if name == END_TO_END:
        return _("end to end")
    m = _HOP_NAME.fullmatch(name)
    if m is None:
        return name
    host = _("Gmail internal") if m.group(2) == "Gmail internal" else m.group(2)
    return _("hop {number}: {host}").format(number=m.group(1), host=host)


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _open(title: str, *, width: int = W, height: int = H) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}">',
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
            f'<text x="{LEFT}" y="20" {FONT} font-size="14" font-weight="bold">{e(title)}</text>']


def _text(x: float, y: float, text: str, *, size: int = 11, anchor: str = "start",
          fill: str = "#1f2328", rotate: bool = False) -> str:
    turn = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" {FONT} font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}"{turn}>{e(text)}</text>')


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering low..high."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def long_tail(values: Sequence[float]) -> bool:
    """A log scale pays when the slowest probe is 20 times the median or more."""
    positive = [v for v in values if v > 0]
    return len(positive) >= 3 and max(positive) >= 20 * percentile(positive, 50)


@dataclass(frozen=True)
class Scale:
    low: float
    high: float
    log: bool
    a: float   # pixel of low
    b: float   # pixel of high

    def __call__(self, v: float) -> float:
        if self.log:
            lo, hi = math.log10(self.low), math.log10(self.high)
            v = math.log10(min(max(v, self.low), self.high))
        else:
            lo, hi = self.low, self.high
        return self.a + (v - lo) / ((hi - lo) or 1.0) * (self.b - self.a)

    def ticks(self) -> list[float]:
        if not self.log:
            return nice_ticks(self.low, self.high)
        out = [m * 10.0 ** k for k in range(math.floor(math.log10(self.low)),
                                            math.ceil(math.log10(self.high)) + 1)
               for m in (1, 2, 5)]
        return [t for t in out if self.low <= t <= self.high] or [self.low]


def seconds_scale(values: Sequence[float], a: float, b: float) -> Scale:
    if long_tail(values):
        positive = [v for v in values if v > 0]
        return Scale(min(positive) / 1.5, max(positive) * 1.5, True, a, b)
    top = max(values, default=1.0) * 1.15 or 1.0
    return Scale(0.0, top, False, a, b)


def fmt_s(v: float) -> str:
    if v == 0:
        return "0 s"
    if v >= 100:
        return f"{v:.0f} s"
    if v >= 1:
        return f"{v:.3g} s"
    return f"{v * 1000:.3g} ms"


def _y_axis(parts: list[str], scale: Scale, label: str, width: int = W) -> None:
    for t in scale.ticks():
        y = scale(t)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" y2="{y:.1f}" '
                     'stroke="#eaeef2"/>')
        parts.append(_text(LEFT - 6, y + 4, fmt_s(t), anchor="end"))
    parts.append(_text(16, (TOP + H - BOTTOM) / 2, label, anchor="middle", rotate=True))


def _frame(parts: list[str], width: int = W, height: int = H) -> None:
    parts.append(f'<line x1="{LEFT}" y1="{height - BOTTOM}" x2="{width - RIGHT}" '
                 f'y2="{height - BOTTOM}" stroke="{AXIS}"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{height - BOTTOM}" '
                 f'stroke="{AXIS}"/>')


def _clock(at: float, span_s: float) -> str:
    t = time.localtime(at)
    return time.strftime("%d %b %H:%M" if span_s >= 86400 else "%H:%M:%S" if span_s < 600
                         else "%H:%M", t)


_TIME_STEPS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
               86400, 2 * 86400, 7 * 86400)


def time_ticks(start: float, end: float, most: int = 7) -> list[float]:
    """Ticks on round local times (whole minutes, hours, days) covering start..end."""
    if end <= start:
        return [start]
    step = next((s for s in _TIME_STEPS if (end - start) / s <= most), _TIME_STEPS[-1])
    offset = time.localtime(start).tm_gmtoff
    first = math.ceil((start + offset) / step) * step - offset
    return [first + i * step for i in range(int((end - first) // step) + 1)]


def colours(points: Sequence[Point]) -> dict[str, str]:
    aliases = list(dict.fromkeys(p.alias for p in points))
    return {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(aliases)}


def timeline(points: Sequence[Point], *, title: str) -> str:
    """Each probe a point at the time it was sent (local time), lost probes a
    red cross along the top; the median and p90 as lines where n supports them."""
    parts = _open(title)
    values = [p.latency_s for p in points if p.latency_s is not None]
    ys = seconds_scale(values, H - BOTTOM, TOP + 14)
    start = min((p.at for p in points), default=0.0)
    end = max((p.at for p in points), default=1.0)
    span = max(end - start, 1.0)

    def x(at: float) -> float:
        return LEFT + (at - start) / span * (W - LEFT - RIGHT)

    _y_axis(parts, ys, _("end-to-end latency (seconds)"))
    _frame(parts)
    for t in time_ticks(start, end):
        parts.append(f'<line x1="{x(t):.1f}" y1="{H - BOTTOM}" x2="{x(t):.1f}" '
                     f'y2="{H - BOTTOM + 4}" stroke="{AXIS}"/>')
        parts.append(_text(x(t), H - BOTTOM + 16, _clock(t, span), anchor="middle"))
    zone = time.strftime("%Z") or _("local")
    parts.append(_text((LEFT + W - RIGHT) / 2, H - 12, _("time sent ({zone})").format(zone=zone),
                       anchor="middle"))
    n = len(values)
    for q, colour in ((50, "#1a7f37"), (90, "#9a6700")):
        if values and supported(q, n):
            v = ys(percentile(values, q))
            parts.append(f'<line x1="{LEFT}" y1="{v:.1f}" x2="{W - RIGHT}" y2="{v:.1f}" '
                         f'stroke="{colour}" stroke-dasharray="4 3"/>')
            # p50 below its line, p90 above: close lines keep readable labels.
            parts.append(_text(W - RIGHT - 2, v + 11 if q == 50 else v - 3, f"p{q}",
                               anchor="end", fill=colour))
    notes = [_("p{q} needs {count} probes").format(q=q, count=10 if q == 90 else 100)
             for q in (90, 99) if not supported(q, n)]
    colour_of = colours(points)
    for p in points:
        c = colour_of[p.alias]
        if p.latency_s is None:
            cx, cy = x(p.at), TOP + 6
            parts.append(f'<path d="M{cx - 4:.1f},{cy - 4:.1f}L{cx + 4:.1f},{cy + 4:.1f}'
                         f'M{cx - 4:.1f},{cy + 4:.1f}L{cx + 4:.1f},{cy - 4:.1f}" '
                         f'stroke="{LOST}" stroke-width="2"><title>'
                         + e(_("{alias}: lost at {time}").format(alias=p.alias,
                                                                 time=_clock(p.at, 0)))
                         + "</title></path>")
        else:
            parts.append(f'<circle cx="{x(p.at):.1f}" cy="{ys(p.latency_s):.1f}" r="3" '
                         f'fill="{c}"><title>'
                         + e(_("{alias}: {seconds} s at {time}").format(
                             alias=p.alias, seconds=f"{p.latency_s:.3f}", time=_clock(p.at, 0)))
                         + "</title></circle>")
    lost = len(points) - n
    legend = [_("n = {count} delivered").format(count=n),
              *([_("{count} lost (x)").format(count=lost)] if lost else []), *notes]
    if ys.log:
        legend.append(_("log scale"))
    parts.append(_text(W - RIGHT, TOP - 4, "; ".join(legend), anchor="end",
                       fill=LOST if lost else AXIS))
    if len(colour_of) > 1:
        for i, (alias, c) in enumerate(colour_of.items()):
            parts.append(f'<rect x="{LEFT + 8}" y="{TOP + 4 + i * 14}" width="8" height="8" '
                         f'fill="{c}"/>')
            parts.append(_text(LEFT + 20, TOP + 12 + i * 14, alias[:60]))
    parts.append("</svg>")
    return "".join(parts) + "\n"


def distribution(values: Sequence[float], *, title: str) -> str:
    """The empirical CDF: for each latency, the share of probes at or under it."""
    parts = _open(title)
    xs = seconds_scale(values, LEFT, W - RIGHT)
    _frame(parts)
    for t in xs.ticks():
        parts.append(_text(xs(t), H - BOTTOM + 16, fmt_s(t), anchor="middle"))
        parts.append(f'<line x1="{xs(t):.1f}" y1="{TOP}" x2="{xs(t):.1f}" y2="{H - BOTTOM}" '
                     'stroke="#eaeef2"/>')
    axis = (_("end-to-end latency (seconds, log scale)") if xs.log
            else _("end-to-end latency (seconds)"))
    parts.append(_text((LEFT + W - RIGHT) / 2, H - 12, axis, anchor="middle"))

    def y(share: float) -> float:
        return H - BOTTOM - share * (H - BOTTOM - TOP)

    for share in (0, 0.25, 0.5, 0.75, 0.9, 1.0):
        parts.append(_text(LEFT - 6, y(share) + 4, f"{share:.0%}", anchor="end"))
    parts.append(_text(16, (TOP + H - BOTTOM) / 2, _("probes at or under (%)"),
                       anchor="middle", rotate=True))
    ordered = sorted(values)
    if ordered:
        n = len(ordered)
        path = [f"M{xs(ordered[0]):.1f},{y(0):.1f}"]
        for i, v in enumerate(ordered, 1):
            path.append(f"L{xs(v):.1f},{y((i - 1) / n):.1f}L{xs(v):.1f},{y(i / n):.1f}")
        parts.append(f'<path d="{"".join(path)}" fill="none" stroke="#0969da" '
                     'stroke-width="2"/>')
        for q in (50, 90, 99):
            if supported(q, n):
                v = percentile(ordered, q)
                parts.append(f'<circle cx="{xs(v):.1f}" cy="{y(q / 100):.1f}" r="3" '
                             f'fill="#9a6700"/>')
                parts.append(_text(xs(v) + 5, y(q / 100) + 12, f"p{q} {fmt_s(v)}",
                                   fill="#9a6700"))
        parts.append(_text(W - RIGHT, 20, f"n = {n}", anchor="end", fill=AXIS))
    parts.append("</svg>")
    return "".join(parts) + "\n"


def hops(summaries: Sequence[Summary], *, title: str) -> str:
    """The median of each hop, stacked in travel order, against the median end
    to end; each hop's resolution written beside it."""
    height = 200
    parts = _open(title, height=height)
    e2e = next((s for s in summaries if s.resolution_s is None), None)
    hop_list = [s for s in summaries if s.resolution_s is not None and s.p50 is not None]
    total = sum(s.p50 or 0.0 for s in hop_list)
    top = max(total, (e2e.p50 or 0.0) if e2e else 0.0, 0.001) * 1.1
    span = W - LEFT - RIGHT

    def x(v: float) -> float:
        return LEFT + v / top * span

    rows = [(_("hops (median each)"), 60), (_("end to end (median)"), 110)]
    for label, y in rows:
        parts.append(_text(LEFT, y - 6, label, fill=AXIS))
    at = 0.0
    for i, s in enumerate(hop_list):
        v = s.p50 or 0.0
        c = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x(at):.1f}" y="60" width="{max(x(at + v) - x(at), 1):.1f}" '
                     f'height="24" fill="{c}"><title>'
                     + e(_("{name}: median {seconds} s (±{resolution} s), n = {count}").format(
                         name=stretch(s.name), seconds=f"{v:.3f}",
                         resolution=f"{s.resolution_s:g}", count=s.count))
                     + "</title></rect>")
        parts.append(f'<rect x="{LEFT + (i % 3) * 240}" y="{140 + (i // 3) * 16}" width="10" '
                     f'height="10" fill="{c}"/>')
        parts.append(_text(LEFT + 14 + (i % 3) * 240, 149 + (i // 3) * 16,
                           f"{stretch(s.name)[:30]}: {fmt_s(v)} ±{fmt_s(s.resolution_s or 0)}"))
        at += v
    if e2e is not None and e2e.p50 is not None:
        parts.append(f'<rect x="{LEFT}" y="110" width="{max(x(e2e.p50) - LEFT, 1):.1f}" '
                     f'height="16" fill="#8c959f"><title>'
                     + e(_("end to end: median {seconds} s, n = {count}").format(
                         seconds=f"{e2e.p50:.3f}", count=e2e.count))
                     + "</title></rect>")
        parts.append(_text(x(e2e.p50) + 4, 123, fmt_s(e2e.p50)))
    parts.append(_text(W - RIGHT, 20, _("seconds; ± is each hop's stamp resolution"),
                       anchor="end", fill=AXIS))
    parts.append("</svg>")
    return "".join(parts) + "\n"


def hour_profile(points: Sequence[Point], *, title: str) -> str:
    """The median latency for each hour of the day (local time), with how many
    probes each hour holds and how many were lost."""
    by_hour: dict[int, list[float]] = {h: [] for h in range(24)}
    lost = dict.fromkeys(range(24), 0)
    for p in points:
        hour = time.localtime(p.at).tm_hour
        if p.latency_s is None:
            lost[hour] += 1
        else:
            by_hour[hour].append(p.latency_s)
    medians = {h: percentile(v, 50) for h, v in by_hour.items() if v}
    parts = _open(title)
    ys = seconds_scale(list(medians.values()), H - BOTTOM, TOP + 14)
    _y_axis(parts, ys, _("median latency (seconds)"))
    _frame(parts)
    slot = (W - LEFT - RIGHT) / 24
    for h in range(24):
        x = LEFT + h * slot
        if h % 3 == 0:
            parts.append(_text(x + slot / 2, H - BOTTOM + 16, f"{h:02d}:00", anchor="middle"))
        if h in medians:
            y = ys(medians[h])
            parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{slot - 4:.1f}" '
                         f'height="{max(H - BOTTOM - y, 1):.1f}" fill="#0969da"><title>'
                         + e(_("{hour}: median {seconds} s, n = {count}, lost {lost}").format(
                             hour=f"{h:02d}:00", seconds=f"{medians[h]:.3f}",
                             count=len(by_hour[h]), lost=lost[h]))
                         + "</title></rect>")
        if lost[h]:
            parts.append(_text(x + slot / 2, TOP + 10, "x", anchor="middle", fill=LOST))
    parts.append(_text((LEFT + W - RIGHT) / 2, H - 12,
                       _("hour of day ({zone})").format(zone=time.strftime("%Z")),
                       anchor="middle"))
    parts.append("</svg>")
    return "".join(parts) + "\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
