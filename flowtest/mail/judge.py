"""Turning what was observed into a verdict and sentences a person can act on.

Every sentence comes as a :class:`~flowtest.model.Diagnosis` with a stable
upper-case code from :mod:`flowtest.mail.codes`, so scripts, notifications
and translations key on the code, never on the wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from flowtest.i18n import gettext as _
from flowtest.i18n import ngettext
from flowtest.mail import text
from flowtest.mail.bounce import Bounce
from flowtest.mail.codes import CODES, finding, verdict_of
from flowtest.model import AuthVerdict, Diagnosis, Thresholds, Verdict

__all__ = ["CODES", "InboundFacts", "OutboundFacts", "finding", "judge_inbound",
           "judge_outbound", "submission_refused", "verdict_of"]

CLOUDFLARE_MX_SUFFIX = ".mx.cloudflare.net"


def _fmt_s(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


_quote = text.quote  # a remote server's words: one line, inert, bounded


@dataclass(frozen=True)
class InboundFacts:
    alias: str
    sender_domain: str
    folder_roles: tuple[str, ...]       # one per copy found: inbox, spam, other
    latency_s: float | None
    intact: bool | None
    auth: AuthVerdict | None            # Gmail's trusted verdict
    relay_auth: AuthVerdict | None      # Cloudflare's own verdict (its AAR)
    bounces: tuple[Bounce, ...]
    waited_s: float
    reconnects: int = 0
    # The domain's MX hosts when a bounce made them matter; None: not looked
    # up, or the lookup failed (then no MX verdict is drawn from them).
    mx_hosts: tuple[str, ...] | None = None


def is_cloudflare(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "mx.cloudflare.net" or host.endswith(CLOUDFLARE_MX_SUFFIX) \
        or host.endswith(".cloudflare-email.net") or host == "cloudflare-email.net"


# Gmail's own words, which Cloudflare passes back in the same session
# (FACTS.md): its replies end in "- gsmtp" and point at support.google.com.
_GMAIL_WORDS = re.compile(r"gsmtp|support\.google\.com|email account that you tried to reach",
                          re.IGNORECASE)
# Cloudflare's own refusal of an address it has no rule for (FACTS.md).
_CF_NO_RULE = "address does not exist"


def _who(b: Bounce) -> str:
    who = b.remote_mta or _("the receiving server")
    if b.reporting_mta and b.reporting_mta != b.remote_mta:
        return _("{server} (reported by {reporter})").format(server=who,
                                                             reporter=b.reporting_mta)
    return who


def _no_reason() -> str:
    return _("no reason given")


def _final_bounce(facts: InboundFacts, b: Bounce) -> Diagnosis:
    alias = facts.alias
    diag = _quote(b.diagnostic or b.status or _no_reason())
    remote = b.remote_mta.lower()
    gmail_words = _GMAIL_WORDS.search(b.diagnostic) is not None
    if is_cloudflare(remote):
        if gmail_words:
            # 5.1.1 no such user; 5.2.1 "The email account that you tried to reach
            # is disabled": either way the rule's destination cannot receive.
            if b.status in ("5.1.1", "5.2.1") or "does not exist" in diag.lower():
                return finding("GMAIL_ACCOUNT_GONE", "fail", _(
                    "Gmail refused the copy Cloudflare forwarded for {alias}: the destination "
                    "Gmail account does not exist or is disabled ({reply}). Cloudflare passed "
                    "Gmail's answer back to the sender; its routing rule is fine. Point the "
                    "rule at an existing, verified destination address under Email Routing → "
                    "Destination addresses, or restore the Gmail account.").format(
                        alias=alias, reply=diag))
            return finding("GMAIL_REFUSED", "fail", _(
                "Gmail refused the copy Cloudflare forwarded for {alias} ({reply}). "
                "Cloudflare does not queue: it passed Gmail's answer back to the sender."
            ).format(alias=alias, reply=diag))
        if _CF_NO_RULE in diag.lower() or b.status == "5.1.1":
            return finding("NO_ROUTING_RULE", "fail", _(
                "Cloudflare refused {alias}: no routing rule matches it ({reply}). Add a "
                "rule for it (or a catch-all) under Email Routing → Routing rules."
            ).format(alias=alias, reply=diag))
        return finding("CLOUDFLARE_REFUSED", "fail", _(
            "Cloudflare refused the probe itself: {server} answered {reply}. Cloudflare "
            "refuses mail that passes neither SPF nor DKIM, fails the sender's DMARC policy, "
            "or comes from a blocklisted server: check the probe account's own setup."
        ).format(server=b.remote_mta, reply=diag))
    mx = facts.mx_hosts
    if mx is not None and not mx:
        return finding("MX_MISSING", "fail", _(
            "The probe bounced ({server} answered {reply}) and the domain publishes no MX "
            "record, so senders cannot find Cloudflare. Enable Email Routing, which adds "
            "route1/2/3.mx.cloudflare.net. Run `flowtest doctor`."
        ).format(server=_who(b), reply=diag))
    foreign = [h for h in mx or () if not is_cloudflare(h)]
    if foreign and (b.code or 0) >= 500:
        return finding("MX_FOREIGN", "fail", _(
            "The domain's mail went to {server}, not to Cloudflare, and was refused "
            "({reply}). The domain's MX records list {hosts}: replace them with Cloudflare's "
            "route1/2/3.mx.cloudflare.net."
        ).format(server=b.remote_mta or _("another server"), reply=diag,
                 hosts=", ".join(foreign)))
    return finding("BOUNCED", "fail", _("The probe bounced: {server} answered {reply}.").format(
        server=_who(b), reply=diag))


def _delay(facts: InboundFacts, b: Bounce) -> Diagnosis:
    diag = _quote(b.diagnostic or b.status or _no_reason())
    lower = diag.lower()
    if ("4.7" in diag or lower.startswith("421")) and (
            is_cloudflare(b.remote_mta) or _GMAIL_WORDS.search(b.diagnostic)):
        return finding("GMAIL_TEMPFAIL", "fail", _(
            "Gmail refused the forwarded copy for now ({reply}). Cloudflare does not queue: "
            "it passes the error back and the sender's server retries later, so mail is "
            "delayed, possibly for hours.").format(reply=diag))
    return finding("DELAYED", "warn", _(
        "Delivery is delayed: {server} answered {reply}; the sender's server is retrying."
    ).format(server=_who(b), reply=diag))


def _relay_findings(facts: InboundFacts) -> tuple[list[Diagnosis], list[Diagnosis]]:
    """Cloudflare's own verdict on arrival: (problems, notes)."""
    relay = facts.relay_auth
    if relay is None or not relay.found:
        return [], [finding("CLOUDFLARE_VERDICT_MISSING", "pass", _(
            "The message carries no ARC-Authentication-Results of mx.cloudflare.net, so "
            "Cloudflare's own verdict is unknown (did it pass through Email Routing?)."))]
    sender = relay.header_from or relay.dmarc.domain or facts.sender_domain
    problems: list[Diagnosis] = []
    if relay.spf.result in ("fail", "softfail", "permerror"):
        problems.append(finding("CLOUDFLARE_SAW_SPF_FAIL", "warn", _(
            "Cloudflare saw SPF {result} for the probe's sender ({domain}): the probe "
            "account's server is not in its domain's SPF record. Cloudflare forwards only "
            "mail that passes SPF or carries a DKIM signature."
        ).format(result=relay.spf.result, domain=relay.spf.domain or sender)))
    if relay.dmarc.result == "fail":
        problems.append(finding("CLOUDFLARE_SAW_DMARC_FAIL", "warn", _(
            "Cloudflare saw DMARC fail for the probe's sender ({domain}): it enforces the "
            "sender's DMARC policy, so under p=quarantine or p=reject such mail is refused. "
            "Use a probe account whose mail authenticates.").format(domain=sender)))
    dkim = relay.dkim.result if relay.dkim_all else "none"
    note = finding("CLOUDFLARE_VERDICT", "pass", _(
        "Cloudflare's verdict on arrival: SPF {spf}, DKIM {dkim}, DMARC {dmarc} for {domain}."
    ).format(spf=relay.spf.result, dkim=dkim, dmarc=relay.dmarc.result, domain=sender))
    return problems, [note]


