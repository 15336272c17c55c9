"""TLS in live mode: a wrong-host or expired certificate, a stripped STARTTLS
and a plaintext endpoint are errors, unless --insecure, and then it says so."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from flowtest import cli
from flowtest.config import Config, Endpoint, TlsSettings
from flowtest.errors import TLSError
from flowtest.flows import login_check
from flowtest.net.smtp import Submission
from flowtest.sandbox import World
from flowtest.sandbox.smtp import SmtpServer


class _Accept:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@pytest.fixture
def rogue(world: World, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Submission servers the sandbox does not vouch for, on 127.0.9.x."""
    ca = trustme.CA()
    ca_file = tmp_path / "rogue-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    expired = ca.issue_cert("smtp.rogue.test", not_after=datetime.datetime(2020, 1, 1,
                                                                           tzinfo=datetime.UTC))
    fine = ca.issue_cert("smtp.rogue.test")
    servers = {}
    for name, cert, tls in (("expired", expired, True), ("fine", fine, True),
                            ("stripped", fine, False)):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        server = SmtpServer(f"127.0.9.{len(servers) + 1}", _Accept(),
                            hostname="smtp.rogue.test", tls=ctx, require_starttls=tls,
                            authenticator=lambda login, password: None)
        if not tls:  # a server (or a man in the middle) that never offers STARTTLS
            server.tls = None
        world.call(server.start())
        servers[name] = server
    yield {"ca_file": ca_file, **servers}
    for server in servers.values():
        world.call(server.stop())


def _config(world: World, rogue: dict[str, Any], which: str, *, host: str = "smtp.rogue.test",
            insecure: bool = False) -> Config:
    base = world.config()
    server = rogue[which]
    probe = dataclasses.replace(base.probe, smtp=Endpoint(host, server.port, "starttls",
                                                          server.host))
    return dataclasses.replace(base, probe=probe,
                               tls=TlsSettings(ca_file=rogue["ca_file"], insecure=insecure))


def _connect(config: Config) -> None:
    async def go() -> None:
        async with Submission(config.probe, tls=config.tls, timeouts=config.timeouts):
            pass
    asyncio.run(go())


def test_a_good_certificate_connects(world: World, rogue: dict[str, Any]) -> None:
    _connect(_config(world, rogue, "fine"))


@pytest.mark.parametrize(("which", "host", "reason"), [
    ("expired", "smtp.rogue.test", "certificate has expired"),
    ("fine", "smtp.other-name.test", "Hostname mismatch"),
    ("stripped", "smtp.rogue.test", "does not offer STARTTLS"),
])
def test_bad_tls_is_an_error_and_insecure_allows_it(world: World, rogue: dict[str, Any],
                                                    which: str, host: str, reason: str) -> None:
    with pytest.raises(TLSError, match=reason):
        _connect(_config(world, rogue, which, host=host))
    _connect(_config(world, rogue, which, host=host, insecure=True))


def test_plaintext_endpoints_are_refused(world: World) -> None:
    base = world.config()
    plain = dataclasses.replace(base.gmail.imap, tls="plain")
    config = dataclasses.replace(base, gmail=dataclasses.replace(base.gmail, imap=plain))
    checks = {c.role: c for c in asyncio.run(login_check.check(config))}
    assert not checks["Gmail IMAP"].ok and "not supported without --insecure" in \
        checks["Gmail IMAP"].detail


def test_insecure_is_said_in_every_output(world: World, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import json
    path = world.write_config(tmp_path / "flowtest.toml")
    report = tmp_path / "r.json"
    assert cli.main(["run", "-c", str(path), "--insecure", "--leg", "inbound", "--json",
                     str(report), "--report-dir", str(tmp_path / "reports")]) == 0
    assert "INSECURE" in capsys.readouterr().out
    assert json.loads(report.read_text())["insecure"] is True
    page = next((tmp_path / "reports").rglob("report.html")).read_text()
    assert "INSECURE" in page
    assert cli.main(["run", "-c", str(path), "--insecure", "--leg", "inbound", "--nagios",
                     "--report-dir", str(tmp_path / "reports")]) == 0
    assert capsys.readouterr().out.startswith("INSECURE TLS: FLOWTEST OK")
    assert cli.main(["login-check", "-c", str(path), "--insecure"]) == 0
    assert "INSECURE" in capsys.readouterr().out


def test_one_context_per_ca_file_version(tmp_path: Path) -> None:
    """Contexts are cached (loading the system CA store costs ~50 ms of CPU),
    but a CA file that changed on disk is loaded again."""
    from flowtest.net.tls import client_context
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    settings = TlsSettings(ca_file=ca_file)
    first = client_context(settings)
    assert client_context(TlsSettings(ca_file=ca_file)) is first
    assert client_context(TlsSettings(ca_file=ca_file, insecure=True)) is not first
    other = trustme.CA()
    other.cert_pem.write_to_path(str(ca_file))
    os.utime(ca_file, ns=(1, 1))  # a different version even within one clock tick
    again = client_context(settings)
    assert again is not first
    assert again.get_ca_certs()[-1] != first.get_ca_certs()[-1]
