"""Delivery status notifications (RFC 3464): what a bounce or delay warning says."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser


@dataclass(frozen=True)
class Bounce:
    final: bool          # Action: failed (True) or delayed (False)
    status: str          # e.g. 5.1.1
    diagnostic: str      # the remote server's reply, e.g. "550 5.1.1 Address does not exist"
    remote_mta: str      # who said it, when the report names it
    reporting_mta: str = ""  # who wrote the report (the sender's own server, usually)

    @property
    def code(self) -> int | None:
        m = re.match(r"\s*(\d{3})", self.diagnostic)
        return int(m.group(1)) if m else None


def is_report(header: bytes) -> bool:
    """Whether a message's header block says it is a delivery report (its
    Content-Type is multipart/report); the body is read by :func:`parse`."""
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(header, headersonly=True)
    except Exception:
        return False
    return msg.get_content_type() == "multipart/report"


def parse(raw: bytes) -> Bounce | None:
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    except Exception:
        return None
    if msg.get_content_type() != "multipart/report":
        return None
    fields: dict[str, str] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        text = ""
        if isinstance(payload, list):  # the email package parses the groups as messages
            text = "\n".join(str(p) for p in payload)
        elif isinstance(payload, str):
            text = payload
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip().lower() not in fields:
                fields[name.strip().lower()] = value.strip()
    if not fields:
        return None
    action = fields.get("action", "failed").lower()
    diagnostic = fields.get("diagnostic-code", "")
    if ";" in diagnostic:
        diagnostic = diagnostic.split(";", 1)[1].strip()
    return Bounce(final=action != "delayed", status=fields.get("status", ""),
                  diagnostic=diagnostic, remote_mta=_mta(fields.get("remote-mta", "")),
                  reporting_mta=_mta(fields.get("reporting-mta", "")))


def _mta(value: str) -> str:
    """``dns; host`` -> ``host`` (RFC 3464 §2.2.2, §2.3.5). A host name has no
    spaces or control characters; anything else in a hostile report is cut."""
    if ";" in value:
        value = value.split(";", 1)[1]
    host = value.strip().split()[0] if value.strip() else ""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", host)[:255].lower().rstrip(".")


_QUOTED_TOKEN_RE = re.compile(rb"X-Flowtest-Probe:\s*(ft-[0-9A-Za-z-]+)", re.IGNORECASE)


def probe_tokens(raw: bytes) -> set[str]:
    """The flowtest tokens a delivery report quotes (the probe's headers are
    inside the report, where a HEADER search does not look)."""
    return {t.decode() for t in _QUOTED_TOKEN_RE.findall(raw)}
