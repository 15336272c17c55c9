"""`flowtest run --no-dns`: probes only, for frequent scheduled runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowtest import cli
from flowtest.sandbox.world import World


@pytest.mark.faults("spf-duplicate")
def test_no_dns_skips_the_dns_check_and_still_probes(world: World, tmp_path: Path) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    with_dns, without = tmp_path / "with.json", tmp_path / "without.json"
    cli.main(["run", "-c", str(path), "--leg", "inbound", "--json", str(with_dns),
              "--report-dir", str(tmp_path / "r1")])
    cli.main(["run", "-c", str(path), "--leg", "inbound", "--no-dns", "--json", str(without),
              "--report-dir", str(tmp_path / "r2")])
    checked, skipped = json.loads(with_dns.read_text()), json.loads(without.read_text())
    assert "SPF_MULTIPLE" in {f["code"] for f in checked["dns"]}
    assert skipped["dns"] == [] and skipped["dns_checked"] is False
    assert checked["dns_checked"] is True
    assert [p["leg"] for p in skipped["probes"]] == [p["leg"] for p in checked["probes"]]
    assert skipped["probes"]
