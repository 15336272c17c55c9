"""A real `flowtest` process for the tests that signal one (Ctrl-C, SIGTERM,
SIGKILL, SIGHUP): its stderr read line by line in a thread, so a test waits
for a line the process writes instead of sleeping."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path


class FlowtestProcess:
    def __init__(self, args: list[str], *, cwd: Path | None = None,
                 wait_s: float = 90.0) -> None:
        self.wait_s = wait_s  # a bound for a busy machine, never a means to sync
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flowtest.cli", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd,
            env={**os.environ, "COLUMNS": "200"})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for line in self.proc.stderr:
                self.lines.put(line)
        self.lines.put(None)  # end of the stream

    def wait_for(self, needle: str, timeout: float | None = None) -> str:
        """The first line holding ``needle``; fails with all of stderr so far."""
        deadline = time.monotonic() + (self.wait_s if timeout is None else timeout)
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.err.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no {needle!r} from {self.proc.args[3]}: {''.join(self.err)}")

    def finish(self, timeout: float) -> tuple[int, str]:
        """Exit code and all of stderr."""
        code = self.proc.wait(timeout=timeout)
        while (line := self.lines.get(timeout=max(timeout, 30))) is not None:
            self.err.append(line)
        return code, "".join(self.err)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=30)
