"""Reading Authentication-Results the way RFC 8601 §5 says to trust them.

Only the topmost header whose authserv-id is the receiving provider's own is
believed, and only if it sits above the trace headers of the hops before that
provider: anything lower could have been written by the sender. Cloudflare's
own verdict is read from ``ARC-Authentication-Results: i=1; mx.cloudflare.net``,
which its ARC seal covers.
"""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.utils import getaddresses

import authres

from flowtest.mail.dmarc import aligned
from flowtest.mail.orgdomain import org_domain
from flowtest.model import AuthVerdict, MethodResult, Receiver

_PARSER = authres.all_features()
_NO_ID = "flowtest.no-authserv-id"
_POLICY_RE = re.compile(r"\bp=(\w+)(?:\s+sp=(\w+))?(?:\s+dis=(\w+))?", re.IGNORECASE)
_PUBLISHED_RE = re.compile(r"policy\.published-domain-policy=(\w+)", re.IGNORECASE)
_CLAUSE_COMMENT_RE = re.compile(r"^\s*([\w.-]+)\s*=\s*([\w-]+)\s*\(([^)]*)\)")
# "dmarc=fail(p=NONE)": no space before the comment (Yahoo); authres wants one.
_TIGHT_COMMENT_RE = re.compile(r"(\b(?:spf|dkim|dmarc|arc)=[\w-]+)\(")


def _domain(value: str) -> str:
    value = value.strip().strip('"').lstrip("@")
    return value.rpartition("@")[2].lower().rstrip(".")


def _header_from(headers: list[tuple[str, str]]) -> str:
    values = [v for k, v in headers if k.lower() == "from"]
    for _, addr in getaddresses(values):
        if "@" in addr:
            return _domain(addr)
    return ""


def _headers(raw: bytes) -> list[tuple[str, str]] | None:
    try:
        parsed = BytesHeaderParser().parsebytes(raw)
        return [(str(k), str(v)) for k, v in parsed.items()]
    except Exception:  # hostile input must not crash a reader
        return None


def _comments(value: str) -> dict[str, str]:
    """Method -> the comment after its result (authres drops comments)."""
    out: dict[str, str] = {}
    for clause in value.split(";")[1:]:
        m = _CLAUSE_COMMENT_RE.match(clause)
        if m and m.group(1).lower() not in out:
            out[m.group(1).lower()] = m.group(3)
    return out


def parse_value(value: str, header_from: str = "", *, aspf: str = "r",
                adkim: str = "r") -> AuthVerdict | None:
    """One Authentication-Results value (without the field name).

    Outlook writes it without an authserv-id ("spf=pass …; dkim=…"); such a
    header gets the authserv-id "" here."""
    # A trailing ";" (Yahoo) makes authres expect one more method.
    flat = _TIGHT_COMMENT_RE.sub(r"\1 (", " ".join(value.split())).rstrip("; ")
    first = flat.split(";", 1)[0]
    no_id = "=" in first
    try:
        parsed = _PARSER.parse(f"Authentication-Results: {_NO_ID + '; ' if no_id else ''}{flat}")
    except Exception:  # authres raises several kinds on malformed input
        return None
    comments = _comments(flat)
    spf = MethodResult()
    dmarc = MethodResult()
    arc = MethodResult()
    dkims: list[MethodResult] = []
    for r in parsed.results:
        props = {f"{p.type}.{p.name}".lower(): str(p.value or "") for p in r.properties}
        method = str(r.method).lower()
        result = str(r.result or "none").lower()
        if method == "spf" and spf.result == "none":
            d = _domain(props.get("smtp.mailfrom", "") or props.get("smtp.helo", ""))
            spf = MethodResult(result, d, comment=comments.get("spf", ""))
        elif method == "dkim":
            d = _domain(props.get("header.d", "") or props.get("header.i", ""))
            dkims.append(MethodResult(result, d))
        elif method == "dmarc" and dmarc.result == "none":
            dmarc = MethodResult(result, _domain(props.get("header.from", "")),
                                 comment=comments.get("dmarc", ""))
        elif method == "arc" and arc.result == "none":
            arc = MethodResult(result, comment=comments.get("arc", ""))
    from_domain = header_from or dmarc.domain
    spf = MethodResult(spf.result, spf.domain,
                       spf.result == "pass" and aligned(spf.domain, from_domain, aspf),
                       spf.comment)
    dkims = [MethodResult(d.result, d.domain,
                          d.result == "pass" and aligned(d.domain, from_domain, adkim))
             for d in dkims]
    # The DKIM result that matters for DMARC: an aligned pass, else any pass, else the first.
    best = (next((d for d in dkims if d.aligned), None)
            or next((d for d in dkims if d.result == "pass"), None)
            or (dkims[0] if dkims else MethodResult()))
    policy, disposition = "", ""
    m = _POLICY_RE.search(dmarc.comment)
    if m:
        policy = m.group(1).lower()
        disposition = (m.group(3) or "").lower()
    else:
        published = _PUBLISHED_RE.search(flat)
        policy = published.group(1).lower() if published else ""
    return AuthVerdict(
        authserv_id="" if no_id else str(parsed.authserv_id or "").lower(), found=True,
        spf=spf, dkim=best,
        dkim_all=tuple(dkims), dmarc=dmarc, arc=arc, header_from=from_domain,
        dmarc_policy=policy, dmarc_disposition=disposition)


