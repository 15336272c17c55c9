"""Cloudflare's API (and RDAP) in the sandbox: HTTPS at ``api.cloudflare.com``
and ``rdap.org`` on a loopback address of their own, answering from the
world's :class:`~flowtest.sandbox.cfapi_state.Account`.

The v4 envelope, pagination (``per_page`` 5 to 50), a 403 with code 10000
for a permission the token lacks, and ``POST /graphql`` run by graphql-core.
Every request is recorded, so a test can prove the client only reads.
"""

from __future__ import annotations

import json
import math
import ssl
import time
from typing import Any

from aiohttp import web

from flowtest.sandbox.cfapi_graphql import Graph
from flowtest.sandbox.cfapi_state import (
    ADDRESSES_READ,
    ANALYTICS_READ,
    RULES_READ,
    ZONE_READ,
    ZONE_SETTINGS_READ,
    Account,
    iso,
)
from flowtest.sandbox.faults import Faults
from flowtest.sandbox.hosts import CF_NS

ADDRESS = "127.0.5.1"          # api.cloudflare.com and rdap.org in the sandbox
NAMES = ("api.cloudflare.com", "rdap.org")
PREFIX = "/client/v4"


def publish(records: dict[str, dict[str, list[str]]], domain: str, faults: Faults) -> None:
    """The API's names in the sandbox's DNS, and what cf-routing-misconfigured
    takes away: the SPF record Email Routing expects at the domain."""
    for name in NAMES:
        records.setdefault(name, {})["A"] = [ADDRESS]
    if faults.on("cf-routing-misconfigured"):
        txt = records.get(domain, {}).get("TXT", [])
        records.setdefault(domain, {})["TXT"] = [t for t in txt if "_spf.mx.cloudflare" not in t]


def _envelope(result: Any, *, info: dict[str, Any] | None = None, status: int = 200,
              errors: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"success": not errors, "errors": errors or [], "messages": [],
                            "result": result}
    if info is not None:
        body["result_info"] = info
    return web.json_response(body, status=status)


def _error(status: int, code: int, message: str) -> web.Response:
    return _envelope(None, status=status, errors=[{"code": code, "message": message}])


