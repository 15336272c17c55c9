"""flowtest in Simplified Chinese: the catalog is complete and current, its
sentences keep their placeholders, every code has Chinese words, and the
Chinese outputs carry the same codes and machine-read values as the English
ones (only sentences change with the language). report.html in zh renders in
headless Chromium with a CJK font, never with boxes."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import string
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import flowtest
from flowtest import cli, i18n
from flowtest.config import parse
from flowtest.errors import ConfigError
from flowtest.flows import cfjoin
from flowtest.mail.codes import CODES, meaning
from flowtest.sandbox import FAULTS
from tests.alert_receiver import receiver

__all__ = ["receiver"]

ROOT = Path(flowtest.__file__).parent
PO = ROOT / "i18n" / "locale" / "zh_CN" / "LC_MESSAGES" / "flowtest.po"
REAL = Path(__file__).parent / "data" / "real"
HAN = re.compile(r"[\u4e00-\u9fff]")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "lazy_gettext": None}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def catalog() -> Any:
    with PO.open("rb") as f:
        return read_po(f, locale="zh_CN")


def extracted() -> set[str]:
    """What Babel's extractor finds in the code now (the same map and keywords
    as `pybabel extract -F flowtest/i18n/babel.cfg -k N_ -k lazy_gettext`)."""
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map=[("**.py", "python")], keywords=KEYWORDS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def fields(text: str) -> list[str]:
    return sorted(name for _lit, name, _spec, _conv in string.Formatter().parse(text)
                  if name is not None)


# --- the catalog ------------------------------------------------------------

def test_every_message_in_the_code_is_in_the_catalog_and_none_is_stale() -> None:
    in_code = extracted()
    in_po = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog() if m.id}
    assert len(in_code) > 300
    assert sorted(in_code - in_po) == [], "missing: run pybabel extract + update (babel.cfg)"
    assert sorted(in_po - in_code) == [], "stale: run pybabel update"


def test_every_message_is_translated_and_none_is_fuzzy() -> None:
    for m in catalog():
        if not m.id:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert all(s.strip() for s in strings), m.id
        assert not m.fuzzy, m.id


def test_placeholders_are_the_same_in_english_and_chinese() -> None:
    wrong = []
    for m in catalog():
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for zh in strings:
            if fields(ids[-1]) != fields(zh):
                wrong.append((ids[0], fields(ids[-1]), fields(zh)))
    assert wrong == []


def test_the_placeholder_check_can_fail() -> None:
    assert fields("Delivered to {folder} in {seconds}") != fields("已投递到 {folder}")


def test_every_diagnosis_code_has_chinese_words() -> None:
    with i18n.use("zh"):
        missing = [code for code in CODES if not HAN.search(meaning(code))]
    assert missing == []
    with i18n.use("en"):
        assert meaning("SPAM_FOLDER") == CODES["SPAM_FOLDER"]


WORDS = re.compile(r"\b[A-Za-z]{3,} [A-Za-z]{2,}\b")  # prose, not ", " or a record
SENTENCE_FILES = ("doctor/checks.py", "mail/judge.py", "mail/inspect.py", "doctor/cloudflare.py",
                  "doctor/registration.py", "mail/cflog.py", "flows/cfjoin.py")


def _untranslated_literals(path: Path) -> list[str]:
    """English words handed to Finding()/finding() outside any _() call: a
    doctor finding or diagnosis whose Chinese text would be missing."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wrapped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in KEYWORDS:
            wrapped.update(id(n) for n in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("Finding", "finding")):
            continue
        for arg in node.args[2 if node.func.id == "finding" else 1:]:
            for sub in ast.walk(arg):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str) \
                        and WORDS.search(sub.value) and id(sub) not in wrapped:
                    out.append(sub.value)
    return out


@pytest.mark.parametrize("name", SENTENCE_FILES)
def test_every_finding_sentence_goes_through_the_catalog(name: str) -> None:
    assert _untranslated_literals(ROOT / name) == []


