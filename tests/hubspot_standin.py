"""A local stand-in for the HubSpot CRM APIs that hubspot-api-client calls, over the demo CRM.

Endpoints (HubSpot's documented shapes):

- ``POST /crm/v3/objects/{object}/search``: filterGroups (ORed groups of ANDed filters, at most
  5 groups, 6 filters a group, 18 in all), properties, one sort, ``limit`` up to 200, ``after``
  offsets; at most ``result_cap`` (10,000) results per search: no ``paging.next`` past the cap
  and a 400 for ``after`` at or past it; ``total`` is the full count. Filters are evaluated with
  the demo CRM's HubSpot semantics (``playbook_assets.crm.demo``'s query builder on DuckDB).
  Property values are strings, as HubSpot sends them (numbers as text, dates ``YYYY-MM-DD``,
  date-times ``...T..:..:..sssZ``, booleans ``true``/``false``); unknown requested properties
  are ignored, unknown filter properties are a 400.
- ``GET /crm/v3/properties/{object}``: the property definitions (``type``, ``fieldType``).
- ``POST /crm/v4/associations/{from}/{to}/batch/read``: at most 1,000 inputs; ids without
  associations come back as errors with status 207.

Every call needs ``Authorization: Bearer <token>`` (else 401 with HubSpot's error body). Search
calls are limited to ``search_rate`` in any one-second window (429, ``Retry-After`` and HubSpot's
RATE_LIMIT body). ``inject`` queues failures (429 storms, 5xx) for the next search calls and
``latency_seconds`` delays every answer. ``calls`` records every request for assertions.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
from pydantic import ValidationError

from playbook_assets.crm.demo import build_search_query, object_columns
from playbook_assets.errors import PlaybookError
from playbook_assets.spec import SearchConfig
from tests.local_http import LocalHttpServer, QuietHandler

TOKEN = "pat-na1-standin-token"
MAX_GROUPS, MAX_PER_GROUP, MAX_FILTERS, MAX_PAGE, MAX_BATCH = 5, 6, 18, 200, 1000
_ALWAYS = {
    "deals": ("createdate", "hs_lastmodifieddate"),
    "companies": ("createdate", "hs_lastmodifieddate"),
    "contacts": ("createdate", "lastmodifieddate"),
}
_ENUMERATIONS = {"dealstage", "pipeline", "dealtype", "lifecyclestage", "hs_lead_status"}
# (from, to) -> (association table, from column, to column)
_ASSOCIATIONS = {
    ("deals", "companies"): ("deal_company", "deal_id", "company_id"),
    ("contacts", "companies"): ("contact_company", "contact_id", "company_id"),
    ("companies", "deals"): ("deal_company", "company_id", "deal_id"),
    ("companies", "contacts"): ("contact_company", "company_id", "contact_id"),
}


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
        self, status: int, message: str, category: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.status == 429:
            body.update(errorType="RATE_LIMIT", policyName="SECONDLY")
        return body


class HubSpotStandIn(LocalHttpServer):
    """A threaded HTTP server answering like HubSpot from a demo CRM DuckDB file."""

    def __init__(
        self,
        crm_path: Path,
        *,
        search_rate: int = 5,
        result_cap: int = 10_000,
        retry_after: int = 1,
    ) -> None:
        self.crm_path = Path(crm_path)
        self.search_rate = search_rate
        self.result_cap = result_cap
        self.retry_after = retry_after
        self.latency_seconds = 0.0
        self.calls: list[Call] = []
        self._failures: deque[int] = deque()
        self._search_arrivals: deque[float] = deque()
        # Full results per search statement, so that paging does not run it again.
        self._results: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        self._lock = threading.Lock()
        # One read-only connection (a connect costs ~50 ms); each request uses its own cursor.
        self._con = duckdb.connect(str(self.crm_path), read_only=True)
        super().__init__(self._handler())

    def close(self) -> None:
        self._con.close()

    def inject(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` search calls with ``status`` (429 storm, 500, 503...)."""
        with self._lock:
            self._failures.extend([status] * count)

    def reset(self) -> None:
        """Forget recorded calls, queued failures and the rate window."""
        with self._lock:
            self.calls.clear()
            self._failures.clear()
            self._search_arrivals.clear()
        self.latency_seconds = 0.0

    # -----------------------------------------------------------------------------------------

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
        if method == "POST" and parts[:3] == ["crm", "v3", "objects"] and parts[-1] == "search":
            self._admit_search(arrived)
            return self._search(parts[3], body), 200
        if method == "GET" and parts[:3] == ["crm", "v3", "properties"] and len(parts) == 4:
            return self._properties(parts[3]), 200
        if (
            method == "POST"
            and parts[:3] == ["crm", "v4", "associations"]
            and parts[-2:] == ["batch", "read"]
        ):
            return self._associations(parts[3], parts[4], body)
        raise ApiError(404, f"no route for {method} {path}", "OBJECT_NOT_FOUND")

    def _admit_search(self, arrived: float) -> None:
        with self._lock:
            window = self._search_arrivals
            window.append(arrived)
            while window and window[0] <= arrived - 1.0:
                window.popleft()
            failure = self._failures.popleft() if self._failures else None
            over = len(window) > self.search_rate
        if over or failure == 429:
            raise ApiError(
                429,
                "You have reached your secondly limit.",
                "RATE_LIMITS",
                {"Retry-After": str(self.retry_after)},
            )
        if failure is not None:
            raise ApiError(failure, "internal error", "INTERNAL_ERROR")

    # -----------------------------------------------------------------------------------------

    def _table_columns(self, con: duckdb.DuckDBPyConnection, object_type: str) -> dict[str, Any]:
        if object_type not in _ALWAYS:
            raise ApiError(
                400, f"Unable to infer object type from: {object_type}", "VALIDATION_ERROR"
            )
        return dict(object_columns(con, object_type))

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
        if after >= self.result_cap:
            raise ApiError(
                400,
                f"Search results are limited to {self.result_cap} records; "
                "page with a narrower filter",
                "VALIDATION_ERROR",
            )
        with self._con.cursor() as con:
            columns = self._table_columns(con, object_type)
            wanted = body.get("properties") or []
            properties = [p for p in [*wanted, *_ALWAYS[object_type]] if p in columns]
            try:
                request = SearchConfig.model_validate(
                    {
                        "object": object_type,
                        "filter_groups": [
                            [_filter(f) for f in g.get("filters") or []] for g in groups
                        ],
                        "properties": list(dict.fromkeys(properties)),
                        "sorts": [
                            {"property": s["propertyName"], "direction": s["direction"]}
                            for s in sorts
                        ],
                    }
                )
                sql, params = build_search_query(object_type, columns, request)
            except (ValidationError, PlaybookError, KeyError) as e:
                raise ApiError(
                    400, f"There was a problem with the request: {e}", "VALIDATION_ERROR"
                )
            key = json.dumps([sql, params], default=str)
            with self._lock:
                cached = self._results.get(key)
            if cached is None:
                relation = con.sql(sql, params=params)
                cached = (relation.columns, relation.fetchall())
                with self._lock:
                    self._results[key] = cached
        names, matching = cached
        total = len(matching)
        rows = matching[after : after + max(0, min(limit, self.result_cap - after))]
        results = []
        for row in rows:
            values = dict(zip(names, row, strict=True))
            record_id = str(values["hs_object_id"])
            props = {name: _text(values[name]) for name in names if name in columns}
            created = props.get("createdate")
            updated = props.get("hs_lastmodifieddate") or props.get("lastmodifieddate")
            results.append(
                {
                    "id": record_id,
                    "properties": props,
                    "createdAt": created,
                    "updatedAt": updated,
                    "archived": False,
                }
            )
        answer: dict[str, Any] = {"total": total, "results": results}
        following = after + len(results)
        if results and following < min(total, self.result_cap):
            answer["paging"] = {"next": {"after": str(following), "link": None}}
        return answer

    def _properties(self, object_type: str) -> dict[str, Any]:
        with self._con.cursor() as con:
            columns = self._table_columns(con, object_type)
        results = []
        for name, kind in columns.items():
            if name == "hubspot_owner_id" or name in _ENUMERATIONS:
                type_, field_type = "enumeration", "select"
            else:
                type_, field_type = {
                    "integer": ("number", "number"),
                    "number": ("number", "number"),
                    "boolean": ("bool", "booleancheckbox"),
                    "date": ("date", "date"),
                    "timestamp": ("datetime", "date"),
                }.get(kind, ("string", "text"))
            results.append(
                {
                    "name": name,
                    "label": name.replace("_", " ").title(),
                    "type": type_,
                    "fieldType": field_type,
                    "groupName": f"{object_type[:-1]}information",
                    "description": "",
                    "options": [],
                    "displayOrder": -1,
                    "calculated": False,
                    "externalOptions": False,
                    "hasUniqueValue": name == "hs_object_id",
                    "hidden": False,
                    "modificationMetadata": {
                        "archivable": True,
                        "readOnlyDefinition": True,
                        "readOnlyValue": name == "hs_object_id",
                    },
                    "formField": True,
                }
            )
        return {"results": results}

    def _associations(
        self, from_type: str, to_type: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        found = _ASSOCIATIONS.get((from_type, to_type))
        if found is None:
            raise ApiError(
                400,
                f"Unable to infer association type {from_type} -> {to_type}",
                "VALIDATION_ERROR",
            )
        inputs = body.get("inputs") or []
        if len(inputs) > MAX_BATCH:
            raise ApiError(400, f"at most {MAX_BATCH} inputs per batch", "VALIDATION_ERROR")
        ids = [int(item["id"]) for item in inputs]
        table, source, target = found
        with self._con.cursor() as con:
            rows = con.sql(
                f"SELECT {source}, {target} FROM {table} WHERE list_contains($ids, {source}) "
                f"ORDER BY {source}, {target}",
                params={"ids": ids},
            ).fetchall()
        linked: dict[int, list[int]] = {}
        for from_id, to_id in rows:
            linked.setdefault(int(from_id), []).append(int(to_id))
        now = datetime.now().isoformat() + "Z"
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
                        for to_id in targets
                    ],
                }
                for from_id, targets in linked.items()
            ],
            "startedAt": now,
            "completedAt": now,
        }
        missing = [str(i) for i in ids if i not in linked]
        if missing:
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
        return answer, 200


def _filter(spec: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"property": spec["propertyName"], "operator": spec["operator"]}
    for ours, theirs in (("value", "value"), ("high_value", "highValue"), ("values", "values")):
        if spec.get(theirs) is not None:
            converted[ours] = spec[theirs]
    return converted


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
