"""Reading any saved message (Gmail's "Show original"): which receiver's
verdict to trust, hops, trusted verdicts, alignment, and what they mean. Same
``hops`` and ``auth`` shapes as a probe in the JSON report.

Each sentence carries a stable upper-case code (docs/verdicts.md, "How
receivers are read"); scripts and tests key on the codes, never the words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from typing import Any

from flowtest.i18n import N_, ngettext
from flowtest.i18n import gettext as _
from flowtest.mail import authresults, received, receivers
from flowtest.mail.orgdomain import org_domain
from flowtest.mail.text import inert
from flowtest.model import AuthVerdict, Hop, Receiver

CLOUDFLARE = authresults.CLOUDFLARE_AUTHSERV_ID


@dataclass(frozen=True)
class Finding:
    code: str   # stable, upper-case
    text: str   # one line; header values in it are cut short and control characters replaced

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", inert(self.text))


@dataclass(frozen=True)
class Choice:
    """Whose verdict was read, and why that one."""

    name: str        # the profile name, or the authserv-id / host for an ad-hoc receiver
    how: str         # provider | authserv-id | hops | header | none
    final: bool      # the last receiver (False: a server the message passed on from)
    rule: Receiver

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "how": self.how, "final": self.final}


@dataclass(frozen=True)
class Inspection:
    authserv_id: str
    hops: tuple[Hop, ...]
    auth: AuthVerdict
    relay_auth: AuthVerdict | None
    findings: tuple[Finding, ...]
    receiver: Choice | None = None
    total_s: float | None = None

    @property
    def diagnosis(self) -> tuple[str, ...]:
        return tuple(f.text for f in self.findings)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        a = self.auth
        return {
            "authserv_id": self.authserv_id,
            "receiver": self.receiver.to_json() if self.receiver else None,
            "hops": [h.to_json() for h in self.hops],
            "total_s": self.total_s,
            "auth": a.to_json(),
            "auth_detail": {
                "found": a.found, "trusted_by": a.trusted_by, "header_from": a.header_from,
                "dkim_all": [d.to_json(with_aligned=True) for d in a.dkim_all],
                "dmarc_policy": a.dmarc_policy, "dmarc_disposition": a.dmarc_disposition,
                "dmarc_action": a.dmarc_action, "dmarc_consequence": a.dmarc_consequence,
                "compauth": a.compauth, "compauth_reason": a.compauth_reason,
                "implied_folder": a.implied_folder, "ignored": a.ignored,
            },
            "relay_auth": self.relay_auth.to_json() if self.relay_auth else None,
            "diagnosis": list(self.diagnosis),
            "findings": [{"code": f.code, "text": f.text} for f in self.findings],
        }


def receiver_id(raw: bytes) -> str:
    """The authserv-id of the topmost Authentication-Results ("" if none or id-less)."""
    ids = authresults.authserv_ids(raw)
    return ids[0] if ids else ""


def _headers(raw: bytes) -> list[tuple[str, str]]:
    try:
        return [(str(k), str(v)) for k, v in BytesHeaderParser().parsebytes(raw).items()]
    except Exception:  # hostile input must not crash a reader
        return []


_HOST_RE = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")


def _profile_of(host: str) -> Receiver | None:
    return next((r for r in receivers.PROFILES.values() if authresults.owns(r, host)), None)


def _profile_for_id(authserv_id: str) -> Receiver | None:
    return next((r for r in receivers.PROFILES.values() if r.matches(authserv_id)), None)


def _ad_hoc(authserv_id: str, host: str = "") -> Receiver:
    first = authserv_id.split()[0] if authserv_id.split() else ""
    domains = tuple(dict.fromkeys(org_domain(h) for h in (first, host) if h))
    return Receiver(first, domains=domains, merge=True, idless=not first)


def choose(raw: bytes, *, provider: str | None = None,
           authserv_id: str | None = None) -> tuple[Choice | None, list[Finding]]:
    """The receiver whose verdict to read: the one named, else the one the
    topmost hop goes into, else the one the topmost header names."""
    said: list[Finding] = []
    if provider is not None:
        rule = receivers.profile(provider)
        if rule is None:
            raise ValueError(_("unknown provider {name}; known: {known}").format(
                name=repr(provider), known=", ".join(sorted(receivers.PROFILES))))
        return Choice(rule.name, "provider", True, rule), said
    if authserv_id:
        rule = _profile_for_id(authserv_id) or _ad_hoc(authserv_id)
        return Choice(rule.name or authserv_id.lower(), "authserv-id", True, rule), said
    headers = _headers(raw)
    ids = authresults.authserv_ids(raw)
    for name, value in headers:
        if name.lower() != "received":
            continue
        m = re.search(r"\bby\s+([^\s;()]+)", received.uncomment(" ".join(value.split())[:4000]),
                      re.IGNORECASE)
        by = m.group(1).lower().rstrip(".")[:255] if m else ""
        rule = _profile_of(by) if by else None
        if rule is not None:
            return Choice(rule.name, "hops", True, rule), said
        if not _HOST_RE.fullmatch(by):
            continue   # Gmail's internal "by 2002:a17:…" ids name no receiver
        own = [i for i in ids if i and org_domain(i) == org_domain(by)]
        if own:
            rule = _ad_hoc(own[0], by)
            return Choice(own[0], "hops", True, rule), said
        said.append(Finding("RECEIVER_NO_AR", _(
            "The final receiver, {host}, wrote no Authentication-Results.").format(host=by)))
        named = [i for i in ids if i]
        if not named:
            return None, said
        return Choice(named[0], "header", False, _ad_hoc(named[0])), said
    if not ids:
        return None, said
    rule = _profile_for_id(ids[0]) or _ad_hoc(ids[0])
    return Choice(rule.name or ids[0], "header", True, rule), said


def _gmail_sent(headers: list[tuple[str, str]]) -> bool:
    for name, value in headers:
        n = name.lower()
        if n in ("x-google-dkim-signature", "x-gm-message-state"):
            return True
        if n == "received" and re.search(r"\bby\s+smtp\.gmail\.com\b", value, re.IGNORECASE):
            return True
    return False


def _dkim_domains(headers: list[tuple[str, str]]) -> list[str]:
    out = []
    for name, value in headers:
        if name.lower() == "dkim-signature":
            m = re.search(r"(?:^|;)\s*d\s*=\s*([^\s;]+)", value)
            if m:
                out.append(m.group(1).lower().rstrip("."))
    return out


def _first(headers: list[tuple[str, str]], name: str) -> str:
    return next((" ".join(v.split())[:300] for k, v in headers if k.lower() == name), "")


def _gmail_findings(headers: list[tuple[str, str]]) -> list[Finding]:
    """What Gmail did to mail sent through it (FACTS.md, "Gmail sending as the alias")."""
    if not _gmail_sent(headers):
        return []
    out: list[Finding] = []
    from_addr = parseaddr(_first(headers, "from"))[1].lower()
    from_domain = from_addr.rpartition("@")[2]
    signed = [d for d in _dkim_domains(headers) if d in ("gmail.com", "googlemail.com")]
    if signed:
        if from_domain in signed:
            said = _("Gmail signed for {domain}.").format(domain=signed[0])
        else:
            said = _("Gmail signed for {domain}, which does not align with {from_domain}."
                     ).format(domain=signed[0], from_domain=from_domain or "?")
        out.append(Finding("GMAIL_SIGNED", said))
    else:
        out.append(Finding("GMAIL_UNSIGNED", _(
            "Gmail did not sign this message: there is no DKIM-Signature for gmail.com, only "
            "Gmail's internal X-Google-DKIM-Signature (d=1e100.net), which no receiver "
            "checks.")))
    original = _first(headers, "x-google-original-from")
    if original:
        out.append(Finding("FROM_REWRITTEN", _(
            "Gmail rewrote From to the account's default sending identity ({address}, which "
            "may be another alias); the original From was {original}: it is not a verified "
            "Send-mail-as address.").format(address=from_addr or "?", original=original)))
    sender = [a for _, a in getaddresses([_first(headers, "sender")]) if "@" in a]
    if sender and sender[0].lower() != from_addr:
        out.append(Finding("SENDER_ADDED", _(
            "Gmail added Sender: {sender}, the account that sent it.").format(sender=sender[0])))
    return out


def _auth_findings(who: str, auth: AuthVerdict) -> list[Finding]:
    said: list[Finding] = []
    aligned = [m for m, r in (("SPF", auth.spf), ("DKIM", auth.dkim)) if r.aligned]
    said.append(Finding("AUTH_RESULTS", _(
        "{who} says: SPF {spf} ({spf_domain}), DKIM {dkim} ({dkim_domain}), DMARC {dmarc} "
        "for {from_domain}, ARC {arc}; aligned: {aligned}.").format(
            who=who, spf=auth.spf.result, spf_domain=auth.spf.domain or "?",
            dkim=auth.dkim.result, dkim_domain=auth.dkim.domain or "?",
            dmarc=auth.dmarc.result, from_domain=auth.header_from or "?", arc=auth.arc.result,
            aligned=", ".join(aligned) or _("neither"))))
    consequence = auth.dmarc_consequence
    word = "dis=" if auth.dmarc_disposition else "action="
    action = f"{word}{auth.dmarc_disposition or auth.dmarc_action}"
    if auth.dmarc.result != "pass" and consequence == "quarantine":
        said.append(Finding("DMARC_QUARANTINED", _(
            "The receiver applied the sender's quarantine policy ({action}): it went to spam."
        ).format(action=action)))
    elif auth.dmarc.result != "pass" and consequence == "reject":
        said.append(Finding("DMARC_REJECTED", _(
            "The receiver says it applied the sender's reject policy ({action})."
        ).format(action=action)))
    if auth.dmarc.result == "fail" and auth.arc.result == "pass":
        said.append(Finding("ARC_VOUCHED", _(
            "DMARC failed but a trusted ARC chain vouched for it, so the receiver may still "
            "have delivered it to the inbox.")))
    if auth.implied_folder == "junk":
        said.append(Finding("RECEIVER_JUNK", _(
            "Microsoft's spam filter marked it for Junk (SCL 5 or more, SFV:SPM or dest:J), "
            "whatever the authentication results say.")))
    if auth.ignored:
        said.append(Finding("AR_IGNORED", ngettext(
            "{count} other header claiming to be {who} was ignored: it sits where a sender "
            "could have written it.",
            "{count} other headers claiming to be {who} were ignored: they sit where a sender "
            "could have written them.", auth.ignored).format(count=auth.ignored, who=who)))
    return said


def _hop_findings(ch: received.Chain, hops: tuple[Hop, ...], anchored: bool,
                  has_date: bool) -> list[Finding]:
    said: list[Finding] = []
    skewed = [h for h in hops if h.clock_skew]
    if skewed:
        said.append(Finding("CLOCK_SKEW", ngettext(
            "{count} hop carries stamps that contradict the others (clock skew: {hosts}); it "
            "is left out of the totals.",
            "{count} hops carry stamps that contradict the others (clock skew: {hosts}); they "
            "are left out of the totals.", len(skewed)).format(
                count=len(skewed), hosts=", ".join(h.by or "?" for h in skewed))))
    if has_date and not anchored and not ch.date_trusted and hops:
        said.append(Finding("DATE_UNTRUSTED", _(
            "The message's Date: is out of line with the first server stamp (the sender's "
            "clock); the total starts at the first server stamp.")))
    timed = [h for h in hops if h.delay_s is not None]
    if ch.total_s is not None and hops:
        slowest = max(timed, key=lambda h: h.delay_s or 0.0) if timed else None
        total = f"{ch.total_s:.1f}"
        if slowest is not None:
            said.append(Finding("HOPS", ngettext(
                "{count} hop, {total} s end to end; the slowest was {slowest} s into {host}.",
                "{count} hops, {total} s end to end; the slowest was {slowest} s into {host}.",
                len(hops)).format(count=len(hops), total=total,
                                  slowest=f"{slowest.delay_s:.1f}", host=slowest.by or "?")))
        else:
            said.append(Finding("HOPS", ngettext(
                "{count} hop, {total} s end to end.", "{count} hops, {total} s end to end.",
                len(hops)).format(count=len(hops), total=total)))
    return said


def inspect(raw: bytes, authserv_id: str | None = None, *, provider: str | None = None,
            sent_at: float | None = None) -> Inspection:
    """Read a saved message.

    ``provider`` names a receiver profile (``flowtest.mail.receivers.PROFILES``,
    the same names as ``flowtest.providers``) whose trust rule to use; raises
    ValueError for an unknown name. ``authserv_id`` names the receiver by its
    id instead. With neither, the receiver is recognised from the topmost hops
    (or, for a bare header block, the topmost header) and ``receiver.how``
    says which way. ``sent_at`` anchors the first hop (flowtest's own clock)."""
    headers = _headers(raw)
    choice, said = choose(raw, provider=provider, authserv_id=authserv_id)
    ch = received.chain(raw, sent_at=sent_at)
    hops = ch.hops
    relay = authresults.arc_verdict(raw, CLOUDFLARE)
    if choice is None:
        auth = AuthVerdict(authserv_id="")
        if not authresults.authserv_ids(raw):
            said.append(Finding("NO_AR", _("No Authentication-Results header: the "
                                           "receiver's verdicts are unknown.")))
        who = shown = ""
    else:
        read = authresults.trusted if choice.final else authresults.intermediate
        auth = read(raw, choice.rule)
        rule = choice.rule
        if auth.found and not auth.authserv_id:
            # The JSON's authserv_id is read by scripts: it stays English; the
            # sentences say it in the reader's language.
            who = f"{choice.name} (its header without authserv-id)"
            shown = _("{name} (its header without authserv-id)").format(name=choice.name)
        else:
            who = shown = auth.authserv_id if auth.found else rule.label
        if not choice.final:
            said.append(Finding("INTERMEDIATE_VERDICT", _(
                "The best available verdict is {name}'s, a server the message passed through "
                "on the way.").format(name=choice.name)))
        else:
            said.append(Finding("RECEIVER", _("Reading the verdict of {name} ({how}).").format(
                name=choice.name, how=_(_HOW[choice.how]))))
        if not auth.found:
            said.append(Finding("AR_UNTRUSTED", _(
                "No trustworthy Authentication-Results from {receiver}: any such header sits "
                "outside the receiver's own headers and could have been written by anyone."
            ).format(receiver=rule.label)))
        else:
            said.extend(_auth_findings(shown, auth))
    if relay.found:
        said.append(Finding("RELAY_CLOUDFLARE", _(
            "Forwarded by Cloudflare Email Routing (ARC i={instance}), which saw: SPF {spf} "
            "({spf_domain}), DKIM {dkim} ({dkim_domain}), DMARC {dmarc}.").format(
                instance=relay.instance, spf=relay.spf.result,
                spf_domain=relay.spf.domain or "?", dkim=relay.dkim.result,
                dkim_domain=relay.dkim.domain or "?", dmarc=relay.dmarc.result)))
    said.extend(_gmail_findings(headers))
    internal = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)",
                            _first(headers, "x-ms-exchange-transport-endtoendlatency"))
    if internal:
        secs = int(internal.group(1)) * 3600 + int(internal.group(2)) * 60 \
            + float(internal.group(3))
        said.append(Finding("RECEIVER_LATENCY", _(
            "Microsoft measured {seconds} s inside its own servers "
            "(X-MS-Exchange-Transport-EndToEndLatency).").format(seconds=f"{secs:.2f}")))
    said.extend(_hop_findings(ch, hops, sent_at is not None,
                              any(k.lower() == "date" for k, _ in headers)))
    return Inspection(who if choice else "", hops, auth, relay if relay.found else None,
                      tuple(said), choice, ch.total_s)


_HOW = {"provider": N_("named with --provider"), "authserv-id": N_("named by its authserv-id"),
        "hops": N_("recognised from the topmost hops"),
        "header": N_("named by the topmost header")}
