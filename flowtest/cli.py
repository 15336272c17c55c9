"""flowtest's command line: demo | run | doctor | login-check | inspect | latency | report |
cleanup | sandbox | init.

Exit codes: 0 every check passed (warnings included), 1 a check failed or could
not be made, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowtest import __version__
from flowtest.errors import ConfigError, FlowtestError, UnknownFault

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flowtest",
        description="Prove a personal domain's mail works end to end: Cloudflare Email "
                    "Routing in, Gmail send-as out. With no live config, everything runs "
                    "against the embedded sandbox.",
        epilog="Exit codes: 0 all checks passed (warnings allowed), 1 a check failed or "
               "could not be made, 2 usage or configuration error.")
    p.add_argument("--version", action="version", version=f"flowtest {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show tracebacks and protocol logs (secrets stay redacted)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def run_options(sp: argparse.ArgumentParser) -> None:
        # Also accepted after the command; SUPPRESS keeps the top-level value.
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and protocol logs (secrets stay redacted)")
        sp.add_argument("--leg", choices=("both", "inbound", "outbound"), default="both",
                        help="which direction to probe (default: both)")
        sp.add_argument("--json", metavar="PATH", type=Path,
                        help="write the JSON report (docs/report.schema.json) to PATH")
        sp.add_argument("--keep", action="store_true",
                        help="leave the probes in the mailboxes (default: move them to Trash)")
        sp.add_argument("--timeout", metavar="S", type=float,
                        help="seconds to wait for each probe (default: timeouts.delivery_s)")
        sp.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                        help="where each run writes <time>-<run id>/ (report.json, junit.xml, "
                             "report.html) and appends to history.jsonl (default: reports/)")
        sp.add_argument("--nagios", action="store_true",
                        help="print one Nagios line with perfdata; exit 0 OK, 1 WARNING, "
                             "2 CRITICAL, 3 UNKNOWN")
        sp.add_argument("--prometheus-textfile", metavar="PATH", type=Path,
                        help="write metrics for node_exporter's textfile collector")

    demo = sub.add_parser("demo", help="run the DNS check and both legs against the sandbox",
                          description="Start the sandbox world, check its DNS, probe every "
                                      "alias inbound and outbound, and show what arrived. "
                                      "--fault shows what a broken setup looks like.")
    demo.add_argument("--fault", metavar="NAME[=VALUE]", action="append", default=[],
                      help="break the sandbox on purpose (repeatable); "
                           "`flowtest sandbox --list-faults` lists them")
    demo.add_argument("--aliases", metavar="N", type=int, default=3,
                      help="how many aliases the sandbox routes (default 3, at most 200)")
    run_options(demo)

    run = sub.add_parser("run", help="run the DNS and inbound checks with a config file",
                         description="Check the domain's DNS, then probe every alias of the "
                                     "config, live or sandbox.")
    run.add_argument("--config", "-c", metavar="FILE", type=Path, default=Path("flowtest.toml"),
                     help="the config file (default: ./flowtest.toml)")
    run.add_argument("--insecure", action="store_true",
                     help="accept plaintext and unverified TLS (loudly marked in all output)")
    run_options(run)

    sb = sub.add_parser("sandbox", help="run the sandbox world in the foreground",
                        description="Run the sandbox until Ctrl-C, print its endpoints and "
                                    "accounts, and optionally write a config for it.")
    sb.add_argument("--write-config", metavar="PATH", type=Path,
                    help="write a flowtest.toml for this world (secrets in files beside it)")
    sb.add_argument("--fault", metavar="NAME[=VALUE]", action="append", default=[],
                    help="start with this fault (repeatable)")
    sb.add_argument("--list-faults", action="store_true", help="list the faults and exit")
    sb.add_argument("--for", dest="duration", metavar="S", type=float,
                    help="stop by itself after S seconds")
    sb.add_argument("--aliases", metavar="NAMES|N", type=_sandbox_aliases,
                    help="the routed aliases: comma-separated names, or a number N for "
                         "N generated ones a000, a001, … (at most 200; default: hello, "
                         "billing, me)")
    sb.add_argument("--truth", metavar="PATH", type=Path,
                    help="append the sandbox's ground truth to PATH as JSON lines, as it "
                         "happens (submitted, stored, listed, imap-open, …; for benchmarks)")

    doctor = sub.add_parser("doctor", help="check the domain's DNS for this setup",
                            description="Check NS, MX, SPF, DKIM and DMARC as Cloudflare Email "
                                        "Routing and Gmail send-as need them, and what "
                                        "conflicts with them. Sends no mail.")
    doctor.add_argument("--config", "-c", metavar="FILE", type=Path,
                        help="the config file (default: ./flowtest.toml; with --sandbox, none)")
    doctor.add_argument("--sandbox", action="store_true",
                        help="check the sandbox world's DNS instead (with --fault to break it)")
    doctor.add_argument("--fault", metavar="NAME[=VALUE]", action="append", default=[],
                        help="with --sandbox: start the world with this fault (repeatable)")
    doctor.add_argument("--json", metavar="PATH", type=Path,
                        help="write the JSON report (findings under 'dns') to PATH")

    cu = sub.add_parser("cleanup", help="move stale probes of finished runs to Trash",
                        description="Move flowtest probes that no run will clean up any more "
                                    "(they arrived after their run gave up, or the run was "
                                    "killed) from INBOX, Spam and Sent to Trash, in both "
                                    "mailboxes. Only messages whose X-Flowtest-Probe header is "
                                    "exactly a flowtest token from a run older than "
                                    "--older-than are moved; nothing else is touched.")
    cu.add_argument("--config", "-c", metavar="FILE", type=Path, default=Path("flowtest.toml"),
                    help="the config file (default: ./flowtest.toml)")
    cu.add_argument("--older-than", metavar="AGE", type=_age, default=_age("6h"),
                    help="only probes of runs that started longer ago than this: 90m, 6h, "
                         "2d or seconds (default 6h; at least timeouts.delivery_s + 10 min)")
    cu.add_argument("--dry-run", action="store_true",
                    help="list what would be moved and move nothing (folders opened "
                         "read-only)")
    cu.add_argument("--insecure", action="store_true",
                    help="accept plaintext and unverified TLS (loudly marked)")

    lc = sub.add_parser("login-check", help="log in to every endpoint; send nothing",
                        description="Connect and log in to both SMTP servers and both IMAP "
                                    "mailboxes, verify TLS, list the folders flowtest will "
                                    "watch. Sends nothing.")
    lc.add_argument("--config", "-c", metavar="FILE", type=Path, default=Path("flowtest.toml"),
                    help="the config file (default: ./flowtest.toml)")
    lc.add_argument("--insecure", action="store_true",
                    help="accept plaintext and unverified TLS (loudly marked)")
    lc.add_argument("--sandbox", action="store_true",
                    help="check the sandbox world's endpoints instead (with --fault)")
    lc.add_argument("--fault", metavar="NAME[=VALUE]", action="append", default=[],
                    help="with --sandbox: start the world with this fault (repeatable)")

    insp = sub.add_parser("inspect", help="read a saved message: hops, auth, diagnosis",
                          description="Read a message you saved (Gmail: ⋮ → Show original → "
                                      "Download original) and show its hops with delays, the "
                                      "receiver's trusted verdicts, alignment and what they "
                                      "mean. Offline: no network at all.")
    insp.add_argument("message", metavar="MESSAGE.eml", type=Path, help="the saved message")
    insp.add_argument("--authserv-id", metavar="ID",
                      help="whose Authentication-Results to trust (default: the topmost "
                           "header's, e.g. mx.google.com)")
    insp.add_argument("--json", metavar="PATH", type=Path,
                      help="write hops, auth and diagnosis as JSON to PATH")

    lat = sub.add_parser("latency", help="measure forwarding latency with repeated probes",
                         description="Send N inbound probes, S seconds apart, and print p50, "
                                     "p90, p99 and max end to end and per hop; write a plot and "
                                     "add the probes to the history.")
    lat.add_argument("--config", "-c", metavar="FILE", type=Path,
                     help="the config (default: the embedded sandbox)")
    lat.add_argument("--count", "-n", metavar="N", type=int, default=10,
                     help="how many probes (default 10, at most 1000)")
    lat.add_argument("--interval", metavar="S", type=float, default=1.0,
                     help="seconds between probes (default 1)")
    lat.add_argument("--alias", metavar="ADDRESS",
                     help="the alias to probe (default: the first configured)")
    lat.add_argument("--fault", metavar="NAME[=VALUE]", action="append", default=[],
                     help="sandbox only: start the world with this fault (repeatable)")
    lat.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                     help="run folder (with latency.svg) and history (default: reports/)")
    lat.add_argument("--json", metavar="PATH", type=Path,
                     help="write the JSON report, with the percentiles under 'latency'")

    rep = sub.add_parser("report", help="rebuild the latest report.html from the history",
                         description="Rebuild the latest run's report.html with every probe in "
                                     "history.jsonl.")
    rep.add_argument("--report-dir", metavar="DIR", type=Path, default=Path("reports"),
                     help="the report folder (default: reports/)")

    init = sub.add_parser("init", help="write a commented flowtest.toml template",
                          description="Write a commented config template to fill in.")
    init.add_argument("--path", metavar="FILE", type=Path, default=Path("flowtest.toml"),
                      help="where to write it (default: ./flowtest.toml)")
    init.add_argument("--domain", help="your domain (e.g. example.me)")
    init.add_argument("--alias", dest="aliases", metavar="NAME", action="append",
                      help="an alias to test (repeatable)")
    init.add_argument("--gmail", help="the Gmail address Cloudflare forwards to")
    init.add_argument("--probe", help="the probe account's address (another provider)")
    init.add_argument("--probe-provider", metavar="NAME",
                      help="the probe account's provider: gmail, outlook, icloud, qq, 163, "
                           "fastmail, yahoo or custom (default: guessed from --probe)")
    init.add_argument("--secrets", choices=("env", "file", "keyring"),
                      help="where the passwords will come from (default env)")
    init.add_argument("--non-interactive", action="store_true",
                      help="never ask; take flags and defaults (also when stdin is not a "
                           "terminal)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    return p


def _console(stderr: bool = False) -> Any:
    from rich.console import Console
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _exit_for(verdict: str) -> int:
    return EXIT_OK if verdict in ("pass", "warn") else EXIT_FAIL


async def _run_legs(config: Any, args: argparse.Namespace, *, poll_s: float,
                    settle_s: float) -> tuple[list[Any], float, float, str]:
    from rich.status import Status

    from flowtest.flows import inbound, outbound
    from flowtest.flows.common import Options
    from flowtest.mail.probe import new_run_id

    err = _console(stderr=True)
    legs = ("inbound", "outbound") if args.leg == "both" else (args.leg,)
    total = len(config.aliases) * len(legs)
    state = {"sent": 0, "done": 0}
    status = Status(f"Probing {total} alias(es)…", console=err)

    def progress(event: str, alias: str, detail: str) -> None:
        if event == "sent":
            state["sent"] += 1
        elif event == "judged":
            state["done"] += 1
            err.log(f"{alias}: {detail}")
        elif event in ("bounce", "delayed", "send-failed", "cleanup-failed"):
            err.log(f"{alias}: {event}: {detail}")
        status.update(f"sent {state['sent']}/{total}, judged {state['done']}/{total}, "
                      "waiting for the forwarded copies…")

    run_id = new_run_id()
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


def _doctor(config: Any) -> list[Any]:
    from rich.status import Status

    from flowtest.doctor import diagnose

    with Status(f"Checking the DNS of {config.domain}…", console=_console(stderr=True)):
        return asyncio.run(diagnose(config))


def _render_findings(out: Any, findings: list[Any]) -> None:
    style = {"error": "bold red", "warning": "bold yellow", "info": "dim"}
    out.print(f"[bold]DNS[/] ({len(findings)} findings)")
    for f in findings:
        out.print(f"[{style[f.severity]}]{f.severity.upper():7}[/] {f.code}: {f.message}",
                  soft_wrap=True)
        if f.fix and f.severity != "info":
            out.print(f"        fix: {f.fix}", soft_wrap=True)


def _finish(config: Any, results: list[Any], started: float, finished: float, run_id: str,
            args: argparse.Namespace, title: str, findings: list[Any] | None = None) -> int:
    from flowtest.report import json_report, metrics, run_folder, table

    report = json_report.build(target=config.target, started_at=started, finished_at=finished,
                               probes=results, insecure=config.tls.insecure, run_id=run_id,
                               dns=[f.to_json() for f in findings or []])
    folder = run_folder.write(report, args.report_dir) if getattr(args, "report_dir", None) \
        else None
    if getattr(args, "prometheus_textfile", None):
        metrics.write_textfile(args.prometheus_textfile, report)
    if args.json:
        json_report.write(report, args.json)
    if getattr(args, "nagios", False):
        code, line = metrics.nagios(report, warn_s=config.thresholds.latency_warn_s,
                                    crit_s=config.thresholds.latency_fail_s)
        if config.tls.insecure:
            line = "INSECURE TLS: " + line
        print(line)
        return code
    out = _console()
    if config.tls.insecure:
        out.print("[bold red]INSECURE: TLS verification is off for this run.[/]")
    if findings is not None:
        _render_findings(out, findings)
    if results:
        table.render(out, results, title=title)
    out.print(f"verdict: [bold]{report['verdict'].upper()}[/]")
    if args.json:
        out.print(f"JSON report: {args.json}")
    if folder is not None:
        out.print(f"run folder: {folder} (report.html, junit.xml, report.json)")
    return _exit_for(report["verdict"])


def _with_overrides(config: Any, args: argparse.Namespace) -> Any:
    import dataclasses
    changes: dict[str, Any] = {}
    if getattr(args, "keep", False):
        changes["cleanup"] = "keep"
    if getattr(args, "timeout", None):
        if args.timeout <= 0:
            raise ConfigError("must be greater than 0", key="--timeout")
        changes["timeouts"] = dataclasses.replace(config.timeouts, delivery_s=args.timeout)
    if getattr(args, "insecure", False):
        changes["tls"] = dataclasses.replace(config.tls, insecure=True)
    return dataclasses.replace(config, **changes) if changes else config


def cmd_demo(args: argparse.Namespace) -> int:
    from flowtest import guard
    from flowtest.sandbox import World
    from flowtest.sandbox.faults import parse as parse_fault

    for spec in args.fault:
        parse_fault(spec)
    if not 1 <= args.aliases <= 200:
        raise ConfigError("must be between 1 and 200 (Cloudflare's rule limit)", key="--aliases")
    names = ["hello", "shop", "billing"] + [f"alias{i:03d}" for i in range(3, args.aliases)]
    err = _console(stderr=True)
    with guard.guarded():
        err.log("Starting the sandbox world (Cloudflare, Gmail, an external provider, DNS)…")
        with World(aliases=names[:args.aliases], faults=args.fault) as world:
            config = _with_overrides(world.config(), args)
            findings = _doctor(config)
            results, started, finished, run_id = asyncio.run(
                _run_legs(config, args, poll_s=1.0, settle_s=0.5))
            world.check_errors()
    title = "flowtest demo (sandbox)" + (f" — faults: {', '.join(args.fault)}"
                                        if args.fault else "")
    return _finish(config, results, started, finished, run_id, args, title, findings)


def cmd_run(args: argparse.Namespace) -> int:
    from flowtest import config as cfg
    from flowtest import guard
    from flowtest.flows.inbound import same_account_problem

    config = _with_overrides(cfg.load(args.config), args)
    problem = same_account_problem(config)
    if problem:
        raise ConfigError(problem, file=args.config, key="probe.address")
    if config.target == "sandbox":
        guard.enable()
    _check_send_budget(config, args)
    findings = _doctor(config)
    results, started, finished, run_id = asyncio.run(
        _run_legs(config, args, poll_s=1.0 if config.target == "sandbox" else 10.0,
                     settle_s=0.5 if config.target == "sandbox" else 3.0))
    return _finish(config, results, started, finished, run_id, args,
                   f"flowtest run ({config.target}: {config.domain})", findings)


def _check_send_budget(config: Any, args: argparse.Namespace) -> None:
    """Refuse, before sending anything, an outbound run that would take this
    Gmail account past limits.daily_sends in 24 hours (Gmail's own limit of
    about 500 is shared with the user's real mail; over it, Gmail refuses all
    sending with 550 5.4.5 for up to a day)."""
    from flowtest.report import history
    from flowtest.report.run_folder import HISTORY

    budget = config.limits.daily_budget(config.target)
    if budget is None or args.leg not in ("both", "outbound") or args.report_dir is None:
        return
    now = time.time()
    sent = history.recent_sends(args.report_dir / HISTORY, leg="outbound",
                                target=config.target, now=now)
    wanted = len(config.aliases)
    if len(sent) + wanted > budget:
        free_at = sent[len(sent) + wanted - budget - 1] + 86400 if wanted <= budget else None
        when = (f"; enough of the budget is free again at "
                f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(free_at))}"
                if free_at is not None else "")
        raise ConfigError(
            f"{len(sent)} outbound probes in the last 24 hours (from "
            f"{args.report_dir / HISTORY}) and {wanted} more would pass the budget of "
            f"{budget}{when}. Run --leg inbound, or raise the budget if this account "
            "sends little else", key="limits.daily_sends", file=config.path)


def cmd_doctor(args: argparse.Namespace) -> int:
    from flowtest import config as cfg
    from flowtest import guard

    started = time.time()
    if args.sandbox:
        from flowtest.sandbox import World
        from flowtest.sandbox.faults import parse as parse_fault

        for spec in args.fault:
            parse_fault(spec)
        with guard.guarded(), World(faults=args.fault) as world:
            config = world.config()
            findings = _doctor(config)
    else:
        if args.fault:
            raise ConfigError("--fault needs --sandbox", key="--fault")
        config = cfg.load(args.config or Path("flowtest.toml"))
        if config.target == "sandbox":
            guard.enable()
        findings = _doctor(config)
    return _finish(config, [], started, time.time(), "", args,
                   f"flowtest doctor ({config.domain})", findings)


def _age(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(value) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age like 90m, 6h or 2d") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return seconds


def _sandbox_aliases(text: str) -> list[str]:
    from flowtest.config import MAX_ALIASES
    if text.strip().isdigit():
        count = int(text)
        if not 1 <= count <= MAX_ALIASES:
            raise argparse.ArgumentTypeError(f"between 1 and {MAX_ALIASES}, not {count}")
        return [f"a{i:03d}" for i in range(count)]
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or len(names) > MAX_ALIASES:
        raise argparse.ArgumentTypeError(f"give 1 to {MAX_ALIASES} names, comma-separated")
    return names


def cmd_sandbox(args: argparse.Namespace) -> int:
    from flowtest import guard
    from flowtest.sandbox import FAULTS, World
    from flowtest.sandbox.faults import parse as parse_fault

    out = _console()
    if args.list_faults:
        for name, what in FAULTS.items():
            out.print(f"[bold]{name:18}[/] {what}")
        return EXIT_OK
    for spec in args.fault:
        parse_fault(spec)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)}
    try:
        options: dict[str, Any] = {"aliases": args.aliases} if args.aliases else {}
        # The truth file closes after the world stops: its last events still land.
        with guard.guarded(), contextlib.ExitStack() as closing, \
                World(faults=args.fault, **options) as world:
            if args.truth is not None:
                _stream_truth(world, args.truth, closing)
            config = world.config()
            out.print("[bold]flowtest sandbox[/] is running. Ctrl-C stops it.")
            for name, account in (("Gmail", config.gmail), ("probe account", config.probe)):
                out.print(f"  {name}: {account.address}  (password: {account.password.ref})")
                # \[ : rich would read "[starttls]" as markup and print nothing.
                out.print(f"    SMTP {account.smtp.host}:{account.smtp.port} "
                          f"\\[{account.smtp.tls}] at {account.smtp.address}")
                out.print(f"    IMAP {account.imap.host}:{account.imap.port} "
                          f"\\[{account.imap.tls}] at {account.imap.address}")
            ns = ", ".join(f"{h}:{p}" for h, p in config.dns.nameservers)
            out.print(f"  DNS {ns} (UDP and TCP); CA {config.tls.ca_file}")
            out.print(f"  aliases: {', '.join(a.address for a in config.aliases)}")
            if args.fault:
                out.print(f"  faults: {', '.join(args.fault)}")
            if args.write_config:
                path = world.write_config(args.write_config)
                out.print(f"  config written to {path} (valid while this sandbox runs)")
            sys.stdout.flush()
            stop.wait(args.duration)
            out.print("stopping…")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    out.print("sandbox stopped")
    return EXIT_OK


def _stream_truth(world: Any, path: Path, closing: contextlib.ExitStack) -> None:
    import dataclasses
    import json
    try:
        sink = closing.enter_context(path.open("a", encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", file=path) from None

    def write(event: Any) -> None:
        sink.write(json.dumps(dataclasses.asdict(event)) + "\n")
        sink.flush()
    world.truth.subscribe(write)


def cmd_init(args: argparse.Namespace) -> int:
    import tomllib

    from flowtest import config as cfg
    from flowtest import providers

    path: Path = args.path
    if path.exists() and not args.force:
        raise ConfigError("already exists; use --force to overwrite it", file=path)
    interactive = not args.non_interactive and sys.stdin.isatty()

    def ask(value: str | None, question: str, default: str,
            valid: Any = lambda v: True, why: str = "") -> str:
        while value is None and interactive:
            answer = input(f"{question} [{default}]: ").strip() or default
            if valid(answer):
                return answer
            print(f"  {why}")
        value = value if value is not None else default
        if not valid(value):
            raise ConfigError(why, key=question)
        return value

    domain = ask(args.domain, "Your domain", "example.me", cfg.check_domain,
                 "that is not a domain name").lower()
    alias_text = ask(",".join(args.aliases) if args.aliases else None,
                     "Aliases to test (comma-separated)", "hello")
    aliases = tuple(a.strip() for a in alias_text.split(",") if a.strip())
    gmail = ask(args.gmail, "Your Gmail address", "you@gmail.com", cfg.check_address,
                "that is not a mail address")
    probe = ask(args.probe, "The probe account (at another provider)", "probe@fastmail.com",
                lambda a: cfg.check_address(a) and a.lower() != gmail.lower(),
                "give a mail address other than the Gmail account")
    guess = next((name for name, p in providers.PROVIDERS.items()
                  if probe.rpartition("@")[2] in (f"{name}.com", p.imap[0].split(".", 1)[1])),
                 "custom")
    provider = ask(args.probe_provider, "Its provider (" + ", ".join(providers.PROVIDERS)
                   + ", custom)", guess, lambda v: v == "custom" or providers.get(v) is not None,
                   "unknown provider")
    secrets = ask(args.secrets, "Where passwords come from (env, file, keyring)", "env",
                  lambda v: v in cfg.SECRET_SOURCES, "answer env, file or keyring")
    text = cfg.template(domain=domain, aliases=aliases, gmail=gmail, probe=probe,
                        provider=provider, secrets=secrets)
    cfg.parse(tomllib.loads(text), file=path)  # never write a file that would not load
    path.write_text(text, encoding="utf-8")
    profile = providers.get(provider)
    out = _console()
    out.print(f"wrote {path}")
    out.print(f"next: put the Gmail app password and the probe account's "
              f"{profile.password_kind if profile else 'password'} where the file says "
              f"({secrets}), then run `flowtest login-check -c {path}`.")
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from flowtest.mail.inspect import inspect

    try:
        raw = args.message.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=args.message) from None
    if not raw.strip():
        raise ConfigError("the file is empty", file=args.message)
    result = inspect(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), args.authserv_id)
    out = _console()
    out.print(f"[bold]{args.message}[/] (trusting {result.authserv_id or 'nobody'})")
    for i, hop in enumerate(result.hops, 1):
        delay = f"+{hop.delay_s:.3f} s" if hop.delay_s is not None else "?"
        out.print(f"  {i}. {hop.from_ or '?'} → {hop.by or '?'}  {delay}  [{hop.source}]")
    for sentence in result.diagnosis:
        out.print(f"  {sentence}", soft_wrap=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        out.print(f"JSON: {args.json}")
    return EXIT_OK


async def _measure(config: Any, args: argparse.Namespace) -> list[Any]:
    from rich.progress import Progress

    from flowtest.flows import inbound
    from flowtest.flows.common import Options
    from flowtest.mail.probe import new_run_id

    aliases = [a for a in config.aliases if args.alias in (None, a.address)]
    if not aliases:
        raise ConfigError(f"{args.alias} is not one of the configured aliases", key="--alias")
    sandbox = config.target == "sandbox"
    options = Options(poll_s=1.0 if sandbox else 10.0, settle_s=0.0)
    results: list[Any] = []
    with Progress(console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"probing {aliases[0].address}", total=args.count)
        for i in range(args.count):
            if i:
                await asyncio.sleep(args.interval)
            results += await inbound.run(config, aliases=aliases[:1], run_id=new_run_id(),
                                         options=options)
            bar.advance(task)
    return results


def cmd_latency(args: argparse.Namespace) -> int:
    import json

    from flowtest import config as cfg
    from flowtest import guard
    from flowtest.mail.probe import new_run_id
    from flowtest.mail.stats import by_hop
    from flowtest.report import json_report, latency_plot, run_folder

    if not 1 <= args.count <= 1000:
        raise ConfigError("must be between 1 and 1000", key="--count")
    if args.interval < 0:
        raise ConfigError("must be 0 or more", key="--interval")
    started = time.time()
    if args.config is None:
        from flowtest.sandbox import World
        with guard.guarded(), World(faults=args.fault) as world:
            config = world.config()
            results = asyncio.run(_measure(config, args))
    else:
        if args.fault:
            raise ConfigError("--fault works only with the sandbox (no --config)", key="--fault")
        config = cfg.load(args.config)
        if config.target == "sandbox":
            guard.enable()
        results = asyncio.run(_measure(config, args))
    summaries = by_hop(results)
    report = json_report.build(target=config.target, started_at=started, finished_at=time.time(),
                               probes=results, run_id=new_run_id())
    folder = run_folder.write(report, args.report_dir)
    latencies = [r.latency_s for r in results if r.latency_s is not None]
    plot = latency_plot.write(folder / "latency.svg", latencies,
                              title=f"flowtest latency: {results[0].alias}, {len(latencies)} "
                                    f"of {len(results)} delivered")
    out = _console()
    out.print(f"{'':34} {'n':>4} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}")
    for s in summaries:
        out.print(f"{s.name[:34]:34} {s.count:>4} {s.p50:>8.3f}s {s.p90:>8.3f}s {s.p99:>8.3f}s "
                  f"{s.max:>8.3f}s")
    lost = len(results) - len(latencies)
    if lost:
        out.print(f"[bold red]{lost} of {len(results)} probes were not delivered[/]")
    out.print(f"plot: {plot}\nrun folder: {folder}")
    if args.json:
        report["latency"] = [s.to_json() for s in summaries]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return _exit_for(report["verdict"])


def cmd_cleanup(args: argparse.Namespace) -> int:
    from flowtest import config as cfg
    from flowtest import guard
    from flowtest.flows import sweep

    config = _with_overrides(cfg.load(args.config), args)
    if config.target == "sandbox":
        guard.enable()
    floor = sweep.shortest_safe_age(config)
    if args.older_than < floor:
        raise ConfigError(f"{args.older_than:g} s would reach probes of runs that may still be "
                          f"waiting for them; use at least {floor:g} s (timeouts.delivery_s "
                          "+ 10 min)", key="--older-than")
    reports = asyncio.run(sweep.stale(config, args.older_than, dry_run=args.dry_run))
    out = _console()
    if config.tls.insecure:
        out.print("[bold red]INSECURE: TLS verification is off.[/]")
    verb = "would move" if args.dry_run else "moved"
    failed = False
    for report in reports:
        if report.error is not None:
            failed = True
            out.print(f"[bold red]ERROR[/] {report.account}: {report.error}", soft_wrap=True)
            continue
        parts = ", ".join(f"{s.folder} {len(s.probes) + len(s.reports)}" for s in report.swept)
        out.print(f"{report.account}: {verb} {report.probes} stale probe(s) and "
                  f"{report.reports} report(s) about them to Trash ({parts})",
                  soft_wrap=True, markup=False)
        if args.dry_run:
            for swept in report.swept:
                for token in swept.probes:
                    out.print(f"  {swept.folder}: {token}", markup=False)
                for tokens in swept.reports:
                    out.print(f"  {swept.folder}: report about {', '.join(tokens)}",
                              markup=False)
    return EXIT_FAIL if failed else EXIT_OK


def cmd_login_check(args: argparse.Namespace) -> int:
    from flowtest import config as cfg
    from flowtest import guard
    from flowtest.flows import login_check

    if args.sandbox:
        from flowtest.sandbox import World
        from flowtest.sandbox.faults import parse as parse_fault

        for spec in args.fault:
            parse_fault(spec)
        with guard.guarded(), World(faults=args.fault) as world:
            config = _with_overrides(world.config(), args)
            checks = asyncio.run(login_check.check(config))
    else:
        if args.fault:
            raise ConfigError("--fault needs --sandbox", key="--fault")
        config = _with_overrides(cfg.load(args.config), args)
        if config.target == "sandbox":
            guard.enable()
        checks = asyncio.run(login_check.check(config))
    out = _console()
    if config.tls.insecure:
        out.print("[bold red]INSECURE: TLS verification is off.[/]")
    for c in checks:
        mark = "[bold green]OK  [/]" if c.ok else "[bold red]FAIL[/]"
        out.print(f"{mark} {c.role:22} {c.endpoint}: {c.detail}", soft_wrap=True)
        if c.hint:
            out.print(f"     hint: {c.hint}", soft_wrap=True)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAIL


def cmd_report(args: argparse.Namespace) -> int:
    from flowtest.report import run_folder

    path = run_folder.rebuild(args.report_dir)
    if path is None:
        raise ConfigError("no run found here; run `flowtest demo` or `flowtest run` first",
                          file=args.report_dir)
    _console().print(f"rebuilt {path}")
    return EXIT_OK


COMMANDS = {"demo": cmd_demo, "run": cmd_run, "doctor": cmd_doctor, "inspect": cmd_inspect,
            "report": cmd_report, "sandbox": cmd_sandbox, "init": cmd_init,
            "latency": cmd_latency, "login-check": cmd_login_check, "cleanup": cmd_cleanup}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.debug:
        from flowtest.secrets import redact

        class _Redact(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record.msg = redact(record.getMessage())
                record.args = ()
                return True

        for handler in logging.getLogger().handlers:
            handler.addFilter(_Redact())
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"flowtest: config error: {exc}", file=sys.stderr)
        if getattr(args, "nagios", False):
            # A monitoring system reads 2 as CRITICAL; this is "could not test".
            print(f"FLOWTEST UNKNOWN - config error: {exc}")
            return 3
        return EXIT_USAGE
    except UnknownFault as exc:
        print(f"flowtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FlowtestError as exc:
        from flowtest.secrets import redact
        if args.debug:
            import traceback
            print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)
        print(f"flowtest: error: {redact(str(exc))}", file=sys.stderr)
        if getattr(args, "nagios", False):
            print(f"FLOWTEST UNKNOWN - {redact(str(exc))}")
            return 3
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("flowtest: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
