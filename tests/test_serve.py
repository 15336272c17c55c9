"""flowtest serve in this process, against the session's sandbox: the
schedule (no overlap, the send budget), the states, the memory across
restarts, /metrics, /probe, auth and the status page (in headless Chromium).

Tests wait for runs to be done (Service.wait_for_runs), never for time."""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import itertools
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from flowtest import config as cfg
from flowtest.cli import serve as serve_cli
from flowtest.config.serve import ServeSettings, parse_serve
from flowtest.errors import ConfigError
from flowtest.sandbox import World
from flowtest.secrets import Secret
from flowtest.serve.app import make_app, scrape_timeout
from flowtest.serve.service import Service
from flowtest.serve.store import FILE
from tests import chromium

WAIT_S = 120.0  # a bound for the sandbox on a busy machine, never a means to sync


def serve_config(world: World, *, aliases: int = 1, daily_sends: int | None = None,
                 **serve: Any) -> cfg.Config:
    base = world.config()
    slow: dict[str, Any] = {"inbound_every_s": 3600.0, "outbound_every_s": 3600.0,
                            "doctor_every_s": 3600.0, "cleanup_every_s": 3600.0, "jitter": 0.0,
                            "probe_min_interval_s": 1.0}
    settings = dataclasses.replace(ServeSettings(), **{**slow, **serve})
    return dataclasses.replace(base, aliases=base.aliases[:aliases], serve=settings,
                               limits=dataclasses.replace(base.limits, daily_sends=daily_sends))


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro
    return asyncio.run(main())


