"""When each job runs next: every N seconds, stretched or shrunk by jitter.

Jitter spreads the probes of many instances (and of one instance restarted
by systemd) over the period, so that they do not hit the providers at the
same second. A job's next run is counted from the end of its last one: a
slow run never makes two runs of the same job overlap or pile up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from flowtest.config.serve import ServeSettings

JOBS = ("inbound", "outbound", "doctor", "cleanup")


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    jitter: float

    def delay(self, rng: random.Random) -> float:
        """Seconds from the end of one run to the start of the next."""
        return self.every_s * (1.0 + rng.uniform(-self.jitter, self.jitter))

    def first_delay(self, rng: random.Random, *, last_finished: float | None, now: float) -> float:
        """After a start: what is left of the period since the job's last run
        (kept in the store), so that restarts do not add probes."""
        if last_finished is None:
            return rng.uniform(0, self.every_s * self.jitter) if self.jitter else 0.0
        return max(0.0, last_finished + self.delay(rng) - now)


def jobs(settings: ServeSettings) -> dict[str, Job]:
    return {
        "inbound": Job("inbound", settings.inbound_every_s, settings.jitter),
        "outbound": Job("outbound", settings.outbound_every_s, settings.jitter),
        "doctor": Job("doctor", settings.doctor_every_s, settings.jitter),
        "cleanup": Job("cleanup", settings.cleanup_every_s, settings.jitter),
    }
