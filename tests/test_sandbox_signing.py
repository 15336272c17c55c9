"""The sandbox signs as the real signers do: 2048-bit RSA keys, the RSA step
in OpenSSL (issue 19, item 3), and dkimpy, an independent verifier, agrees."""

from __future__ import annotations

import dkim

from flowtest.sandbox import Keyring
from flowtest.sandbox.signing import signature

MSG = (b"From: someone@sender.example\r\nTo: hello@example.me\r\nSubject: hi\r\n"
       b"Date: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <x@sender.example>\r\n\r\n"
       b"Hello.\r\n")


def test_the_keys_are_real_size(flowtest_keys: Keyring) -> None:
    assert flowtest_keys.bits == 2048
    assert Keyring.shared().bits == 2048
    assert Keyring.shared() is Keyring.shared()  # made once per process


def test_what_the_sandbox_signs_dkimpy_verifies(flowtest_keys: Keyring) -> None:
    key = flowtest_keys.domain
    tags = [("v", "1"), ("a", "rsa-sha256"), ("c", "relaxed/relaxed"),
            ("d", "sender.example"), ("s", "s1"), ("h", "from:to:subject"), ("bh", "")]
    signed = signature(MSG, "DKIM-Signature", tags, ["from", "to", "subject"],
                       key.private_pem) + MSG

    def dns(name: bytes, timeout: float = 5) -> bytes | None:
        return key.txt.encode() if name == b"s1._domainkey.sender.example." else None

    assert dkim.verify(signed, dnsfunc=dns)
    tampered = signed.replace(b"Subject: hi", b"Subject: ho")
    assert not dkim.verify(tampered, dnsfunc=dns)
