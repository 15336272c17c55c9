"""Faults by name: small, named, composable breakages of the world.

A fault is ``name`` or ``name=value``. They can be given when the world starts
or switched at run time; every party reads them at the moment it acts.
"""

from __future__ import annotations

import threading

from flowtest.errors import UnknownFault
from flowtest.i18n import LazyString, lazy_gettext
from flowtest.i18n import gettext as _

# What `flowtest sandbox --list-faults` says of each, in the reader's language.
CATALOGUE: dict[str, LazyString] = {
    "forward-drop": lazy_gettext(
        "Cloudflare accepts mail for the aliases and never forwards it"),
    "forward-delay": lazy_gettext(
        "Cloudflare forwards after S seconds (forward-delay=S, default 5)"),
    "no-rule": lazy_gettext(
        "no routing rule for the aliases, or for one (no-rule=ADDRESS): 550 5.1.1"),
    "spam": lazy_gettext(
        "Gmail files forwarded mail in Spam"),
    "mx-icloud": lazy_gettext(
        "the domain's MX still points at iCloud Mail instead of Cloudflare"),
    "spf-duplicate": lazy_gettext(
        "the domain publishes two v=spf1 records (SPF permerror everywhere)"),
    "dkim-missing": lazy_gettext(
        "the domain's cf2024-1._domainkey record is missing"),
    "dmarc-reject": lazy_gettext(
        "the domain's DMARC policy is p=reject"),
    "sendas-unverified": lazy_gettext(
        "the alias is not a verified Send-mail-as address in Gmail"),
    "sendas-unsigned": lazy_gettext(
        "Gmail does not sign send-as mail: no DKIM-Signature, only X-Google-DKIM-Signature "
        "d=1e100.net"),
    "bad-app-password": lazy_gettext(
        "Gmail refuses the app password (SMTP 535 5.7.8, IMAP AUTHENTICATIONFAILED)"),
    "gmail-tempfail": lazy_gettext(
        "Gmail's MX answers 421 4.7.0 to Cloudflare, which passes it back"),
    "body-modified": lazy_gettext(
        "Cloudflare alters the body after its checks (DKIM breaks, ARC holds)"),
    "imap-drop": lazy_gettext(
        "Gmail IMAP cuts every open connection when new mail arrives"),
    "spoofed-ar": lazy_gettext(
        "the sender adds a forged Authentication-Results claiming mx.google.com"),
    "duplicate": lazy_gettext(
        "Cloudflare forwards each message twice"),
    "gmail-send-limit": lazy_gettext(
        "smtp.gmail.com refuses all sending: 550 5.4.5 Daily user sending limit exceeded"),
    "cf-destination-unverified": lazy_gettext(
        "the Gmail address is not a verified destination in Cloudflare, so its rules stay "
        "disabled (550 5.1.1)"),
    "cf-rule-disabled": lazy_gettext(
        "the routing rules are disabled in Cloudflare, or one (cf-rule-disabled=ADDRESS): 550 "
        "5.1.1"),
    "cf-routing-misconfigured": lazy_gettext(
        "Email Routing's status is misconfigured: the SPF record it expects is missing from "
        "DNS"),
    "cf-token-scope": lazy_gettext(
        "the API token lacks a permission (cf-token-scope=NAME, default Email Routing "
        "Addresses Read)"),
    "cf-log-lag": lazy_gettext(
        "Cloudflare's activity log shows rows S seconds late (cf-log-lag=S, default 60)"),
    "cf-catch-all-drop": lazy_gettext(
        "the catch-all is enabled with action drop: mistyped addresses vanish"),
    "gmail-silent-discard": lazy_gettext(
        "Gmail answers 250 to Cloudflare and never files the message (Cloudflare's log says "
        "delivered)"),
}

# What a read-only token for flowtest holds (the dashboard's names, docs/setup.md);
# cf-token-scope=NAME takes one away.
TOKEN_PERMISSIONS = ("Zone Read", "Zone Settings Read", "Email Routing Rules Read",
                     "Email Routing Addresses Read", "Analytics Read")

# Faults that only change DNS answers (the doctor's business).
DNS_FAULTS = frozenset({"mx-icloud", "spf-duplicate", "dkim-missing", "dmarc-reject"})


def parse(spec: str) -> tuple[str, str | None]:
    name, sep, value = spec.strip().partition("=")
    name = name.strip()
    if name not in CATALOGUE:
        raise UnknownFault(name, sorted(CATALOGUE))
    if name == "cf-log-lag":
        value = value or "60"
    if name == "cf-token-scope" and value and value.strip() not in TOKEN_PERMISSIONS:
        raise UnknownFault(_("{fault} (NAME is one of {names})").format(
            fault=f"{name}={value}", names=", ".join(TOKEN_PERMISSIONS)), sorted(CATALOGUE))
    if name in ("forward-delay", "cf-log-lag"):
        value = value or "5"
        try:
            if float(value) < 0:
                raise ValueError
        except ValueError:
            raise UnknownFault(_("{fault} (S must be seconds >= 0)").format(
                fault=f"{name}={value}"), sorted(CATALOGUE)) from None
    return name, (value.strip() if sep or value else None)


class Faults:
    """The active faults. Thread-safe: the world's parties and tests share it."""

    def __init__(self, specs: list[str] | tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, str | None] = {}
        for spec in specs:
            self.set(spec)

    def set(self, spec: str) -> None:
        name, value = parse(spec)
        with self._lock:
            self._active[name] = value

    def clear(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._active.clear()
            else:
                self._active.pop(parse(name)[0], None)

    def on(self, name: str) -> bool:
        with self._lock:
            return name in self._active

    def value(self, name: str) -> str | None:
        with self._lock:
            return self._active.get(name)

    def seconds(self, name: str) -> float:
        value = self.value(name)
        return float(value) if value else 0.0

    def active(self) -> dict[str, str | None]:
        with self._lock:
            return dict(self._active)

    def __repr__(self) -> str:
        return "Faults(" + ", ".join(
            n if v is None else f"{n}={v}" for n, v in self.active().items()) + ")"
