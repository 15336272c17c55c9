"""Latency of forwarding: a few probes to one alias, percentiles checked
against the thresholds of the config."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.latency
@pytest.mark.slow
def test_forwarding_latency(inbound: Callable[..., Any], flowtest_config: Any) -> None:
    alias = flowtest_config.aliases[0].address
    latencies = [r.latency_s for _ in range(3) for r in inbound([alias])
                 if r.latency_s is not None]
    assert len(latencies) == 3, "some probes were not delivered"
    p50 = statistics.median(latencies)
    assert p50 < flowtest_config.thresholds.latency_warn_s, (
        f"median forwarding latency {p50:.2f} s is over "
        f"{flowtest_config.thresholds.latency_warn_s} s: {latencies}")
