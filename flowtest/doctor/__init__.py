"""DNS checks -> findings with severity, a plain explanation and a fix."""

from flowtest.doctor.checks import diagnose
from flowtest.doctor.findings import Finding

__all__ = ["Finding", "diagnose"]
