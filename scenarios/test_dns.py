"""DNS: the domain's records are what Cloudflare Email Routing and Gmail need.

Copy this file to write your own checks."""

from __future__ import annotations

import asyncio

import pytest

from flowtest.doctor import diagnose


@pytest.mark.dns
def test_dns_has_no_errors(flowtest_config: object) -> None:
    findings = asyncio.run(diagnose(flowtest_config))  # type: ignore[arg-type]
    errors = [f for f in findings if f.severity == "error"]
    assert not errors, "\n".join(f"{f.code}: {f.message} Fix: {f.fix}" for f in errors)
