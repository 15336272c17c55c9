"""Data safety under stress (issue #7): a thousand messages that belong to the
user, hundreds of probes, and the servers misbehaving all the while.

The Gmail and external mailboxes start with 1,000 messages in many folders,
with many flags, some of them looking like flowtest's own (old run ids in
X-Flowtest-Probe and Subject). Then rounds of two overlapping runs probe every
alias, inbound and outbound, while a chaos thread cuts IMAP connections (at
random, which is mostly mid-IDLE, and on purpose at the next FETCH), restarts
both IMAP servers, and makes Gmail answer 4xx for a while (Cloudflare passes
it back; the external provider's queue retries). Afterwards:

- every pre-existing message is in its folder, under its UID, byte-identical,
  with its flags;
- nothing else was moved to Trash;
- no message of a run with cleanup on is left outside Trash (probes, the
  probe account's Sent copies, delay notices about them);
- a run with cleanup off, overlapping one with cleanup on, finds its probes
  untouched: overlapping runs never touch each other's probes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowtest.flows import inbound, outbound
from flowtest.flows.common import Options
from flowtest.model import ProbeResult
from flowtest.sandbox import Keyring, World
from flowtest.sandbox import external as ext
from flowtest.sandbox import gmail as gm
from flowtest.sandbox.mailstore import MailStore

ALIASES = [f"s{i:02d}" for i in range(20)]
# (party, folder, how many): 1,000 in all.
SEED = [("gmail", gm.INBOX, 450), ("gmail", gm.SPAM, 150), ("gmail", gm.SENT, 100),
        ("gmail", gm.TRASH, 50), ("gmail", "Receipts", 100), ("gmail", "Travel/2026", 50),
        ("external", ext.INBOX, 60), ("external", ext.JUNK, 20), ("external", ext.SENT, 20)]
FLAG_SETS = [(), ("\\Seen",), ("\\Seen", "\\Flagged"), ("\\Answered", "\\Seen"), ("$Label1",),
             ("\\Flagged",), ("\\Draft",), ("\\Seen", "$Forwarded")]
INBOUND_ROUNDS = 8   # x 2 overlapping runs x 20 aliases
OUTBOUND_ROUNDS = 2
# Share of the 400 probes that must be delivered despite the chaos.
DELIVERY_FLOOR = 0.9


def _message(rng: random.Random, n: int) -> bytes:
    """One of the user's own messages; a few look like flowtest probes of old runs."""
    kind = n % 7
    head = (f"From: Friend {n} <friend{n}@mail.example>\r\nTo: flowtest.owner@gmail.com\r\n"
            f"Subject: message {n} {rng.choice(['invoice', 'trip', 'hello', 'ft-'])}\r\n"
            f"Date: Mon, 2 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
            f"Message-ID: <user-{n}@mail.example>\r\n")
    if kind == 0:  # an old flowtest probe: another run's token, not this test's
        return (head + f"X-Flowtest-Probe: ft-20250101000000{n:08x}-0001x\r\n\r\n"
                "left over from an old run\r\n").encode()
    if kind == 1:  # multipart with an attachment
        return (head + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n'
                "\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
                "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64"
                f"\r\n\r\n{rng.randbytes(300).hex()}\r\n--b--\r\n").encode()
    if kind == 2:  # 8-bit header bytes and a long header
        return head.encode() + b"X-Note: caf\xe9 " + b"x" * 3000 + b"\r\n\r\nbody\r\n"
    if kind == 3:  # no Date, a Subject naming a token-like string
        return (head.replace("Date:", "X-Old-Date:")
                + "X-Mailer: ft-20260101000000abcdef12-0002x\r\n\r\nhi\r\n").encode()
    return (head + "\r\n" + "line\r\n" * rng.randint(1, 50)).encode()


