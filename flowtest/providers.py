"""What we know of the mail providers people use with this setup: endpoints,
how they stamp Authentication-Results, their Spam folder, the kind of password
they want, and their known limits. A profile name in the config fills in the
rest; anything can be overridden there.

Facts marked ``confirmed=False`` come from the providers' help pages and
public header samples but were not checked against a live account here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from flowtest.i18n import N_
from flowtest.mail.orgdomain import org_domain
from flowtest.mail.receivers import PROFILES as RECEIVERS
from flowtest.model import Receiver


@dataclass(frozen=True)
class Provider:
    name: str
    label: str
    smtp: tuple[str, int, str]          # host, port, tls mode
    imap: tuple[str, int, str]
    receiver: Receiver
    spam_folder: str                    # its usual name; flowtest finds it by \\Junk
    # People's words, marked for the catalog: translate them where shown, _(…).
    password_kind: str                  # what the login wants
    login_hint: str                     # what to do when the login is refused
    limits: str = ""
    confirmed: bool = False


PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider(
        "gmail", "Gmail", ("smtp.gmail.com", 587, "starttls"), ("imap.gmail.com", 993, "implicit"),
        RECEIVERS["gmail"], "[Gmail]/Spam", N_("app password"),
        N_("Create an app password (Google Account → Security → 2-Step Verification → "
           "App passwords); it needs 2-Step Verification, and changing the account password "
           "revokes it."),
        "about 500 recipients a day; about 15 IMAP connections", confirmed=True),
    Provider(
        "outlook", "Outlook.com / Hotmail", ("smtp-mail.outlook.com", 587, "starttls"),
        ("outlook.office365.com", 993, "implicit"),
        RECEIVERS["outlook"], "Junk", N_("password or app password"),
        N_("Outlook.com accounts may refuse password logins for IMAP/SMTP (Microsoft moved "
           "personal accounts to OAuth2); with 2-step verification use an app password, and "
           "check that POP and IMAP are allowed in Outlook's settings."),
        "Authentication-Results carries no authserv-id; about 300 recipients a day"),
    Provider(
        "office365", "Microsoft 365 (work or school)", ("smtp.office365.com", 587, "starttls"),
        ("outlook.office365.com", 993, "implicit"),
        RECEIVERS["office365"], "Junk Email",
        N_("OAuth2 or an app password where the tenant allows"),
        N_("Microsoft 365 tenants usually refuse password logins for IMAP/SMTP (OAuth2 only); ask "
           "the tenant's admin whether SMTP AUTH and IMAP are enabled for the account."),
        "Authentication-Results: mx.microsoft.com 1; the tenant's admin sets the limits"),
    Provider(
        "icloud", "iCloud Mail", ("smtp.mail.me.com", 587, "starttls"),
        ("imap.mail.me.com", 993, "implicit"),
        RECEIVERS["icloud"],
        "Junk", N_("app-specific password"),
        N_("Use an app-specific password (appleid.apple.com → Sign-In and Security); the Apple "
           "ID password is refused."),
        "about 1000 messages a day"),
    Provider(
        "qq", "QQ Mail", ("smtp.qq.com", 465, "implicit"), ("imap.qq.com", 993, "implicit"),
        RECEIVERS["qq"], "Junk",
        N_("authorization code (授权码)"),
        N_("QQ Mail wants the authorization code from Settings → Account → POP3/IMAP/SMTP, not "
           "the QQ password; enable IMAP/SMTP there first.")),
    Provider(
        "163", "NetEase 163 Mail", ("smtp.163.com", 465, "implicit"),
        ("imap.163.com", 993, "implicit"),
        RECEIVERS["163"],
        "垃圾邮件", N_("authorization code (授权码)"),
        N_("163 wants the client authorization code from Settings → POP3/SMTP/IMAP, not the "
           "login password; enable IMAP/SMTP there first."),
        "IMAP refuses SELECT ('Unsafe Login') from clients that do not send the IMAP ID command"),
    Provider(
        "fastmail", "Fastmail", ("smtp.fastmail.com", 465, "implicit"),
        ("imap.fastmail.com", 993, "implicit"),
        RECEIVERS["fastmail"],
        "Spam", N_("app password"),
        N_("Create an app password with IMAP and SMTP access (Settings → Privacy & Security → "
           "App passwords); the account password is refused.")),
    Provider(
        "yahoo", "Yahoo Mail", ("smtp.mail.yahoo.com", 465, "implicit"),
        ("imap.mail.yahoo.com", 993, "implicit"),
        RECEIVERS["yahoo"],
        "Bulk", N_("app password"),
        N_("Generate an app password (Account security → Generate app password); the account "
           "password is refused.")),
)}


def get(name: str) -> Provider | None:
    return PROVIDERS.get(name.lower())


def receiver_for(provider: str, authserv_id: str | None, account_domain: str,
                 fallback: str = "") -> Receiver:
    """The Receiver to trust for an account: the profile's trust rule, with the
    config's authserv_id in place of the profile's ids if given; with no
    profile, the authserv_id or else ``fallback`` (e.g. the IMAP host). The
    account's own domain always counts as the provider's."""
    own = org_domain(account_domain) if account_domain else ""
    profile = get(provider)
    if profile is not None:
        r = profile.receiver
        if authserv_id is not None:
            r = replace(r, authserv=authserv_id.split()[0] if authserv_id.split() else "",
                        pattern=False, ids=(), method_ids=(), idless=not authserv_id.strip())
        return replace(r, domains=tuple(dict.fromkeys((*r.domains, own) if own else r.domains)))
    rid = authserv_id if authserv_id is not None else fallback
    first = rid.split()[0] if rid.split() else ""
    domains = (org_domain(first),) if first else ()
    # An ad-hoc receiver may spread its verdict over several headers.
    return Receiver(first, domains=tuple(dict.fromkeys((*domains, own) if own else domains)),
                    merge=True, idless=not first)
