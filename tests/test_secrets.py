"""Secrets never leak in any form: every encoding a secret passes through on
its way to a log, a report or a traceback is redacted (issue 14, item 2)."""

from __future__ import annotations

import base64
import html
import itertools
import json
import logging
import urllib.parse
from collections.abc import Callable
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


def _auth_forms(secret: str) -> dict[str, str]:
    user = "flowtest.owner@gmail.com"
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
    # What aioimaplib 1.x logs for LOGIN: its scrub misses the quoted form.
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
    assert 'A001 LOGIN owner "***"' in text and "Traceback" in text
    assert not _leaked(text, HOSTILE_CANARY)
