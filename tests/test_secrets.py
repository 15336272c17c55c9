"""Secrets never leak in any form: every encoding a secret passes through on
its way to a log, a report or a traceback is redacted (issue 14, item 2)."""

from __future__ import annotations

import base64
import html
import itertools
import json
import logging
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

import pytest
from aioimaplib.aioimaplib import quoted as imap_quoted

from flowtest.secrets import Secret, redact, redact_logs
from tests.conftest import CANARY_APP_PASSWORD

# A hostile canary: a quote, a backslash and a non-ASCII letter, each escaped
# differently by IMAP quoting, JSON, repr and URL encoding; a space, as in an
# app password; an apostrophe, which switches repr's quotes.
HOSTILE_CANARY = 'Fj"q\\7é\'x zP'

Encoder = Callable[[str], str]
ROOT = Path(__file__).resolve().parent.parent

# The encoders a secret meets between a socket and a file: each one alone and
# each pair composed (aioimaplib's log is IMAP quoting then bytes repr; a
# report is JSON of that; the HTML report escapes it again).
ENCODERS: dict[str, Encoder] = {
    "raw": lambda s: s,
    "imap-quoted": imap_quoted,
    "json": lambda s: json.dumps(s)[1:-1],
    "json-utf8": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "repr": lambda s: repr(s)[1:-1],
    "ascii": lambda s: ascii(s)[1:-1],
    "bytes-repr": lambda s: repr(s.encode())[2:-1],
    "unicode-escape": lambda s: s.encode("unicode_escape").decode("ascii"),
    "url": lambda s: urllib.parse.quote(s, safe=""),
    "url-plus": lambda s: urllib.parse.quote_plus(s),
    "html": lambda s: html.escape(s),
    "xml": xml_escape,
    "xml-attr": lambda s: quoteattr(s)[1:-1],
}
CANARIES = [CANARY_APP_PASSWORD, CANARY_APP_PASSWORD.replace(" ", ""), HOSTILE_CANARY]


@pytest.fixture(autouse=True)
def _revealed() -> None:
    for value in (CANARY_APP_PASSWORD, HOSTILE_CANARY):
        Secret("env:FT_TEST_CANARY", value=value)


def _leaked(text: str, secret: str) -> list[str]:
    """The forms of ``secret`` that are still in ``text``."""
    forms = {f"{a}+{b}": ENCODERS[b](ENCODERS[a](secret))
             for a, b in itertools.product(ENCODERS, repeat=2)}
    forms.update(_auth_forms(secret))
    return [name for name, form in forms.items() if form in text]


def _auth_forms(secret: str, user: str = "flowtest.owner@gmail.com") -> dict[str, str]:
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return {
        "auth-plain": b64(f"\0{user}\0{secret}".encode()),
        "auth-plain-authzid": b64(f"{user}\0{user}\0{secret}".encode()),
        "auth-login": b64(secret.encode()),
        "auth-login-nospace": b64(secret.replace(" ", "").encode()),
    }


@pytest.mark.parametrize("secret", CANARIES, ids=["app", "app-nospace", "hostile"])
@pytest.mark.parametrize(("first", "second"), list(itertools.product(ENCODERS, repeat=2)),
                         ids=[f"{a}+{b}" for a, b in itertools.product(ENCODERS, repeat=2)])
def test_every_encoding_of_a_secret_is_redacted(secret: str, first: str, second: str) -> None:
    form = ENCODERS[second](ENCODERS[first](secret))
    text = redact(f"A001 LOGIN owner {form} after")
    assert "***" in text and text.startswith("A001 LOGIN owner ") and text.endswith(" after")
    assert not _leaked(text, secret)


@pytest.mark.parametrize("secret", CANARIES, ids=["app", "app-nospace", "hostile"])
@pytest.mark.parametrize("form", ["auth-plain", "auth-plain-authzid", "auth-login",
                                  "auth-login-nospace"])
def test_smtp_auth_base64_is_redacted(secret: str, form: str) -> None:
    encoded = _auth_forms(secret)[form]
    for line in (f"AUTH PLAIN {encoded}", repr(f"{encoded}\r\n".encode()), f"x{encoded}y"):
        text = redact(line)
        assert encoded not in text and "***" in text
    assert redact(base64.b64encode(b"\0someone\0other-password").decode()) != "***"


def test_redaction_leaves_ordinary_text_alone() -> None:
    text = ('hello@example.me: 250 2.0.0 OK "quoted" \\path é AHVzZXIAcGFzcw== '
            "token ft-1a2b3c4d5e6f")
    assert redact(text) == text


