"""DMARC identifier alignment (RFC 7489 §3.1) as the sandbox's receivers decide
it: an oracle independent of flowtest's own reader.

flowtest judges alignment with flowtest.mail.dmarc and flowtest.mail.orgdomain;
if the sandbox decided with the same code, a bug there would agree with itself
and no test could see it. So the sandbox's receivers use another
implementation: publicsuffix2's matcher (the library authheaders itself uses)
over the same Public Suffix List file, with the PSL's default rule ``*``
applied on top (publicsuffix2 in strict mode returns nothing for names under
suffixes the list does not name, such as ``.example`` and ``.test``; RFC 7489
§3.2 and the PSL say the last label is then the suffix).
"""

from __future__ import annotations

import functools
import importlib.resources
import threading

from publicsuffix2 import PublicSuffixList  # type: ignore[import-untyped]

_lock = threading.Lock()  # PublicSuffixList is not documented as thread-safe


@functools.cache
def _psl() -> PublicSuffixList:
    ref = importlib.resources.files("authheaders") / "public_suffix_list.txt"
    with ref.open("r", encoding="utf-8") as psl_file:
        return PublicSuffixList(psl_file)


@functools.lru_cache(maxsize=4096)  # about a dozen calls a message, for the same few names
def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label (the name itself when it
    is a public suffix or has one label)."""
    name = domain.strip().lower().rstrip(".")
    if not name:
        return ""
    with _lock:
        sld = _psl().get_sld(name, wildcard=True, strict=True)
    if sld:
        return str(sld)
    # No PSL rule matched: the default rule "*" makes the last label the suffix.
    labels = name.split(".")
    return ".".join(labels[-2:])


def identifiers_align(authenticated: str, from_domain: str, mode: str = "r") -> bool:
    """Whether an authenticated domain (SPF MAIL FROM domain or DKIM d=) aligns
    with the RFC5322.From domain: strict needs the same name, relaxed the same
    organizational domain."""
    a = authenticated.strip().lower().rstrip(".")
    f = from_domain.strip().lower().rstrip(".")
    if not a or not f:
        return False
    if mode.strip().lower() == "s":
        return a == f
    return organizational_domain(a) == organizational_domain(f)
