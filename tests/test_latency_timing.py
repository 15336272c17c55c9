"""A sandbox that takes real time (issue 20, item 4): each hop holds the
message for a drawn delay, recorded in the truth; flowtest's figures must
agree with the truth within the intervals they state. The distribution is
scaled down (0.05) so the test takes seconds, and its tails are off so no
draw can stall it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from flowtest import guard
from flowtest.flows import latency as flow
from flowtest.flows.common import Options
from flowtest.mail import stats
from flowtest.model import ProbeResult
from flowtest.sandbox import Keyring, World
from flowtest.sandbox.timing import HOPS, Timing, bounds

SCALE = 0.05
# Which hop's hold each measured segment contains: Cloudflare's Received is
# stamped when the sender's queue lets go, Gmail's MX stamp after Cloudflare's
# handling, Gmail's storage stamps after its own.
SEGMENT_OF_HOLD = {"cloudflare-email.net": "sender", "mx.google.com": "cloudflare",
                   "Gmail internal": "gmail"}


@pytest.fixture(scope="module")
def slow_world(flowtest_keys: Keyring) -> Iterator[World]:
    with guard.guarded(), World(keys=flowtest_keys, aliases=("hello", "shop"),
                                timing=Timing(scale=SCALE, seed=20, tails=False)) as world:
        yield world


def _probe(world: World, n: int) -> list[ProbeResult]:
    config = world.config()
    plan = flow.Plan("timingtest", tuple(a.address for a in config.aliases), n, 0.0, 0.0)
    kept: list[ProbeResult] = []
    asyncio.run(flow.run(config, plan, on_probe=kept.append, progress=lambda *a: None,
                         options=Options(poll_s=0.2, settle_s=0.0)))
    return kept


def test_timing_draws_are_seeded_and_shaped_like_the_real_ones() -> None:
    a, b = Timing(seed=1), Timing(seed=1)
    draws = [a.draw(h) for h in HOPS * 200]
    assert draws == [b.draw(h) for h in HOPS * 200]
    body = Timing(seed=2, tails=False)
    for hop in HOPS:
        low, high = bounds(hop)
        values = [body.draw(hop) for _ in range(300)]
        assert all(low <= v <= high for v in values), hop
    # The tails exist: over many draws some Cloudflare holds pass its 4 s body.
    tailed = Timing(seed=3)
    assert any(tailed.draw("cloudflare") > bounds("cloudflare")[1] for _ in range(2000))
    with pytest.raises(ValueError):
        Timing(scale=float("nan"))


def test_figures_match_the_truth_within_their_intervals(slow_world: World) -> None:
    results = _probe(slow_world, 12)
    assert [r.delivered for r in results] == [True] * 12
    assert {r.alias for r in results} == set(slow_world.aliases)   # alternating
    truth = slow_world.truth
    held: dict[tuple[str, str], float] = {}
    for event in truth.events(kind="held"):
        hop, seconds = event.detail.split()
        held[(event.message_id, hop)] = float(seconds)
    true_e2e = []
    for r in results:
        message_id = f"<{r.token}@"
        mine = {hop: s for (mid, hop), s in held.items() if mid.startswith(message_id)}
        assert set(mine) == set(HOPS), r.token   # every hop held it, once
        stored = [e for e in truth.events(kind="stored")
                  if e.message_id.startswith(message_id) and e.party == "gmail"]
        assert r.sent_at is not None and r.latency_s is not None and stored
        true_e2e.append(stored[0].at - r.sent_at)
        assert true_e2e[-1] >= sum(mine.values())   # the world really took that time
        # Flowtest sees the copy after Gmail stored it, never before.
        assert r.latency_s >= true_e2e[-1] - 0.001
        for seg in stats.segments(r):
            hop = SEGMENT_OF_HOLD.get(seg.label)
            if hop is None:
                continue
            # Within the segment's stated resolution of the time the world held it.
            assert abs(seg.delay_s - mine[hop]) <= seg.resolution_s + 0.001, (seg, mine[hop])
    summaries = {s.name: s for s in stats.by_hop(results)}
    e2e = summaries[stats.END_TO_END]
    assert e2e.count == 12 and e2e.p99 is None and e2e.p90 is not None and e2e.p50_ci
    # The true median lies below the measured interval's top; flowtest's own
    # discovery (IMAP, polled every 0.2 s here) adds less than a poll or two.
    true_median = stats.percentile(true_e2e, 50)
    assert true_median <= e2e.p50_ci[1]
    assert e2e.p50 is not None and e2e.p50 - true_median <= 2 * 0.2 + 0.1
    for s in summaries.values():
        if s.resolution_s is not None:
            assert s.resolution_s == 1.0   # whole-second Received stamps in this mode
            assert s.max <= e2e.max and (s.p50 or 0) <= (e2e.p50 or 0)
