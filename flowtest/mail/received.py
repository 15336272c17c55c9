"""Received chains into hops: who handed the message to whom, and when.

``Received`` dates have one-second resolution and may end with a comment such
as ``(PDT)``; the date is what follows the last ``;`` (RFC 5322 §3.6.7). Real
servers also write fractions of a second, a Go-style date
(``2025-10-25 04:54:50.563674155 +0000 UTC m=+…``) or no ``;`` at all, so a
date is looked for in the whole value when the part after ``;`` is not one.
Gmail's ``X-Received`` id ends in a millisecond Unix time (FACTS.md), which
gives its hop a finer time than its own whole-second date.

Stamps come from different clocks. A hop whose stamp contradicts the ones
before it (earlier than the previous trusted stamp by more than the two
stamps' resolution, as Microsoft's internal hops can be by 8 to 11 s; an
X-Received epoch far from its own date) is flagged ``clock_skew``, gets no
delay and is left out of the totals (issue 14, item 10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

from flowtest.model import Hop

_FROM_RE = re.compile(r"\bfrom\s+([^\s;]+)", re.IGNORECASE)
_BY_RE = re.compile(r"\bby\s+([^\s;]+)", re.IGNORECASE)
_XRECEIVED_MS_RE = re.compile(r"\.(\d{13})\s*(?:;|$)")
_COMMENT_RE = re.compile(r"\([^()]*\)")
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
# An RFC 5322 date anywhere in the value, seconds optionally with a fraction.
_RFC_DATE_RE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s*,\s*)?(\d{1,2})\s+(" + _MONTHS + r")\s+(\d{2,4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?\s*([+-]\d{4}|UT|UTC|GMT|Z|[ECMP][SD]T)?",
    re.IGNORECASE)
# Go's time.Time.String(): "2025-10-25 04:54:50.563674155 +0000 UTC m=+…".
_ISO_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(Z|[+-]\d{2}:?\d{2}|UTC)?",
    re.IGNORECASE)
_ZONES = {"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
          "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}

# Beyond this, an X-Received epoch and its own date disagree: one of them is wrong.
XRECEIVED_SKEW_S = 3.0
# The sender's Date: is its own clock. More than this before the first server
# stamp (or after it) it is read as a wrong clock, not as a hop: a sender's
# Date can be years off (FACTS.md), and a client hands over within seconds.
DATE_TRUST_S = 600.0
# How long before flowtest's own "accepted" time (the 250 reply) the first
# server may have stamped the message: the DATA transfer and its signing.
ANCHOR_SLACK_S = 5.0


@dataclass(frozen=True)
class Stamp:
    at: float
    resolution_s: float   # 1.0 for whole seconds, 0.001 or finer with a fraction


def _offset(zone: str | None) -> int | None:
    """Seconds east of UTC, None when unknown."""
    if not zone:
        return None
    z = zone.upper().replace(":", "")
    if z in _ZONES:
        return _ZONES[z] * 3600
    m = re.fullmatch(r"([+-])(\d{2})(\d{2})", z)
    if not m:
        return None
    secs = int(m.group(2)) * 3600 + int(m.group(3)) * 60
    return -secs if m.group(1) == "-" else secs


def _stamp(dt: datetime, fraction: str | None, offset: int | None) -> Stamp | None:
    try:
        dt = dt.replace(tzinfo=timezone(timedelta(seconds=offset or 0)))
        at = dt.timestamp() + (float(fraction) if fraction else 0.0)
    except (ValueError, OverflowError, OSError):
        return None
    return Stamp(at, 0.001 if fraction else 1.0)


def _search_date(text: str) -> Stamp | None:
    m = _RFC_DATE_RE.search(text)
    if m:
        day, mon, year, hh, mm, ss, frac, zone = m.groups()
        y = int(year)
        y = y + (2000 if y < 50 else 1900) if y < 100 else y
        try:
            dt = datetime(y, _MONTHS.split("|").index(mon.title()) + 1, int(day), int(hh),
                          int(mm), int(ss or 0))
        except ValueError:
            return None
        return _stamp(dt, frac, _offset(zone))
    m = _ISO_DATE_RE.search(text)
    if m:
        yy, mo, d, hh, mm, ss, frac, zone = m.groups()
        try:
            dt = datetime(int(yy), int(mo), int(d), int(hh), int(mm), int(ss))
        except ValueError:
            return None
        return _stamp(dt, frac, _offset(zone))
    return None


def parse_stamp(text: str) -> Stamp | None:
    """A date as a Unix time with its resolution, or None."""
    text = _COMMENT_RE.sub("", text[:500]).strip()
    if not text:
        return None
    try:
        return Stamp(parsedate_to_datetime(text).timestamp(), 1.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return _search_date(text)


def parse_date(text: str) -> float | None:
    stamp = parse_stamp(text)
    return stamp.at if stamp else None


def uncomment(text: str) -> str:
    """The text with its (nested) comments cut out, so a "by" inside
    "(authenticated by …)" is never taken for the receiving host."""
    for _ in range(8):
        cut = _COMMENT_RE.sub(" ", text)
        if cut == text:
            break
        text = cut
    return text


def _received_stamp(flat: str) -> Stamp | None:
    _, sep, date = flat.rpartition(";")
    stamp = parse_stamp(date) if sep else None
    return stamp or _search_date(_COMMENT_RE.sub(" ", flat[:2000]))


@dataclass(frozen=True)
class _Read:
    hop: Hop
    contradicts: bool   # its own stamps disagree (X-Received epoch vs its date)


def _read(value: str, source: str) -> _Read:
    flat = " ".join(value.split())[:4000]
    head = uncomment(flat.rpartition(";")[0] or flat)
    m_from = _FROM_RE.search(head)
    m_by = _BY_RE.search(head)
    stamp = _received_stamp(flat)
    contradicts = False
    if source == "X-Received":
        ms = _XRECEIVED_MS_RE.search(flat)
        if ms:
            precise = int(ms.group(1)) / 1000
            # Its date is truncated to the second: up to 1 s below the epoch is normal.
            contradicts = stamp is not None and not (
                -XRECEIVED_SKEW_S <= precise - stamp.at <= 1.0 + XRECEIVED_SKEW_S)
            stamp = Stamp(precise, 0.001)
    hop = Hop(by=m_by.group(1).rstrip(";")[:255] if m_by else "",
              from_=m_from.group(1)[:255] if m_from else "",
              at=stamp.at if stamp else None, delay_s=None, source=source,
              resolution_s=stamp.resolution_s if stamp else 1.0)
    return _Read(hop, contradicts)


def parse_received(value: str, source: str = "Received") -> Hop:
    return _read(value, source).hop


@dataclass(frozen=True)
class Chain:
    """The hops in travel order, and the end-to-end time they show."""

    hops: tuple[Hop, ...]
    start: float | None        # the first stamp that can be trusted (the anchor or a hop)
    end: float | None          # the latest trusted stamp
    date_trusted: bool         # the message's Date: was used as the start

    @property
    def total_s(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return round(max(0.0, self.end - self.start), 3)


def _slack(a: float, b: float) -> float:
    # Two whole-second stamps can look a second apart the wrong way round;
    # two fine ones a few clock ticks.
    return 1.0 if max(a, b) >= 1.0 else 0.1


def chain(raw: bytes, *, sent_at: float | None = None) -> Chain:
    """Read the trace (oldest hop first) and judge every stamp against the last
    trusted one.

    ``sent_at`` (flowtest's own clock) anchors the first delay; otherwise the
    message's Date: does, unless it is out of line with the first server stamp
    (``DATE_TRUST_S``): then the first hop has no delay and the total starts at
    the first stamp."""
    try:
        headers = BytesHeaderParser().parsebytes(raw)
        items = [(str(k), str(v)) for k, v in headers.items()]
    except Exception:  # hostile input must not crash a reader
        return Chain((), None, None, False)
    reads: list[_Read] = []
    date_text = ""
    for name, value in items:
        lname = name.lower()
        if lname == "received":
            reads.append(_read(value, "Received"))
        elif lname == "x-received":
            reads.append(_read(value, "X-Received"))
        elif lname == "date" and not date_text:
            date_text = value
    reads.reverse()  # each hop prepends its header: the bottom one is the first
    anchor: Stamp | None = Stamp(sent_at, 0.001) if sent_at is not None else None
    date_trusted = False
    if anchor is None and date_text:
        date = parse_stamp(date_text)
        first = next((r.hop.at for r in reads if r.hop.at is not None and not r.contradicts),
                     None)
        if date is not None and (first is None
                                 or -_slack(date.resolution_s, 1.0) <= first - date.at
                                 <= DATE_TRUST_S):
            anchor, date_trusted = date, True
    previous = anchor
    start = anchor.at if anchor else None
    end = start
    out: list[Hop] = []
    for r in reads:
        hop = r.hop
        if hop.at is None:
            out.append(hop)
            continue
        if r.contradicts:
            out.append(Hop(hop.by, hop.from_, hop.at, None, hop.source, True, hop.resolution_s))
            continue
        delay: float | None = None
        if previous is not None:
            delay = round(hop.at - previous.at, 3)
            slack = _slack(hop.resolution_s, previous.resolution_s)
            if previous is anchor and sent_at is not None:
                # The first server stamp is written during the SMTP transaction,
                # before the 250 reply that sent_at records.
                slack += ANCHOR_SLACK_S
            if delay < 0:
                if delay < -slack:
                    out.append(Hop(hop.by, hop.from_, hop.at, None, hop.source, True,
                                   hop.resolution_s))
                    continue
                # Whole-second dates are truncated: a hop can look up to a
                # second earlier than a precisely timed one before it.
                delay = 0.0
        out.append(Hop(hop.by, hop.from_, hop.at, delay, hop.source, False, hop.resolution_s))
        # The next delay counts from this hop's own stamp, as a reader of the
        # trace does, even when a truncated date put it a little earlier.
        previous = Stamp(hop.at, hop.resolution_s)
        start = hop.at if start is None else start
        end = hop.at if end is None else max(end, hop.at)
    return Chain(tuple(out), start, end, date_trusted)


def hops(raw: bytes, *, sent_at: float | None = None) -> list[Hop]:
    """The chain in the order the message travelled (oldest first).

    ``sent_at`` (flowtest's own clock) anchors the first delay; otherwise the
    message's Date header does (when it is in line with the first stamp)."""
    return list(chain(raw, sent_at=sent_at).hops)


def total_s(raw: bytes, *, sent_at: float | None = None) -> float | None:
    """End to end, from the first stamp that can be trusted to the last."""
    return chain(raw, sent_at=sent_at).total_s
