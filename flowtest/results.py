"""Results: frozen, one shape whatever happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from flowtest.mail.authresults import AuthVerdict
from flowtest.mail.received import Hop

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
    relay_auth: AuthVerdict | None = None   # Cloudflare's own verdict (ARC i=1), inbound only
    intact: bool | None = None
    copies: int = 0
    diagnosis: tuple[str, ...] = ()
    sent_at: float | None = None
    seen_at: float | None = None
    smtp_timings: dict[str, float] = field(default_factory=dict)

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
            "sent_at": self.sent_at,
            "seen_at": self.seen_at,
            "smtp_timings_s": {k: round(v, 4) for k, v in self.smtp_timings.items()},
        }