def _seed(world: World) -> None:
    assert world.gmail is not None and world.external is not None
    rng = random.Random(7)
    stores = {"gmail": (world.gmail.store, world.gmail_address),
              "external": (world.external.store, world.probe_address)}
    n = 0
    for party, folder, count in SEED:
        store, user = stores[party]
        if folder in ("Receipts", "Travel/2026"):
            world.call(store.add_folder(user, folder))
        for _ in range(count):
            world.call(store.append(user, folder, _message(rng, n),
                                    flags=FLAG_SETS[n % len(FLAG_SETS)]))
            n += 1


Snapshot = dict[tuple[str, str], dict[int, tuple[bytes, frozenset[str]]]]


def _snapshot(world: World) -> Snapshot:
    assert world.gmail is not None and world.external is not None
    out: Snapshot = {}
    for party, store, user in (("gmail", world.gmail.store, world.gmail_address),
                               ("external", world.external.store, world.probe_address)):
        for folder in world.call(store.folders(user)):
            rows = world.call(store.folder_contents(user, folder))
            out[(party, folder)] = {uid: (raw, frozenset(flags)) for uid, raw, flags in rows}
    return out


class Chaos(threading.Thread):
    """Misbehaving servers, on a seeded random schedule, until stopped."""

    def __init__(self, world: World) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.stopping = threading.Event()
        self.done: Counter[str] = Counter()
        self.rng = random.Random(11)
        self.error: BaseException | None = None

    def run(self) -> None:
        w = self.world
        assert w.gmail is not None and w.external is not None
        stores = {"gmail": w.gmail.store, "external": w.external.store}
        actions: dict[str, Callable[[], None]] = {
            "drop gmail IMAP": lambda: w.call(_on_loop(stores["gmail"].drop_connections)),
            "drop external IMAP": lambda: w.call(_on_loop(stores["external"].drop_connections)),
            "drop at the next gmail FETCH": lambda: w.call(_on_loop(
                lambda: _arm(stores["gmail"]))),
            "drop at the next external FETCH": lambda: w.call(_on_loop(
                lambda: _arm(stores["external"]))),
            "restart gmail IMAP": lambda: w.call(stores["gmail"].restart(0.5)),
            "restart external IMAP": lambda: w.call(stores["external"].restart(0.5)),
            "4xx storm from Gmail": self._storm,
        }
        try:
            while not self.stopping.wait(self.rng.uniform(0.4, 1.2)):
                name = self.rng.choice(sorted(actions))
                actions[name]()
                self.done[name] += 1
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.error = exc

    def _storm(self) -> None:
        self.world.set_fault("gmail-tempfail")
        self.stopping.wait(1.0)
        self.world.clear_fault("gmail-tempfail")


async def _on_loop(fn: Callable[[], Any]) -> Any:
    return fn()


def _arm(store: MailStore) -> None:
    store.drop_on_fetch += 1


def _tokens_in(raw: bytes, prefixes: set[str]) -> bool:
    return any(p.encode() in raw for p in prefixes)


