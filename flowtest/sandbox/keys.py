"""DKIM and ARC signing keys of the sandbox's signers.

2048-bit RSA, as the real signers (Cloudflare, Gmail) use. OpenSSL makes one
in about 50 ms, so a :class:`Keyring` is made once per process
(:meth:`Keyring.shared`) or once per test session and handed to many worlds.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    public_b64: str

    @property
    def txt(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_b64}"

    @classmethod
    def generate(cls, bits: int = KEY_BITS) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        # dkimpy wants PKCS#1 ("BEGIN RSA PRIVATE KEY").
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(private_pem=pem, public_b64=base64.b64encode(der).decode("ascii"))


@dataclass(frozen=True)
class Keyring:
    cloudflare: SigningKey   # d=cloudflare-email.net s=cf2024-1, DKIM and ARC
    domain: SigningKey       # d=<user domain> s=cf2024-1, published by the user
    gmail: SigningKey        # d=gmail.com s=20230601
    google_arc: SigningKey   # d=google.com s=arc-20240605
    external: SigningKey     # d=<external provider> s=s1

    @classmethod
    def generate(cls, bits: int = KEY_BITS) -> Keyring:
        """New keys, 2048-bit by default as the real signers use. Signing is
        OpenSSL's (sandbox/signing.py), under a millisecond per signature, so
        real-size keys no longer slow the sandbox down."""
        return cls(*(SigningKey.generate(bits) for _ in range(5)))

    @classmethod
    def shared(cls) -> Keyring:
        """One keyring for every world of this process that brings none."""
        return _shared()

    @property
    def bits(self) -> int:
        return _bits(self.cloudflare.public_b64)


@functools.cache
def _shared() -> Keyring:
    return Keyring.generate()


@functools.cache
def _bits(public_b64: str) -> int:
    key = serialization.load_der_public_key(base64.b64decode(public_b64))
    assert isinstance(key, rsa.RSAPublicKey)
    return key.key_size
