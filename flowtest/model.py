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
    delay_s: float | None     # since the previous trusted stamp; None when unknown or skewed
    source: str = "Received"  # or X-Received
    # The stamp contradicts the ones around it (a negative delay beyond the
    # stamps' resolution, an X-Received epoch far from its own date): the hop
    # gets no delay and is left out of the totals (issue 14, item 10).
    clock_skew: bool = False
    # The stamp's resolution: 1.0 for whole-second dates, 0.001 for X-Received
    # epochs and dates written with fractions.
    resolution_s: float = 1.0

    def to_json(self) -> dict[str, object]:
        return {"by": self.by, "from": self.from_, "at": self.at, "delay_s": self.delay_s,
                "source": self.source, "clock_skew": self.clock_skew}


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
    dmarc_disposition: str = ""   # dis=: what the receiver did (Gmail)
    ignored: int = 0              # headers claiming this authserv-id that were not trusted
    dmarc_action: str = ""        # action=: what the receiver did (Microsoft), lowercase
    compauth: str = ""            # Microsoft's composite verdict (compauth=), lowercase
    compauth_reason: str = ""     # its reason= code, e.g. "100", "001"
    # The folder the receiver's own spam verdict implies ("junk", "inbox"), from
    # Microsoft's SCL / SFV:SPM / dest:J; "" when it says nothing.
    implied_folder: str = ""
    instance: int = 0             # the ARC instance (i=) an ARC-Authentication-Results came from
    # How the header was found: "authserv-id", "position" (an id-less header
    # directly above the hop into the receiver), "appended" (written below the
    # message's own headers), or "" when none was trusted.
    trusted_by: str = ""

    @property
    def dmarc_consequence(self) -> str:
        """What the receiver says it did about DMARC: quarantine, reject, none, or ""."""
        for word in (self.dmarc_disposition, self.dmarc_action):
            w = word.lower()
            if w in ("quarantine", "reject", "none"):
                return w
            if w in ("oreject", "o.reject"):   # Microsoft: "override reject": Junk instead
                return "quarantine"
            if w.startswith("pct."):   # Microsoft: pct.quarantine / pct.reject, sampled out
                return "none"
        return ""

    def to_json(self) -> dict[str, object]:
        return {
            "spf": self.spf.to_json(with_aligned=True),
            "dkim": self.dkim.to_json(with_aligned=True),
            "dmarc": self.dmarc.to_json(with_aligned=False),
            "arc": self.arc.to_json(with_aligned=False),
        }


Position = Literal["top", "appended"]


@dataclass(frozen=True)
class Receiver:
    """Whose Authentication-Results to trust (RFC 8601 §5), and where they sit.

    ``authserv`` is the exact authserv-id (a version token such as Microsoft
    365's ``mx.microsoft.com 1`` is not part of it), or a regular expression
    when ``pattern`` is true; the empty string means only the id-less form.
    ``domains`` are the organizational domains of the receiver's own hosts and
    ``hosts`` regular expressions for its domain-less ones (Coremail's ``mx19``,
    iCloud's ``p44-mailgateway-smtp-…``): a ``Received`` hop into them from
    elsewhere marks where the receiver's headers end and the sender's begin.

    ``ids``: more exact authserv-ids it writes. ``idless``: it may write the
    header with no authserv-id at all (Outlook), trusted only directly above
    the hop into its own hosts. ``method_ids``: (method, authserv-id) pairs
    when it writes one header per method (iCloud); a method is then read only
    from its own id. ``merge``: its verdict may be spread over several headers
    (iCloud, Fastmail); otherwise only the topmost counts, so a forged header
    just below the real one can never add a method the real one left out.
    ``position``: ``top`` (above the trace of the hops before it) or
    ``appended`` (below the message's own headers, as NetEase's Coremail
    writes it: the bottom-most claim below its hop wins).
    """

    authserv: str
    pattern: bool = False
    domains: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    idless: bool = False
    method_ids: tuple[tuple[str, str], ...] = ()
    merge: bool = False
    position: Position = "top"
    name: str = ""                # the provider profile's name, "" when ad hoc

    def matches(self, authserv_id: str) -> bool:
        """Whether ``authserv_id`` (without version; "" for none) is one of the receiver's."""
        a = authserv_id.lower()
        if not a:
            return self.idless
        if any(a == i.lower() for i in self.ids):
            return True
        if any(a == i.lower() for _, i in self.method_ids):
            return True
        if not self.authserv:
            return False
        if self.pattern:
            return re.fullmatch(self.authserv, a, re.IGNORECASE) is not None
        return a == self.authserv.lower()

    def reads(self, method: str, authserv_id: str) -> bool:
        """Whether ``method``'s result may be taken from a header with this id."""
        if not self.method_ids or not authserv_id:
            return True
        own = [i.lower() for m, i in self.method_ids if m == method]
        return authserv_id.lower() in own

    @property
    def label(self) -> str:
        """How to name it to a person: the id, or what stands for it."""
        if self.authserv and not self.pattern:
            return self.authserv
        return self.name or self.authserv or "(id-less)"


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
class CloudflareLog:
    """A probe joined with Cloudflare's activity log (``emailRoutingAdaptive``).

    ``state``: ``found`` (rows below), ``pending`` (none yet when the run's
    timeout passed: the log lags minutes), ``absent`` (none long after: the
    message never reached Cloudflare), ``unavailable`` (the API could not say)."""

    state: Literal["found", "pending", "absent", "unavailable"]
    message_id: str
    looked_at: float
    rows: tuple[dict[str, object], ...] = ()
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {"state": self.state, "message_id": self.message_id,
                "looked_at": self.looked_at, "rows": [dict(r) for r in self.rows],
                "detail": self.detail}


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
    cloudflare_log: CloudflareLog | None = None   # inbound: the join with Cloudflare's log

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
            "cloudflare_log": None if self.cloudflare_log is None
            else self.cloudflare_log.to_json(),
        }
