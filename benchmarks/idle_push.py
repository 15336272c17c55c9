"""The physical limit on loopback: a bare aioimaplib client in IDLE.

No flowtest code on the IMAP side: log in, SELECT INBOX, IDLE, and note the
moment the server's untagged EXISTS for a new message reaches the client.
Against the sandbox's "stored" event for the same message, that is the
fastest any IMAP client can learn of a delivery; flowtest's own detection
overhead is reported against it (bench.py, ``detect_over_push_p50``).

Messages go in the way a probe does (submission to the external provider,
through Cloudflare to Gmail), so the server does the same work as for a probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aioimaplib

from flowtest import config as cfg
from flowtest.mail import probe
from flowtest.net.smtp import Submission
from flowtest.net.tls import client_context


async def _pushes(config: cfg.Config, runs: int,
                  stored_at: Callable[[str], float | None]) -> list[float]:
    gmail = config.gmail
    client = aioimaplib.IMAP4_SSL(host=gmail.imap.connect_host, port=gmail.imap.port,
                                  ssl_context=client_context(config.tls), timeout=10)
    await client.wait_hello_from_server()
    response = await client.login(gmail.username, gmail.password.reveal())
    if response.result != "OK":
        raise SystemExit(f"bare IDLE client: login refused: {response.result}")
    await client.select("INBOX")
    alias = config.aliases[0].address
    lags: list[float] = []
    async with Submission(config.probe, tls=config.tls, timeouts=config.timeouts) as smtp:
        for i in range(runs):
            token = probe.token_for(f"idle{int(time.time() * 1000) % 10**8:08d}", i)
            p = probe.build(token, leg="inbound", sender=config.probe.address, recipient=alias)
            idle = await client.idle_start(timeout=60)
            await smtp.send(p.raw, mail_from=config.probe.address, rcpts=[alias])
            heard = None
            while heard is None:
                lines = await client.wait_server_push(timeout=10)
                at = time.time()
                if any(bytes(line).rstrip().endswith(b"EXISTS") for line in lines):
                    heard = at
            client.idle_done()
            await asyncio.wait_for(idle, 10)
            message_id = p.message_id
            stored = stored_at(message_id)
            if stored is None:
                raise SystemExit(f"bare IDLE client: no 'stored' event for {message_id}")
            lags.append(heard - stored)
    await client.logout()
    return lags


def idle_push(config: cfg.Config, runs: int,
              stored_at: Callable[[str], float | None]) -> list[float]:
    """Seconds from "stored" to the bare client hearing EXISTS, one per message."""
    return asyncio.run(_pushes(config, runs, stored_at))
