"""A sandbox that takes real time: each hop holds the message for a delay drawn
from a distribution shaped like the real one (FACTS.md, "Timing, as seen in
the wild"), so latency plots of the sandbox look like real ones and a test can
check flowtest's figures against what the world really did.

Hops and their shapes (seconds, before ``scale``):

- ``sender``: the sender's server to Cloudflare, 0-1 s; rarely (1%) the
  sender's queue holds it for minutes.
- ``cloudflare``: Cloudflare's own handling, 1-4 s (its ARC and DKIM ``t=``
  come 1-4 s after its Received), mostly near 2 s; rarely (2%) tens of seconds.
- ``gmail``: Cloudflare to Gmail's storage, 0.1-1.2 s; rarely (0.5%) minutes
  (a message seen in the inbox 4 minutes after Gmail's 250).

Each draw is recorded in the ground truth as a ``held`` event whose detail is
``"<hop> <seconds>"``. Draws come from one seeded generator, so a seed gives
the same sequence of delays (the order messages reach a hop is the order they
are drawn in).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

HOPS = ("sender", "cloudflare", "gmail")
# The tails, capped so one unlucky draw never stalls a run past its timeout.
_TAIL = {"sender": (0.01, 60.0, 600.0), "cloudflare": (0.02, 20.0, 120.0),
         "gmail": (0.005, 60.0, 240.0)}   # hop: (probability, mean, cap)
_BODY = {"sender": (0.0, 1.0, 0.2), "cloudflare": (1.0, 4.0, 1.8),
         "gmail": (0.1, 1.2, 0.4)}        # hop: (low, high, mode) of a triangle


@dataclass
class Timing:
    """Hop delays for a world: ``scale`` shrinks every delay (tests use 0.05
    so a probe takes a fraction of a second), ``seed`` fixes the draws,
    ``tails`` keeps the rare long waits (off for tests that want bounds)."""

    scale: float = 1.0
    seed: int | None = None
    tails: bool = True
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.scale >= 0:   # also NaN
            raise ValueError(f"timing scale must be 0 or more, not {self.scale}")
        self._random = random.Random(self.seed)

    def draw(self, hop: str) -> float:
        low, high, mode = _BODY[hop]
        with self._lock:
            value = self._random.triangular(low, high, mode)
            p, mean, cap = _TAIL[hop]
            if self.tails and self._random.random() < p:
                value = min(high + self._random.expovariate(1 / mean), cap)
        return round(value * self.scale, 4)


def bounds(hop: str, scale: float = 1.0) -> tuple[float, float]:
    """The body of a hop's distribution (without the tail), scaled."""
    low, high, _ = _BODY[hop]
    return low * scale, high * scale
