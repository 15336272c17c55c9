"""Log in to every configured endpoint, verify TLS, list the folders that will
be watched, and send nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from flowtest import providers
from flowtest.config import Account, Config
from flowtest.errors import AuthError, FlowtestError, TLSError, Unreachable
from flowtest.i18n import gettext as _
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
        return _(profile.login_hint) if profile else _("Check the username and the password.")
    if isinstance(exc, TLSError):
        return _("The server's certificate or TLS setup is not trusted: check the host name "
                 "and port (993 implicit TLS for IMAP; 587 STARTTLS or 465 implicit TLS for "
                 "SMTP). --insecure accepts it, loudly.")
    if isinstance(exc, Unreachable):  # by the type, never the (translated) text
        return _("Nothing answered: check the host and port, and that IMAP/SMTP access is "
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
    tls = _("TLS not verified (--insecure)") if config.tls.insecure else _("TLS verified")
    return EndpointCheck(role, str(account.smtp), True,
                         _("{mode}, {tls}, login as {user} accepted").format(
                             mode=account.smtp.tls, tls=tls, user=account.username))


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
                             _("logged in, but no Spam (\\Junk) folder was found"),
                             _("flowtest would not see probes filed as spam."))
    idle = "IDLE" if "IDLE" in session.capabilities else _("no IDLE: polling")
    return EndpointCheck(role, str(account.imap), True,
                         _("login as {user} accepted; will watch {inbox} and {junk}; trash "
                           "{trash}; {idle}").format(
                             user=account.username, inbox=repr(folders.inbox),
                             junk=repr(folders.junk), trash=repr(folders.trash), idle=idle))


async def check(config: Config) -> list[EndpointCheck]:
    return list(await asyncio.gather(
        _smtp(_("probe account SMTP"), config.probe, config, False),
        _smtp(_("Gmail SMTP (send-as)"), config.gmail, config, True),
        _imap("Gmail IMAP", config.gmail, config, True),
        _imap(_("probe account IMAP"), config.probe, config, False),
    ))
