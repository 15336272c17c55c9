"""Secrets by reference: ``env:NAME``, ``file:PATH``, ``keyring:SERVICE/USER``.

A :class:`Secret` prints as its reference, never as its value. Every value
that is revealed is remembered so :func:`redact` can scrub it from any text
that leaves the process (logs, reports, exception messages).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flowtest.errors import SecretError

SCHEMES = ("env", "file", "keyring")

_revealed: set[str] = set()
_revealed_lock = threading.Lock()


def _remember(value: str) -> None:
    variants = {value, value.replace(" ", "")}
    with _revealed_lock:
        _revealed.update(v for v in variants if len(v) >= 4)


def redact(text: str) -> str:
    """Replace every secret revealed so far in this process by ``***``."""
    with _revealed_lock:
        known = sorted(_revealed, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, "***")
    return text


class Secret:
    """A reference to a secret, resolved only when a connection needs it."""

    __slots__ = ("_cache", "ref")

    def __init__(self, ref: str, *, value: str | None = None) -> None:
        scheme, sep, rest = ref.partition(":")
        if not sep or scheme not in SCHEMES or not rest:
            raise SecretError(
                "a secret must be a reference: env:NAME, file:PATH or keyring:SERVICE/USER "
                "(the value itself is never written in the config)"
            )
        self.ref = ref
        self._cache = value
        if value is not None:
            _remember(value)

    def __repr__(self) -> str:
        return f"Secret({self.ref!r})"

    __str__ = __repr__

    def reveal(self) -> str:
        """The secret's value. Call only at the point of use."""
        if self._cache is None:
            self._cache = self._resolve()
            _remember(self._cache)
        return self._cache

    def _resolve(self) -> str:
        scheme, _, rest = self.ref.partition(":")
        if scheme == "env":
            value = os.environ.get(rest)
            if value is None:
                raise SecretError(f"environment variable {rest} is not set ({self.ref})")
            return value
        if scheme == "file":
            path = Path(rest).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise SecretError(f"cannot read {path}: {exc.strerror}") from None
            value = text.strip()
            if not value:
                raise SecretError(f"{path} is empty ({self.ref})")
            return value
        service, slash, user = rest.partition("/")
        if not slash or not service or not user:
            raise SecretError(f"keyring references look like keyring:SERVICE/USER, not {self.ref}")
        try:
            import keyring  # optional: only people who use keyring: need it
        except ImportError:
            raise SecretError(
                f"{self.ref} needs the 'keyring' package: pip install keyring"
            ) from None
        value = keyring.get_password(service, user)
        if value is None:
            raise SecretError(f"no keyring entry for service {service!r}, user {user!r}")
        return str(value)


def normalize_app_password(value: str) -> str:
    """Gmail shows app passwords in groups of four; the spaces are not part of it."""
    return value.replace(" ", "")
