"""Turning what was observed into a verdict and sentences a person can act on."""

from __future__ import annotations

from dataclasses import dataclass

from flowtest.mail.bounce import Bounce
from flowtest.model import AuthVerdict, Thresholds, Verdict, worst


@dataclass(frozen=True)
class InboundFacts:
    alias: str
    sender_domain: str
    folder_roles: tuple[str, ...]       # one per copy found: inbox, spam, other
    latency_s: float | None
    intact: bool | None
    auth: AuthVerdict | None            # Gmail's trusted verdict
    relay_auth: AuthVerdict | None      # Cloudflare's ARC i=1 verdict
    bounces: tuple[Bounce, ...]
    waited_s: float
    reconnects: int = 0


def _fmt_s(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def _bounce_sentence(alias: str, b: Bounce) -> tuple[Verdict, str]:
    who = b.remote_mta or "the receiving server"
    diag = b.diagnostic or b.status
    lower = diag.lower()
    if "cloudflare" in who and (b.status == "5.1.1" or "does not exist" in lower):
        return "fail", (f"Cloudflare refused {alias}: no routing rule matches it ({diag}). Add "
                        "a rule for it (or a catch-all) under Email Routing → Routing rules.")
    if "cloudflare" not in who and ("icloud" in who or "mx.cloudflare.net" not in who) \
            and b.final and b.code and b.code >= 500:
        return "fail", (f"The domain's mail went to {who}, not to Cloudflare, and was refused "
                        f"({diag}). The MX records still point at another provider: replace them "
                        "with Cloudflare's route1/2/3.mx.cloudflare.net.")
    if b.final:
        return "fail", f"The probe bounced: {who} answered {diag}."
    if "4.7" in diag or lower.startswith("421"):
        return "fail", (f"Gmail refused the forwarded copy for now ({diag}). Cloudflare does not "
                        "queue: it passes the error back and the sender's server retries later, "
                        "so mail is delayed, possibly for hours.")
    return "warn", f"Delivery is delayed: {who} answered {diag}; the sender's server is retrying."


def judge_inbound(facts: InboundFacts, thresholds: Thresholds) -> tuple[Verdict, list[str]]:
    verdicts: list[Verdict] = []
    said: list[str] = []
    if not facts.folder_roles:
        final = [b for b in facts.bounces if b.final]
        if final or facts.bounces:
            for b in final or facts.bounces:
                verdict, sentence = _bounce_sentence(facts.alias, b)
                verdicts.append(verdict)
                said.append(sentence)
            if not final:
                said.append(f"No copy reached Gmail within {_fmt_s(facts.waited_s)}.")
                verdicts.append("fail")
            return worst(verdicts), said
        return "fail", [
            f"Lost: no copy reached Gmail (INBOX or Spam) within {_fmt_s(facts.waited_s)}, and "
            "no bounce came back. The probe account's server accepted it, so it was lost "
            "after that: Cloudflare accepted it and did not forward it, a drop rule matched, "
            "or forwarding is slower than the timeout. Check Email Routing → Activity log.",
        ]
    roles = facts.folder_roles
    if roles[0] == "spam" or "spam" in roles:
        verdicts.append("fail")
        dis = facts.auth.dmarc_disposition if facts.auth else ""
        why = " because DMARC asked for quarantine" if dis == "quarantine" else ""
        said.append(f"Delivered to Gmail's Spam folder{why}: the user will not see it. Mark it "
                    "'Not spam', or add a filter that never sends it to Spam.")
    else:
        verdicts.append("pass")
        said.append("Delivered to the Gmail inbox.")
    if len(roles) > 1:
        verdicts.append("warn")
        said.append(f"Delivered {len(roles)} times: the same message arrived more than once "
                    "(a forwarding loop, a duplicate rule, or a retry after a lost reply).")
    if facts.latency_s is not None:
        if facts.latency_s > thresholds.latency_fail_s:
            verdicts.append("fail")
            said.append(f"Late: it took {_fmt_s(facts.latency_s)}, over the "
                        f"{_fmt_s(thresholds.latency_fail_s)} failure threshold.")
        elif facts.latency_s > thresholds.latency_warn_s:
            verdicts.append("warn")
            said.append(f"Slow: it took {_fmt_s(facts.latency_s)}, over the "
                        f"{_fmt_s(thresholds.latency_warn_s)} warning threshold.")
    auth = facts.auth
    original_dkim_failed = auth is not None and any(
        d.domain == facts.sender_domain and d.result != "pass" for d in auth.dkim_all)
    if facts.intact is False or original_dkim_failed:
        verdicts.append("warn")
        arc_ok = auth is not None and auth.arc.result == "pass"
        said.append("Altered in transit: the content differs from what was sent"
                    + (" and the sender's DKIM signature no longer verifies" if
                       original_dkim_failed else "")
                    + ("; Gmail still trusted Cloudflare's ARC seal, so it was delivered."
                       if arc_ok else "."))
    if auth is None or not auth.found:
        verdicts.append("warn")
        said.append("Gmail's own Authentication-Results header is missing, so the auth "
                    "results could not be read.")
    else:
        if auth.ignored:
            # The verdicts above come from Gmail's own header only; a forgery is
            # still worth a warning: something on the path writes in Gmail's name.
            verdicts.append("warn")
            said.append(f"Ignored {auth.ignored} Authentication-Results header(s) that claim "
                        f"to be from {auth.authserv_id} but sit below Gmail's own: written "
                        "by someone else (the sender or a server on the way), never trusted.")
        domain = facts.alias.rpartition("@")[2]
        for d in auth.dkim_all:
            if d.domain == domain and d.result != "pass":
                verdicts.append("warn")
                said.append(f"Cloudflare's DKIM signature for {domain} did not verify at Gmail "
                            f"(dkim={d.result}): the cf2024-1._domainkey.{domain} record is "
                            "missing or out of date. Run `flowtest doctor`.")
                break
        if auth.spf.result not in ("pass",) and auth.arc.result != "pass":
            verdicts.append("warn")
            said.append(f"SPF for the forwarded copy is {auth.spf.result} "
                        f"(envelope {auth.spf.domain}); the domain's SPF record should "
                        "include _spf.mx.cloudflare.net exactly once.")
        elif auth.spf.result in ("permerror", "temperror"):
            verdicts.append("warn")
            said.append(f"SPF for the domain is {auth.spf.result}: Gmail could not evaluate "
                        "it (two v=spf1 records, or too many lookups). Run `flowtest doctor`.")
    if facts.reconnects:
        verdicts.append("warn")
        said.append(f"The IMAP connection dropped {facts.reconnects} time(s); flowtest "
                    "reconnected and kept watching. Mail apps on this mailbox may miss "
                    "new mail too.")
    return worst(verdicts), said


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


def _domain(address: str) -> str:
    return address.strip().strip("<>").rpartition("@")[2].lower()


def judge_outbound(facts: OutboundFacts, thresholds: Thresholds) -> tuple[Verdict, list[str]]:
    """What receivers conclude about mail sent as the alias through Gmail."""
    domain = _domain(facts.alias)
    fixes = ("Fixes: keep p=none on the domain, or send through an SMTP server that signs "
             f"DKIM with d={domain} (Cloudflare Email Sending or a mail relay).")
    if not facts.folder_roles:
        final = [b for b in facts.bounces if b.final]
        if final:
            b = final[0]
            text = b.diagnostic or b.status
            if "dmarc" in text.lower() or b.status == "5.7.26":
                return "fail", [
                    f"Refused by the receiver: {text}. Mail sent as {facts.alias} through Gmail "
                    f"fails DMARC for {domain}, and the domain's policy (p=reject) tells "
                    "receivers to refuse it.", fixes]
            return "fail", [f"The message bounced: {b.remote_mta or 'the receiver'} answered "
                            f"{text}."]
        return "fail", [f"Not delivered: no copy reached the probe mailbox (INBOX or Spam) "
                        f"within {_fmt_s(facts.waited_s)}, and no bounce came back."]
    verdicts: list[Verdict] = []
    said: list[str] = []       # problems first: the first sentence is the headline
    notes: list[str] = []
    if facts.original_from or _domain(facts.from_header) != domain:
        verdicts.append("fail")
        said.append(f"Gmail rewrote the From header to {facts.from_header or 'the account'} "
                    f"(X-Google-Original-From: {facts.original_from or facts.alias}): "
                    f"{facts.alias} is not a verified 'Send mail as' address in Gmail. Add and "
                    "verify it under Settings → Accounts → Send mail as.")
    else:
        notes.append(f"Gmail kept From: {facts.alias}; the envelope sender is "
                     f"{facts.envelope or 'not shown'}.")
    if "spam" in facts.folder_roles:
        verdicts.append("fail")
        said.append("The receiver filed it as spam.")
    auth = facts.auth
    if auth is None or not auth.found:
        verdicts.append("warn")
        said.append("The receiver's Authentication-Results header is missing or untrusted, so "
                    "its verdicts could not be read.")
    else:
        dkim_domains = ", ".join(sorted({d.domain for d in auth.dkim_all if d.domain})) or "none"
        aligned = [m for m, r in (("SPF", auth.spf), ("DKIM", auth.dkim)) if r.aligned]
        notes.append(f"SPF {auth.spf.result} for {auth.spf.domain or '?'}, DKIM "
                     f"{auth.dkim.result} for {dkim_domains}; aligned with the From domain: "
                     f"{', '.join(aligned) or 'neither'}; DMARC {auth.dmarc.result}.")
        policy = facts.dmarc_policy or auth.dmarc_policy
        if auth.dmarc.result != "pass" and not facts.original_from:
            if policy in ("quarantine", "reject") or facts.expect_dmarc_pass:
                verdicts.append("fail")
            else:
                verdicts.append("warn")
            said.append(
                "This is the known Gmail send-as outcome: Gmail signs for gmail.com and uses "
                f"your Gmail address as the envelope, so neither aligns with {domain}. "
                + {"none": "Under p=none it is delivered (maybe shown 'via gmail.com').",
                   "quarantine": "Under p=quarantine receivers put it in spam.",
                   "reject": "Under p=reject receivers refuse it."}.get(
                    policy, "The domain publishes no DMARC policy.")
                + (" Your expectations require dmarc=pass." if facts.expect_dmarc_pass else ""))
            said.append(fixes)
        else:
            verdicts.append("pass")
    if facts.latency_s is not None and facts.latency_s > thresholds.latency_fail_s:
        verdicts.append("fail")
        said.append(f"Late: it took {_fmt_s(facts.latency_s)}.")
    elif facts.latency_s is not None and facts.latency_s > thresholds.latency_warn_s:
        verdicts.append("warn")
        said.append(f"Slow: it took {_fmt_s(facts.latency_s)}.")
    if facts.intact is False:
        verdicts.append("warn")
        said.append("Altered in transit: the content differs from what was sent.")
    verdict = worst(verdicts)
    if verdict == "pass":
        said.insert(0, f"Delivered to the probe mailbox's {facts.folder_roles[0]} as "
                       f"{facts.alias}.")
    return verdict, said + notes


def submission_refused(gmail_address: str, reply: str) -> tuple[Verdict, str]:
    """Gmail would not take an outbound probe: what its reply means (FACTS.md,
    "Sending limit"). Only the daily limit is a finding about the mail path;
    the others mean flowtest could not test this time."""
    text = " ".join(reply.split())
    if "5.4.5" in text:
        return "fail", (
            f"Gmail's daily sending limit for {gmail_address} is used up ({text}). Gmail "
            "refuses everything the account sends, as the alias or not, until the limit "
            "resets within 24 hours. flowtest's outbound probes count towards it: "
            "limits.daily_sends keeps them to a small share.")
    if "Too many login attempts" in text or text.startswith("454"):
        return "error", (
            f"Gmail is refusing logins for {gmail_address} for a while ({text}). Wait before "
            "the next run; running less often avoids it.")
    if text.startswith("421") or "4.7.0" in text:
        return "error", (
            f"Gmail is limiting how fast {gmail_address} may send ({text}) and flowtest's "
            "retries ran out. Spread the probes with limits.send_interval_s.")
    return "error", f"Gmail did not take the message: {text}"
