"""What keeps the sandbox up with its own burst (issue 19) without changing
what it answers: the cached zone and resolver, Cloudflare's rule lookup, and
Gmail's IMAP server on a thread of its own."""

from __future__ import annotations

import asyncio
import string
import threading
from typing import Any

import dns.resolver
import pytest

from flowtest.flows import inbound
from flowtest.sandbox import World
from flowtest.sandbox.cfapi_state import Account, ExtraRule
from flowtest.sandbox.cloudflare import Routing
from flowtest.sandbox.faults import Faults
from flowtest.sandbox.keys import Keyring
from flowtest.sandbox.message import random_id

FAST = inbound.Options(poll_s=0.5, settle_s=0.5)


def _route_from_the_api(account: Account, address: str) -> tuple[str, str, str] | None:
    """What route() answered before it was made fast: the rules' JSON, newest first."""
    for r in reversed(account.rules()):
        if r["enabled"] and r["matchers"][0].get("value") == address.lower():
            action = r["actions"][0]
            return action["type"], (action.get("value") or [""])[0], r["id"]
    c = account.catch_all()
    if c["enabled"]:
        action = c["actions"][0]
        return action["type"], (action.get("value") or [""])[0], "catch-all"
    return None


@pytest.mark.parametrize("faults", [(), ("cf-rule-disabled",), ("cf-rule-disabled=b@example.me",),
                                    ("cf-destination-unverified",), ("cf-catch-all-drop",)])
def test_route_answers_as_the_rules_the_api_lists(faults: tuple[str, ...]) -> None:
    routing = Routing("example.me")
    for name in ("a", "b", "c", "d"):
        routing.forward(f"{name}@example.me", "owner@gmail.com")
    routing.drop("e@example.me")
    routing.forward("f@example.me", "gone@gmail.com")
    account = Account(routing, Faults(list(faults)), "owner@gmail.com", "token")
    account.deleted.add("gone@gmail.com")
    account.extra_rules[:] = [
        ExtraRule("a@example.me", "forward", "owner@gmail.com"),   # newer: it wins
        ExtraRule("b@example.me", "drop"),
        ExtraRule("c@example.me", "forward", "other@gmail.com", enabled=False),
        ExtraRule("x@example.me", "forward", "gone@gmail.com"),
        ExtraRule("y@example.me", "worker", "some-worker"),
    ]
    for address in ("a", "b", "c", "d", "e", "f", "x", "y", "nobody", "A"):
        full = f"{address}@example.me"
        assert account.route(full) == _route_from_the_api(account, full), full
    routing.catch_all = None
    assert account.route("nobody@example.me") == _route_from_the_api(account, "nobody@example.me")


@pytest.mark.parametrize("alphabet", [string.ascii_letters + string.digits,
                                      "0123456789abcdef", string.ascii_lowercase])
def test_random_ids_have_the_length_and_alphabet_asked_for(alphabet: str) -> None:
    ids = {random_id(n, alphabet) for n in (1, 2, 11, 40) for _ in range(50)}
    assert all(set(i) <= set(alphabet) for i in ids)
    assert {len(i) for i in ids} == {1, 2, 11, 40}
    assert len({i for i in ids if len(i) == 40}) == 50   # no repeats


def _txt(world: World, name: str) -> list[bytes] | None:
    assert world.ctx is not None
    try:
        answer = world.ctx.resolver().resolve(name, "TXT", search=False)
    except dns.resolver.NXDOMAIN:
        return None
    except dns.resolver.NoAnswer:
        return []
    return [b"".join(r.strings) for r in answer]


def test_a_fault_or_override_shows_at_the_next_lookup_despite_the_caches(world: World) -> None:
    # The zone and the receivers' resolver cache are kept while their inputs
    # stay the same; any change must show at once, as it did with none.
    key = "cf2024-1._domainkey.example.me"
    assert _txt(world, key) and _txt(world, key)   # twice: from the cache
    world.set_fault("dkim-missing")
    assert _txt(world, key) is None
    world.clear_fault("dkim-missing")
    assert _txt(world, key)
    world.dns_extra[("_dmarc.example.me", "TXT")] = ['"v=DMARC1; p=reject"']
    assert _txt(world, "_dmarc.example.me") == [b"v=DMARC1; p=reject"]
    world.dns_extra[("_dmarc.example.me", "TXT")] = ['"v=DMARC1; p=quarantine"']
    assert _txt(world, "_dmarc.example.me") == [b"v=DMARC1; p=quarantine"]
    world.dns_servfail.add("_dmarc.example.me")
    try:
        with pytest.raises(dns.resolver.NoNameservers):
            _txt(world, "_dmarc.example.me")
    finally:
        world.dns_servfail.discard("_dmarc.example.me")


