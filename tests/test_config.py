"""flowtest.toml: typed, validated, one clear message per mistake, secrets by reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowtest import config as cfg
from flowtest.errors import ConfigError, SecretError
from flowtest.secrets import Secret, redact

GOOD = """
domain = "Example.me"
aliases = ["hello", "shop@example.me"]
[gmail]
address = "owner@gmail.com"
app_password = "env:FT_TEST_APP_PASSWORD"
smtp = { host = "smtp.gmail.com", port = 587, tls = "starttls" }
imap = { host = "imap.gmail.com", port = 993, tls = "implicit" }
[probe]
address = "probe@fastmail.com"
password = "file:~/probe.secret"
smtp = { host = "smtp.fastmail.com" }
imap = { host = "imap.fastmail.com" }
[dns]
nameservers = ["1.1.1.1", "127.0.0.2:5353"]
[thresholds]
latency_warn_s = 60
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flowtest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_is_typed(tmp_path: Path) -> None:
    c = cfg.load(write(tmp_path, GOOD))
    assert c.domain == "example.me"
    assert [a.address for a in c.aliases] == ["hello@example.me", "shop@example.me"]
    assert c.gmail.smtp == cfg.Endpoint("smtp.gmail.com", 587, "starttls")
    assert c.probe.smtp.port == 587 and c.probe.imap.tls == "implicit"
    assert c.dns.nameservers == (("1.1.1.1", 53), ("127.0.0.2", 5353))
    assert c.thresholds.latency_warn_s == 60 and c.thresholds.latency_fail_s == 300
    assert c.target == "live" and c.cleanup == "trash"
    assert isinstance(c.gmail.password, Secret)
    assert "FT_TEST" in repr(c.gmail.password)


@pytest.mark.parametrize(("change", "key", "reason"), [
    (("domain = \"Example.me\"", "domain = \"not a domain\""), "domain", "not a domain name"),
    (("aliases = [\"hello\", \"shop@example.me\"]", "aliases = []"), "aliases", "non-empty"),
    (("\"shop@example.me\"", "\"shop@other.me\""), "aliases[1]", "not at example.me"),
    (("\"shop@example.me\"", "\"hello\""), "aliases[1]", "listed twice"),
    (("port = 587, tls", "port = 70000, tls"), "gmail.smtp.port", "port number"),
    (("tls = \"starttls\"", "tls = \"ssl\""), "gmail.smtp.tls", "must be one of"),
    (("app_password = \"env:FT_TEST_APP_PASSWORD\"", "app_password = \"abcd efgh ijkl mnop\""),
     "gmail.app_password", "must be a reference"),
    (("latency_warn_s = 60", "latency_warn_s = 600"), "thresholds.latency_warn_s",
     "must not be above"),
    (("latency_warn_s = 60", "latency_warn_s = \"soon\""), "thresholds.latency_warn_s",
     "must be a number"),
    (("[dns]", "[dnss]"), "dnss", "unknown key"),
    (("\"1.1.1.1\"", "\"dns.google\""), "dns.nameservers[0]", "not an IP address"),
])
def test_each_mistake_names_file_key_and_reason(tmp_path: Path, change: tuple[str, str],
                                                key: str, reason: str) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as error:
        cfg.load(path)
    assert error.value.file == str(path)
    assert error.value.key == key
    assert reason in error.value.reason
    assert str(error.value).startswith(f"{path}: {key}: ")


def test_a_literal_password_is_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("env:FT_TEST_APP_PASSWORD", "hunter2hunter2"))
    with pytest.raises(ConfigError) as error:
        cfg.load(path)
    assert "hunter2" not in str(error.value)


def test_too_many_aliases(tmp_path: Path) -> None:
    aliases = ", ".join(f'"a{i}"' for i in range(201))
    path = write(tmp_path, GOOD.replace('["hello", "shop@example.me"]', f"[{aliases}]"))
    with pytest.raises(ConfigError, match="at most 200"):
        cfg.load(path)


