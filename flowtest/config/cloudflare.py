"""The optional ``[cloudflare]`` section: a read-only API token (by
reference), the zone by name, and where the API and RDAP are.

Absent, every Cloudflare check is skipped with one info line; the rest of
flowtest never needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from flowtest.errors import ConfigError
from flowtest.i18n import gettext as _
from flowtest.secrets import Secret

API_BASE = "https://api.cloudflare.com/client/v4"
# rdap.org redirects to the registry's own RDAP server for any TLD (its
# bootstrap follows IANA's registry, RFC 9224).
RDAP_BASE = "https://rdap.org"
KEYS = {"api_token", "zone", "api_base", "rdap_base"}


class _Reader(Protocol):
    """What this section needs of config.reader's walker (no import back)."""

    def fail(self, key: str, reason: str) -> ConfigError: ...
    def table(self, data: Mapping[str, Any], key: str, *, required: bool = True,
              ) -> dict[str, Any]: ...
    def string(self, data: Mapping[str, Any], key: str, default: str | None = None) -> str: ...
    def secret(self, data: Mapping[str, Any], key: str) -> Secret: ...
    def unknown(self, data: Mapping[str, Any], prefix: str, allowed: set[str]) -> None: ...


@dataclass(frozen=True)
class CloudflareSettings:
    api_token: Secret
    zone: str                     # the zone's name; its id and account id are looked up
    api_base: str = API_BASE
    rdap_base: str = RDAP_BASE


def _https_base(r: _Reader, table: Mapping[str, Any], key: str, default: str) -> str:
    value = r.string(table, key, default).rstrip("/")
    parts = urlsplit(value)
    # The token travels in a header: never over plain HTTP, never with
    # user:password@ or a query a proxy could log.
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise r.fail(key, _("must be an https:// URL without query or credentials, not "
                            "{value}").format(value=repr(value)))
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise r.fail(key, _("bad port in {value}").format(value=repr(value))) from None
    return value


def read(r: _Reader, data: Mapping[str, Any], domain: str,
         check_domain: Callable[[str], bool]) -> CloudflareSettings | None:
    """The ``[cloudflare]`` table, or None when the config has none."""
    if "cloudflare" not in data:
        return None
    table = r.table(data, "cloudflare")
    r.unknown(table, "cloudflare", KEYS)
    if "api_token" not in table:
        raise r.fail("cloudflare.api_token", _("missing (give it as env:NAME, file:PATH or "
                                               "keyring:SERVICE/USER; a token with read "
                                               "permissions only, see docs/setup.md)"))
    zone = r.string(table, "cloudflare.zone", domain).lower().rstrip(".")
    if not check_domain(zone):
        raise r.fail("cloudflare.zone", _("{zone} is not a domain name").format(
            zone=repr(zone)))
    if domain != zone and not domain.endswith("." + zone):
        raise r.fail("cloudflare.zone", _("{domain} is not in the zone {zone}").format(
            domain=domain, zone=zone))
    return CloudflareSettings(
        api_token=r.secret(table, "cloudflare.api_token"), zone=zone,
        api_base=_https_base(r, table, "cloudflare.api_base", API_BASE),
        rdap_base=_https_base(r, table, "cloudflare.rdap_base", RDAP_BASE))
