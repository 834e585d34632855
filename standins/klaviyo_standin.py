"""A local stand-in for Klaviyo's profiles API, serving the demo CRM's contacts as profiles.

Implemented as documented by Klaviyo (developers.klaviyo.com/en/reference: "Get Profiles",
"Get Profiles for Segment", "Filtering", "Sparse fieldsets", "Pagination", "Errors", "Rate
limits"; JSON:API); it imports nothing of the product: ``GET /api/profiles`` and
``GET /api/segments/{id}/profiles`` with ``filter=`` (``equals``, ``any``, ``greater-than``,
``less-than``, ``greater-or-equal``, ``less-or-equal``, combined with ``and(...)`` or commas;
only the fields and operators each endpoint allows), ``fields[profile]`` sparse fieldsets,
``page[size]`` (1 to 100, default 20) and ``page[cursor]`` paging through ``links.next``;
headers ``Authorization: Klaviyo-API-Key <key>`` (401 ``not_authenticated`` otherwise) and
``revision`` (400 without it); errors as ``{"errors": [{id, status, code, title, detail,
source}]}``; 429 ``throttled`` with ``Retry-After``.

Profiles: id ``01`` + the demo id zero-padded to 26 characters (so text order is id order),
email, first_name, last_name, title, external_id (the demo id), created / updated (ISO,
+00:00), properties {lifecyclestage, hs_lead_status}. Segments: one per lifecycle stage,
id ``SEG`` + the stage (``SEGlead`` ...). ``fail_next(status)`` injects errors.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import duckdb

from standins.local_http import LocalHttpServer, QuietHandler

PROFILE_FILTERS = {
    "id": {"any", "equals"},
    "email": {"any", "equals"},
    "phone_number": {"any", "equals"},
    "external_id": {"any", "equals"},
    "created": {"greater-than", "less-than"},
    "updated": {"greater-than", "less-than"},
}
SEGMENT_FILTERS = {
    "profile_id": {"any", "equals"},
    "email": {"any", "equals"},
    "phone_number": {"any", "equals"},
}
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[(),\[\]]|[^(),\[\]"\s]+)')


class FilterError(Exception):
    """An invalid ``filter`` parameter."""


def parse_filter(text: str) -> list[tuple[str, str, Any]]:
    """``and(...)`` / comma-separated conditions as (operator, field, value) triples."""
    tokens = [m.group(1) for m in _TOKEN.finditer(text)]
    position = 0

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise FilterError("unexpected end of filter")
        position += 1
        return tokens[position - 1]

    def value() -> Any:
        token = take()
        if token == "[":
            items: list[Any] = []
            while tokens[position] != "]":
                items.append(value())
                if tokens[position] == ",":
                    take()
            take()
            return items
        if token.startswith('"'):
            return json.loads(token)
        if token in {"true", "false"}:
            return token == "true"
        try:
            return datetime.fromisoformat(token.replace("Z", "+00:00"))
        except ValueError:
            pass
        try:
            return float(token) if "." in token else int(token)
        except ValueError as e:
            raise FilterError(f"invalid value {token!r}") from e

    def condition() -> list[tuple[str, str, Any]]:
        operator = take()
        if take() != "(":
            raise FilterError(f"expected '(' after {operator}")
        if operator == "and":
            found: list[tuple[str, str, Any]] = []
            while True:
                found.extend(condition())
                separator = take()
                if separator == ")":
                    return found
                if separator != ",":
                    raise FilterError("expected ',' or ')'")
        field = take()
        if take() != ",":
            raise FilterError("expected ','")
        argument = value()
        if take() != ")":
            raise FilterError("expected ')'")
        return [(operator, field, argument)]

    conditions = condition()
    while position < len(tokens):
        if take() != ",":
            raise FilterError("expected ','")
        conditions.extend(condition())
    return conditions


def load_profiles(crm_path: Path) -> list[dict[str, Any]]:
    """The demo CRM's contacts as Klaviyo profiles (JSON:API resources), by id."""
    with duckdb.connect(str(crm_path), read_only=True) as con:
        rows = con.sql(
            "SELECT hs_object_id, email, firstname, lastname, jobtitle, lifecyclestage, "
            "hs_lead_status, createdate, lastmodifieddate FROM contacts ORDER BY hs_object_id"
        ).fetchall()
    profiles = []
    for row in rows:
        ident, email, first, last, title, stage, status, created, updated = row
        profiles.append(
            {
                "type": "profile",
                "id": f"01{ident:024d}",
                "attributes": {
                    "email": email,
                    "phone_number": None,
                    "external_id": str(ident),
                    "first_name": first,
                    "last_name": last,
                    "organization": None,
                    "title": title,
                    "created": created.replace(microsecond=0).isoformat() + "+00:00",
                    "updated": updated.replace(microsecond=0).isoformat() + "+00:00",
                    "properties": {"lifecyclestage": stage, "hs_lead_status": status},
                },
            }
        )
    return profiles


