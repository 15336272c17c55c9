"""DKIM and ARC signing keys of the sandbox's signers.

Generating RSA-2048 keys takes a while, so a :class:`Keyring` can be made once
and handed to many worlds (the test suite does).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    public_b64: str

    @property
    def txt(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_b64}"

    @classmethod
    def generate(cls, bits: int = 2048) -> SigningKey:
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
    def generate(cls, bits: int = 1024) -> Keyring:
        """1024-bit by default, though the real signers use 2048: dkimpy signs in
        pure Python holding the GIL (11 ms per 2048-bit signature, 7 signatures
        per forwarded message), and the sandbox shares its process with the
        flowtest it measures. The headers have the same shape either way."""
        return cls(*(SigningKey.generate(bits) for _ in range(5)))