def judge_inbound(facts: InboundFacts, thresholds: Thresholds) -> list[Diagnosis]:
    """The diagnosis of an inbound probe, problems first; the verdict is
    :func:`verdict_of` the result."""
    if not facts.folder_roles:
        final = [b for b in facts.bounces if b.final]
        if final:
            return [_final_bounce(facts, b) for b in final]
        if facts.bounces:
            return [*(_delay(facts, b) for b in facts.bounces),
                    finding("INBOUND_TIMEOUT", "fail",
                            _("No copy reached Gmail within {waited}.").format(
                                waited=_fmt_s(facts.waited_s)))]
        return [finding("INBOUND_LOST", "fail", _(
            "Lost: no copy reached Gmail (INBOX or Spam) within {waited}, and no bounce came "
            "back. The probe account's server accepted it, so it was lost after that: "
            "Cloudflare accepted it and did not forward it, a drop rule matched, or "
            "forwarding is slower than the timeout. Check Email Routing → Activity log."
        ).format(waited=_fmt_s(facts.waited_s)))]
    said: list[Diagnosis] = []
    roles = facts.folder_roles
    if "spam" in roles:
        dis = facts.auth.dmarc_disposition if facts.auth else ""
        said.append(finding("SPAM_FOLDER", "fail", _(
            "Delivered to Gmail's Spam folder because DMARC asked for quarantine: the user "
            "will not see it. Mark it 'Not spam', or add a filter that never sends it to Spam."
        ) if dis == "quarantine" else _(
            "Delivered to Gmail's Spam folder: the user will not see it. Mark it 'Not spam', "
            "or add a filter that never sends it to Spam.")))
    else:
        said.append(finding("INBOUND_DELIVERED", "pass", _("Delivered to the Gmail inbox.")))
    if len(roles) > 1:
        said.append(finding("DUPLICATE_DELIVERY", "warn", ngettext(
            "Delivered {count} time: the same message arrived more than once (a forwarding "
            "loop, a duplicate rule, or a retry after a lost reply).",
            "Delivered {count} times: the same message arrived more than once (a forwarding "
            "loop, a duplicate rule, or a retry after a lost reply).", len(roles)
        ).format(count=len(roles))))
    said += _latency(facts.latency_s, thresholds, detail=True)
    auth = facts.auth
    original_dkim_failed = auth is not None and any(
        d.domain == facts.sender_domain and d.result != "pass" for d in auth.dkim_all)
    if facts.intact is False or original_dkim_failed:
        arc_ok = auth is not None and auth.arc.result == "pass"
        said.append(finding("ALTERED_IN_TRANSIT", "warn", _altered(original_dkim_failed,
                                                                   arc_ok)))
    if auth is None or not auth.found:
        said.append(finding("GMAIL_AR_MISSING", "warn", _(
            "Gmail's own Authentication-Results header is missing, so the auth results could "
            "not be read.")))
    else:
        if auth.ignored:
            # The verdicts above come from Gmail's own header only; a forgery is
            # still worth a warning: something on the path writes in Gmail's name.
            said.append(finding("FORGED_AR_IGNORED", "warn", ngettext(
                "Ignored {count} Authentication-Results header that claims to be from "
                "{authserv_id} but sits below Gmail's own: written by someone else (the "
                "sender or a server on the way), never trusted.",
                "Ignored {count} Authentication-Results headers that claim to be from "
                "{authserv_id} but sit below Gmail's own: written by someone else (the "
                "sender or a server on the way), never trusted.", auth.ignored
            ).format(count=auth.ignored, authserv_id=auth.authserv_id)))
        domain = facts.alias.rpartition("@")[2]
        for d in auth.dkim_all:
            if d.domain == domain and d.result != "pass":
                said.append(finding("CLOUDFLARE_DKIM_FAIL", "warn", _(
                    "Cloudflare's DKIM signature for {domain} did not verify at Gmail "
                    "(dkim={result}): the cf2024-1._domainkey.{domain} record is missing "
                    "or out of date. Run `flowtest doctor`.").format(domain=domain,
                                                                    result=d.result)))
                break
        if auth.spf.result != "pass" and auth.arc.result != "pass":
            said.append(finding("FORWARD_SPF_FAIL", "warn", _(
                "SPF for the forwarded copy is {result} (envelope {domain}); the domain's SPF "
                "record should include _spf.mx.cloudflare.net exactly once."
            ).format(result=auth.spf.result, domain=auth.spf.domain)))
        elif auth.spf.result in ("permerror", "temperror"):
            said.append(finding("FORWARD_SPF_ERROR", "warn", _(
                "SPF for the domain is {result}: Gmail could not evaluate it (two v=spf1 "
                "records, or too many lookups). Run `flowtest doctor`."
            ).format(result=auth.spf.result)))
    problems, notes = _relay_findings(facts)
    said += problems
    if facts.reconnects:
        said.append(finding("IMAP_RECONNECTED", "warn", ngettext(
            "The IMAP connection dropped {count} time; flowtest reconnected and kept "
            "watching. Mail apps on this mailbox may miss new mail too.",
            "The IMAP connection dropped {count} times; flowtest reconnected and kept "
            "watching. Mail apps on this mailbox may miss new mail too.", facts.reconnects
        ).format(count=facts.reconnects)))
    return said + notes


