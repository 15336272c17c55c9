"""DKIM and ARC header fields with the tags, tag order and signed-header lists
the real signers use (samples/real/), signed with dkimpy's own primitives.

dkimpy's ``sign`` and ``arc_sign`` write their own tag order, always put
``t=`` in the ARC-Seal (Cloudflare's real seal has none) and rebuild the
ARC-Authentication-Results from a parsed Authentication-Results, dropping its
comments (Gmail's real AAR repeats its AR word for word). Verification stays
dkimpy's, so whatever this writes must verify there.

Canonicalization and the header hash are dkimpy's; the RSA step is the
``cryptography`` package's (OpenSSL): dkimpy's own is pure Python and takes
about 11 ms per 2048-bit signature holding the interpreter, OpenSSL well
under one, which is what lets the sandbox sign with real-size keys and keep
up with a 200-message burst.
"""

from __future__ import annotations

import base64
import functools
import hashlib

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim.canonicalization import CanonicalizationPolicy

from flowtest.sandbox.message import crlf, header_lines, split

RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")


@functools.cache
def _key(pem: bytes) -> rsa.RSAPrivateKey:
    # The sandbox made these keys itself: OpenSSL's key check (tens of ms per
    # 2048-bit key, once per key and process) would prove nothing.
    key = serialization.load_pem_private_key(pem, password=None,
                                             unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("DKIM signing key is not RSA")
    return key


def rsa_sha256(digest: bytes, key_pem: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 over a SHA-256 digest (RFC 6376 3.3.1), by OpenSSL."""
    return _key(key_pem).sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


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
    them). Canonicalization and hashing are dkimpy's own, the RSA step OpenSSL's."""
    msg = crlf(msg)
    tags = [(t, body_hash(msg) if t == "bh" and not v else v) for t, v in tags]
    head = fold_tags(name, tags, indent) + "\r\n" + indent + "b="
    field_name, _, value = head.partition(":")
    signer = dkim.DKIM(msg)
    hasher = hashlib.sha256()
    dkim.hash_headers(hasher, RELAXED, RELAXED.canonicalize_headers(signer.headers),
                      [s.lower().encode() for s in signed],
                      (field_name.encode(), value.encode()), {})
    sig = base64.b64encode(rsa_sha256(hasher.digest(), key_pem)).decode()
    step = 70
    chunks = [sig[i:i + step] for i in range(0, len(sig), step)]
    cont = "\r\n" + indent + (" " if indent.startswith(" ") else "")
    return (head + cont.join(chunks) + "\r\n").encode()
