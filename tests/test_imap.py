"""The IMAP session's promises: no credential line in aioimaplib's protocol
log (issue 14, item 2), and no IMAP STARTTLS that silently stays plaintext
(item 7)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re

import pytest

from flowtest.config import Account, Config
from flowtest.errors import AuthError, ConfigError
from flowtest.flows import login_check
from flowtest.net.imap import ImapSession, parse_list
from flowtest.net.imap.protocol import AIOIMAPLIB_LOGGER
from flowtest.sandbox import World
from flowtest.secrets import Secret

# A hostile canary: IMAP quoting escapes '"' and '\\'; 'é' is two UTF-8 bytes
# that a bytes repr prints as \xc3\xa9. aioimaplib scrubs only the raw form.
HOSTILE = 'ca"na\\ry-é-7Qw'


def _forms(secret: str) -> list[str]:
    quoted = secret.replace("\\", "\\\\").replace('"', '\\"')
    return [secret, quoted, repr(quoted.encode())[2:-1], repr(secret.encode())[2:-1],
            json.dumps(secret)[1:-1]]


def _with_password(world: World, config: Config, user: str, password: str) -> Account:
    assert world.gmail is not None
    world.call(world.gmail.store.add_user(user, password))
    return dataclasses.replace(config.gmail, username=user,
                               password=Secret("env:FLOWTEST_TEST_SECRET", value=password))


def test_the_protocol_log_never_holds_the_login_line(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    config = world.config()
    account = _with_password(world, config, "hostile@gmail.com", HOSTILE)
    caplog.set_level(logging.DEBUG, logger="aioimaplib")

    async def go() -> None:
        session = ImapSession(account, tls=config.tls, timeouts=config.timeouts)
        try:
            await session.open()  # whether pymap takes this password is not the point
            await session.folders()
        except AuthError:
            pass
        finally:
            await session.close()

    asyncio.run(go())
    lines = [r.getMessage() for r in caplog.records if r.name == AIOIMAPLIB_LOGGER]
    assert any("Sending" in line for line in lines)  # the trace was on
    assert any("AUTH=" in line for line in lines)  # capabilities are still traced
    assert not [line for line in lines if re.search(r"\w (LOGIN|AUTHENTICATE)\b", line)]
    for form in _forms(HOSTILE):
        assert not [line for line in lines if form in line], form


def test_starttls_for_imap_is_refused_insecure_or_not(world: World) -> None:
    """aioimaplib has no STARTTLS: connecting anyway would send the password in
    plaintext while the config says TLS. Refused before any connection."""
    base = world.config()
    starttls = dataclasses.replace(base.gmail.imap, tls="starttls")
    assert world.gmail is not None
    before = world.gmail.store.connections_total
    for insecure in (False, True):
        config = dataclasses.replace(
            base, gmail=dataclasses.replace(base.gmail, imap=starttls),
            tls=dataclasses.replace(base.tls, insecure=insecure))

        async def go(config: Config = config) -> None:
            async with ImapSession(config.gmail, tls=config.tls, timeouts=config.timeouts):
                pass

        with pytest.raises(ConfigError) as refused:
            asyncio.run(go())
        assert refused.value.key == "imap.tls"
        checks = {c.role: c for c in asyncio.run(login_check.check(config))}
        assert not checks["Gmail IMAP"].ok and "STARTTLS" in checks["Gmail IMAP"].detail
    assert world.gmail.store.connections_total == before


def test_an_8bit_folder_name_is_a_readable_error() -> None:
    """What killed the watcher in issue 14 (item 5): a name that is neither
    modified UTF-7 nor UTF-8 is a ValueError for the caller to report."""
    with pytest.raises(ValueError):
        parse_list([b'(\\HasNoChildren) "/" "Caf\xe9"'])
    folders = parse_list([b'(\\HasNoChildren) "/" "INBOX"',
                          b'(\\HasNoChildren \\Junk) "/" "[Gmail]/Spam"',
                          b'(\\Noselect) "/" "[Gmail]"', b'(\\Trash) "/" "[Gmail]/Trash"'])
    assert (folders.junk, folders.trash, folders.sent) == ("[Gmail]/Spam", "[Gmail]/Trash", None)
    assert folders.all == ["INBOX", "[Gmail]/Spam", "[Gmail]/Trash"]
