"""Scheduled use: the Nagios line and the Prometheus textfile."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from flowtest.i18n import N_, ngettext
from flowtest.i18n import gettext as _
from flowtest.mail.text import inert

NAGIOS_CODES = {"pass": 0, "warn": 1, "fail": 2, "error": 3}
NAGIOS_WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
# The leg in the summary's words (perfdata labels keep "inbound"/"outbound").
LEGS = {"inbound": N_("inbound"), "outbound": N_("outbound")}


def _label(text: str) -> str:
    """A perfdata label: no quotes, equals signs or spaces (Nagios plugin guidelines)."""
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", text)


def nagios(report: dict[str, Any], *, warn_s: float, crit_s: float) -> tuple[int, str]:
    """Exit code and the one line: status, summary | perfdata."""
    code = NAGIOS_CODES[report["verdict"]]
    probes = report["probes"]
    bad = [p for p in probes if p["verdict"] != "pass"]
    dns_bad = [f for f in report["dns"] if f["severity"] in ("error", "warning")]
    if bad:
        first = bad[0]
        codes = [f["code"] for f in first.get("findings", ())]
        headline = f"{codes[0]}: " if codes else ""
        # The words follow the language; the status word, codes, leg and
        # perfdata never do (monitoring systems read them).
        summary = ngettext("{bad}/{total} probe not passing; {leg} {alias}: {why}",
                           "{bad}/{total} probes not passing; {leg} {alias}: {why}",
                           len(probes)).format(
            bad=len(bad), total=len(probes), leg=_(LEGS.get(first["leg"], first["leg"])),
            alias=first["alias"],
            why=headline + (first["diagnosis"][0] if first["diagnosis"] else first["verdict"]))
    elif dns_bad:
        summary = f"DNS: {dns_bad[0]['code']}: {dns_bad[0]['message']}"
    else:
        summary = ngettext("{count} probe delivered", "{count} probes delivered",
                           len(probes)).format(count=len(probes))
    perf = []
    for p in probes:
        label = _label(f"{p['leg']}_{p['alias']}")
        value = "U" if p["latency_s"] is None else f"{p['latency_s']:.3f}"
        perf.append(f"{label}={value}s;{warn_s:g};{crit_s:g};0;")
    # One line whatever the alias, a bounce or a DNS record holds.
    summary = inert(" ".join(summary.replace("|", "/").split()))
    return code, f"FLOWTEST {NAGIOS_WORDS[code]} - {summary} | {' '.join(perf)}".rstrip(" |")


def _escape(value: str) -> str:
    """A label value: control characters shown as escapes, then the format's own
    escapes (backslash, quote; newlines cannot remain)."""
    return inert(value).replace("\\", "\\\\").replace('"', '\\"')


_LAST_RE = re.compile(r"^flowtest_last_success_timestamp_seconds\{(.*)\} (\S+)$")


def previous_successes(text: str) -> dict[str, str]:
    """labels -> value of the last-success gauge in an earlier textfile."""
    return {m.group(1): m.group(2) for m in map(_LAST_RE.match, text.splitlines()) if m}


def prometheus(report: dict[str, Any], *, now: float | None = None,
               previous: dict[str, str] | None = None) -> str:
    """Text exposition format, for node_exporter's textfile collector. A probe
    that failed now keeps the last-success time of an earlier run."""
    at = time.time() if now is None else now
    previous = previous or {}
    out = [
        "# HELP flowtest_probe_success 1 if the probe passed (or warned), else 0.",
        "# TYPE flowtest_probe_success gauge",
    ]
    rows = []
    for p in report["probes"]:
        labels = f'leg="{_escape(p["leg"])}",alias="{_escape(p["alias"])}"'
        rows.append((labels, p))
        out.append(f"flowtest_probe_success{{{labels}}} {int(p['verdict'] in ('pass', 'warn'))}")
    out += ["# HELP flowtest_probe_latency_seconds End-to-end latency on flowtest's clock.",
            "# TYPE flowtest_probe_latency_seconds gauge"]
    out += [f"flowtest_probe_latency_seconds{{{labels}}} {p['latency_s']}"
            for labels, p in rows if p["latency_s"] is not None]
    out += ["# HELP flowtest_auth_pass 1 if the receiver's verdict for the method is pass.",
            "# TYPE flowtest_auth_pass gauge"]
    for labels, p in rows:
        for method, verdict in p["auth"].items():
            out.append(f'flowtest_auth_pass{{{labels},method="{method}"}} '
                       f"{int(verdict['result'] == 'pass')}")
    out += ["# HELP flowtest_last_success_timestamp_seconds When the probe last passed.",
            "# TYPE flowtest_last_success_timestamp_seconds gauge"]
    for labels, p in rows:
        if p["verdict"] in ("pass", "warn"):
            out.append(f"flowtest_last_success_timestamp_seconds{{{labels}}} {at:.0f}")
        elif labels in previous:
            out.append(f"flowtest_last_success_timestamp_seconds{{{labels}}} {previous[labels]}")
    out += ["# HELP flowtest_transport_unsafe 1 if the run used no TLS at all "
            "(plaintext) or TLS without verification (insecure).",
            "# TYPE flowtest_transport_unsafe gauge",
            f'flowtest_transport_unsafe{{mode="plaintext"}} {int(bool(report.get("plaintext")))}',
            f'flowtest_transport_unsafe{{mode="insecure"}} {int(bool(report.get("insecure")))}']
    out += ["# HELP flowtest_run_timestamp_seconds When this run finished.",
            "# TYPE flowtest_run_timestamp_seconds gauge",
            f"flowtest_run_timestamp_seconds {at:.0f}"]
    return "\n".join(out) + "\n"


def write_textfile(path: Path, report: dict[str, Any]) -> None:
    """Atomic replace, as the textfile collector requires."""
    try:
        previous = previous_successes(path.read_text(encoding="utf-8"))
    except OSError:
        previous = {}
    text = prometheus(report, previous=previous)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
