"""The network guard: in sandbox mode and in tests, nothing leaves 127.0.0.0/8.

Built on ``sys.addaudithook`` (PEP 578), which sees every ``connect``,
``sendto`` and name lookup made through the socket module, whoever makes it:
flowtest, aiosmtplib, dnspython, pyspf or dkimpy. Audit hooks cannot be
removed, so the hook is installed once and switched on and off.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flowtest.errors import NetworkGuardError

_lock = threading.Lock()
_installed = False
_depth = 0
# Refusals are also counted, so a test can prove nothing was swallowed.
refused: list[str] = []

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _loopback_host(host: object) -> bool:
    if host is None or host == "":
        return True  # a wildcard bind, or AF_UNSPEC local lookups
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name: resolving it would ask the system's DNS


def _address_allowed(address: object) -> bool:
    if isinstance(address, str | bytes):
        return True  # AF_UNIX path
    if isinstance(address, tuple) and address:
        return _loopback_host(address[0])
    return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _depth == 0 or not event.startswith("socket."):
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[-1]
        if event == "socket.sendmsg" and address is None:
            return
        family = getattr(sock, "family", None)
        if family == socket.AF_UNIX:
            return
        if not _address_allowed(address):
            refused.append(f"{event} {address!r}")
            raise NetworkGuardError(event.split(".", 1)[1], address)
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
                   "socket.gethostbyaddr", "socket.getnameinfo"):
        host = args[0]
        if event == "socket.getnameinfo" and isinstance(host, tuple):
            host = host[0]
        if not _loopback_host(host):
            refused.append(f"{event} {host!r}")
            raise NetworkGuardError("lookup", host)


def install() -> None:
    """Install the audit hook (once per process). It starts switched off."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


def enable() -> None:
    global _depth
    install()
    with _lock:
        _depth += 1


def disable() -> None:
    global _depth
    with _lock:
        _depth = max(0, _depth - 1)


def active() -> bool:
    return _depth > 0


@contextmanager
def guarded() -> Iterator[None]:
    """Refuse any traffic outside loopback inside the block."""
    enable()
    try:
        yield
    finally:
        disable()
