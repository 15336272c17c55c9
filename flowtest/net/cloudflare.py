"""Cloudflare's API, read-only: the v4 REST envelope, pagination, the one
POST that reads (GraphQL), and RDAP for the registration.

httpx, not the official ``cloudflare`` library: measured here (Python 3.11,
2 cores, median of 7 processes) the library takes 0.34 s to import (0.72 s
with a client touching ``email_routing``) and adds 121 MB with pydantic;
httpx takes 0.13 s and adds 4 MB. We read eight endpoints; the library's
types buy us nothing a CLI should pay that for.

Nothing here raises for an API answer: every call returns an
:class:`ApiReply` whose ``errors`` carry Cloudflare's own codes (>= 1000),
so the doctor can name a missing permission and keep going. The token
never appears in any text this module returns (``secrets.redact``).
"""

from __future__ import annotations

import json
import ssl
import sys
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from flowtest.config import CloudflareSettings, DnsSettings, TlsSettings
from flowtest.i18n import gettext as _
from flowtest.net import tls as tls_mod
from flowtest.net.dns import DnsClient
from flowtest.secrets import redact

if TYPE_CHECKING:
    import httpx


def _httpx() -> Any:
    """httpx, imported on first use: about 90 ms of CPU and 90 modules that a
    run which never talks to Cloudflare (no [cloudflare] section, every probe
    on time) should not pay (issue 19)."""
    if "httpx" not in sys.modules:
        # httpx imports its own command-line client (click, rich.syntax,
        # pygments: 18 ms) whenever those happen to be installed; a None entry
        # makes that import fail the way httpx expects when they are not.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    import httpx

    return httpx


PER_PAGE = 50          # the most Cloudflare allows (FACTS.md: 5 to 50)
MAX_PAGES = 20         # 1000 items: five times the 200-rule limit
MAX_BODY = 4 << 20     # a hostile or broken server cannot fill memory
# Cloudflare's codes for a token that lacks a permission or is refused.
DENIED_CODES = frozenset({9109, 10000, 10001})


@dataclass(frozen=True)
class ApiError:
    code: int
    message: str


@dataclass(frozen=True)
class ApiReply:
    """One answer, whatever happened. ``http_status`` 0: no answer at all
    (connection, TLS, DNS); then ``errors`` holds one entry with code 0."""

    path: str
    http_status: int
    success: bool
    result: Any = None
    errors: tuple[ApiError, ...] = ()
    result_info: dict[str, Any] = field(default_factory=dict)

    @property
    def denied(self) -> bool:
        """The token may not read this (a permission is missing)."""
        return self.http_status == 403 or any(e.code in DENIED_CODES for e in self.errors)

    @property
    def unreachable(self) -> bool:
        return self.http_status == 0

    def describe(self) -> str:
        """Cloudflare's own words, bounded, for a finding's message. Machine
        text, the same in every language: it also fills the report's
        ``cloudflare_log.detail``, so the fragments this module writes into
        ``errors`` ("not JSON (HTTP 502)") stay untranslated, like the
        server's own."""
        if not self.errors:
            return f"HTTP {self.http_status}"
        return "; ".join(f"{e.code}: {e.message[:200]}" for e in self.errors[:3])


@dataclass(frozen=True)
class GraphReply:
    data: dict[str, Any] | None
    errors: tuple[str, ...]
    http_status: int

    @property
    def denied(self) -> bool:
        return self.http_status == 403 or any(
            "authz" in e or "not authorized" in e.lower() for e in self.errors)


def _errors(value: object) -> tuple[ApiError, ...]:
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            code = item.get("code")
            message = item.get("message")
            out.append(ApiError(code if isinstance(code, int) and not isinstance(code, bool)
                                else 0, redact(str(message))[:500] if message else ""))
    return tuple(out)


