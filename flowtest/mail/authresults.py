"""Reading Authentication-Results the way RFC 8601 §5 says to trust them.

Only the receiver's own header is believed, found by its authserv-id (or, for
Outlook, which writes none, by its position directly above the hop into its
own hosts), and only where the receiver writes it: in the block it added above
the trace of the hops before it (or, for NetEase, appended below the message's
own headers). Anything else could have been written by the sender. A message
whose trace never reaches the receiver's own hosts carries no verdict of it.
The value syntax is read by :mod:`flowtest.mail.arvalue`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from flowtest.mail.arvalue import (
    best_dkim,
    header_from_domain,
    header_list,
    parse,
    parse_value,
    verdict,
)
from flowtest.mail.orgdomain import org_domain
from flowtest.mail.received import uncomment
from flowtest.model import AuthVerdict, MethodResult, Receiver

# The value reader's entry points, re-exported: callers read one module.
__all__ = ["CLOUDFLARE_AUTHSERV_ID", "arc_instance", "arc_verdict", "authserv_ids",
           "intermediate", "owns", "parse", "parse_value", "receiver_exact", "trusted",
           "zone"]


def receiver_exact(authserv_id: str) -> Receiver:
    """A receiver known only by its authserv-id (its hosts share its org domain)."""
    words = authserv_id.split()
    first = words[0] if words else ""
    return Receiver(first, domains=(org_domain(first),) if first else ())


_LOOPBACK_RE = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f.:]+)\]")


def owns(rec: Receiver, host: str) -> bool:
    """Whether ``host`` is one of the receiver's own (where its headers end)."""
    host = host.lower().rstrip(".")
    if not host:
        return False
    if any(re.fullmatch(p, host, re.IGNORECASE) for p in rec.hosts):
        return True
    return org_domain(host) in rec.domains


@dataclass(frozen=True)
class Trace:
    """One Received header read for the trust rule: who stamped it, from whom."""

    index: int       # position in the header list
    by: str
    from_: str
    loopback: bool   # the connection came from a loopback address: a host's own relay


def _trace(index: int, value: str) -> Trace:
    flat = " ".join(value.split())[:4000]
    bare = uncomment(flat)
    by = re.search(r"\bby\s+([^\s;()]+)", bare, re.IGNORECASE)
    frm = re.match(r"\s*from\s+([^\s;()]+)", bare, re.IGNORECASE)
    loopback = False
    for ip in _LOOPBACK_RE.findall(flat.split(" by ", 1)[0]):
        try:
            loopback = loopback or ipaddress.ip_address(ip).is_loopback
        except ValueError:
            continue
    return Trace(index, by.group(1).lower().rstrip(".")[:255] if by else "",
                 frm.group(1).lower().strip("[]").rstrip(".")[:255] if frm else "", loopback)


def _local(t: Trace) -> bool:
    """A host handing the message to itself (a content filter on loopback,
    ``from localhost.localdomain ([127.0.0.1])``): internal, not an entry. A
    named host on a loopback address (the sandbox's world) is still a sender."""
    name = t.from_
    return t.loopback and (name.startswith("localhost") or name == t.by or "." not in name)


@dataclass(frozen=True)
class Zone:
    """Where the receiver's own headers are: ``start`` <= i < ``end``.

    ``entry`` is the index of the hop into the receiver from outside (None
    when the message shows none); ``traced`` is False when the message has no
    usable Received header at all (a saved header block)."""

    start: int
    end: int
    entry: int | None
    traced: bool
    found: bool      # False: the trace never reaches the receiver's hosts


def zone(headers: list[tuple[str, str]], rec: Receiver, *, final: bool = True) -> Zone:
    """The receiver's block of headers (RFC 5321 §4.4: each hop prepends).

    Walking the Received headers from the top: hops into the receiver's own
    hosts from its own hosts (or from loopback) are internal; the first one
    from elsewhere is the entry hop, and the receiver's block ends at the next
    Received below it (Gmail, iCloud and QQ write their verdict just below
    their entry hop, Outlook just above it). A hop by another host before any
    of the receiver's means the message was never there (``final``) or, when
    reading an intermediate receiver (``final=False``), a later one's hop to
    skip. Received headers without ``from`` (Gmail's internal ``by 2002:…``)
    mark nothing."""
    traces = [_trace(i, v) for i, (k, v) in enumerate(headers) if k.lower() == "received"]
    start = 0
    seen_own = False
    usable = [t for t in traces if t.by and t.from_]
    for t in usable:
        if not owns(rec, t.by):
            if not seen_own and not final:
                continue
            return Zone(start, t.index, None, True, seen_own)
        if not seen_own:
            seen_own = True
            start = 0 if final else t.index
        if not (_local(t) or owns(rec, t.from_)):
            below = [u.index for u in traces if u.index > t.index]
            return Zone(start, below[0] if below else len(headers), t.index, True, True)
    if not usable:
        return Zone(0, len(headers), None, False, True)
    return Zone(start, len(headers), None, True, seen_own)


