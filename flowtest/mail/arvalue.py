"""One Authentication-Results value, read as real receivers write it.

The value reader is our own, not authres: real receivers write forms that the
RFC 8601 grammar does not allow (FACTS.md, tests/data/real/): no authserv-id,
``dmarc=pass(p=NONE,sp=QUARANTINE)``, ``smtp.mail=``, bare ``outlook.com;``
tokens, empty ``smtp.mailfrom=;``, a trailing ``;``, RFC 2047 encoded-words,
and Coremail folding a line inside a value. Whose header to believe is
:mod:`flowtest.mail.authresults`' business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from flowtest.mail.dmarc import aligned
from flowtest.model import AuthVerdict, MethodResult, Receiver

_POLICY_RE = re.compile(r"(?<![\w.])p=(\w+)", re.IGNORECASE)
_DIS_RE = re.compile(r"(?<![\w.])dis=(\w+)", re.IGNORECASE)
_PUBLISHED_RE = re.compile(r"policy\.published-domain-policy=(\w+)", re.IGNORECASE)
_APPLIED_RE = re.compile(r"policy\.applied-disposition=(\w+)", re.IGNORECASE)
_CF_POLICY_RE = re.compile(r"policy\.dmarc=(\w+)", re.IGNORECASE)
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_MAX_VALUE = 20_000   # longer values are cut: no receiver writes more


@dataclass
class Clause:
    """One ``method=result`` statement of a header, with its properties."""

    method: str
    result: str
    props: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)


@dataclass
class Parsed:
    authserv_id: str          # "" when the header has none (Outlook)
    version: str
    clauses: list[Clause]


def _decode(value: str) -> str:
    """RFC 2047 encoded-words, which Outlook uses for the whole value when the
    From domain is not ASCII (FACTS.md)."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # malformed encoded-words: read the value as it is
        return value


def _unfold(value: str) -> str:
    # Coremail folds inside a token ("a63b\r\n\t8f9e", "dkim=\r\n\tpass"):
    # a fold right after "=" is no separator at all.
    value = re.sub(r"=\r?\n[ \t]+", "=", value)
    return re.sub(r"\r?\n", "", value)


def _split(value: str) -> list[tuple[str, list[str]]]:
    """Clauses split at ";" outside comments and quotes: (text, comments).

    Comments are cut out of the text (replaced by a space); quoted strings
    stay whole, quotes removed."""
    out: list[tuple[str, list[str]]] = []
    text: list[str] = []
    comments: list[str] = []
    comment: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            (comment if depth else text).append(ch)
            escaped = False
        elif ch == "\\" and (depth or quoted):
            escaped = True
        elif depth:
            if ch == "(":
                depth += 1
                comment.append(ch)
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    comments.append("".join(comment).strip())
                    comment = []
                    text.append(" ")
                else:
                    comment.append(ch)
            else:
                comment.append(ch)
        elif quoted:
            if ch == '"':
                quoted = False
            else:
                text.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth = 1
        elif ch == ";":
            out.append(("".join(text), comments))
            text, comments = [], []
        else:
            text.append(ch)
    if comment:
        comments.append("".join(comment).strip())
    out.append(("".join(text), comments))
    return out


def _clause(text: str, comments: list[str]) -> Clause | None:
    # Spaces around "=" are allowed (CFWS) and written by Coremail.
    words = re.sub(r"\s*=\s*", "=", text.strip()).split()
    if not words or "=" not in words[0]:
        return None
    method, _, result = words[0].partition("=")
    method = method.split("/", 1)[0].lower()   # "dkim/1=pass": a method version
    if not method or not re.fullmatch(r"[\w.-]+", method):
        return None
    clause = Clause(method[:64], result.lower()[:64] or "none",
                    comments=[c[:500] for c in comments])
    last = ""
    for word in words[1:]:
        name, eq, val = word.partition("=")
        if eq and name:
            last = name.lower()
            clause.props.setdefault(last, val)
        elif last:
            # A bare word after a property: the value was folded in two
            # (Coremail); RFC 8601 allows no bare words here.
            clause.props[last] += word
    return clause


def parse(value: str) -> Parsed | None:
    """One Authentication-Results value (without the field name), leniently.

    Returns None when it holds no ``method=result`` at all."""
    value = _unfold(_decode(value[:_MAX_VALUE]))
    parts = _split(value)
    first_text = parts[0][0].strip()
    authserv_id = version = ""
    body = parts
    if "=" not in first_text:
        words = first_text.split()
        if not words or not _ID_RE.fullmatch(words[0]):
            return None   # no authserv-id and no result: nothing to read
        authserv_id = words[0].lower().rstrip(".")[:255]
        version = words[1] if len(words) > 1 and words[1].isdigit() else ""
        body = parts[1:]
    # Bare tokens after the first clause ("hotmail.com;" in Microsoft's old
    # form, the recipient's domain) are no results: _clause skips them.
    clauses = [c for c in (_clause(t, cm) for t, cm in body) if c is not None]
    if not clauses and not authserv_id:
        return None
    return Parsed(authserv_id, version, clauses)


