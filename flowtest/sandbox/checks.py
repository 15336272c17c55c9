"""What a receiving MX concludes about a message: SPF (pyspf), every DKIM
signature (dkimpy), the ARC chain (dkimpy) and DMARC (authheaders' record
discovery; alignment by :mod:`flowtest.sandbox.alignment`, never by flowtest's
own reader, so the sandbox stays an independent oracle for it).

Blocking: these libraries make synchronous DNS queries. The sandbox calls
:func:`evaluate` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any

import authheaders
import authheaders.dmarc_lookup
import dkim
import dns.exception
import dns.resolver
import spf

from flowtest.sandbox.alignment import identifiers_align, organizational_domain

# authheaders re-reads the PSL on each call and groups reserved TLDs wrongly
# (LIBRARY-NOTES.md); the oracle's function is cached and applies the default rule.
authheaders.get_org_domain = organizational_domain
authheaders.dmarc_lookup.get_org_domain = organizational_domain

DnsFunc = Callable[..., bytes | None]

# pyspf has no resolver setting; route its lookups through the resolver of
# whichever world is asking, via a context variable (asyncio.to_thread copies it).
_spf_resolver: contextvars.ContextVar[dns.resolver.Resolver | None] = contextvars.ContextVar(
    "flowtest_spf_resolver", default=None)
_original_spf_lookup = spf.DNSLookup


def _spf_lookup(name: str, qtype: str, strict: bool = True, timeout: float = 30) -> list[Any]:
    resolver = _spf_resolver.get()
    if resolver is None:
        return list(_original_spf_lookup(name, qtype, strict, timeout))
    out: list[Any] = []
    try:
        answers = resolver.resolve(name, qtype, lifetime=min(timeout, 5), search=False)
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
        return out
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise spf.TempError(f"DNS {exc}") from None
    for rdata in answers:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            out.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), rdata.strings))
    return out


spf.DNSLookup = _spf_lookup


def make_dnsfunc(resolver: dns.resolver.Resolver) -> DnsFunc:
    """dkimpy's DNS hook: the TXT record at a name, as bytes."""

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        qname = name.decode() if isinstance(name, bytes) else name
        try:
            answers = resolver.resolve(qname.rstrip("."), "TXT", lifetime=timeout, search=False)
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            return None
        for rdata in answers:
            return b"".join(rdata.strings)
        return None

    return dnsfunc


@dataclass(frozen=True)
class SpfCheck:
    result: str          # pass, fail, softfail, neutral, none, permerror, temperror
    mail_from: str
    domain: str
    ip: str
    explanation: str = ""


@dataclass(frozen=True)
class DkimCheck:
    result: str          # pass, fail, neutral, temperror
    domain: str
    selector: str
    b: str               # first 8 characters of the signature
    reason: str = ""


@dataclass(frozen=True)
class DmarcCheck:
    result: str          # pass, fail, none
    from_domain: str
    policy: str = "none"
    subdomain_policy: str = "none"
    disposition: str = "none"
    spf_aligned: bool = False
    dkim_aligned: bool = False


@dataclass(frozen=True)
class ArcCheck:
    result: str          # none, pass, fail
    instances: int = 0
    comment: str = ""


@dataclass(frozen=True)
class Verdicts:
    spf: SpfCheck
    dkim: list[DkimCheck] = field(default_factory=list)
    arc: ArcCheck = field(default_factory=lambda: ArcCheck("none"))
    dmarc: DmarcCheck | None = None

    @property
    def dkim_pass(self) -> bool:
        return any(d.result == "pass" for d in self.dkim)


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(">")


def header_from_domain(raw: bytes) -> str:
    headers = BytesHeaderParser().parsebytes(raw)
    values = headers.get_all("From") or []
    addresses = getaddresses([str(v) for v in values])
    for _, addr in addresses:
        if "@" in addr:
            return _domain_of(addr)
    return ""