@pytest.mark.parametrize(("text", "reason"), [
    ("domain = \n", "not valid TOML"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_unreadable_files(tmp_path: Path, text: str | bytes, reason: str) -> None:
    path = tmp_path / "flowtest.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=reason):
        cfg.load(path)


def test_missing_file_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="flowtest init"):
        cfg.load(tmp_path / "nope.toml")


def test_template_is_a_valid_config(tmp_path: Path) -> None:
    c = cfg.load(write(tmp_path, cfg.template(domain="mine.me", aliases=("a", "b"))))
    assert c.domain == "mine.me" and len(c.aliases) == 2


def test_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FT_SECRET_X", "s3cret-value-one")
    assert Secret("env:FT_SECRET_X").reveal() == "s3cret-value-one"
    file = tmp_path / "pw"
    file.write_text("s3cret-value-two\n")
    assert Secret(f"file:{file}").reveal() == "s3cret-value-two"
    with pytest.raises(SecretError, match="not set"):
        Secret("env:FT_SECRET_MISSING").reveal()
    with pytest.raises(SecretError, match="cannot read"):
        Secret(f"file:{tmp_path / 'absent'}").reveal()
    with pytest.raises(SecretError, match="keyring:SERVICE/USER"):
        Secret("keyring:nouser").reveal()
    # Revealed values are scrubbed from any text that leaves the process.
    assert redact("login with s3cret-value-one failed") == "login with *** failed"
    assert "s3cret" not in repr(Secret("env:FT_SECRET_X"))


def test_a_provider_profile_fills_in_the_endpoints(tmp_path: Path) -> None:
    text = GOOD.replace('''smtp = { host = "smtp.fastmail.com" }
imap = { host = "imap.fastmail.com" }''', 'provider = "fastmail"')
    c = cfg.load(write(tmp_path, text))
    assert c.probe.smtp == cfg.Endpoint("smtp.fastmail.com", 465, "implicit")
    assert c.probe.imap == cfg.Endpoint("imap.fastmail.com", 993, "implicit")
    trust = cfg.receiver(c.probe)
    assert trust.matches("mx3.messagingengine.com") and not trust.matches("mx.google.com")
    assert cfg.receiver(c.gmail).matches("mx.google.com")  # gmail is the default profile
    with pytest.raises(ConfigError, match="unknown provider 'hotmale'"):
        cfg.load(write(tmp_path, text.replace('"fastmail"', '"hotmale"')))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 70000) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["host", "port", "tls", "address", "address",
                                       "password", "app_password", "provider", "smtp", "imap",
                                       "x"]), children, max_size=5),
    max_leaves=12)
_documents = st.fixed_dictionaries({}, optional={
    key: _values for key in ("domain", "aliases", "gmail", "probe", "dns", "tls", "timeouts",
                             "thresholds", "target", "cleanup", "dkim_selectors",
                             "require_dmarc_pass", "unknown")})


@settings(max_examples=400, deadline=None)
@given(document=_documents)
def test_the_loader_only_ever_raises_config_error(document: dict[str, object]) -> None:
    try:
        cfg.parse(document)
    except ConfigError as error:
        assert error.reason and "Traceback" not in str(error)


_PATHS = [("domain",), ("aliases",), ("gmail",), ("gmail", "address"), ("gmail", "smtp"),
          ("gmail", "smtp", "port"), ("gmail", "smtp", "tls"), ("gmail", "imap", "address"),
          ("gmail", "app_password"), ("probe", "password"), ("probe", "provider"),
          ("probe", "smtp"), ("dns", "nameservers"), ("dns", "timeout_s"), ("tls",),
          ("tls", "ca_file"), ("timeouts", "delivery_s"), ("thresholds",),
          ("thresholds", "latency_warn_s"), ("target",), ("cleanup",), ("dkim_selectors",),
          ("require_dmarc_pass",)]


