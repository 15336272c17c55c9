"""How the watcher reads a look's replies (issue 19, item 2): one ranged
``UID FETCH last+1:*`` instead of SEARCH then FETCH, and what that changes.

A server may add unsolicited FETCH responses to any reply (RFC 3501 7.4.2);
pymap does, for a message stored while it answers (``FETCH (FLAGS () UID n)``).
Taken for results, they moved the watcher's high-water mark past messages it
never read, and a burst lost probes; the sandbox test below caught it.
"""

from __future__ import annotations

import asyncio
import collections

from flowtest.flows import inbound
from flowtest.flows.common import Options
from flowtest.net.imap import wire
from flowtest.sandbox import Keyring, World

HEADER = b"X-Flowtest-Probe: ft-1\r\n\r\n"


def test_unsolicited_fetch_responses_are_not_results() -> None:
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 101 FLAGS () BODY[HEADER.FIELDS (X-FLOWTEST-PROBE)] {24}",
        bytearray(HEADER), b")",
        b"2 FETCH (FLAGS () UID 102)",
        b"UID FETCH completed."]
    assert [uid for uid, _, _ in wire.fetch_items(lines, section=b"BODY[")] == [101]
    # Without a section every FETCH response counts (the old reading).
    assert [uid for uid, _, _ in wire.fetch_items(lines)] == [101, 102]


def test_a_burst_is_seen_whole(flowtest_keys: Keyring) -> None:
    """Twenty probes at once land while the watcher is looking: each must be
    found, none skipped by the ranged FETCH."""
    with World(aliases=[f"a{i}" for i in range(20)], keys=flowtest_keys) as world:
        results = asyncio.run(inbound.run(world.config(),
                                          options=Options(poll_s=1.0, settle_s=0.0)))
    verdicts = collections.Counter(r.verdict for r in results)
    assert verdicts == {"pass": 20}, [r.diagnosis for r in results if r.verdict != "pass"][:1]