def _claims(headers: list[tuple[str, str]], rec: Receiver,
            header_from: str, aspf: str, adkim: str) -> list[tuple[int, AuthVerdict]]:
    out: list[tuple[int, AuthVerdict]] = []
    for i, (name, value) in enumerate(headers):
        if name.lower() != "authentication-results" or _not_for(rec, value):
            continue
        try:
            parsed = parse(value)
        except Exception:  # a reader never crashes on hostile input
            continue
        if parsed is None or not rec.matches(parsed.authserv_id):
            continue
        out.append((i, verdict(parsed, header_from, aspf=aspf, adkim=adkim, rec=rec)))
    return out


# The authserv-id of a plain header ("mx.google.com; spf=…", optionally with a
# version): enough to skip other receivers' headers without parsing them.
_ID_HINT_RE = re.compile(r"\s*([A-Za-z0-9._-]+)(?:\s+\d+)?\s*;")


def _not_for(rec: Receiver, value: str) -> bool:
    m = _ID_HINT_RE.match(value)
    return m is not None and not rec.matches(m.group(1).lower().rstrip("."))


def _directly_above(headers: list[tuple[str, str]], index: int, z: Zone) -> bool:
    """An id-less header's only trusted place: right above the entry hop."""
    if not z.traced:
        return True
    if z.entry is None or index > z.entry:
        return False
    return not any(k.lower() == "received" for k, _ in headers[index + 1:z.entry])


def trusted(raw: bytes, receiver: str | Receiver, *, aspf: str = "r",
            adkim: str = "r") -> AuthVerdict:
    """The receiver's verdict, or an empty one (``found=False``).

    ``receiver`` is its authserv-id or a :class:`Receiver`. ``aspf``/``adkim``
    are the From domain's alignment modes (``r`` or ``s``)."""
    return _trusted(raw, receiver, aspf, adkim, final=True)


def intermediate(raw: bytes, receiver: str | Receiver, *, aspf: str = "r",
                 adkim: str = "r") -> AuthVerdict:
    """The verdict of a receiver that handed the message on (a list server),
    whose hops sit below later receivers' ones; the same rule otherwise."""
    return _trusted(raw, receiver, aspf, adkim, final=False)


def _trusted(raw: bytes, receiver: str | Receiver, aspf: str, adkim: str, *,
             final: bool) -> AuthVerdict:
    rec = receiver if isinstance(receiver, Receiver) else receiver_exact(receiver)
    headers = header_list(raw)
    if headers is None:
        return AuthVerdict(authserv_id=rec.authserv)
    header_from = header_from_domain(headers)
    claims = _claims(headers, rec, header_from, aspf, adkim)
    z = zone(headers, rec, final=final)
    chosen: list[tuple[int, AuthVerdict]] = []
    how = "authserv-id"
    if z.found and rec.position == "appended":
        below = [(i, v) for i, v in claims if z.entry is None or i > z.entry]
        chosen = below[-1:]
        how = "appended"
    elif z.found:
        for i, v in claims:
            if not z.start <= i < z.end:
                continue
            if not v.authserv_id and not _directly_above(headers, i, z):
                continue
            chosen.append((i, v))
            if not rec.merge:
                break
        if chosen and not chosen[0][1].authserv_id:
            how = "position"
    spam = _implied_folder(headers) if _microsoft(rec) else ""
    if not chosen:
        return AuthVerdict(authserv_id=rec.label, ignored=len(claims), header_from=header_from,
                           implied_folder=spam)
    top = chosen[0][1]
    for _, lower in chosen[1:]:
        top = _merge(top, lower)
    return replace(top, ignored=len(claims) - len(chosen), implied_folder=spam, trusted_by=how)


