"""The ``[serve]`` section: the schedule and the HTTP side of ``flowtest serve``.

Read by :mod:`flowtest.config.reader` like every other section: each key
type-checked, an unknown key refused. Documented in docs/config.md and
docs/serve.md.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flowtest.errors import ConfigError, SecretError
from flowtest.i18n import gettext as _
from flowtest.secrets import Secret

# Prometheus' own list of exporter ports (9100-9999) is full; 9466 is not one
# of the ports the usual exporters take (node 9100, blackbox 9115,
# OpenTelemetry's Prometheus exporter 9464). See docs/serve.md.
DEFAULT_PORT = 9466
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"

_VANTAGE_RE = re.compile(r"[A-Za-z0-9_.-]{0,64}")

SERVE_KEYS = {"inbound_every_s", "outbound_every_s", "doctor_every_s", "cleanup_every_s",
              "jitter", "listen", "vantage", "bearer_token", "basic_user", "basic_password",
              "probe_endpoint", "probe_min_interval_s", "notify", "notify_after", "ping_url"}


@dataclass(frozen=True)
class ServeSettings:
    inbound_every_s: float = 300.0          # every 5 minutes
    outbound_every_s: float = 6 * 3600.0    # every 6 hours: 4 sends a day per alias
    doctor_every_s: float = 86400.0
    cleanup_every_s: float = 86400.0
    jitter: float = 0.1                     # each wait is stretched or shrunk by up to 10 %
    listen: str = DEFAULT_LISTEN
    vantage: str = ""                       # the `vantage` label of every metric
    bearer_token: Secret | None = None
    basic_user: str | None = None
    basic_password: Secret | None = None
    probe_endpoint: bool = True             # /probe on demand
    probe_min_interval_s: float = 60.0      # /probe: at most one probe this often
    notify: tuple[Secret, ...] = ()         # apprise URLs; they carry tokens, so by reference too
    notify_after: int = 2                   # consecutive failures before "down"
    ping_url: Secret | None = None          # dead-man's switch (healthchecks.io style)

    def scaled_for_sandbox(self) -> ServeSettings:
        """The demo's schedule: seconds instead of hours, so that a fault and
        its state change show within a minute or two."""
        return dataclasses.replace(self, inbound_every_s=5.0, outbound_every_s=15.0,
                                   doctor_every_s=60.0, cleanup_every_s=120.0,
                                   probe_min_interval_s=1.0)


def split_listen(text: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:PORT) -> (host, port); raises ValueError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    host = host.removeprefix("[").removesuffix("]")
    if host != "localhost":
        ipaddress.ip_address(host)  # names other than localhost would hide where we listen
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def parse_serve(data: Mapping[str, Any], fail: Callable[[str, str], ConfigError], *,
                live: bool) -> ServeSettings:
    """``data`` is the [serve] table (empty when absent). For a live target the
    minimums keep a typo from probing every second; a sandbox may go fast."""
    d = ServeSettings()

    def number(key: str, default: float, low: float, high: float) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(f"serve.{key}", _("must be a number"))
        if not live and key.endswith("every_s"):
            low = 1.0
        if not low <= value <= high:
            raise fail(f"serve.{key}", _("must be {low} to {high}, not {value}").format(
                low=f"{low:g}", high=f"{high:g}", value=value))
        return float(value)

    def text(key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise fail(f"serve.{key}", _("must be a non-empty string"))
        return value.strip()

    def secret(key: str, value: object) -> Secret:
        if not isinstance(value, str):
            raise fail(key, _("must be a string: env:NAME, file:PATH or "
                              "keyring:SERVICE/USER"))
        try:
            return Secret(value.strip())
        except SecretError as exc:  # never echo the value: it may be the secret itself
            raise fail(key, exc.reason) from None

    for name in data:
        if name not in SERVE_KEYS:
            known = ", ".join(sorted(SERVE_KEYS))
            raise fail(f"serve.{name}", _("unknown key (known here: {keys})").format(
                keys=known))
    listen = text("listen") or d.listen
    try:
        split_listen(listen)
    except ValueError:
        raise fail("serve.listen", _("must be IP:PORT like {example}, not {value}").format(
            example=DEFAULT_LISTEN, value=repr(listen))) from None
    vantage = data.get("vantage", "")
    if not isinstance(vantage, str) or not _VANTAGE_RE.fullmatch(vantage):
        raise fail("serve.vantage", _("must be a short name of letters, digits, '.', '_' "
                                      "or '-'"))
    probe_endpoint = data.get("probe_endpoint", True)
    if not isinstance(probe_endpoint, bool):
        raise fail("serve.probe_endpoint", _("must be true or false"))
    raw_notify = data.get("notify", [])
    if not isinstance(raw_notify, list):
        raise fail("serve.notify", _("must be a list of secret references to apprise URLs"))
    after = data.get("notify_after", d.notify_after)
    if isinstance(after, bool) or not isinstance(after, int) or not 1 <= after <= 100:
        raise fail("serve.notify_after", _("must be a whole number 1 to 100"))
    basic_user = text("basic_user")
    basic_password = (secret("serve.basic_password", data["basic_password"])
                      if "basic_password" in data else None)
    if (basic_user is None) != (basic_password is None):
        raise fail("serve.basic_user", _("basic_user and basic_password go together"))
    return ServeSettings(
        inbound_every_s=number("inbound_every_s", d.inbound_every_s, 60, 7 * 86400),
        outbound_every_s=number("outbound_every_s", d.outbound_every_s, 600, 30 * 86400),
        doctor_every_s=number("doctor_every_s", d.doctor_every_s, 600, 30 * 86400),
        cleanup_every_s=number("cleanup_every_s", d.cleanup_every_s, 3600, 30 * 86400),
        jitter=number("jitter", d.jitter, 0, 0.5),
        listen=listen, vantage=vantage,
        bearer_token=(secret("serve.bearer_token", data["bearer_token"])
                      if "bearer_token" in data else None),
        basic_user=basic_user, basic_password=basic_password,
        probe_endpoint=probe_endpoint,
        probe_min_interval_s=number("probe_min_interval_s", d.probe_min_interval_s, 1, 86400),
        notify=tuple(secret(f"serve.notify[{i}]", v) for i, v in enumerate(raw_notify)),
        notify_after=after,
        ping_url=secret("serve.ping_url", data["ping_url"]) if "ping_url" in data else None,
    )
