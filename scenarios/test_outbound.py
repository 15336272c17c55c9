"""Outbound: mail sent as each alias through Gmail arrives, and what receivers
conclude about it. Copy this file to write your own checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.outbound
def test_send_as_alias_is_delivered(outbound: Callable[..., Any], flowtest_alias: str) -> None:
    [result] = outbound([flowtest_alias])
    # "warn" is the known Gmail send-as DMARC failure under p=none.
    assert result.verdict in ("pass", "warn"), " ".join(result.diagnosis)
