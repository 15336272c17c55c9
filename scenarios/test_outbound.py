"""Outbound: mail sent as each alias through Gmail arrives, and what receivers
conclude about it. Copy this file to write your own checks."""

from __future__ import annotations

import asyncio

import pytest

from flowtest.flows import outbound
from flowtest.flows.common import Options


@pytest.mark.outbound
def test_send_as_every_alias_is_delivered(flowtest_config: object) -> None:
    results = asyncio.run(outbound.run(flowtest_config,  # type: ignore[arg-type]
                                       options=Options(poll_s=1.0, settle_s=0.5)))
    # "warn" is the known Gmail send-as DMARC failure under p=none.
    failed = [r for r in results if r.verdict not in ("pass", "warn")]
    assert not failed, "\n".join(f"{r.alias}: {r.verdict}: {' '.join(r.diagnosis)}"
                                 for r in failed)