class KlaviyoStandIn(LocalHttpServer):
    """The server; use as a context manager. ``base_url`` is the API base URL."""

    def __init__(self, crm_path: Path, *, api_key: str = "pk_test_key") -> None:
        self.profiles = load_profiles(crm_path)
        self.api_key = api_key
        self.calls: list[tuple[str, dict[str, str]]] = []  # path, params
        self.statuses: list[int] = []
        self.retry_after = 1
        self._failures: list[int] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next calls with HTTP ``status`` (429 carries ``Retry-After: retry_after``)."""
        with self._lock:
            self._failures.extend([status] * times)

    def reset(self) -> None:
        """Forget recorded calls and pending failures."""
        with self._lock:
            self.calls.clear()
            self.statuses.clear()
            self._failures.clear()
            self.retry_after = 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                status, body, headers = standin._answer(url.path, params, self.headers)
                with standin._lock:
                    standin.statuses.append(status)
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.api+json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _answer(
        self, path: str, params: dict[str, str], headers: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.calls.append((path, params))
            failure = self._failures.pop(0) if self._failures else None
        if headers.get("Authorization") != f"Klaviyo-API-Key {self.api_key}":
            return _error(401, "not_authenticated", "Incorrect authentication credentials.")
        if not headers.get("revision"):
            return _error(400, "invalid", "Missing revision header.")
        if failure == 429:
            status, body, _ = _error(
                429, "throttled", "Request was throttled. Expected available in 1 second."
            )
            return status, body, {"Retry-After": str(self.retry_after)}
        if failure is not None:
            return _error(failure, "error", "Injected failure.")
        if path == "/api/profiles":
            allowed = PROFILE_FILTERS
            members = self.profiles
        elif (m := re.fullmatch(r"/api/segments/([^/]+)/profiles", path)) is not None:
            segment = str(m.group(1))
            allowed = SEGMENT_FILTERS
            stage = segment.removeprefix("SEG")
            if not segment.startswith("SEG"):
                return _error(404, "not_found", f"A segment with id {segment} does not exist.")
            members = [
                p for p in self.profiles if p["attributes"]["properties"]["lifecyclestage"] == stage
            ]
        else:
            return _error(404, "not_found", f"No route {path}.")
        size = int(params.get("page[size]", "20"))
        if not 1 <= size <= 100:
            return _error(400, "invalid", "page[size] must be between 1 and 100.", "page[size]")
        try:
            conditions = parse_filter(params["filter"]) if params.get("filter") else []
        except FilterError as e:
            return _error(400, "invalid", f"Invalid filter: {e}.", "filter")
        for operator, field, _ in conditions:
            if operator not in allowed.get(field, set()):
                return _error(
                    400, "invalid", f"'{operator}' operator is not allowed on '{field}'.", "filter"
                )
        matches = [p for p in members if all(_matches(p, c) for c in conditions)]
        offset = 0
        if "page[cursor]" in params:
            offset = int(base64.urlsafe_b64decode(params["page[cursor]"].encode()).decode())
        page = matches[offset : offset + size]
        sparse = params.get("fields[profile]")
        data = [_sparse(p, sparse) for p in page]
        links: dict[str, Any] = {"self": self.base_url + path, "next": None, "prev": None}
        if offset + size < len(matches):
            cursor = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
            links["next"] = f"{self.base_url}{path}?" + urlencode(
                {**params, "page[cursor]": cursor}
            )
        return 200, {"data": data, "links": links}, {}


def _matches(profile: dict[str, Any], condition: tuple[str, str, Any]) -> bool:
    operator, field, value = condition
    if field in {"id", "profile_id"}:
        actual: Any = profile["id"]
    else:
        actual = profile["attributes"].get(field)
    if actual is None:
        return False
    if field in {"created", "updated"}:
        actual = datetime.fromisoformat(actual)
    if operator == "equals":
        return actual == value
    if operator == "any":
        return actual in value
    if operator == "greater-than":
        return actual > value
    if operator == "less-than":
        return actual < value
    if operator == "greater-or-equal":
        return actual >= value
    return actual <= value


def _sparse(profile: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return profile
    names = set(fields.split(","))
    attributes = {k: v for k, v in profile["attributes"].items() if k in names}
    return {"type": "profile", "id": profile["id"], "attributes": attributes}


def _error(
    status: int, code: str, detail: str, parameter: str | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    error: dict[str, Any] = {
        "id": secrets.token_hex(8),
        "status": status,
        "code": code,
        "title": detail.split(".")[0],
        "detail": detail,
    }
    if parameter:
        error["source"] = {"parameter": parameter}
    return status, {"errors": [error]}, {}