def _merge(top: AuthVerdict, lower: AuthVerdict) -> AuthVerdict:
    """Several headers of one receiver (iCloud, Fastmail): the topmost result
    of each method wins."""
    def pick(a: MethodResult, b: MethodResult) -> MethodResult:
        return a if a.result != "none" or b.result == "none" else b

    dkim_all = top.dkim_all or lower.dkim_all
    return replace(
        top, spf=pick(top.spf, lower.spf), dkim=best_dkim(list(dkim_all)), dkim_all=dkim_all,
        dmarc=pick(top.dmarc, lower.dmarc), arc=pick(top.arc, lower.arc),
        header_from=top.header_from or lower.header_from,
        dmarc_policy=top.dmarc_policy or lower.dmarc_policy,
        dmarc_disposition=top.dmarc_disposition or lower.dmarc_disposition,
        dmarc_action=top.dmarc_action or lower.dmarc_action,
        compauth=top.compauth or lower.compauth,
        compauth_reason=top.compauth_reason or lower.compauth_reason)


def _microsoft(rec: Receiver) -> bool:
    return "outlook.com" in rec.domains or rec.idless


def _implied_folder(headers: list[tuple[str, str]]) -> str:
    """Microsoft's own spam verdict as the folder it implies (FACTS.md): SCL 5
    or more, SFV:SPM, or dest:J mean Junk; dest:I means the inbox. Only the
    topmost of each header counts (Microsoft writes one of each)."""
    first: dict[str, str] = {}
    for name, value in headers:
        first.setdefault(name.lower(), " ".join(value.split()))
    report = first.get("x-forefront-antispam-report", "")
    scl = re.search(r"(?:^|;)\s*SCL:(-?\d+)", report) \
        or re.search(r"^\s*(-?\d+)", first.get("x-ms-exchange-organization-scl", ""))
    sfv = re.search(r"(?:^|;)\s*SFV:(\w+)", report)
    dest = re.search(r"(?:^|;)\s*dest:(\w)", first.get("x-microsoft-antispam-mailbox-delivery", ""))
    if (scl and int(scl.group(1)) >= 5) or (sfv and sfv.group(1).upper() == "SPM") \
            or (dest and dest.group(1).upper() == "J"):
        return "junk"
    if dest and dest.group(1).upper() == "I":
        return "inbox"
    return ""


def _aar(value: str) -> tuple[int, str] | None:
    """An ARC-Authentication-Results value: (instance, the AR value after ``i=N;``)."""
    m = re.match(r"\s*i\s*=\s*(\d{1,3})\s*;(.*)", value, re.DOTALL)
    return (int(m.group(1)), m.group(2)) if m else None


# Cloudflare Email Routing records its verdict on arrival under this id (FACTS.md).
CLOUDFLARE_AUTHSERV_ID = "mx.cloudflare.net"


def arc_verdict(raw: bytes, authserv_id: str, instance: int | None = None) -> AuthVerdict:
    """The verdict an ARC intermediary recorded in its ARC-Authentication-Results,
    found by its authserv-id at whatever instance (``instance`` pins one).

    Cloudflare's is ``mx.cloudflare.net``; a forged one from before it sits at
    a lower instance, so the highest instance with that id wins."""
    headers = header_list(raw)
    if headers is None:
        return AuthVerdict(authserv_id=authserv_id)
    header_from = header_from_domain(headers)
    best: AuthVerdict | None = None
    for name, value in headers:
        if name.lower() != "arc-authentication-results":
            continue
        aar = _aar(value)
        if aar is None or (instance is not None and aar[0] != instance):
            continue
        try:
            parsed = parse(aar[1])
        except Exception:  # a reader never crashes on hostile input
            continue
        if parsed is None or parsed.authserv_id != authserv_id.lower():
            continue
        if best is None or aar[0] > best.instance:
            best = replace(verdict(parsed, header_from), instance=aar[0],
                           trusted_by="authserv-id")
    return best or AuthVerdict(authserv_id=authserv_id)


def arc_instance(raw: bytes, instance: int, authserv_id: str) -> AuthVerdict:
    """The verdict an ARC intermediary recorded at instance ``instance``."""
    return arc_verdict(raw, authserv_id, instance)


def authserv_ids(raw: bytes) -> list[str]:
    """The authserv-id of every Authentication-Results header, topmost first
    ("" for an id-less one)."""
    headers = header_list(raw) or []
    out: list[str] = []
    for name, value in headers:
        if name.lower() == "authentication-results":
            try:
                parsed = parse(value)
            except Exception:  # a reader never crashes on hostile input
                continue
            if parsed is not None:
                out.append(parsed.authserv_id)
    return out
