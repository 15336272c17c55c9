"""Inbound: mail to each alias reaches the Gmail inbox through Cloudflare.

Copy this file to write your own checks. The `flowtest_config` fixture is the
sandbox's config here; with a live config the same test checks the real path.
"""

from __future__ import annotations

import asyncio

import pytest

from flowtest.flows import inbound


@pytest.mark.inbound
def test_every_alias_reaches_the_inbox(flowtest_config: object) -> None:
    results = asyncio.run(inbound.run(flowtest_config,  # type: ignore[arg-type]
                                      options=inbound.Options(poll_s=1.0, settle_s=0.5)))
    failed = [r for r in results if r.verdict not in ("pass", "warn")]
    assert not failed, "\n".join(f"{r.alias}: {r.verdict}: {' '.join(r.diagnosis)}"
                                 for r in failed)
