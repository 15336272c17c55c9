"""One root, data-carrying subclasses.

Callers branch on the fields (``code``, ``endpoint``, ``key``), never on the
text; the text is for people and never holds a secret.
"""

from __future__ import annotations

from pathlib import Path

from flowtest.i18n import N_
from flowtest.i18n import gettext as _


class FlowtestError(Exception):
    """Root of every error flowtest raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(FlowtestError):
    """The configuration file (or a flag standing in for it) is wrong."""

    def __init__(self, reason: str, *, file: Path | str | None = None, key: str | None = None):
        self.file = str(file) if file is not None else None
        self.key = key
        self.reason = reason
        where = ""
        if self.file and key:
            where = f"{self.file}: {key}: "
        elif self.file:
            where = f"{self.file}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{reason}")


class SecretError(ConfigError):
    """A secret reference could not be resolved. Never carries the secret."""


class UnknownFault(FlowtestError, ValueError):
    """A fault name the sandbox does not know."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(_("unknown fault {name}; known faults: {known}").format(
            name=repr(name), known=", ".join(known)))


# The guard's operation words (``what``: connect, sendto, sendmsg, lookup) in
# people's language; ``what`` itself stays the audit event's word.
GUARD_OPERATIONS = {"connect": N_("connection"), "sendto": N_("datagram"),
                    "sendmsg": N_("datagram"), "lookup": N_("name lookup")}


class NetworkGuardError(FlowtestError, PermissionError):
    """A connection or lookup outside 127.0.0.0/8 while the guard is on."""

    def __init__(self, what: str, target: object) -> None:
        self.what = what
        self.target = target
        shown = _(GUARD_OPERATIONS[what]) if what in GUARD_OPERATIONS else what
        super().__init__(_(
            "network guard: {what} to {target} refused; only 127.0.0.0/8 is allowed "
            "in sandbox mode and in tests").format(what=shown, target=repr(target)))


class TransportError(FlowtestError):
    """Talking to a server failed: refused, reset, timed out, or an error reply."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        code: int | None = None,
        transient: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.code = code
        self.transient = transient
        super().__init__(f"{endpoint}: {message}")


class Unreachable(TransportError):
    """Nothing answered: the connection was refused, timed out, or dropped
    before the server spoke. Always transient (a new connection may work).
    Callers tell it apart by its type, never by its (translated) text."""

    def __init__(self, message: str, *, endpoint: str) -> None:
        super().__init__(message, endpoint=endpoint, transient=True)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying on a new connection: a 4xx, a dropped connection, a throttle."""
    return isinstance(exc, TransportError) and exc.transient


class AuthError(TransportError):
    """The server refused the account's credentials."""

    def __init__(self, message: str, *, endpoint: str, account: str, code: int | None = None):
        self.account = account
        super().__init__(_("login as {account} refused: {reply}").format(
            account=account, reply=message), endpoint=endpoint, code=code)


class TLSError(TransportError):
    """The server's TLS is missing or its certificate does not verify."""


class ProbeTimeout(FlowtestError, TimeoutError):
    """A probe did not arrive within its deadline."""

    def __init__(self, token: str, waited_s: float) -> None:
        self.token = token
        self.waited_s = waited_s
        super().__init__(_("probe {token} not seen after {seconds} s").format(
            token=token, seconds=f"{waited_s:.1f}"))


class SandboxError(FlowtestError):
    """The sandbox world could not start or misbehaved internally."""
