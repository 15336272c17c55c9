"""Plain aiosmtplib and aioimaplib clients, used the way any mail client would,
to drive the sandbox without flowtest's own net/ code."""

from __future__ import annotations

import asyncio
import ssl
from email.message import EmailMessage
from typing import Any

import aioimaplib
import aiosmtplib

from flowtest.config import Account, Config


def tls(config: Config) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(config.tls.ca_file))


async def submit(config: Config, account: Account, message: bytes | EmailMessage, *,
                 mail_from: str | None = None, rcpts: list[str],
                 password: str | None = None) -> Any:
    """Send through the account's submission server (STARTTLS, AUTH)."""
    ep = account.smtp
    raw = message.as_bytes() if isinstance(message, EmailMessage) else message
    # The sandbox's certificates carry the hosts' IP addresses too, so a plain
    # client can connect by address and still verify.
    smtp = aiosmtplib.SMTP(hostname=ep.address, port=ep.port, start_tls=True,
                           tls_context=tls(config), local_hostname="client.test")
    await smtp.connect()
    try:
        await smtp.login(account.username, password or account.password.reveal())
        return await smtp.sendmail(mail_from or account.address, rcpts, raw)
    finally:
        # Closing a TLS transport starts an asynchronous TLS shutdown that
        # asyncio.run() does not wait for; abort it so the socket is released.
        transport = smtp.transport
        try:
            await smtp.quit()
        except aiosmtplib.SMTPException:
            smtp.close()
        if transport is not None:
            transport.abort()


def message(sender: str, rcpt: str, subject: str, *, message_id: str,
            body: str = "hello\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = rcpt
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Thu, 26 Nov 2026 04:00:00 +0000"
    msg.set_content(body)
    return msg


async def imap_login(config: Config, account: Account,
                     password: str | None = None) -> aioimaplib.IMAP4_SSL:
    ep = account.imap
    client = aioimaplib.IMAP4_SSL(host=ep.address, port=ep.port, ssl_context=tls(config))
    await client.wait_hello_from_server()
    response = await client.login(account.username, password or account.password.reveal())
    if response.result != "OK":
        await close(client)
        raise PermissionError(response.lines)
    return client


async def close(client: aioimaplib.IMAP4_SSL) -> None:
    """Log out and close the socket (aioimaplib's logout leaves it open)."""
    try:
        if client.protocol.state in ("AUTH", "SELECTED", "NONAUTH"):
            await asyncio.wait_for(client.logout(), 2)
    except (aioimaplib.AioImapException, OSError, TimeoutError):
        pass
    if client.protocol.transport is not None:
        client.protocol.transport.abort()  # see submit(): release the socket now
