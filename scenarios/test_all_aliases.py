"""Every configured alias in one concurrent sweep: one SMTP session, one IMAP
connection per mailbox, all probes in flight at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.inbound
@pytest.mark.slow
def test_every_alias_in_one_sweep(inbound: Callable[..., Any], flowtest_config: Any) -> None:
    results = inbound()
    assert len(results) == len(flowtest_config.aliases)
    failed = [r for r in results if r.verdict not in ("pass", "warn")]
    assert not failed, "\n".join(f"{r.alias}: {r.verdict}: {' '.join(r.diagnosis)}"
                                 for r in failed)