def _altered(dkim_failed: bool, arc_ok: bool) -> str:
    # Whole sentences, one per case: a translator reorders them freely.
    if dkim_failed and arc_ok:
        return _("Altered in transit: the content differs from what was sent and the "
                 "sender's DKIM signature no longer verifies; Gmail still trusted "
                 "Cloudflare's ARC seal, so it was delivered.")
    if dkim_failed:
        return _("Altered in transit: the content differs from what was sent and the "
                 "sender's DKIM signature no longer verifies.")
    if arc_ok:
        return _("Altered in transit: the content differs from what was sent; Gmail still "
                 "trusted Cloudflare's ARC seal, so it was delivered.")
    return _("Altered in transit: the content differs from what was sent.")


def _latency(latency_s: float | None, thresholds: Thresholds, *,
             detail: bool) -> list[Diagnosis]:
    if latency_s is None:
        return []
    took = _fmt_s(latency_s)
    if latency_s > thresholds.latency_fail_s:
        limit = _fmt_s(thresholds.latency_fail_s)
        return [finding("LATE", "fail", _(
            "Late: it took {took}, over the {limit} failure threshold.").format(
                took=took, limit=limit) if detail else _("Late: it took {took}.").format(
                    took=took))]
    if latency_s > thresholds.latency_warn_s:
        limit = _fmt_s(thresholds.latency_warn_s)
        return [finding("SLOW", "warn", _(
            "Slow: it took {took}, over the {limit} warning threshold.").format(
                took=took, limit=limit) if detail else _("Slow: it took {took}.").format(
                    took=took))]
    return []


