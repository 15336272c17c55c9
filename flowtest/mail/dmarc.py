"""DMARC records (RFC 7489 §6.3) and identifier alignment (§3.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flowtest.mail.orgdomain import org_domain

_TAG_RE = re.compile(r"(\w+)\s*=\s*([^;]*)")


@dataclass(frozen=True)
class DmarcRecord:
    policy: str                 # none, quarantine, reject ("" if the tag is missing or bad)
    subdomain_policy: str
    adkim: str = "r"            # r (relaxed) or s (strict)
    aspf: str = "r"
    rua: tuple[str, ...] = ()


def is_dmarc(text: str) -> bool:
    return text.replace(" ", "").lower().startswith("v=dmarc1")


def parse_record(text: str) -> DmarcRecord:
    tags = {k.lower(): v.strip() for k, v in _TAG_RE.findall(text)}
    policy = tags.get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        policy = ""
    sub = tags.get("sp", "").lower()
    return DmarcRecord(
        policy=policy,
        subdomain_policy=sub if sub in ("none", "quarantine", "reject") else policy,
        adkim="s" if tags.get("adkim", "r").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "r").lower() == "s" else "r",
        rua=tuple(u.strip() for u in tags.get("rua", "").split(",") if u.strip()),
    )


def aligned(identifier: str, from_domain: str, mode: str = "r") -> bool:
    """Relaxed: same organizational domain. Strict: the same name."""
    a = identifier.lower().rstrip(".")
    b = from_domain.lower().rstrip(".")
    if not a or not b:
        return False
    return a == b if mode == "s" else org_domain(a) == org_domain(b)
