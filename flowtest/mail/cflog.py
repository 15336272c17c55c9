"""Judging a probe with Cloudflare's activity log: pure functions, no I/O.

The rows come from the API (``emailRoutingAdaptive``) and are untrusted:
every field is checked for type, bounded and shown inert. ``status`` has
no documented vocabulary (FACTS.md): ``delivered`` is success, ``action``
says forward, drop or reject, and any other status is quoted as open text
with its ``errorDetail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowtest.i18n import gettext as _
from flowtest.mail.codes import finding
from flowtest.mail.text import quote
from flowtest.model import Diagnosis

# A field report saw rows appear 2 to 17 minutes after sending (FACTS.md):
# only after this long is "no row" read as "never reached Cloudflare".
LOG_SETTLED_S = 20 * 60
FIELDS = ("datetime", "sessionId", "messageId", "from", "to", "subject", "status", "action",
          "eventType", "ruleMatched", "spf", "dkim", "dmarc", "arc", "errorDetail", "isSpam",
          "isNDR", "isLastEvent", "spamScore", "spamThreshold")


@dataclass(frozen=True)
class LogRow:
    at: float | None
    message_id: str
    to: str
    status: str
    action: str
    rule: str
    spf: str
    dkim: str
    dmarc: str
    arc: str
    error: str

    def to_json(self) -> dict[str, object]:
        return {"at": self.at, "messageId": self.message_id, "to": self.to,
                "status": self.status, "action": self.action, "ruleMatched": self.rule,
                "spf": self.spf, "dkim": self.dkim, "dmarc": self.dmarc, "arc": self.arc,
                "errorDetail": self.error}


def _text(row: dict[str, Any], key: str, limit: int = 200) -> str:
    value = row.get(key)
    return quote(value, limit) if isinstance(value, str) else ""


def _time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at.timestamp() if at.tzinfo is not None else None


def rows_of(data: object) -> list[LogRow]:
    """The rows of a GraphQL answer's ``data``; anything malformed is skipped."""
    out: list[LogRow] = []
    viewer = data.get("viewer") if isinstance(data, dict) else None
    zones = viewer.get("zones") if isinstance(viewer, dict) else None
    for zone in zones if isinstance(zones, list) else []:
        rows = zone.get("emailRoutingAdaptive") if isinstance(zone, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            out.append(LogRow(
                at=_time(row.get("datetime")), message_id=_text(row, "messageId", 300),
                to=_text(row, "to", 320), status=_text(row, "status", 60).lower(),
                action=_text(row, "action", 60).lower(), rule=_text(row, "ruleMatched", 80),
                spf=_text(row, "spf", 30), dkim=_text(row, "dkim", 30),
                dmarc=_text(row, "dmarc", 30), arc=_text(row, "arc", 30),
                error=_text(row, "errorDetail", 400)))
    return out


def _verdicts(row: LogRow) -> str:
    return f"SPF {row.spf or '?'}, DKIM {row.dkim or '?'}, DMARC {row.dmarc or '?'}"


def judge(rows: list[LogRow], *, alias: str, delivered: bool, sent_at: float | None,
          waited_s: float, settled_s: float = LOG_SETTLED_S) -> list[Diagnosis]:
    """What the log adds to a lost, late, spammed or bounced probe.

    ``waited_s``: how long after sending the log was last read; no row
    before ``settled_s`` is "not in the log yet", after it "never reached"."""
    mine = [r for r in rows if not r.to or r.to.lower() == alias.lower()] or rows
    if not mine:
        if waited_s >= settled_s:
            return [finding("CF_NEVER_REACHED", "fail",
                            _("Cloudflare's activity log has no row for this probe {minutes} "
                              "minutes after it was sent: it never reached Cloudflare. Look "
                              "before Cloudflare: the domain's MX and DNS, and the sending "
                              "server's queue.").format(minutes=int(waited_s // 60)))]
        return [finding("CF_LOG_PENDING", "pass",
                        _("Not in Cloudflare's log yet: its rows appear minutes late. "
                          "`flowtest explain RUN_ID` completes this diagnosis later."))]
    row = sorted(mine, key=lambda r: r.at or 0.0)[-1]   # the last event says where it ended
    if row.action == "drop":
        if row.rule.lower() in ("catch-all", "catch_all", "catchall"):
            return [finding("CF_DROPPED_CATCH_ALL", "fail",
                            _("Cloudflare's log: dropped by the catch-all (action drop): no "
                              "rule for {alias} is active, and the catch-all throws such mail "
                              "away without telling the sender.").format(alias=alias))]
        return [finding("CF_DROPPED", "fail",
                        _("Cloudflare's log: dropped by the rule for {alias}, whose action is "
                          "drop. Edit it to \"Send to an email\" in Email Routing.").format(
                              alias=alias))]
    if row.action == "reject" or row.status.startswith("reject"):
        rbl = "RBL" in row.error.upper()
        why = (_("the sending server is on a blocklist (RBL)") if rbl
               else _("it checked {verdicts}").format(verdicts=_verdicts(row)))
        return [finding("CF_REJECTED", "fail",
                        _("Cloudflare's log: rejected on arrival; {why}: \u00ab{error}\u00bb."
                          ).format(why=why, error=row.error) if row.error else
                        _("Cloudflare's log: rejected on arrival; {why}.").format(why=why))]
    if row.status == "delivered":
        if not delivered:
            return [finding("CF_DELIVERED_NOT_FILED", "fail",
                            _("Cloudflare's log says it forwarded the probe and Gmail accepted "
                              "it (delivered), yet it is in no Gmail folder (not in INBOX, "
                              "Spam or Trash): Gmail discarded it after accepting it. Only "
                              "this join shows it; check Gmail's filters and blocked "
                              "addresses."))]
        if row.at is not None and sent_at is not None:
            return [finding("CF_LOG_DELIVERED", "pass",
                            _("Cloudflare's log has it forwarded and accepted by Gmail, "
                              "{seconds} s after it was sent ({verdicts}).").format(
                                  seconds=f"{row.at - sent_at:.0f}", verdicts=_verdicts(row)))]
        return [finding("CF_LOG_DELIVERED", "pass",
                        _("Cloudflare's log has it forwarded and accepted by Gmail "
                          "({verdicts}).").format(verdicts=_verdicts(row)))]
    if row.error:
        temporary = "transient" in row.error.lower() or " 4." in f" {row.error}"
        return [finding("CF_FORWARD_REFUSED", "fail",
                        (_("Cloudflare forwarded the probe and Gmail refused it: "
                           "\u00ab{error}\u00bb. Cloudflare does not queue: the sending server "
                           "must retry later.") if temporary else
                         _("Cloudflare forwarded the probe and Gmail refused it: "
                           "\u00ab{error}\u00bb.")).format(error=row.error))]
    # A note: the mailbox side already carries the verdict; this adds Cloudflare's words.
    return [finding("CF_LOG_STATUS", "pass",
                    _("Cloudflare's log gives status \u00ab{status}\u00bb, action "
                      "\u00ab{action}\u00bb for this probe ({verdicts}).").format(
                          status=row.status or "?", action=row.action or "?",
                          verdicts=_verdicts(row)))]