DmarcRecordState = Literal["found", "absent", "several", "unknown"]


@dataclass(frozen=True)
class OutboundFacts:
    alias: str
    gmail_address: str
    folder_roles: tuple[str, ...]       # the copies found at the receiver
    latency_s: float | None
    intact: bool | None
    auth: AuthVerdict | None            # the receiver's trusted verdict
    from_header: str                    # From: as received
    original_from: str                  # X-Google-Original-From:, if Gmail rewrote From
    envelope: str                       # Return-Path as received
    dmarc_policy: str                   # p= of the alias domain ("" if unknown)
    bounces: tuple[Bounce, ...]
    waited_s: float
    expect_dmarc_pass: bool = False
    sender_header: str = ""             # Sender:, which Gmail adds when it signs or rewrites
    # From the raw message: a DKIM-Signature with d=gmail.com (True), none by
    # Gmail (False), or no message to look at (None).
    gmail_signed: bool | None = None
    # What the DMARC lookup of the alias domain found: "unknown" when it
    # timed out or failed, which is not "the domain publishes no policy".
    dmarc_record: DmarcRecordState = "found"
    dmarc_detail: str = ""              # how the lookup failed, for the sentence


def _domain(address: str) -> str:
    return address.strip().strip("<>").rpartition("@")[2].lower()


