"""`flowtest explain RUN_ID`: look up a past run's unexplained inbound probes
in Cloudflare's activity log again (its rows appear minutes late) and amend
the run's report and the history."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from flowtest.cli import console as show
from flowtest.cli.target import add_config_option, opened
from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _
from flowtest.i18n import ngettext


def add(sub: Any) -> None:
    sp = sub.add_parser("explain", help=_("complete a run's diagnoses from Cloudflare's log"),
                        description=_("Look up the lost, late, spammed or bounced inbound "
                                      "probes of a past run in Cloudflare's activity log "
                                      "(needs [cloudflare]) and amend its report.json and the "
                                      "history."))
    sp.add_argument("run_id", metavar="RUN_ID", help=_("the run's id (or 'latest')"))
    add_config_option(sp)
    sp.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                    help=_("the report folder (default: reports/)"))
    sp.set_defaults(func=main)


def find_run(report_dir: Path, run_id: str) -> Path:
    folders = sorted(report_dir.glob("*/report.json"))
    if run_id != "latest":
        # The id is matched, never globbed: it comes from the command line.
        folders = [f for f in folders if f.parent.name.endswith("-" + run_id)]
    if not folders:
        raise ConfigError(_("no run {run_id} here").format(run_id=repr(run_id)),
                          file=report_dir)
    return folders[-1]


def amend_history(path: Path, report: dict[str, Any]) -> int:
    """Rewrite this run's lines of history.jsonl with the amended verdicts
    and codes (atomically; every other line is kept byte for byte)."""
    from flowtest.secrets import redact

    if not path.exists():
        return 0
    by_probe = {(p.get("leg"), p.get("alias")): p for p in report.get("probes", [])
                if isinstance(p, dict)}
    lines, changed = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        probe = by_probe.get((row.get("leg"), row.get("alias"))) if isinstance(row, dict) and \
            row.get("run_id") == report.get("run_id") else None
        if row is None or probe is None:
            lines.append(line)
            continue
        row["verdict"] = probe.get("verdict")
        row["codes"] = [f.get("code") for f in probe.get("findings", []) if isinstance(f, dict)]
        lines.append(redact(json.dumps(row, ensure_ascii=False)) + "\n")
        changed += 1
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    return changed


def main(args: argparse.Namespace) -> int:
    import asyncio

    from flowtest.flows import cfjoin
    from flowtest.report import json_report, junit
    from flowtest.report.run_folder import HISTORY

    path = find_run(args.report_dir, args.run_id)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(_("cannot read the report: {error}").format(error=exc),
                          file=path) from None
    if not isinstance(report, dict):
        raise ConfigError(_("not a flowtest report"), file=path)
    out = show.console()
    with opened(args, sandbox=False) as target:
        config = target.config
        if config.cloudflare is None:
            raise ConfigError(_("no [cloudflare] section: Cloudflare's log cannot be read "
                                "(docs/setup.md)"), file=args.config)
        amended = asyncio.run(cfjoin.explain(config, report))
    if amended:
        json_report.write(report, path)
        junit.write(report, path.parent / "junit.xml")
        amend_history(args.report_dir / HISTORY, report)
    for p in report.get("probes", []):
        log = p.get("cloudflare_log") if isinstance(p, dict) else None
        if isinstance(log, dict):
            # verdict and state are machine words (pass/warn/fail, found/absent…).
            show.say(out, _("{alias}: {verdict}, Cloudflare's log: {state}").format(
                alias=p.get("alias"), verdict=p.get("verdict"), state=log.get("state")))
            for f in p.get("findings", []):
                if str(f.get("code", "")) in cfjoin.JOIN_CODES:
                    show.say(out, f"  [{f.get('code')}] {f.get('message')}")
    show.say(out, ngettext("amended {count} probe in {path}", "amended {count} probes in {path}",
                           amended).format(count=amended, path=path) if amended
              else _("nothing left to explain in this run"))
    return 0 if report.get("verdict") in ("pass", "warn") else 1
