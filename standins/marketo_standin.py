"""A local stand-in for Marketo's REST API, serving the demo CRM's contacts as leads.

Implemented as documented by Marketo (developers.marketo.com/rest-api: "Authentication",
"Lead Database > Leads > Query", "Error Codes", "Paging Tokens"); it imports nothing of the
product:
- ``GET /identity/oauth/token?grant_type=client_credentials&client_id=..&client_secret=..``
  -> ``{access_token, token_type: bearer, expires_in, scope}``; bad credentials -> HTTP 401
  ``{"error": "invalid_client", "error_description": "Bad client credentials"}``;
- ``GET /rest/v1/leads/describe2.json`` -> fields (name, dataType) and ``searchableFields``;
- ``GET /rest/v1/leads.json?filterType=&filterValues=&fields=&batchSize=&nextPageToken=``,
  or ``POST /rest/v1/leads.json?_method=GET`` with the same parameters form-encoded (for
  URLs over Marketo's 8 KB limit, which is answered 414 here too);
- the bearer token in the ``Authorization`` header;
- errors as HTTP 200 with ``success: false`` and ``errors: [{code, message}]``: 601 (token
  invalid), 602 (token expired), 606 (over ``rate_limit`` calls in ``rate_window`` seconds),
  1003 (filterType not searchable, more than 300 filterValues, batchSize over 300), 1006
  (unknown field).

Leads: ``id`` (the demo ``hs_object_id``), email, firstName, lastName, title, leadStatus,
lifecycleStage (a custom string field, hence searchable), createdAt, updatedAt (ISO UTC with
``Z``) and externalCompanyId (the contact's company, as text). Searchable: id, email,
lifecycleStage. String filters ignore case. ``fail_next`` injects errors (Marketo codes or HTTP
statuses); ``expire_tokens`` makes every issued token expire.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import duckdb

from standins.local_http import LocalHttpServer, QuietHandler

_FIELDS = [
    ("id", "integer"),
    ("email", "email"),
    ("firstName", "string"),
    ("lastName", "string"),
    ("title", "string"),
    ("leadStatus", "string"),
    ("lifecycleStage", "string"),
    ("createdAt", "datetime"),
    ("updatedAt", "datetime"),
    ("externalCompanyId", "string"),
]
SEARCHABLE = ["id", "email", "lifecycleStage"]
_MESSAGES = {
    "601": "Access token invalid",
    "602": "Access token expired",
    "606": "Max rate limit '100' exceeded with in '20' secs",
    "607": "Daily quota reached",
    "615": "Concurrent access limit reached",
}


def load_leads(crm_path: Path) -> list[dict[str, Any]]:
    """The demo CRM's contacts as Marketo leads, by id."""
    with duckdb.connect(str(crm_path), read_only=True) as con:
        rows = con.sql(
            """
            SELECT c.hs_object_id, c.email, c.firstname, c.lastname, c.jobtitle,
                   c.hs_lead_status, c.lifecyclestage,
                   strftime(c.createdate, '%Y-%m-%dT%H:%M:%SZ'),
                   strftime(c.lastmodifieddate, '%Y-%m-%dT%H:%M:%SZ'),
                   CAST(cc.company_id AS VARCHAR)
            FROM contacts c
            LEFT JOIN (SELECT contact_id, min(company_id) AS company_id
                       FROM contact_company GROUP BY 1) cc ON cc.contact_id = c.hs_object_id
            ORDER BY c.hs_object_id
            """
        ).fetchall()
    return [dict(zip([name for name, _ in _FIELDS], row, strict=True)) for row in rows]


