"""The DNS doctor against the sandbox's DNS: each problem gives the right finding."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest

from flowtest.config import Config, DnsSettings
from flowtest.doctor import Finding, diagnose
from flowtest.sandbox import World
from flowtest.sandbox.dns_server import txt_rdata


def doctor(config: Config) -> list[Finding]:
    return asyncio.run(diagnose(config))


def codes(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.code for f in findings if severity is None or f.severity == severity}


def test_healthy_world_has_no_failure(world: World) -> None:
    findings = doctor(world.config())
    assert not codes(findings, "error") and not codes(findings, "warning")
    assert {"NS_OK", "MX_OK", "SPF_OK", "DKIM_OK", "DMARC_OK",
            "DMARC_SENDAS_NONE"} <= codes(findings)


@pytest.mark.parametrize(("fault", "code", "severity"), [
    ("mx-icloud", "MX_FOREIGN", "error"),
    ("spf-duplicate", "SPF_MULTIPLE", "error"),
    ("dkim-missing", "DKIM_MISSING", "error"),
    ("dmarc-reject", "DMARC_SENDAS_REFUSED", "error"),
])
def test_each_dns_fault(world: World, fault: str, code: str, severity: str) -> None:
    world.set_fault(fault)
    findings = doctor(world.config())
    assert code in codes(findings, severity), findings
    hit = next(f for f in findings if f.code == code)
    assert hit.fix and len(hit.message) > 40  # says why it matters, and what to do


def _set(world: World, name: str, rdtype: str, values: list[str] | None) -> None:
    world.dns_extra[(name, rdtype)] = values


def test_spf_over_ten_lookups_shows_the_chain(world: World) -> None:
    includes = " ".join(f"include:_spf{i}.example.me" for i in range(11))
    _set(world, "example.me", "TXT",
         [txt_rdata(f"v=spf1 include:_spf.mx.cloudflare.net {includes} ~all")])
    for i in range(11):
        _set(world, f"_spf{i}.example.me", "TXT", [txt_rdata("v=spf1 ip4:192.0.2.0/24 ~all")])
    hit = next(f for f in doctor(world.config()) if f.code == "SPF_TOO_MANY_LOOKUPS")
    assert "needs 12 DNS lookups" in hit.message and "_spf10.example.me" in hit.message


def test_spf_void_lookups(world: World) -> None:
    _set(world, "example.me", "TXT", [txt_rdata(
        "v=spf1 include:_spf.mx.cloudflare.net include:a.gone.example include:b.gone.example "
        "include:c.gone.example ~all")])
    assert "SPF_TOO_MANY_VOID_LOOKUPS" in codes(doctor(world.config()), "error")


def test_missing_spf_and_loose_all(world: World) -> None:
    _set(world, "example.me", "TXT", [])
    assert "SPF_MISSING" in codes(doctor(world.config()), "error")
    _set(world, "example.me", "TXT", [txt_rdata("v=spf1 include:_spf.mx.cloudflare.net +all")])
    assert "SPF_ALL_LOOSE" in codes(doctor(world.config()), "warning")
    _set(world, "example.me", "TXT", [txt_rdata("v=spf1 include:_spf.google.com ~all")])
    found = codes(doctor(world.config()))
    assert {"SPF_NO_CLOUDFLARE", "SPF_GOOGLE_INCLUDE"} <= found


def test_missing_and_duplicate_dmarc(world: World) -> None:
    _set(world, "_dmarc.example.me", "TXT", None)
    assert "DMARC_MISSING" in codes(doctor(world.config()), "warning")
    _set(world, "_dmarc.example.me", "TXT", [txt_rdata("v=DMARC1; p=none"),
                                             txt_rdata("v=DMARC1; p=reject")])
    assert "DMARC_MULTIPLE" in codes(doctor(world.config()), "error")
    _set(world, "_dmarc.example.me", "TXT", [txt_rdata("v=DMARC1; p=quarantine; rua=reports")])
    findings = doctor(world.config())
    assert {"DMARC_SENDAS_SPAM", "DMARC_BAD_RUA"} <= codes(findings, "warning")


def test_ns_not_on_cloudflare(world: World) -> None:
    _set(world, "example.me", "NS", ["dns1.registrar-servers.com.", "dns2.registrar-servers.com."])
    hit = next(f for f in doctor(world.config()) if f.code == "NS_NOT_CLOUDFLARE")
    assert hit.severity == "error" and "registrar-servers.com" in hit.message


def test_legacy_and_missing_mx(world: World) -> None:
    _set(world, "example.me", "MX", ["10 amir.mx.cloudflare.net.", "20 linda.mx.cloudflare.net.",
                                     "30 isaac.mx.cloudflare.net."])
    findings = doctor(world.config())
    assert "MX_LEGACY" in codes(findings, "info") and not codes(findings, "error")
    _set(world, "example.me", "MX", [])
    assert "MX_MISSING" in codes(doctor(world.config()), "error")


def test_bad_dkim_key(world: World) -> None:
    _set(world, "cf2024-1._domainkey.example.me", "TXT",
         [txt_rdata("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")])
    assert "DKIM_BAD_KEY" in codes(doctor(world.config()), "error")


def test_servfail_is_an_error_not_an_all_clear(world: World) -> None:
    world.dns_servfail.add("_dmarc.example.me")
    findings = doctor(world.config())
    hit = next(f for f in findings if f.code == "DNS_LOOKUP_FAILED")
    assert hit.severity == "error" and "not an all-clear" in hit.message


def test_nxdomain_for_the_whole_domain(world: World) -> None:
    config = dataclasses.replace(world.config(), domain="not-registered.example")
    assert [f.code for f in doctor(config)] == ["DOMAIN_NOT_FOUND"]


def test_resolver_timeout(world: World) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # a "name server" that never answers
        config = dataclasses.replace(world.config(), dns=DnsSettings(
            nameservers=(silent.getsockname(),), timeout_s=0.5))
        findings = doctor(config)
    assert [(f.code, f.severity) for f in findings] == [("DNS_LOOKUP_FAILED", "error")]
    assert "timeout" in findings[0].message