class CloudflareApi:
    def __init__(self, account: Account, tls: ssl.SSLContext) -> None:
        self.account = account
        self.tls = tls
        self.graph = Graph(account)
        self.requests: list[tuple[str, str]] = []   # (method, path): the recording handler
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        p = PREFIX
        app.router.add_get(f"{p}/user/tokens/verify", self.verify)
        app.router.add_get(f"{p}/zones", self.zones)
        app.router.add_get(f"{p}/zones/{{zone}}/email/routing", self.settings)
        app.router.add_get(f"{p}/zones/{{zone}}/email/routing/dns", self.dns)
        app.router.add_get(f"{p}/zones/{{zone}}/email/routing/rules", self.rules)
        app.router.add_get(f"{p}/zones/{{zone}}/email/routing/rules/catch_all", self.catch_all)
        app.router.add_get(f"{p}/zones/{{zone}}/dnssec", self.dnssec)
        app.router.add_get(f"{p}/accounts/{{account}}/email/routing/addresses", self.addresses)
        app.router.add_post(f"{p}/graphql", self.graphql)
        app.router.add_get("/domain/{name}", self.rdap)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, ADDRESS, 0, ssl_context=self.tls)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_base(self) -> str:
        return f"https://api.cloudflare.com:{self.port}{PREFIX}"

    @property
    def rdap_base(self) -> str:
        return f"https://rdap.org:{self.port}"

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        response: web.StreamResponse = await handler(request)
        return response

    # -- auth ---------------------------------------------------------------

    def _refused(self, request: web.Request, permission: str | None) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if header != f"Bearer {self.account.token}":
            return _error(400, 6003, "Invalid request headers") if not header.startswith(
                "Bearer ") else _error(401, 1000, "Invalid API Token")
        if permission and permission not in self.account.permissions():
            return _error(403, 10000, "Authentication error")
        return None

    def _zone(self, request: web.Request) -> web.Response | None:
        if request.match_info.get("zone") != self.account.zone_id:
            return _error(404, 7003, "Could not route to /zones/…, perhaps your object "
                                     "identifier is invalid?")
        return None

    @staticmethod
    def _page(request: web.Request, items: list[Any]) -> web.Response:
        try:
            page = int(request.query.get("page", "1"))
            per_page = int(request.query.get("per_page", "20"))
        except ValueError:
            return _error(400, 1001, "page and per_page must be numbers")
        if page < 1 or not 5 <= per_page <= 50:
            return _error(400, 1001, "per_page must be 5 to 50")
        chunk = items[(page - 1) * per_page: page * per_page]
        return _envelope(chunk, info={"page": page, "per_page": per_page, "count": len(chunk),
                                      "total_count": len(items),
                                      "total_pages": max(1, math.ceil(len(items) / per_page))})

    # -- endpoints ------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        return self._refused(request, None) or _envelope(
            {"id": self.account.account_id[:16], "status": "active"})

    async def zones(self, request: web.Request) -> web.Response:
        refused = self._refused(request, ZONE_READ)
        if refused:
            return refused
        a = self.account
        zone = {"id": a.zone_id, "name": a.routing.domain, "status": a.zone_status,
                "paused": False, "type": "full", "name_servers": list(CF_NS),
                "original_name_servers": ["ns1.registrar.example", "ns2.registrar.example"],
                "account": {"id": a.account_id, "name": f"{a.gmail_address}'s Account"}}
        name = request.query.get("name")
        return self._page(request, [zone] if name in (None, a.routing.domain) else [])

    async def settings(self, request: web.Request) -> web.Response:
        return (self._refused(request, ZONE_SETTINGS_READ) or self._zone(request)
                or _envelope(self.account.settings()))

    async def dns(self, request: web.Request) -> web.Response:
        return (self._refused(request, ZONE_SETTINGS_READ) or self._zone(request)
                or _envelope(self.account.dns_result()))

    async def rules(self, request: web.Request) -> web.Response:
        return (self._refused(request, RULES_READ) or self._zone(request)
                or self._page(request, self.account.rules()))

    async def catch_all(self, request: web.Request) -> web.Response:
        return (self._refused(request, RULES_READ) or self._zone(request)
                or _envelope(self.account.catch_all()))

    async def dnssec(self, request: web.Request) -> web.Response:
        return (self._refused(request, ZONE_READ) or self._zone(request) or _envelope(
            {"status": self.account.dnssec_status, "ds": None, "digest": None,
             "key_tag": None, "algorithm": None, "modified_on": iso(self.account.created)}))

    async def addresses(self, request: web.Request) -> web.Response:
        refused = self._refused(request, ADDRESSES_READ)
        if refused:
            return refused
        if request.match_info["account"] != self.account.account_id:
            return _error(403, 9109, "Unauthorized to access requested resource")
        items = self.account.addresses()
        verified = request.query.get("verified")
        if verified in ("true", "false"):
            items = [i for i in items if (i["verified"] is not None) == (verified == "true")]
        return self._page(request, items)

    async def graphql(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if header != f"Bearer {self.account.token}" or \
                ANALYTICS_READ not in self.account.permissions():
            return web.json_response({"data": None, "errors": [
                {"message": "not authorized for that account", "path": ["viewer", "zones"],
                 "extensions": {"code": "authz"}}]})
        try:
            doc = json.loads(await request.read())
            query, variables = doc["query"], doc.get("variables")
            if not isinstance(query, str) or not isinstance(variables, dict | None):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"data": None, "errors": [
                {"message": "failed to parse request body"}]}, status=400)
        return web.json_response(await self.graph.execute(query, variables))

    async def rdap(self, request: web.Request) -> web.Response:
        name = request.match_info["name"].lower().rstrip(".")
        if name != self.account.routing.domain:
            return web.json_response({"errorCode": 404, "title": "Not Found"}, status=404,
                                     content_type="application/rdap+json")
        now = time.time()
        expires = now + self.account.expires_in_days * 86400
        return web.json_response({
            "objectClassName": "domain", "ldhName": name.upper(), "status": ["active"],
            "rdapConformance": ["rdap_level_0"],
            "nameservers": [{"objectClassName": "nameserver", "ldhName": ns.upper()}
                            for ns in CF_NS],
            "events": [{"eventAction": "registration", "eventDate": iso(now - 165 * 86400)},
                       {"eventAction": "expiration", "eventDate": iso(expires)}],
        }, content_type="application/rdap+json")
