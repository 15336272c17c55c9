"""The sandbox in a process of its own, for benchmarks.

`flowtest sandbox --write-config … --truth …` runs the world; this module
starts it, waits for its config, and reads its ground truth (JSON lines on
the same machine clock as ``time.time()`` here). With the sandbox out of the
process, flowtest's CPU, memory and event-loop timing are its own, and the
peer tool and flowtest face exactly the same server.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import dns.resolver
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from flowtest import config as cfg
from flowtest.sandbox.truth import Event


@dataclass
class SandboxProcess:
    aliases: int | str = 3
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ft-bench-")))
    proc: subprocess.Popen[bytes] | None = None
    _offset: int = 0
    _events: list[Event] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.workdir / "flowtest.toml"

    @property
    def truth_path(self) -> Path:
        return self.workdir / "truth.jsonl"

    def __enter__(self) -> SandboxProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flowtest.cli", "sandbox", "--aliases", str(self.aliases),
             "--write-config", str(self.config_path), "--truth", str(self.truth_path),
             "--burst"],
            stdout=subprocess.DEVNULL, stderr=(self.workdir / "sandbox.log").open("wb"),
            env={**os.environ, "COLUMNS": "200"})
        deadline = time.monotonic() + 60
        while not self.config_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / "sandbox.log").read_text(errors="replace")
                raise RuntimeError(f"the sandbox did not start:\n{log}")
            time.sleep(0.05)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def config(self) -> cfg.Config:
        return cfg.load(self.config_path)

    def password(self, which: str) -> str:
        """The sandbox account's password, for the peer tool's command line."""
        name = {"gmail": "gmail-app-password", "probe": "probe-password"}[which]
        return (self.workdir / f"flowtest.{name}").read_text().strip()

    @property
    def ca_file(self) -> Path:
        return self.workdir / "flowtest.ca.pem"

    def events(self) -> list[Event]:
        """Every event so far (the file is read on from where it was left)."""
        with self.truth_path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            self._events.append(Event(**json.loads(line)))
        return self._events

    def first(self, kind: str, party: str | None = None) -> dict[str, float]:
        """message id -> time of its first event of this kind."""
        out: dict[str, float] = {}
        for e in self.events():
            if e.kind == kind and (party is None or e.party == party):
                out.setdefault(e.message_id, e.at)
        return out

    def wait_for(self, message_id: str, kind: str, timeout: float = 30.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            at = self.first(kind).get(message_id)
            if at is not None:
                return at
            time.sleep(0.02)
        return None

    def cpu_s(self) -> float:
        """CPU seconds the sandbox has used so far (user + system): its
        process and the processes it started (the checks' worker), live ones
        from their own stat, ended ones from the sandbox's cutime/cstime."""
        assert self.proc is not None
        return sum(_cpu_ticks(pid, children=pid == self.proc.pid)
                   for pid in _family(self.proc.pid)) / os.sysconf("SC_CLK_TCK")

    def key_bits(self) -> int:
        """Size of the DKIM key Cloudflare's signer publishes in the sandbox's
        DNS: what the sandbox signs with, read as any verifier reads it."""
        settings = self.config().dns
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [settings.nameservers[0][0]]
        resolver.port = settings.nameservers[0][1]
        answer = resolver.resolve("cf2024-1._domainkey.cloudflare-email.net", "TXT")
        txt = b"".join(next(iter(answer)).strings).decode()
        p = dict(t.strip().partition("=")[::2] for t in txt.split(";"))["p"]
        key = load_der_public_key(base64.b64decode(p))
        assert isinstance(key, rsa.RSAPublicKey)
        return key.key_size

    def connections_peak(self, since: float = 0.0) -> dict[str, int]:
        """Most IMAP connections open at once per party, from the open events."""
        peak: dict[str, int] = defaultdict(int)
        for e in self.events():
            if e.kind == "imap-open" and e.at >= since:
                peak[e.party] = max(peak[e.party], int(e.detail))
        return dict(peak)


def _family(pid: int) -> list[int]:
    """pid and every live descendant, from /proc/<pid>/task/*/children."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(p) for p in task.read_text().split()]
            except OSError:
                continue  # the task ended meanwhile
    return out


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far, from /proc."""
    return _cpu_ticks(pid, children=False) / os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int, *, children: bool) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0  # ended since it was listed
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks + (int(fields[13]) + int(fields[14]) if children else 0)  # waited-for children
