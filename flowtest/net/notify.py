"""Telling people: notifications through apprise URLs, and the healthchecks.io-
style dead-man's-switch ping over HTTP. All the I/O of alerting is here.

Nothing in this module ever fails a run: a target that cannot be reached is
logged (redacted) and counted, never raised. A notify URL holds its service's
token (a Telegram bot token, a ServerChan SendKey, a webhook path), so it is
given either by reference (``env:NAME``, ``file:PATH``, ``keyring:S/U``, as
every secret of flowtest) or literally; either way the parts of the URL that
could be a token are remembered by :mod:`flowtest.secrets`, so ``redact``
scrubs them from every log line, report and exception, and people are shown
only a label (``tgram://…``).

apprise (about 0.1 s to import, 0.2 s more to load its plugins on the first
``Apprise()``) is imported only when a notify target is made or used; the
ping needs nothing but the standard library.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _
from flowtest.secrets import SCHEMES, Secret, redact, redact_logs

log = logging.getLogger("flowtest.notify")

Kind = Literal["failure", "success", "info"]
PingEvent = Literal["start", "success", "fail"]

# healthchecks.io keeps the first 10,000 bytes of a ping's body (its
# PING_BODY_LIMIT); a longer short report would only be cut there.
PING_BODY_LIMIT = 10_000
# A ping must never hold up a run, nor the exit of one stopped by SIGTERM.
PING_TIMEOUT_S = 5.0
NOTIFY_TIMEOUT_S = 15.0
TITLE_LIMIT = 200
BODY_LIMIT = 4_000

# healthchecks.io accepts only a UUID as rid (400 "invalid uuid format"
# otherwise): a run id that is not one is mapped to a UUID of its own, the
# same for /start and for the end, so the two pings of one run pair up.
_RID_NAMESPACE = uuid.UUID("5f0c6a52-8d1e-4b53-9b7e-6c1f3c2b8a10")

_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# The parts of a URL that can hold a token: whatever sits between these.
_SPLIT_RE = re.compile(r"[/:@?&=#,;]+")
_HOSTNAME_RE = re.compile(r"^(?=.*[a-z])[a-z0-9-]+(\.[a-z0-9-]+)+$", re.IGNORECASE)
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
# apprise's own option names and values (?format=html, ?priority=high) are
# not tokens; a short run of letters never is one either.
_PLAIN_WORD_RE = re.compile(r"^[a-z]{1,12}$", re.IGNORECASE)


def rid(run_id: str) -> str:
    """The healthchecks.io run id for flowtest's run id: itself when it is a
    UUID, else a UUID derived from it (uuid5)."""
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        return str(uuid.uuid5(_RID_NAMESPACE, run_id))


def _remember_token_parts(url: str) -> None:
    """Make every part of ``url`` that may be a token known to secrets.redact.

    Host names and addresses, port numbers and option words are left alone:
    masking "127.0.0.1" or "html" everywhere would hide more than secrets."""
    _scheme, sep, rest = url.partition("://")
    for part in _SPLIT_RE.split(urllib.parse.unquote(rest) if sep else url):
        if (len(part) < 6 or _HOSTNAME_RE.match(part) or _IPV4_RE.match(part)
                or _PLAIN_WORD_RE.match(part)):
            continue
        Secret("env:FLOWTEST_NOTIFY", value=part)  # remembered for redact(), never shown
        if part != urllib.parse.quote(part, safe=""):
            Secret("env:FLOWTEST_NOTIFY", value=urllib.parse.quote(part, safe=""))


@dataclass(frozen=True)
class Target:
    """A notify or ping URL, as the user gave it: literal or a secret reference.

    ``label`` is what people see; the URL itself only goes to the wire, and
    ``spec`` (the reference, or the literal URL) only back into a config."""

    spec: str
    label: str
    _url: str = field(repr=False, compare=False)

    def url(self) -> str:
        return self._url

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return f"Target({self.label!r})"


def _resolve(spec: str, what: str) -> str:
    spec = spec.strip()
    scheme, sep, _rest = spec.partition(":")
    if sep and scheme in SCHEMES and not spec.startswith(f"{scheme}://"):
        return Secret(spec).reveal().strip()   # SecretError is a ConfigError
    if not _URL_RE.match(spec):
        raise ConfigError(_("a {what} target is a URL (scheme://…) or a reference to one "
                            "(env:NAME, file:PATH, keyring:SERVICE/USER)").format(what=what),
                          key=f"--{what}")
    return spec


def _label(spec: str, url: str) -> str:
    scheme = url.partition("://")[0].lower()
    if spec.strip() != url:  # given by reference: the reference says which one
        return f"{scheme}:// ({spec.strip()})"
    return f"{scheme}://…"


def notify_target(spec: str) -> Target:
    """A notification target: an apprise URL or a reference to one. Refused
    (ConfigError) when apprise does not know how to send to it."""
    redact_logs()  # apprise logs URLs (at debug) and its errors: always redacted
    url = _resolve(spec, "notify")
    _remember_token_parts(url)
    target = Target(spec.strip(), _label(spec, url), url)
    if _apprise().Apprise.instantiate(url) is None:
        raise ConfigError(_("apprise cannot send to {target}: unknown scheme or a "
                            "malformed URL (docs/alerts.md lists the forms)").format(
                                target=target.label), key="--notify")
    return target


def ping_target(spec: str) -> Target:
    """A dead-man's-switch URL (healthchecks.io style) or a reference to one."""
    redact_logs()
    url = _resolve(spec, "ping")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(_("a ping URL is http:// or https://, e.g. "
                            "https://hc-ping.com/<uuid>"), key="--ping")
    # The path is the check's secret (its UUID, or a ping key and a slug).
    for secret in (parts.path.rstrip("/"), parts.query):
        if len(secret.strip("/")) >= 6:
            Secret("env:FLOWTEST_PING", value=secret)
    _remember_token_parts(parts.path + "?" + parts.query)
    label = (f"{parts.scheme}://{parts.hostname}/… ({spec.strip()})" if spec.strip() != url
             else f"{parts.scheme}://{parts.hostname}/…")
    return Target(spec.strip(), label, url)