def test_the_finding_check_can_fail(tmp_path: Path) -> None:
    src = tmp_path / "x.py"
    src.write_text('Finding("X", "error", "plain English", _("wrapped words"))\n')
    assert _untranslated_literals(src) == ["plain English"]


def test_the_po_compiles_in_memory_as_a_checkout_needs() -> None:
    zh = i18n._compile_po(PO)
    assert zh.gettext("Delivered to the Gmail inbox.") == "已投递到 Gmail 收件箱。"


# --- choosing the language --------------------------------------------------

@pytest.mark.parametrize(("env", "lang"), [
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LANGUAGE": "fr:zh", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LANGUAGE": "en", "LC_ALL": "zh_CN.UTF-8"}, "en"),
    ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LC_MESSAGES": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LANG": "de_DE.UTF-8"}, "en"),
])
def test_the_locale_decides_in_gettext_order(env: dict[str, str], lang: str) -> None:
    assert i18n.from_environment(env) == lang


def test_lang_option_beats_config_beats_locale() -> None:
    zh_env = {"LANG": "zh_CN.UTF-8"}
    assert i18n.resolve("en", "zh", zh_env) == "en"
    assert i18n.resolve(None, "en", zh_env) == "en"
    assert i18n.resolve(None, None, zh_env) == "zh"
    with pytest.raises(ValueError):
        i18n.resolve("fr")


def test_the_config_key_is_type_checked() -> None:
    base = {"domain": "example.me", "aliases": ["hello"],
            "gmail": {"address": "me@gmail.com", "app_password": "env:X"},
            "probe": {"address": "p@sender.example", "password": "env:Y",
                      "smtp": {"host": "smtp.sender.example"},
                      "imap": {"host": "imap.sender.example"}}}
    assert parse(base).lang is None
    assert parse({**base, "lang": "zh"}).lang == "zh"
    with pytest.raises(ConfigError) as bad:
        parse({**base, "lang": "fr"})
    assert bad.value.key == "lang"


def test_main_restores_the_language_it_found(capsys: pytest.CaptureFixture[str]) -> None:
    with i18n.use("en"):
        assert cli.main(["--lang", "zh", "doctor", "--sandbox"]) == 0
        assert i18n.active() == "en"
    assert HAN.search(capsys.readouterr().out)


def test_help_follows_lang_from_the_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")}
    env["PYTHONPATH"] = str(ROOT.parent)
    zh = subprocess.run([sys.executable, "-m", "flowtest.cli", "--help"], env={
        **env, "LANG": "zh_CN.UTF-8"}, capture_output=True, text=True, timeout=60, check=True)
    assert "用法" in zh.stdout and "电子邮件路由" in zh.stdout
    en = subprocess.run([sys.executable, "-m", "flowtest.cli", "--lang", "en", "--help"], env={
        **env, "LANG": "zh_CN.UTF-8"}, capture_output=True, text=True, timeout=60, check=True)
    assert "usage:" in en.stdout and not HAN.search(en.stdout)


# --- Chinese outputs, tested like the English ones --------------------------

SENTENCE_KEYS = {"diagnosis", "message", "fix", "text"}


def machine_view(data: Any) -> Any:
    """The report with its sentences blanked: what must not change with the language."""
    if isinstance(data, dict):
        return {k: ("<sentence>" if k in SENTENCE_KEYS else machine_view(v))
                for k, v in data.items()}
    if isinstance(data, list):
        return [machine_view(v) for v in data]
    return data


def stable(report: dict[str, Any]) -> Any:
    """Drop what differs between two runs whatever the language (times, ids)."""
    volatile = {"started_at", "finished_at", "run_id", "latency_s", "hops", "sent_at",
                "seen_at", "token", "smtp_timings_s", "delay_s", "at", "total_s", "insecure",
                # Cloudflare's log: when it was read and the probe's Message-ID (the run's
                # id is in it). Its state, rows and detail are compared: machine fields.
                "looked_at", "message_id", "messageId"}

    def walk(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: walk(v) for k, v in d.items() if k not in volatile}
        if isinstance(d, list):
            return [walk(v) for v in d]
        return d
    return walk(machine_view(report))


