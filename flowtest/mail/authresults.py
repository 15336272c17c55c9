"""Reading Authentication-Results the way RFC 8601 §5 says to trust them.

Only the topmost header whose authserv-id is the receiving provider's own is
believed, and only if it sits above the trace headers of the hops before that
provider: anything lower could have been written by the sender. Cloudflare's
own verdict is read from ``ARC-Authentication-Results: i=1; mx.cloudflare.net``,
which its ARC seal covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses

import authres

from flowtest.mail.dmarc import aligned
from flowtest.mail.orgdomain import org_domain

_PARSER = authres.all_features()
_POLICY_RE = re.compile(r"\bp=(\w+)(?:\s+sp=(\w+))?(?:\s+dis=(\w+))?", re.IGNORECASE)
_CLAUSE_COMMENT_RE = re.compile(r"^\s*([\w.-]+)\s*=\s*([\w-]+)\s*\(([^)]*)\)")


@dataclass(frozen=True)
class MethodResult:
    result: str = "none"
    domain: str = ""
    aligned: bool | None = None
    comment: str = ""

    def to_json(self, *, with_aligned: bool) -> dict[str, object]:
        out: dict[str, object] = {"result": self.result, "domain": self.domain}
        if with_aligned:
            out["aligned"] = bool(self.aligned)
        return out


@dataclass(frozen=True)
class AuthVerdict:
    """What the trusted receiver concluded."""

    authserv_id: str
    found: bool = False
    spf: MethodResult = field(default_factory=MethodResult)
    dkim: MethodResult = field(default_factory=MethodResult)
    dkim_all: tuple[MethodResult, ...] = ()
    dmarc: MethodResult = field(default_factory=MethodResult)
    arc: MethodResult = field(default_factory=MethodResult)
    header_from: str = ""
    dmarc_policy: str = ""        # p= as the receiver reported it, lowercase
    dmarc_disposition: str = ""   # dis=: what the receiver did
    ignored: int = 0              # headers claiming this authserv-id that were not trusted

    def to_json(self) -> dict[str, object]:
        return {
            "spf": self.spf.to_json(with_aligned=True),
            "dkim": self.dkim.to_json(with_aligned=True),
            "dmarc": self.dmarc.to_json(with_aligned=False),
            "arc": self.arc.to_json(with_aligned=False),
        }


def _domain(value: str) -> str:
    value = value.strip().strip('"').lstrip("@")
    return value.rpartition("@")[2].lower().rstrip(".")


def _header_from(headers: list[tuple[str, str]]) -> str:
    values = [v for k, v in headers if k.lower() == "from"]
    for _, addr in getaddresses(values):
        if "@" in addr:
            return _domain(addr)
    return ""


def _aligned(a: str, b: str) -> bool:
    return aligned(a, b, "r")


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
    """One Authentication-Results value (without the field name)."""
    flat = " ".join(value.split())
    try:
        parsed = _PARSER.parse(f"Authentication-Results: {flat}")
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
    return AuthVerdict(
        authserv_id=str(parsed.authserv_id or "").lower(), found=True, spf=spf, dkim=best,
        dkim_all=tuple(dkims), dmarc=dmarc, arc=arc, header_from=from_domain,
        dmarc_policy=policy, dmarc_disposition=disposition)


def _received_by(value: str) -> tuple[str, bool]:
    flat = " ".join(value.split())
    by = re.search(r"\bby\s+([^\s;]+)", flat, re.IGNORECASE)
    has_from = re.match(r"\s*from\s", flat, re.IGNORECASE) is not None
    return (by.group(1).lower().rstrip(".") if by else ""), has_from


def trusted(raw: bytes, authserv_id: str, *, aspf: str = "r", adkim: str = "r") -> AuthVerdict:
    """The receiver's verdict, or an empty one (``found=False``).

    ``aspf``/``adkim`` are the From domain's alignment modes (``r`` or ``s``)."""
    headers = _headers(raw)
    if headers is None:
        return AuthVerdict(authserv_id=authserv_id)
    header_from = _header_from(headers)
    want = authserv_id.lower()
    receiver_org = org_domain(want.split()[0]) if want else ""
    chosen: AuthVerdict | None = None
    for name, value in headers:
        lname = name.lower()
        if lname == "received" and chosen is None:
            by, has_from = _received_by(value)
            # The first hop into the receiver from outside: anything below it
            # arrived with the message and may be forged.
            if has_from and by and not _aligned(by, receiver_org):
                break
        if lname != "authentication-results":
            continue
        verdict = parse_value(value, header_from, aspf=aspf, adkim=adkim)
        if verdict is not None and verdict.authserv_id == want and chosen is None:
            chosen = verdict
    # Count the lower, untrusted claims too.
    total = sum(1 for name, value in headers if name.lower() == "authentication-results"
                and value.split(";", 1)[0].strip().lower() == want)
    if chosen is None:
        return AuthVerdict(authserv_id=authserv_id, ignored=total, header_from=header_from)
    return AuthVerdict(**{**chosen.__dict__, "ignored": total - 1})


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