def test_a_message_in_flight_across_a_fault_and_back_leaves_no_stale_cache(
        world: World) -> None:
    # A message picks its resolver (and cache) when it starts; if a fault is
    # switched on, one of its lookups runs under it, and the fault is switched
    # off again, the answer it cached must never reach a later message.
    assert world.ctx is not None
    key = "cf2024-1._domainkey.example.me"
    in_flight = world.ctx.resolver()               # before the fault
    world.set_fault("dkim-missing")
    with pytest.raises(dns.resolver.NXDOMAIN):
        in_flight.resolve(key, "TXT", search=False)  # cached: no key
    world.clear_fault("dkim-missing")              # the same inputs as at the start
    assert _txt(world, key)                        # a later message finds the key


def _store_thread_names() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("sandbox-imap-")}


def test_imap_servers_on_threads_of_their_own(flowtest_keys: Keyring) -> None:
    before = _store_thread_names()
    with World(keys=flowtest_keys, imap_threads=True) as world:
        assert len(_store_thread_names() - before) == 2   # Gmail's and the provider's
        results = asyncio.run(inbound.run(world.config(), options=FAST))
        assert [r.verdict for r in results] == ["pass"] * len(world.aliases)
        for r in results:
            message_id = f"<{r.token}@sender.example>"
            stored = world.truth.events(message_id, "stored")[0]
            listed = [e for e in world.truth.events(message_id, "listed") if e.party == "gmail"]
            # "stored" is recorded on the store's thread as the message lands,
            # before any client can be told of it.
            assert listed and stored.at <= listed[0].at
            assert r.seen_at is not None and stored.at <= r.seen_at
        assert world.gmail is not None
        store = world.gmail.store
        # Every way in still works from the world's loop and from this thread.
        trash = world.call(store.folder_contents(world.gmail_address, "[Gmail]/Trash"))
        assert len(trash) == len(world.aliases)   # the run's cleanup moved its probes
        world.call(store.restart(0.05))
        assert store.restarts == 1

        async def drop() -> int:
            return store.drop_connections()

        world.call(drop())
        store.drop_connections()
        # Still serving after the cuts and the restart.
        r = asyncio.run(inbound.run(world.config(), aliases=[world.config().aliases[0]],
                                    options=FAST))[0]
        assert r.verdict == "pass", r.diagnosis
        world.check_errors()
    assert _store_thread_names() == before


@pytest.mark.parametrize("fault", ["imap-drop", "spam"])
def test_imap_threads_keep_the_faults_that_touch_the_store(flowtest_keys: Keyring,
                                                           fault: str) -> None:
    with World(keys=flowtest_keys, imap_threads=True, faults=[fault],
               aliases=["hello"]) as world:
        [r] = asyncio.run(inbound.run(world.config(), options=FAST))
        expected: dict[str, Any] = {"imap-drop": ("warn", "INBOX", "IMAP_RECONNECTED"),
                                    "spam": (None, "[Gmail]/Spam", None)}
        verdict, folder, code = expected[fault]
        assert r.folder == folder and r.delivered
        if verdict is not None:
            assert r.verdict == verdict
        if code is not None:
            assert code in r.codes
        world.check_errors()


def test_checks_in_a_worker_process_answer_as_the_threads_do(flowtest_keys: Keyring) -> None:
    with World(keys=flowtest_keys, check_process=True, aliases=["hello"]) as world:
        [r] = asyncio.run(inbound.run(world.config(), options=FAST))
        assert r.verdict == "pass", r.diagnosis
        assert r.auth is not None and r.auth.dmarc.result == "pass"
        assert r.auth.arc.result == "pass"
        # A fault switched between two messages shows in the worker's next
        # verdict, though its resolver cache outlives a message.
        world.set_fault("dkim-missing")
        [r] = asyncio.run(inbound.run(world.config(), options=FAST))
        assert r.verdict == "warn" and "CLOUDFLARE_DKIM_FAIL" in r.codes
        world.clear_fault("dkim-missing")
        [r] = asyncio.run(inbound.run(world.config(), options=FAST))
        assert r.verdict == "pass", r.diagnosis
        world.check_errors()
