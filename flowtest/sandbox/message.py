"""Byte-level edits a mail server makes: prepend trace headers, swap one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import time


def crlf(raw: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", raw)


def prepend(raw: bytes, *headers: str) -> bytes:
    """Put headers on top, in the order given (first one ends up topmost)."""
    block = "".join(h.rstrip("\r\n") + "\r\n" for h in headers).encode("utf-8")
    return block + raw


def split(raw: bytes) -> tuple[bytes, bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    return (head + b"\r\n", body) if sep else (raw, b"")


def header_lines(head: bytes) -> list[bytes]:
    """Whole header fields, each with its folded continuation lines kept."""
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields


def replace_header(raw: bytes, name: str, value: str | None, *, add: str | None = None) -> bytes:
    """Replace (or with value None, remove) every ``name`` field; add another after."""
    head, body = split(raw)
    prefix = name.lower().encode() + b":"
    out: list[bytes] = []
    for field in header_lines(head):
        if field.lower().startswith(prefix):
            if value is not None:
                out.append(f"{name}: {value}".encode())
                value = None
            continue
        out.append(field)
    if value is not None:
        out.append(f"{name}: {value}".encode())
    if add:
        out.append(add.encode())
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def random_id(n: int = 12, alphabet: str = string.ascii_letters + string.digits) -> str:
    # One read of the system's randomness per id, not one per character (a
    # message carries about 80 random characters); a byte maps to a letter
    # without bias only below the largest multiple of the alphabet's size.
    limit = 256 - 256 % len(alphabet)
    out: list[str] = []
    while len(out) < n:
        out.extend(alphabet[b % len(alphabet)] for b in secrets.token_bytes(2 * n)
                   if b < limit)
    return "".join(out[:n])


def srs0(original: str, domain: str, secret: bytes) -> str:
    """Sender Rewriting Scheme: SRS0=hash=tt=origdomain=user@forwarder-domain."""
    user, _, origdomain = original.rpartition("@")
    tt = base64.b32encode(int(time.time() // 86400 % 1024).to_bytes(2, "big")).decode()[:2]
    mac = hmac.new(secret, f"{tt}{origdomain}{user}".lower().encode(), hashlib.sha1).digest()
    digest = base64.b64encode(mac).decode()[:4].replace("+", "x").replace("/", "y")
    return f"SRS0={digest}={tt}={origdomain}={user}@{domain}"
