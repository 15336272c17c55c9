"""`make test` never goes live (issue 14, item 1): whatever ./flowtest.toml,
$FLOWTEST_CONFIG or $PYTEST_ADDOPTS say, the plugin tests the sandbox with the
network guard on; only --flowtest-live on the command line sends real probes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowtest import config as cfg

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent

# Runs inside the user's session: where did the plugin point, is the guard on,
# and does a connection off loopback get refused?
WHERE = """
import socket
import pytest
from flowtest import guard
from flowtest.errors import NetworkGuardError

def test_where(flowtest_target, flowtest_alias):
    assert flowtest_target == "sandbox"
    assert flowtest_alias.endswith("@example.me")     # the sandbox's, not the file's
    assert guard.active()
    with pytest.raises(NetworkGuardError):
        socket.create_connection(("192.0.2.1", 587), timeout=2)
"""


def _live_config(path: Path, domain: str) -> Path:
    # flowtest init's template: live, real hosts (smtp.gmail.com, ...).
    path.write_text(cfg.template(domain=domain, aliases=("a",)), encoding="utf-8")
    assert cfg.load(path).target == "live"
    return path


@pytest.fixture
def user_dir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user's directory as flowtest init leaves it, with $FLOWTEST_CONFIG set too."""
    _live_config(pytester.path / "flowtest.toml", "here.me")
    other = _live_config(pytester.path / "elsewhere.toml", "there.me")
    monkeypatch.setenv("FLOWTEST_CONFIG", str(other))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makepyfile(test_user=WHERE)
    return pytester


def test_a_flowtest_toml_and_flowtest_config_do_not_make_pytest_live(
        user_dir: pytest.Pytester) -> None:
    result = user_dir.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["flowtest: target sandbox, network guard on (127.0.0.0/8 only)"])
    result.assert_outcomes(passed=3)   # one per sandbox alias


def test_make_test_wins_over_pytest_addopts(user_dir: pytest.Pytester,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "--flowtest-live")
    result = user_dir.runpytest_subprocess("-p", "no:cacheprovider", "--flowtest-sandbox")
    result.stdout.fnmatch_lines(["flowtest: target sandbox, network guard on (127.0.0.0/8 only)"])
    result.assert_outcomes(passed=3)


def test_make_test_and_ci_pass_the_sandbox_switch() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    pytest_lines = [line for line in recipe.group(1).splitlines() if "pytest" in line]
    assert pytest_lines  # the workers' run and the run of the tests marked alone
    assert all(line.rstrip().endswith("--flowtest-sandbox") for line in pytest_lines)
    assert "--flowtest-live" not in makefile
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if not line.lstrip().startswith("#")]
    assert "make test" in ci and not any("--flowtest-live" in line for line in ci)


def test_a_live_config_given_without_the_switch_is_refused(user_dir: pytest.Pytester) -> None:
    result = user_dir.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--flowtest-config", "flowtest.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*is a live config*add --flowtest-live*"])


def test_the_explicit_switch_goes_live(user_dir: pytest.Pytester) -> None:
    # $FLOWTEST_CONFIG is read only under --flowtest-live; collection only, nothing is sent.
    result = user_dir.runpytest_subprocess("-p", "no:cacheprovider", "--flowtest-live", "--co")
    result.stdout.fnmatch_lines(["flowtest: target LIVE, config *elsewhere.toml, network guard "
                                 "off; real probes, outbound budget 100 a day*"])
    result.stdout.fnmatch_lines(["*test_where[[]a@there.me[]]*"])
    result = user_dir.runpytest_subprocess("-p", "no:cacheprovider", "--flowtest-live",
                                           "--flowtest-config", "flowtest.toml", "--co")
    result.stdout.fnmatch_lines(["*test_where[[]a@here.me[]]*"])


def test_live_needs_a_config(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWTEST_CONFIG", raising=False)
    pytester.makepyfile(test_user="def test_x(flowtest_alias):\n    pass\n")
    result = pytester.runpytest_subprocess("--flowtest-live")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--flowtest-live needs a config*"])
