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
    # combinations
    ("spoofed-ar", "spam"): ("ok", "fail", "warn"),
    ("imap-drop", "duplicate"): ("ok", "warn", "warn"),
    ("dkim-missing", "dmarc-reject"): ("fail", "warn", "fail"),
    ("body-modified", "spam"): ("ok", "fail", "warn"),
    ("mx-icloud", "sendas-unverified"): ("fail", "fail", "fail"),
}


def test_the_matrix_covers_every_fault() -> None:
    named = {spec.split("=")[0] for faults in MATRIX for spec in faults}
    assert named == set(FAULTS)


@pytest.mark.slow
@pytest.mark.parametrize("faults", list(MATRIX), ids=["+".join(f) or "healthy" for f in MATRIX])
def test_fault_matrix(world: World, faults: tuple[str, ...]) -> None:
    for spec in faults:
        world.set_fault(spec)
    config = world.config()
    # Short waits: thresholds and timeout scaled to the sandbox's speed.
    config = dataclasses.replace(
        config, timeouts=dataclasses.replace(config.timeouts, delivery_s=4.0),
        thresholds=dataclasses.replace(config.thresholds, latency_warn_s=0.8,
                                       latency_fail_s=1.5))
    aliases = config.aliases[:1]
    findings = asyncio.run(diagnose(config))
    [inb] = asyncio.run(inbound.run(config, aliases=aliases, options=FAST))
    [out] = asyncio.run(outbound.run(config, aliases=aliases, options=FAST))
    doctor = ("fail" if any(f.severity == "error" for f in findings)
              else "warn" if any(f.severity == "warning" for f in findings) else "ok")
    assert (doctor, inb.verdict, out.verdict) == MATRIX[faults], (
        [f.code for f in findings], inb.diagnosis, out.diagnosis)
    assert inb.diagnosis and out.diagnosis  # every verdict comes with its sentences
    if faults:
        overall = worst([inb.verdict, out.verdict, "fail" if doctor == "fail" else "pass"])
        assert overall != "pass"
