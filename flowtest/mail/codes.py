"""Diagnosis codes: the stable, upper-case key of every sentence a probe's
diagnosis can hold (docs/verdicts.md says what each means and how to fix it).

Scripts, notifications and translations key on these; the wording may
change, a code never does. The doctor's findings use the same style, and
where a probe and the doctor say the same thing they share the code
(``MX_FOREIGN``, ``MX_MISSING``).
"""

from __future__ import annotations

from flowtest.i18n import N_
from flowtest.i18n import gettext as _
from flowtest.model import Diagnosis, Verdict, worst

# Every code a probe's diagnosis can carry, with its one-line meaning (English,
# marked for the catalog; :func:`meaning` gives it in the reader's language).
CODES: dict[str, str] = {
    # inbound, delivered
    "INBOUND_DELIVERED": N_("the probe reached the Gmail inbox"),
    "SPAM_FOLDER": N_("the probe reached Gmail's Spam folder"),
    "DUPLICATE_DELIVERY": N_("the probe arrived more than once"),
    "ALTERED_IN_TRANSIT": N_("the content changed on the way"),
    "GMAIL_AR_MISSING": N_("Gmail's own Authentication-Results header is missing"),
    "FORGED_AR_IGNORED": N_("headers claiming Gmail's authserv-id were forged and ignored"),
    "CLOUDFLARE_DKIM_FAIL": N_("Cloudflare's DKIM signature for the domain did not verify"),
    "FORWARD_SPF_FAIL": N_("SPF of the forwarded copy did not pass and ARC did not vouch"),
    "FORWARD_SPF_ERROR": N_("SPF of the domain could not be evaluated (permerror, temperror)"),
    "IMAP_RECONNECTED": N_("the IMAP connection dropped during the run"),
    "CLOUDFLARE_VERDICT": N_("what Cloudflare concluded on arrival (note)"),
    "CLOUDFLARE_VERDICT_MISSING": N_("the message carries no verdict of Cloudflare's (note)"),
    "CLOUDFLARE_SAW_SPF_FAIL": N_("Cloudflare saw SPF fail for the probe's sender"),
    "CLOUDFLARE_SAW_DMARC_FAIL": N_("Cloudflare saw DMARC fail for the probe's sender"),
    # inbound, not delivered
    "INBOUND_LOST": N_("no copy in Gmail and no bounce"),
    "INBOUND_TIMEOUT": N_("delay warnings came back, but no copy arrived in time"),
    "NO_ROUTING_RULE": N_("Cloudflare refused the alias: no routing rule"),
    "GMAIL_ACCOUNT_GONE": N_("Gmail refused the forwarded copy: the destination account is gone"),
    "GMAIL_REFUSED": N_("Gmail refused the forwarded copy; Cloudflare passed the refusal back"),
    "GMAIL_TEMPFAIL": N_("Gmail deferred the forwarded copy (4xx); Cloudflare does not queue"),
    "CLOUDFLARE_REFUSED": N_("Cloudflare itself refused the probe"),
    "MX_FOREIGN": N_("the domain's MX points at another provider, which refused the probe"),
    "MX_MISSING": N_("the domain publishes no MX record"),
    "BOUNCED": N_("a bounce, quoted with who refused and who reported it"),
    "DELAYED": N_("a delay warning: the sender's server is retrying"),
    # outbound
    "OUTBOUND_DELIVERED": N_("the send-as probe reached the probe mailbox"),
    "OUTBOUND_LOST": N_("no copy at the probe mailbox and no bounce"),
    "OUTBOUND_SPAM": N_("the receiver filed the send-as probe as spam"),
    "SENDAS_FROM_KEPT": N_("Gmail kept From: the alias (note)"),
    "SENDAS_FROM_REWRITTEN": N_("Gmail rewrote From: the alias is not a verified send-as address"),
    "SENDAS_SETUP_MISTAKES": N_("the Send-mail-as dialog's usual mistakes"),
    "SENDAS_GMAIL_SIGNED": N_("Gmail signed the message for gmail.com (note)"),
    "SENDAS_GMAIL_UNSIGNED": N_("Gmail did not sign the message (note)"),
    "SENDAS_DMARC_FAIL": N_("DMARC fails for the alias domain: the known send-as outcome"),
    "SENDAS_DMARC_REJECTED": N_("the receiver refused the send-as probe under p=reject"),
    "SENDAS_FIXES": N_("how to make send-as mail pass DMARC"),
    "RECEIVER_AR_MISSING": N_("the receiver's Authentication-Results is missing or untrusted"),
    "RECEIVER_VERDICT": N_("what the receiver concluded (note)"),
    "DMARC_LOOKUP_FAILED": N_("the domain's DMARC record could not be read (not the same as none)"),
    "GMAIL_SEND_LIMIT": N_("Gmail's daily sending limit is used up"),
    "GMAIL_LOGIN_THROTTLED": N_("Gmail refuses logins for a while"),
    "GMAIL_RATE_LIMITED": N_("Gmail limits how fast the account may send"),
    "GMAIL_SEND_REFUSED": N_("Gmail did not take the probe"),
    # both legs
    "LATE": N_("slower than the failure threshold"),
    "SLOW": N_("slower than the warning threshold"),
    "SAME_ACCOUNT": N_("the probe account is the Gmail account"),
    "LOGIN_REFUSED": N_("a server refused the account's credentials"),
    "TLS_REFUSED": N_("a server's TLS was missing or not trusted"),
    "SERVER_UNREACHABLE": N_("a server could not be reached"),
    "SERVER_REFUSED": N_("a server answered with an error"),
    "WATCH_FAILED": N_("watching a mailbox failed during the run"),
    "NOT_TESTED": N_("flowtest could not test, for another reason"),
    "NOTE": N_("a sentence without a more specific code"),
    # inbound, joined with Cloudflare's activity log (issue 17)
    "CF_NEVER_REACHED": N_(
        "Cloudflare's log has no row for the probe: it never reached Cloudflare"),
    "CF_REJECTED": N_("Cloudflare's log says it rejected the probe (SPF/DKIM/DMARC, RBL)"),
    "CF_FORWARD_REFUSED": N_("Cloudflare forwarded the probe and Gmail refused it (errorDetail)"),
    "CF_DELIVERED_NOT_FILED": N_("Cloudflare delivered the probe to Gmail, which never filed it"),
    "CF_DROPPED": N_("Cloudflare dropped the probe by a rule whose action is drop"),
    "CF_DROPPED_CATCH_ALL": N_("Cloudflare dropped the probe by the catch-all's drop action"),
    "CF_LOG_STATUS": N_("Cloudflare's log gives another status for the probe (quoted)"),
    "CF_LOG_DELIVERED": N_("Cloudflare's log has the probe forwarded, with its time (note)"),
    "CF_LOG_PENDING": N_("not in Cloudflare's log yet when the run's timeout passed (note)"),
    "CF_LOG_UNAVAILABLE": N_("Cloudflare's activity log could not be read (note)"),
}


def meaning(code: str) -> str:
    """The one-line meaning of a code, in the reader's language."""
    return _(CODES[code])


def finding(code: str, verdict: Verdict, text: str) -> Diagnosis:
    """One coded sentence; a code not in :data:`CODES` is a bug, caught here."""
    if code not in CODES:  # a typo here would silently break every script keyed on it
        raise ValueError(f"unknown diagnosis code {code!r}")
    return Diagnosis(code, text, verdict)


def verdict_of(findings: list[Diagnosis]) -> Verdict:
    """A probe's verdict: the worst its findings add (pass for notes only)."""
    return worst([f.verdict for f in findings])
