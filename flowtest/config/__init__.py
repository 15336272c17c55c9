"""flowtest.toml -> typed, validated settings; secrets by reference.

- :mod:`~flowtest.config.settings`: the settings themselves (frozen dataclasses);
- :mod:`~flowtest.config.reader`: reading and checking a file (:func:`load`, :func:`parse`);
- :mod:`~flowtest.config.template`: the commented file ``flowtest init`` writes.
"""

from flowtest.config.cloudflare import CloudflareSettings
from flowtest.config.reader import TOP_KEYS, load, parse
from flowtest.config.serve import ServeSettings
from flowtest.config.settings import (
    MAX_ALIASES,
    Account,
    Alias,
    CleanupMode,
    Config,
    DnsSettings,
    Endpoint,
    Limits,
    Target,
    Timeouts,
    TlsMode,
    TlsSettings,
    check_address,
    check_domain,
    plaintext_endpoints,
    receiver,
)
from flowtest.config.template import SECRET_SOURCES, TEMPLATE, secret_ref, template
from flowtest.model import Thresholds

__all__ = [
    "MAX_ALIASES",
    "SECRET_SOURCES",
    "TEMPLATE",
    "TOP_KEYS",
    "Account",
    "Alias",
    "CleanupMode",
    "CloudflareSettings",
    "Config",
    "DnsSettings",
    "Endpoint",
    "Limits",
    "ServeSettings",
    "Target",
    "Thresholds",
    "Timeouts",
    "TlsMode",
    "TlsSettings",
    "check_address",
    "check_domain",
    "load",
    "parse",
    "plaintext_endpoints",
    "receiver",
    "secret_ref",
    "template",
]