def codes_of(report: dict[str, Any]) -> list[list[str]]:
    return [[f["code"] for f in p["findings"]] for p in report["probes"]]


def _demo(lang: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
          ) -> tuple[int, str, dict[str, Any], Path]:
    out_json = tmp_path / f"{lang}.json"
    rd = tmp_path / f"reports-{lang}"
    code = cli.main(["--lang", lang, "demo", "--fault", "spam", "--aliases", "1",
                     "--json", str(out_json), "--report-dir", str(rd)])
    return code, capsys.readouterr().out, json.loads(out_json.read_text()), rd


@pytest.mark.slow
def test_demo_with_the_spam_fault_in_chinese(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code_zh, out_zh, zh, rd_zh = _demo("zh", tmp_path, capsys)
    code_en, out_en, en, rd_en = _demo("en", tmp_path, capsys)
    assert code_zh == code_en == 1
    assert "SPAM_FOLDER" in codes_of(zh)[0]
    assert codes_of(zh) == codes_of(en)
    assert stable(zh) == stable(en)   # keys, codes, verdicts, folders, legs: all the same
    assert {p["folder"] for p in zh["probes"]} == {p["folder"] for p in en["probes"]}
    assert "「垃圾邮件」" in out_zh and "SPAM_FOLDER" in out_zh
    assert not HAN.search(out_en)
    spam = next(f for f in zh["probes"][0]["findings"] if f["code"] == "SPAM_FOLDER")
    assert HAN.search(spam["message"])
    # JUnit: the same structure in both languages (names, classes, counts).
    def shape(path: Path) -> list[tuple[str, tuple[str, ...], str]]:
        root = ET.parse(next(path.glob("*/junit.xml"))).getroot()
        return [(e.tag, tuple(sorted(e.attrib)), e.attrib.get("name", ""))
                for e in root.iter() if e.tag in ("testsuites", "testsuite", "testcase",
                                                  "failure", "error", "skipped")]
    assert shape(rd_zh) == shape(rd_en)
    assert '<html lang=zh-CN>' in next(rd_zh.glob("*/report.html")).read_text()


@pytest.mark.slow
def test_doctor_in_chinese_has_the_same_findings(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    reports = {}
    for lang in ("zh", "en"):
        path = tmp_path / f"dns-{lang}.json"
        assert cli.main(["--lang", lang, "doctor", "--sandbox", "--fault", "spf-duplicate",
                         "--json", str(path)]) == 1
        out = capsys.readouterr().out
        assert "SPF_MULTIPLE" in out
        reports[lang] = json.loads(path.read_text())
        if lang == "zh":
            assert "修复：" in out and HAN.search(out)
    zh, en = reports["zh"], reports["en"]
    assert [(f["code"], f["severity"]) for f in zh["dns"]] == \
        [(f["code"], f["severity"]) for f in en["dns"]]
    assert all(HAN.search(f["message"]) for f in zh["dns"])
    assert all(HAN.search(f["fix"]) for f in zh["dns"] if f["fix"])
    assert stable(zh) == stable(en)


CF_FAULTS = ("cf-destination-unverified", "cf-catch-all-drop", "cf-routing-misconfigured")


@pytest.mark.slow
def test_doctor_shows_cloudflare_findings_in_chinese_with_the_same_codes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports, outs = {}, {}
    for lang in ("zh", "en"):
        path = tmp_path / f"cf-{lang}.json"
        argv = ["--lang", lang, "doctor", "--sandbox", "--json", str(path)]
        for fault in CF_FAULTS:
            argv += ["--fault", fault]
        assert cli.main(argv) == 1
        outs[lang] = capsys.readouterr().out
        reports[lang] = json.loads(path.read_text())
    zh = [f for f in reports["zh"]["dns"] if f["code"].startswith("CF_")]
    en = [f for f in reports["en"]["dns"] if f["code"].startswith("CF_")]
    codes = [f["code"] for f in zh]
    assert {"CF_TOKEN_OK", "CF_DESTINATION_UNVERIFIED", "CF_RULE_DISABLED",
            "CF_CATCH_ALL_DROP", "CF_ROUTING_STATUS", "CF_RULES_LIMIT"} <= set(codes)
    assert [(f["code"], f["severity"]) for f in zh] == [(f["code"], f["severity"]) for f in en]
    assert all(HAN.search(f["message"]) for f in zh)
    assert all(HAN.search(f["fix"]) for f in zh if f["fix"])
    assert not any(HAN.search(f["message"] + f["fix"]) for f in en)
    assert stable(reports["zh"]) == stable(reports["en"])
    # The screen: the same codes, the dashboard's Chinese labels in the fixes.
    for code in set(codes):
        assert code in outs["zh"] and code in outs["en"]
    assert "电子邮件路由 → 目标地址" in outs["zh"] and "全部捕获地址" in outs["zh"]


def test_list_faults_speaks_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--lang", "zh", "sandbox", "--list-faults"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == len(FAULTS) and all(HAN.search(line) for line in lines)


def test_the_cloudflare_log_detail_is_machine_text() -> None:
    """cloudflare_log.detail is a machine field: the same in every language."""
    details = []
    for lang in ("zh", "en"):
        with i18n.use(lang):
            log, diags = cfjoin.judged(None, message_id="<x@example.me>", alias="a@example.me",
                                       delivered=False, sent_at=0.0, looked_at=1.0,
                                       failure="zone example.me: HTTP 403", settled_s=60.0)
        details.append(log.to_json()["detail"])
        assert [d.code for d in diags] == ["CF_LOG_UNAVAILABLE"]
        assert bool(HAN.search(diags[0].text)) is (lang == "zh")
    assert details[0] == details[1] == "zone example.me: HTTP 403"


@pytest.mark.parametrize("sample", ["cf-gmail-1.eml", "sendas-1.eml", "outlook-ar.eml"])
def test_inspect_a_real_message_in_chinese(sample: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    reports = {}
    for lang in ("zh", "en"):
        path = tmp_path / f"{lang}.json"
        assert cli.main(["--lang", lang, "inspect", str(REAL / sample), "--json",
                         str(path)]) == 0
        out = capsys.readouterr().out
        reports[lang] = json.loads(path.read_text())
        assert bool(HAN.search(out)) is (lang == "zh")
    zh, en = reports["zh"], reports["en"]
    assert [f["code"] for f in zh["findings"]] == [f["code"] for f in en["findings"]]
    assert machine_view(zh) == machine_view(en)
    assert all(HAN.search(f["text"]) for f in zh["findings"])


def test_config_errors_speak_chinese(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    path = tmp_path / "flowtest.toml"
    path.write_text('domain = "example.me"\naliases = []\n')
    assert cli.main(["--lang", "zh", "run", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "aliases" in err and "配置错误" in err


# --- report.html in a browser, with a CJK font -------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _cjk_font() -> tuple[str, set[int]]:
    """The font fontconfig gives Chinese sans-serif text, and the code points it has."""
    if shutil.which("fc-match") is None:
        pytest.fail("fontconfig's fc-match is missing")
    family = subprocess.run(["fc-match", "--format=%{family}", "sans-serif:lang=zh-cn"],
                            capture_output=True, text=True, check=True).stdout
    ranges = subprocess.run(["fc-match", "--format=%{charset}", "sans-serif:lang=zh-cn"],
                            capture_output=True, text=True, check=True).stdout
    covered: set[int] = set()
    for part in ranges.split():
        lo, _dash, hi = part.partition("-")
        covered.update(range(int(lo, 16), int(hi or lo, 16) + 1))
    return family, covered


def _shot(browser: str, html: str, tmp_path: Path, name: str, size: str) -> bytes:
    page = tmp_path / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / f"{name}.png"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={size}",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return shot.read_bytes()


@pytest.mark.slow
def test_chinese_report_html_renders_with_a_cjk_font(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    if CHROMIUM is None:
        if os.environ.get("FLOWTEST_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (FLOWTEST_REQUIRE_BROWSER) but not installed")
        pytest.skip("chromium not installed (apt-get install chromium fonts-noto-cjk)")
    rd = tmp_path / "reports"
    assert cli.main(["--lang", "zh", "demo", "--aliases", "1", "--fault", "spam",
                     "--report-dir", str(rd)]) == 1
    capsys.readouterr()
    html = next(rd.glob("*/report.html")).read_text(encoding="utf-8")
    assert "<html lang=zh-CN>" in html and "探测邮件" in html
    # 1. Every Chinese character the page (and the whole catalog) uses is in the
    # font fontconfig picks for zh sans-serif, and the page's CSS can reach it.
    family, covered = _cjk_font()
    assert "CJK" in family or "SC" in family, family
    text = html + "".join(m.string if isinstance(m.string, str) else "".join(m.string)
                          for m in catalog())
    missing = sorted({c for c in text if HAN.match(c) and ord(c) not in covered})
    assert missing == [], f"{family} lacks {''.join(missing[:40])}"
    # 2. Chromium draws real glyphs: the report's font stack renders Chinese
    # differently from code points no font has (those all become the same box).
    css = re.search(r"body\{font-family:([^;]+);", html.replace("\n", ""))
    assert css is not None
    words = "已投递到收件箱垃圾邮件探测"
    tofu = "\u0378" * len(words)
    def page(s: str) -> str:
        return (f"<!DOCTYPE html><html lang=zh-CN><meta charset=utf-8><body style='margin:0;"
                f"font-family:{css.group(1)};font-size:40px'>{s}</body></html>")
    drawn = _shot(CHROMIUM, page(words), tmp_path, "words", "800,80")
    boxes = _shot(CHROMIUM, page(tofu), tmp_path, "boxes", "800,80")
    assert drawn != boxes
    # 3. The whole report renders in Chromium.
    report = next(rd.glob("*/report.html"))
    assert _shot(CHROMIUM, report.read_text(encoding="utf-8"), tmp_path, "report",
                 "1280,1800")[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_lazy_string_is_translated_when_shown() -> None:
    lazy = i18n.lazy_gettext("Delivered to the Gmail inbox.")
    with i18n.use("zh"):
        assert str(lazy) == "已投递到 Gmail 收件箱。"
    with i18n.use("en"):
        assert str(lazy) == "Delivered to the Gmail inbox."


@pytest.mark.parametrize("argv", [["--lang"], ["--lang", "fr", "doctor"]])
def test_a_bad_lang_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    assert "--lang" in capsys.readouterr().err


def test_the_config_lang_applies_unless_lang_is_given(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    # Endpoints where nothing listens: login-check fails fast, and says so in words.
    monkeypatch.setenv("FT_TEST_SECRET", "not-a-real-password")
    endpoint = 'host = "127.0.0.1"\nport = 9\ntls = "implicit"\n'
    config = tmp_path / "flowtest.toml"
    config.write_text(
        'lang = "zh"\ntarget = "sandbox"\ndomain = "example.me"\naliases = ["hello"]\n'
        '[timeouts]\nconnect_s = 2\n'
        '[gmail]\naddress = "me@gmail.com"\napp_password = "env:FT_TEST_SECRET"\n'
        f'[gmail.smtp]\n{endpoint}[gmail.imap]\n{endpoint}'
        '[probe]\naddress = "p@sender.example"\npassword = "env:FT_TEST_SECRET"\n'
        f'[probe.smtp]\n{endpoint}[probe.imap]\n{endpoint}')
    with i18n.use("en"):
        assert cli.main(["login-check", "-c", str(config)]) == 1
        zh = capsys.readouterr().out
        assert cli.main(["--lang", "en", "login-check", "-c", str(config)]) == 1
        en = capsys.readouterr().out
        assert i18n.active() == "en"
    assert "探测帐号 SMTP" in zh and "FAIL" in zh
    assert "probe account SMTP" in en and not HAN.search(en)


# --- round 2: run, alerts, latency, Nagios, login-check ---------------------

def test_run_notify_in_chinese_sends_a_chinese_down_message_with_the_same_code(
        world: Any, receiver: Any, tmp_path: Path) -> None:
    """`LANG=zh_CN.UTF-8 flowtest run --notify json://…` as cron runs it: the
    down message is Chinese, its code and kind the same as in English."""
    config = world.write_config(tmp_path / "flowtest.toml")
    world.set_fault("spam")
    got = {}
    for lang, locale in (("zh", "zh_CN.UTF-8"), ("en", "C.UTF-8")):
        hook = f"/hook-{lang}"
        done = subprocess.run(
            [sys.executable, "-m", "flowtest.cli", "run", "-c", str(config), "--leg", "inbound",
             "--report-dir", str(tmp_path / f"reports-{lang}"), "--alert-after", "1",
             "--notify", receiver.url("json", hook)],
            env={**os.environ, "LANG": locale}, capture_output=True, text=True, timeout=120,
            check=False, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        [message] = [r.json() for r in receiver.at(hook)]
        got[lang] = message
        assert bool(HAN.search(done.stdout)) is (lang == "zh")
    zh, en = got["zh"], got["en"]
    assert zh["type"] == en["type"] == "failure"
    # Every alias of the world went down at once: one message for all of them.
    assert zh["message"].count("SPAM_FOLDER") == en["message"].count("SPAM_FOLDER") > 0
    assert "邮件路径故障" in zh["title"] and "mail paths DOWN" in en["title"]
    assert "收信" in zh["message"] and "inbound" in en["message"]
    assert HAN.search(zh["message"]) and not HAN.search(en["message"] + en["title"])


def test_alert_texts_follow_the_language_and_keep_code_and_alias() -> None:
    from flowtest.flows.alerting import Alert, _compose

    down = Alert("down", "outbound", "hello@example.me", "DMARC_FAIL", "DMARC failed.",
                 at=1.7e9, run_id="r1", failures=3, since=1.6e9, verdict="error")
    up = Alert("recovered", "outbound", "hello@example.me", "DMARC_FAIL", "", at=1.7e9,
               run_id="r2", failures=1, since=1.6e9)
    with i18n.use("zh"):
        zh = (down.title(), down.body(), up.title(), up.body(), _compose([down, down])[0])
    with i18n.use("en"):
        en = (down.title(), down.body(), up.title(), up.body(), _compose([down, down])[0])
    assert en[0] == "flowtest: outbound hello@example.me CANNOT BE TESTED (DMARC_FAIL)"
    assert zh[0] == "flowtest：发信 hello@example.me 无法测试（DMARC_FAIL）"
    assert "1 failed run since" in en[3] and "已恢复" in zh[2]
    assert en[4] == "flowtest: 2 mail paths DOWN" and "2 条邮件路径故障" in zh[4]
    for z, e in zip(zh, en, strict=True):
        assert HAN.search(z) and not HAN.search(e)
        assert ("DMARC_FAIL" in z) == ("DMARC_FAIL" in e)
        assert ("hello@example.me" in z) == ("hello@example.me" in e)


def test_latency_in_chinese_keeps_the_json_and_csv_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports: dict[str, Any] = {}
    for lang in ("zh", "en"):
        out_json, csv = tmp_path / f"{lang}.json", tmp_path / f"{lang}.csv"
        assert cli.main(["--lang", lang, "latency", "-n", "2", "--interval", "0",
                         "--report-dir", str(tmp_path / f"r-{lang}"), "--json", str(out_json),
                         "--csv", str(csv)]) == 0
        out = capsys.readouterr().out
        reports[lang] = json.loads(out_json.read_text())
        page = next((tmp_path / f"r-{lang}").glob("*/latency.html")).read_text()
        if lang == "zh":
            assert "端到端" in out and "运行目录" in out and "第 1 跳" in out
            assert 'lang="zh-CN"' in page and "延迟随时间的变化" in page
        else:
            assert "end to end" in out and not HAN.search(out + page)
        reports[lang + "-csv"] = csv.read_text().splitlines()[0]
    names = [[s["name"] for s in reports[lang]["latency"]] for lang in ("zh", "en")]
    assert names[0] == names[1] and names[0][0] == "end to end"
    assert reports["zh-csv"] == reports["en-csv"]   # CSV headers are data, never translated


def test_nagios_status_word_and_perfdata_are_the_same_in_both_languages() -> None:
    from flowtest.report.metrics import nagios

    probe = {"leg": "inbound", "alias": "hello@example.me", "verdict": "pass",
             "latency_s": 1.5, "diagnosis": [], "findings": []}
    failing = {**probe, "alias": "shop@example.me", "verdict": "fail", "latency_s": None,
               "diagnosis": ["Lost."], "findings": [{"code": "INBOUND_LOST"}]}
    for probes, word in (([probe, probe], "OK"), ([probe, failing], "CRITICAL")):
        report = {"verdict": "pass" if word == "OK" else "fail", "probes": probes, "dns": []}
        lines = {}
        for lang in ("zh", "en"):
            with i18n.use(lang):
                lines[lang] = nagios(report, warn_s=60, crit_s=300)
        (code_zh, zh), (code_en, en) = lines["zh"], lines["en"]
        assert code_zh == code_en
        assert zh.split(" - ")[0] == en.split(" - ")[0] == f"FLOWTEST {word}"
        assert zh.split(" | ")[1] == en.split(" | ")[1]   # perfdata
        assert HAN.search(zh.split(" | ")[0]) and not HAN.search(en)
    assert "INBOUND_LOST" in zh and "INBOUND_LOST" in en


def test_login_check_hint_does_not_depend_on_the_words(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens: in Chinese the error text has no English 'connect' in
    it, and the hint still comes (chosen by the error's type)."""
    monkeypatch.setenv("FT_TEST_SECRET", "not-a-real-password")
    endpoint = 'host = "127.0.0.1"\nport = 9\ntls = "implicit"\n'
    config = tmp_path / "flowtest.toml"
    config.write_text(
        'target = "sandbox"\ndomain = "example.me"\naliases = ["hello"]\n'
        '[timeouts]\nconnect_s = 2\n'
        '[gmail]\naddress = "me@gmail.com"\napp_password = "env:FT_TEST_SECRET"\n'
        f'[gmail.smtp]\n{endpoint}[gmail.imap]\n{endpoint}'
        '[probe]\naddress = "p@sender.example"\npassword = "env:FT_TEST_SECRET"\n'
        f'[probe.smtp]\n{endpoint}[probe.imap]\n{endpoint}')
    assert cli.main(["--lang", "zh", "login-check", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert out.count("无法连接") == 4   # both SMTP and both IMAP endpoints
    assert out.count("提示：没有响应") == 4   # both SMTP and both IMAP endpoints


def test_secret_and_guard_errors_speak_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    from flowtest.errors import NetworkGuardError, SecretError
    from flowtest.secrets import Secret

    monkeypatch.delenv("FT_SURELY_UNSET", raising=False)
    with i18n.use("zh"):
        with pytest.raises(SecretError) as bad:
            Secret("env:FT_SURELY_UNSET").reveal()
        guard = NetworkGuardError("lookup", "example.com")
    assert "环境变量 FT_SURELY_UNSET 未设置" in str(bad.value)
    assert "域名解析" in str(guard) and guard.what == "lookup"


# --- round 4: flowtest serve -------------------------------------------------

SERVE_HOSTILE = '<script>alert("x")</script><img src=http://203.0.113.9/x.png>'


@pytest.mark.faults("spam")
def test_serve_status_page_in_chinese_keeps_codes_and_metrics(world: Any,
                                                              tmp_path: Path) -> None:
    """The same service answers in the language in use: the page's words
    change, its codes and escaping do not, and /metrics is byte for byte the
    same in both languages."""
    import aiohttp

    from tests.test_serve import run, serve_config, serving

    config = serve_config(world)

    async def scenario() -> tuple[dict[str, str], dict[str, bytes]]:
        pages, metrics = {}, {}
        async with serving(config, tmp_path, schedule=False) as (service, url):
            await service.run_leg("inbound")
            await service.run_doctor()
            # A DNS record's text is the attacker's to choose.
            service.dns.append({"code": "SPF_BROKEN", "severity": "error",
                                "message": SERVE_HOSTILE, "fix": SERVE_HOSTILE})
            async with aiohttp.ClientSession() as http:
                for lang in ("en", "zh"):
                    with i18n.use(lang):
                        async with http.get(url + "/") as r:
                            assert r.status == 200
                            pages[lang] = await r.text()
                        async with http.get(url + "/metrics") as r:
                            metrics[lang] = await r.read()
        return pages, metrics

    pages, metrics = run(scenario())
    en, zh = pages["en"], pages["zh"]
    assert '<html lang="zh-CN">' in zh and '<html lang="en">' in en
    assert "各方向、各别名的状态" in zh and "最近的运行" in zh and "故障" in zh
    assert not HAN.search(en) and "FAILING" in en
    assert "Noto Sans CJK SC" in zh  # report.html's CJK font stack
    for page in (en, zh):
        assert page.count("SPAM_FOLDER") == en.count("SPAM_FOLDER") > 0
        assert "SPF_BROKEN" in page and 'href="metrics"' in page
        assert "<script" not in page and "&lt;script&gt;" in page
    assert metrics["en"] == metrics["zh"] and b"flowtest_probe_success" in metrics["zh"]
    assert not HAN.search(metrics["zh"].decode())


def test_serve_reload_follows_the_config_lang_unless_lang_is_given(world: Any,
                                                                   tmp_path: Path) -> None:
    """SIGHUP's reload applies a new `lang` as the start does (cli.target);
    --lang keeps its word."""
    import argparse

    from flowtest.cli import serve as serve_cli
    from flowtest.config import load
    from flowtest.serve.service import Service

    path = world.write_config(tmp_path / "flowtest.toml")
    text = path.read_text(encoding="utf-8")
    path.write_text('lang = "zh"\n' + text, encoding="utf-8")
    service = Service(load(path), report_dir=tmp_path / "reports")
    try:
        for given, expected in ((None, "zh"), ("en", "en")):
            with i18n.use("en"):
                serve_cli._reload(service, argparse.Namespace(
                    sandbox=False, config=path, vantage=None, lang=given))
                assert i18n.active() == expected
                assert service.config.lang == "zh"
    finally:
        service.store.close()


def test_serve_errors_and_help_speak_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    from flowtest.config.serve import parse_serve

    def fail(key: str, reason: str) -> ConfigError:
        return ConfigError(reason, key=key)

    with i18n.use("zh"), pytest.raises(ConfigError) as bad:
        parse_serve({"inbound_every_s": 5}, fail, live=True)
    assert bad.value.key == "serve.inbound_every_s" and "必须在 60 到 604800 之间" in str(bad.value)
    assert cli.main(["--lang", "zh", "serve", "--aliases", "3"]) == 2
    assert "--aliases 需要与 --sandbox 一起使用" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--lang", "zh", "serve", "--help"])
    out = capsys.readouterr().out
    assert "状态页" in out and "--listen" in out
