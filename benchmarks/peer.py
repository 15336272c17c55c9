"""check_email_delivery, the classic Nagios plugin, against the same sandbox.

It is installed from Debian's monitoring-plugins-contrib (with the Perl
modules it needs, ../shared/LIBRARY-NOTES.md) when it is missing. It runs in
its ``--plugin`` form: check_smtp_send submits through the probe account
(STARTTLS, AUTH LOGIN) to the alias, check_imap_receive searches Gmail's IMAP
(implicit TLS) for the probe's own token and deletes it. Its detection time is
read from the sandbox's ground truth (the first SEARCH that listed the
message), because the plugin reports only whole seconds of ``elapsed``.
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness import SandboxProcess

PLUGINS = Path("/usr/lib/nagios/plugins")
PACKAGES = ("monitoring-plugins-contrib", "libmail-imapclient-perl", "libio-socket-ssl-perl",
            "libnet-smtp-tls-perl", "libnet-smtp-ssl-perl", "libauthen-sasl-perl")


def ensure_installed() -> str | None:
    """Install the peer from Debian's packages if needed; None when it is there,
    else why it is not."""
    if (PLUGINS / "check_email_delivery").exists():
        return None
    if shutil.which("apt-get") is None:
        return "apt-get is not available: install monitoring-plugins-contrib by hand"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            return f"{' '.join(cmd[:2])} failed: {done.stderr.strip()[-300:]}"
    return None


@dataclass(frozen=True)
class PeerProbe:
    ok: bool
    output: str
    wall_s: float
    cpu_s: float                  # user + system of the plugin and its children
    detect_s: float | None        # sandbox stored -> the plugin's SEARCH listed it


def run_one(sandbox: SandboxProcess, alias: str, *, tuned: bool) -> PeerProbe:
    conf = sandbox.config()
    token = f"peer-{uuid.uuid4().hex[:12]}"
    message_id = f"<{token}@bench.invalid>"
    smtp = " ".join([
        str(PLUGINS / "check_smtp_send"), "-H", conf.probe.smtp.connect_host,
        "-p", str(conf.probe.smtp.port), "--tls", "-U", conf.probe.address,
        "-P", shlex.quote(sandbox.password("probe")), "--mailfrom", conf.probe.address,
        "--mailto", alias, "--header", shlex.quote("Subject: peer probe %TOKEN1%"),
        "--header", shlex.quote("X-Probe-Token: %TOKEN1%"),
        "--header", shlex.quote(f"Message-ID: {message_id}"), "--body", "peer"])
    imap = [str(PLUGINS / "check_imap_receive"), "-H", conf.gmail.imap.connect_host,
            "-p", str(conf.gmail.imap.port), "--ssl", "--ssl-ca-file", str(sandbox.ca_file),
            "-U", conf.gmail.address, "-P", shlex.quote(sandbox.password("gmail")),
            "-s", "HEADER", "-s", "X-Probe-Token", "-s", shlex.quote("%TOKEN1%")]
    wait: list[str] = []
    if tuned:
        imap += ["--imap-check-interval", "1"]
        wait = ["--wait", "1"]
    # check_smtp_send has no CA option: IO::Socket::SSL reads SSL_CERT_FILE.
    env = {**os.environ, "SSL_CERT_FILE": str(sandbox.ca_file)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    done = subprocess.run([str(PLUGINS / "check_email_delivery"), "-p", smtp,
                           "-p", " ".join(imap), *wait],
                          capture_output=True, text=True, env=env, timeout=120)
    wall = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stored = sandbox.wait_for(message_id, "stored", timeout=5)
    listed = sandbox.wait_for(message_id, "listed", timeout=5)
    return PeerProbe(
        ok=done.returncode == 0 and "OK" in done.stdout,
        output=done.stdout.strip().splitlines()[0] if done.stdout.strip() else done.stderr,
        wall_s=wall,
        cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        detect_s=(listed - stored) if stored is not None and listed is not None else None)
