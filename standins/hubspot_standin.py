"""A local stand-in for the HubSpot CRM APIs that hubspot-api-client calls.

It serves the records of a demo CRM DuckDB file (``deals``, ``companies``, ``contacts`` and
their company associations) and implements HubSpot's documented behaviour, each with its
source. It evaluates searches itself, in plain Python over the records: it imports nothing
of the product.

- Search, ``POST /crm/v3/objects/{object}/search`` (developers.hubspot.com/docs/api/crm/search):
  ``filterGroups`` are ORed, the filters of a group ANDed; at most 5 groups, 6 filters a
  group, 18 in all ("Limitations"); one sort; ``limit`` 1 to 200; ``after`` is the offset of
  the page; ``total`` counts every match. At most ``result_cap`` (10,000) results a query:
  "The search endpoints are limited to 10,000 total results for any given query. Attempting
  to page beyond 10,000 will result in a 400 error." The ``paging.next.after`` link is still
  sent on the page that reaches the cap (other connectors, e.g. AWS Glue's and Airbyte's,
  meet the 400 by following it); whether HubSpot also sends it there is not written down,
  so ``next_link_at_cap=False`` drops it at the cap instead, and the product is tested
  against both.
- Filter operators as documented ("Filter search results"): EQ, NEQ, LT, LTE, GT, GTE,
  BETWEEN (inclusive, ``value`` .. ``highValue``), IN / NOT_IN (``values``), HAS_PROPERTY,
  NOT_HAS_PROPERTY, CONTAINS_TOKEN (a whole word, ``*`` a wildcard). Text compares ignoring
  case; NEQ and NOT_IN also match records without a value (HubSpot's "not equal" includes
  records where the property is empty); date and date-time values are epoch milliseconds
  (UTC) or ISO 8601 text.
- Property values are strings, as HubSpot sends them ("Properties": numbers as text, dates
  ``YYYY-MM-DD``, date-times ``YYYY-MM-DDThh:mm:ss.sssZ``, booleans ``true``/``false``);
  ``hs_object_id``, ``createdate`` and the last-modified date always come back. Unknown
  requested properties are ignored; a filter on an unknown property is a 400.
- Properties, ``GET /crm/v3/properties/{object}`` (docs/api/crm/properties): ``name``,
  ``type`` (string, number, date, datetime, enumeration, bool), ``fieldType``, ``options``.
- Associations, ``POST /crm/v4/associations/{from}/{to}/batch/read`` (docs/api/crm/
  associations/v4): at most 1,000 inputs; ids without associations come back as errors and
  the answer is 207 Multi-Status.
- Authentication (docs/api/private-apps): ``Authorization: Bearer <token>``, else 401
  ``INVALID_AUTHENTICATION``. Scopes (docs/api/scopes): search needs
  ``crm.objects.<object>.read``, the properties API ``crm.schemas.<object>.read``; without
  the scope, 403 with category ``MISSING_SCOPES`` and the required scopes in
  ``errors[0].context.requiredGranularScopes`` (the body hubspot-api-nodejs issue #268 shows).
  ``scopes`` lists what the token was granted (every read scope by default).
- Rate limits (docs/api/usage-details, "Rate limits"): the search endpoints take 5 requests
  per second per account (``search_rate``); every endpoint together ``ten_second_limit``
  requests per 10 s (100 for a private app on Free and Starter). Over a limit: 429 with
  ``Retry-After`` and the body ``{"errorType": "RATE_LIMIT", "policyName": "SECONDLY" |
  "TEN_SECONDLY_ROLLING", ...}``.

Test controls: ``inject`` queues failures (429 storms, 5xx) for the next search calls;
``latency_seconds`` delays every answer; ``calls`` records every request (arrival time,
method, path, status) for assertions; ``records(object)`` gives the served records.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb

from standins.local_http import LocalHttpServer, QuietHandler

TOKEN = "pat-na1-standin-token"
MAX_GROUPS, MAX_PER_GROUP, MAX_FILTERS, MAX_PAGE, MAX_BATCH = 5, 6, 18, 200, 1000
OBJECTS = ("deals", "companies", "contacts")
READ_SCOPES = frozenset(
    f"crm.{kind}.{name}.read" for kind in ("objects", "schemas") for name in OBJECTS
)
_ALWAYS = {
    "deals": ("hs_object_id", "createdate", "hs_lastmodifieddate"),
    "companies": ("hs_object_id", "createdate", "hs_lastmodifieddate"),
    "contacts": ("hs_object_id", "createdate", "lastmodifieddate"),
}
_ENUMERATIONS = {"dealstage", "pipeline", "dealtype", "lifecyclestage", "hs_lead_status"}
# (from, to) -> (association table, from column, to column)
_ASSOCIATIONS = {
    ("deals", "companies"): ("deal_company", "deal_id", "company_id"),
    ("contacts", "companies"): ("contact_company", "contact_id", "company_id"),
    ("companies", "deals"): ("deal_company", "company_id", "deal_id"),
    ("companies", "contacts"): ("contact_company", "company_id", "contact_id"),
}
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Call:
    """One request the stand-in received."""

    at: float  # time.monotonic() on arrival
    method: str
    path: str
    status: int


class ApiError(Exception):
    """An answer in HubSpot's error body format."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
            **self.extra,
        }


