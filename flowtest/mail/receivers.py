"""The trust rule of each receiving provider: how it writes its
Authentication-Results, which hosts are its own, and where its header sits.

From FACTS.md ("How other receivers write Authentication-Results") and the
real messages in tests/data/real/. The provider profiles (flowtest.providers)
take their ``receiver`` from here under the same names; mail/ cannot import
providers, so this is where ``inspect`` finds them too.
"""

from __future__ import annotations

from flowtest.model import Receiver

# iCloud's domain-less internal hosts: "p44-mailgateway-smtp-778464bd6-glqrh",
# "p00-icloudmta-asmtp-us-central-1k-100-percent-4".
_ICLOUD_HOSTS = (r"p\d+-mailgateway-smtp-[\w-]+", r"p\d+-icloudmta-[\w-]+")

PROFILES: dict[str, Receiver] = {r.name: r for r in (
    Receiver("mx.google.com", domains=("google.com",), name="gmail"),
    # Consumer Outlook.com writes no authserv-id (trusted only directly above
    # its entry hop); Microsoft 365 tenants write "mx.microsoft.com 1".
    Receiver("mx.microsoft.com", domains=("outlook.com", "office365.com", "microsoft.com"),
             idless=True, name="outlook"),
    Receiver("mx.microsoft.com", domains=("outlook.com", "office365.com", "microsoft.com"),
             idless=True, name="office365"),
    Receiver(r"[\w.-]*\.icloud\.com", pattern=True, domains=("icloud.com", "me.com", "apple.com",
                                                               "mac.com"),
             hosts=_ICLOUD_HOSTS, merge=True, name="icloud",
             method_ids=(("dmarc", "dmarc.icloud.com"), ("dkim", "dkim-verifier.icloud.com"),
                         ("spf", "spf.icloud.com"), ("bimi", "bimi.icloud.com"),
                         ("arc", "arc.icloud.com"))),
    Receiver(r"(?:[\w-]+\.)*qq\.com", pattern=True, domains=("qq.com",), name="qq"),
    # Coremail: a bare host as the id ("mx19"), appended below the message's headers.
    Receiver(r"mx\d*|(?:[\w-]+\.)*(?:163|126|yeah|netease)\.(?:com|net)", pattern=True,
             domains=("163.com", "126.com", "yeah.net", "netease.com"), hosts=(r"mx\d+",),
             position="appended", name="163"),
    Receiver(r"mx\d*\.messagingengine\.com", pattern=True,
             domains=("messagingengine.com", "fastmail.com"), merge=True, name="fastmail"),
    Receiver(r"atlas[\w.-]*\.yahoo\.com", pattern=True, domains=("yahoo.com",), name="yahoo"),
)}


def profile(name: str) -> Receiver | None:
    return PROFILES.get(name.lower())
