"""SPF as RFC 7208 counts it: DNS-querying terms (§4.6.4, at most 10) and void
lookups (at most 2), followed through include and redirect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from flowtest.i18n import gettext as _
from flowtest.net.dns import Answer

LOOKUP_LIMIT = 10
VOID_LIMIT = 2
_LOOKUP_TERMS = {"include", "a", "mx", "ptr", "exists", "redirect"}

Query = Callable[[str, str], Awaitable[Answer]]


def spf_records(answer: Answer) -> list[str]:
    return [r for r in answer.records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]


def terms(record: str) -> list[tuple[str, str, str]]:
    """(qualifier, name, value) of each term after v=spf1."""
    out = []
    for word in record.split()[1:]:
        qualifier = word[0] if word[0] in "+-~?" else ""
        body = word[len(qualifier):]
        if "=" in body and (":" not in body or body.index("=") < body.index(":")):
            name, _, value = body.partition("=")
        else:
            name, _, value = body.partition(":")
            if "/" in name:
                name = name.split("/", 1)[0]
        out.append((qualifier or "+", name.lower(), value))
    return out


@dataclass
class Walk:
    lookups: int = 0
    voids: int = 0
    chain: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failed: bool = False  # a DNS failure made the count incomplete


async def walk(query: Query, domain: str, record: str, *, walk_: Walk | None = None,
               depth: int = 0, seen: frozenset[str] = frozenset()) -> Walk:
    w = walk_ or Walk()
    indent = "  " * depth
    for _qualifier, name, value in terms(record):
        if name not in _LOOKUP_TERMS:
            continue
        w.lookups += 1
        target = value or domain
        w.chain.append(f"{indent}{domain}: {name}{':' + value if value else ''} "
                       + _("(lookup {number})").format(number=w.lookups))
        if name in ("include", "redirect"):
            if target in seen or depth >= 10:
                w.problems.append(_("{domain} includes itself (a loop)").format(domain=target))
                continue
            answer = await query(target, "TXT")
            if answer.failed:
                w.failed = True
                continue
            found = spf_records(answer)
            if not found:
                w.voids += answer.status in ("nxdomain", "nodata") or not answer.records
                w.problems.append(_("{term} has no SPF record").format(term=f"{name}:{target}"))
                continue
            if len(found) > 1:
                w.problems.append(_("{domain} has {count} SPF records").format(
                    domain=target, count=len(found)))
            await walk(query, target, found[0], walk_=w, depth=depth + 1,
                       seen=seen | {domain})
        elif name in ("a", "mx"):
            answer = await query(target, "A" if name == "a" else "MX")
            if answer.failed:
                w.failed = True
            elif answer.status in ("nxdomain", "nodata"):
                w.voids += 1
    return w