@dataclass(frozen=True)
class _Property:
    name: str
    type: str  # HubSpot's property type
    field_type: str


class HubSpotStandIn(LocalHttpServer):
    """A threaded HTTP server answering like HubSpot from a demo CRM DuckDB file."""

    def __init__(
        self,
        crm_path: Path,
        *,
        search_rate: int = 5,
        ten_second_limit: int = 100_000,
        result_cap: int = 10_000,
        retry_after: int = 1,
        next_link_at_cap: bool = True,
        scopes: frozenset[str] = READ_SCOPES,
    ) -> None:
        self.search_rate = search_rate
        self.ten_second_limit = ten_second_limit
        self.result_cap = result_cap
        self.retry_after = retry_after
        self.next_link_at_cap = next_link_at_cap
        self.scopes = scopes
        self.latency_seconds = 0.0
        self.calls: list[Call] = []
        self._failures: deque[int] = deque()
        self._search_arrivals: deque[float] = deque()
        self._arrivals: deque[float] = deque()
        self._lock = threading.Lock()
        self._properties: dict[str, dict[str, _Property]] = {}
        self._records: dict[str, list[dict[str, Any]]] = {}
        self._links: dict[tuple[str, str], dict[int, list[int]]] = {}
        self._matches: dict[str, list[dict[str, Any]]] = {}
        self._load(Path(crm_path))
        super().__init__(self._handler())

    # -- data ---------------------------------------------------------------------------------

    def _load(self, crm_path: Path) -> None:
        with duckdb.connect(str(crm_path), read_only=True) as con:
            for object_type in OBJECTS:
                columns = con.sql(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = $t ORDER BY ordinal_position",
                    params={"t": object_type},
                ).fetchall()
                self._properties[object_type] = {
                    str(name): _property(str(name), str(kind)) for name, kind in columns
                }
                relation = con.sql(f"SELECT * FROM {object_type} ORDER BY hs_object_id")
                names = relation.columns
                self._records[object_type] = [
                    {n: _stored(v) for n, v in zip(names, row, strict=True)}
                    for row in relation.fetchall()
                ]
            for key, (table, source, target) in _ASSOCIATIONS.items():
                linked: dict[int, list[int]] = {}
                for from_id, to_id in con.sql(
                    f"SELECT {source}, {target} FROM {table} ORDER BY 1, 2"
                ).fetchall():
                    linked.setdefault(int(from_id), []).append(int(to_id))
                self._links[key] = linked

    def records(self, object_type: str) -> list[dict[str, Any]]:
        """The records served for an object (typed values, ordered by id)."""
        return self._records[object_type]

    def associated(self, from_type: str, to_type: str) -> dict[int, list[int]]:
        """Record id -> associated ids, as the associations API answers them."""
        return self._links[(from_type, to_type)]

    # -- test controls ------------------------------------------------------------------------

    def inject(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` search calls with ``status`` (429 storm, 500, 503...)."""
        with self._lock:
            self._failures.extend([status] * count)

    def reset(self) -> None:
        """Forget recorded calls, queued failures and the rate windows."""
        with self._lock:
            self.calls.clear()
            self._failures.clear()
            self._search_arrivals.clear()
            self._arrivals.clear()
        self.latency_seconds = 0.0

    def searches(self) -> list[Call]:
        """The search calls received so far."""
        with self._lock:
            return [c for c in self.calls if c.path.endswith("/search")]

    # -- HTTP ---------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"
            # One buffered write per answer and no Nagle delay: keep-alive calls stay fast.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = urlparse(self.path).path
                status, payload, headers = 200, {}, {}
                try:
                    payload, status = standin._route(
                        method, path, raw, self.headers.get("Authorization"), arrived
                    )
                except ApiError as e:
                    status, payload, headers = e.status, e.body(), e.headers
                if standin.latency_seconds:
                    time.sleep(standin.latency_seconds)
                with standin._lock:
                    standin.calls.append(Call(arrived, method, path, status))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _route(
        self, method: str, path: str, raw: bytes, auth: str | None, arrived: float
    ) -> tuple[dict[str, Any], int]:
        if auth != f"Bearer {TOKEN}":
            raise ApiError(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        parts = [unquote(p) for p in path.strip("/").split("/")]
        body = json.loads(raw or b"{}")
        is_search = method == "POST" and parts[:3] == ["crm", "v3", "objects"]
        is_search = is_search and parts[-1] == "search"
        self._admit(arrived, is_search)
        if is_search:
            object_type = self._object(parts[3])
            self._require_scope(f"crm.objects.{object_type}.read")
            return self._search(object_type, body), 200
        if method == "GET" and parts[:3] == ["crm", "v3", "properties"] and len(parts) == 4:
            object_type = self._object(parts[3])
            self._require_scope(f"crm.schemas.{object_type}.read")
            return self._properties_body(object_type), 200
        if (
            method == "POST"
            and parts[:3] == ["crm", "v4", "associations"]
            and parts[-2:] == ["batch", "read"]
        ):
            return self._associations(parts[3], parts[4], body)
        raise ApiError(404, f"no route for {method} {path}", "OBJECT_NOT_FOUND")

    def _admit(self, arrived: float, is_search: bool) -> None:
        with self._lock:
            every = self._arrivals
            every.append(arrived)
            while every and every[0] <= arrived - 10.0:
                every.popleft()
            over: str | None = (
                "TEN_SECONDLY_ROLLING" if len(every) > self.ten_second_limit else None
            )
            failure: int | None = None
            if is_search:
                window = self._search_arrivals
                window.append(arrived)
                while window and window[0] <= arrived - 1.0:
                    window.popleft()
                failure = self._failures.popleft() if self._failures else None
                if len(window) > self.search_rate:
                    over = "SECONDLY"
        if over is not None or failure == 429:
            raise ApiError(
                429,
                "You have reached your secondly limit.",
                "RATE_LIMITS",
                {"Retry-After": str(self.retry_after)},
                {"errorType": "RATE_LIMIT", "policyName": over or "SECONDLY"},
            )
        if failure is not None:
            raise ApiError(failure, "internal error", "INTERNAL_ERROR")

    def _object(self, name: str) -> str:
        if name not in OBJECTS:
            raise ApiError(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR")
        return name

    def _require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise ApiError(
                403,
                "This app hasn't been granted all required scopes to make this call. Read more "
                "about required scopes here: https://developers.hubspot.com/scopes.",
                "MISSING_SCOPES",
                extra={
                    "errors": [
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": [scope]},
                        }
                    ],
                    "links": {"scopes": "https://developers.hubspot.com/scopes"},
                },
            )

    # -- search -------------------------------------------------------------------------------

    def _search(self, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        groups = body.get("filterGroups") or []
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
        sorts = body.get("sorts") or []
        if len(groups) > MAX_GROUPS:
            raise ApiError(400, f"Too many filter groups (max {MAX_GROUPS})", "VALIDATION_ERROR")
        sizes = [len(g.get("filters") or []) for g in groups]
        if any(size > MAX_PER_GROUP for size in sizes) or sum(sizes) > MAX_FILTERS:
            raise ApiError(
                400,
                f"Too many filters (max {MAX_PER_GROUP} per group, {MAX_FILTERS} in total)",
                "VALIDATION_ERROR",
            )
        if len(sorts) > 1:
            raise ApiError(400, "Only one sort is allowed", "VALIDATION_ERROR")
        if not 1 <= limit <= MAX_PAGE:
            raise ApiError(400, f"limit must be between 1 and {MAX_PAGE}", "VALIDATION_ERROR")
        if after + limit > self.result_cap:
            raise ApiError(
                400,
                f"Search results are limited to {self.result_cap} records; "
                "page with a narrower filter",
                "VALIDATION_ERROR",
            )
        matching = self._matching(object_type, groups, sorts)
        page = matching[after : after + limit]
        wanted = [*(body.get("properties") or []), *_ALWAYS[object_type]]
        known = self._properties[object_type]
        results = []
        for record in page:
            props = {name: _text(record[name]) for name in dict.fromkeys(wanted) if name in known}
            results.append(
                {
                    "id": str(record["hs_object_id"]),
                    "properties": props,
                    "createdAt": _text(record.get("createdate")),
                    "updatedAt": _text(
                        record.get("hs_lastmodifieddate") or record.get("lastmodifieddate")
                    ),
                    "archived": False,
                }
            )
        answer: dict[str, Any] = {"total": len(matching), "results": results}
        following = after + len(results)
        end = len(matching) if self.next_link_at_cap else min(len(matching), self.result_cap)
        if results and following < end:
            answer["paging"] = {"next": {"after": str(following), "link": None}}
        return answer

    def _matching(
        self, object_type: str, groups: list[dict[str, Any]], sorts: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        key = json.dumps([object_type, groups, sorts], sort_keys=True)
        with self._lock:
            cached = self._matches.get(key)
        if cached is not None:
            return cached
        properties = self._properties[object_type]
        tests = [
            [_predicate(f, properties) for f in group.get("filters") or []] for group in groups
        ]
        found = [
            r
            for r in self._records[object_type]
            if not tests or any(all(test(r) for test in group) for group in tests)
        ]
        for sort in sorts:
            name = str(sort.get("propertyName"))
            prop = properties.get(name)
            if prop is None:
                raise ApiError(
                    400, f"Unable to sort by unknown property {name}", "VALIDATION_ERROR"
                )
            descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
            present = [r for r in found if _has_value(r.get(name))]
            present.sort(key=lambda r, n=name: _sort_key(r[n]), reverse=descending)
            # Records without a value come after the others (either direction).
            found = present + [r for r in found if not _has_value(r.get(name))]
        with self._lock:
            self._matches[key] = found
        return found

    # -- properties and associations ----------------------------------------------------------

    def _properties_body(self, object_type: str) -> dict[str, Any]:
        results = []
        for prop in self._properties[object_type].values():
            options: list[dict[str, Any]] = []
            if prop.type == "enumeration" and prop.name in _ENUMERATIONS:
                values = sorted({r[prop.name] for r in self._records[object_type]} - {None})
                options = [
                    {"label": v, "value": v, "displayOrder": i, "hidden": False}
                    for i, v in enumerate(values)
                ]
            results.append(
                {
                    "name": prop.name,
                    "label": prop.name.replace("_", " ").title(),
                    "type": prop.type,
                    "fieldType": prop.field_type,
                    "groupName": f"{object_type[:-1]}information",
                    "description": "",
                    "options": options,
                    "displayOrder": -1,
                    "calculated": False,
                    "externalOptions": prop.name == "hubspot_owner_id",
                    "hasUniqueValue": prop.name == "hs_object_id",
                    "hidden": False,
                    "modificationMetadata": {
                        "archivable": True,
                        "readOnlyDefinition": True,
                        "readOnlyValue": prop.name == "hs_object_id",
                    },
                    "formField": True,
                }
            )
        return {"results": results}

    def _associations(
        self, from_type: str, to_type: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        linked_ids = self._links.get((from_type, to_type))
        if linked_ids is None:
            raise ApiError(
                400,
                f"Unable to infer association type {from_type} -> {to_type}",
                "VALIDATION_ERROR",
            )
        inputs = body.get("inputs") or []
        if len(inputs) > MAX_BATCH:
            raise ApiError(400, f"at most {MAX_BATCH} inputs per batch", "VALIDATION_ERROR")
        ids = [int(item["id"]) for item in inputs]
        now = datetime.now(UTC).isoformat()
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": [
                {
                    "from": {"id": str(from_id)},
                    "to": [
                        {
                            "toObjectId": to_id,
                            "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"},
                                {"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None},
                            ],
                        }
                        for to_id in linked_ids[from_id]
                    ],
                }
                for from_id in ids
                if from_id in linked_ids
            ],
            "startedAt": now,
            "completedAt": now,
        }
        missing = [str(i) for i in ids if i not in linked_ids]
        if not missing:
            return answer, 200
        answer["numErrors"] = len(missing)
        answer["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                "message": f"No {to_type} is associated with {from_type} {i}.",
                "context": {"fromObjectId": [i]},
            }
            for i in missing
        ]
        return answer, 207


# ---------------------------------------------------------------------------------------------
# HubSpot's filter semantics ("Filter search results" in the search guide)
# ---------------------------------------------------------------------------------------------


def _property(name: str, duckdb_type: str) -> _Property:
    upper = duckdb_type.upper()
    if name == "hubspot_owner_id" or name in _ENUMERATIONS:
        return _Property(name, "enumeration", "select")
    if upper.startswith(("DECIMAL", "DOUBLE", "BIGINT", "INTEGER")):
        return _Property(name, "number", "number")
    if upper == "BOOLEAN":
        return _Property(name, "bool", "booleancheckbox")
    if upper == "DATE":
        return _Property(name, "date", "date")
    if upper.startswith("TIMESTAMP"):
        return _Property(name, "datetime", "date")
    return _Property(name, "string", "text")


def _stored(value: Any) -> Any:
    """A value as HubSpot keeps it: date-times to the millisecond."""
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def _has_value(value: Any) -> bool:
    return value is not None and value != ""


def _sort_key(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def _predicate(spec: dict[str, Any], properties: dict[str, _Property]) -> Callable[[Any], bool]:
    name = str(spec.get("propertyName"))
    prop = properties.get(name)
    if prop is None:
        raise ApiError(
            400,
            f"There was a problem with the request. Unknown property {name!r} in a filter",
            "VALIDATION_ERROR",
        )
    operator = str(spec.get("operator"))

    def value(raw: Any) -> Any:
        try:
            return _comparable(raw, prop)
        except (InvalidOperation, ValueError) as e:
            raise ApiError(
                400,
                f"{raw!r} is not a valid value for {prop.type} property {name}",
                "VALIDATION_ERROR",
            ) from e

    def actual(record: dict[str, Any]) -> Any:
        raw = record.get(name)
        return _comparable(raw, prop) if _has_value(raw) else None

    if operator == "HAS_PROPERTY":
        return lambda r: _has_value(r.get(name))
    if operator == "NOT_HAS_PROPERTY":
        return lambda r: not _has_value(r.get(name))
    if operator == "CONTAINS_TOKEN":
        pattern = _token_pattern(str(spec.get("value", "")))
        return lambda r: (
            _has_value(r.get(name)) and bool(pattern.search(str(_text(r[name])).lower()))
        )
    if operator in {"IN", "NOT_IN"}:
        wanted = {value(v) for v in spec.get("values") or []}
        if operator == "IN":
            return lambda r: actual(r) in wanted
        return lambda r: actual(r) not in wanted
    if operator == "BETWEEN":
        low, high = value(spec.get("value")), value(spec.get("highValue"))
        return lambda r: (a := actual(r)) is not None and low <= a <= high
    target = value(spec.get("value"))
    compare: dict[str, Callable[[Any], bool]] = {
        "EQ": lambda a: a == target,
        "NEQ": lambda a: a != target,
        "LT": lambda a: a is not None and a < target,
        "LTE": lambda a: a is not None and a <= target,
        "GT": lambda a: a is not None and a > target,
        "GTE": lambda a: a is not None and a >= target,
    }
    if operator not in compare:
        raise ApiError(400, f"Unknown operator {operator}", "VALIDATION_ERROR")
    check = compare[operator]
    return lambda r: check(actual(r))


def _comparable(raw: Any, prop: _Property) -> Any:
    """A filter value or a record value, in the form HubSpot compares for the property type."""
    if prop.type == "number":
        return Decimal(str(raw))
    if prop.type == "bool":
        return str(raw).lower() == "true" if not isinstance(raw, bool) else raw
    if prop.type in {"date", "datetime"}:
        return _instant(raw)
    return str(raw).lower()


def _instant(raw: Any) -> datetime:
    """Epoch milliseconds (UTC) or ISO 8601 text; a date is its midnight UTC."""
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day)
    text = str(raw).strip()
    if re.fullmatch(r"-?\d+", text):
        return _EPOCH + timedelta(milliseconds=int(text))
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _token_pattern(value: str) -> re.Pattern[str]:
    """Each word of ``value`` as a whole word of the text; ``*`` matches within a word."""
    lookaheads = []
    for word in value.lower().split():
        inner = r"\S*".join(re.escape(part) for part in word.split("*"))
        lookaheads.append(rf"(?=.*(?:^|\s){inner}(?:\s|$))")
    return re.compile("^" + "".join(lookaheads))


def _text(value: Any) -> str | None:
    """A property value as HubSpot sends it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
