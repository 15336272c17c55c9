"""The activity log through GraphQL, as Cloudflare's analytics API serves it:
``viewer { zones(filter: {zoneTag}) { emailRoutingAdaptive(filter, limit,
orderBy) { … } } }``, executed by graphql-core against a real schema."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, GraphQLObjectType, build_schema, graphql

from flowtest.sandbox.cfapi_state import Account

SDL = """
type Query {
  viewer: Viewer
}

type Viewer {
  zones(filter: ZoneFilter): [Zone!]!
}

input ZoneFilter {
  zoneTag: String
}

scalar Time

type Zone {
  zoneTag: String!
  emailRoutingAdaptive(filter: EmailRoutingAdaptiveFilter, limit: Int!,
                       orderBy: [String!]): [EmailRoutingAdaptive!]!
}

input EmailRoutingAdaptiveFilter {
  AND: [EmailRoutingAdaptiveFilter!]
  datetime_geq: Time
  datetime_leq: Time
  datetime_gt: Time
  datetime_lt: Time
  messageId: String
  to: String
  from: String
  status: String
  action: String
}

type EmailRoutingAdaptive {
  datetime: Time!
  sessionId: String!
  messageId: String!
  from: String!
  to: String!
  subject: String!
  status: String!
  action: String!
  eventType: String!
  ruleMatched: String!
  spf: String!
  dkim: String!
  dmarc: String!
  arc: String!
  errorDetail: String!
  isSpam: Int!
  isNDR: Int!
  isLastEvent: Int!
  spamScore: Int!
  spamThreshold: Int!
}
"""

MAX_LIMIT = 10000  # Cloudflare's analytics API caps limit too


def _matches(row: dict[str, Any], flt: dict[str, Any]) -> bool:
    for key, want in flt.items():
        if key == "AND":
            if not all(_matches(row, sub) for sub in want or []):
                return False
            continue
        field, _, op = key.partition("_")
        value = row.get(field)
        # ISO 8601 in UTC with Z compares in time order as text.
        if (not op and value != want) or (op == "geq" and not value >= want) or (
                op == "leq" and not value <= want) or (op == "gt" and not value > want) or (
                op == "lt" and not value < want):
            return False
    return True


class Graph:
    """One schema per world, its resolvers reading that world's account."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.schema = build_schema(SDL)
        query = self.schema.query_type
        viewer, zone = self.schema.get_type("Viewer"), self.schema.get_type("Zone")
        assert query is not None and isinstance(viewer, GraphQLObjectType)
        assert isinstance(zone, GraphQLObjectType)
        query.fields["viewer"].resolve = lambda *_a, **_k: {}
        viewer.fields["zones"].resolve = self._zones
        zone.fields["emailRoutingAdaptive"].resolve = self._rows

    def _zones(self, _viewer: object, info: Any, filter: dict[str, Any] | None = None,
               ) -> list[dict[str, str]]:
        tag = (filter or {}).get("zoneTag")
        if tag is not None and tag != self.account.zone_id:
            return []
        return [{"zoneTag": self.account.zone_id}]

    def _rows(self, _zone: object, info: Any, limit: int,
              filter: dict[str, Any] | None = None,
              orderBy: list[str] | None = None) -> list[dict[str, Any]]:
        if not 0 < limit <= MAX_LIMIT:
            raise GraphQLError(f"limit must be 1 to {MAX_LIMIT}")
        lag = self.account.faults.seconds("cf-log-lag")
        rows = [r for r in self.account.log.rows(lag) if _matches(r, filter or {})]
        for order in reversed(orderBy or []):
            name, _, direction = order.partition("_")
            rows.sort(key=lambda r: str(r.get(name, "")), reverse=direction == "DESC")
        return rows[:limit]

    async def execute(self, query: str, variables: dict[str, Any] | None) -> dict[str, Any]:
        """Run one request; the answer as Cloudflare shapes it: data and errors."""
        result = await graphql(self.schema, query, variable_values=variables)
        return {"data": result.data,
                "errors": [e.formatted for e in result.errors] if result.errors else None}
