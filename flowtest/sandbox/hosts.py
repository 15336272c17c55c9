"""Who lives where in the sandbox: one 127.0.x.y address per host.

Outgoing connections bind their host's address, so SPF is evaluated on the
real source address of each hop. The networks mirror the real ones: Cloudflare
egress in its SPF range, Google's in ``_spf.google.com``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

DNS = "127.0.0.2"

CF_MX = "127.0.1.1"         # route{1,2,3}.mx.cloudflare.net (and the legacy names)
CF_EGRESS = "127.0.1.8"     # i-xx.cloudflare-email.net, the forwarder's source address
# Its forwarding hosts vary per message (104.30.8-10.x in real samples).
CF_EGRESS_ADDRESSES = ("127.0.1.8", "127.0.1.9", "127.0.1.10")
CF_NET = "127.0.1.0/24"     # stands in for Cloudflare's 104.30.0.0/20

GMAIL_MX = "127.0.2.1"      # gmail-smtp-in.l.google.com
GMAIL_SMTP = "127.0.2.2"    # smtp.gmail.com
GMAIL_IMAP = "127.0.2.3"    # imap.gmail.com
GMAIL_EGRESS = "127.0.2.9"  # mail-sor-f41.google.com
GMAIL_NET = "127.0.2.0/24"  # stands in for _spf.google.com's ranges

EXT_SMTP = "127.0.3.1"
EXT_MX = "127.0.3.2"
EXT_IMAP = "127.0.3.3"
EXT_EGRESS = "127.0.3.9"
EXT_NET = "127.0.3.0/24"

ICLOUD_MX = "127.0.4.1"     # mx01/mx02.mail.icloud.com, for the mx-icloud fault


@dataclass(frozen=True)
class Names:
    """Host and account names of one world."""

    domain: str = "example.me"
    external: str = "sender.example"

    @property
    def ext_smtp(self) -> str:
        return f"smtp.{self.external}"

    @property
    def ext_mx(self) -> str:
        return f"mx.{self.external}"

    @property
    def ext_imap(self) -> str:
        return f"imap.{self.external}"

    @property
    def ext_egress(self) -> str:
        return f"out.{self.external}"


CF_MX_HOSTS = ("route1.mx.cloudflare.net", "route2.mx.cloudflare.net", "route3.mx.cloudflare.net")
CF_LEGACY_MX_HOSTS = ("amir.mx.cloudflare.net", "linda.mx.cloudflare.net",
                      "isaac.mx.cloudflare.net")
CF_EGRESS_NAME = "i-1a2b.cloudflare-email.net"
CF_NS = ("ada.ns.cloudflare.com", "bob.ns.cloudflare.com")
GMAIL_MX_NAME = "gmail-smtp-in.l.google.com"
GMAIL_SMTP_NAME = "smtp.gmail.com"
GMAIL_IMAP_NAME = "imap.gmail.com"
GMAIL_EGRESS_NAME = "mail-sor-f41.google.com"
ICLOUD_MX_HOSTS = ("mx01.mail.icloud.com", "mx02.mail.icloud.com")