class _Collect:
    """A logger stand-in: dkimpy says why a signature failed only in its log."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args if args else msg)

    info = warning = error = debug


def _sig_tags(value: bytes) -> dict[bytes, bytes]:
    flat = re.sub(rb"\s+", b"", value)
    return {m.group(1): m.group(2) for m in re.finditer(rb"(?:^|;)([a-z]+)=([^;]*)", flat)}


def check_dkim(raw: bytes, dnsfunc: DnsFunc) -> list[DkimCheck]:
    headers = BytesHeaderParser().parsebytes(raw)
    signatures = headers.get_all("DKIM-Signature") or []
    out: list[DkimCheck] = []
    for idx, value in enumerate(signatures):
        tags = _sig_tags(str(value).encode())
        domain = tags.get(b"d", b"").decode(errors="replace")
        selector = tags.get(b"s", b"").decode(errors="replace")
        b = tags.get(b"b", b"").decode(errors="replace")[:8]
        log = _Collect()
        try:
            ok = dkim.DKIM(raw, logger=log).verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as exc:
            ok, log.lines = False, [*log.lines, str(exc)]
        except dns.exception.DNSException:
            out.append(DkimCheck("temperror", domain, selector, b, "DNS error"))
            continue
        if ok:
            out.append(DkimCheck("pass", domain, selector, b))
            continue
        text = " ".join(log.lines).lower()
        if "body hash mismatch" in text:
            out.append(DkimCheck("neutral", domain, selector, b, "body hash did not verify"))
        elif "missing public key" in text or "no key" in text or "unable to get key" in text \
                or dnsfunc(f"{selector}._domainkey.{domain}".encode()) is None:
            out.append(DkimCheck("neutral", domain, selector, b, "no key for signature"))
        else:
            out.append(DkimCheck("fail", domain, selector, b, "signature did not verify"))
    return out


def check_arc(raw: bytes, dnsfunc: DnsFunc) -> ArcCheck:
    headers = BytesHeaderParser().parsebytes(raw)
    seals = headers.get_all("ARC-Seal") or []
    if not seals:
        return ArcCheck("none")
    try:
        cv, _results, comment = dkim.arc_verify(raw, dnsfunc=dnsfunc)
    except Exception as exc:  # dkimpy raises many kinds on malformed chains
        return ArcCheck("fail", len(seals), str(exc))
    return ArcCheck(cv.decode() if isinstance(cv, bytes) else str(cv), len(seals),
                    str(comment or ""))


def check_dmarc(raw: bytes, spf_check: SpfCheck, dkims: list[DkimCheck],
                dnsfunc: DnsFunc) -> DmarcCheck | None:
    from_domain = header_from_domain(raw)
    if not from_domain:
        return DmarcCheck("permerror", "")

    def txt(name: str) -> str | None:
        value = dnsfunc(name.encode())
        return value.decode(errors="replace") if value else None

    try:
        record, _org = authheaders.dmarc_lookup.receiver_record(from_domain, dnsfunc=txt)
    except authheaders.dmarc_lookup.DMARCException:
        return DmarcCheck("permerror", from_domain)
    if not record:
        return None  # no policy: Gmail leaves the dmarc= clause out
    policy = record.get("p", "none").lower()
    sub = record.get("sp", policy).lower()
    spf_ok = spf_check.result == "pass" and identifiers_align(
        spf_check.domain, from_domain, record.get("aspf", "r"))
    dkim_ok = any(d.result == "pass"
                  and identifiers_align(d.domain, from_domain, record.get("adkim", "r"))
                  for d in dkims)
    if spf_ok or dkim_ok:
        return DmarcCheck("pass", from_domain, policy, sub, "none", spf_ok, dkim_ok)
    applied = policy if organizational_domain(from_domain) == from_domain else sub
    return DmarcCheck("fail", from_domain, policy, sub, applied, spf_ok, dkim_ok)


def check_spf(ip: str, mail_from: str, helo: str, resolver: dns.resolver.Resolver) -> SpfCheck:
    sender = mail_from or f"postmaster@{helo}"
    token = _spf_resolver.set(resolver)
    try:
        result, explanation = spf.check2(i=ip, s=sender, h=helo)
    finally:
        _spf_resolver.reset(token)
    return SpfCheck(result, mail_from, _domain_of(sender), ip, explanation)


def evaluate(raw: bytes, *, ip: str, mail_from: str, helo: str,
             resolver: dns.resolver.Resolver) -> Verdicts:
    if resolver.cache is None:
        # One message's checks ask for the same records several times (a
        # signer's key for DKIM, again for ARC, again to tell "no key" from
        # "bad signature"), as a receiver's caching resolver would answer from
        # its cache. Per evaluation only: faults switched between messages
        # show up at once.
        resolver.cache = dns.resolver.Cache()
    dnsfunc = make_dnsfunc(resolver)
    spf_check = check_spf(ip, mail_from, helo, resolver)
    dkims = check_dkim(raw, dnsfunc)
    arc = check_arc(raw, dnsfunc)
    dmarc = check_dmarc(raw, spf_check, dkims, dnsfunc)
    return Verdicts(spf_check, dkims, arc, dmarc)
