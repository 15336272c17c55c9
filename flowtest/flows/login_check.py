"""Log in to every configured endpoint, verify TLS, list the folders that will
be watched, and send nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from flowtest import providers
from flowtest.config import Account, Config
from flowtest.errors import AuthError, FlowtestError, TLSError, TransportError
from flowtest.net.imap import ImapSession
from flowtest.net.smtp import Submission
from flowtest.secrets import redact


@dataclass(frozen=True)
class EndpointCheck:
    role: str          # e.g. "Gmail SMTP"
    endpoint: str
    ok: bool
    detail: str
    hint: str = ""


def _hint(account: Account, exc: FlowtestError) -> str:
    profile = providers.get(account.provider)
    if isinstance(exc, AuthError):
        return profile.login_hint if profile else "Check the username and the password."
    if isinstance(exc, TLSError):
        return ("The server's certificate or TLS setup is not trusted: check the host name "
                "and port (993 implicit TLS for IMAP; 587 STARTTLS or 465 implicit TLS for "
                "SMTP). --insecure accepts it, loudly.")
    if isinstance(exc, TransportError) and "connect" in str(exc):
        return ("Nothing answered: check the host and port, and that IMAP/SMTP access is "
                "enabled in the provider's settings.")
    return ""


async def _smtp(role: str, account: Account, config: Config, app: bool) -> EndpointCheck:
    s = Submission(account, tls=config.tls, timeouts=config.timeouts, app_password=app,
                   attempts=1)
    try:
        await s.connect()
    except FlowtestError as exc:
        return EndpointCheck(role, str(account.smtp), False, redact(str(exc)),
                             _hint(account, exc))
    finally:
        await s.close()
    tls = "TLS not verified (--insecure)" if config.tls.insecure else "TLS verified"
    return EndpointCheck(role, str(account.smtp), True,
                         f"{account.smtp.tls}, {tls}, login as {account.username} accepted")


async def _imap(role: str, account: Account, config: Config, app: bool) -> EndpointCheck:
    session = ImapSession(account, tls=config.tls, timeouts=config.timeouts, app_password=app,
                          limit=config.limits.imap_connections)
    try:
        await session.open()
        folders = await session.folders()
    except FlowtestError as exc:
        return EndpointCheck(role, str(account.imap), False, redact(str(exc)),
                             _hint(account, exc))
    finally:
        await session.close()
    if folders.junk is None:
        return EndpointCheck(role, str(account.imap), False,
                             "logged in, but no Spam (\\Junk) folder was found",
                             "flowtest would not see probes filed as spam.")
    idle = "IDLE" if "IDLE" in session.capabilities else "no IDLE: polling"
    return EndpointCheck(role, str(account.imap), True,
                         f"login as {account.username} accepted; will watch "
                         f"{folders.inbox!r} and {folders.junk!r}; trash {folders.trash!r}; "
                         f"{idle}")


async def check(config: Config) -> list[EndpointCheck]:
    return list(await asyncio.gather(
        _smtp("probe account SMTP", config.probe, config, False),
        _smtp("Gmail SMTP (send-as)", config.gmail, config, True),
        _imap("Gmail IMAP", config.gmail, config, True),
        _imap("probe account IMAP", config.probe, config, False),
    ))