@settings(max_examples=600, deadline=None)
@given(path=st.sampled_from(_PATHS), value=_values)
def test_one_bad_value_in_a_good_file_gives_a_clear_error(path: tuple[str, ...],
                                                         value: object) -> None:
    import tomllib
    document = tomllib.loads(GOOD)
    node = document
    for key in path[:-1]:
        node = node.setdefault(key, {})  # type: ignore[assignment]
        if not isinstance(node, dict):
            return
    node[path[-1]] = value
    try:
        cfg.parse(document)
    except ConfigError as error:
        assert error.key and error.reason


@pytest.mark.parametrize(("table", "key", "reason"), [
    ("imap_connections = 0", "limits.imap_connections", "must be 1 to 15"),
    ("imap_connections = 16", "limits.imap_connections", "must be 1 to 15"),
    ("imap_connections = 1.5", "limits.imap_connections", "whole number"),
    ("send_interval_s = -1", "limits.send_interval_s", "must be 0 to 600"),
    ("daily_sends = \"many\"", "limits.daily_sends", "whole number"),
    ("daily_sends = 5000", "limits.daily_sends", "must be 0 (no limit) to 2000"),
    ("connections = 2", "limits.connections", "unknown key"),
])
def test_limits_are_checked(tmp_path: Path, table: str, key: str, reason: str) -> None:
    path = write(tmp_path, GOOD + f"\n[limits]\n{table}\n")
    with pytest.raises(ConfigError) as error:
        cfg.load(path)
    assert error.value.key == key and reason in error.value.reason


def test_limits_defaults_and_values(tmp_path: Path) -> None:
    assert cfg.load(write(tmp_path, GOOD)).limits == cfg.Limits()
    path = write(tmp_path, GOOD + "\n[limits]\nimap_connections = 1\nsend_interval_s = 2\n"
                                  "daily_sends = 0\n")
    limits = cfg.load(path).limits
    assert (limits.imap_connections, limits.send_interval_s, limits.daily_sends) == (1, 2.0, 0)
    assert limits.daily_budget("live") is None


# Every key a flowtest.toml may hold, with a good value and its kind: each is
# type-checked at load, so a mistake is a ConfigError before anything is sent
# (issue 14, item 9: `authserv_id = 5` used to load and crash after sending).
FULL = {
    "domain": "example.me", "aliases": ["hello"], "target": "live", "cleanup": "trash",
    "dkim_selectors": ["s1"], "require_dmarc_pass": False,
    "gmail": {"address": "owner@gmail.com", "username": "owner@gmail.com",
              "app_password": "env:FT_X", "provider": "gmail", "authserv_id": "mx.google.com",
              "smtp": {"host": "smtp.gmail.com", "port": 587, "tls": "starttls",
                       "address": "192.0.2.1"},
              "imap": {"host": "imap.gmail.com", "port": 993, "tls": "implicit",
                       "address": "192.0.2.2"}},
    "probe": {"address": "probe@fastmail.com", "username": "probe@fastmail.com",
              "password": "env:FT_Y", "provider": "fastmail",
              "authserv_id": "mx.messagingengine.com"},
    "dns": {"nameservers": ["1.1.1.1"], "timeout_s": 5},
    "tls": {"insecure": False},
    "timeouts": {"connect_s": 15, "command_s": 30, "delivery_s": 300},
    "thresholds": {"latency_warn_s": 95, "latency_fail_s": 300},
    "limits": {"imap_connections": 2, "send_interval_s": 0, "daily_sends": 100},
}
_WRONG = {
    str: [5, 5.5, True, [], {}],
    int: ["5", 5.5, True, [], {}],
    float: ["5", True, [], {}],
    bool: ["yes", 1, 0.0, [], {}],
    list: ["x", 5, {}],
}


