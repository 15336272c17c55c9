"""The inbound leg against the sandbox: verdicts, diagnoses, timings, cleanup."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from flowtest.config import Config, Thresholds, Timeouts
from flowtest.flows import inbound
from flowtest.model import ProbeResult
from flowtest.sandbox import World

FAST = inbound.Options(poll_s=0.5, settle_s=0.5)


def run(config: Config, **changes: Any) -> list[ProbeResult]:
    if changes:
        config = dataclasses.replace(config, **changes)
    return asyncio.run(inbound.run(config, options=FAST))


def said(result: ProbeResult) -> str:
    return " ".join(result.diagnosis)


def codes(result: ProbeResult) -> list[str]:
    return list(result.codes)


def test_healthy_world_every_alias_passes_in_one_sweep(world: World) -> None:
    results = run(world.config())
    assert [r.alias for r in results] == list(world.aliases)
    assert all(r.verdict == "pass" and r.folder == "INBOX" for r in results)
    for r in results:
        assert codes(r) == ["INBOUND_DELIVERED", "CLOUDFLARE_VERDICT"]
        assert len(r.findings) == len(r.diagnosis)


def test_latency_is_bracketed_by_the_ground_truth(world: World) -> None:
    # No absolute bound (it would depend on the machine being idle; millisecond
    # budgets live in `make bench`): flowtest's clock starts only after the
    # server took the message and stops only after its SEARCH listed it, so
    # its figure can differ from the truth only by its own reaction times,
    # which the truth's events bracket.
    config = world.config()
    results = [r for alias in config.aliases
               for r in asyncio.run(inbound.run(config, aliases=[alias], options=FAST))]
    for r in results:
        assert r.verdict == "pass", r.diagnosis
        assert r.delivered and r.folder == "INBOX" and r.intact and r.copies == 1
        assert r.auth is not None and r.auth.dmarc.result == "pass" and r.auth.arc.result == "pass"
        assert r.relay_auth is not None and r.relay_auth.spf.result == "pass"
        message_id = f"<{r.token}@sender.example>"
        submitted = world.truth.events(message_id, "submitted")[0]
        stored = world.truth.events(message_id, "stored")[0]
        listed = next(e for e in world.truth.events(message_id, "listed") if e.party == "gmail")
        assert r.sent_at is not None and r.seen_at is not None and r.latency_s is not None
        assert submitted.at <= r.sent_at and stored.at <= listed.at <= r.seen_at
        assert r.latency_s == pytest.approx(r.seen_at - r.sent_at)
        truth = stored.at - submitted.at
        # What flowtest adds or misses is its own reaction at each end, never more.
        assert truth - (r.sent_at - submitted.at) <= r.latency_s \
            <= truth + (r.seen_at - stored.at), (r.latency_s, truth)
        assert [h.by for h in r.hops][:3] == ["smtp.sender.example", "cloudflare-email.net",
                                               "mx.google.com"]
        # X-Received, then Gmail's internal hop on top (samples/real/cf-gmail-*.eml).
        assert [h.source for h in r.hops][-2:] == ["X-Received", "Received"]


def test_cleanup_moves_only_this_runs_probes_and_touches_nothing_else(world: World) -> None:
    # A mailbox with the user's own mail in it, some read, some flagged.
    for i, flags in enumerate([[], ["\\Seen"], ["\\Flagged", "\\Seen"]]):
        raw = (f"From: friend{i}@elsewhere.example\r\nSubject: keep me {i}\r\n"
               f"Message-ID: <keep{i}@elsewhere.example>\r\n\r\nhello\r\n").encode()
        world.call(world.gmail.store.append(world.gmail_address, "INBOX", raw, flags=flags))
    world.call(world.gmail.store.append(world.gmail_address, "[Gmail]/Spam",
                                        b"Subject: spam to keep\r\n\r\nx\r\n"))
    before = {f: world.gmail_folder(f) for f in ("INBOX", "[Gmail]/Spam")}
    results = run(world.config())
    assert all(r.verdict == "pass" for r in results)
    after = {f: world.gmail_folder(f) for f in ("INBOX", "[Gmail]/Spam")}
    assert after == before  # same UIDs, bytes and flags
    trash = world.gmail_folder("[Gmail]/Trash")
    tokens = {r.token for r in results}
    moved = [raw for _, raw, _ in trash if any(t.encode() in raw for t in tokens)]
    assert len(moved) == len(results)


def test_keep_leaves_the_probes(world: World) -> None:
    results = run(world.config(), cleanup="keep")
    inbox = b"".join(raw for _, raw, _ in world.gmail_folder())
    assert all(r.token.encode() in inbox for r in results)


@pytest.mark.faults("spam")
def test_spam(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and r.folder == "[Gmail]/Spam" and r.delivered
    assert codes(r)[0] == "SPAM_FOLDER"


@pytest.mark.faults("no-rule")
def test_no_rule(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and not r.delivered
    assert codes(r) == ["NO_ROUTING_RULE"]
    assert "550 5.1.1 Address does not exist" in said(r)  # Cloudflare's words, quoted


@pytest.mark.faults("forward-drop")
def test_forward_drop_is_lost(world: World) -> None:
    config = world.config()
    r = run(config, timeouts=dataclasses.replace(config.timeouts, delivery_s=2.0))[0]
    assert r.verdict == "fail" and not r.delivered
    # and Cloudflare's activity log, quoted as a note: the message never left it
    assert codes(r) == ["INBOUND_LOST", "CF_LOG_STATUS"]


@pytest.mark.faults("forward-delay=1.2")
def test_forward_delay_is_late(world: World) -> None:
    r = run(world.config(), thresholds=Thresholds(latency_warn_s=0.5, latency_fail_s=1.0))[0]
    assert r.delivered and r.latency_s is not None and r.latency_s >= 1.2
    assert r.verdict == "fail" and "LATE" in codes(r)


@pytest.mark.faults("forward-delay=0.8")
def test_forward_delay_under_the_fail_threshold_warns(world: World) -> None:
    r = run(world.config(), thresholds=Thresholds(latency_warn_s=0.5, latency_fail_s=5.0))[0]
    assert r.verdict == "warn" and "SLOW" in codes(r)


@pytest.mark.faults("gmail-tempfail")
def test_gmail_tempfail(world: World) -> None:
    config = world.config()
    r = run(config, timeouts=dataclasses.replace(config.timeouts, delivery_s=2.0))[0]
    assert r.verdict == "fail" and not r.delivered
    assert codes(r)[0] == "GMAIL_TEMPFAIL" and "421 4.7.0" in said(r)


@pytest.mark.faults("body-modified")
def test_body_modified(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and r.folder == "INBOX" and r.intact is False
    assert "ALTERED_IN_TRANSIT" in codes(r) and "ARC seal" in said(r)


@pytest.mark.faults("imap-drop")
def test_imap_drop_reconnects_and_still_finds_it(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and r.delivered and r.folder == "INBOX"
    assert "IMAP_RECONNECTED" in codes(r)


@pytest.mark.faults("duplicate")
def test_duplicate(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and r.copies == 2 and "DUPLICATE_DELIVERY" in codes(r)


@pytest.mark.faults("spoofed-ar")
def test_spoofed_authentication_results_are_ignored(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and r.folder == "INBOX"
    assert r.auth is not None and r.auth.ignored == 1
    assert "FORGED_AR_IGNORED" in codes(r)


@pytest.mark.faults("spoofed-ar", "spam")
def test_spoofed_authentication_results_do_not_hide_spam(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and codes(r)[0] == "SPAM_FOLDER"


@pytest.mark.faults("mx-icloud")
def test_mx_still_at_icloud(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and codes(r) == ["MX_FOREIGN"]
    assert "mx01.mail.icloud.com" in said(r)


@pytest.mark.faults("dkim-missing")
def test_dkim_missing_seen_inbound(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and "CLOUDFLARE_DKIM_FAIL" in codes(r)
    assert "cf2024-1._domainkey.example.me" in said(r)


@pytest.mark.faults("spf-duplicate")
def test_spf_duplicate_seen_inbound(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and "FORWARD_SPF_ERROR" in codes(r)


def test_same_account_trap_is_refused(world: World) -> None:
    config = world.config()
    trap = dataclasses.replace(config, probe=dataclasses.replace(config.probe,
                                                                 address=config.gmail.address))
    for r in run(trap):
        assert r.verdict == "error" and codes(r) == ["SAME_ACCOUNT"]


@pytest.mark.faults("bad-app-password")
def test_bad_app_password_is_an_error_naming_the_account(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "error" and codes(r) == ["LOGIN_REFUSED"]
    assert "login as flowtest.owner@gmail.com refused" in said(r)
    assert world.gmail_app_password not in said(r)


def test_unreachable_server_is_an_error(world: World) -> None:
    config = world.config()
    dead = dataclasses.replace(config.probe, smtp=dataclasses.replace(config.probe.smtp, port=1))
    r = run(config, probe=dead, timeouts=Timeouts(connect_s=1, command_s=2, delivery_s=2))[0]
    assert r.verdict == "error" and codes(r) == ["SERVER_UNREACHABLE"]


def test_cleanup_also_removes_the_probe_accounts_sent_copies(world: World) -> None:
    other = (b"From: probe@sender.example\r\nSubject: my own sent mail\r\n"
             b"X-Flowtest-Probe: ft-someotherrun-0000x\r\n\r\nkeep\r\n")
    world.call(world.external.store.append(world.probe_address, "Sent", other))
    results = run(world.config())
    sent = b"".join(raw for _, raw, _ in world.probe_folder("Sent"))
    assert all(r.token.encode() not in sent for r in results)
    assert b"ft-someotherrun-0000x" in sent  # another run's probe stays


def test_a_gone_gmail_account_is_gmails_refusal_not_a_missing_rule(world: World) -> None:
    # The rule exists; its destination account does not. Gmail refuses at RCPT
    # and Cloudflare passes Gmail's words back in the same session.
    alias = world.aliases[0]
    world.routing.forward(alias, "gone.account@gmail.com")
    try:
        r = run(world.config(), aliases=world.config().aliases[:1])[0]
    finally:
        world.routing.forward(alias, world.gmail_address)
    assert r.verdict == "fail" and not r.delivered
    # and Cloudflare's log quotes the same refusal from its side
    assert codes(r) == ["GMAIL_ACCOUNT_GONE", "CF_FORWARD_REFUSED"]
    assert "The email account that you tried to reach does not exist" in said(r)


def test_a_bounce_with_no_mx_is_not_blamed_on_another_provider(world: World) -> None:
    # No MX at all: the sender's own server bounces (no mail exchanger); the MX
    # does not point at "another provider", it points nowhere.
    world.dns_extra[("example.me", "MX")] = []
    r = run(world.config(), aliases=world.config().aliases[:1])[0]
    assert r.verdict == "fail" and not r.delivered
    assert codes(r) == ["MX_MISSING"]
    assert "no mail exchanger" in said(r)


def test_cloudflares_own_verdict_is_judged_and_reported(world: World) -> None:
    # The probe account's domain stops authorizing its server: Cloudflare sees
    # SPF fail (the DKIM signature still gets the probe through).
    world.dns_extra[("sender.example", "TXT")] = ['"v=spf1 -all"']
    r = run(world.config(), aliases=world.config().aliases[:1])[0]
    assert r.delivered and r.relay_auth is not None and r.relay_auth.found
    assert r.relay_auth.spf.result == "fail"
    assert "CLOUDFLARE_SAW_SPF_FAIL" in codes(r) and r.verdict == "warn"
    report = r.to_json()
    relay = report["relay_auth"]
    assert isinstance(relay, dict) and relay["authserv_id"] == "mx.cloudflare.net"
