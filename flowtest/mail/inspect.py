"""Reading any saved message (Gmail's "Show original"): hops, trusted
verdicts, alignment, and what they mean. Same ``hops`` and ``auth`` shapes as
a probe in the JSON report."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Any

from flowtest.mail import authresults, received
from flowtest.model import AuthVerdict, Hop

CLOUDFLARE = "mx.cloudflare.net"


@dataclass(frozen=True)
class Inspection:
    authserv_id: str
    hops: tuple[Hop, ...]
    auth: AuthVerdict
    relay_auth: AuthVerdict | None
    diagnosis: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "authserv_id": self.authserv_id,
            "hops": [h.to_json() for h in self.hops],
            "auth": self.auth.to_json(),
            "relay_auth": self.relay_auth.to_json() if self.relay_auth else None,
            "diagnosis": list(self.diagnosis),
        }


def receiver_id(raw: bytes) -> str:
    """The authserv-id of the topmost Authentication-Results: who received it last."""
    try:
        value = BytesHeaderParser().parsebytes(raw).get("Authentication-Results")
    except Exception:
        return ""
    if value is None:
        return ""
    return re.split(r"[;\s]", " ".join(str(value).split()), maxsplit=1)[0].lower()


def inspect(raw: bytes, authserv_id: str | None = None) -> Inspection:
    who = (authserv_id or receiver_id(raw)).lower()
    auth = authresults.trusted(raw, who) if who else AuthVerdict(authserv_id="")
    relay = authresults.arc_instance(raw, 1, CLOUDFLARE)
    hops = tuple(received.hops(raw))
    said: list[str] = []
    if not who:
        said.append("No Authentication-Results header: the receiver's verdicts are unknown.")
    elif not auth.found:
        said.append(f"No trustworthy Authentication-Results from {who}: any such header sits "
                    "below the receiver's own trace and could have been written by anyone.")
    else:
        aligned = [m for m, r in (("SPF", auth.spf), ("DKIM", auth.dkim)) if r.aligned]
        said.append(f"{who} says: SPF {auth.spf.result} ({auth.spf.domain or '?'}), DKIM "
                    f"{auth.dkim.result} ({auth.dkim.domain or '?'}), DMARC {auth.dmarc.result} "
                    f"for {auth.header_from or '?'}, ARC {auth.arc.result}; aligned: "
                    f"{', '.join(aligned) or 'neither'}.")
        if auth.dmarc_disposition == "quarantine":
            said.append("The receiver applied the sender's quarantine policy: it went to spam.")
        if auth.dmarc.result == "fail" and auth.arc.result == "pass":
            said.append("DMARC failed but a trusted ARC chain vouched for it, so the receiver "
                        "may still have delivered it to the inbox.")
        if auth.ignored:
            said.append(f"{auth.ignored} lower header(s) claiming to be {who} were ignored.")
    if relay.found:
        said.append(f"Forwarded by Cloudflare Email Routing, which saw: SPF {relay.spf.result}, "
                    f"DKIM {relay.dkim.result} ({relay.dkim.domain or '?'}), DMARC "
                    f"{relay.dmarc.result}.")
    timed = [h for h in hops if h.delay_s is not None]
    if timed:
        slowest = max(timed, key=lambda h: h.delay_s or 0.0)
        total = sum(h.delay_s or 0.0 for h in timed)
        said.append(f"{len(hops)} hops, {total:.1f} s in all; the slowest was {slowest.delay_s:.1f}"
                    f" s into {slowest.by or '?'}.")
    return Inspection(who, hops, auth, relay if relay.found else None, tuple(said))