@asynccontextmanager
async def serving(config: cfg.Config, report_dir: Path, *, schedule: bool = True,
                  ) -> AsyncIterator[tuple[Service, str]]:
    service = Service(config, report_dir=report_dir, poll_s=1.0, settle_s=0.3)
    runner = web.AppRunner(make_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        if schedule:
            await service.start()
        else:
            service.ready.set()
        yield service, f"http://{host}:{port}"
    finally:
        await service.stop()
        await runner.cleanup()


def probes_left(world: World, before: frozenset[bytes] = frozenset()) -> frozenset[bytes]:
    """Probes (by their header) outside Trash in either mailbox, but those
    already there ``before`` (the session's world is shared with other tests)."""
    raws = [raw for folder in ("INBOX", "[Gmail]/Spam") for _, raw, _ in
            world.gmail_folder(folder)] + [raw for _, raw, _ in world.probe_folder("INBOX")]
    return frozenset(r for r in raws if b"X-Flowtest-Probe" in r) - before


@pytest.mark.faults("forward-delay=1")
def test_schedule_never_overlaps_a_leg_and_keeps_to_the_budget(world: World,
                                                              tmp_path: Path) -> None:
    """Periods shorter than a run, and on-demand runs on top: runs of one leg
    never overlap; outbound stops at limits.daily_sends (3 sends a day)."""
    before = probes_left(world)
    config = serve_config(world, daily_sends=3, inbound_every_s=1.0, outbound_every_s=1.0)

    async def scenario() -> Service:
        async with serving(config, tmp_path) as (service, _url):
            extra = [service.spawn(service.run_leg("inbound", on_demand=True))
                     for _ in range(2)]
            await service.wait_for_runs("inbound", 4, WAIT_S)
            await service.wait_for_runs("outbound-skipped", 1, WAIT_S)
            await asyncio.gather(*extra)
            assert service.budget() == 0
            return service

    service = run(scenario())
    db = sqlite3.connect(tmp_path / FILE)
    for leg in ("inbound", "outbound"):
        spans = db.execute("SELECT started, finished FROM runs WHERE kind=? ORDER BY started",
                           (leg,)).fetchall()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    sent = db.execute("SELECT count(*) FROM results WHERE leg='outbound'").fetchone()[0]
    assert sent == 3 == db.execute("SELECT count(*) FROM sends").fetchone()[0]
    assert service.counts["outbound"] == 3
    assert probes_left(world, before) == set()


def test_states_follow_the_mail_path_and_survive_a_restart(world: World,
                                                          tmp_path: Path) -> None:
    before = probes_left(world)
    config = serve_config(world)
    alias = config.aliases[0].address

    async def leg(service: Service, name: str = "inbound") -> str:
        await service.run_leg(name)
        state = service.board.get(name, alias)
        assert state is not None
        return state.state

    async def scenario() -> None:
        async with serving(config, tmp_path, schedule=False) as (service, _):
            assert await leg(service) == "ok"
            world.set_fault("spam")
            assert await leg(service) == "failing"
            first = service.board.get("inbound", alias)
            assert await leg(service) == "failing"
            again = service.board.get("inbound", alias)
            assert first is not None and again is not None
            assert (again.since, again.failures, again.code) == (first.since, 2, "SPAM_FOLDER")
            world.clear_fault("spam")
            world.set_fault("bad-app-password")  # Gmail refuses the send: could not test
            assert await leg(service, "outbound") == "unknown"
            world.clear_fault("bad-app-password")
            assert await leg(service) == "ok"
        async with serving(config, tmp_path, schedule=False) as (service, _):
            states = {(s.leg, s.alias): s.state for s in service.states()}
            assert states == {("inbound", alias): "ok", ("outbound", alias): "unknown"}

    run(scenario())
    assert probes_left(world, before) == set()
    # history.jsonl and `flowtest report` keep working from what serve wrote.
    assert (tmp_path / "history.jsonl").read_text().count("\n") == 5
    assert sorted(tmp_path.glob("*/report.html"))


def test_metrics_parse_and_carry_the_vantage(world: World, tmp_path: Path) -> None:
    config = serve_config(world, vantage="home")

    async def scenario() -> str:
        async with serving(config, tmp_path, schedule=False) as (service, url):
            await service.run_leg("inbound")
            await service.run_leg("outbound")
            await service.run_doctor()
            async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
                assert r.status == 200
                return await r.text()

    families = {f.name: f for f in text_string_to_metric_families(run(scenario()))}
    for name in ("flowtest_probe_success", "flowtest_probe_latency_seconds",
                 "flowtest_probe_latency_last_seconds", "flowtest_hop_delay_seconds",
                 "flowtest_auth_result", "flowtest_last_success_timestamp_seconds",
                 "flowtest_probe_errors", "flowtest_dns_findings",
                 "flowtest_send_budget_remaining", "flowtest_build_info"):
        assert name in families, name
        assert all(s.labels.get("vantage") == "home" for s in families[name].samples), name
    success = {(s.labels["leg"], s.value) for s in families["flowtest_probe_success"].samples}
    assert success == {("inbound", 1.0), ("outbound", 1.0)}
    buckets = [s.labels["le"] for s in families["flowtest_probe_latency_seconds"].samples
               if s.name.endswith("_bucket")]
    assert "1.0" in buckets and "3600.0" in buckets
    auth = {(s.labels["method"], s.labels["result"]) for s in families["flowtest_auth_result"]
            .samples if s.labels["leg"] == "outbound"}
    assert ("dmarc", "pass") in auth or ("dmarc", "fail") in auth
    assert families["flowtest_send_budget_remaining"].samples[0].value == float("inf")


def _probe_answer(text: str) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.mark.faults("forward-drop")
def test_probe_is_bounded_by_the_scrape_timeout_and_rate_limited(world: World,
                                                                tmp_path: Path) -> None:
    """Cloudflare drops the copy: /probe answers probe_success 0 within the
    scraper's timeout (the run goes on to clean up), a second /probe at once
    is refused, and with probe_endpoint = false there is none."""
    before = probes_left(world)
    config = serve_config(world, probe_min_interval_s=3600.0)

    async def scenario() -> tuple[int, dict[str, float], int, int]:
        async with serving(config, tmp_path, schedule=False) as (service, url):
            async with aiohttp.ClientSession() as http:
                headers = {"X-Prometheus-Scrape-Timeout-Seconds": "3"}
                async with http.get(f"{url}/probe?leg=inbound&alias=hello",
                                    headers=headers) as r:
                    first = r.status, _probe_answer(await r.text())
                async with http.get(f"{url}/probe?leg=inbound&alias=hello",
                                    headers=headers) as r:
                    again = r.status
                service.config = dataclasses.replace(config, serve=dataclasses.replace(
                    config.serve, probe_endpoint=False))
                async with http.get(f"{url}/probe?leg=inbound&alias=hello") as r:
                    off = r.status
            await service.wait_for_runs("inbound", 1, WAIT_S)  # its cleanup done
            return first[0], first[1], again, off

    status, answer, again, off = run(scenario())
    assert status == 200 and answer["probe_success"] == 0
    assert answer["probe_duration_seconds"] < 3
    assert (again, off) == (429, 404)
    assert probes_left(world, before) == set()
    assert scrape_timeout("10") == 9.5 and scrape_timeout("nan") == 9.5


def test_probe_answers_success(world: World, tmp_path: Path) -> None:
    config = serve_config(world)

    async def scenario() -> dict[str, float]:
        async with serving(config, tmp_path, schedule=False) as (_service, url), \
                aiohttp.ClientSession() as http, http.get(
                    f"{url}/probe?leg=inbound&alias=hello@example.me",
                    headers={"X-Prometheus-Scrape-Timeout-Seconds": "60"}) as r:
            assert r.status == 200
            return _probe_answer(await r.text())

    assert run(scenario())["probe_success"] == 1


def test_credentials_are_required_off_loopback(world: World, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = serve_config(world)
    args = argparse.Namespace(listen="0.0.0.0:9466")
    with pytest.raises(ConfigError) as refused:
        serve_cli.listen_address(config, args)
    assert refused.value.key == "--listen"
    monkeypatch.setenv("FT_SERVE_TOKEN", "s3cret-token")
    monkeypatch.setenv("FT_SERVE_PW", "pw-0123")
    guarded = serve_config(world, bearer_token=Secret("env:FT_SERVE_TOKEN"),
                           basic_user="prom", basic_password=Secret("env:FT_SERVE_PW"))
    assert serve_cli.listen_address(guarded, args) == ("0.0.0.0", 9466)

    async def scenario() -> list[int]:
        async with serving(guarded, tmp_path, schedule=False) as (_, url):
            basic = base64.b64encode(b"prom:pw-0123").decode()
            wrong = base64.b64encode(b"prom:nope").decode()
            out = []
            async with aiohttp.ClientSession() as http:
                for path, auth in (("/metrics", None), ("/metrics", "Bearer nope"),
                                   ("/metrics", "Bearer s3cret-token"), ("/", f"Basic {basic}"),
                                   ("/", f"Basic {wrong}"), ("/-/healthy", None),
                                   ("/-/ready", None)):
                    headers = {"Authorization": auth} if auth else {}
                    async with http.get(url + path, headers=headers) as r:
                        out.append(r.status)
            return out

    assert run(scenario()) == [401, 401, 200, 200, 401, 200, 200]


HOSTILE = '<script>alert("x")</script><img src=http://203.0.113.9/x.png>'


@pytest.mark.slow
@pytest.mark.faults("spam")
def test_status_page_renders_offline_and_escapes(world: World, tmp_path: Path) -> None:
    chromium.require()
    config = serve_config(world, aliases=2)

    async def scenario() -> str:
        async with serving(config, tmp_path, schedule=False) as (service, url):
            await service.run_leg("inbound")
            await service.run_leg("outbound")
            await service.run_doctor()
            # A DNS record's text is the attacker's to choose: as if a TXT said this.
            service.dns.append({"code": "SPF_BROKEN", "severity": "error", "message": HOSTILE,
                                "fix": HOSTILE})
            async with aiohttp.ClientSession() as http, http.get(url + "/") as r:
                assert r.status == 200
                assert "default-src 'none'" in r.headers["Content-Security-Policy"]
                return await r.text()

    page = run(scenario())
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "SPAM_FOLDER" in page and "FAILING" in page and "<svg" in page
    html_file = tmp_path / "status.html"
    html_file.write_text(page, encoding="utf-8")
    chromium.screenshot(html_file, tmp_path / "status.png")


def test_serve_config_section_is_checked(tmp_path: Path) -> None:
    def fail(key: str, reason: str) -> ConfigError:
        return ConfigError(reason, key=key)

    assert parse_serve({}, fail, live=True) == ServeSettings()
    for bad, key in (({"inbound_every_s": 5}, "serve.inbound_every_s"),
                     ({"listen": "somewhere"}, "serve.listen"),
                     ({"vantage": "a b"}, "serve.vantage"),
                     ({"bearer_token": "plain-text-token"}, "serve.bearer_token"),
                     ({"basic_user": "x"}, "serve.basic_user"),
                     ({"notify": "ntfy://x"}, "serve.notify"),
                     ({"intervall": 3}, "serve.intervall"),
                     ({"jitter": True}, "serve.jitter")):
        with pytest.raises(ConfigError) as err:
            parse_serve(bad, fail, live=True)
        assert err.value.key == key, bad
        assert "plain-text-token" not in str(err.value)
    assert parse_serve({"inbound_every_s": 5}, fail, live=False).inbound_every_s == 5



def test_budget_counts_what_other_runs_sent(world: World, tmp_path: Path) -> None:
    """A cron `flowtest run` sent 2 outbound probes today (history.jsonl): with
    limits.daily_sends = 2, serve sends none."""
    line = {"leg": "outbound", "target": "sandbox", "sent_at": time.time() - 60}
    (tmp_path / "history.jsonl").write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n")
    config = serve_config(world, daily_sends=2)

    async def scenario() -> list[Any]:
        async with serving(config, tmp_path, schedule=False) as (service, _):
            return await service.run_leg("outbound")

    assert run(scenario()) == []
