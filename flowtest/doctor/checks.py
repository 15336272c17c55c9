"""The DNS doctor: what the Cloudflare Email Routing + Gmail setup needs from
the domain's DNS, what conflicts with it, and what to do about it."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.hazmat.primitives.serialization import load_der_public_key

from flowtest.config import Config
from flowtest.doctor import cloudflare as cloudflare_view
from flowtest.doctor import spf as spf_rules
from flowtest.doctor.findings import Finding
from flowtest.i18n import N_, ngettext
from flowtest.i18n import gettext as _
from flowtest.mail.dmarc import is_dmarc, parse_record
from flowtest.net.dns import Answer, DnsClient

CF_MX = {"route1.mx.cloudflare.net", "route2.mx.cloudflare.net", "route3.mx.cloudflare.net"}
CF_LEGACY_MX = {"amir.mx.cloudflare.net", "linda.mx.cloudflare.net", "isaac.mx.cloudflare.net"}
CF_SPF_INCLUDE = "_spf.mx.cloudflare.net"
CF_DKIM_SELECTOR = "cf2024-1"
# Providers whose MX records are often left behind (FACTS.md, the setup notes).
FOREIGN_MX = {
    "icloud.com": N_("iCloud Mail (custom domain)"), "google.com": "Google Workspace",
    "googlemail.com": "Google Workspace", "outlook.com": "Microsoft 365",
    "zoho.com": "Zoho Mail", "registrar-servers.com": N_("Namecheap's email forwarding"),
    "improvmx.com": "ImprovMX", "forwardemail.net": "Forward Email",
    "mailgun.org": "Mailgun", "secureserver.net": N_("GoDaddy email"),
}


def _fail(answer: Answer, what: str) -> Finding:
    return Finding("DNS_LOOKUP_FAILED", "error",
                   _("The {rdtype} lookup of {name} failed ({status}), so {what} could not be "
                     "checked. This is not an all-clear.").format(
                       rdtype=answer.rdtype, name=answer.name, status=answer.status, what=what),
                   _("Check the resolver in [dns] nameservers, or try again later."))


async def check_domain(dns: DnsClient, domain: str) -> list[Finding]:
    soa = await dns.query(domain, "SOA")
    if soa.failed:
        return [_fail(soa, _("the domain"))]
    if soa.status == "nxdomain":
        return [Finding("DOMAIN_NOT_FOUND", "error",
                        _("{domain} does not exist in DNS (NXDOMAIN): no mail can reach it."
                          ).format(domain=domain),
                        _("Check the spelling, that the registration is active, and that the "
                          "registrar's name servers are Cloudflare's."))]
    return []


async def check_ns(dns: DnsClient, domain: str) -> list[Finding]:
    ns = await dns.query(domain, "NS")
    if ns.failed:
        return [_fail(ns, _("the name servers"))]
    hosts = sorted(ns.records)
    if not hosts:
        return [Finding("NS_MISSING", "error",
                        _("{domain} has no NS records.").format(domain=domain),
                        _("Set the two name servers Cloudflare shows at your registrar."))]
    foreign = [h for h in hosts if not h.endswith(".ns.cloudflare.com")]
    if foreign:
        return [Finding("NS_NOT_CLOUDFLARE", "error",
                        _("{domain} is served by {servers}, not by Cloudflare: the records you "
                          "set up in Cloudflare (MX, SPF, DKIM) are not the ones the world "
                          "sees.").format(domain=domain, servers=", ".join(foreign)),
                        _("At your registrar, replace the name servers with the two "
                          "*.ns.cloudflare.com names Cloudflare assigned to the domain."))]
    return [Finding("NS_OK", "info",
                    _("Delegated to Cloudflare ({servers}).").format(servers=", ".join(hosts)))]


async def check_mx(dns: DnsClient, domain: str) -> list[Finding]:
    mx = await dns.query(domain, "MX")
    if mx.failed:
        return [_fail(mx, _("the MX records"))]
    hosts = {r.split()[-1].rstrip(".") for r in mx.records}
    if not hosts:
        return [Finding("MX_MISSING", "error",
                        _("{domain} has no MX records: senders cannot find where to deliver, "
                          "so mail to every alias bounces or is lost.").format(domain=domain),
                        _("Enable Email Routing in Cloudflare (Email → Email Routing), which "
                          "adds route1/2/3.mx.cloudflare.net."))]
    out: list[Finding] = []
    foreign = sorted(hosts - CF_MX - CF_LEGACY_MX)
    for host in foreign:
        provider = next((_(name) for suffix, name in FOREIGN_MX.items()
                         if host == suffix or host.endswith("." + suffix)),
                        _("another provider"))
        out.append(Finding(
            "MX_FOREIGN", "error",
            _("MX {host} belongs to {provider}, not Cloudflare. Senders pick among all MX "
              "records, so some or all mail goes there instead of being forwarded to Gmail."
              ).format(host=host, provider=provider),
            _("Delete the MX record for {host}; keep only Cloudflare's route1/2/3.").format(
                host=host)))
    if hosts & CF_LEGACY_MX:
        out.append(Finding("MX_LEGACY", "info",
                           _("The MX records use Cloudflare's older names (amir, linda, "
                             "isaac). They still work."),
                           _("Optional: re-enable Email Routing to get route1/2/3.")))
    elif hosts & CF_MX and not hosts >= CF_MX:
        missing = ", ".join(sorted(CF_MX - hosts))
        out.append(Finding("MX_INCOMPLETE", "warning",
                           _("Not all of Cloudflare's MX hosts are published (missing: "
                             "{missing}): less redundancy if one is down.").format(
                               missing=missing),
                           _("Add the missing route*.mx.cloudflare.net records (any "
                             "priority).")))
    if not foreign and not out:
        out.append(Finding("MX_OK", "info", _("MX points only at Cloudflare Email Routing.")))
    return out


async def check_spf(dns: DnsClient, domain: str) -> list[Finding]:
    txt = await dns.query(domain, "TXT")
    if txt.failed:
        return [_fail(txt, "SPF")]
    records = spf_rules.spf_records(txt)
    if not records:
        return [Finding("SPF_MISSING", "error",
                        _("{domain} has no SPF record. Cloudflare forwards with an envelope at "
                          "your domain, so receivers cannot verify its forwarding servers."
                          ).format(domain=domain),
                        _('Add TXT "{record}" at {domain}.').format(
                            record=f"v=spf1 include:{CF_SPF_INCLUDE} ~all", domain=domain))]
    if len(records) > 1:
        return [Finding("SPF_MULTIPLE", "error",
                        _("{domain} publishes {count} SPF records. RFC 7208 makes that a "
                          "permerror: every receiver's SPF check fails for your domain."
                          ).format(domain=domain, count=len(records)),
                        _("Merge them into one v=spf1 record (one include per sender, one "
                          "'all' at the end) and delete the others."))]
    record = records[0]
    out: list[Finding] = []
    parsed = spf_rules.terms(record)
    names = [(name, value.lower()) for _, name, value in parsed]
    if ("include", CF_SPF_INCLUDE) not in names:
        out.append(Finding("SPF_NO_CLOUDFLARE", "error",
                           _("The SPF record does not include {include}: forwarded mail "
                             "leaves Cloudflare with an envelope at your domain that SPF does "
                             "not authorize.").format(include=CF_SPF_INCLUDE),
                           _("Add include:{include} to the record: {record}").format(
                               include=CF_SPF_INCLUDE, record=record)))
    walk = await spf_rules.walk(dns.query, domain, record)
    chain = "; ".join(line.strip() for line in walk.chain)
    if walk.failed:
        out.append(Finding("SPF_LOOKUP_FAILED", "error",
                           _("A DNS lookup inside the SPF record failed, so its lookup count "
                             "is unknown. This is not an all-clear."),
                           _("Run the doctor again later.")))
    if walk.lookups > spf_rules.LOOKUP_LIMIT:
        out.append(Finding("SPF_TOO_MANY_LOOKUPS", "error",
                           _("The SPF record needs {count} DNS lookups; RFC 7208 allows "
                             "{limit}, so receivers answer permerror. Chain: {chain}").format(
                               count=walk.lookups, limit=spf_rules.LOOKUP_LIMIT, chain=chain),
                           _("Remove includes you no longer send through, or replace them "
                             "with ip4:/ip6: ranges.")))
    if walk.voids > spf_rules.VOID_LIMIT:
        out.append(Finding("SPF_TOO_MANY_VOID_LOOKUPS", "error",
                           _("{count} lookups in the SPF record find nothing; more than "
                             "{limit} is a permerror (RFC 7208 §4.6.4).").format(
                               count=walk.voids, limit=spf_rules.VOID_LIMIT),
                           _("Remove the includes and a/mx terms that point at missing "
                             "names.")))
    for problem in walk.problems:
        out.append(Finding("SPF_BROKEN_TERM", "warning",
                           _("In the SPF record: {problem}.").format(problem=problem),
                           _("Fix or remove that term.")))
    alls = [q for q, name, _ in parsed if name == "all"]
    redirect = any(name == "redirect" for _, name, _ in parsed)
    if alls and alls[-1] in ("+", "?"):
        word = (_("+all (anyone may send as you)") if alls[-1] == "+"
                else _("?all (no opinion)"))
        out.append(Finding("SPF_ALL_LOOSE", "warning",
                           _("The SPF record ends in {term}: it protects nothing.").format(
                               term=word),
                           _("End it with ~all (or -all).")))
    elif not alls and not redirect:
        out.append(Finding("SPF_NO_ALL", "warning",
                           _("The SPF record has no 'all' term, so anything not listed is "
                             "'neutral': spoofed mail is not flagged."),
                           _("End the record with ~all.")))
    if ("include", "_spf.google.com") in names:
        out.append(Finding("SPF_GOOGLE_INCLUDE", "info",
                           _("include:_spf.google.com lets Google's servers pass SPF for your "
                             "domain, but Gmail 'Send mail as' uses your gmail.com address as "
                             "the envelope sender, so SPF is checked for gmail.com: this "
                             "include does not make send-as mail align or pass DMARC for your "
                             "domain. It costs lookups toward the limit of 10."),
                           _("Keep it only if you use Google Workspace; DMARC for send-as "
                             "needs a relay that signs DKIM for your domain.")))
    if not out:
        out.append(Finding("SPF_OK", "info", ngettext(
            "One SPF record, {count} lookup, includes Cloudflare: {record}",
            "One SPF record, {count} lookups, includes Cloudflare: {record}",
            walk.lookups).format(count=walk.lookups, record=record)))
    return out


async def check_dkim(dns: DnsClient, domain: str, selectors: tuple[str, ...]) -> list[Finding]:
    out: list[Finding] = []
    for selector in (CF_DKIM_SELECTOR, *selectors):
        name = f"{selector}._domainkey.{domain}"
        answer = await dns.query(name, "TXT")
        if answer.failed:
            out.append(_fail(answer, _("DKIM selector {selector}").format(selector=selector)))
            continue
        records = [r for r in answer.records if "p=" in r]
        if not records:
            if selector == CF_DKIM_SELECTOR:
                out.append(Finding("DKIM_MISSING", "error",
                                   _("No DKIM key at {name}. Cloudflare signs forwarded mail "
                                     "with it; without it the signature for your domain fails "
                                     "at Gmail.").format(name=name),
                                   _("In Cloudflare → Email → Email Routing → Settings, re-add "
                                     "the DKIM record it shows.")))
            else:
                out.append(Finding("DKIM_MISSING", "error",
                                   _("No DKIM key at {name}.").format(name=name),
                                   _("Publish the key for selector {selector}.").format(
                                       selector=selector)))
            continue
        tags = dict(re.findall(r"(\w+)\s*=\s*([^;]*)", records[0]))
        key = re.sub(r"\s+", "", tags.get("p", ""))
        if not key:
            out.append(Finding("DKIM_REVOKED", "error",
                               _("The key at {name} is empty (revoked).").format(name=name),
                               _("Publish the current key.")))
            continue
        try:
            load_der_public_key(base64.b64decode(key, validate=True))
        except (binascii.Error, ValueError, TypeError):
            out.append(Finding("DKIM_BAD_KEY", "error",
                               _("The key at {name} is not a valid public key (a copy-paste "
                                 "error?): every signature with it fails.").format(name=name),
                               _("Copy the record again from Cloudflare, in one piece.")))
            continue
        out.append(Finding("DKIM_OK", "info", _("DKIM key {selector} is published and valid."
                                                ).format(selector=selector)))
    return out


def _forecast(policy: str) -> Finding:
    # FACTS.md: Gmail send-as never aligns with the alias domain. Gmail signs
    # it for gmail.com or not at all (both forms are seen); the doctor sees no
    # message, so it names both.
    fix = _("Keep p=none, or send through an SMTP server that signs DKIM with d=<your "
            "domain> (Cloudflare Email Sending or a mail relay).")
    if policy == "reject":
        return Finding("DMARC_SENDAS_REFUSED", "error", _(
            "Mail you send as the alias through Gmail is signed for gmail.com, or not at all, "
            "and its envelope is your gmail.com address, so it never aligns with your domain "
            "and DMARC fails. Under p=reject receivers refuse it (550 5.7.26)."), fix)
    if policy == "quarantine":
        return Finding("DMARC_SENDAS_SPAM", "warning", _(
            "Mail you send as the alias through Gmail is signed for gmail.com, or not at all, "
            "and its envelope is your gmail.com address, so it never aligns with your domain "
            "and DMARC fails. Under p=quarantine it lands in recipients' spam folders."), fix)
    return Finding("DMARC_SENDAS_NONE", "info", _(
        "Mail you send as the alias through Gmail is signed for gmail.com, or not at all, "
        "and its envelope is your gmail.com address, so it never aligns with your domain "
        "and DMARC fails. Under p=none it is still delivered, perhaps shown 'via gmail.com'."),
        fix)


async def check_dmarc(dns: DnsClient, domain: str) -> tuple[list[Finding], str | None]:
    name = f"_dmarc.{domain}"
    answer = await dns.query(name, "TXT")
    if answer.failed:
        return [_fail(answer, "DMARC")], None
    records = [r for r in answer.records if is_dmarc(r)]
    if not records:
        return [Finding("DMARC_MISSING", "warning",
                        _("No DMARC record at {name}. Large receivers expect one, and without "
                          "it you get no reports of who sends as your domain.").format(
                            name=name),
                        _('Add TXT at {name}: "{record}".').format(
                            name=name, record=f"v=DMARC1; p=none; rua=mailto:you@{domain}"))
                ], None
    if len(records) > 1:
        return [Finding("DMARC_MULTIPLE", "error",
                        _("{name} has {count} DMARC records: receivers then ignore DMARC for "
                          "the domain (RFC 7489 §6.6.3).").format(name=name, count=len(records)),
                        _("Keep one and delete the others."))], None
    record = parse_record(records[0])
    policy = record.policy
    out: list[Finding] = []
    if not policy:
        out.append(Finding("DMARC_BAD_POLICY", "error",
                           _("The DMARC record has no valid p= tag ({record}): receivers treat "
                             "it as invalid.").format(record=records[0]),
                           _("Set p=none, p=quarantine or p=reject.")))
        return out, None
    for uri in record.rua:
        if not re.fullmatch(r"mailto:[^@\s]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}(!\d+[kmgt]?)?", uri):
            out.append(Finding("DMARC_BAD_RUA", "warning",
                               _("rua={uri} is not a mailto: address; aggregate reports go "
                                 "nowhere.").format(uri=uri),
                               _("Use rua=mailto:someone@your-domain.")))
    modes = [f"{k}=s" for k, mode in (("aspf", record.aspf), ("adkim", record.adkim))
             if mode == "s"]
    out.append(Finding("DMARC_OK", "info", (
        _("DMARC policy p={policy}, strict alignment ({modes}).").format(
            policy=policy, modes=", ".join(modes)) if modes else
        _("DMARC policy p={policy}, relaxed alignment.").format(policy=policy))))
    out.append(_forecast(policy))
    return out, policy


async def check_extras(dns: DnsClient, domain: str) -> list[Finding]:
    out = []
    for name, code, what in ((f"_mta-sts.{domain}", "MTA_STS", "MTA-STS"),
                             (f"_smtp._tls.{domain}", "TLS_RPT", "TLS-RPT")):
        answer = await dns.query(name, "TXT")
        if answer.status == "ok" and answer.records:
            out.append(Finding(f"{code}_PRESENT", "info", _("{what} is published at {name}."
                                                            ).format(what=what, name=name)))
    return out


async def diagnose(config: Config) -> list[Finding]:
    """Every finding for the configured domain, most important first."""
    dns = DnsClient(config.dns)
    domain = config.domain
    first = await check_domain(dns, domain)
    if first:
        return first
    dmarc, _policy = await check_dmarc(dns, domain)
    findings = [*await check_ns(dns, domain), *await check_mx(dns, domain),
                *await check_spf(dns, domain),
                *await check_dkim(dns, domain, config.dkim_selectors),
                *dmarc, *await check_extras(dns, domain),
                *await cloudflare_view.diagnose(config, dns)]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: order[f.severity])
