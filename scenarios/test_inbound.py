"""Inbound: mail to each alias reaches the Gmail inbox through Cloudflare.

Copy this file to write your own checks. It runs against the embedded sandbox
unless asked on the command line: `pytest scenarios --flowtest-live
--flowtest-config flowtest.toml` checks your real setup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.inbound
def test_alias_reaches_the_inbox(inbound: Callable[..., Any], flowtest_alias: str) -> None:
    [result] = inbound([flowtest_alias])
    assert result.verdict in ("pass", "warn"), " ".join(result.diagnosis)
    assert result.folder is not None and result.delivered
