"""What the sandbox's DNS publishes: the user's domain as the real setup has
it, and the records of Cloudflare, Google, iCloud and the external provider."""

from __future__ import annotations

from flowtest.sandbox import hosts
from flowtest.sandbox.dns_server import txt_rdata
from flowtest.sandbox.faults import Faults
from flowtest.sandbox.hosts import Names
from flowtest.sandbox.keys import Keyring

Records = dict[str, dict[str, list[str]]]


def _add(records: Records, name: str, rdtype: str, *values: str) -> None:
    records.setdefault(name, {}).setdefault(rdtype, []).extend(values)


def build(names: Names, keys: Keyring, faults: Faults,
          extra: dict[tuple[str, str], list[str] | None] | None = None) -> Records:
    r: Records = {}
    d = names.domain
    # The user's domain, as Cloudflare Email Routing sets it up.
    _add(r, d, "NS", *(f"{ns}." for ns in hosts.CF_NS))
    if faults.on("mx-icloud"):
        _add(r, d, "MX", *(f"10 {h}." for h in hosts.ICLOUD_MX_HOSTS))
    else:
        # The priorities of the setup notes; real zones differ (FACTS.md).
        _add(r, d, "MX", f"66 {hosts.CF_MX_HOSTS[0]}.", f"48 {hosts.CF_MX_HOSTS[1]}.",
             f"5 {hosts.CF_MX_HOSTS[2]}.")
    _add(r, d, "TXT", txt_rdata("v=spf1 include:_spf.mx.cloudflare.net ~all"))
    if faults.on("spf-duplicate"):
        _add(r, d, "TXT", txt_rdata("v=spf1 include:_spf.google.com ~all"))
    if not faults.on("dkim-missing"):
        _add(r, f"cf2024-1._domainkey.{d}", "TXT", txt_rdata(keys.domain.txt))
    policy = "reject" if faults.on("dmarc-reject") else "none"
    _add(r, f"_dmarc.{d}", "TXT", txt_rdata(f"v=DMARC1; p={policy}; rua=mailto:dmarc@{d}"))

    # Cloudflare.
    for host in hosts.CF_MX_HOSTS + hosts.CF_LEGACY_MX_HOSTS:
        _add(r, host, "A", hosts.CF_MX)
    _add(r, "_spf.mx.cloudflare.net", "TXT", txt_rdata(f"v=spf1 ip4:{hosts.CF_NET} ~all"))
    _add(r, hosts.CF_EGRESS_NAME, "A", hosts.CF_EGRESS)
    _add(r, "cloudflare-email.net", "TXT", txt_rdata(f"v=spf1 ip4:{hosts.CF_NET} ~all"))
    _add(r, "cf2024-1._domainkey.cloudflare-email.net", "TXT", txt_rdata(keys.cloudflare.txt))
    for ns in hosts.CF_NS:
        _add(r, ns, "A", hosts.DNS)

    # Google.
    _add(r, "gmail.com", "MX", f"5 {hosts.GMAIL_MX_NAME}.")
    _add(r, "gmail.com", "TXT", txt_rdata("v=spf1 redirect=_spf.google.com"))
    _add(r, "_spf.google.com", "TXT", txt_rdata(f"v=spf1 ip4:{hosts.GMAIL_NET} ~all"))
    _add(r, "_dmarc.gmail.com", "TXT",
         txt_rdata("v=DMARC1; p=none; sp=quarantine; rua=mailto:mailauth-reports@google.com"))
    _add(r, "20230601._domainkey.gmail.com", "TXT", txt_rdata(keys.gmail.txt))
    _add(r, "arc-20240605._domainkey.google.com", "TXT", txt_rdata(keys.google_arc.txt))
    _add(r, hosts.GMAIL_MX_NAME, "A", hosts.GMAIL_MX)
    _add(r, hosts.GMAIL_SMTP_NAME, "A", hosts.GMAIL_SMTP)
    _add(r, hosts.GMAIL_IMAP_NAME, "A", hosts.GMAIL_IMAP)
    _add(r, hosts.GMAIL_EGRESS_NAME, "A", hosts.GMAIL_EGRESS)

    # iCloud, where a forgotten MX still points.
    for host in hosts.ICLOUD_MX_HOSTS:
        _add(r, host, "A", hosts.ICLOUD_MX)

    # The external provider of the probe account.
    e = names.external
    _add(r, e, "MX", f"10 {names.ext_mx}.")
    _add(r, e, "TXT", txt_rdata(f"v=spf1 ip4:{hosts.EXT_NET} -all"))
    _add(r, f"_dmarc.{e}", "TXT", txt_rdata("v=DMARC1; p=quarantine"))
    _add(r, f"s1._domainkey.{e}", "TXT", txt_rdata(keys.external.txt))
    # The key the external provider seals ARC with when it plays Fastmail.
    _add(r, "fm2._domainkey.messagingengine.com", "TXT", txt_rdata(keys.external.txt))
    _add(r, names.ext_smtp, "A", hosts.EXT_SMTP)
    _add(r, names.ext_mx, "A", hosts.EXT_MX)
    _add(r, names.ext_imap, "A", hosts.EXT_IMAP)
    _add(r, names.ext_egress, "A", hosts.EXT_EGRESS)

    # Overrides a test sets up (None removes the records of that type).
    for (name, rdtype), values in (extra or {}).items():
        if values is None:
            r.get(name, {}).pop(rdtype, None)
        else:
            r.setdefault(name, {})[rdtype] = list(values)
    return r


def lookup_in(records: Records, name: str, rdtype: str) -> list[str] | None:
    name = name.lower().rstrip(".")
    if name not in records:
        # A name with children exists (empty non-terminal): NODATA, not NXDOMAIN.
        if any(n.endswith("." + name) for n in records):
            return []
        return None
    return list(records[name].get(rdtype, []))
