"""What `demo` and `run` share: their options, the DNS check, probing both
legs with progress lines, and the end of a run (reports, table, verdict,
exit code)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from flowtest.cli import console as show
from flowtest.cli import interrupt
from flowtest.cli.target import seconds
from flowtest.i18n import N_, ngettext
from flowtest.i18n import gettext as _

EXIT_OK, EXIT_FAIL = 0, 1


def exit_for(verdict: str) -> int:
    return EXIT_OK if verdict in ("pass", "warn") else EXIT_FAIL


def add_run_options(sp: argparse.ArgumentParser) -> None:
    # Also accepted after the command; SUPPRESS keeps the top-level value.
    sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                    help=_("show tracebacks and protocol logs (secrets stay redacted)"))
    sp.add_argument("--leg", choices=("both", "inbound", "outbound"), default="both",
                    help=_("which direction to probe (default: both)"))
    sp.add_argument("--json", metavar="PATH", type=Path,
                    help=_("write the JSON report (docs/report.schema.json) to PATH"))
    sp.add_argument("--keep", action="store_true",
                    help=_("leave the probes in the mailboxes (default: move them to Trash)"))
    sp.add_argument("--timeout", metavar="S", type=seconds,
                    help=_("seconds to wait for each probe, more than 0 (default: "
                           "timeouts.delivery_s)"))
    sp.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                    help=_("where each run writes <time>-<run id>/ (report.json, junit.xml, "
                           "report.html) and appends to history.jsonl (default: reports/)"))
    sp.add_argument("--nagios", action="store_true",
                    help=_("print one Nagios line with perfdata; exit 0 OK, 1 WARNING, "
                           "2 CRITICAL, 3 UNKNOWN"))
    sp.add_argument("--prometheus-textfile", metavar="PATH", type=Path,
                    help=_("write metrics for node_exporter's textfile collector"))


def probe(config: Any, args: argparse.Namespace, *, poll_s: float, settle_s: float,
          run_id: str | None = None) -> tuple[list[Any], float, float, str]:
    """Both legs (or the one asked for), one after the other; Ctrl-C or
    SIGTERM stops them after their cleanup (see interrupt). ``run_id``: one
    made earlier (run --ping sends it with /start), else a new one."""
    from flowtest.flows.common import INTERRUPTED_CLEANUP_S

    report = Reporter(show.console(stderr=True))
    return interrupt.run(_probe(config, args, report, poll_s=poll_s, settle_s=settle_s,
                                run_id=run_id),
                         cleanup_s=None if config.cleanup == "keep" else INTERRUPTED_CLEANUP_S,
                         on_signal=report.interrupted)


async def _probe(config: Any, args: argparse.Namespace, report: Reporter, *, poll_s: float,
                 settle_s: float, run_id: str | None) -> tuple[list[Any], float, float, str]:
    from rich.status import Status

    from flowtest.flows import inbound, outbound
    from flowtest.flows.common import Options
    from flowtest.mail.probe import new_run_id

    legs = ("inbound", "outbound") if args.leg == "both" else (args.leg,)
    total = len(config.aliases) * len(legs)
    state = {"sent": 0, "done": 0}
    status = Status(ngettext("Probing {count} alias…", "Probing {count} aliases…",
                             total).format(count=total), console=report.err)

    def progress(event: str, alias: str, detail: str) -> None:
        if event == "sent":
            state["sent"] += 1
        elif event == "judged":
            state["done"] += 1
        report(event, alias, detail)
        status.update(_("sent {sent}/{total}, judged {judged}/{total}, waiting for the "
                        "forwarded copies…").format(sent=state["sent"], judged=state["done"],
                                                     total=total))

    run_id = run_id or new_run_id()
    started = time.time()
    options = Options(poll_s=poll_s, settle_s=settle_s)
    results: list[Any] = []
    with status:
        # One leg after the other: each holds one IMAP connection per mailbox.
        if "inbound" in legs:
            results += await inbound.run(config, run_id=run_id, progress=progress,
                                         options=options)
        if "outbound" in legs:
            results += await outbound.run(config, run_id=run_id, progress=progress,
                                          options=options,
                                          expect_dmarc_pass=config.require_dmarc_pass)
    return results, started, time.time(), run_id


# The event words of progress lines: English as the flows name them, translated when shown.
EVENTS = {"bounce": N_("bounce"), "delayed": N_("delayed"), "send-failed": N_("send-failed"),
          "cleanup-failed": N_("cleanup-failed"), "cleanup": N_("cleanup")}


class Reporter:
    """Progress lines for people: what was judged, what bounced, what could
    not be cleaned up (and, once the run is cancelled, what was)."""

    LOUD = ("bounce", "delayed", "send-failed", "cleanup-failed")

    def __init__(self, err: Any) -> None:
        self.err = err
        self.stopping = False

    def interrupted(self) -> None:
        self.stopping = True

    def __call__(self, event: str, alias: str, detail: str) -> None:
        if event == "judged":
            show.progress(self.err, f"{alias}: {detail}")
        elif event in self.LOUD or (event == "cleanup" and self.stopping):
            show.progress(self.err, _("{alias}: {event}: {detail}").format(
                alias=alias, event=_(EVENTS[event]) if event in EVENTS else event, detail=detail))


def check_dns(config: Any) -> list[Any]:
    import asyncio

    from rich.status import Status

    from flowtest.doctor import diagnose

    with Status(_("Checking the DNS of {domain}…").format(domain=config.domain),
                console=show.console(stderr=True)):
        return asyncio.run(diagnose(config))


def finish(config: Any, results: list[Any], started: float, finished: float, run_id: str,
           args: argparse.Namespace, title: str, findings: list[Any] | None = None,
           *, dns_checked: bool = True) -> int:
    """Write every report asked for, then show the run; the exit code."""
    from flowtest.config import plaintext_endpoints
    from flowtest.report import json_report, metrics, run_folder, table

    report = json_report.build(target=config.target, started_at=started, finished_at=finished,
                               probes=results, insecure=config.tls.insecure, run_id=run_id,
                               plaintext=plaintext_endpoints(config),
                               dns=[f.to_json() for f in findings or []],
                               dns_checked=dns_checked)
    folder = run_folder.write(report, args.report_dir) if getattr(args, "report_dir", None) \
        else None
    if getattr(args, "prometheus_textfile", None):
        metrics.write_textfile(args.prometheus_textfile, report)
    if args.json:
        json_report.write(report, args.json)
    if getattr(args, "nagios", False):
        code, line = metrics.nagios(report, warn_s=config.thresholds.latency_warn_s,
                                    crit_s=config.thresholds.latency_fail_s)
        print(show.inert(show.nagios_prefix(config) + line))  # one line, whatever it quotes
        return code
    out = show.console()
    show.banner(out, config)
    if findings is not None:
        show.findings(out, findings)
    elif not dns_checked:
        show.say(out, _("DNS not checked (--no-dns)"))
    if results:
        table.render(out, results, title=title)
    show.verdict(out, report["verdict"])
    if args.json:
        show.say(out, _("JSON report: {path}").format(path=args.json))
    if folder is not None:
        show.say(out, _("run folder: {folder} (report.html, junit.xml, report.json)").format(
            folder=folder))
    return exit_for(report["verdict"])
