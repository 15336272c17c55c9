"""Received chains into hops: who handed the message to whom, and when.

``Received`` dates have one-second resolution and may end with a comment such
as ``(PDT)``; the date is what follows the last ``;`` (RFC 5322 §3.6.7).
Gmail's ``X-Received`` id ends in a millisecond Unix time (FACTS.md), which
gives the last hop a finer time.
"""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

from flowtest.model import Hop

_FROM_RE = re.compile(r"\bfrom\s+(\S+)", re.IGNORECASE)
_BY_RE = re.compile(r"\bby\s+(\S+)", re.IGNORECASE)
_XRECEIVED_MS_RE = re.compile(r"\.(\d{13})\s*;")
_COMMENT_RE = re.compile(r"\([^()]*\)")


def parse_date(text: str) -> float | None:
    text = _COMMENT_RE.sub("", text).strip()
    if not text:
        return None
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_received(value: str, source: str = "Received") -> Hop:
    flat = " ".join(value.split())
    head, sep, date = flat.rpartition(";")
    if not sep:
        head, date = flat, ""
    m_from = _FROM_RE.search(head)
    m_by = _BY_RE.search(head)
    at = parse_date(date)
    if source == "X-Received":
        ms = _XRECEIVED_MS_RE.search(flat + (";" if not flat.endswith(";") else ""))
        ms = ms or _XRECEIVED_MS_RE.search(flat)
        if ms:
            at = int(ms.group(1)) / 1000
    return Hop(by=m_by.group(1).rstrip(";") if m_by else "", from_=m_from.group(1) if m_from
               else "", at=at, delay_s=None, source=source)


def hops(raw: bytes, *, sent_at: float | None = None) -> list[Hop]:
    """The chain in the order the message travelled (oldest first).

    ``sent_at`` (flowtest's own clock) anchors the first delay; otherwise the
    message's Date header does. Delays next to whole-second Received dates are
    accurate to about a second; a precise hop after one gets the lower bound.
    """
    try:
        headers = BytesHeaderParser().parsebytes(raw)
    except Exception:
        return []
    found: list[Hop] = []
    for name, value in headers.items():
        lname = name.lower()
        if lname == "received":
            found.append(parse_received(str(value)))
        elif lname == "x-received":
            found.append(parse_received(str(value), "X-Received"))
    found.reverse()  # each hop prepends its header: the bottom one is the first
    previous = sent_at
    if previous is None:
        date = headers.get("Date")
        previous = parse_date(str(date)) if date else None
    out: list[Hop] = []
    whole_second = False  # the previous time was a truncated Received date
    for hop in found:
        delay = None
        if hop.at is not None and previous is not None:
            delay = round(hop.at - previous, 3)
            if hop.source == "Received" and -1.0 < delay < 0:
                # Received dates are whole seconds (truncated): a hop can look
                # up to a second earlier than a precisely timed one before it.
                delay = 0.0
            elif hop.source != "Received" and whole_second:
                # A precise time after a truncated one: the previous hop may have
                # been up to a second later, so report the lower bound.
                delay = round(max(0.0, delay - 1.0), 3)
        if hop.at is not None:
            whole_second = hop.source == "Received"
        out.append(Hop(hop.by, hop.from_, hop.at, delay, hop.source))
        if hop.at is not None:
            previous = hop.at
    return out