def test_aioimaplib_login_line_in_a_debug_log_is_redacted(
        caplog: pytest.LogCaptureFixture) -> None:
    # What aioimaplib logs for LOGIN: its scrub misses the quoted form. Two
    # guards: flowtest.net.imap drops the LOGIN line from aioimaplib's log, and
    # redact_logs redacts whatever else quotes the password (the traceback).
    import flowtest.net.imap  # noqa: F401  (installs the LOGIN-line filter)
    redact_logs()
    log = logging.getLogger("aioimaplib.aioimaplib")
    with caplog.at_level(logging.DEBUG, logger="aioimaplib.aioimaplib"):
        data = f'A001 LOGIN owner {imap_quoted(HOSTILE_CANARY)}\r\n'.encode()
        log.debug("Sending : %s", data)
        try:
            raise RuntimeError(f"login {imap_quoted(HOSTILE_CANARY)} refused")
        except RuntimeError:
            log.exception("failed with %r", HOSTILE_CANARY.encode())
    text = caplog.text
    assert "A001 LOGIN" not in text  # dropped, not only redacted
    assert 'login "***" refused' in text and "Traceback" in text
    assert not _leaked(text, HOSTILE_CANARY)


# A whole run, with --debug, in one process with the sandbox (so the servers'
# protocol logs are in the same log), on a config whose Gmail app password and
# probe password are hostile canaries: every output, log, report and
# traceback is grepped for every form of them.
PROBE_CANARY = 'pR"o\\bé\'e 9Q'
RUN_SCRIPT = r"""
import asyncio, logging, sys, traceback
from pathlib import Path
from flowtest import cli, guard
from flowtest.net.smtp import Submission
from flowtest.sandbox import World
from flowtest.secrets import redact

out, gmail_password, probe_password = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with guard.guarded(), World(gmail_app_password=gmail_password,
                            probe_password=probe_password) as world:
    cfg = str(world.write_config(out / "secret" / "flowtest.toml"))
    reports = str(out / "reports")
    codes = [cli.main(["--debug", "run", "-c", cfg, "--report-dir", reports,
                       "--json", str(out / "run.json"),
                       "--prometheus-textfile", str(out / "flowtest.prom")]),
             cli.main(["--debug", "run", "-c", cfg, "--leg", "inbound", "--nagios",
                       "--report-dir", reports]),
             cli.main(["--debug", "report", "--report-dir", reports])]
    world.set_fault("bad-app-password")
    codes.append(cli.main(["--debug", "login-check", "-c", cfg]))
    config = world.config()

    async def login() -> None:
        async with Submission(config.gmail, tls=config.tls, timeouts=config.timeouts,
                              app_password=True):
            pass

    try:
        asyncio.run(login())
    except Exception as exc:  # as `flowtest --debug` prints a FlowtestError
        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
        logging.getLogger("flowtest").exception("login refused")
print("codes", codes)
"""


@pytest.mark.slow
def test_a_debug_run_with_hostile_passwords_leaks_no_form_of_them(tmp_path: Path) -> None:
    env = dict(os.environ, COLUMNS="200", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", RUN_SCRIPT, str(tmp_path), HOSTILE_CANARY,
                           PROBE_CANARY], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert "codes [0, 0, 0, 1]" in proc.stdout, proc.stderr[-3000:]
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    for path in tmp_path.rglob("*"):
        if path.is_file() and "secret" not in path.relative_to(tmp_path).parts:
            texts[str(path.relative_to(tmp_path))] = path.read_text("utf-8", errors="replace")
    names = set(texts)
    assert {"run.json", "flowtest.prom", "reports/history.jsonl"} <= names
    for suffix in ("report.json", "report.html", "junit.xml"):
        assert any(n.endswith(suffix) for n in names), names
    # The logs hold the lines a password travels in, redacted (else the test proves nothing).
    log = proc.stderr
    assert 'LOGIN flowtest.owner@gmail.com "***"' in log
    assert 'LOGIN probe@sender.example "***"' in log
    assert re.search(r"AUTH PLAIN \*\*\*", log), "no SMTP AUTH line in the --debug log"
    assert "Traceback (most recent call last)" in log
    for user, secret in (("flowtest.owner@gmail.com", HOSTILE_CANARY),
                         ("probe@sender.example", PROBE_CANARY)):
        for name, text in texts.items():
            leaks = _leaked(text, secret) + [
                form for form, value in _auth_forms(secret, user).items() if value in text]
            assert not leaks, (name, leaks)