def envelope(path: str, status: int, body: bytes) -> ApiReply:
    """Read the v4 envelope; anything else is a failed reply, never a crash."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ApiReply(path, status, False, errors=(ApiError(0, f"not JSON (HTTP {status})"),))
    if not isinstance(doc, dict):
        return ApiReply(path, status, False, errors=(ApiError(0, "not a v4 envelope"),))
    info = doc.get("result_info")
    success = doc.get("success") is True and 200 <= status < 300
    errors = _errors(doc.get("errors"))
    if not success and not errors:
        errors = (ApiError(0, f"HTTP {status}"),)
    return ApiReply(path, status, success, doc.get("result"), errors,
                    info if isinstance(info, dict) else {})


class CloudflareClient:
    """``async with CloudflareClient(settings, tls=..., dns=...) as cf``.

    With configured name servers (the sandbox, or a user's own resolver),
    host names are resolved through them and the certificate is still
    checked against the name (SNI), as the SMTP and IMAP clients do."""

    def __init__(self, settings: CloudflareSettings, *, tls: TlsSettings, dns: DnsSettings,
                 timeout_s: float = 15.0) -> None:
        self.settings = settings
        self._dns = DnsClient(dns) if dns.nameservers else None
        self._tls = tls
        self._timeout = timeout_s
        self._http: httpx.AsyncClient | None = None
        self._addresses: dict[str, str] = {}
        self.requests = 0

    async def __aenter__(self) -> CloudflareClient:
        self._http = _httpx().AsyncClient(verify=tls_mod.client_context(self._tls),
                                       timeout=self._timeout, follow_redirects=False,
                                       trust_env=False)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- transport ----------------------------------------------------------

    async def _address(self, host: str) -> str | None:
        if self._dns is None:
            return None
        if host not in self._addresses:
            answer = await self._dns.query(host, "A")
            if answer.status != "ok" or not answer.records:
                raise _httpx().ConnectError(f"{host}: no address ({answer.status})")
            self._addresses[host] = answer.records[0]
        return self._addresses[host]

    async def _send(self, method: str, url: str, headers: dict[str, str],
                    content: bytes | None = None) -> tuple[int, bytes, str | None]:
        """(status, body, Location) for one request, connecting by our resolver."""
        assert self._http is not None, "use the client as an async context manager"
        parts = urlsplit(url)
        host = parts.hostname or ""
        address = await self._address(host)
        extensions: dict[str, Any] = {}
        if address is not None:
            netloc = f"{address}:{parts.port}" if parts.port else address
            url = urlunsplit(parts._replace(netloc=netloc))
            headers = {**headers, "Host": parts.netloc}
            extensions["sni_hostname"] = host
        self.requests += 1
        async with self._http.stream(method, url, headers=headers, content=content,
                                     extensions=extensions) as response:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY:
                    raise _httpx().DecodingError(f"answer larger than {MAX_BODY} bytes")
            return response.status_code, body, response.headers.get("location")

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_token.reveal()}",
                "Accept": "application/json"}

    @staticmethod
    def _failure(exc: BaseException) -> str:
        if isinstance(exc, ssl.SSLError):
            return redact(tls_mod.describe(exc))
        return redact(f"{type(exc).__name__}: {exc}")[:300]

    # -- REST -----------------------------------------------------------------

    async def get(self, path: str, params: dict[str, str | int] | None = None) -> ApiReply:
        url = self.settings.api_base + path
        if params:
            url += "?" + urlencode(params)
        try:
            status, body, _ = await self._send("GET", url, self._auth())
        except (_httpx().HTTPError, OSError, ssl.SSLError) as exc:
            return ApiReply(path, 0, False, errors=(ApiError(0, self._failure(exc)),))
        return envelope(path, status, body)

    async def get_all(self, path: str, params: dict[str, str | int] | None = None) -> ApiReply:
        """Every page (per_page 50), as one reply whose result is the whole list."""
        items: list[Any] = []
        page = 1
        while True:
            reply = await self.get(path, {**(params or {}), "page": page, "per_page": PER_PAGE})
            if not reply.success or not isinstance(reply.result, list):
                return reply if page == 1 else ApiReply(
                    path, reply.http_status, False, items, reply.errors, reply.result_info)
            items.extend(reply.result)
            pages = reply.result_info.get("total_pages")
            if not isinstance(pages, int) or page >= min(pages, MAX_PAGES) or not reply.result:
                return ApiReply(path, reply.http_status, True, items, (), reply.result_info)
            page += 1

    # -- GraphQL (the activity log) ---------------------------------------------

    async def graphql(self, query: str, variables: dict[str, Any]) -> GraphReply:
        url = self.settings.api_base + "/graphql"
        payload = json.dumps({"query": query, "variables": variables}).encode()
        try:
            status, body, _ = await self._send(
                "POST", url, {**self._auth(), "Content-Type": "application/json"}, payload)
        except (_httpx().HTTPError, OSError, ssl.SSLError) as exc:
            return GraphReply(None, (self._failure(exc),), 0)
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return GraphReply(None, (f"not JSON (HTTP {status})",), status)
        if not isinstance(doc, dict):
            return GraphReply(None, ("not a GraphQL answer",), status)
        errors = tuple(redact(json.dumps(e) if not isinstance(e, dict) else
                              str(e.get("message", "")) + " " + json.dumps(e.get("extensions")))
                       [:500] for e in doc.get("errors") or [] if e)
        data = doc.get("data")
        return GraphReply(data if isinstance(data, dict) else None, errors, status)

    # -- RDAP (RFC 9083): the registration, no token ---------------------------

    async def rdap_domain(self, domain: str) -> tuple[int, dict[str, Any] | None, str]:
        """(HTTP status, the RDAP object, a failure text); follows up to 3
        redirects (rdap.org sends each TLD to its registry's server)."""
        url = f"{self.settings.rdap_base}/domain/{domain}"
        for _hop in range(4):
            try:
                status, body, location = await self._send(
                    "GET", url, {"Accept": "application/rdap+json"})
            except (_httpx().HTTPError, OSError, ssl.SSLError) as exc:
                return 0, None, self._failure(exc)
            if status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                if urlsplit(url).scheme != "https":
                    return status, None, _("RDAP redirected to a non-https URL")
                continue
            try:
                doc = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                return status, None, f"not JSON (HTTP {status})"
            return status, doc if isinstance(doc, dict) else None, ""
        return 0, None, _("too many RDAP redirects")