def receiver_exact(authserv_id: str) -> Receiver:
    """A receiver known only by its authserv-id (its hosts share its org domain)."""
    first = authserv_id.split()[0] if authserv_id.strip() else ""
    return Receiver(authserv_id, domains=(org_domain(first),) if first else ())


def owns(rec: Receiver, host: str) -> bool:
    """Whether ``host`` is one of the receiver's own (where its headers end)."""
    return bool(host) and org_domain(host) in rec.domains


def _received_by(value: str) -> tuple[str, bool]:
    flat = " ".join(value.split())
    by = re.search(r"\bby\s+([^\s;]+)", flat, re.IGNORECASE)
    has_from = re.match(r"\s*from\s", flat, re.IGNORECASE) is not None
    return (by.group(1).lower().rstrip(".") if by else ""), has_from


# The authserv-id of a plain header ("mx.google.com; spf=…", optionally with a
# version): enough to skip parsing headers from other receivers, which was
# most of flowtest's CPU per message. Anything fancier is parsed in full.
_ID_HINT_RE = re.compile(r"\s*([A-Za-z0-9._-]+)(?:\s+\d+)?\s*;")


def _not_for(rec: Receiver, value: str) -> bool:
    m = _ID_HINT_RE.match(value)
    return m is not None and "=" not in m.group(1) and not rec.matches(m.group(1).lower())


def trusted(raw: bytes, receiver: str | Receiver, *, aspf: str = "r",
            adkim: str = "r") -> AuthVerdict:
    """The receiver's verdict, or an empty one (``found=False``).

    ``receiver`` is its authserv-id or a :class:`Receiver` (a pattern, or the
    id-less form, and the receiver's own domains). ``aspf``/``adkim`` are the
    From domain's alignment modes (``r`` or ``s``)."""
    rec = receiver if isinstance(receiver, Receiver) else receiver_exact(receiver)
    headers = _headers(raw)
    if headers is None:
        return AuthVerdict(authserv_id=rec.authserv)
    header_from = _header_from(headers)
    chosen: AuthVerdict | None = None
    claims = used = 0
    inside = True  # still above the first hop into the receiver from outside
    for name, value in headers:
        lname = name.lower()
        if lname == "received" and inside:
            by, has_from = _received_by(value)
            # Anything below the hop into the receiver arrived with the message
            # and may have been written by the sender.
            if has_from and by and not owns(rec, by):
                inside = False
        if lname != "authentication-results" or _not_for(rec, value):
            continue
        verdict = parse_value(value, header_from, aspf=aspf, adkim=adkim)
        if verdict is None or not rec.matches(verdict.authserv_id):
            continue
        claims += 1
        if inside:
            # Some providers (iCloud) write one header per method: merge them,
            # the topmost result of each method winning.
            chosen = verdict if chosen is None else _merge(chosen, verdict)
            used += 1
    if chosen is None:
        return AuthVerdict(authserv_id=rec.authserv, ignored=claims, header_from=header_from)
    return AuthVerdict(**{**chosen.__dict__, "ignored": claims - used})


def _merge(top: AuthVerdict, lower: AuthVerdict) -> AuthVerdict:
    def pick(a: MethodResult, b: MethodResult) -> MethodResult:
        return a if a.result != "none" else b

    return AuthVerdict(
        authserv_id=top.authserv_id, found=True, spf=pick(top.spf, lower.spf),
        dkim=pick(top.dkim, lower.dkim), dkim_all=top.dkim_all or lower.dkim_all,
        dmarc=pick(top.dmarc, lower.dmarc), arc=pick(top.arc, lower.arc),
        header_from=top.header_from or lower.header_from,
        dmarc_policy=top.dmarc_policy or lower.dmarc_policy,
        dmarc_disposition=top.dmarc_disposition or lower.dmarc_disposition)


def arc_instance(raw: bytes, instance: int, authserv_id: str) -> AuthVerdict:
    """The verdict an ARC intermediary recorded in its AAR (e.g. Cloudflare's i=1)."""
    headers = _headers(raw)
    if headers is None:
        return AuthVerdict(authserv_id=authserv_id)
    header_from = _header_from(headers)
    for name, value in headers:
        if name.lower() != "arc-authentication-results":
            continue
        flat = " ".join(value.split())
        prefix, _, rest = flat.partition(";")
        # authres rejects the "i=N;" prefix of AAR values (LIBRARY-NOTES.md).
        if prefix.strip().lower() != f"i={instance}":
            continue
        verdict = parse_value(rest.strip(), header_from)
        if verdict is not None and verdict.authserv_id == authserv_id.lower():
            return verdict
    return AuthVerdict(authserv_id=authserv_id)
