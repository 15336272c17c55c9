"""`flowtest init --from-cloudflare` and `flowtest explain RUN_ID`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import jsonschema
import pytest

from flowtest import config as cfg
from flowtest.cli import main
from flowtest.flows import inbound
from flowtest.report import json_report, run_folder
from flowtest.report.run_folder import HISTORY
from flowtest.sandbox import World


def test_init_proposes_the_aliases_cloudflare_forwards_to_gmail(tmp_path: Path) -> None:
    path = tmp_path / "flowtest.toml"
    code = main(["init", "--from-cloudflare", "--sandbox", "--non-interactive",
                 "--domain", "example.me", "--gmail", "owner@gmail.com",
                 "--probe", "probe@fastmail.com", "--path", str(path)])
    assert code == 0
    assert [a.local for a in cfg.load(path).aliases] == ["billing", "hello", "shop"]


@pytest.mark.faults("gmail-silent-discard", "cf-log-lag=600")
def test_explain_completes_a_pending_join_and_amends_report_and_history(
        world: World, tmp_path: Path) -> None:
    conf_path = world.write_config(tmp_path / "flowtest.toml")
    config = cfg.load(conf_path)
    config = dataclasses.replace(config, timeouts=dataclasses.replace(config.timeouts,
                                                                      delivery_s=2.0))
    started = time.time()
    results = asyncio.run(inbound.run(config, aliases=config.aliases[:1], run_id="ftexplain1",
                                      options=inbound.Options(poll_s=0.5, settle_s=0.5)))
    assert results[0].cloudflare_log is not None
    assert results[0].cloudflare_log.state == "pending"
    report = json_report.build(target="sandbox", started_at=started, finished_at=time.time(),
                               probes=results, run_id="ftexplain1")
    reports = tmp_path / "reports"
    folder = run_folder.write(report, reports)
    world.set_fault("cf-log-lag=0")
    code = main(["explain", "ftexplain1", "-c", str(conf_path), "--report-dir", str(reports)])
    assert code == 1  # still a lost probe, now explained
    amended = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    schema = json.loads((Path(__file__).parent.parent / "docs/report.schema.json").read_text())
    jsonschema.validate(amended, schema)
    [probe] = amended["probes"]
    assert probe["cloudflare_log"]["state"] == "found"
    assert "CF_DELIVERED_NOT_FILED" in [f["code"] for f in probe["findings"]]
    [line] = [json.loads(x) for x in (reports / HISTORY).read_text().splitlines()]
    assert "CF_DELIVERED_NOT_FILED" in line["codes"] and "CF_LOG_PENDING" not in line["codes"]
    # explaining again finds nothing left to do
    assert main(["explain", "latest", "-c", str(conf_path), "--report-dir", str(reports)]) == 1


def test_explain_needs_a_known_run(tmp_path: Path) -> None:
    assert main(["explain", "nope", "--report-dir", str(tmp_path)]) == 2
