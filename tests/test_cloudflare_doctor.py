"""The doctor reads Cloudflare's own view from the sandbox's API, which the
sandbox's mail path shares: every Cloudflare fault shows as its finding."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from flowtest.config import Config
from flowtest.doctor import Finding, diagnose
from flowtest.sandbox import World
from flowtest.sandbox.cfapi_state import ExtraRule


def findings(config: Config) -> list[Finding]:
    return asyncio.run(diagnose(config))


def codes(config: Config, severity: str | None = None) -> list[str]:
    return [f.code for f in findings(config) if severity is None or f.severity == severity]


def test_healthy_world_reads_clean_and_only_reads(world: World) -> None:
    assert world.cf_api is not None
    world.cf_api.requests.clear()
    got = findings(world.config())
    cf = [f for f in got if f.code.startswith(("CF_", "DOMAIN_", "RDAP_"))]
    assert {f.code for f in cf} >= {"CF_TOKEN_OK", "CF_ROUTING_READY", "CF_RULES_LIMIT",
                                    "CF_CATCH_ALL", "CF_DNSSEC_OK", "DOMAIN_EXPIRY"}
    assert all(f.severity == "info" for f in cf), cf
    methods = {m for m, _ in world.cf_api.requests}
    assert methods == {"GET", "POST"}
    assert [p for m, p in world.cf_api.requests if m == "POST"] == ["/client/v4/graphql"]
    # the token is never in what the doctor says
    text = " ".join(f.message + f.fix for f in got)
    assert world.cf_token not in text


def test_without_a_cloudflare_section_one_info_line(world: World) -> None:
    got = findings(dataclasses.replace(world.config(), cloudflare=None))
    cf = [f for f in got if f.code.startswith("CF_")]
    assert [(f.code, f.severity) for f in cf] == [("CF_NOT_CONFIGURED", "info")]


@pytest.mark.faults("cf-destination-unverified")
def test_unverified_destination(world: World) -> None:
    errors = codes(world.config(), "error")
    assert "CF_DESTINATION_UNVERIFIED" in errors
    assert errors.count("CF_RULE_DISABLED") == len(world.aliases)


@pytest.mark.faults("cf-rule-disabled=shop@example.me")
def test_one_disabled_rule(world: World) -> None:
    got = [f for f in findings(world.config()) if f.code == "CF_RULE_DISABLED"]
    assert len(got) == 1 and "shop@example.me" in got[0].message and "Active" in got[0].fix


@pytest.mark.faults("cf-routing-misconfigured")
def test_misconfigured_routing_and_the_record_dns_lacks(world: World) -> None:
    got = {f.code: f for f in findings(world.config())}
    assert got["CF_ROUTING_STATUS"].severity == "error"
    assert "misconfigured" in got["CF_ROUTING_STATUS"].message
    missing = got["CF_RECORD_MISSING"]
    assert missing.severity == "error" and "indeed does not serve" in missing.message


@pytest.mark.parametrize("permission", ["Email Routing Addresses Read", "Email Routing Rules Read",
                                        "Zone Settings Read", "Analytics Read"])
def test_a_missing_permission_is_named_and_the_rest_still_runs(world: World,
                                                               permission: str) -> None:
    world.set_fault(f"cf-token-scope={permission}")
    got = findings(world.config())
    missing = [f for f in got if f.code == "CF_PERMISSION_MISSING"]
    assert len(missing) == 1
    words = permission.replace(" Read", "").split()
    assert all(w in missing[0].message for w in words) and missing[0].severity == "error"
    assert "DOMAIN_EXPIRY" in {f.code for f in got}       # RDAP needs no token
    if permission != "Zone Settings Read":
        assert "CF_ROUTING_READY" in {f.code for f in got}


@pytest.mark.faults("cf-catch-all-drop")
def test_catch_all_drop(world: World) -> None:
    got = {f.code: f for f in findings(world.config())}
    assert got["CF_CATCH_ALL_DROP"].severity == "warning"
    assert "mistyped" in got["CF_CATCH_ALL_DROP"].message


def test_rules_the_dashboard_hides_problems_in(world: World) -> None:
    a = world.cf_account
    hello, shop, billing = world.aliases
    a.extra_rules[:] = [
        ExtraRule(hello, "forward", world.gmail_address),          # a second rule: newest wins
        ExtraRule(shop, "forward", "someone.else@gmail.com"),       # forwards elsewhere
        ExtraRule(billing, "drop"),                                 # drops
        ExtraRule("old@example.me", "forward", "gone@gmail.com"),   # destination deleted
    ]
    a.deleted.add("gone@gmail.com")
    try:
        got = findings(world.config())
    finally:
        a.extra_rules.clear()
        a.deleted.clear()
    by = {(f.code, f.severity) for f in got}
    assert ("CF_RULE_DUPLICATE", "warning") in by
    assert ("CF_RULE_ELSEWHERE", "warning") in by
    assert ("CF_RULE_DROP", "error") in by
    assert ("CF_RULE_DESTINATION_GONE", "warning") in by
    [limit] = [f for f in got if f.code == "CF_RULES_LIMIT"]
    assert limit.message.startswith("7 of the 200")


def test_pagination_reads_every_rule(world: World) -> None:
    a = world.cf_account
    a.extra_rules[:] = [ExtraRule(f"user{i}@example.me", "forward", world.gmail_address)
                        for i in range(180)]
    assert world.cf_api is not None
    world.cf_api.requests.clear()
    try:
        got = findings(world.config())
    finally:
        a.extra_rules.clear()
    [limit] = [f for f in got if f.code == "CF_RULES_LIMIT"]
    assert limit.message.startswith("183 of the 200") and limit.severity == "warning"
    pages = [p for _, p in world.cf_api.requests if p.endswith("/email/routing/rules")]
    assert len(pages) == 4  # 183 rules at 50 a page


def test_missing_rule_and_missing_destination(world: World) -> None:
    alias = world.aliases[0]
    world.routing.remove(alias)
    world.cf_account.deleted.add(world.gmail_address)
    try:
        got = {f.code: f for f in findings(world.config())}
    finally:
        world.routing.forward(alias, world.gmail_address)
        world.cf_account.deleted.clear()
    assert got["CF_RULE_MISSING"].severity == "error" and alias in got["CF_RULE_MISSING"].message
    assert "Create address" in got["CF_RULE_MISSING"].fix
    assert got["CF_DESTINATION_MISSING"].severity == "error"


def test_expiry_soon_and_expired(world: World) -> None:
    a = world.cf_account
    try:
        a.expires_in_days = 10
        assert "DOMAIN_EXPIRES_SOON" in codes(world.config(), "warning")
        a.expires_in_days = -3
        assert "DOMAIN_EXPIRED" in codes(world.config(), "error")
    finally:
        a.expires_in_days = 200


def test_stale_ds_and_pending_zone_and_foreign_name_servers(world: World) -> None:
    a = world.cf_account
    world.dns_extra[(world.names.domain, "DS")] = ["2371 13 2 " + "AB" * 32]
    world.dns_extra[(world.names.domain, "NS")] = ["ns1.registrar.example."]
    a.zone_status = "pending"
    try:
        got = {f.code: f for f in findings(world.config())}
    finally:
        a.zone_status = "active"
    assert got["CF_DNSSEC_STALE_DS"].severity == "error"
    assert got["CF_ZONE_PENDING"].severity == "error"
    assert "ada.ns.cloudflare.com" in got["CF_NS_MISMATCH"].message


def test_a_wrong_token_stops_the_cloudflare_checks_with_one_error(world: World,
                                                                  tmp_path: object) -> None:
    from flowtest.secrets import Secret
    config = world.config()
    assert config.cloudflare is not None
    bad = dataclasses.replace(config.cloudflare,
                              api_token=Secret("env:NO_SUCH_VAR_X", value="not-the-token-123"))
    got = [f for f in findings(dataclasses.replace(config, cloudflare=bad))
           if f.code.startswith("CF_")]
    assert [(f.code, f.severity) for f in got] == [("CF_TOKEN_INVALID", "error")]
    assert "not-the-token-123" not in got[0].message
