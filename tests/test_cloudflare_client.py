"""The read-only client: the v4 envelope read defensively, the network guard
honoured, the token never in what it returns."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from flowtest import guard
from flowtest.config import CloudflareSettings, DnsSettings, TlsSettings
from flowtest.net.cloudflare import CloudflareClient, envelope
from flowtest.sandbox import World
from flowtest.secrets import Secret


@pytest.mark.parametrize("body", [b"", b"<html>", b"[]", b"null", b'{"success": "yes"}',
                                  b'{"success": true, "errors": "x", "result_info": 5}',
                                  b'{"success": false, "errors": [{"code": true}, 7]}',
                                  b"\xff\xfe"])
def test_a_broken_answer_is_a_failed_reply_not_a_crash(body: bytes) -> None:
    reply = envelope("/x", 200, body)
    assert isinstance(reply.success, bool)
    assert all(isinstance(e.code, int) for e in reply.errors)
    assert isinstance(reply.result_info, dict)


def test_a_permission_error_is_data() -> None:
    reply = envelope("/x", 403, b'{"success": false, "errors": '
                                b'[{"code": 10000, "message": "Authentication error"}]}')
    assert reply.denied and not reply.success and reply.errors[0].code == 10000


def test_the_live_api_is_refused_by_the_guard_and_the_token_stays_hidden() -> None:
    token = "cf-live-token-never-shown-0123456789"
    settings = CloudflareSettings(api_token=Secret("env:FT_NO_SUCH", value=token),
                                  zone="example.me")
    before = len(guard.refused)

    async def go() -> str:
        async with CloudflareClient(settings, tls=TlsSettings(), dns=DnsSettings(),
                                    timeout_s=2) as client:
            reply = await client.get("/user/tokens/verify")
        assert reply.unreachable
        return reply.describe()

    with guard.guarded():
        said = asyncio.run(go())
    assert len(guard.refused) > before and token not in said


def test_a_wrong_ca_is_a_tls_failure(world: World) -> None:
    config = world.config()
    assert config.cloudflare is not None

    async def go() -> str:
        async with CloudflareClient(config.cloudflare, tls=TlsSettings(),  # system CAs only
                                    dns=config.dns, timeout_s=3) as client:
            reply = await client.get("/user/tokens/verify")
        assert reply.unreachable
        return reply.describe()

    assert "certificate" in asyncio.run(go()).lower()


def test_rdap_outside_the_domain_is_a_404(world: World) -> None:
    config = world.config()
    assert config.cloudflare is not None
    settings = dataclasses.replace(config.cloudflare)

    async def go() -> int:
        async with CloudflareClient(settings, tls=config.tls, dns=config.dns) as client:
            status, _doc, _ = await client.rdap_domain("other.example")
        return status

    assert asyncio.run(go()) == 404


def test_graphql_is_a_real_schema(world: World) -> None:
    config = world.config()
    assert config.cloudflare is not None

    async def go(query: str, variables: dict[str, object]) -> tuple[object, tuple[str, ...]]:
        async with CloudflareClient(config.cloudflare,  # type: ignore[arg-type]
                                    tls=config.tls, dns=config.dns) as client:
            reply = await client.graphql(query, variables)
        return reply.data, reply.errors

    zone = world.cf_account.zone_id
    ok = ("query($z: String!) { viewer { zones(filter: {zoneTag: $z}) { "
          "emailRoutingAdaptive(limit: 5, filter: {datetime_geq: \"2000-01-01T00:00:00Z\"}) "
          "{ messageId status } } } }")
    data, errors = asyncio.run(go(ok, {"z": zone}))
    assert not errors and isinstance(data, dict)
    # a field the dataset does not have, a missing required argument, a syntax error
    for bad in (ok.replace("status", "verdict"), ok.replace("limit: 5, ", ""), "{ viewer {"):
        data, errors = asyncio.run(go(bad, {"z": zone}))
        assert errors and data is None
    # another zone sees nothing
    data, errors = asyncio.run(go(ok, {"z": "0" * 32}))
    assert data == {"viewer": {"zones": []}} and not errors
