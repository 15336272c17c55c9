"""Cloudflare Email Routing: the domain's MX, its routing rules, its checks on
arrival, and the forwarded copy as FACTS.md describes it."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, Envelope, Session

from flowtest.sandbox import hosts
from flowtest.sandbox.cfapi_state import Account, log_error
from flowtest.sandbox.checks import SpfCheck, Verdicts, check_spf
from flowtest.sandbox.context import Context
from flowtest.sandbox.message import crlf, prepend, random_id, split, srs0
from flowtest.sandbox.signing import header_names, signature
from flowtest.sandbox.smtp import Reply, SmtpServer, message_id_of, peer_ip, smtp_date

MAX_RULES = 200  # per domain (FACTS.md)


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


# The headers Cloudflare's DKIM and ARC signatures cover (samples/real/,
# October 2025): those present are listed first, as written and bottom-up;
# the rest follow in lower case, signed as absent so nobody can add them.
SIGNED = ("to", "subject", "from", "date", "feedback-id", "reply-to", "cc", "resent-date",
          "resent-from", "resent-to", "resent-cc", "in-reply-to", "references", "list-id",
          "list-help", "list-unsubscribe", "list-unsubscribe-post", "list-subscribe", "list-post",
          "list-owner", "list-archive")
WEEK = 7 * 86400  # x= of its signatures: t= plus a week


def signed_headers(msg: bytes) -> tuple[str, list[str]]:
    """(h= as Cloudflare writes it, the names to hash in that order)."""
    present: list[str] = []
    for name in reversed(header_names(msg)):
        if name.lower() in SIGNED and name.lower() not in (p.lower() for p in present):
            present.append(name)
    seen = {p.lower() for p in present}
    absent = [n for n in SIGNED if n not in seen and n != "feedback-id"]
    names = present + absent
    return ":".join(names), [n.lower() for n in names]


@dataclass(frozen=True)
class Variant:
    """What differs between real Cloudflare-forwarded messages (FACTS.md, "What
    varies"): decided from the Message-ID, so a test can pick each form."""

    host: str            # i-xx or ba-xx .cloudflare-email.net, its forwarding host
    address: str         # its source address in the sandbox's Cloudflare range
    received_word: str   # "(unknown)" or "(cloudflare)" in its Received
    feedback_id: bool    # Feedback-ID: <domain>:1:1:Cloudflare present
    spamh_score: bool    # X-CF-SpamH-Score present (often absent in 2025 samples)


def variant(message_id: str) -> Variant:
    h = hashlib.sha256(message_id.strip().encode("utf-8", "replace")).digest()
    letters = "".join(string.ascii_lowercase[b % 26] for b in h[1:3 + (h[4] & 1)])
    return Variant(host=f"{'i' if h[0] & 1 else 'ba'}-{letters}.cloudflare-email.net",
                   address=hosts.CF_EGRESS_ADDRESSES[h[5] % len(hosts.CF_EGRESS_ADDRESSES)],
                   received_word="unknown" if h[6] & 1 else "cloudflare",
                   feedback_id=bool(h[7] & 1), spamh_score=h[8] % 4 == 0)


def envelope_sender(original: str, domain: str, secret: bytes) -> str:
    """Cloudflare's rewritten envelope: SRS0, or ``cfbounces+ndrdrop@`` when the
    original envelope holds "=" (a VERP or SRS address; FACTS.md, a guess from
    the samples that is consistent with every one of them)."""
    if "=" in original.rpartition("@")[0]:
        return f"cfbounces+ndrdrop@{domain}"
    return srs0(original, domain, secret)


def _log_fields(raw: bytes, v: Verdicts) -> dict[str, Any]:
    """What its activity log keeps of a message besides its fate."""
    subject = re.search(rb"(?im)^subject:[ \t]*([^\r\n]*)", raw[:64 * 1024])
    return {"subject": subject.group(1).decode("utf-8", "replace")[:200] if subject else "",
            "verdicts": {"spf": v.spf.result,
                         "dkim": "pass" if v.dkim_pass else (v.dkim[0].result if v.dkim
                                                             else "none"),
                         "dmarc": v.dmarc.result if v.dmarc else "none",
                         "arc": v.arc.result}}


def _spf_comment(s: SpfCheck) -> str:
    who = s.mail_from or f"postmaster@{s.domain}"
    if s.result == "pass":
        return f"(mx.cloudflare.net: domain of {who} designates {s.ip} as permitted sender)"
    if s.result == "none":
        return f"(mx.cloudflare.net: no SPF records found for {who})"
    if s.result in ("fail", "softfail"):  # wording unconfirmed
        return (f"(mx.cloudflare.net: domain of {who} does not designate {s.ip} as permitted "
                "sender)")
    return f"(mx.cloudflare.net: {s.result} in processing SPF for {who})"  # unconfirmed


def results_clauses(v: Verdicts, helo: SpfCheck, helo_name: str, ip: str) -> list[str]:
    """Cloudflare's verdict as in samples/real/: a dkim= clause per signature
    (none when unsigned), dmarc, SPF of HELO then of MAIL FROM, arc."""
    out = [f"dkim={d.result} header.d={d.domain} header.s={d.selector} header.b={d.b}"
           for d in v.dkim]
    if v.dmarc is not None:
        out.append(f"dmarc={v.dmarc.result} header.from={v.dmarc.from_domain} "
                   f"policy.dmarc={v.dmarc.policy}")
    else:
        out.append("dmarc=none")  # no record: the real wording is unconfirmed
    out.append(f"spf={helo.result} {_spf_comment(helo)} smtp.helo={helo_name}")
    s = v.spf
    out.append(f"spf={s.result} {_spf_comment(s)} smtp.mailfrom={s.mail_from}")
    out.append(f"arc={v.arc.result} smtp.remote-ip={ip}")
    return out


class Cloudflare:
    def __init__(self, ctx: Context, routing: Routing, account: Account | None = None) -> None:
        self.ctx = ctx
        self.routing = routing
        # What its API shows (rules enabled or not, destinations verified)
        # decides routing, and each message's fate goes into its activity log.
        self.account = account or Account(routing, ctx.faults, "", "")
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
        if blocked or self.account.route(address) is None:
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
        logged = _log_fields(raw, verdicts)

        def log(rcpt: str, action: str, status: str, rule: str = "", error: str = "") -> None:
            self.account.log.record(message_id=message_id, sender=mail_from, to=rcpt,
                                    action=action, status=status, rule=rule, error=error,
                                    **logged)

        # Its own verdict also checks the HELO name's SPF (the first spf= clause).
        helo_spf = await asyncio.to_thread(check_spf, ip, f"postmaster@{helo}", helo,
                                           self.ctx.resolver())
        if verdicts.spf.result != "pass" and not verdicts.dkim_pass:
            refusal = ("550 5.7.26 This mail has been blocked because the sender is "
                       "unauthenticated: neither SPF nor DKIM passed")
            self.ctx.truth.record("rejected", "cloudflare", message_id, "", refusal)
            for rcpt in envelope.rcpt_tos:
                log(rcpt, "reject", "rejected", error=refusal)
            return refusal
        if verdicts.dmarc and verdicts.dmarc.result == "fail" and verdicts.dmarc.policy == "reject":
            refusal = (f"550 5.7.1 Email rejected per DMARC policy for "
                       f"{verdicts.dmarc.from_domain}")
            self.ctx.truth.record("rejected", "cloudflare", message_id, "", refusal)
            for rcpt in envelope.rcpt_tos:
                log(rcpt, "reject", "rejected", error=refusal)
            return refusal
        first: Reply | None = None
        for rcpt in envelope.rcpt_tos:
            self.ctx.truth.record("accepted", "cloudflare", message_id, rcpt)
            routed = self.account.route(rcpt)
            rule = Rule("forward" if routed[0] == "forward" else "drop",
                        routed[1]) if routed else None
            rule_id = routed[2] if routed else ""
            if rule is None or rule.action == "drop" or self.ctx.faults.on("forward-drop"):
                if rule and rule.action == "forward":
                    # An internal failure: its log keeps the message in flight.
                    log(rcpt, "forward", "processing", rule_id)
                else:
                    log(rcpt, "drop", "dropped", rule_id)
                self.ctx.truth.record("dropped", "cloudflare", message_id, rcpt,
                                      "forward-drop fault" if rule and rule.action == "forward"
                                      else "drop rule")
                continue
            copy = await asyncio.to_thread(self._forwarded_copy, raw, rcpt, rule.destination,
                                           ip, helo, mail_from, verdicts, helo_spf)
            envelope_from = envelope_sender(mail_from or f"postmaster@{helo}",
                                            self.routing.domain, self.srs_secret)
            # Its own handling, after its Received stamp (realistic timing only).
            await self.ctx.hold("cloudflare", "cloudflare", message_id, rcpt)
            delay = self.ctx.faults.seconds("forward-delay")
            if delay > 0:
                task = asyncio.get_running_loop().create_task(
                    self._relay_later(delay, envelope_from, rcpt, rule.destination, copy,
                                      message_id, log, rule_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                continue
            reply = await self._relay(envelope_from, rcpt, rule.destination, copy, message_id)
            log(rcpt, "forward", "delivered" if reply.ok else "deliveryFailed", rule_id,
                log_error(reply.code, reply.text) if not reply.ok else "")
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
                           copy: bytes, message_id: str, log: Callable[..., None],
                           rule_id: str) -> None:
        await asyncio.sleep(delay)
        reply = await self._relay(envelope_from, rcpt, destination, copy, message_id)
        log(rcpt, "forward", "delivered" if reply.ok else "deliveryFailed", rule_id,
            log_error(reply.code, reply.text) if not reply.ok else "")

    async def _relay(self, envelope_from: str, rcpt: str, destination: str, copy: bytes,
                     message_id: str) -> Reply:
        var = variant(message_id)
        reply = await self.relay.send(envelope_from, destination, copy, helo=var.host,
                                      source=var.address)
        kind = "relayed" if reply.ok else ("deferred" if reply.transient else "rejected")
        self.ctx.truth.record(kind, "cloudflare", message_id, rcpt, str(reply))
        return reply

    # -- the forwarded copy ---------------------------------------------------

    def _forwarded_copy(self, raw: bytes, rcpt: str, destination: str, ip: str, helo: str,
                        mail_from: str, verdicts: Verdicts, helo_spf: SpfCheck) -> bytes:
        """The copy Cloudflare relays, its headers in the real order (top down):
        DKIM for cloudflare-email.net and for the domain, X-Forwarded-To/For,
        Feedback-ID, its Received, the ARC set (no t= in the seal),
        Received-SPF, Authentication-Results."""
        domain = self.routing.domain
        now = int(time.time())
        var = variant(message_id_of(raw))
        spf = verdicts.spf
        clauses = results_clauses(verdicts, helo_spf, helo, ip)
        msg = prepend(
            raw,
            f"Received-SPF: {spf.result} {_spf_comment(spf)}\r\n\treceiver=mx.cloudflare.net; "
            f'client-ip={ip}; envelope-from="{mail_from}"; helo={helo};',
            "Authentication-Results: mx.cloudflare.net;\r\n\t" + ";\r\n\t".join(clauses),
        )
        if self.ctx.faults.on("body-modified"):
            # After the checks and before the seal: the sender's DKIM breaks,
            # Cloudflare's own signatures and ARC still hold.
            head, body = split(msg)
            msg = head + b"\r\n" + body.rstrip(b"\r\n") + (
                b"\r\n\r\n-- \r\nThis message was scanned by a forwarder.\r\n")
        msg = self._arc_seal(msg, clauses, now)
        msg = prepend(
            msg,
            f"Received: from {helo} ({ip})\r\n        by cloudflare-email.net "
            f"({var.received_word}) id {random_id(12)}\r\n        for <{rcpt}>; {smtp_date(now)}")
        added = [f"X-Forwarded-To: {destination}", f"X-Forwarded-For: {rcpt} {destination}"]
        if var.feedback_id:
            added.append(f"Feedback-ID: {domain}:1:1:Cloudflare")
        if var.spamh_score:
            added.append(f"X-CF-SpamH-Score: {1 if spf.result == 'pass' else 5}")
        msg = prepend(msg, *added)
        for d, key in ((domain, self.ctx.keys.domain),
                       ("cloudflare-email.net", self.ctx.keys.cloudflare)):
            h, names = signed_headers(msg)
            msg = signature(msg, "DKIM-Signature", [
                ("v", "1"), ("a", "rsa-sha256"), ("s", "cf2024-1"), ("d", d),
                ("c", "relaxed/relaxed"), ("h", h), ("t", str(now)), ("x", str(now + WEEK)),
                ("bh", "")], names, key.private_pem) + msg
        return msg

    def _arc_seal(self, msg: bytes, clauses: list[str], now: int) -> bytes:
        """ARC i=1 as Cloudflare writes it: the AAR repeats its AR word for word;
        the seal has no t= (samples/real/)."""
        key = self.ctx.keys.cloudflare.private_pem
        aar = ("ARC-Authentication-Results: i=1; mx.cloudflare.net;\r\n\t"
               + ";\r\n\t".join(clauses) + "\r\n").encode()
        h, names = signed_headers(msg)
        ams = signature(aar + msg, "ARC-Message-Signature", [
            ("i", "1"), ("a", "rsa-sha256"), ("s", "cf2024-1"), ("d", "cloudflare-email.net"),
            ("c", "relaxed/relaxed"), ("h", h), ("t", str(now)), ("x", str(now + WEEK)),
            ("bh", "")], names, key)
        seal = signature(ams + aar + msg, "ARC-Seal", [
            ("i", "1"), ("a", "rsa-sha256"), ("s", "cf2024-1"), ("d", "cloudflare-email.net"),
            ("cv", "none")], ["arc-authentication-results", "arc-message-signature"], key)
        return seal + ams + aar + msg
