"""The command line: exit codes, messages, reports, and no secret in any output."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from flowtest import cli
from flowtest import config as cfg
from flowtest.flows import inbound
from flowtest.sandbox import FAULTS, World
from tests.conftest import CANARY_APP_PASSWORD

CANARIES = (CANARY_APP_PASSWORD, CANARY_APP_PASSWORD.replace(" ", ""))


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs write reports/ into the working directory by default.
    monkeypatch.chdir(tmp_path)


def validate_report(data: object) -> None:
    schema = json.loads((Path(__file__).parent.parent / "docs" / "report.schema.json")
                        .read_text())
    jsonschema.Draft202012Validator(schema).validate(data)


def no_canary(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text


def test_help_lists_every_command_and_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "run", "sandbox", "init", "cleanup", "--debug", "Exit codes"):
        assert command in out
    for command, options in {"demo": ["--fault", "--aliases", "--json", "--keep", "--timeout",
                                      "--leg"],
                             "run": ["--config", "--insecure", "--json", "--keep", "--leg"],
                             "doctor": ["--config", "--sandbox", "--fault", "--json"],
                             "sandbox": ["--write-config", "--fault", "--list-faults", "--for",
                                         "--aliases", "--truth"],
                             "init": ["--path", "--domain", "--alias", "--force"],
                             "cleanup": ["--config", "--older-than", "--dry-run",
                                         "--insecure"],
                             "login-check": ["--config", "--insecure", "--sandbox", "--fault"],
                             "inspect": ["--authserv-id", "--provider", "--json"],
                             "latency": ["--config", "--count", "--interval", "--alias",
                                         "--fault", "--insecure", "--report-dir", "--json"],
                             "report": ["--report-dir"]}.items():
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        for option in options:
            assert option in text, (command, option)


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_demo_passes_and_writes_the_json_report(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    assert cli.main(["demo", "--aliases", "2", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "hello@example.me" in out
    data = json.loads(report.read_text())
    validate_report(data)
    # Both legs; outbound warns: Gmail send-as fails DMARC under p=none (FACTS.md).
    assert data["target"] == "sandbox" and data["verdict"] == "warn"
    assert [p["leg"] for p in data["probes"]] == ["inbound", "inbound", "outbound", "outbound"]
    assert {f["code"] for f in data["dns"]} >= {"MX_OK", "SPF_OK", "DMARC_SENDAS_NONE"}
    assert {"started_at", "finished_at", "probes", "dns"} <= set(data)
    probe = data["probes"][0]
    assert probe["leg"] == "inbound" and probe["folder"] == "INBOX"
    assert set(probe["auth"]) == {"spf", "dkim", "dmarc", "arc"}
    assert probe["auth"]["dkim"]["aligned"] is True
    assert all(set(h) >= {"by", "from", "at", "delay_s"} for h in probe["hops"])


def test_demo_with_a_fault_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--aliases", "1", "--leg", "inbound", "--fault", "spam"]) == 1
    assert "Spam" in capsys.readouterr().out


def test_unknown_fault_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--fault", "no-such-fault"]) == 2
    err = capsys.readouterr().err
    assert "unknown fault 'no-such-fault'" in err and "forward-drop" in err


def test_list_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sandbox", "--list-faults"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in FAULTS)


def test_init_writes_a_template_and_never_overwrites(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flowtest.toml"
    assert cli.main(["init", "--path", str(path), "--domain", "mine.me", "--alias", "a",
                     "--alias", "b"]) == 0
    loaded = cfg.load(path)
    assert loaded.domain == "mine.me" and [a.local for a in loaded.aliases] == ["a", "b"]
    path.write_text("# mine\n")
    assert cli.main(["init", "--path", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert path.read_text() == "# mine\n"  # nothing lost
    assert cli.main(["init", "--path", str(path), "--force"]) == 0


@pytest.mark.parametrize(("text", "message"), [
    (None, "no such file"),
    ('domain = "x.me"\naliases = ["a"]\n', "gmail: missing table"),
])
def test_run_with_a_bad_config_exits_2_with_one_clear_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None,
        message: str) -> None:
    path = tmp_path / "flowtest.toml"
    if text is not None:
        path.write_text(text)
    assert cli.main(["run", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_sandbox_writes_a_config_and_stops_by_itself(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sandbox.toml"
    assert cli.main(["sandbox", "--write-config", str(path), "--for", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "imap.gmail.com" in out and "sandbox stopped" in out
    loaded = cfg.load(path)
    assert loaded.target == "sandbox" and loaded.gmail.password.ref.startswith("file:")
    secret_file = Path(loaded.gmail.password.ref.removeprefix("file:"))
    assert secret_file.stat().st_mode & 0o077 == 0
    assert secret_file.read_text().strip() not in out  # printed by reference only


def test_run_against_a_running_sandbox_never_prints_the_secret(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    report = tmp_path / "report.json"
    caplog.set_level(logging.DEBUG)
    assert cli.main(["--debug", "run", "-c", str(path), "--json", str(report),
                     "--report-dir", str(tmp_path / "reports"),
                     "--prometheus-textfile", str(tmp_path / "m.prom")]) == 0
    out, err = capsys.readouterr()
    assert "PASS" in out
    files = [p.read_text() for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert len(files) == 4  # report.json, junit.xml, report.html, history.jsonl
    no_canary(out, err, report.read_text(), caplog.text, (tmp_path / "m.prom").read_text(),
              *files)


@pytest.mark.faults("bad-app-password")
def test_refused_app_password_names_the_account_never_the_secret(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    report = tmp_path / "report.json"
    caplog.set_level(logging.DEBUG)
    assert cli.main(["--debug", "run", "-c", str(path), "--json", str(report)]) == 1
    out, err = capsys.readouterr()
    assert "login as flowtest.owner@gmail.com refused" in " ".join(out.split())
    no_canary(out, err, report.read_text(), caplog.text)
    data = json.loads(report.read_text())
    validate_report(data)
    assert data["verdict"] == "error"


def test_run_refuses_the_same_account_trap(world: World, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    text = path.read_text().replace(f'address = "{world.probe_address}"',
                                    f'address = "{world.gmail_address}"')
    path.write_text(text)
    assert cli.main(["run", "-c", str(path)]) == 2
    assert "probe.address" in capsys.readouterr().err


def test_doctor_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "dns.json"
    assert cli.main(["doctor", "--sandbox", "--json", str(report)]) == 0
    assert "SPF_OK" in capsys.readouterr().out
    validate_report(json.loads(report.read_text()))
    assert cli.main(["doctor", "--sandbox", "--fault", "spf-duplicate"]) == 1
    out = capsys.readouterr().out
    assert "SPF_MULTIPLE" in out and "fix:" in out


def test_inspect_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_parsers import GMAIL_BLOCK

    eml = tmp_path / "original.eml"
    eml.write_bytes(GMAIL_BLOCK.replace(b"\r\n", b"\n"))  # saved files often have LF endings
    out_json = tmp_path / "inspect.json"
    assert cli.main(["inspect", str(eml), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "mx.google.com says: SPF pass" in " ".join(out.split())
    assert json.loads(out_json.read_text())["auth"]["arc"]["result"] == "pass"
    assert cli.main(["inspect", str(tmp_path / "missing.eml")]) == 2


def test_sandbox_in_its_own_process_streams_its_ground_truth(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`flowtest sandbox --aliases N --truth F` as the benchmarks use it: a
    relative config path that still works from elsewhere, and every probe's
    life (submitted, stored, listed by a SEARCH) in the truth file."""
    monkeypatch.chdir(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowtest.cli", "sandbox", "--aliases", "4",
         "--write-config", "sub/flowtest.toml", "--truth", "truth.jsonl", "--for", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # blocks until the sandbox says it is ready
            lines.append(line)
            if "config written to" in line:
                break
        out = "".join(lines)
        assert "[starttls]" in out and "a003@example.me" in out
        config = cfg.load(tmp_path / "sub" / "flowtest.toml")
        assert config.tls.ca_file is not None and config.tls.ca_file.is_file()
        assert [a.address for a in config.aliases] == [f"a{i:03d}@example.me" for i in range(4)]
        monkeypatch.chdir(tmp_path / "sub")  # the config must not depend on the cwd
        results = asyncio.run(inbound.run(config))
        assert [r.verdict for r in results] == ["pass"] * 4
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    events = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    for r in results:
        mine = {e["kind"]: e["at"] for e in events
                if e["message_id"] == f"<{r.token}@sender.example>"}
        assert {"submitted", "stored", "listed"} <= set(mine), mine
        assert mine["submitted"] < mine["stored"] <= mine["listed"]
    opened = [e for e in events if e["kind"] == "imap-open" and e["party"] == "gmail"]
    closed = [e for e in events if e["kind"] == "imap-close" and e["party"] == "gmail"]
    assert opened and len(opened) == len(closed)


@pytest.mark.parametrize("value", ["0", "201", ",,"])
def test_sandbox_refuses_bad_alias_counts(value: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["sandbox", "--aliases", value])
    assert done.value.code == 2
    assert "--aliases" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_a_wait_is_a_usage_error(
        value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--timeout 0 used to be ignored silently (the configured wait ran)."""
    for command in (["demo", "--leg", "inbound"], ["run", "-c", "missing.toml"]):
        with pytest.raises(SystemExit) as done:
            cli.main([*command, "--timeout", value])
        assert done.value.code == 2
        assert "--timeout" in capsys.readouterr().err


def _plaintext_config(world: World, tmp_path: Path) -> Path:
    path = world.write_config(tmp_path / "flowtest.toml")
    text = path.read_text()
    assert text.count('tls = "implicit"') >= 1 and text.count("connect_s = 5.0") == 1
    # The plain client then waits for a greeting the TLS server never sends,
    # for connect_s: 1 s is as good a proof as the sandbox's 5 s.
    path.write_text(text.replace('tls = "implicit"', 'tls = "plain"', 1)
                    .replace("connect_s = 5.0", "connect_s = 1.0"))
    return path


def test_plaintext_is_said_in_every_output_not_only_insecure(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _plaintext_config(world, tmp_path)
    config = cli.target.overrides(cfg.load(path), argparse.Namespace(insecure=True))
    assert cli.console.transport_warnings(config)[0].startswith("PLAINTEXT")
    assert cli.console.nagios_prefix(config) == "PLAINTEXT INSECURE TLS: "
    cli.main(["login-check", "-c", str(path), "--insecure"])
    out = capsys.readouterr().out
    assert "PLAINTEXT" in out and "INSECURE" in out
    # Verification off but TLS everywhere: INSECURE only.
    assert cli.console.transport_warnings(cli.target.overrides(
        world.config(), argparse.Namespace(insecure=True)))[0].startswith("INSECURE")


def test_plaintext_reaches_the_json_html_junit_and_prometheus_outputs(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The plain endpoint meets a TLS server, so the run cannot test (exit 1);
    # its reports are still written, and each says the transport was plaintext.
    path = _plaintext_config(world, tmp_path)
    report, prom = tmp_path / "run.json", tmp_path / "flowtest.prom"
    assert cli.main(["run", "-c", str(path), "--insecure", "--leg", "inbound", "--timeout", "5",
                     "--json", str(report), "--report-dir", str(tmp_path / "reports"),
                     "--prometheus-textfile", str(prom)]) == 1
    capsys.readouterr()
    data = json.loads(report.read_text())
    assert data["plaintext"] and data["insecure"] is True
    [folder] = [d for d in (tmp_path / "reports").iterdir() if d.is_dir()]
    assert "PLAINTEXT" in (folder / "report.html").read_text()
    junit = ET.parse(folder / "junit.xml").getroot()
    assert junit.find("properties/property[@name='plaintext']") is not None
    assert 'flowtest_transport_unsafe{mode="plaintext"} 1' in prom.read_text()


def test_latency_marks_an_insecure_run_like_run_does(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    report = tmp_path / "latency.json"
    assert cli.main(["latency", "-c", str(path), "--insecure", "-n", "1", "--json",
                     str(report), "--report-dir", str(tmp_path / "reports")]) == 0
    assert "INSECURE" in capsys.readouterr().out
    assert json.loads(report.read_text())["insecure"] is True


def test_inspect_takes_a_provider_profile(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:

    from flowtest import providers
    from flowtest.mail.inspect import inspect
    from tests.test_parsers import GMAIL_BLOCK

    eml = tmp_path / "original.eml"
    eml.write_bytes(GMAIL_BLOCK)
    assert cli.main(["inspect", str(eml), "--provider", "no-such-provider"]) == 2
    assert "--provider" in capsys.readouterr().err
    out_json = tmp_path / "inspect.json"
    for name in sorted(providers.PROVIDERS):
        assert cli.main(["inspect", str(eml), "--provider", name, "--json", str(out_json)]) == 0
        assert json.loads(out_json.read_text()) == inspect(
            GMAIL_BLOCK, provider=name).to_json()  # type: ignore[call-arg, unused-ignore]
