"""Where aioimaplib (2.0.3) needs help, in one place.

- It drops untagged EXISTS that arrive during SEARCH or FETCH: :class:`Protocol`
  notes them.
- It knows one host value, used both to connect and to verify: :class:`Client`
  connects to an address and verifies the certificate against the host name.
- It leaves commands in flight waiting when the connection goes:
  :func:`fail_pending` ends them, and :class:`Protocol` refuses to send any
  command after that (it would wait for a reply that cannot come).
- Its debug log prints the LOGIN line with the password IMAP-quoted, where
  its own scrubbing (of the raw password) misses it, and the AUTHENTICATE line
  with the token in base64: :func:`hide_credentials` drops those lines.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import aioimaplib

from flowtest.i18n import gettext as _

# The logger aioimaplib writes its protocol trace to (its module's __name__).
AIOIMAPLIB_LOGGER = "aioimaplib.aioimaplib"
# A command after its tag ("A1 LOGIN …"), not a capability ("AUTH=LOGIN").
_CREDENTIAL_COMMAND = re.compile(r"\w (LOGIN|AUTHENTICATE)\b", re.IGNORECASE)


class Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """Notes every untagged EXISTS. aioimaplib drops those that arrive during
    SEARCH or FETCH, and they are the sign that a result may already be stale."""

    announced = False
    # While a NOOP is pipelined ahead of a FETCH, EXISTS in the NOOP's own reply
    # is not a sign of staleness (the FETCH comes after it): only count later ones.
    announce_after_noop = False
    # Set once the connection is gone: no command may be sent after that.
    gone = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        super().connection_lost(exc)

    def send(self, line: str, scrub: str | None = None) -> None:
        """Write a command line; refused once the connection is gone.

        aioimaplib registers a command as pending, then sends it. One that
        is registered after the connection was lost (and after
        :func:`fail_pending` ended those in flight: a task of aioimaplib's, such
        as the one IDLE runs in, starts a loop turn after it is created) was
        written into the void and waited for ever: a watcher stuck in
        ``idle_start()`` for the rest of its run, its probes never seen and so
        never cleaned up (found by the soak test under CPU load). Raising here,
        right after the registration, ends that command's wait at once."""
        if self.gone:
            raise aioimaplib.AioImapException(_("connection lost"))
        super().send(line, scrub)

    def send_pipelined(self, *commands: Any, done: bool = False) -> None:
        """Send commands now and in one write (RFC 3501 5.5 pipelining), after
        the DONE that ends a pending IDLE if ``done``. aioimaplib's ``execute``
        sends one command at a time and holds each until a sync command (that
        IDLE) completes: a round trip each. Only for commands whose untagged
        replies are told apart (NOOP, FETCH) and none of the same kind pending."""
        for command in commands:
            self.pending_async_commands[command.untagged_resp_name] = command
        self.send("\r\n".join([*(["DONE"] if done else []), *map(str, commands)]))

    def _untagged_response(self, line: bytes) -> Any:
        if line.rstrip().endswith(b" EXISTS") and not (
                self.announce_after_noop and "NOOP" in self.pending_async_commands):
            self.announced = True
        return super()._untagged_response(line)


class Client(aioimaplib.IMAP4):  # type: ignore[misc]
    """aioimaplib over implicit TLS to an address, verifying the certificate
    against the host *name* (aioimaplib itself only knows one host value)."""

    def __init__(self, address: str, port: int, server_hostname: str,
                 ssl_context: ssl.SSLContext | None, timeout: float,
                 conn_lost_cb: Callable[[Exception | None], None]) -> None:
        self._server_hostname = server_hostname
        self._tls = ssl_context
        super().__init__(address, port, None, timeout, conn_lost_cb, ssl_context)

    def create_client(self, host: str, port: int, loop: asyncio.AbstractEventLoop | None,
                      conn_lost_cb: Callable[[Exception | None], None] | None = None,
                      ssl_context: ssl.SSLContext | None = None) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = Protocol(local_loop, conn_lost_cb)
        if self._tls is not None:
            connect = local_loop.create_connection(lambda: self.protocol, host, port,
                                                   ssl=self._tls,
                                                   server_hostname=self._server_hostname)
        else:
            connect = local_loop.create_connection(lambda: self.protocol, host, port)
        self._client_task = local_loop.create_task(connect)


def fail_pending(protocol: Any, client_tasks: Iterable[asyncio.Future[Any]] = ()) -> None:
    """aioimaplib does nothing for commands in flight when the connection goes:
    they wait for their timeout, or for ever (the CAPABILITY of its greeting
    handler has none). That handler holds the protocol's state lock, so a
    cancelled wait_hello_from_server() could never finish and a run hung
    (found by the soak test). End them all now."""
    lost = aioimaplib.AioImapException(_("connection lost"))
    commands = [protocol.pending_sync_command, *protocol.pending_async_commands.values()]
    for command in commands:
        if command is not None and not command._event.is_set():
            command._exception = lost
            command._timer.cancel()
            command._event.set()
    for task in list(protocol.tasks):
        task.cancel()
    # The IDLE task aioimaplib keeps on the client ends with that exception and
    # nobody awaits it: retrieve it, or asyncio prints "Task exception was
    # never retrieved" with a traceback at exit.
    for task in list(client_tasks):
        task.add_done_callback(retrieve)


def retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class _NoCredentialLines(logging.Filter):
    """Drops every protocol-log line that holds a LOGIN or AUTHENTICATE command
    (sent, or echoed back in a pending command's description): the secret in
    it may be quoted, escaped or base64, forms no scrubbing of the raw value
    can be trusted to catch (issue 14, item 2)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot even be formatted is not printed
            return False
        return _CREDENTIAL_COMMAND.search(text) is None


_FILTER = _NoCredentialLines()


def hide_credentials() -> None:
    """Install the filter on aioimaplib's logger (idempotent). A filter on a
    logger sees only that logger's own records, which is where aioimaplib
    writes; done at import of this package, before any connection."""
    logger = logging.getLogger(AIOIMAPLIB_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
