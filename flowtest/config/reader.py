"""flowtest.toml -> :class:`~flowtest.config.settings.Config`.

Every problem becomes one :class:`ConfigError` naming the file, the key and
the reason, before anything is sent; nothing here lets a traceback reach the
user. Every key is type-checked; an unknown key is an error too (a typo such
as ``delivery_sec`` would otherwise leave the default silently in force).
Secrets stay references (:class:`flowtest.secrets.Secret`) until a
connection needs them.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowtest import providers
from flowtest.config import cloudflare
from flowtest.config.serve import parse_serve
from flowtest.config.settings import (
    MAX_ALIASES,
    Account,
    Alias,
    Config,
    DnsSettings,
    Endpoint,
    Limits,
    Timeouts,
    TlsMode,
    TlsSettings,
    check_address,
    check_domain,
)
from flowtest.errors import ConfigError, SecretError
from flowtest.i18n import gettext as _
from flowtest.model import Thresholds
from flowtest.secrets import Secret


class _Reader:
    """Walks the TOML tree, remembering where it is for the error message."""

    def __init__(self, file: Path | None) -> None:
        self.file = file

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(reason, file=self.file, key=key)

    def table(self, data: Mapping[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
        value = _get(data, key)
        if value is None:
            if required:
                raise self.fail(key, _("missing table"))
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, _("must be a table, not {kind}").format(kind=_kind(value)))
        return value

    def string(self, data: Mapping[str, Any], key: str, default: str | None = None) -> str:
        value = _get(data, key)
        if value is None:
            if default is None:
                raise self.fail(key, _("missing"))
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, _("must be a non-empty string, not {kind}").format(
                kind=_kind(value)))
        return value.strip()

    def optional_string(self, data: Mapping[str, Any], key: str) -> str | None:
        if _get(data, key) is None:
            return None
        return self.string(data, key)

    def number(self, data: Mapping[str, Any], key: str, default: float, *, minimum: float = 0.0,
               ) -> float:
        value = _get(data, key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, _("must be a number, not {kind}").format(kind=_kind(value)))
        if value <= minimum:
            raise self.fail(key, _("must be greater than {minimum}, not {value}").format(
                minimum=f"{minimum:g}", value=value))
        return float(value)

    def integer(self, data: Mapping[str, Any], key: str, default: int) -> int:
        value = _get(data, key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, _("must be a whole number, not {kind}").format(kind=_kind(value)))
        return value

    def boolean(self, data: Mapping[str, Any], key: str, default: bool) -> bool:
        value = _get(data, key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, _("must be true or false, not {kind}").format(kind=_kind(value)))
        return value

    def choice(self, data: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str,
               ) -> str:
        value = self.string(data, key, default)
        if value not in choices:
            raise self.fail(key, _("must be one of {choices}, not {value}").format(
                choices=", ".join(choices), value=repr(value)))
        return value

    def secret(self, data: Mapping[str, Any], key: str) -> Secret:
        value = self.string(data, key)
        try:
            return Secret(value)
        except SecretError as exc:
            # The rejected value may be a password typed in by mistake: never echo it.
            raise self.fail(key, exc.reason) from None

    def unknown(self, data: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for name in data:
            if name not in allowed:
                where = f"{prefix}.{name}" if prefix else name
                hint = ", ".join(sorted(allowed))
                raise self.fail(where, _("unknown key (known here: {keys})").format(keys=hint))


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    return data.get(dotted.rsplit(".", 1)[-1])


def _kind(value: object) -> str:
    kinds = {str: _("a string"), int: _("an integer"), float: _("a number"),
             bool: _("a boolean"), list: _("a list"), dict: _("a table")}
    return kinds.get(type(value), type(value).__name__)


_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")  # e.g. localhost
_ENDPOINT_KEYS = {"host", "port", "tls", "address"}
_ACCOUNT_KEYS = {"address", "username", "password", "app_password", "smtp", "imap", "provider",
                 "authserv_id"}


def _endpoint(r: _Reader, data: Mapping[str, Any], key: str, default_port: int,
              default_tls: TlsMode, profile: tuple[str, int, str] | None = None) -> Endpoint:
    if profile is not None and key.rsplit(".", 1)[-1] not in data:
        host, port, tls = profile
        return Endpoint(host=host, port=port, tls=tls)  # type: ignore[arg-type]
    table = r.table(data, key)
    r.unknown(table, key, _ENDPOINT_KEYS)
    host = r.string(table, f"{key}.host")
    if not _host_name(host):
        raise r.fail(f"{key}.host", _("{host} is not a host name or IP address").format(
            host=repr(host)))
    port_value = table.get("port", default_port)
    if isinstance(port_value, bool) or not isinstance(port_value, int) or not (
            0 < port_value < 65536):
        raise r.fail(f"{key}.port", _("must be a port number 1-65535, not {value}").format(
            value=repr(port_value)))
    tls = r.choice(table, f"{key}.tls", ("implicit", "starttls", "plain"), default_tls)
    # --- IMAP STARTTLS: refused here while net/imap cannot do it -----------
    # net/imap speaks implicit TLS only; with --insecure a "starttls" endpoint
    # would silently log in in PLAINTEXT (issue 14, item 7). Remove this one
    # check when net/imap performs STARTTLS (RFC 3501 §6.2.1).
    if key.endswith(".imap") and tls == "starttls":
        raise r.fail(f"{key}.tls", _("IMAP with STARTTLS is not supported: use port 993 with "
                                    "tls = \"implicit\" (every provider flowtest knows "
                                    "offers it)"))
    # ----------------------------------------------------------------------
    address = r.optional_string(table, f"{key}.address")
    if address is not None:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise r.fail(f"{key}.address", _("must be an IP address, not {value}").format(
                value=repr(address))) from None
    return Endpoint(host=host, port=port_value, tls=tls, address=address)  # type: ignore[arg-type]


def _account(r: _Reader, data: Mapping[str, Any], key: str, password_key: str,
             smtp_default: tuple[int, TlsMode]) -> Account:
    table = r.table(data, key)
    r.unknown(table, key, _ACCOUNT_KEYS)
    provider = r.string(table, f"{key}.provider", "gmail" if key == "gmail" else "custom")
    profile = providers.get(provider)
    if profile is None and provider != "custom":
        raise r.fail(f"{key}.provider", _("unknown provider {name}; known: {known}").format(
            name=repr(provider), known=", ".join(["custom", *providers.PROVIDERS])))
    address = r.string(table, f"{key}.address")
    if not check_address(address):
        raise r.fail(f"{key}.address", _("{address} is not a mail address").format(
            address=repr(address)))
    if password_key not in table:
        raise r.fail(f"{key}.{password_key}", _("missing (give it as env:NAME, file:PATH or "
                                                "keyring:SERVICE/USER)"))
    return Account(
        address=address,
        username=r.string(table, f"{key}.username", address),
        password=r.secret(table, f"{key}.{password_key}"),
        smtp=_endpoint(r, table, f"{key}.smtp", *smtp_default,
                       profile=profile.smtp if profile else None),
        imap=_endpoint(r, table, f"{key}.imap", 993, "implicit",
                       profile=profile.imap if profile else None),
        provider=provider,
        authserv_id=_authserv_id(r, table, f"{key}.authserv_id"),
    )


def _host_name(host: str) -> bool:
    if check_domain(host) or _LABEL_RE.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _authserv_id(r: _Reader, table: Mapping[str, Any], key: str) -> str | None:
    # RFC 8601 §2.5: an authserv-id is a domain name in practice; the judge
    # compares it with the first token of Authentication-Results.
    value = r.optional_string(table, key)
    if value is not None and not check_domain(value.rstrip(".")):
        raise r.fail(key, _("{value} is not a host name like \"mx.google.com\"").format(
            value=repr(value)))
    return value


def _nameserver(r: _Reader, key: str, value: object) -> tuple[str, int]:
    if not isinstance(value, str):
        raise r.fail(key, _("must be a string like '1.1.1.1' or '127.0.0.2:5353', not "
                            "{kind}").format(kind=_kind(value)))
    host, port = value, 53
    if value.count(":") == 1:
        host, _colon, port_text = value.partition(":")
        if not port_text.isdigit():
            raise r.fail(key, _("bad port in {value}").format(value=repr(value)))
        port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise r.fail(key, _("{host} is not an IP address").format(host=repr(host))) from None
    return host, port


TOP_KEYS = {"domain", "aliases", "target", "cleanup", "gmail", "probe", "dns", "tls", "timeouts",
            "thresholds", "dkim_selectors", "require_dmarc_pass", "limits", "lang",
            "cloudflare", "serve"}
# The languages a config may ask for (flowtest.i18n.LANGUAGES; --lang wins over it).
LANGS = ("en", "zh")


def parse(data: Mapping[str, Any], *, file: Path | None = None) -> Config:
    """Validate an already-decoded TOML document."""
    r = _Reader(file)
    r.unknown(data, "", TOP_KEYS)
    domain = r.string(data, "domain").lower().rstrip(".")
    if not check_domain(domain):
        raise r.fail("domain", _("{domain} is not a domain name").format(domain=repr(domain)))

    raw_aliases = data.get("aliases")
    if not isinstance(raw_aliases, list) or not raw_aliases:
        raise r.fail("aliases", _("must be a non-empty list of names or addresses at the domain"))
    if len(raw_aliases) > MAX_ALIASES:
        raise r.fail("aliases", _("{count} aliases; Cloudflare Email Routing allows at most "
                                  "{limit} rules per domain").format(count=len(raw_aliases),
                                                                    limit=MAX_ALIASES))
    aliases: list[Alias] = []
    for i, item in enumerate(raw_aliases):
        key = f"aliases[{i}]"
        if not isinstance(item, str) or not item.strip():
            raise r.fail(key, _("must be a string, not {kind}").format(kind=_kind(item)))
        address = item.strip().lower()
        if "@" not in address:
            address = f"{address}@{domain}"
        if not check_address(address):
            raise r.fail(key, _("{address} is not a mail address").format(address=repr(item)))
        if address.partition("@")[2] != domain:
            raise r.fail(key, _("{address} is not at {domain}: Cloudflare routes only the "
                                "domain's own addresses").format(address=address,
                                                                 domain=domain))
        if any(a.address == address for a in aliases):
            raise r.fail(key, _("{address} is listed twice").format(address=address))
        aliases.append(Alias(address))

    gmail = _account(r, data, "gmail", "app_password", (587, "starttls"))
    probe = _account(r, data, "probe", "password", (587, "starttls"))

    dns_t = r.table(data, "dns", required=False)
    r.unknown(dns_t, "dns", {"nameservers", "timeout_s"})
    raw_ns = dns_t.get("nameservers", [])
    if not isinstance(raw_ns, list):
        raise r.fail("dns.nameservers", _("must be a list of addresses (empty for the system's)"))
    dns = DnsSettings(
        nameservers=tuple(_nameserver(r, f"dns.nameservers[{i}]", v) for i, v in enumerate(raw_ns)),
        timeout_s=r.number(dns_t, "dns.timeout_s", 5.0),
    )

    tls_t = r.table(data, "tls", required=False)
    r.unknown(tls_t, "tls", {"ca_file", "insecure"})
    ca_file: Path | None = None
    if "ca_file" in tls_t:
        ca_file = Path(r.string(tls_t, "tls.ca_file")).expanduser()
        if file is not None and not ca_file.is_absolute():
            ca_file = file.parent / ca_file
        if not ca_file.is_file():
            raise r.fail("tls.ca_file", _("{path} does not exist").format(path=ca_file))
    tls = TlsSettings(ca_file=ca_file, insecure=r.boolean(tls_t, "tls.insecure", False))

    to_t = r.table(data, "timeouts", required=False)
    r.unknown(to_t, "timeouts", {"connect_s", "command_s", "delivery_s"})
    timeouts = Timeouts(
        connect_s=r.number(to_t, "timeouts.connect_s", Timeouts.connect_s),
        command_s=r.number(to_t, "timeouts.command_s", Timeouts.command_s),
        delivery_s=r.number(to_t, "timeouts.delivery_s", Timeouts.delivery_s),
    )
    th_t = r.table(data, "thresholds", required=False)
    r.unknown(th_t, "thresholds", {"latency_warn_s", "latency_fail_s"})
    thresholds = Thresholds(
        latency_warn_s=r.number(th_t, "thresholds.latency_warn_s", Thresholds.latency_warn_s),
        latency_fail_s=r.number(th_t, "thresholds.latency_fail_s", Thresholds.latency_fail_s),
    )
    if thresholds.latency_warn_s > thresholds.latency_fail_s:
        raise r.fail("thresholds.latency_warn_s",
                     _("must not be above thresholds.latency_fail_s"))

    li_t = r.table(data, "limits", required=False)
    r.unknown(li_t, "limits", {"imap_connections", "send_interval_s", "daily_sends"})
    imap_connections = r.integer(li_t, "limits.imap_connections", Limits.imap_connections)
    if not 1 <= imap_connections <= 15:
        raise r.fail("limits.imap_connections", _(
            "must be 1 to 15 (Gmail allows about 15 per account, shared with your phone and "
            "mail apps), not {value}").format(value=imap_connections))
    daily_sends = r.integer(li_t, "limits.daily_sends", -1) if "daily_sends" in li_t else None
    if daily_sends is not None and not 0 <= daily_sends <= 2000:
        raise r.fail("limits.daily_sends", _(
            "must be 0 (no limit) to 2000 (Google Workspace's daily limit), not "
            "{value}").format(value=daily_sends))
    interval = r.number(li_t, "limits.send_interval_s", 0.0, minimum=float("-inf"))
    if not 0 <= interval <= 600:
        raise r.fail("limits.send_interval_s", _("must be 0 to 600 seconds, not {value}").format(
            value=f"{interval:g}"))
    limits = Limits(imap_connections=imap_connections, send_interval_s=interval,
                    daily_sends=daily_sends)

    raw_selectors = data.get("dkim_selectors", [])
    if not isinstance(raw_selectors, list) or not all(
            isinstance(s, str) and re.fullmatch(r"[A-Za-z0-9._-]+", s) for s in raw_selectors):
        raise r.fail("dkim_selectors", _("must be a list of selector names like \"s1\""))

    target = r.choice(data, "target", ("sandbox", "live"), "live")
    serve = parse_serve(r.table(data, "serve", required=False), r.fail, live=target == "live")

    return Config(
        domain=domain,
        dkim_selectors=tuple(raw_selectors),
        require_dmarc_pass=r.boolean(data, "require_dmarc_pass", False),
        aliases=tuple(aliases),
        gmail=gmail,
        probe=probe,
        target=target,  # type: ignore[arg-type]
        dns=dns,
        tls=tls,
        timeouts=timeouts,
        thresholds=thresholds,
        limits=limits,
        cleanup=r.choice(data, "cleanup", ("trash", "keep"), "trash"),  # type: ignore[arg-type]
        lang=r.choice(data, "lang", LANGS, "en") if "lang" in data else None,
        serve=serve,
        path=file,
        cloudflare=cloudflare.read(r, data, domain, check_domain),
    )


def load(path: Path | str) -> Config:
    """Read and validate a flowtest.toml. Raises :class:`ConfigError` only."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(_("no such file (write one with `flowtest init`)"), file=file) from None
    except OSError as exc:
        raise ConfigError(_("cannot read: {reason}").format(reason=exc.strerror),
                          file=file) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(_("not UTF-8 text"), file=file) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_("not valid TOML: {reason}").format(reason=exc), file=file) from None
    return parse(data, file=file)

