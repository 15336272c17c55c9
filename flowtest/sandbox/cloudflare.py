"""Cloudflare Email Routing: the domain's MX, its routing rules, its checks on
arrival, and the forwarded copy as FACTS.md describes it."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import dkim
from aiosmtpd.smtp import SMTP, Envelope, Session

from flowtest.sandbox import hosts
from flowtest.sandbox.checks import Verdicts
from flowtest.sandbox.context import Context
from flowtest.sandbox.message import crlf, prepend, random_id, split, srs0
from flowtest.sandbox.smtp import Reply, SmtpServer, message_id_of, peer_ip, smtp_date

MAX_RULES = 200  # per domain (FACTS.md)
SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"cc",
                  b"mime-version", b"content-type", b"content-transfer-encoding"]


@dataclass(frozen=True)
class Rule:
    action: Literal["forward", "drop"]
    destination: str = ""


class Routing:
    """Routing rules of one domain: addresses, a catch-all, drops."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.rules: dict[str, Rule] = {}
        self.catch_all: Rule | None = None

    def forward(self, address: str, destination: str) -> None:
        self._add(address, Rule("forward", destination))

    def drop(self, address: str) -> None:
        self._add(address, Rule("drop"))

    def _add(self, address: str, rule: Rule) -> None:
        address = address.lower()
        if address not in self.rules and len(self.rules) >= MAX_RULES:
            raise ValueError(f"Cloudflare allows at most {MAX_RULES} routing rules per domain")
        if address.rpartition("@")[2] != self.domain:
            raise ValueError(f"{address} is not at {self.domain}")
        self.rules[address] = rule

    def remove(self, address: str) -> None:
        self.rules.pop(address.lower(), None)

    def route(self, address: str) -> Rule | None:
        return self.rules.get(address.lower()) or self.catch_all


def _aar_clause(v: Verdicts, ip: str) -> str:
    parts = []
    if v.dkim:
        d = v.dkim[0]
        parts.append(f"dkim={d.result} header.d={d.domain} header.s={d.selector} header.b={d.b}")
    else:
        parts.append("dkim=none")
    if v.dmarc is not None:
        parts.append(f"dmarc={v.dmarc.result} header.from={v.dmarc.from_domain} "
                     f"policy.dmarc={v.dmarc.policy}")
    else:
        parts.append("dmarc=none")
    s = v.spf
    if s.result == "pass":
        comment = (f"(mx.cloudflare.net: domain of {s.mail_from} designates {ip} as permitted "
                   "sender)")
    else:
        comment = f"(mx.cloudflare.net: {s.result} for {s.mail_from} from {ip})"
    parts.append(f"spf={s.result} {comment} smtp.mailfrom={s.mail_from}")
    parts.append(f"arc={v.arc.result} smtp.remote-ip={ip}")
    return ";\r\n\t".join(parts)


