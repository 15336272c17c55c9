"""`flowtest cleanup`: stale probes of finished runs go to Trash, nothing else."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flowtest import cli
from flowtest.mail import probe
from flowtest.sandbox import World
from flowtest.sandbox import external as ext
from flowtest.sandbox import gmail as gm
from flowtest.sandbox.smtp import Reply, bounce_message

OLD = "ft-20261124000000abcdef-{:04d}x"   # a run two days before the test's clock
TWO_DAYS_AGO = "20261124000000"


def _mail(n: int, *, header: str | None = None, subject: str = "hello",
          body: str = "hi") -> bytes:
    lines = [f"From: someone{n}@mail.example", "To: flowtest.owner@gmail.com",
             f"Subject: {subject}", f"Message-ID: <cleanup-{n}-{time.time_ns()}@mail.example>"]
    if header is not None:
        lines.append(f"X-Flowtest-Probe: {header}")
    return ("\r\n".join(lines) + f"\r\n\r\n{body}\r\n").encode()


def _recent_token() -> str:
    return f"ft-{time.strftime('%Y%m%d%H%M%S', time.gmtime(time.time() - 60))}abcdef-0001x"


def _plant(world: World) -> dict[str, tuple[str, str]]:
    """Stale probes in every swept folder of both mailboxes, and look-alikes."""
    assert world.gmail is not None and world.external is not None
    g, e = world.gmail, world.external
    stale = {
        OLD.format(1): ("gmail", gm.INBOX), OLD.format(2): ("gmail", gm.SPAM),
        OLD.format(3): ("gmail", gm.SENT), OLD.format(4): ("external", ext.INBOX),
        OLD.format(5): ("external", ext.SENT)}
    for n, (token, (party, folder)) in enumerate(stale.items()):
        store, user = (g.store, world.gmail_address) if party == "gmail" else \
            (e.store, world.probe_address)
        world.call(store.append(user, folder, _mail(n, header=token), flags=["\\Seen"]))
    # Must stay: a probe of a run that may still be waiting, a malformed
    # token, the token only in the Subject or the body, a user's message.
    keep = [_mail(10, header=_recent_token()),
            _mail(11, header=OLD.format(6).replace("abcdef", "abcdefXX")),
            _mail(12, subject=OLD.format(7)), _mail(13, body=OLD.format(8)),
            _mail(14)]
    for raw in keep:
        world.call(g.store.append(world.gmail_address, gm.INBOX, raw, flags=["\\Flagged"]))
    # Delivery reports in the probe account: about a stale probe (goes), about
    # a recent one (stays).
    for n, token in ((20, OLD.format(9)), (21, _recent_token())):
        report = bounce_message(reporting_mta="sender.example", sender=world.probe_address,
                                rcpt="hello@example.me", original=_mail(n, header=token),
                                reply=Reply(421, "4.7.0 Try again later"), final=False)
        world.call(e.store.append(world.probe_address, ext.INBOX, report))
    stale[f"report about {OLD.format(9)}"] = ("external", ext.INBOX)
    return stale


def _everything(world: World) -> dict[tuple[str, str], list[tuple[int, bytes, set[str]]]]:
    out = {}
    for folder in (gm.INBOX, gm.SPAM, gm.SENT, gm.TRASH):
        out[("gmail", folder)] = world.gmail_folder(folder)
    for folder in (ext.INBOX, ext.SENT, ext.TRASH):
        out[("external", folder)] = world.probe_folder(folder)
    return out


def test_stale_probes_go_to_trash_and_nothing_else(
        world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _everything(world)
    stale = _plant(world)
    planted = _everything(world)
    path = world.write_config(tmp_path / "flowtest.toml")

    assert cli.main(["cleanup", "-c", str(path), "--older-than", "1d", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "flowtest.owner@gmail.com: would move 3 stale probe(s) and 0 report(s)" in out
    assert "probe@sender.example: would move 2 stale probe(s) and 1 report(s)" in out
    assert all(token in out for token in stale)
    assert _everything(world) == planted  # a dry run moves and flags nothing

    assert cli.main(["cleanup", "-c", str(path), "--older-than", "1d"]) == 0
    out = capsys.readouterr().out
    assert "flowtest.owner@gmail.com: moved 3 stale probe(s) and 0 report(s) about them to " \
        "Trash" in out
    assert "probe@sender.example: moved 2 stale probe(s) and 1 report(s)" in out
    after = _everything(world)
    for place, rows in planted.items():
        if place[1] in (gm.TRASH, ext.TRASH):
            continue
        kept = [r for r in rows if not any(
            f"X-Flowtest-Probe: {t.removeprefix('report about ')}".encode() in r[1]
            for t in stale)]
        assert after[place] == kept, place  # everything else byte- and flag-identical
    trashed = [raw for place in (("gmail", gm.TRASH), ("external", ext.TRASH))
               for _, raw, _ in after[place][len(before[place]):]]
    assert sorted(t for t in stale if any(t.removeprefix("report about ").encode() in raw
                                          for raw in trashed)) == sorted(stale)
    assert len(trashed) == len(stale)

    # Again: nothing left to move.
    assert cli.main(["cleanup", "-c", str(path), "--older-than", "1d"]) == 0
    assert "moved 0 stale probe(s) and 0 report(s)" in capsys.readouterr().out


@pytest.mark.parametrize(("age", "message"), [
    ("60", "would reach probes of runs that may still be waiting"),
    ("soon", "is not an age like 90m, 6h or 2d")])
def test_cleanup_refuses_an_unsafe_or_unreadable_age(
        world: World, tmp_path: Path, age: str, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    try:
        code = cli.main(["cleanup", "-c", str(path), "--older-than", age])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


def test_tokens_know_when_their_run_started() -> None:
    token = probe.token_for(probe.new_run_id(), 3)
    started = probe.started_at(token)
    assert started is not None and abs(started - time.time()) < 5
    assert probe.started_at(OLD.format(1)) == 1795478400.0  # 2026-11-24 00:00:00 UTC
    assert probe.is_stale(OLD.format(1), now=1795478400.0 + 7200, older_than_s=3600)
    assert not probe.is_stale(OLD.format(1), now=1795478400.0 + 1800, older_than_s=3600)
    for bad in ("ft-old-probe", "ft-20261124000000abcdef-0001", "ft-20261399000000abcdef-0001x",
                "x" + OLD.format(1)):
        assert probe.started_at(bad) is None and not probe.is_stale(bad, 2e9, 1)