class MarketoStandIn(LocalHttpServer):
    """The server; use as a context manager. ``base_url`` is the REST base URL."""

    def __init__(
        self,
        crm_path: Path,
        *,
        client_id: str = "test-client",
        client_secret: str = "test-secret",
        token_lifetime: int = 3599,
        rate_limit: int = 100,
        rate_window: float = 20.0,
    ) -> None:
        self.leads = load_leads(crm_path)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.tokens: dict[str, float] = {}  # token -> expiry (time.time())
        self.token_requests = 0
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # method, path, params
        self.errors_sent: list[str] = []
        self._failures: list[tuple[str, str | None, str]] = []
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def fail_next(
        self, code: str, times: int = 1, message: str | None = None, path: str = ""
    ) -> None:
        """Answer the next REST calls (to ``path`` if given) with Marketo error ``code``, or
        with an HTTP status (``"http:503"``)."""
        with self._lock:
            self._failures.extend([(code, message, path)] * times)

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on."""
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def reset(self) -> None:
        """Forget recorded calls and pending failures."""
        with self._lock:
            self.calls.clear()
            self.errors_sent.clear()
            self._failures.clear()
            self._recent.clear()
            self.token_requests = 0

    # -- request handling ----------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._handle("GET", b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._handle("POST", self.rfile.read(length))

            def _handle(self, method: str, body: bytes) -> None:
                if len(self.path) > 8192:
                    self._send(414, {"error": "URI Too Long"})
                    return
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if method == "POST" and params.get("_method") == "GET":
                    form = parse_qs(body.decode("utf-8"))
                    params.update({k: v[-1] for k, v in form.items()})
                    params.pop("_method")
                status, answer = standin._answer(
                    method, url.path, params, self.headers.get("Authorization", "")
                )
                self._send(status, answer)

            def _send(self, status: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _answer(
        self, method: str, path: str, params: dict[str, str], authorization: str
    ) -> tuple[int, dict[str, Any]]:
        if path == "/identity/oauth/token":
            return self._token(params)
        with self._lock:
            self.calls.append((method, path, params))
            now = time.time()
            while self._recent and self._recent[0] < now - self.rate_window:
                self._recent.popleft()
            self._recent.append(now)
            over_rate = len(self._recent) > self.rate_limit
            failure: tuple[str, str | None] | None = None
            for index, (code, message, only) in enumerate(self._failures):
                if only in ("", path):
                    failure = (code, message)
                    del self._failures[index]
                    break
            token = authorization.removeprefix("Bearer ").strip() or params.get("access_token")
            expiry = self.tokens.get(token or "")
        if failure is not None and failure[0].startswith("http:"):
            return int(failure[0][5:]), {"error": "injected"}
        if expiry is None:
            return self._error("601")
        if expiry < now:
            return self._error("602")
        if failure is not None:
            return self._error(*failure)
        if over_rate:
            return self._error("606")
        if path == "/rest/v1/leads/describe2.json":
            return 200, self._success(
                [
                    {
                        "name": "API Lead",
                        "searchableFields": [[name] for name in SEARCHABLE],
                        "fields": [
                            {"name": n, "displayName": n, "dataType": t, "updateable": n != "id"}
                            for n, t in _FIELDS
                        ],
                    }
                ]
            )
        if path == "/rest/v1/leads.json":
            return self._leads(params)
        return 404, {"error": f"no route {path}"}

    def _token(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.token_requests += 1
            if (
                params.get("grant_type") != "client_credentials"
                or params.get("client_id") != self.client_id
                or params.get("client_secret") != self.client_secret
            ):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "Bad client credentials",
                }
            token = secrets.token_hex(16)
            self.tokens[token] = time.time() + self.token_lifetime
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.token_lifetime,
            "scope": "api@example.com",
        }

    def _leads(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        known = {name for name, _ in _FIELDS}
        filter_type = params.get("filterType", "")
        if filter_type not in SEARCHABLE:
            return self._error("1003", f"Invalid filterType '{filter_type}'")
        values = [v for v in params.get("filterValues", "").split(",") if v]
        if not values or len(values) > 300:
            return self._error("1003", "filterValues must hold 1 to 300 values")
        fields = [f for f in params.get("fields", "").split(",") if f] or [
            "id",
            "email",
            "firstName",
            "lastName",
            "updatedAt",
        ]
        for name in fields:
            if name not in known:
                return self._error("1006", f"Field '{name}' not found")
        batch_size = int(params.get("batchSize", "300"))
        if not 1 <= batch_size <= 300:
            return self._error("1003", "Invalid batchSize, must be between 1 and 300")
        if filter_type == "id":
            wanted: set[Any] = set()
            for value in values:
                if not value.isdigit():
                    return self._error("1003", f"Invalid value '{value}' for filterType 'id'")
                wanted.add(int(value))
            matches = [lead for lead in self.leads if lead["id"] in wanted]
        else:
            lowered = {v.lower() for v in values}
            matches = [
                lead
                for lead in self.leads
                if lead[filter_type] is not None and str(lead[filter_type]).lower() in lowered
            ]
        offset = 0
        if "nextPageToken" in params:
            offset = int(base64.urlsafe_b64decode(params["nextPageToken"].encode()).decode())
        page = matches[offset : offset + batch_size]
        answer = self._success(
            [{"id": lead["id"], **{f: lead[f] for f in fields}} for lead in page]
        )
        if offset + batch_size < len(matches):
            answer["nextPageToken"] = base64.urlsafe_b64encode(
                str(offset + batch_size).encode()
            ).decode()
        return 200, answer

    def _success(self, result: list[dict[str, Any]]) -> dict[str, Any]:
        return {"requestId": secrets.token_hex(4), "result": result, "success": True}

    def _error(self, code: str, message: str | None = None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.errors_sent.append(code)
        text = message or _MESSAGES.get(code, "Error")
        return 200, {
            "requestId": secrets.token_hex(4),
            "success": False,
            "errors": [{"code": code, "message": text}],
        }