class Cloudflare:
    def __init__(self, ctx: Context, routing: Routing) -> None:
        self.ctx = ctx
        self.routing = routing
        self.srs_secret = secrets.token_bytes(16)
        self.server = SmtpServer(hosts.CF_MX, self, hostname="mx.cloudflare.net",
                                 tls=ctx.server_tls)
        self.relay = ctx.relay(hosts.CF_EGRESS, hosts.CF_EGRESS_NAME)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.server.start()
        self.ctx.ports[hosts.CF_MX] = self.server.port

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.stop()

    # -- SMTP hooks -----------------------------------------------------------

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        address = address.lower()
        if address.rpartition("@")[2] != self.routing.domain:
            return "550 5.7.1 Relay access denied"
        faults = self.ctx.faults
        no_rule = faults.value("no-rule") if faults.on("no-rule") else None
        blocked = faults.on("no-rule") and (no_rule is None or no_rule.lower() == address)
        if blocked or self.routing.route(address) is None:
            return "550 5.1.1 Address does not exist"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            return await self._data(session, envelope)
        except Exception as exc:
            self.ctx.failed(exc)
            return "451 4.3.0 internal error"

    async def _data(self, session: Session, envelope: Envelope) -> str:
        raw = crlf(bytes(envelope.original_content or b""))
        ip = peer_ip(session)
        helo = session.host_name or ip
        mail_from = envelope.mail_from or ""
        message_id = message_id_of(raw)
        verdicts = await self.ctx.evaluate(raw, ip=ip, mail_from=mail_from, helo=helo)
        if verdicts.spf.result != "pass" and not verdicts.dkim_pass:
            refusal = ("550 5.7.26 This mail has been blocked because the sender is "
                       "unauthenticated: neither SPF nor DKIM passed")
            self.ctx.truth.record("rejected", "cloudflare", message_id, "", refusal)
            return refusal
        if verdicts.dmarc and verdicts.dmarc.result == "fail" and verdicts.dmarc.policy == "reject":
            refusal = (f"550 5.7.1 Email rejected per DMARC policy for "
                       f"{verdicts.dmarc.from_domain}")
            self.ctx.truth.record("rejected", "cloudflare", message_id, "", refusal)
            return refusal
        first: Reply | None = None
        for rcpt in envelope.rcpt_tos:
            self.ctx.truth.record("accepted", "cloudflare", message_id, rcpt)
            rule = self.routing.route(rcpt)
            if rule is None or rule.action == "drop" or self.ctx.faults.on("forward-drop"):
                self.ctx.truth.record("dropped", "cloudflare", message_id, rcpt,
                                      "forward-drop fault" if rule and rule.action == "forward"
                                      else "drop rule")
                continue
            copy = await asyncio.to_thread(self._forwarded_copy, raw, rcpt, rule.destination,
                                           ip, helo, mail_from, verdicts)
            envelope_from = srs0(mail_from or f"postmaster@{helo}", self.routing.domain,
                                 self.srs_secret)
            delay = self.ctx.faults.seconds("forward-delay")
            if delay > 0:
                task = asyncio.get_running_loop().create_task(
                    self._relay_later(delay, envelope_from, rcpt, rule.destination, copy,
                                      message_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                continue
            reply = await self._relay(envelope_from, rcpt, rule.destination, copy, message_id)
            if self.ctx.faults.on("duplicate") and reply.ok:
                await self._relay(envelope_from, rcpt, rule.destination, copy, message_id)
            if first is None or (not reply.ok and first.ok):
                first = reply
        if first is not None and not first.ok:
            # Cloudflare does not queue: the destination's error goes back to
            # the sender in the same session (FACTS.md).
            return str(first)
        return "250 2.0.0 Ok: queued"

    async def _relay_later(self, delay: float, envelope_from: str, rcpt: str, destination: str,
                           copy: bytes, message_id: str) -> None:
        await asyncio.sleep(delay)
        await self._relay(envelope_from, rcpt, destination, copy, message_id)

    async def _relay(self, envelope_from: str, rcpt: str, destination: str, copy: bytes,
                     message_id: str) -> Reply:
        reply = await self.relay.send(envelope_from, destination, copy)
        kind = "relayed" if reply.ok else ("deferred" if reply.transient else "rejected")
        self.ctx.truth.record(kind, "cloudflare", message_id, rcpt, str(reply))
        return reply

    # -- the forwarded copy ---------------------------------------------------

    def _forwarded_copy(self, raw: bytes, rcpt: str, destination: str, ip: str, helo: str,
                        mail_from: str, verdicts: Verdicts) -> bytes:
        domain = self.routing.domain
        now = time.time()
        spf = verdicts.spf
        results = _aar_clause(verdicts, ip)
        msg = prepend(
            raw,
            f"Received: from {helo} ({ip})\r\n\tby cloudflare-email.net (cloudflare) id "
            f"{random_id(12)}\r\n\tfor <{rcpt}>; {smtp_date(now)}",
        )
        msg = prepend(
            msg,
            f"X-Forwarded-To: {destination}",
            f"X-Forwarded-For: {rcpt} {destination}",
            f"Feedback-ID: {domain}:1:1:Cloudflare",
            f"X-CF-SpamH-Score: {1 if spf.result == 'pass' else 5}",
        )
        msg = prepend(
            msg,
            f"Authentication-Results: mx.cloudflare.net;\r\n\t{results}",
            f"Received-SPF: {spf.result} (mx.cloudflare.net: domain of {mail_from} "
            f"{'designates' if spf.result == 'pass' else 'does not designate'} {ip} as "
            f"permitted sender) receiver=mx.cloudflare.net; client-ip={ip}; "
            f'envelope-from="{mail_from}"; helo={helo};',
        )
        if self.ctx.faults.on("body-modified"):
            # After the checks and before the seal: the sender's DKIM breaks,
            # Cloudflare's own signatures and ARC still hold.
            head, body = split(msg)
            msg = head + b"\r\n" + body.rstrip(b"\r\n") + (
                b"\r\n\r\n-- \r\nThis message was scanned by a forwarder.\r\n")
        for d, key in ((domain, self.ctx.keys.domain),
                       ("cloudflare-email.net", self.ctx.keys.cloudflare)):
            sig = dkim.sign(msg, b"cf2024-1", d.encode(), key.private_pem,
                            include_headers=SIGNED_HEADERS,
                            canonicalize=(b"relaxed", b"relaxed"))
            msg = sig.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n") + msg
        arc = dkim.arc_sign(msg, b"cf2024-1", b"cloudflare-email.net",
                            self.ctx.keys.cloudflare.private_pem, b"mx.cloudflare.net",
                            include_headers=SIGNED_HEADERS, timestamp=int(now))
        return b"".join(h.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for h in arc) + msg
