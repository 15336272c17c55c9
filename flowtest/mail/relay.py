"""Cloudflare's own verdict on a forwarded message.

Cloudflare records what it concluded on arrival in an
``ARC-Authentication-Results`` header with its authserv-id
``mx.cloudflare.net`` (FACTS.md). It is found by that id, not by its
instance: a message that arrived with an ARC set of its own makes
Cloudflare's set ``i=2`` or higher. Cloudflare prepends its set, so the
topmost such header is its own; lower ones claiming its id were written
before Cloudflare saw the message and are never believed.
"""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from flowtest.mail.authresults import parse_value
from flowtest.model import AuthVerdict

CLOUDFLARE_AUTHSERV_ID = "mx.cloudflare.net"
_INSTANCE_RE = re.compile(r"^\s*i\s*=\s*(\d+)\s*$", re.IGNORECASE)


def verdict(raw: bytes, authserv_id: str = CLOUDFLARE_AUTHSERV_ID) -> AuthVerdict:
    """The topmost AAR of ``authserv_id`` (any instance), or an empty verdict."""
    try:
        headers = BytesHeaderParser().parsebytes(raw)
        values = [str(v) for v in headers.get_all("ARC-Authentication-Results") or []]
        froms = [str(v) for v in headers.get_all("From") or []]
    except Exception:  # hostile input must not crash a reader
        return AuthVerdict(authserv_id=authserv_id)
    header_from = next((a.rpartition("@")[2].lower() for _, a in getaddresses(froms)
                        if "@" in a), "")
    for value in values:
        flat = " ".join(value.split())
        prefix, _, rest = flat.partition(";")
        # authres rejects the "i=N;" prefix of AAR values (LIBRARY-NOTES.md).
        if _INSTANCE_RE.match(prefix) is None:
            continue
        parsed = parse_value(rest.strip(), header_from)
        if parsed is not None and parsed.authserv_id == authserv_id.lower():
            return parsed
    return AuthVerdict(authserv_id=authserv_id)