def _address(header: str) -> str:
    m = re.search(r"<([^<>]*)>", header)
    return (m.group(1) if m else header).strip()


def _setup_mistakes(facts: OutboundFacts) -> Diagnosis:
    domain = _domain(facts.alias)
    local = facts.alias.rpartition("@")[0]
    return finding("SENDAS_SETUP_MISTAKES", "fail", _(
        "In the 'Add another email address' dialog, the usual mistakes are: keeping the "
        "prefilled SMTP server smtp.{domain} (use smtp.gmail.com, or your relay's host); "
        "leaving the user name as the alias's local part ({local}) instead of the full "
        "login ({login}); the account password instead of an app password; port 587 with "
        "SSL or 465 with TLS (587 goes with TLS, 465 with SSL). Then click the link in "
        "Gmail's verification mail.").format(domain=domain, local=local,
                                              login=facts.gmail_address))


def _dmarc_lookup_failed(facts: OutboundFacts) -> list[Diagnosis]:
    if facts.dmarc_record != "unknown":
        return []
    domain = _domain(facts.alias)
    return [finding("DMARC_LOOKUP_FAILED", "warn", _(
        "The DMARC record of {domain} could not be read ({detail}): the lookup failed, "
        "which is not the same as no policy. The verdict below goes by what the receiver "
        "reported. Run `flowtest doctor` again, or check the resolver in [dns]."
    ).format(domain=domain, detail=facts.dmarc_detail or "?"))]


def _consequence(facts: OutboundFacts, auth: AuthVerdict) -> tuple[str, bool]:
    """What the DMARC failure leads to, in the receiver's own words where it
    wrote them (dis=), else under the published policy; and whether that is
    a failure (spam or refusal)."""
    dis = auth.dmarc_disposition
    policy = facts.dmarc_policy or auth.dmarc_policy
    strict = policy in ("quarantine", "reject")
    if dis:
        words = {"none": _("it applied no action, so the message is delivered (maybe shown "
                           "'via gmail.com')"),
                 "quarantine": _("it quarantined the message: spam folder"),
                 "reject": _("it would refuse the message")}.get(dis, _("see its header"))
        if policy:
            text = _("The receiver says dis={dis} under p={policy}: {what}.").format(
                dis=dis, policy=policy, what=words)
        else:
            text = _("The receiver says dis={dis}: {what}.").format(dis=dis, what=words)
        if strict and dis == "none":
            # This receiver was lenient (a local override); others follow the policy.
            text += " " + (_("Other receivers follow p={policy}: spam folder.")
                           if policy == "quarantine" else
                           _("Other receivers follow p={policy}: refused.")).format(
                policy=policy)
        return text, strict or dis in ("quarantine", "reject")
    if facts.dmarc_record == "unknown" and not policy:
        return _("Which DMARC policy receivers apply is unknown: the lookup of the domain's "
                 "record failed."), False
    if facts.dmarc_record == "several" and not policy:
        return _("The domain publishes several DMARC records, so receivers ignore DMARC for "
                 "it."), False
    text = {"none": _("Under p=none it is delivered (maybe shown 'via gmail.com')."),
            "quarantine": _("Under p=quarantine receivers put it in spam."),
            "reject": _("Under p=reject receivers refuse it.")}.get(
        policy, _("The domain publishes no DMARC policy."))
    return text, policy in ("quarantine", "reject")


