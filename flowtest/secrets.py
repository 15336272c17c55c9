"""Secrets by reference: ``env:NAME``, ``file:PATH``, ``keyring:SERVICE/USER``.

A :class:`Secret` prints as its reference, never as its value. Every value
that is revealed is remembered so :func:`redact` can scrub it from any text
that leaves the process (logs, reports, exception messages).
"""

from __future__ import annotations

import base64
import binascii
import html
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from flowtest.errors import SecretError
from flowtest.i18n import gettext as _

SCHEMES = ("env", "file", "keyring")
MASK = "***"

@dataclass(frozen=True)
class _Known:
    """A revealed secret, with what finds it in text."""

    value: str
    pattern: re.Pattern[str]   # every escaped form (below)
    anchor: str                # its longest ASCII letter/digit run, lower case: always literal
    needles: tuple[bytes, ...]  # its bytes, for base64 (SMTP AUTH)


_known: dict[str, _Known] = {}
_revealed_lock = threading.Lock()


def _remember(value: str) -> None:
    if len(value.replace(" ", "")) < 4:
        return  # too short to tell from ordinary text
    with _revealed_lock:
        if value in _known:
            return
    pattern = re.compile("".join(_char_forms(c) for c in value), re.IGNORECASE)
    runs = re.findall(r"[A-Za-z0-9]+", value)
    known = _Known(value, pattern, max(runs, key=len).lower() if runs else "",
                   tuple({value.encode(), value.replace(" ", "").encode()}))
    with _revealed_lock:
        _known.setdefault(value, known)


# Escapes nest (a LOGIN line IMAP-quoted, repr'd by aioimaplib's debug log,
# then JSON-, URL- or HTML-escaped in a report), so an escape's own
# characters may arrive escaped once more: any run of backslashes, written
# as themselves, URL-encoded or as entities; % and & escaped again.
_PCT = r"%(?:25)*"
_SEMI = rf"(?:;|{_PCT}3b)"
_AMP = rf"(?:&|{_PCT}26)(?:amp{_SEMI})*"
_HASH = rf"(?:#|{_PCT}23)"
_BS = rf"(?:\\|{_PCT}5c|{_AMP}{_HASH}0*92{_SEMI}|{_AMP}{_HASH}x0*5c{_SEMI})+"


def _char_forms(ch: str) -> str:
    """A regular expression for every way one character of a secret is
    written by the encoders a secret meets on its way to a log or report."""
    if ch.isascii() and ch.isalnum():
        # No encoder a secret meets (IMAP, JSON, repr, URL, HTML) escapes an
        # ASCII letter or digit: written as itself, which makes the anchor.
        return re.escape(ch)
    code = ord(ch)
    utf8 = ch.encode("utf-8")
    once = [re.escape(ch),
            "".join(f"{_PCT}{b:02x}" for b in utf8),            # URL-encoded
            f"{_AMP}{_HASH}0*{code}{_SEMI}",                     # HTML/XML entities
            f"{_AMP}{_HASH}x0*{code:x}{_SEMI}"]
    named = html.escape(ch, quote=True)
    if named.startswith("&") and not named.startswith("&#"):
        once.append(_AMP + re.escape(named[1:-1]) + _SEMI)      # &quot; &amp; &lt;
    forms = list(once)
    forms += [_BS + f for f in once]                            # IMAP/JSON/repr: \" \\ \'
    if ch == " ":
        forms += ["", r"\+", f"{_PCT}2b"]   # app passwords are shown in groups; quote_plus
    if ch in "\t\n\r":
        forms.append(_BS + {"\t": "t", "\n": "n", "\r": "r"}[ch])
    if code < 0x10000:
        forms.append(_BS + f"u{code:04x}")                      # JSON \u00e9, repr \u20ac
    else:
        forms.append(_BS + f"U{code:08x}")
        high, low = divmod(code - 0x10000, 0x400)
        forms.append(_BS + f"u{0xD800 + high:04x}" + _BS + f"u{0xDC00 + low:04x}")  # JSON
    if code < 0x100:
        forms.append(_BS + f"x{code:02x}")                      # repr of str: \xe9
    forms.append("".join(_BS + f"x{b:02x}" for b in utf8))     # repr of bytes: \xc3\xa9
    return "(?:" + "|".join(forms) + ")"


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{6,}={0,2}")


