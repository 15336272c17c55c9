"""State per leg and alias: ok, warning, failing or unknown, since when.

A state changes only when a probe's verdict says something different: the
``since`` of a path that stays broken is when it broke, not the last run.
``error`` (flowtest could not test: a login refused, a server unreachable)
is ``unknown``: it says nothing about the mail path (docs/verdicts.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from flowtest.model import ProbeResult

State = Literal["ok", "warning", "failing", "unknown"]

STATE_OF_VERDICT: dict[str, State] = {"pass": "ok", "warn": "warning", "fail": "failing",
                                      "error": "unknown"}


@dataclass(frozen=True)
class LegState:
    leg: str
    alias: str
    state: State
    since: float
    failures: int          # consecutive fail or error verdicts
    code: str              # the first diagnosis code of the last result ("" if none)
    detail: str            # its text (already redacted)
    updated: float

    def to_json(self) -> dict[str, object]:
        return {"leg": self.leg, "alias": self.alias, "state": self.state, "since": self.since,
                "failures": self.failures, "code": self.code, "detail": self.detail,
                "updated": self.updated}


def _main_finding(result: ProbeResult) -> tuple[str, str]:
    worst = [f for f in result.findings if f.verdict == result.verdict] or list(result.findings)
    return (worst[0].code, worst[0].text) if worst else ("", "")


def advance(previous: LegState | None, result: ProbeResult, *, at: float) -> LegState:
    """The state after one more result."""
    state = STATE_OF_VERDICT[result.verdict]
    code, detail = _main_finding(result)
    failures = (previous.failures + 1 if previous else 1) \
        if result.verdict in ("fail", "error") else 0
    if previous is None or previous.state != state:
        return LegState(result.leg, result.alias, state, at, failures, code, detail, at)
    return replace(previous, failures=failures, code=code, detail=detail, updated=at)


class Board:
    """Every (leg, alias) state, kept in memory and persisted by the store."""

    def __init__(self, states: Iterable[LegState] = ()) -> None:
        self._states = {(s.leg, s.alias): s for s in states}

    def get(self, leg: str, alias: str) -> LegState | None:
        return self._states.get((leg, alias))

    def apply(self, results: Iterable[ProbeResult], *, at: float) -> tuple[list[LegState],
                                                                           list[LegState]]:
        """(the new states of these results, those among them that changed)."""
        new, changed = [], []
        for r in results:
            before = self._states.get((r.leg, r.alias))
            after = advance(before, r, at=at)
            self._states[(r.leg, r.alias)] = after
            new.append(after)
            if before is None or before.state != after.state:
                changed.append(after)
        return new, changed

    def all(self) -> list[LegState]:
        return [self._states[k] for k in sorted(self._states)]
