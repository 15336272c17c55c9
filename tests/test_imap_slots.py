"""Connection slots (issue 14, item 8): waiting has a deadline whose error
names the holder's pid, and the slot directory is the user's own, so another
local user can neither block runs nor make flowtest write through a link."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from flowtest.net.imap import ImapSession, SlotsBusy, UnsafeSlotDir, slots
from flowtest.sandbox import World

KEY = slots.mailbox_key("imap.example.test", 993, "someone@example.test")

# Holds slot 0 of KEY (limit 1) in a process of its own until stdin closes.
HOLDER = f"""
import asyncio, sys
from flowtest.net.imap import slots
async def main():
    slot = await slots.take({KEY!r}, 1, deadline_s=5, endpoint="holder")
    print("held", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    slot.free()
asyncio.run(main())
"""


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "run"
    base.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    return base


def _take(limit: int = 1, deadline_s: float = 5.0) -> slots.Slot:
    return asyncio.run(slots.take(KEY, limit, deadline_s=deadline_s, endpoint="IMAP test"))


def test_a_slot_holder_writes_its_pid_in_a_private_directory(runtime: Path) -> None:
    slot = _take()
    try:
        folder = slots.slot_dir() / KEY
        assert (folder / "0.lock").read_text().strip() == str(os.getpid())
        for d in (folder, folder.parent, folder.parent.parent):
            info = d.stat()
            assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid(), d
        assert stat.S_IMODE((folder / "0.lock").stat().st_mode) == 0o600
    finally:
        slot.free()
    _take().free()  # given back: the next taker gets it at once


def test_waiting_for_a_slot_ends_with_the_holders_pid(runtime: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SlotsBusy) as busy:
            _take(deadline_s=0.2)
        assert busy.value.holders == (holder.pid,)
        assert f"pid {holder.pid}" in str(busy.value)
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    _take().free()  # the kernel freed it with the holder's lock


def test_a_session_waits_for_a_slot_only_until_its_deadline(
        world: World, runtime: Path) -> None:
    config = world.config()

    async def go() -> None:
        first = ImapSession(config.gmail, tls=config.tls, timeouts=config.timeouts,
                            app_password=True, limit=1)
        await first.open()
        try:
            second = ImapSession(config.gmail, tls=config.tls, timeouts=config.timeouts,
                                 app_password=True, limit=1, slot_wait_s=0.2)
            with pytest.raises(SlotsBusy) as busy:
                await second.open()
            assert busy.value.holders == (os.getpid(),)
            assert second.client is None  # it never connected
        finally:
            await first.close()

    asyncio.run(go())


def _mine(runtime: Path) -> Path:
    return runtime / f"flowtest-{os.getuid()}"


def test_a_directory_of_ours_others_can_only_read_is_made_private(runtime: Path) -> None:
    # What an older flowtest left behind (mkdir with the umask: 755).
    _mine(runtime).mkdir(mode=0o700)
    _mine(runtime).chmod(0o755)
    _take().free()
    assert stat.S_IMODE(_mine(runtime).stat().st_mode) == 0o700
    assert (slots.slot_dir() / KEY / "0.lock").exists()


def test_a_directory_others_can_write_is_refused(runtime: Path) -> None:
    _mine(runtime).mkdir(mode=0o700)
    _mine(runtime).chmod(0o777)
    with pytest.raises(UnsafeSlotDir) as refused:
        _take()
    assert refused.value.path == _mine(runtime)
    assert not (_mine(runtime) / "imap-slots").exists()


def test_a_symlinked_directory_is_not_followed(runtime: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    _mine(runtime).symlink_to(theirs)
    with pytest.raises(UnsafeSlotDir):
        _take()
    assert list(theirs.iterdir()) == []


def test_a_symlinked_slot_file_is_not_followed(runtime: Path, tmp_path: Path) -> None:
    _take().free()
    target = tmp_path / "victim"
    target.write_text("keep")
    lock = slots.slot_dir() / KEY / "0.lock"
    lock.unlink()
    lock.symlink_to(target)
    with pytest.raises(UnsafeSlotDir):
        _take()
    assert target.read_text() == "keep"


def test_a_directory_owned_by_someone_else_is_refused(runtime: Path) -> None:
    _mine(runtime).mkdir(mode=0o700)
    try:
        os.chown(_mine(runtime), 65534, 65534)
    except PermissionError:
        pytest.skip("changing a directory's owner needs root")
    with pytest.raises(UnsafeSlotDir, match="owned by uid 65534"):
        _take()