def _hides_secret(run: str, needles: list[bytes]) -> bool:
    """Whether a base64 run decodes to bytes holding a secret: SMTP AUTH
    PLAIN is base64 of ``authzid\\0user\\0password`` (RFC 4616) and AUTH
    LOGIN base64 of the password alone, at any offset in a longer run."""
    for start in range(4):
        chunk = run[start:].rstrip("=")
        chunk = chunk[:len(chunk) - len(chunk) % 4] if len(chunk) % 4 == 1 else chunk
        if len(chunk) < 4:
            break
        padded = chunk + "=" * (-len(chunk) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                data = decode(padded)
            except (binascii.Error, ValueError):
                continue
            if any(n in data for n in needles):
                return True
    return False


def redact(text: str) -> str:
    """Replace every secret revealed so far in this process by ``***``, in
    every form it takes on its way out: raw or without the spaces of an app
    password, IMAP-quoted, JSON-, repr- or unicode-escaped, as UTF-8 ``\\x``
    bytes, URL-encoded, as HTML entities, and inside base64 (SMTP AUTH)."""
    with _revealed_lock:
        known = sorted(_known.values(), key=lambda k: len(k.value), reverse=True)
    if not known:
        return text
    lower = text.lower()
    for k in known:
        if k.anchor in lower:  # cheap: most texts hold no secret at all
            text = k.pattern.sub(MASK, text)
            lower = text.lower()
    needles = [n for k in known for n in k.needles]
    shortest = min(len(n) for n in needles)
    return _BASE64_RUN.sub(
        lambda m: MASK if len(m.group()) >= shortest * 4 // 3 and _hides_secret(
            m.group(), needles) else m.group(), text)


class Secret:
    """A reference to a secret, resolved only when a connection needs it."""

    __slots__ = ("_cache", "ref")

    def __init__(self, ref: str, *, value: str | None = None) -> None:
        scheme, sep, rest = ref.partition(":")
        if not sep or scheme not in SCHEMES or not rest:
            raise SecretError(_(
                "a secret must be a reference: env:NAME, file:PATH or keyring:SERVICE/USER "
                "(the value itself is never written in the config)"))
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
        scheme, _sep, rest = self.ref.partition(":")
        if scheme == "env":
            value = os.environ.get(rest)
            if value is None:
                raise SecretError(_("environment variable {name} is not set ({ref})").format(
                    name=rest, ref=self.ref))
            return value
        if scheme == "file":
            path = Path(rest).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise SecretError(_("cannot read {path}: {error}").format(
                    path=path, error=exc.strerror)) from None
            value = text.strip()
            if not value:
                raise SecretError(_("{path} is empty ({ref})").format(path=path, ref=self.ref))
            return value
        service, slash, user = rest.partition("/")
        if not slash or not service or not user:
            raise SecretError(_("keyring references look like keyring:SERVICE/USER, not "
                                "{ref}").format(ref=self.ref))
        try:
            import keyring  # optional: only people who use keyring: need it
        except ImportError:
            raise SecretError(_("{ref} needs the 'keyring' package: pip install "
                                "keyring").format(ref=self.ref)) from None
        value = keyring.get_password(service, user)
        if value is None:
            raise SecretError(_("no keyring entry for service {service}, user {user}").format(
                service=repr(service), user=repr(user)))
        return str(value)


def normalize_app_password(value: str) -> str:
    """Gmail shows app passwords in groups of four; the spaces are not part of it."""
    return value.replace(" ", "")


_factory_installed = False


def redact_logs() -> None:
    """Redact every log record as it is made, message and traceback, so no
    handler (a --debug console, pytest's log capture, a file) ever sees a
    secret; installed once per process. aioimaplib's debug log, for one,
    prints the LOGIN line with the password IMAP-quoted and bytes-escaped."""
    global _factory_installed
    import logging
    import traceback

    with _revealed_lock:
        if _factory_installed:
            return
        _factory_installed = True
    make = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            record.msg = redact(record.getMessage())
            record.args = ()
        except Exception:  # a bad format string is logging's to report, not ours
            record.msg = redact(str(record.msg))
            record.args = ()
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = redact(text.removesuffix("\n"))
        return record

    logging.setLogRecordFactory(factory)