def _leaves(node: dict[str, object], prefix: tuple[str, ...] = ()
            ) -> list[tuple[tuple[str, ...], type]]:
    out: list[tuple[tuple[str, ...], type]] = []
    for key, value in node.items():
        if isinstance(value, dict):
            out += _leaves(value, (*prefix, key))
        else:
            kind = type(value)
            out.append(((*prefix, key), float if key.endswith("_s") else kind))
    return out


def test_the_full_document_loads() -> None:
    c = cfg.parse(FULL)
    assert c.gmail.authserv_id == "mx.google.com" and c.gmail.smtp.address == "192.0.2.1"


@pytest.mark.parametrize(("path", "kind"), _leaves(FULL), ids=lambda v: ".".join(v)
                         if isinstance(v, tuple) else v.__name__)
def test_every_key_is_type_checked_at_load(path: tuple[str, ...], kind: type) -> None:
    import copy
    for wrong in _WRONG[kind]:
        document = copy.deepcopy(FULL)
        node = document
        for key in path[:-1]:
            node = node[key]  # type: ignore[assignment]
        node[path[-1]] = wrong
        with pytest.raises(ConfigError) as error:
            cfg.parse(document)
        assert error.value.key == ".".join(path), (wrong, error.value)


@pytest.mark.parametrize(("table", "key"), [
    ("", "shoe"), ("gmail", "gmail.pasword"), ("gmail.smtp", "gmail.smtp.hots"),
    ("dns", "dns.nameserver"), ("tls", "tls.verify"), ("timeouts", "timeouts.delivery_sec"),
    ("thresholds", "thresholds.warn_s"), ("limits", "limits.connections"),
])
def test_an_unknown_key_is_refused_not_ignored(table: str, key: str) -> None:
    # Decided: refuse. A typo such as `delivery_sec` ignored would leave the
    # default silently in force; the error lists the keys known there.
    import copy
    document = copy.deepcopy(FULL)
    node = document
    for part in filter(None, table.split(".")):
        node = node[part]  # type: ignore[assignment]
    node[key.rsplit(".", 1)[-1]] = 1
    with pytest.raises(ConfigError, match="unknown key") as error:
        cfg.parse(document)
    assert error.value.key == key


@pytest.mark.parametrize(("key", "value"), [
    ("authserv_id", "not a host"), ("authserv_id", ""),
])
def test_authserv_id_must_be_a_host_name(key: str, value: str) -> None:
    import copy
    document = copy.deepcopy(FULL)
    document["gmail"][key] = value  # type: ignore[index]
    with pytest.raises(ConfigError) as error:
        cfg.parse(document)
    assert error.value.key == f"gmail.{key}"


def test_imap_starttls_is_refused_at_load() -> None:
    # net/imap speaks implicit TLS only: a "starttls" IMAP endpoint would log
    # in in plaintext under --insecure, so the loader refuses it (issue 14, item 7).
    import copy
    document = copy.deepcopy(FULL)
    document["gmail"]["imap"]["tls"] = "starttls"  # type: ignore[index]
    with pytest.raises(ConfigError, match="STARTTLS is not supported") as error:
        cfg.parse(document)
    assert error.value.key == "gmail.imap.tls"
    document["gmail"]["imap"]["tls"] = "implicit"  # type: ignore[index]
    document["gmail"]["smtp"]["tls"] = "starttls"  # type: ignore[index]
    assert cfg.parse(document).gmail.smtp.tls == "starttls"  # SMTP does STARTTLS


def test_the_public_names_of_flowtest_config() -> None:
    # The package split (issue 15, item 5) keeps every name importable from flowtest.config.
    from flowtest.config import (  # noqa: F401
        Account,
        Alias,
        Config,
        DnsSettings,
        Endpoint,
        Limits,
        Timeouts,
        TlsSettings,
        check_address,
        check_domain,
        load,
        parse,
        receiver,
        secret_ref,
        template,
    )
