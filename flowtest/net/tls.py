"""TLS contexts for clients: verified always, unless the user said --insecure."""

from __future__ import annotations

import ssl

from flowtest.config import TlsSettings


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.ca_file is not None:
        ctx.load_verify_locations(cafile=str(settings.ca_file))
    if settings.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def describe(exc: BaseException) -> str:
    """A certificate error in words: expired, wrong host, unknown issuer."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message or exc.reason}"
    return f"TLS failed: {exc}"
