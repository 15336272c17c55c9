"""latency.html in a real headless Chromium (issue 20, item 3): it renders
offline, with no console errors and nothing fetched. CI installs Debian's
chromium and sets FLOWTEST_REQUIRE_BROWSER=1, so there it cannot be skipped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from flowtest import cli
from tests import chromium as browser


@pytest.fixture
def chromium() -> str:
    return browser.require()


def _screenshot(chromium: str, page: Path, tmp_path: Path, name: str) -> Path:
    return browser.screenshot(page, tmp_path / name, window="900,1900")


@pytest.mark.slow
def test_a_day_long_page_with_a_long_tail_renders(chromium: str, tmp_path: Path) -> None:
    """Two days of probes drawn from the realistic distribution (tails on),
    one lost, untrusted alias names: all four charts, the hour profile too."""
    import random

    from flowtest.mail import stats
    from flowtest.model import Hop, ProbeResult
    from flowtest.report import latency_page
    from flowtest.sandbox.timing import Timing

    timing, lose = Timing(seed=4), random.Random(2)
    results = []
    for i in range(300):
        sent = 1_795_000_000.25 + i * 600
        cf = sent + timing.draw("sender")
        mx = cf + timing.draw("cloudflare")
        stored = mx + timing.draw("gmail")
        hops = (Hop("smtp.sender.example", "", float(int(sent)), 0.0),
                Hop("cloudflare-email.net", "", float(int(cf)), None),
                Hop("mx.google.com", "", float(int(mx)), None),
                Hop("2002:a17:90b:1:b0:2", "", round(stored, 3), None, "X-Received", False,
                    0.001))
        lost = lose.random() < 0.01
        results.append(ProbeResult(
            "inbound", "<b>hello</b>@example.me" if i % 2 else "shop@example.me", f"t{i}",
            "fail" if lost else "pass", not lost, "INBOX", None if lost else stored - sent + 0.2,
            hops=() if lost else hops, sent_at=sent))
    page = latency_page.write(tmp_path / "day", results, stats.by_hop(results),
                              title="flowtest latency: two days")
    assert (page.parent / "latency-hours.svg").exists()
    assert "log scale" in (page.parent / "latency.svg").read_text()
    assert "<b>hello" not in page.read_text()
    shot = _screenshot(chromium, page, tmp_path, "day.png")
    shutil.copy(shot, Path(os.environ.get("FLOWTEST_LATENCY_DAY_SCREENSHOT",
                                          tmp_path / "kept-day.png")))


@pytest.mark.slow
def test_latency_page_renders_without_console_errors(chromium: str, tmp_path: Path) -> None:
    rd = tmp_path / "reports"
    assert cli.main(["latency", "-n", "6", "--interval", "0", "--all-aliases",
                     "--realistic-timing", "0.05", "--report-dir", str(rd)]) in (0, 1)
    [page] = rd.glob("*/latency.html")
    text = page.read_text()
    assert "<script" not in text and "latency over time" in text
    assert "time sent" in text and "(seconds" in text   # labelled axes, with units
    for name in ("latency.svg", "latency-cdf.svg", "latency-hops.svg"):
        assert (page.parent / name).read_text().startswith("<svg")
    shot = _screenshot(chromium, page, tmp_path, "latency.png")
    shutil.copy(shot, Path(os.environ.get("FLOWTEST_LATENCY_SCREENSHOT", tmp_path / "kept.png")))
