"""Alerts on state changes only (issue 16, item 4): messages through apprise to
a real HTTP receiver on loopback, the dead-man's-switch pings to the same, the
state across restarts, hostile diagnoses, secrets in URLs."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from flowtest import guard
from flowtest.errors import ConfigError
from flowtest.flows import alerting
from flowtest.flows.alerting import Alerter, AlertState, load_state, save_state, short_report
from flowtest.model import Diagnosis, ProbeResult, Verdict
from flowtest.net import notify
from tests.alert_receiver import Receiver, receiver

__all__ = ["receiver"]

CODES: dict[str, tuple[str, Verdict]] = {
    "pass": ("INBOUND_DELIVERED", "pass"), "warn": ("SLOW", "warn"),
    "fail": ("INBOUND_LOST", "fail"), "error": ("AUTH_FAILED", "error")}


def result(verdict: Verdict, alias: str = "hello@example.me", *, leg: str = "inbound",
           text: str = "", code: str = "") -> ProbeResult:
    c, v = CODES[verdict]
    return ProbeResult(leg=leg, alias=alias, token="ft-x", verdict=verdict,  # type: ignore[arg-type]
                       delivered=verdict in ("pass", "warn"), folder=None, latency_s=None,
                       findings=(Diagnosis(code or c, text or f"{c} happened.", v),))


def observe(alerter: Alerter, verdicts: Sequence[Verdict], **kw: str) -> list[list[str]]:
    out = []
    for n, v in enumerate(verdicts):
        alerts = asyncio.run(alerter.observe([result(v, **kw)], run_id=f"run{n}"))
        out.append([a.kind for a in alerts])
    return out


def messages(r: Receiver, path: str = "/hook") -> list[dict[str, str]]:
    return [q.json() for q in r.at(path)]


def test_flapping_sends_one_down_and_one_recovered_per_episode(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url("json", "/hook")])
    kinds = observe(alerter, ["fail", "fail", "pass", "fail", "fail", "fail", "pass"])
    assert kinds == [[], ["down"], ["recovered"], [], ["down"], [], ["recovered"]]
    got = messages(receiver)
    assert [m["type"] for m in got] == ["failure", "success", "failure", "success"]
    assert "INBOUND_LOST" in got[0]["title"] and "INBOUND_LOST" in got[0]["message"]
    assert "recovered" in got[1]["title"]


def test_failures_that_never_reach_k_in_a_row_stay_quiet(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url("json", "/hook")])
    assert observe(alerter, ["fail", "pass", "error", "pass", "fail", "warn"]) == [[]] * 6
    assert receiver.got == []


@pytest.mark.parametrize("after", [1, 3])
def test_k_is_the_number_of_failed_runs_in_a_row(receiver: Receiver, after: int) -> None:
    alerter = Alerter([receiver.url("json", "/hook")], after=after)
    kinds = observe(alerter, ["fail"] * 4)
    assert kinds.index(["down"]) == after - 1 and kinds.count(["down"]) == 1


def test_a_warning_is_not_a_failure_and_ends_an_outage(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url("json", "/hook")])
    assert observe(alerter, ["fail", "warn", "fail", "warn"]) == [[]] * 4
    assert observe(alerter, ["fail", "fail", "warn", "warn"]) == [[], ["down"], ["recovered"],
                                                                  []]
    assert alerter.states[("inbound", "hello@example.me")].state == "warning"


def test_could_not_test_counts_and_says_so(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url("json", "/hook")])
    assert observe(alerter, ["error", "fail"]) == [[], ["down"]]
    alerter2 = Alerter([receiver.url("json", "/other")])
    observe(alerter2, ["error", "error"])
    title = messages(receiver, "/other")[0]["title"]
    assert "AUTH_FAILED" in title and "CANNOT BE TESTED" in title
    assert alerter2.states[("inbound", "hello@example.me")].state == "unknown"


def test_each_leg_and_alias_has_its_own_state(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url("json", "/hook")])
    observe(alerter, ["fail"], alias="a@example.me")
    observe(alerter, ["fail"], alias="b@example.me")
    observe(alerter, ["fail"], alias="a@example.me", leg="outbound")
    assert receiver.got == []
    assert observe(alerter, ["fail"], alias="a@example.me") == [["down"]]


def test_several_paths_down_at_once_make_one_message(receiver: Receiver) -> None:
    alerter = Alerter([receiver.url("json", "/hook")])
    batch = [result("fail", f"{n}@example.me") for n in ("a", "b", "c")]
    for run in ("r1", "r2"):
        asyncio.run(alerter.observe(batch, run_id=run))
    got = messages(receiver)
    assert len(got) == 1 and "3 mail paths DOWN" in got[0]["title"]
    assert all(f"{n}@example.me" in got[0]["message"] for n in "abc")


def test_the_state_survives_a_restart(receiver: Receiver, tmp_path: Path) -> None:
    url = receiver.url("json", "/hook")
    first = Alerter([url])
    observe(first, ["fail"])
    save_state(tmp_path / "alerts.json", first.state())
    second = Alerter([url], state=load_state(tmp_path / "alerts.json"))
    assert observe(second, ["fail"]) == [["down"]]   # the second failure in a row
    third = Alerter([url], state=json.loads(json.dumps(second.state())))
    assert observe(third, ["fail", "pass"]) == [[], ["recovered"]]  # down once, owed recovery
    st = AlertState.from_json(third.state()["states"][0])
    assert (st.state, st.failures, st.down) == ("ok", 0, False)


@pytest.mark.parametrize("junk", ['{"version": 1, "states": [{"state": "on fire"}]}',
                                  '{"version": 99}', "[1, 2]", "not json {", ""])
def test_a_damaged_state_file_starts_afresh(junk: str, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "alerts.json"
    path.write_text(junk)
    alerter = Alerter([], state=load_state(path))
    assert alerter.states == {}
    assert observe(alerter, ["fail", "fail"]) == [[], ["down"]]


def test_a_hostile_diagnosis_arrives_inert_and_bounded(receiver: Receiver) -> None:
    hostile = ("<script>alert(1)</script> [/] [bold red]x[/] \x1b[2J\x1b]0;pwn\x07 \x00 "
               "\u202egnp.exe\r\nX-Injected: 1 ") + "A" * 10_000
    alerter = Alerter([receiver.url("json", "/plain"), receiver.url("json", "/html?format=html"),
                       receiver.url("form", "/form")])
    for run in ("r1", "r2"):
        asyncio.run(alerter.observe([result("fail", "evil<b>@example.me", text=hostile)],
                                    run_id=run))
    plain, html = messages(receiver, "/plain")[0], messages(receiver, "/html")[0]
    form = receiver.at("/form")[0].form()
    for m in (plain, form):
        body = m["message"]
        assert len(body) < 2_000
        assert not any((ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) < 0xa0 for c in body)
        assert "\u202e" not in body and "\\x1b" in body and "\\u202e" in body
        assert "X-Injected" in body and "\nX-Injected" not in body  # no new line of its own
        assert "<b>" not in m["title"] and "\x1b" not in m["title"]
    # For a service that reads HTML, apprise escapes the (plain-text) body.
    assert "<script>" not in html["message"] and "&lt;script&gt;" in html["message"]


def test_an_unreachable_target_is_logged_and_the_down_retried(
        receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.statuses = [500]
    alerter = Alerter([receiver.url("json", "/hook")])
    caplog.set_level(logging.WARNING, "flowtest.notify")
    assert observe(alerter, ["fail", "fail"]) == [[], ["down"]]
    assert "notify json://" in caplog.text and "failed" in caplog.text
    # Delivered to no one: the next failed run sends it again, then never more.
    assert observe(alerter, ["fail", "fail"]) == [["down"], []]
    assert len(receiver.got) == 2
    assert observe(alerter, ["pass"]) == [["recovered"]]


def test_no_targets_keeps_state_only() -> None:
    alerter = Alerter([])
    assert observe(alerter, ["fail", "fail", "pass"]) == [[], ["down"], ["recovered"]]


def test_the_dead_mans_switch(receiver: Receiver) -> None:
    alerter = Alerter([], ping_url=receiver.url("http", "/ping/abc-123"))
    asyncio.run(alerter.run_started("20261126120000abcdef"))
    asyncio.run(alerter.run_finished("20261126120000abcdef", "warn", "all delivered"))
    asyncio.run(alerter.run_started("r2"))
    asyncio.run(alerter.run_finished("r2", "fail", "inbound x: fail INBOUND_LOST: gone"))
    got = receiver.got
    assert [g.path for g in got] == ["/ping/abc-123/start", "/ping/abc-123",
                                     "/ping/abc-123/start", "/ping/abc-123/fail"]
    rids = [g.query["rid"] for g in got]
    assert rids[0] == rids[1] != rids[2] == rids[3]
    assert all(uuid.UUID(r) for r in rids)   # healthchecks.io accepts only UUIDs
    assert got[3].body == b"inbound x: fail INBOUND_LOST: gone"


def test_a_ping_url_with_a_query_keeps_it(receiver: Receiver) -> None:
    alerter = Alerter([], ping_url=receiver.url("http", "/ping/key/my-slug?create=1"))
    asyncio.run(alerter.run_started("r1"))
    assert receiver.got[0].path == "/ping/key/my-slug/start"
    assert receiver.got[0].query["create"] == "1"


def test_a_failed_ping_never_fails_the_run(caplog: pytest.LogCaptureFixture) -> None:
    dead = Receiver()   # bound, never served, then closed: connection refused
    port = dead.port
    dead.server.server_close()
    caplog.set_level(logging.WARNING, "flowtest.notify")
    alerter = Alerter([], ping_url=f"http://127.0.0.1:{port}/ping/uuid-canary-7f3a")
    asyncio.run(alerter.run_started("r1"))
    asyncio.run(alerter.run_finished("r1", "fail", "x"))
    assert caplog.text.count("ping http://127.0.0.1/…") == 2
    assert "uuid-canary-7f3a" not in caplog.text


def test_notify_goes_through_sockets_the_guard_sees(receiver: Receiver) -> None:
    before = len(guard.refused)
    with guard.guarded():
        alerter = Alerter(["json://192.0.2.10/hook", receiver.url("json", "/hook")])
        observe(alerter, ["fail", "fail"])
    assert any("192.0.2.10" in r for r in guard.refused[before:])
    assert len(messages(receiver)) == 1    # the loopback target still got its message


def test_a_secret_in_a_url_never_appears(receiver: Receiver, caplog: pytest.LogCaptureFixture,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "Zq7CanaryTok3n9x"
    caplog.set_level(logging.DEBUG)   # apprise logs the URL it posts to at debug
    monkeypatch.setenv("FLOWTEST_TEST_NOTIFY", receiver.url("json", f"/hook/{canary}b"))
    targets = [receiver.url("json", f"/hook/{canary}"), "env:FLOWTEST_TEST_NOTIFY",
               receiver.url("json", f"/missing/{canary}a")]
    receiver.statuses = [200, 200, 404]
    alerter = Alerter(targets, ping_url=receiver.url("http", f"/{canary}c"))
    asyncio.run(alerter.run_started("r1"))
    observe(alerter, ["fail", "fail"])
    asyncio.run(alerter.run_finished("r1", "fail", "x"))
    assert len(receiver.got) == 5
    labels = [t.label for t in alerter.targets]
    assert labels == ["json://…", "json:// (env:FLOWTEST_TEST_NOTIFY)", "json://…"]
    out = capsys.readouterr()
    for text in (caplog.text, out.out, out.err, repr(alerter.targets), repr(alerter.ping),
                 json.dumps(alerter.state())):
        assert canary not in text
    assert "JSON POST URL" in caplog.text   # apprise did log the URL, redacted


def test_a_reference_to_a_missing_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Alerter(["env:FLOWTEST_NO_SUCH_VARIABLE_HERE"])


@pytest.mark.parametrize("url", ["nosuchscheme://x/y", "not a url", "tgram://"])
def test_a_target_apprise_cannot_use_is_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        notify.notify_target(url)


@pytest.mark.parametrize("url", ["ftp://hc-ping.com/x", "hc-ping.com/x"])
def test_a_ping_url_is_http(url: str) -> None:
    with pytest.raises(ConfigError):
        notify.ping_target(url)


@pytest.mark.parametrize("url", [
    "ntfys://ntfy.sh/flowtest-alerts-7f3a", "tgram://123456789:AAHsecretTOKENvalue123/987654",
    "mailtos://me:app-password-x@gmail.com", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi",
    "discord://1234567890/TOKENdiscord12345", "jsons://example.net/hook", "forms://example.net/x",
    "schan://SCT123456TxyzABCDEFGHIJKLMNOP", "pushplus://" + "a1b2c3d4" * 4,
    "wecombot://0b2f1c3d-4e5f-6071-8293-a4b5c6d7e8f9", "dingtalk://abcdef0123456789abcdef",
    "feishu://0b2f1c3d-4e5f-6071-8293-a4b5c6d7e8f9", "lark://0b2f1c3d-4e5f-6071-8293-a4b5c6d7e8"])
def test_the_documented_url_forms_are_known_to_apprise(url: str) -> None:
    """docs/alerts.md shows these forms; apprise must accept each."""
    target = notify.notify_target(url)
    assert target.label.endswith("://…")
    docs = (Path(__file__).parent.parent / "docs" / "alerts.md").read_text(encoding="utf-8")
    assert f"`{url.partition('://')[0]}://" in docs


def test_the_short_report_is_bounded_and_inert() -> None:
    text = short_report([result("fail", text="\x1b[2J" + "x" * 20_000)] * 100, "fail",
                        run_id="r1")
    assert len(text) <= alerting.REPORT_LIMIT and "\x1b" not in text
    assert text.startswith("flowtest run r1: fail\ninbound hello@example.me: fail INBOUND_LOST")


def test_a_ping_leaving_loopback_is_refused_by_the_guard(
        caplog: pytest.LogCaptureFixture) -> None:
    before = len(guard.refused)
    caplog.set_level(logging.WARNING, "flowtest.notify")
    with guard.guarded():
        alerter = Alerter([], ping_url="https://192.0.2.10/ping/some-check-uuid")
        asyncio.run(alerter.run_started("r1"))
    assert any("192.0.2.10" in r for r in guard.refused[before:])
    assert "ping https://192.0.2.10/… (start) failed" in caplog.text


def test_the_short_report_names_dns_problems() -> None:
    from flowtest.doctor.findings import Finding

    text = short_report([result("pass")], "fail", run_id="r1", dns=[
        Finding("MX_FOREIGN", "error", "MX points at \x1b[31mmx.icloud.com"),
        Finding("MX_OK", "info", "fine")])
    assert "dns: error MX_FOREIGN: MX points at \\x1b[31mmx.icloud.com" in text
    assert "MX_OK" not in text


def test_a_secret_quoted_by_a_diagnosis_is_not_sent(receiver: Receiver) -> None:
    from flowtest.secrets import Secret

    Secret("env:FLOWTEST_TEST_SECRET", value="Pq9SecretInDiag")
    alerter = Alerter([receiver.url("json", "/hook")], ping_url=receiver.url("http", "/p"))
    for run in ("r1", "r2"):
        asyncio.run(alerter.observe([result("error", text="AUTH failed for Pq9SecretInDiag")],
                                    run_id=run))
    asyncio.run(alerter.run_finished("r2", "error", "AUTH failed for Pq9SecretInDiag"))
    assert receiver.got and all(b"Pq9SecretInDiag" not in r.body for r in receiver.got)
