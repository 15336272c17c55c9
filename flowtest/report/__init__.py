"""Reports: JSON (and later HTML, Nagios, Prometheus)."""
