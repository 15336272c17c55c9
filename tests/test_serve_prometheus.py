"""Beyond one machine (issue 16, item 6): a real Prometheus on loopback
scrapes two `flowtest serve --sandbox` instances with different vantage
labels, and its HTTP API returns flowtest_probe_success from both.

CI installs Debian's prometheus (.ci/run) and sets FLOWTEST_REQUIRE_PROMETHEUS=1,
so there the test cannot be skipped. The Debian package's own service plays
no part: the binary runs here with a config and storage of its own."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.test_serve_process import STOP_BOUND_S, Serve

PROMETHEUS = shutil.which("prometheus")
WAIT_S = 120.0
POLL_S = 0.5  # how often to ask Prometheus again: it has no way to tell us


def free_port() -> int:
    """A port the kernel has free, for Prometheus, which cannot listen on
    port 0. (It is started first: it scrapes nothing for about 5 s after it
    starts, time that the serve processes spend starting their sandboxes.
    They listen on ports the kernel picks, and Prometheus learns them from a
    file_sd targets file written once they are known.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def query(base: str, promql: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as r:
        answer = json.load(r)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


@pytest.mark.slow
def test_prometheus_scrapes_two_vantage_points(tmp_path: Path) -> None:
    if PROMETHEUS is None:
        if os.environ.get("FLOWTEST_REQUIRE_PROMETHEUS"):
            pytest.fail("prometheus is required here (FLOWTEST_REQUIRE_PROMETHEUS) but not "
                        "installed")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    port = free_port()
    targets = tmp_path / "targets.json"
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: flowtest
    file_sd_configs:
      - files: ["{targets}"]
        refresh_interval: 1s
""", encoding="utf-8")
    log = tmp_path / "prometheus.log"
    with contextlib.ExitStack() as stack:
        with log.open("wb") as sink:  # the child keeps its own copy of the descriptor
            prom = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=subprocess.DEVNULL, stderr=sink)
        stack.callback(prom.wait, timeout=30)
        stack.callback(prom.terminate)
        serves = []
        for vantage in ("home", "vps"):  # both start at once
            serve = Serve(["--sandbox", "--vantage", vantage, "--listen", "127.0.0.1:0",
                           "--report-dir", str(tmp_path / vantage)], tmp_path)
            stack.callback(serve.close)
            serves.append(serve)
        addresses = []
        for serve in serves:
            line = serve.wait_for("listening on http://")
            addresses.append(line.split("listening on http://", 1)[1].split()[0].rstrip("/"))
        written = targets.with_suffix(".tmp")  # renamed into place: never read half-written
        written.write_text(json.dumps([{"targets": addresses}]), encoding="utf-8")
        written.rename(targets)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_S
        seen: set[str] = set()
        while seen != {"home", "vps"}:
            assert prom.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"only {seen} after {WAIT_S} s"
            try:
                series = query(base, 'flowtest_probe_success{leg="inbound"}')
            except OSError:  # not listening yet
                series = []
            seen = {str(s["metric"]["vantage"]) for s in series  # type: ignore[index]
                    if isinstance(s.get("metric"), dict)}
            if seen != {"home", "vps"}:
                time.sleep(POLL_S)
        up = query(base, 'up{job="flowtest"}')
        assert sorted(float(s["value"][1]) for s in up) == [1.0, 1.0]  # type: ignore[index]
        prom.terminate()
        prom.wait(timeout=30)
        for serve in serves:
            serve.proc.terminate()
            code, err = serve.finish(STOP_BOUND_S)
            assert code == 0, err
