"""Connection slots: at most limits.imap_connections connections per mailbox
among all of this user's flowtest processes on this machine (two cron runs
that overlap count together; Gmail allows about 15 per account, shared with
the user's phone and mail apps, FACTS.md).

A slot is an exclusive flock on one of N files; the kernel frees it when a
process dies, so a crash never leaks one. The holder writes its pid into the
file, so whoever waits too long can say who holds it. The directory is the
user's own (0700, checked, never followed through a symlink): another local
user can neither block flowtest's runs by holding its locks nor make it
write through a link of theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flowtest.errors import TransportError
from flowtest.i18n import gettext as _

log = logging.getLogger("flowtest.imap")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class SlotsBusy(TransportError):
    """Every connection slot stayed taken until the deadline. ``holders`` are
    the pids written in the slot files (None where a file named none)."""

    def __init__(self, *, endpoint: str, limit: int, waited_s: float,
                 holders: tuple[int | None, ...]) -> None:
        self.limit = limit
        self.waited_s = waited_s
        self.holders = holders
        named = ", ".join(_("pid {pid}").format(pid=p) if p is not None
                          else _("an unknown process") for p in holders)
        super().__init__(_("all {limit} connection slot(s) (limits.imap_connections) still "
                           "held after {seconds} s, by {holders}").format(
                             limit=limit, seconds=f"{waited_s:.0f}",
                             holders=named or _("nobody known")), endpoint=endpoint)


class UnsafeSlotDir(TransportError):
    """The slot directory is not the user's own private directory."""

    def __init__(self, *, endpoint: str, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(_("refusing the connection-slot directory {path}: {reason}; another "
                           "local user could block or hijack flowtest's runs there").format(
                             path=path, reason=reason), endpoint=endpoint)


def slot_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"flowtest-{os.getuid()}" / "imap-slots"


def mailbox_key(host: str, port: int, username: str) -> str:
    key = f"{host.lower()}:{port}:{username.lower()}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _private_dir(parent_fd: int | None, name: str, shown: Path, endpoint: str) -> int:
    """Open (creating it 0700 if need be) one directory below ``parent_fd``,
    never through a symlink, and only if it is ours and no one else's."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:  # ELOOP for a symlink, ENOTDIR for a file
        raise UnsafeSlotDir(endpoint=endpoint, path=shown,
                            reason=exc.strerror or str(exc)) from None
    info = os.fstat(fd)
    reason = None
    if info.st_uid != os.getuid():
        reason = _("owned by uid {owner}, not {uid}").format(owner=info.st_uid,
                                                             uid=os.getuid())
    elif stat.S_IMODE(info.st_mode) & 0o022:
        # Others could have planted files in it: refuse rather than repair.
        reason = _("mode {mode}, not 700").format(mode=f"{stat.S_IMODE(info.st_mode):o}")
    elif stat.S_IMODE(info.st_mode) & 0o077:
        # Ours, readable by others but not writable (as flowtest before 0.2
        # made it, 755): nothing can have been planted, so make it private.
        os.fchmod(fd, 0o700)
    if reason is not None:
        os.close(fd)
        raise UnsafeSlotDir(endpoint=endpoint, path=shown, reason=reason)
    return fd


def _open_folder(key: str, endpoint: str) -> int:
    """The mailbox's slot folder, as a directory descriptor."""
    path = slot_dir() / key
    base = path.parents[2]
    try:  # $XDG_RUNTIME_DIR or /tmp: not ours to check, but it must be there
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(base, _DIR_FLAGS & ~os.O_NOFOLLOW)
    except OSError as exc:  # not a reason to reconnect: say it, once
        raise UnsafeSlotDir(endpoint=endpoint, path=base,
                            reason=exc.strerror or str(exc)) from None
    shown = base
    try:
        for part in path.relative_to(base).parts:
            shown = shown / part
            child = _private_dir(fd, part, shown, endpoint)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass
class Slot:
    """A held slot: the open, locked file."""

    fd: int

    def free(self) -> None:
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _try(folder: int, name: str, shown: Path, endpoint: str) -> Slot | None:
    try:
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=folder)
    except OSError as exc:  # ELOOP: a symlink where a slot file should be
        raise UnsafeSlotDir(endpoint=endpoint, path=shown,
                            reason=exc.strerror or str(exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    # Fixed width, so the write always covers what a previous holder wrote
    # (a pid has at most 7 digits on Linux): no ftruncate, which costs a
    # journalled metadata change (milliseconds on ext4) per connection.
    os.pwrite(fd, f"{os.getpid():>10}\n".encode(), 0)
    return Slot(fd)


def _holder(folder: int, name: str) -> int | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    except OSError:
        return None
    try:
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else None


async def take(key: str, limit: int, *, deadline_s: float, endpoint: str) -> Slot:
    """Wait for one of the ``limit`` slots of mailbox ``key``; raises
    :class:`SlotsBusy` naming the holders if none is free within ``deadline_s``."""
    folder = _open_folder(key, endpoint)
    names = [f"{i}.lock" for i in range(limit)]
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_s
    delay = 0.02
    try:
        while True:
            for name in names:
                slot = _try(folder, name, slot_dir() / key / name, endpoint)
                if slot is not None:
                    return slot
            left = give_up - loop.time()
            if left <= 0:
                raise SlotsBusy(endpoint=endpoint, limit=limit, waited_s=deadline_s,
                                holders=tuple(_holder(folder, n) for n in names))
            if delay == 0.02:
                log.info("%s: all %d connection slots in use (limits.imap_connections); "
                         "waiting", endpoint, limit)
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.25)
    finally:
        os.close(folder)
