"""One private CA for the world (trustme) and a certificate per server name."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme


class Authority:
    def __init__(self, names: list[str]) -> None:
        self._ca = trustme.CA(organization_name="flowtest sandbox CA")
        self._cert = self._ca.issue_cert(*names)

    def write_ca(self, path: Path) -> Path:
        self._ca.cert_pem.write_to_path(str(path))
        return path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self._ca.configure_trust(ctx)
        return ctx
