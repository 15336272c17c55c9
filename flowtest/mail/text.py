"""Text that came from strangers (headers, server replies, DNS records),
made safe to show anywhere: one helper for every output.

Control characters can drive a terminal (an ESC rewrites the screen), fake a
new line in a one-line format (Nagios, a log) or break XML (junit); the bidi
overrides reorder what a person reads (CVE-2021-42574). They are shown as
escapes instead. Markup is the printer's business: rich consoles print this
with markup off (flowtest/cli/console.py, flowtest/report/table.py).
"""

from __future__ import annotations

import re

# C0 and C1 controls and the bidi overrides, except the tab.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    """``text`` with every control character shown as an escape."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                           else f"\\u{ord(m.group()):04x}", text)


def quote(text: str, limit: int = 300) -> str:
    """A remote party's words inside a sentence: one line, inert, bounded."""
    flat = inert(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[:limit] + "…"
