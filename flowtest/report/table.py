"""The human-readable summary of a run (rich): a table, then the diagnoses in
full sentences with their codes, so nothing a person needs is cut off in a
narrow terminal. Everything that came from the network (aliases, server
replies quoted in a diagnosis) is printed as plain text, never as markup."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from flowtest.i18n import N_
from flowtest.i18n import gettext as _
from flowtest.mail.text import inert
from flowtest.model import AuthVerdict, ProbeResult

# The legs in people's words; the JSON keeps "inbound"/"outbound".
LEGS = {"inbound": N_("inbound"), "outbound": N_("outbound")}
STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "error": "bold magenta"}


def _plain(value: str) -> Text:
    """Untrusted text as inert text: no markup, no terminal control sequences."""
    return Text(inert(value))


def _auth_cell(auth: AuthVerdict | None, *, aligned: bool = True) -> str:
    if auth is None or not auth.found:
        return "-"
    a = auth
    mark = " " + _("(aligned)") if aligned and (a.dkim.aligned or a.spf.aligned) else ""
    return (f"spf={a.spf.result} dkim={a.dkim.result} dmarc={a.dmarc.result} "
            f"arc={a.arc.result}{mark}")


def _relay_cell(p: ProbeResult) -> str:
    """Cloudflare's own verdict on arrival (inbound only)."""
    if p.leg != "inbound" or not p.delivered:
        return "-"
    if p.relay_auth is None or not p.relay_auth.found:
        return _("none")
    a = p.relay_auth
    return f"spf={a.spf.result} dkim={a.dkim.result} dmarc={a.dmarc.result}"


def render(console: Console, results: list[ProbeResult], *, title: str) -> None:
    table = Table(title=_plain(title), expand=False)
    for name, justify in ((_("leg"), "left"), (_("alias"), "left"), (_("verdict"), "left"),
                          (_("folder"), "left"), (_("latency"), "right"),
                          (_("auth (trusted)"), "left"), (_("Cloudflare saw"), "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for p in results:
        latency = f"{p.latency_s:.3f} s" if p.latency_s is not None else "-"
        table.add_row(_plain(_(LEGS.get(p.leg, p.leg))), _plain(p.alias),
                      Text(p.verdict.upper(), style=STYLE[p.verdict]),
                      _plain(p.folder or "-"), Text(latency), _plain(_auth_cell(p.auth)),
                      _plain(_relay_cell(p)))
    console.print(table)
    for p in results:
        head = Text(f"{p.verdict.upper():5}", style=STYLE[p.verdict])
        head.append_text(_plain(f" {_(LEGS.get(p.leg, p.leg))} {p.alias}"))
        console.print(head)
        for f in p.findings:
            line = Text("      ")
            line.append_text(_plain(f.code))
            line.stylize("dim", 6, 6 + len(f.code))
            line.append_text(_plain(f" {f.text}"))
            console.print(line, soft_wrap=True)
