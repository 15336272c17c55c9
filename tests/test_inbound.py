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


def test_healthy_world_every_alias_passes_in_one_sweep(world: World) -> None:
    results = run(world.config())
    assert [r.alias for r in results] == list(world.aliases)
    assert all(r.verdict == "pass" and r.folder == "INBOX" for r in results)


def test_latency_matches_ground_truth_within_50ms(world: World) -> None:
    # One probe at a time: the sandbox shares this process, and its pure-Python
    # RSA signing of concurrent messages holds the GIL long enough to delay
    # flowtest's own reactions (docs/sandbox.md). One at a time, the figure
    # measures flowtest, not the sandbox's CPU load.
    config = world.config()
    results = [r for alias in config.aliases
               for r in asyncio.run(inbound.run(config, aliases=[alias], options=FAST))]
    for r in results:
        assert r.verdict == "pass", r.diagnosis
        assert r.delivered and r.folder == "INBOX" and r.intact and r.copies == 1
        assert r.auth is not None and r.auth.dmarc.result == "pass" and r.auth.arc.result == "pass"
        assert r.relay_auth is not None and r.relay_auth.spf.result == "pass"
        submitted = world.truth.events(f"<{r.token}@sender.example>", "submitted")[0]
        stored = world.truth.events(f"<{r.token}@sender.example>", "stored")[0]
        truth = stored.at - submitted.at
        assert r.latency_s is not None and abs(r.latency_s - truth) < 0.050, (r.latency_s, truth)
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
    assert "Spam folder" in said(r)


@pytest.mark.faults("no-rule")
def test_no_rule(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and not r.delivered
    assert "Cloudflare refused hello@example.me: no routing rule" in said(r)
    assert "550 5.1.1 Address does not exist" in said(r)


@pytest.mark.faults("forward-drop")
def test_forward_drop_is_lost(world: World) -> None:
    config = world.config()
    r = run(config, timeouts=dataclasses.replace(config.timeouts, delivery_s=2.0))[0]
    assert r.verdict == "fail" and not r.delivered
    assert "Lost: no copy reached Gmail" in said(r) and "no bounce came back" in said(r)


@pytest.mark.faults("forward-delay=1.2")
def test_forward_delay_is_late(world: World) -> None:
    r = run(world.config(), thresholds=Thresholds(latency_warn_s=0.5, latency_fail_s=1.0))[0]
    assert r.delivered and r.latency_s is not None and r.latency_s >= 1.2
    assert r.verdict == "fail" and "Late: it took" in said(r)


@pytest.mark.faults("forward-delay=0.8")
def test_forward_delay_under_the_fail_threshold_warns(world: World) -> None:
    r = run(world.config(), thresholds=Thresholds(latency_warn_s=0.5, latency_fail_s=5.0))[0]
    assert r.verdict == "warn" and "Slow: it took" in said(r)


@pytest.mark.faults("gmail-tempfail")
def test_gmail_tempfail(world: World) -> None:
    config = world.config()
    r = run(config, timeouts=dataclasses.replace(config.timeouts, delivery_s=2.0))[0]
    assert r.verdict == "fail" and not r.delivered
    assert "Gmail refused the forwarded copy for now (421 4.7.0" in said(r)
    assert "Cloudflare does not queue" in said(r)


@pytest.mark.faults("body-modified")
def test_body_modified(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and r.folder == "INBOX" and r.intact is False
    assert "Altered in transit" in said(r) and "ARC seal" in said(r)


@pytest.mark.faults("imap-drop")
def test_imap_drop_reconnects_and_still_finds_it(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and r.delivered and r.folder == "INBOX"
    assert "IMAP connection dropped" in said(r)


@pytest.mark.faults("duplicate")
def test_duplicate(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and r.copies == 2 and "Delivered 2 times" in said(r)


@pytest.mark.faults("spoofed-ar")
def test_spoofed_authentication_results_are_ignored(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and r.folder == "INBOX"
    assert r.auth is not None and r.auth.ignored == 1
    assert "Ignored 1 Authentication-Results" in said(r)


@pytest.mark.faults("spoofed-ar", "spam")
def test_spoofed_authentication_results_do_not_hide_spam(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and "Spam folder" in said(r)


@pytest.mark.faults("mx-icloud")
def test_mx_still_at_icloud(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "fail" and "not to Cloudflare" in said(r)
    assert "mx01.mail.icloud.com" in said(r)


@pytest.mark.faults("dkim-missing")
def test_dkim_missing_seen_inbound(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and "cf2024-1._domainkey.example.me" in said(r)


@pytest.mark.faults("spf-duplicate")
def test_spf_duplicate_seen_inbound(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "warn" and "permerror" in said(r)


def test_same_account_trap_is_refused(world: World) -> None:
    config = world.config()
    trap = dataclasses.replace(config, probe=dataclasses.replace(config.probe,
                                                                 address=config.gmail.address))
    for r in run(trap):
        assert r.verdict == "error" and "Gmail silently drops a message it sent itself" in said(r)


@pytest.mark.faults("bad-app-password")
def test_bad_app_password_is_an_error_naming_the_account(world: World) -> None:
    r = run(world.config())[0]
    assert r.verdict == "error"
    assert "login as flowtest.owner@gmail.com refused" in said(r)
    assert world.gmail_app_password not in said(r)


def test_unreachable_server_is_an_error(world: World) -> None:
    config = world.config()
    dead = dataclasses.replace(config.probe, smtp=dataclasses.replace(config.probe.smtp, port=1))
    r = run(config, probe=dead, timeouts=Timeouts(connect_s=1, command_s=2, delivery_s=2))[0]
    assert r.verdict == "error" and "cannot connect" in said(r)


def test_cleanup_also_removes_the_probe_accounts_sent_copies(world: World) -> None:
    other = (b"From: probe@sender.example\r\nSubject: my own sent mail\r\n"
             b"X-Flowtest-Probe: ft-someotherrun-0000x\r\n\r\nkeep\r\n")
    world.call(world.external.store.append(world.probe_address, "Sent", other))
    results = run(world.config())
    sent = b"".join(raw for _, raw, _ in world.probe_folder("Sent"))
    assert all(r.token.encode() not in sent for r in results)
    assert b"ft-someotherrun-0000x" in sent  # another run's probe stays
