"""latency.svg: each probe's end-to-end latency in order, with p50 and p90
lines. Plain SVG, viewable offline in any browser."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from flowtest.mail.stats import percentile


def svg(latencies: Sequence[float], *, title: str) -> str:
    width, height, pad = 720, 300, 48
    n = len(latencies)
    top = max(max(latencies, default=1.0) * 1.15, 0.001)

    def x(i: int) -> float:
        return pad + (i / max(n - 1, 1)) * (width - 2 * pad)

    def y(v: float) -> float:
        return height - pad - v / top * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
             f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
             f'<text x="{pad}" y="20" font-family="sans-serif" font-size="14">'
             f"{html.escape(title)}</text>",
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'stroke="#59636e"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#59636e"/>',
             f'<text x="4" y="{y(top / 1.15) + 4:.0f}" font-family="sans-serif" font-size="11">'
             f"{top / 1.15:.2f} s</text>",
             f'<text x="{width - pad - 60}" y="{height - 16}" font-family="sans-serif" '
             f'font-size="11">probe {n}</text>']
    if latencies:
        for q, color in ((50, "#1a7f37"), (90, "#9a6700")):
            v = percentile(latencies, q)
            parts.append(f'<line x1="{pad}" y1="{y(v):.1f}" x2="{width - pad}" y2="{y(v):.1f}" '
                         f'stroke="{color}" stroke-dasharray="4 3"/>')
            parts.append(f'<text x="{width - pad + 2}" y="{y(v) + 4:.1f}" font-family="sans-serif"'
                         f' font-size="11" fill="{color}">p{q}</text>')
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(latencies))
        parts.append(f'<polyline fill="none" stroke="#0969da" points="{points}"/>')
        parts += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="#0969da"/>'
                  for i, v in enumerate(latencies)]
    parts.append("</svg>")
    return "".join(parts) + "\n"


def write(path: Path, latencies: Sequence[float], *, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg(latencies, title=title), encoding="utf-8")
    return path