def judge_outbound(facts: OutboundFacts, thresholds: Thresholds) -> list[Diagnosis]:
    """What receivers conclude about mail sent as the alias through Gmail."""
    domain = _domain(facts.alias)
    policy_now = facts.dmarc_policy or (facts.auth.dmarc_policy if facts.auth else "")
    if policy_now in ("", "none"):
        fixes_text = _("Fixes: keep p=none on the domain, or send through an SMTP server "
                       "that signs DKIM with d={domain} (Cloudflare Email Sending or a mail "
                       "relay).").format(domain=domain)
    else:
        fixes_text = _("Fixes: relax p={policy} to p=none on the domain, or send through an "
                       "SMTP server that signs DKIM with d={domain} (Cloudflare Email Sending "
                       "or a mail relay).").format(policy=policy_now, domain=domain)
    lookup = _dmarc_lookup_failed(facts)
    if not facts.folder_roles:
        final = [b for b in facts.bounces if b.final]
        if final:
            b = final[0]
            text = _quote(b.diagnostic or b.status)
            if "dmarc" in text.lower() or b.status == "5.7.26":
                policy = f"p={facts.dmarc_policy}" if facts.dmarc_policy else "p=reject"
                return [finding("SENDAS_DMARC_REJECTED", "fail", _(
                    "Refused by the receiver: {reply}. Mail sent as {alias} through Gmail "
                    "fails DMARC for {domain}, and the domain's policy ({policy}) tells "
                    "receivers to refuse it.").format(reply=text, alias=facts.alias,
                                                      domain=domain, policy=policy)),
                    finding("SENDAS_FIXES", "fail", fixes_text), *lookup]
            return [finding("BOUNCED", "fail", _(
                "The message bounced: {server} answered {reply}.").format(
                    server=_who(b), reply=text)), *lookup]
        return [finding("OUTBOUND_LOST", "fail", _(
            "Not delivered: no copy reached the probe mailbox (INBOX or Spam) within "
            "{waited}, and no bounce came back.").format(waited=_fmt_s(facts.waited_s))),
            *lookup]
    said: list[Diagnosis] = []       # problems first: the first sentence is the headline
    notes: list[Diagnosis] = []
    rewritten = bool(facts.original_from) or _domain(_address(facts.from_header)) != domain
    if rewritten:
        shown = _address(facts.from_header) or _("the account")
        other_alias = _domain(shown) == domain and shown.lower() != facts.alias.lower()
        identity = (_("another of your aliases, the account's default sending identity")
                    if other_alias else _("the account's default sending identity"))
        headers = f"X-Google-Original-From: {facts.original_from or facts.alias}"
        if facts.sender_header:
            headers += f"; Sender: {_address(facts.sender_header)}"
        said.append(finding("SENDAS_FROM_REWRITTEN", "fail", _(
            "Gmail rewrote the From header to {shown} ({identity}; {headers}): {alias} is not "
            "a verified 'Send mail as' address in Gmail. Add and verify it under Settings → "
            "Accounts and Import → Send mail as.").format(
                shown=shown, identity=identity, headers=headers, alias=facts.alias)))
        said.append(_setup_mistakes(facts))
    else:
        notes.append(finding("SENDAS_FROM_KEPT", "pass", _(
            "Gmail kept From: {alias}; the envelope sender is {envelope}.").format(
                alias=facts.alias, envelope=facts.envelope or _("not shown"))))
    if "spam" in facts.folder_roles:
        said.append(finding("OUTBOUND_SPAM", "fail", _("The receiver filed it as spam.")))
    said += lookup
    if facts.gmail_signed is True:
        if facts.sender_header:
            signed_text = _(
                "Gmail signed this message for gmail.com (DKIM-Signature d=gmail.com) and "
                "added Sender: {sender}; that signature does not align with {domain}."
            ).format(sender=_address(facts.sender_header), domain=domain)
        else:
            signed_text = _(
                "Gmail signed this message for gmail.com (DKIM-Signature d=gmail.com); that "
                "signature does not align with {domain}.").format(domain=domain)
        notes.append(finding("SENDAS_GMAIL_SIGNED", "pass", signed_text))
    elif facts.gmail_signed is False:
        notes.append(finding("SENDAS_GMAIL_UNSIGNED", "pass", _(
            "Gmail did not sign this message: it carries no DKIM-Signature of Gmail's (at most "
            "an X-Google-DKIM-Signature for 1e100.net, which receivers do not check), so "
            "receivers say dkim=none.")))
    auth = facts.auth
    if auth is None or not auth.found:
        said.append(finding("RECEIVER_AR_MISSING", "warn", _(
            "The receiver's Authentication-Results header is missing or untrusted, so its "
            "verdicts could not be read.")))
    else:
        dkim_domains = ", ".join(sorted({d.domain for d in auth.dkim_all if d.domain}))
        aligned = [m for m, r in (("SPF", auth.spf), ("DKIM", auth.dkim)) if r.aligned]
        values = {"spf": auth.spf.result, "spf_domain": auth.spf.domain or "?",
                  "dkim": auth.dkim.result, "dkim_domains": dkim_domains,
                  "aligned": ", ".join(aligned) or _("neither"), "dmarc": auth.dmarc.result}
        notes.append(finding("RECEIVER_VERDICT", "pass", (_(
            "SPF {spf} for {spf_domain}, DKIM {dkim} for {dkim_domains}; aligned with the "
            "From domain: {aligned}; DMARC {dmarc}.") if dkim_domains else _(
            "SPF {spf} for {spf_domain}, DKIM {dkim}; aligned with the From domain: "
            "{aligned}; DMARC {dmarc}.")).format(**values)))
        if auth.dmarc.result != "pass" and not rewritten:
            consequence, harmful = _consequence(facts, auth)
            verdict: Verdict = "fail" if harmful or facts.expect_dmarc_pass else "warn"
            signed = {True: _("signs for gmail.com"), False: _("did not sign it at all"),
                      None: _("signs, if at all, for gmail.com")}[facts.gmail_signed]
            text = _(
                "DMARC fails for {domain}, the known Gmail send-as outcome: Gmail uses your "
                "Gmail address as the envelope and {signed}, so neither SPF nor DKIM aligns "
                "with {domain}. {consequence}").format(domain=domain, signed=signed,
                                                       consequence=consequence)
            if facts.expect_dmarc_pass:
                text += " " + _("Your expectations require dmarc=pass.")
            said.append(finding("SENDAS_DMARC_FAIL", verdict, text))
            said.append(finding("SENDAS_FIXES", verdict, fixes_text))
    said += _latency(facts.latency_s, thresholds, detail=False)
    if facts.intact is False:
        said.append(finding("ALTERED_IN_TRANSIT", "warn", _altered(False, False)))
    if verdict_of(said) == "pass":
        said.insert(0, finding("OUTBOUND_DELIVERED", "pass", _(
            "Delivered to the probe mailbox's {folder} as {alias}.").format(
                folder=facts.folder_roles[0], alias=facts.alias)))
    return said + notes


