"""The HTTP side: /metrics, a blackbox-style /probe, /-/healthy, /-/ready and
the status page at /.

/probe follows blackbox_exporter's handler: its own registry per request,
``probe_success`` and ``probe_duration_seconds`` always present, bounded by
X-Prometheus-Scrape-Timeout-Seconds. It sends mail, so it is rate-limited
(serve.probe_min_interval_s) and counted in the send budget, and can be
turned off (serve.probe_endpoint = false).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import math
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from flowtest.config.serve import ServeSettings
from flowtest.i18n import gettext
from flowtest.serve import page
from flowtest.serve.service import LEGS, Service

DEFAULT_SCRAPE_TIMEOUT_S = 10.0
# Leave this much of the scraper's timeout for the answer to travel back.
TIMEOUT_OFFSET_S = 0.5
OPEN_PATHS = frozenset({"/-/healthy", "/-/ready"})  # say nothing, so need no credentials

SERVICE: web.AppKey[Service] = web.AppKey("service", Service)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authorized(header: str | None, settings: ServeSettings) -> bool:
    """Bearer token or basic auth, compared in constant time; True when the
    config asks for neither (then we listen on loopback only, see cli.serve)."""
    if settings.bearer_token is None and settings.basic_user is None:
        return True
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and settings.bearer_token is not None:
        return hmac.compare_digest(value.encode(), settings.bearer_token.reveal().encode())
    if scheme.lower() == "basic" and settings.basic_password is not None:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        wanted = f"{settings.basic_user}:{settings.basic_password.reveal()}".encode()
        return hmac.compare_digest(f"{user}:{password}".encode(), wanted)
    return False


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in OPEN_PATHS and not authorized(
            request.headers.get("Authorization"), request.app[SERVICE].config.serve):
        return web.Response(status=401, text="authorization required\n",
                            headers={"WWW-Authenticate": 'Basic realm="flowtest"'})
    return await handler(request)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[SERVICE].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="flowtest is healthy.\n")


async def ready(request: web.Request) -> web.Response:
    if not request.app[SERVICE].ready.is_set():
        return web.Response(status=503, text="flowtest is starting.\n")
    return web.Response(text="flowtest is ready.\n")


async def status(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    states = service.states()
    keys = [(s.leg, s.alias) for s in states]
    text = page.render(
        title=gettext("flowtest serve: {domain}").format(domain=service.config.domain),
        vantage=service.config.serve.vantage,
        states=states, last={k: service.store.last_result(*k) for k in keys},
        latencies={k: service.store.latencies(*k) for k in keys}, dns=service.dns,
        runs=service.store.runs(20), budget=service.budget(), running=dict(service.running))
    return web.Response(text=text, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": "default-src 'none'; "
                                 "style-src 'unsafe-inline'; img-src data:"})


def scrape_timeout(header: str | None) -> float:
    try:
        value = float(header) if header is not None else DEFAULT_SCRAPE_TIMEOUT_S
    except ValueError:
        value = DEFAULT_SCRAPE_TIMEOUT_S
    if not math.isfinite(value) or value <= 0:
        value = DEFAULT_SCRAPE_TIMEOUT_S
    return max(1.0, value - TIMEOUT_OFFSET_S)


class ProbeGate:
    """At most one on-demand probe per serve.probe_min_interval_s."""

    def __init__(self) -> None:
        self.last = -math.inf

    def admit(self, interval_s: float) -> float:
        """0 if admitted now, otherwise the seconds to wait."""
        now = time.monotonic()
        wait = self.last + interval_s - now
        if wait > 0:
            return wait
        self.last = now
        return 0.0


GATE: web.AppKey[ProbeGate] = web.AppKey("gate", ProbeGate)


async def probe(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    settings = service.config.serve
    if not settings.probe_endpoint:
        return web.Response(status=404, text="/probe is turned off (serve.probe_endpoint)\n")
    leg = request.query.get("leg", "inbound")
    if leg not in LEGS:
        return web.Response(status=400, text="leg must be inbound or outbound\n")
    wanted = request.query.get("alias", "").strip().lower()
    alias = next((a for a in service.config.aliases
                  if wanted in (a.address, a.local)), None)
    if alias is None:
        return web.Response(status=400, text="alias must be one of the config's aliases\n")
    wait = request.app[GATE].admit(settings.probe_min_interval_s)
    if wait:
        return web.Response(status=429, text="too many probes; see serve.probe_min_interval_s\n",
                            headers={"Retry-After": str(math.ceil(wait))})
    timeout = scrape_timeout(request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
    started = time.monotonic()
    # The run goes on after a timeout (it owes its cleanup) but is bounded by
    # the same deadline for its wait, so it ends soon after.
    run = service.spawn(service.run_leg(leg, [alias], on_demand=True, delivery_s=timeout))
    done, _ = await asyncio.wait({run}, timeout=timeout)
    results = run.result() if run in done and run.exception() is None else []
    registry = CollectorRegistry(auto_describe=True)
    Gauge("probe_success", "1 if the probe passed or warned", registry=registry).set(
        1 if results and all(r.verdict in ("pass", "warn") for r in results) else 0)
    Gauge("probe_duration_seconds", "how long the probe took", registry=registry).set(
        time.monotonic() - started)
    latency = Gauge("probe_flowtest_latency_seconds", "end-to-end latency of the probe",
                    registry=registry)
    if results and results[0].latency_s is not None:
        latency.set(results[0].latency_s)
    return web.Response(body=generate_latest(registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(service: Service) -> web.Application:
    app = web.Application(middlewares=[_auth])
    app[SERVICE] = service
    app[GATE] = ProbeGate()
    app.router.add_get("/", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    return app
