"""Probes: messages that carry a unique token, and a digest of what must
arrive unchanged."""

from __future__ import annotations

import base64
import calendar
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import formatdate
from typing import Literal

Leg = Literal["inbound", "outbound"]
TOKEN_HEADER = "X-Flowtest-Probe"
TOKEN_PREFIX = "ft-"


def new_run_id() -> str:
    """Short, unique per run; every token of the run starts with ``ft-<run id>-``."""
    return f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}{secrets.token_hex(3)}"


def token_for(run_id: str, n: int) -> str:
    # A fixed width and a closing "x" make tokens unambiguous: an IMAP HEADER
    # search is a substring match, so "…-7" must not also match "…-70".
    return f"{TOKEN_PREFIX}{run_id}-{n:04d}x"


def run_prefix(run_id: str) -> str:
    return f"{TOKEN_PREFIX}{run_id}-"


# A token as token_for() makes it: ft-<UTC yyyymmddHHMMSS><6 hex>-<4 digits>x.
_TOKEN_RE = re.compile(r"ft-(\d{14})[0-9a-f]{6}-\d{4}x")


def started_at(token: str) -> float | None:
    """When the run that made this token started (UTC epoch seconds), or None
    if it is not exactly a token of flowtest's making."""
    m = _TOKEN_RE.fullmatch(token.strip())
    if m is None:
        return None
    try:
        return calendar.timegm(time.strptime(m.group(1), "%Y%m%d%H%M%S"))
    except ValueError:
        return None


def is_stale(token: str, now: float, older_than_s: float) -> bool:
    """A probe of a run that started more than ``older_than_s`` ago: no run
    still waits for it, so the stale sweep may move it."""
    started = started_at(token)
    return started is not None and now - started > older_than_s


def token_in_header(header: bytes) -> str | None:
    """The X-Flowtest-Probe value of a message's header block, or None. Any
    value is returned: whether it is a token of this run is the caller's call."""
    value = BytesHeaderParser().parsebytes(header).get(TOKEN_HEADER)
    return str(value).strip() if value is not None else None


def run_id_of(token: str) -> str:
    """The run id inside a token made by :func:`token_for`."""
    return token.removeprefix(TOKEN_PREFIX).rsplit("-", 1)[0]


@dataclass(frozen=True)
class Probe:
    token: str
    leg: Leg
    sender: str
    recipient: str
    message_id: str
    subject: str
    raw: bytes
    digest: str


def build(token: str, *, leg: Leg, sender: str, recipient: str, html: bool = False,
          attachment: bytes | None = None, now: float | None = None) -> Probe:
    """A probe message. The token is in Message-ID, X-Flowtest-Probe and Subject."""
    at = time.time() if now is None else now
    domain = sender.rpartition("@")[2] or "flowtest.invalid"
    message_id = f"<{token}@{domain}>"
    subject = f"flowtest {leg} probe {token}"
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = formatdate(at, localtime=False)
    msg["Message-ID"] = message_id
    msg[TOKEN_HEADER] = token
    msg["Auto-Submitted"] = "auto-generated"  # keep vacation responders quiet (RFC 3834)
    text = (f"This is a flowtest {leg} probe.\n"
            f"Token: {token}\nSent: {formatdate(at, localtime=False)}\n"
            "It checks that mail for this address arrives intact. flowtest removes it "
            "after the check unless told to keep it.\n")
    msg.set_content(text)
    if html:
        msg.add_alternative(f"<html><body><p>flowtest {leg} probe</p><p>Token: <b>{token}</b>"
                            "</p></body></html>\n", subtype="html")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                           filename=f"{token}.bin")
    raw = msg.as_bytes()
    return Probe(token, leg, sender, recipient, message_id, subject, raw, content_digest(raw))


def content_digest(raw: bytes) -> str:
    """SHA-256 over each leaf part's type and decoded content.

    Headers are left out (every hop adds some); line endings and trailing
    whitespace are normalized because transports may rewrite them legally.
    """
    h = hashlib.sha256()
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(raw)
        for part in msg.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                payload = b""
            lines = payload.replace(b"\r\n", b"\n").rstrip().split(b"\n")
            h.update(part.get_content_type().encode())
            h.update(b"\0")
            h.update(b"\n".join(line.rstrip() for line in lines))
            h.update(b"\0")
    except Exception:  # a hostile message must not crash the check (it is then "altered")
        h.update(b"unparseable")
    return base64.b32encode(h.digest()[:15]).decode().lower()
