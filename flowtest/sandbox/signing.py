"""DKIM and ARC header fields with the tags, tag order and signed-header lists
the real signers use (samples/real/), signed with dkimpy's own primitives.

dkimpy's ``sign`` and ``arc_sign`` write their own tag order, always put
``t=`` in the ARC-Seal (Cloudflare's real seal has none) and rebuild the
ARC-Authentication-Results from a parsed Authentication-Results, dropping its
comments (Gmail's real AAR repeats its AR word for word). Verification stays
dkimpy's, so whatever this writes must verify there.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import Any

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.crypto import RSASSA_PKCS1_v1_5_sign, parse_pem_private_key

from flowtest.sandbox.message import crlf, header_lines, split

RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")


@functools.cache
def _key(pem: bytes) -> Any:
    return parse_pem_private_key(pem)


def body_hash(msg: bytes) -> str:
    """bh= for relaxed body canonicalization and SHA-256."""
    _, body = split(crlf(msg))
    return base64.b64encode(hashlib.sha256(RELAXED.canonicalize_body(body)).digest()).decode()


def header_names(msg: bytes) -> list[str]:
    """The field names of the header block, top to bottom, as written."""
    head, _ = split(crlf(msg))
    return [f.split(b":", 1)[0].decode("ascii", "replace").strip() for f in header_lines(head)]


def fold_tags(name: str, tags: list[tuple[str, str]], indent: str, width: int = 76) -> str:
    """``tag=value;`` pieces packed into lines of at most ``width``, breaking
    only where the DKIM grammar allows folding white space: between tags, and
    before a ``:`` inside h= (RFC 6376 §3.5), as the real signers do."""
    pieces: list[tuple[str, str]] = []  # (separator before it, text)
    end = ";"
    for tag, value in tags:
        if tag == "h":
            names = value.split(":")
            pieces.append((" ", f"h={names[0]}" + (end if len(names) == 1 else "")))
            for j, n in enumerate(names[1:], 1):
                pieces.append(("", f":{n}" + (end if j == len(names) - 1 else "")))
        else:
            pieces.append((" ", f"{tag}={value}{end}"))
    lines: list[str] = []
    line = f"{name}:"
    for sep, text in pieces:
        if len(line) + len(sep) + len(text) > width and line.strip() != f"{name}:":
            lines.append(line)
            line = indent + (" " if sep == "" and indent.startswith(" ") else "") + text
        else:
            line += sep + text
    lines.append(line)
    return "\r\n".join(lines)


def signature(msg: bytes, name: str, tags: list[tuple[str, str]], signed: list[str],
              key_pem: bytes, indent: str = "\t") -> bytes:
    """A signature header field ``name`` over ``msg``, CRLF-terminated.

    ``tags`` are written in the given order; a ``("bh", "")`` entry is filled
    with the body hash, and ``b=`` follows on a line of its own. ``signed`` are
    the header names the signature covers, in h= order (an absent or repeated
    name signs the null string, RFC 6376 §5.4.2, as real signers do to freeze
    them). Hashing and the RSA step are dkimpy's own."""
    msg = crlf(msg)
    tags = [(t, body_hash(msg) if t == "bh" and not v else v) for t, v in tags]
    head = fold_tags(name, tags, indent) + "\r\n" + indent + "b="
    field_name, _, value = head.partition(":")
    signer = dkim.DKIM(msg)
    hasher = hashlib.sha256()
    dkim.hash_headers(hasher, RELAXED, RELAXED.canonicalize_headers(signer.headers),
                      [s.lower().encode() for s in signed],
                      (field_name.encode(), value.encode()), {})
    sig = base64.b64encode(RSASSA_PKCS1_v1_5_sign(hasher, _key(key_pem))).decode()
    step = 70
    chunks = [sig[i:i + step] for i in range(0, len(sig), step)]
    cont = "\r\n" + indent + (" " if indent.startswith(" ") else "")
    return (head + cont.join(chunks) + "\r\n").encode()
