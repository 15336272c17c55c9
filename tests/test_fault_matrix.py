"""Every sandbox fault, alone and in combinations: the verdict of the doctor and
of each leg, and the run's overall verdict, which is never a pass.
docs/faults.md shows the same matrix."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from flowtest.doctor import diagnose
from flowtest.flows import inbound, outbound
from flowtest.flows.common import Options
from flowtest.model import worst
from flowtest.sandbox import FAULTS, World
from tests.test_codes import check_matrix_codes

FAST = Options(poll_s=0.5, settle_s=0.5)

# fault(s) -> (doctor, inbound, outbound): "ok" for the doctor means no error or warning.
MATRIX: dict[tuple[str, ...], tuple[str, str, str]] = {
    (): ("ok", "pass", "warn"),
    ("forward-drop",): ("ok", "fail", "warn"),
    ("forward-delay=2",): ("ok", "fail", "warn"),
    ("no-rule",): ("ok", "fail", "warn"),
    ("spam",): ("ok", "fail", "warn"),
    ("mx-icloud",): ("fail", "fail", "warn"),
    ("spf-duplicate",): ("fail", "warn", "warn"),
    ("dkim-missing",): ("fail", "warn", "warn"),
    ("dmarc-reject",): ("fail", "pass", "fail"),
    ("sendas-unverified",): ("ok", "pass", "fail"),
    ("sendas-unsigned",): ("ok", "pass", "warn"),
    ("bad-app-password",): ("ok", "error", "error"),
    ("gmail-tempfail",): ("ok", "fail", "warn"),
    ("body-modified",): ("ok", "warn", "warn"),
    ("imap-drop",): ("ok", "warn", "warn"),
    ("spoofed-ar",): ("ok", "warn", "warn"),
    ("duplicate",): ("ok", "warn", "warn"),
    ("gmail-send-limit",): ("ok", "pass", "fail"),
    ("cf-destination-unverified",): ("fail", "fail", "warn"),
    ("cf-rule-disabled",): ("fail", "fail", "warn"),
    ("cf-routing-misconfigured",): ("fail", "pass", "warn"),
    ("cf-token-scope",): ("fail", "pass", "warn"),
    ("cf-log-lag=600",): ("ok", "pass", "warn"),
    ("cf-catch-all-drop",): ("warn", "pass", "warn"),
    ("gmail-silent-discard",): ("ok", "fail", "warn"),
    # combinations
    ("spoofed-ar", "spam"): ("ok", "fail", "warn"),
    ("imap-drop", "duplicate"): ("ok", "warn", "warn"),
    ("dkim-missing", "dmarc-reject"): ("fail", "warn", "fail"),
    ("body-modified", "spam"): ("ok", "fail", "warn"),
    ("mx-icloud", "sendas-unverified"): ("fail", "fail", "fail"),
    ("cf-rule-disabled", "cf-catch-all-drop"): ("fail", "fail", "warn"),
    ("gmail-silent-discard", "cf-log-lag=600"): ("ok", "fail", "warn"),
}


def test_the_matrix_covers_every_fault() -> None:
    named = {spec.split("=")[0] for faults in MATRIX for spec in faults}
    assert named == set(FAULTS)


@pytest.fixture(scope="module")
def path_time(sandbox_world: World) -> float:
    """How long the sandbox takes, on this machine now, to carry a healthy
    probe from the external provider's submission to Gmail's mailbox: its own
    ground truth, not flowtest's measurement. Waits scale with it, so a
    loaded machine slows the test down instead of failing it."""
    config = sandbox_world.config()
    [result] = asyncio.run(inbound.run(config, aliases=config.aliases[:1], options=FAST))
    mid = next(e.message_id for e in sandbox_world.truth.events(kind="submitted")
               if result.token in e.message_id)
    submitted = sandbox_world.truth.events(mid, "submitted")[0]
    stored = sandbox_world.truth.wait_for(mid, "stored", 30)
    assert stored is not None, sandbox_world.truth.events(mid)
    return stored.at - submitted.at


@pytest.mark.slow
@pytest.mark.parametrize("faults", list(MATRIX), ids=["+".join(f) or "healthy" for f in MATRIX])
def test_fault_matrix(world: World, faults: tuple[str, ...], path_time: float) -> None:
    for spec in faults:
        world.set_fault(spec)
    config = world.config()
    # Waits scaled to the sandbox's measured speed (a lost probe costs the
    # whole wait). Latency judging is off (thresholds at the wait) except in
    # the forward-delay row, where both thresholds sit below the delay the
    # sandbox itself holds the probe for (checked below against its truth).
    delivery_s = max(4.0, 10 * path_time)
    held_s = world.faults.seconds("forward-delay")
    lenient = dataclasses.replace(config.thresholds, latency_warn_s=delivery_s,
                                  latency_fail_s=delivery_s)
    config = dataclasses.replace(
        config, timeouts=dataclasses.replace(config.timeouts, delivery_s=delivery_s),
        thresholds=lenient)
    inbound_config = config if not held_s else dataclasses.replace(
        config, thresholds=dataclasses.replace(lenient, latency_warn_s=held_s / 2,
                                               latency_fail_s=held_s * 3 / 4))
    aliases = config.aliases[:1]
    findings = asyncio.run(diagnose(config))
    [inb] = asyncio.run(inbound.run(inbound_config, aliases=aliases, options=FAST))
    if held_s:
        # Ground truth: Cloudflare held this probe at least that long.
        [accepted] = [e for e in world.truth.events(kind="accepted") if inb.token in e.message_id]
        relayed = world.truth.wait_for(accepted.message_id, "relayed", delivery_s + held_s)
        assert relayed is not None and relayed.at - accepted.at >= held_s
    [out] = asyncio.run(outbound.run(config, aliases=aliases, options=FAST))
    doctor = ("fail" if any(f.severity == "error" for f in findings)
              else "warn" if any(f.severity == "warning" for f in findings) else "ok")
    assert (doctor, inb.verdict, out.verdict) == MATRIX[faults], (
        [f.code for f in findings], inb.diagnosis, out.diagnosis)
    assert inb.diagnosis and out.diagnosis  # every verdict comes with its sentences
    check_matrix_codes(faults, inb, out)  # and the codes each leg's problems carry
    if faults:
        overall = worst([inb.verdict, out.verdict, "fail" if doctor == "fail" else "pass"])
        assert overall != "pass"