def _domain(value: str) -> str:
    value = value.strip().strip('"<>').lstrip("@")
    d = value.rpartition("@")[2].lower().rstrip(".")[:255]
    return "" if d in ("none", "unknown") else d


def header_from_domain(headers: list[tuple[str, str]]) -> str:
    values = [v for k, v in headers if k.lower() == "from"]
    for _, addr in getaddresses(values):
        if "@" in addr:
            return _domain(addr)
    return ""


def header_list(raw: bytes) -> list[tuple[str, str]] | None:
    try:
        parsed = BytesHeaderParser().parsebytes(raw)
        return [(str(k), str(v)) for k, v in parsed.items()]
    except Exception:  # hostile input must not crash a reader
        return None


def _spf_kind(c: Clause) -> int:
    """0: a MAIL FROM result, 1: unlabelled, 2: HELO only (RFC 7208 §2.3)."""
    if "smtp.mailfrom" in c.props or "smtp.mail" in c.props:
        return 0
    return 2 if "smtp.helo" in c.props else 1


def verdict(parsed: Parsed, header_from: str = "", *, aspf: str = "r", adkim: str = "r",
            rec: Receiver | None = None) -> AuthVerdict:
    """The verdict one parsed header states. With ``rec``, a receiver that writes
    one header per method (iCloud) has each method read only from its own id."""
    def mine(method: str) -> list[Clause]:
        if rec is not None and not rec.reads(method, parsed.authserv_id):
            return []
        return [c for c in parsed.clauses if c.method == method]

    spf = MethodResult()
    spfs = sorted(mine("spf"), key=_spf_kind)   # stable: MAIL FROM first, HELO last
    if spfs:
        c = spfs[0]
        mail_from = c.props.get("smtp.mailfrom", c.props.get("smtp.mail"))
        d = _domain(mail_from if mail_from is not None else c.props.get("smtp.helo", ""))
        spf = MethodResult(c.result, d, comment=" ".join(c.comments))
    dmarc = MethodResult()
    action = policy = disposition = ""
    dmarcs = mine("dmarc")
    if dmarcs:
        c = dmarcs[0]
        dmarc = MethodResult(c.result, _domain(c.props.get("header.from", "")),
                             comment=" ".join(c.comments))
        action = c.props.get("action", "").lower()
        words = " ".join([*c.comments, *(f"{k}={v}" for k, v in c.props.items())])
        m = _POLICY_RE.search(" ".join(c.comments))
        policy = m.group(1).lower() if m else ""
        m = _PUBLISHED_RE.search(words) or _CF_POLICY_RE.search(words)
        policy = policy or (m.group(1).lower() if m else "")
        m = _DIS_RE.search(" ".join(c.comments)) or _APPLIED_RE.search(words)
        disposition = m.group(1).lower() if m else ""
    arcs = mine("arc")
    arc = MethodResult(arcs[0].result, comment=" ".join(arcs[0].comments)) if arcs \
        else MethodResult()
    compauths = mine("compauth")
    from_domain = header_from or dmarc.domain
    spf = replace(spf, aligned=spf.result == "pass" and aligned(spf.domain, from_domain, aspf))
    dkims = [MethodResult(c.result, d, c.result == "pass" and aligned(d, from_domain, adkim))
             for c in mine("dkim")
             for d in (_domain(c.props.get("header.d", "") or c.props.get("header.i", "")),)]
    return AuthVerdict(
        authserv_id=parsed.authserv_id, found=True, spf=spf, dkim=best_dkim(dkims),
        dkim_all=tuple(dkims), dmarc=dmarc, arc=arc, header_from=from_domain,
        dmarc_policy=policy, dmarc_disposition=disposition, dmarc_action=action,
        compauth=compauths[0].result if compauths else "",
        compauth_reason=compauths[0].props.get("reason", "") if compauths else "")


def best_dkim(dkims: list[MethodResult]) -> MethodResult:
    # The DKIM result that matters for DMARC: an aligned pass, else any pass, else the first.
    return (next((d for d in dkims if d.aligned), None)
            or next((d for d in dkims if d.result == "pass"), None)
            or (dkims[0] if dkims else MethodResult()))


def parse_value(value: str, header_from: str = "", *, aspf: str = "r",
                adkim: str = "r") -> AuthVerdict | None:
    """One Authentication-Results value (without the field name); Outlook's
    id-less form gets the authserv-id ""."""
    try:
        parsed = parse(value)
    except Exception:  # a reader never crashes on hostile input
        return None
    if parsed is None:
        return None
    return verdict(parsed, header_from, aspf=aspf, adkim=adkim)
