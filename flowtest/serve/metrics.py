"""/metrics: the service's own registry (never the process-global one, so two
services in one process, as in the tests, never share series).

Every series carries ``vantage`` (serve.vantage) so one Prometheus can scrape
several instances. Label values that come from mail (hop hosts) are reduced
to the registrable domain: a Received header must not mint new series.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from flowtest import __version__
from flowtest.mail.orgdomain import org_domain
from flowtest.model import ProbeResult

# 1 s to 1 h: Cloudflare forwards in seconds; Gmail's slow days take minutes.
LATENCY_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_PROBE = ("vantage", "leg", "alias")


def error_step(result: ProbeResult) -> str:
    """Where a failed probe stopped: connect (login, TLS), send, deliver or judge."""
    codes = set(result.codes)
    if codes & {"LOGIN_REFUSED", "TLS_REFUSED", "SERVER_UNREACHABLE", "WATCH_FAILED"}:
        return "connect"
    if result.sent_at is None:
        return "send"
    if not result.delivered:
        return "deliver"
    return "judge"


def hop_label(index: int, by: str) -> str:
    host = by.strip().lower().rstrip(".")
    return f"{index}:{org_domain(host) if '.' in host else 'local'}"[:64]


class Metrics:
    def __init__(self, vantage: str) -> None:
        self.vantage = vantage
        self.registry = r = CollectorRegistry(auto_describe=True)
        Gauge("flowtest_build_info", "flowtest's version (always 1)", ["vantage", "version"],
              registry=r).labels(vantage, __version__).set(1)
        self.success = Gauge("flowtest_probe_success",
                             "1 if the last probe of this leg and alias passed or warned",
                             _PROBE, registry=r)
        self.latency = Histogram("flowtest_probe_latency_seconds",
                                 "end-to-end latency of delivered probes", _PROBE,
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.latency_last = Gauge("flowtest_probe_latency_last_seconds",
                                  "end-to-end latency of the last delivered probe", _PROBE,
                                  registry=r)
        self.hop = Gauge("flowtest_hop_delay_seconds",
                         "delay at each hop of the last delivered probe (index:domain)",
                         [*_PROBE, "hop"], registry=r)
        self.auth = Gauge("flowtest_auth_result",
                          "1 for the last probe's result of each method", [*_PROBE, "method",
                                                                            "result"],
                          registry=r)
        self.last_success = Gauge("flowtest_last_success_timestamp_seconds",
                                  "when this leg and alias last passed (Unix time)", _PROBE,
                                  registry=r)
        self.errors = Counter("flowtest_probe_errors", "probes that failed, by where they "
                              "stopped", ["vantage", "leg", "step"], registry=r)
        self.dns = Gauge("flowtest_dns_findings", "DNS findings of the last doctor run",
                         ["vantage", "severity"], registry=r)
        self.budget = Gauge("flowtest_send_budget_remaining",
                            "outbound sends left in 24 hours (+Inf: no limit)", ["vantage"],
                            registry=r)
        self.runs = Counter("flowtest_runs", "runs by kind and verdict",
                            ["vantage", "kind", "verdict"], registry=r)
        self._hops: dict[tuple[str, str], list[str]] = {}
        self._auth: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for severity in ("info", "warning", "error"):
            self.dns.labels(vantage, severity).set(0)

    def observe(self, results: Sequence[ProbeResult]) -> None:
        v = self.vantage
        for r in results:
            key = (r.leg, r.alias)
            ok = r.verdict in ("pass", "warn")
            self.success.labels(v, r.leg, r.alias).set(1 if ok else 0)
            if ok and r.seen_at is not None:
                self.last_success.labels(v, r.leg, r.alias).set(r.seen_at)
            if not ok:
                self.errors.labels(v, r.leg, error_step(r)).inc()
            if r.latency_s is not None:
                self.latency.labels(v, r.leg, r.alias).observe(r.latency_s)
                self.latency_last.labels(v, r.leg, r.alias).set(r.latency_s)
            for hop in self._hops.pop(key, []):  # the last probe's hops only
                self.hop.remove(v, r.leg, r.alias, hop)
            hops = []
            for i, h in enumerate(r.hops, 1):
                if h.delay_s is not None:
                    name = hop_label(i, h.by)
                    self.hop.labels(v, r.leg, r.alias, name).set(h.delay_s)
                    hops.append(name)
            self._hops[key] = hops
            for method, result in self._auth.pop(key, []):
                self.auth.remove(v, r.leg, r.alias, method, result)
            pairs = []
            if r.auth is not None:
                for method in ("spf", "dkim", "dmarc", "arc"):
                    result = getattr(r.auth, method).result[:16] or "none"
                    self.auth.labels(v, r.leg, r.alias, method, result).set(1)
                    pairs.append((method, result))
            self._auth[key] = pairs

    def observe_run(self, kind: str, verdict: str) -> None:
        self.runs.labels(self.vantage, kind, verdict).inc()

    def dns_findings(self, severities: Sequence[str]) -> None:
        for severity in ("info", "warning", "error"):
            self.dns.labels(self.vantage, severity).set(severities.count(severity))

    def budget_left(self, left: float) -> None:
        self.budget.labels(self.vantage).set(left)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
