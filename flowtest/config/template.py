"""A new flowtest.toml: the commented template ``flowtest init`` writes.

Its comments stay English in every language, on purpose: the file is a
format, not output. It outlives the session that wrote it, is edited and
shared (in issues, on forums, between people who set ``lang`` differently),
and its comments name keys and values that are English whatever the
language and are explained in docs/config.md. A file that changed with
``--lang`` would also make two users' configs differ for no reason. What
``init`` says on screen (questions, errors, the next step) is translated.
"""

from __future__ import annotations

from flowtest import providers

TEMPLATE = '''\
# flowtest.toml: what flowtest checks, and how it logs in.
# Secrets are never written here: give them as env:NAME, file:PATH or
# keyring:SERVICE/USER. See docs/config.md for every key.

# The domain Cloudflare Email Routing receives for.
domain = "{domain}"

# The addresses to test: names (at the domain) or full addresses. At most 200.
aliases = [{aliases}]

# DKIM selectors the doctor checks besides Cloudflare's cf2024-1 (e.g. a relay's).
dkim_selectors = []

# Mail sent as an alias through Gmail fails DMARC for the domain (a known
# limit). false: a warning under p=none, a failure under quarantine/reject.
# true: always a failure (for when you send through a relay that signs for you).
require_dmarc_pass = false

# "live" talks to the real providers; "sandbox" is for configs the sandbox writes.
target = "live"

# After a run, probes are moved to Trash ("trash") or left where they are ("keep").
cleanup = "trash"

[gmail]
# The Gmail account Cloudflare forwards to, and that sends as the aliases.
address = "{gmail}"
# A 16-letter app password (Google Account -> Security -> 2-Step Verification -> App passwords).
app_password = "{gmail_secret}"
provider = "gmail"
smtp = {{ host = "smtp.gmail.com", port = 587, tls = "starttls" }}
imap = {{ host = "imap.gmail.com", port = 993, tls = "implicit" }}

[probe]
# A mailbox at ANOTHER provider: it sends the inbound probes and receives the
# outbound ones. It must not be the Gmail account above (Gmail drops mail it sent itself).
address = "{probe}"
# Its {password_kind}.
password = "{probe_secret}"
# A profile (gmail, outlook, icloud, qq, 163, fastmail, yahoo) fills in the
# servers and how it writes Authentication-Results; "custom" needs them below.
provider = "{provider}"
smtp = {{ host = "{probe_smtp}", port = {smtp_port}, tls = "{smtp_tls}" }}
imap = {{ host = "{probe_imap}", port = 993, tls = "implicit" }}

[dns]
# Empty: the system resolver. Or e.g. ["1.1.1.1", "8.8.8.8"].
nameservers = []

[tls]
# ca_file = "/path/to/ca.pem"   # only for private CAs
insecure = false

[timeouts]
connect_s = 15
command_s = 30
delivery_s = 300

[thresholds]
# A probe slower than warn is a warning; slower than fail is a failure.
latency_warn_s = 95
latency_fail_s = 300

[limits]
# Gmail allows about 15 IMAP connections per account, shared with your phone
# and mail apps; flowtest holds one per mailbox and never more than this.
imap_connections = 2
# Seconds between two submissions in one SMTP session (0: as fast as accepted).
send_interval_s = 0
# Outbound probes through Gmail in any 24 hours (Gmail: about 500 recipients a
# day for all your mail). Counted from reports/history.jsonl; 0: no budget.
daily_sends = 100
'''


SECRET_SOURCES = ("env", "file", "keyring")


def secret_ref(source: str, what: str, account: str) -> str:
    """A reference for a new config: env:NAME, file:PATH or keyring:SERVICE/USER."""
    if source == "env":
        return f"env:FLOWTEST_{what.upper()}"
    if source == "file":
        return f"file:~/.config/flowtest/{what}"
    return f"keyring:flowtest/{account}"


def template(*, domain: str = "example.me", aliases: tuple[str, ...] = ("hello",),
             gmail: str = "you@gmail.com", probe: str = "probe@fastmail.com",
             provider: str = "fastmail", secrets: str = "env") -> str:
    profile = providers.get(provider)
    probe_domain = probe.rpartition("@")[2]
    smtp = profile.smtp if profile else (f"smtp.{probe_domain}", 587, "starttls")
    imap = profile.imap if profile else (f"imap.{probe_domain}", 993, "implicit")
    return TEMPLATE.format(
        domain=domain, aliases=", ".join(f'"{a}"' for a in aliases), gmail=gmail, probe=probe,
        provider=provider if profile else "custom", probe_smtp=smtp[0], smtp_port=smtp[1],
        smtp_tls=smtp[2], probe_imap=imap[0],
        password_kind=profile.password_kind if profile else "password",
        gmail_secret=secret_ref(secrets, "gmail_app_password", gmail),
        probe_secret=secret_ref(secrets, "probe_password", probe))