def submission_refused(gmail_address: str, reply: str, *,
                       otherwise: str = "GMAIL_SEND_REFUSED") -> Diagnosis:
    """Gmail would not take an outbound probe: what its reply means (FACTS.md,
    "Sending limit"). Only the daily limit is a finding about the mail path;
    the others mean flowtest could not test this time. ``otherwise`` is the
    code when the reply is none of Gmail's known refusals."""
    text = _quote(reply, 1000)
    if "5.4.5" in text:
        return finding("GMAIL_SEND_LIMIT", "fail", _(
            "Gmail's daily sending limit for {account} is used up ({reply}). Gmail refuses "
            "everything the account sends, as the alias or not, until the limit resets "
            "within 24 hours. flowtest's outbound probes count towards it: "
            "limits.daily_sends keeps them to a small share.").format(account=gmail_address,
                                                                      reply=text))
    if "Too many login attempts" in text or text.startswith("454") or " 454 " in text:
        return finding("GMAIL_LOGIN_THROTTLED", "error", _(
            "Gmail is refusing logins for {account} for a while ({reply}). Wait before the "
            "next run; running less often avoids it.").format(account=gmail_address,
                                                              reply=text))
    if text.startswith("421") or "4.7.0" in text:
        return finding("GMAIL_RATE_LIMITED", "error", _(
            "Gmail is limiting how fast {account} may send ({reply}) and flowtest's retries "
            "ran out. Spread the probes with limits.send_interval_s.").format(
                account=gmail_address, reply=text))
    if otherwise == "GMAIL_SEND_REFUSED":
        return finding(otherwise, "error", _("Gmail did not take the message: {reply}").format(
            reply=text))
    return finding(otherwise, "error", _("The probe could not be sent: {reply}").format(
        reply=text))
