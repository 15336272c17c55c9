"""flowtest login-check against `flowtest sandbox --write-config`: every endpoint
by name, the provider's hint on failure, exit codes, and no secret anywhere."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from flowtest import cli
from flowtest.flows import login_check
from flowtest.sandbox import World
from tests.conftest import CANARY_APP_PASSWORD


def secrets_absent(*texts: str) -> None:
    for text in texts:
        assert CANARY_APP_PASSWORD not in text
        assert CANARY_APP_PASSWORD.replace(" ", "") not in text


def test_all_endpoints_pass(world: World, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    assert cli.main(["login-check", "-c", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for role in ("probe account SMTP", "Gmail SMTP (send-as)", "Gmail IMAP",
                 "probe account IMAP"):
        assert f"OK {role}" in out
    assert "will watch 'INBOX' and '[Gmail]/Spam'" in out and "TLS verified" in out
    secrets_absent(out)


@pytest.mark.faults("bad-app-password")
def test_a_refused_app_password_names_the_endpoint_and_the_fix(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    assert cli.main(["login-check", "-c", str(path)]) == 1
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert "FAIL Gmail SMTP (send-as) smtp.gmail.com" in out
    assert "FAIL Gmail IMAP imap.gmail.com" in out
    assert "hint: Create an app password" in out
    assert "OK probe account SMTP" in out
    secrets_absent(captured.out, captured.err)


def test_wrong_probe_password_and_a_dead_endpoint(world: World, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    (tmp_path / "flowtest.probe-password").write_text("not-the-password\n")
    text = path.read_text()
    imap_port = str(world.config().probe.imap.port)
    path.write_text(text.replace(f"port = {imap_port}", "port = 1"))
    assert cli.main(["login-check", "-c", str(path)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "FAIL probe account SMTP" in out and "login as probe@sender.example refused" in out
    assert "FAIL probe account IMAP imap.sender.example:1" in out
    assert "cannot connect" in out and "hint: Nothing answered" in out
    assert "not-the-password" not in out


def test_login_check_on_the_sandbox_itself(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["login-check", "--sandbox"]) == 0
    assert cli.main(["login-check", "--sandbox", "--fault", "bad-app-password"]) == 1
    out = capsys.readouterr().out
    assert "FAIL Gmail IMAP" in " ".join(out.split())


def test_init_asks_the_questions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from flowtest import config as cfg

    class Terminal:
        def isatty(self) -> bool:
            return True

    answers = iter(["not a domain", "mine.me", "hello, shop", "me@gmail.com",
                    "me@gmail.com",  # refused: the probe must be another account
                    "probe@fastmail.com", "", "file"])
    monkeypatch.setattr("flowtest.cli.sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    path = tmp_path / "flowtest.toml"
    assert cli.main(["init", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert "that is not a domain name" in out and "other than the Gmail account" in out
    loaded = cfg.load(path)
    assert loaded.domain == "mine.me" and [a.local for a in loaded.aliases] == ["hello", "shop"]
    assert loaded.probe.provider == "fastmail"  # guessed from the address
    assert loaded.probe.password.ref == "file:~/.config/flowtest/probe_password"
    assert loaded.probe.smtp.host == "smtp.fastmail.com"


def test_init_non_interactive_with_flags(tmp_path: Path) -> None:
    from flowtest import config as cfg
    path = tmp_path / "f.toml"
    assert cli.main(["init", "--non-interactive", "--path", str(path), "--domain", "x.me",
                     "--gmail", "a@gmail.com", "--probe", "p@qq.com", "--secrets", "keyring"]) == 0
    loaded = cfg.load(path)
    assert loaded.probe.provider == "qq" and loaded.probe.smtp.port == 465
    assert loaded.gmail.password.ref == "keyring:flowtest/a@gmail.com"
    assert cli.main(["init", "--non-interactive", "--path", str(tmp_path / "g.toml"),
                     "--gmail", "a@gmail.com", "--probe", "a@gmail.com"]) == 2


@pytest.mark.parametrize(("section", "kind", "role"), [
    ("gmail", "smtp", "Gmail SMTP (send-as)"), ("gmail", "imap", "Gmail IMAP"),
    ("probe", "smtp", "probe account SMTP"), ("probe", "imap", "probe account IMAP"),
])
def test_each_endpoint_down_is_named(world: World, tmp_path: Path, section: str, kind: str,
                                     role: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = world.config()
    account = getattr(config, section)
    dead = dataclasses.replace(account, **{kind: dataclasses.replace(getattr(account, kind),
                                                                       port=1)})
    config = dataclasses.replace(config, **{section: dead})
    checks = {c.role: c for c in asyncio.run(login_check.check(config))}
    assert not checks[role].ok and "cannot connect" in checks[role].detail
    assert checks[role].hint.startswith("Nothing answered")
    assert all(c.ok for r, c in checks.items() if r != role)
