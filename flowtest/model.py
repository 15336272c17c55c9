"""The model: what flowtest finds, as plain frozen data.

Results, verdicts, hops, auth verdicts, the receivers' trust rules and the
judging thresholds. It imports nothing of flowtest's, so every layer above
(mail, net, flows, report, cli) can share these shapes without cycles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["pass", "warn", "fail", "error"]
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


def worst(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    """The overall verdict: error > fail > warn > pass (pass when empty)."""
    out: Verdict = "pass"
    for v in verdicts:
        if _RANK[v] > _RANK[out]:
            out = v
    return out


@dataclass(frozen=True)
class Hop:
    by: str
    from_: str
    at: float | None          # Unix time, None if the date was missing or unreadable
    delay_s: float | None     # since the previous hop (or the message's Date for the first)
    source: str = "Received"  # or X-Received

    def to_json(self) -> dict[str, object]:
        return {"by": self.by, "from": self.from_, "at": self.at, "delay_s": self.delay_s,
                "source": self.source}


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


@dataclass(frozen=True)
class Receiver:
    """Whose Authentication-Results to trust (RFC 8601 §5).

    ``authserv`` is the exact authserv-id, or a regular expression when
    ``pattern`` is true; the empty string means the provider writes the header
    without one (Outlook). ``domains`` are the organizational domains of the
    provider's own hosts: a ``Received`` hop into them marks where the
    provider's headers end and the sender's begin.
    """

    authserv: str
    pattern: bool = False
    domains: tuple[str, ...] = ()

    def matches(self, authserv_id: str) -> bool:
        if self.pattern:
            return re.fullmatch(self.authserv, authserv_id, re.IGNORECASE) is not None
        return authserv_id.lower() == self.authserv.lower()



@dataclass(frozen=True)
class Thresholds:
    # check_email_delivery's defaults: warn 95 s, critical 300 s (FACTS.md).
    latency_warn_s: float = 95.0
    latency_fail_s: float = 300.0


@dataclass(frozen=True)
class Diagnosis:
    """One sentence of a probe's diagnosis and the stable code it is keyed by.

    ``code`` is upper-case and never changes with wording or language
    (docs/verdicts.md lists them all); ``verdict`` is what this finding adds
    to the probe's verdict (``pass`` for a plain note)."""

    code: str
    text: str
    verdict: Verdict = "pass"

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "verdict": self.verdict, "message": self.text}


@dataclass(frozen=True)
class ProbeResult:
    leg: Literal["inbound", "outbound"]
    alias: str
    token: str
    verdict: Verdict
    delivered: bool
    folder: str | None
    latency_s: float | None
    hops: tuple[Hop, ...] = ()
    auth: AuthVerdict | None = None
    relay_auth: AuthVerdict | None = None   # Cloudflare's own verdict (its AAR), inbound only
    intact: bool | None = None
    copies: int = 0
    diagnosis: tuple[str, ...] = ()
    sent_at: float | None = None
    seen_at: float | None = None
    smtp_timings: dict[str, float] = field(default_factory=dict)
    # The diagnosis with its codes, one per sentence. Give the findings and
    # the sentences follow. Code that gives only sentences (or replaces only
    # them) keeps working: a sentence with no finding of its own gets the code
    # NOT_TESTED (error results) or NOTE.
    findings: tuple[Diagnosis, ...] = ()

    def __post_init__(self) -> None:
        texts = tuple(f.text for f in self.findings)
        if not self.diagnosis:
            object.__setattr__(self, "diagnosis", texts)
        elif self.diagnosis != texts:
            known = {f.text: f for f in self.findings}
            code, verdict = (("NOT_TESTED", "error") if self.verdict == "error"
                             else ("NOTE", "pass"))
            object.__setattr__(self, "findings", tuple(
                known.get(s) or Diagnosis(code, s, verdict)  # type: ignore[arg-type]
                for s in self.diagnosis))

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.findings)

    def to_json(self) -> dict[str, object]:
        empty = AuthVerdict(authserv_id="")
        return {
            "leg": self.leg,
            "alias": self.alias,
            "token": self.token,
            "verdict": self.verdict,
            "delivered": self.delivered,
            "folder": self.folder,
            "latency_s": None if self.latency_s is None else round(self.latency_s, 3),
            "hops": [h.to_json() for h in self.hops],
            "auth": (self.auth or empty).to_json(),
            "intact": self.intact,
            "copies": self.copies,
            "diagnosis": list(self.diagnosis),
            "findings": [f.to_json() for f in self.findings],
            "relay_auth": None if self.relay_auth is None else {
                "authserv_id": self.relay_auth.authserv_id, "found": self.relay_auth.found,
                **self.relay_auth.to_json()},
            "sent_at": self.sent_at,
            "seen_at": self.seen_at,
            "smtp_timings_s": {k: round(v, 4) for k, v in self.smtp_timings.items()},
        }