@pytest.mark.slow
# On its own since it failed beside another test worker (make test runs
# three): a round missed a stored probe for the whole delivery_s and left it
# behind. The cause, a watcher stalled for good by a connection lost just as
# it went IDLE, is fixed (tests/test_imap_lost.py); whether the soak may run
# beside the workers again is the recipe's decision.
@pytest.mark.alone
@pytest.mark.timeout(1200)
def test_soak_keeps_every_message_of_the_user(flowtest_keys: Keyring,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with World(keys=flowtest_keys, aliases=ALIASES,
               retry_delays=(0.2, 0.5, 1.0, 2.0, 4.0)) as world:
        _seed(world)
        before = _snapshot(world)
        assert sum(len(v) for v in before.values()) == 1000
        base = world.config()
        config = dataclasses.replace(base, timeouts=dataclasses.replace(
            base.timeouts, delivery_s=40.0))
        keep = dataclasses.replace(config, cleanup="keep")
        options = Options(poll_s=1.0, settle_s=0.3)
        chaos = Chaos(world)
        results: dict[str, list[ProbeResult]] = {}
        kept: set[str] = set()

        async def rounds() -> None:
            for n in range(INBOUND_ROUNDS + OUTBOUND_ROUNDS):
                leg = inbound if n < INBOUND_ROUNDS else outbound
                # Every other round the second run keeps its probes: the first
                # run's cleanup must leave them alone.
                second = keep if n % 2 else config
                ids = (f"20261126000000{n:04d}aaaa", f"20261126000000{n:04d}bbbb")
                first_r, second_r = await asyncio.gather(
                    leg.run(config, run_id=ids[0], options=options),
                    leg.run(second, run_id=ids[1], options=options))
                results[ids[0]], results[ids[1]] = first_r, second_r
                if second is keep:
                    kept.add(ids[1])
                    _check_untouched(world, ids[1], second_r)

        chaos.start()
        try:
            asyncio.run(rounds())
        finally:
            chaos.stopping.set()
            chaos.join()
        assert chaos.error is None, chaos.error
        world.check_errors()
        # A task of flowtest's (or aioimaplib's, on flowtest's connections)
        # left waiting for ever was the sign of a stalled watcher.
        stranded = [r.getMessage()[:200] for r in caplog.records if r.name == "asyncio"
                    and r.getMessage().startswith(("Task was destroyed",
                                                   "Task exception was never retrieved"))]
        assert stranded == []
        after = _snapshot(world)
        assert world.gmail is not None and world.external is not None
        stored_tokens, unjudged = _stored_tokens(world, results)
        fired = {"drops mid-FETCH": world.gmail.store.fetch_drops
                 + world.external.store.fetch_drops,
                 "IMAP restarts": world.gmail.store.restarts + world.external.store.restarts}

    # 1. Every pre-existing message: same folder, UID, bytes and flags.
    verified = 0
    for place, messages in before.items():
        for uid, (raw, flags) in messages.items():
            assert after[place].get(uid) == (raw, flags), (place, uid)
            verified += 1
    # 2. Nothing of the user's went to Trash; 3. nothing of a cleaned run is left out.
    cleaned = {f"ft-{rid}-" for rid in results if rid not in kept}
    left_behind = []
    for (party, folder), messages in after.items():
        new = {uid: m for uid, m in messages.items() if uid not in before.get((party, folder), {})}
        in_trash = folder in (gm.TRASH, ext.TRASH)
        for uid, (raw, _) in new.items():
            ours = _tokens_in(raw, cleaned) or _tokens_in(raw, {f"ft-{r}-" for r in kept})
            if in_trash:
                assert ours, f"a message that is not a probe went to {party} {folder}"
            elif _tokens_in(raw, cleaned):
                left_behind.append((party, folder, uid, raw[:300]))
    assert left_behind == [], [(p, f, u) for p, f, u, _ in left_behind]
    probes = [r for rs in results.values() for r in rs]
    verdicts = Counter(r.verdict for r in probes)
    print(f"\nsoak: {verified} pre-existing messages verified untouched; {len(probes)} probes "
          f"in {len(results)} runs ({len(kept)} with cleanup off); verdicts {dict(verdicts)}; "
          f"chaos {dict(chaos.done)}; fired {fired}")
    assert verified == 1000 and len(probes) == 40 * (INBOUND_ROUNDS + OUTBOUND_ROUNDS)
    # A soak that delivers nothing proves nothing: every probe the sandbox
    # stored (its ground truth) is one flowtest saw, and chaos that only
    # delays (4xx retried well within delivery_s) leaves most delivered.
    delivered = [r for r in probes if r.delivered]
    assert len(delivered) >= DELIVERY_FLOOR * len(probes), verdicts
    assert stored_tokens <= {r.token for r in delivered} | unjudged, (
        "stored by the sandbox but not seen by flowtest",
        sorted(stored_tokens - {r.token for r in delivered})[:5])
    assert fired["drops mid-FETCH"] > 0 and fired["IMAP restarts"] > 0  # the chaos happened


def _stored_tokens(world: World, results: dict[str, list[ProbeResult]]
                   ) -> tuple[set[str], set[str]]:
    """Tokens of the probes the sandbox stored in the receiving mailbox (its
    ground truth; a probe's Message-ID is <token@domain>), and those of probes
    whose run ended in an error (flowtest could not look)."""
    probes = {r.token: r for rs in results.values() for r in rs}
    receiver = {"inbound": "gmail", "outbound": "external"}
    stored = set()
    for e in world.truth.events(kind="stored"):
        token = e.message_id.strip("<>").partition("@")[0]
        if token in probes and e.party == receiver[probes[token].leg]:
            stored.add(token)
    unjudged = {t for t, r in probes.items() if r.verdict == "error"}
    return stored, unjudged


def _check_untouched(world: World, run_id: str, results: list[ProbeResult]) -> None:
    """The probes of a run with cleanup off are where it found them, unflagged."""
    prefix = f"ft-{run_id}-"
    assert world.gmail is not None and world.external is not None
    where = {"inbound": (world.gmail.store, world.gmail_address, [gm.INBOX, gm.SPAM]),
             "outbound": (world.external.store, world.probe_address, [ext.INBOX, ext.JUNK])}
    for r in results:
        if not r.delivered:
            continue
        store, user, folders = where[r.leg]
        found = [(folder, flags) for folder in folders
                 for _, raw, flags in world.call(store.folder_contents(user, folder))
                 if re.search(rb"X-Flowtest-Probe:\s*" + re.escape(r.token.encode()), raw)]
        assert found, f"{r.token} of a run with cleanup off was moved"
        assert all(not flags & {"\\Deleted", "\\Seen"} for _, flags in found), found
        assert prefix in r.token


def test_two_overlapping_processes_never_touch_each_others_probes(
        world: World, tmp_path: Path) -> None:
    """Two `flowtest run` processes (say, two cron entries that overlap) on the
    same mailboxes, one keeping its probes: each cleans up only its own."""
    assert world.gmail is not None
    mine = _message(random.Random(3), 999)
    world.call(world.gmail.store.append(world.gmail_address, gm.INBOX, mine, flags=["\\Seen"]))
    before = world.gmail_folder(gm.INBOX)
    config = world.write_config(tmp_path / "flowtest.toml")

    def start(name: str, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "flowtest.cli", "run", "-c", str(config), "--leg", "inbound",
             "--json", str(tmp_path / f"{name}.json"), "--report-dir", str(tmp_path / name),
             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    runs = [start("cleaning"), start("keeping", "--keep")]
    for proc in runs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    reports = {name: json.loads((tmp_path / f"{name}.json").read_text())
               for name in ("cleaning", "keeping")}
    tokens = {name: {p["token"] for p in r["probes"] if p["verdict"] == "pass"}
              for name, r in reports.items()}
    assert len(tokens["cleaning"]) == len(tokens["keeping"]) == len(world.aliases)

    def holding(rows: list[tuple[int, bytes, set[str]]]) -> set[str]:
        return {t for t in tokens["cleaning"] | tokens["keeping"]
                for _, raw, _ in rows if f"X-Flowtest-Probe: {t}".encode() in raw}

    inbox = world.gmail_folder(gm.INBOX)
    assert holding(inbox) == tokens["keeping"]          # the kept ones, all of them
    assert holding(world.gmail_folder(gm.TRASH)) == tokens["cleaning"]
    assert [r for r in inbox if r[0] in {uid for uid, _, _ in before}] == before
    kept_flags = [flags for _, raw, flags in inbox if any(
        f"X-Flowtest-Probe: {t}".encode() in raw for t in tokens["keeping"])]
    assert len(kept_flags) == len(tokens["keeping"])
    assert all(not f & {"\\Seen", "\\Deleted"} for f in kept_flags)