def _apprise() -> Any:
    import apprise  # only when notifying: its import and plugin load cost ~0.3 s

    return apprise


class Sender(Protocol):
    """What alerting needs from the wire (Notifier; a test or serve may give another)."""

    async def send(self, targets: Sequence[Target], title: str, body: str, *,
                   kind: Kind = "info") -> int: ...

    async def ping(self, target: Target, event: PingEvent, *, run_id: str,
                   body: str = "") -> bool: ...


class Notifier:
    """Sends notifications and pings; logs each failure, never raises one."""

    def __init__(self, *, notify_timeout_s: float = NOTIFY_TIMEOUT_S,
                 ping_timeout_s: float = PING_TIMEOUT_S) -> None:
        self.notify_timeout_s = notify_timeout_s
        self.ping_timeout_s = ping_timeout_s

    async def send(self, targets: Sequence[Target], title: str, body: str, *,
                   kind: Kind = "info") -> int:
        """Send one message to every target at once; how many accepted it.
        ``title`` and ``body`` are plain text (apprise escapes it for services
        that read HTML or Markdown)."""
        if not targets:
            return 0
        # The text leaves the process: no secret in it, whatever a diagnosis quoted.
        title, body = redact(title)[:TITLE_LIMIT], redact(body)[:BODY_LIMIT]
        done = await asyncio.gather(*(self._send_one(t, title, body, kind) for t in targets))
        return sum(done)

    async def _send_one(self, target: Target, title: str, body: str, kind: Kind) -> bool:
        try:
            apprise = _apprise()
            said: list[str] = []

            def heard(entry: Any, service: Any) -> None:
                if getattr(entry, "level", "") in ("WARNING", "ERROR", "CRITICAL"):
                    said.append(str(getattr(entry, "message", "")))

            sender = apprise.Apprise()
            if not sender.add(target.url()):
                log.warning("notify %s: apprise refused the URL", target.label)
                return False
            result = await sender.async_notify(
                body=body, title=title, notify_type=getattr(apprise.NotifyType, kind.upper()),
                body_format=apprise.NotifyFormat.TEXT, timeout=self.notify_timeout_s,
                log_callback=heard)
        except Exception as exc:  # a plugin's bug or a refused connection: logged, not raised
            log.warning("notify %s failed: %s", target.label, redact(f"{type(exc).__name__}: "
                                                                      f"{exc}"))
            return False
        if not result:
            why = "; ".join(said[-2:]) or str(getattr(result, "status", "failed"))
            log.warning("notify %s failed: %s", target.label, redact(why)[:300])
            return False
        log.info("notify %s: sent %r", target.label, title)
        return True

    async def ping(self, target: Target, event: PingEvent, *, run_id: str,
                   body: str = "") -> bool:
        """healthchecks.io's pinging API: ``/start``, the bare URL (success) or
        ``/fail``, with ``rid`` pairing the start with its end and ``body``
        (the short report) kept in the check's log."""
        parts = urllib.parse.urlsplit(target.url())
        path = parts.path.rstrip("/") + {"start": "/start", "success": "", "fail": "/fail"}[event]
        query = "&".join(q for q in (parts.query, "rid=" + rid(run_id)) if q)
        url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))
        data = redact(body).encode("utf-8")[:PING_BODY_LIMIT]
        request = urllib.request.Request(
            url, data=data, method="POST",
            headers={"Content-Type": "text/plain; charset=utf-8",
                     "User-Agent": "flowtest"})
        try:
            status = await asyncio.to_thread(self._post, request)
        except Exception as exc:  # the switch is a witness: its failure never fails the run
            log.warning("ping %s (%s) failed: %s", target.label, event,
                        redact(f"{type(exc).__name__}: {exc}")[:300])
            return False
        if not 200 <= status < 300:
            log.warning("ping %s (%s) failed: HTTP %d", target.label, event, status)
            return False
        return True

    def _post(self, request: urllib.request.Request) -> int:
        try:
            with urllib.request.urlopen(request, timeout=self.ping_timeout_s) as reply:
                reply.read(1024)
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code)
