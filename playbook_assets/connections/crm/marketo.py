"""Marketo: CRM ``search`` steps answered by Marketo's REST API (leads by filter).

What runs where. Marketo's ``GET /rest/v1/leads.json`` filters by one field only, by equality
with up to 300 values (``filterType`` / ``filterValues``), so a search is answered in two
stages:

- server side: the first ``EQ`` or ``IN`` filter, in order, on a field Marketo can search
  (``searchableFields`` of ``/rest/v1/leads/describe2.json``) whose values hold no comma (the
  list separator). An ``IN`` list is sent in
  batches of 300 values; each batch is paged with ``nextPageToken`` (``batchSize`` up to
  300); leads met twice are kept once;
- client side: every filter (the pushed one too, so Marketo's own matching only narrows),
  the sorts and the limit, evaluated on the fetched leads with exactly the demo CRM's
  semantics (``evaluate_locally``): NEQ, NOT_IN, LT, LTE, GT, GTE, BETWEEN, HAS_PROPERTY,
  NOT_HAS_PROPERTY, CONTAINS_TOKEN, EQ / IN on fields Marketo cannot search, and every filter
  of a group after the pushed one. With several groups, the first pushable filter of each group
  is sent (the union of their values) only when they are all on the same field.

Marketo has no "all leads" call, so a search needs such an EQ / IN filter; without one it
fails with a message that says so (use a ``${steps.ID.email}`` list, for instance).

Names: the request uses HubSpot property names (``firstname``, ``createdate``...), mapped to
Marketo's REST names by ``DEFAULT_FIELD_MAP`` and the ``field_map`` setting; names that are
not mapped are used as Marketo names. Output columns keep the requested names; values are
typed from Marketo's ``dataType`` (integer, float, boolean, date, datetime as naive UTC).
``hs_object_id`` is the lead ``id`` (BIGINT); ``associations: [companies]`` gives
``company_id`` from the lead field ``company_id_field`` (BIGINT when every value is an
integer).

Errors: Marketo answers HTTP 200 with ``success: false``; 601/602 (token invalid/expired)
fetch a new token once; 606 (rate), 615 (concurrency) and 604/608/611/713 (temporary) back
off exponentially, at most ``retry_attempts`` times (the step's ``execution.retry_attempts``;
the step does not retry again), and raise ``TransientStepError`` when they run out; 607
(daily quota) raises ``TerminalStepError`` at once, naming the quota: it resets only at
midnight US Central time, so no retry within the run can succeed; 1003/1006 (bad field or
value) raise ``TerminalStepError`` with a did-you-mean.

Rate: every call waits for the instance's limit of 100 calls per 20 s (``calls_per_20_seconds``),
shared by every process that uses the instance (``crm/rate_limit.py``).

Documented behaviour this module relies on (developers.marketo.com/rest-api; each tested in
tests/test_crm_marketo.py against tests/marketo_standin.py):

- paging end: ``nextPageToken`` until a page has none (test_paging_is_complete_without_duplicates);
- caps: 300 ``filterValues`` a call, ``batchSize`` up to 300, URLs up to 8 KB, past which the
  call is a POST with ``_method=GET`` (test_in_lists_over_300_values_are_batched);
- name case: REST field names as ``describe2`` spells them (test_token_fetch_and_typed_rows);
- error shapes: HTTP 200 with ``success: false`` and ``errors: [{code, message}]``
  (test_expired_token_is_refreshed_once, test_daily_quota_fails_at_once_naming_it,
  test_bad_field_from_marketo_suggests_the_closest);
- rate limits: 100 calls per 20 s per instance, 606 past it (test_rate_limit_then_success,
  test_retries_stay_within_the_budget).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import dagster as dg
import duckdb
import pyarrow as pa
import requests
from pydantic import Field, PrivateAttr

from playbook_assets.connections.crm import rate_limit
from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, CrmResource
from playbook_assets.connections.crm.demo import (
    DEFAULT_PROPERTIES,
    build_search_query,
    object_columns,
)
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
    did_you_mean,
)
from playbook_assets.core.spec import SearchConfig, SearchFilter

# HubSpot contact property -> Marketo lead REST field name.
DEFAULT_FIELD_MAP: dict[str, str] = {
    "hs_object_id": "id",
    "email": "email",
    "firstname": "firstName",
    "lastname": "lastName",
    "jobtitle": "title",
    "hs_lead_status": "leadStatus",
    "lifecyclestage": "lifecycleStage",
    "createdate": "createdAt",
    "lastmodifieddate": "updatedAt",
    "phone": "phone",
    "company": "company",
    "website": "website",
    "city": "city",
    "country": "country",
}
MAX_FILTER_VALUES = 300  # Marketo: up to 300 filterValues per call
MAX_BATCH_SIZE = 300  # Marketo: batchSize max 300
_OBJECTS = {"leads": "leads", "contacts": "leads", "lead": "leads"}
_AUTH_CODES = {"601", "602"}
_RETRY_CODES = {"604", "606", "608", "611", "615", "713"}
_FIELD_CODES = {"1003", "1006"}
_MAX_GET_URL = 7000  # Marketo rejects URLs over 8 KB; longer calls use POST with _method=GET
_LOCAL_TABLE = "contacts"  # the demo CRM's compiler resolves names against this object


class MarketoCrm(CrmResource):
    """Marketo leads searched through Marketo's REST API (OAuth client credentials).

    ``object: leads`` (or ``contacts``). See the module docstring for which filters Marketo
    evaluates and which are evaluated locally, with the demo CRM's semantics.
    """

    kind: ClassVar[str] = "marketo"

    base_url: str = Field(
        description="REST base URL of the Marketo instance, e.g. https://123-ABC-456.mktorest.com"
    )
    client_id: str = Field(description="Client id of the Marketo LaunchPoint API service.")
    client_secret: str = Field(description="Client secret of that service (use ${ENV_VAR}).")
    field_map: dict[str, str] = Field(
        default_factory=dict,
        description="Extra or overriding property -> Marketo field names (merged over the "
        "HubSpot-style defaults).",
    )
    company_id_field: str = Field(
        default="externalCompanyId",
        description="Lead field whose value becomes company_id for associations: [companies].",
    )
    batch_size: int = Field(
        default=MAX_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE, description="Leads per page (max 300)."
    )
    request_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time limit of one HTTP call."
    )
    calls_per_20_seconds: int = Field(
        default=100,
        gt=0,
        description="Calls per 20 s for the instance, all runs and processes together "
        "(Marketo's limit: 100).",
    )
    rate_limit_file: str | None = Field(
        default=None,
        description="SQLite file holding the instance's shared rate limit (default: "
        "crm_rate_limits.sqlite in the Dagster home).",
    )
    backoff_seconds: float = Field(
        default=2.0,
        ge=0,
        description="First wait before a retry; doubles on each retry (with jitter).",
    )

    _dagster_home: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Keep the run's Dagster home: the shared rate limit lives there by default."""
        if context.instance is not None:
            self._dagster_home = context.instance.root_directory

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search and return every matching lead (up to ``request.limit``)."""
        request = self.mapped(request)
        _object_name(request.object)
        deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        with _Client(self, deadline, retry_attempts) as client:
            fields = client.describe()
            plan = _plan(request, self._names(), fields, self.company_id_field)
            records = _records(client, plan, fields, self.batch_size)
        table = _typed_table(records, plan, fields)
        return evaluate_locally(table, plan.local_request)

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The leads call (Marketo field names) and which filters may be evaluated locally."""
        request = self.mapped(request)
        names = self._names()
        properties = list(request.properties) or list(DEFAULT_PROPERTIES["contacts"])
        fields = [names.get(p, p) for p in properties]
        if request.associations:
            fields.append(self.company_id_field)
        groups = [
            [{**_describe_filter(f), "field": names.get(f.property, f.property)} for f in group]
            for group in request.groups()
        ]
        described: dict[str, Any] = {
            "endpoint": "/rest/v1/leads.json",
            "fields": fields,
            "filter_groups": groups,
            "server_side": "filterType/filterValues from the first EQ or IN filter on a "
            "searchable field (one filter group only); every filter is also checked locally",
            "batchSize": self.batch_size,
        }
        if request.sorts:
            described["sorts"] = [s.model_dump() for s in request.sorts]
        if request.limit is not None:
            described["limit"] = request.limit
        return described

    def _names(self) -> dict[str, str]:
        return {**DEFAULT_FIELD_MAP, **self.field_map}


# ---------------------------------------------------------------------------------------------
# Local evaluation (shared with the Klaviyo integration)
# ---------------------------------------------------------------------------------------------


def evaluate_locally(records: pa.Table, request: SearchConfig) -> pa.Table:
    """Filter, sort and limit ``records`` with the demo CRM's HubSpot search semantics.

    ``records`` has ``hs_object_id`` and one typed column per property the request names;
    ``request.properties`` must list the output columns (after ``hs_object_id``) and
    ``request.associations`` must be empty. The demo CRM's own compiler runs the request on
    an in-memory DuckDB table, so the two cannot drift apart.
    """
    with duckdb.connect() as con:
        con.register("fetched_records", records)
        con.execute(f'CREATE TABLE "{_LOCAL_TABLE}" AS SELECT * FROM fetched_records')
        con.unregister("fetched_records")
        columns = object_columns(con, _LOCAL_TABLE)
        sql, params = build_search_query(_LOCAL_TABLE, columns, request)
        return con.sql(sql, params=params).to_arrow_table()


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """A lead field of Marketo's describe2 answer."""

    name: str
    data_type: str
    searchable: bool


@dataclass(frozen=True)
class _Plan:
    """What to ask Marketo for and what to evaluate locally."""

    columns: dict[str, str]  # output/filter column (user name) -> Marketo field
    filter_type: str | None
    filter_values: list[str]
    local_request: SearchConfig
    company_column: str | None  # user column holding company_id, when associated


def _object_name(name: str) -> str:
    found = _OBJECTS.get(name.strip().lower())
    if found is None:
        raise TerminalStepError(
            f"Marketo has no object '{name}'",
            field="object",
            hint=(did_you_mean(name, _OBJECTS) or "") + " Marketo searches leads (or contacts)",
        )
    return found


def _plan(
    request: SearchConfig, names: dict[str, str], fields: dict[str, _Field], company_field: str
) -> _Plan:
    properties: list[str] = []
    for name in request.properties or DEFAULT_PROPERTIES["contacts"]:
        if name != "hs_object_id" and name not in properties:
            properties.append(name)
    columns: dict[str, str] = {"hs_object_id": "id"}
    wanted = [
        *(("properties", p) for p in properties),
        *(("filters", f.property) for g in request.groups() for f in g),
        *(("sorts", s.property) for s in request.sorts),
    ]
    for where, name in wanted:
        columns[name] = _field(name, names, fields, where)
    company_column: str | None = None
    output = list(properties)
    if request.associations:
        for association in request.associations:
            if association.strip().lower() not in {"companies", "company"}:
                raise TerminalStepError(
                    f"Marketo leads have no '{association}' association",
                    field="associations",
                    hint="associations of leads: companies",
                )
        if company_field not in fields:
            raise TerminalStepError(
                f"the lead field '{company_field}' (company_id_field) does not exist",
                field="associations",
                hint=_field_hint(company_field, names, fields),
            )
        company_column = "company_id"
        columns[company_column] = company_field
        output.append(company_column)

    filter_type, values = _pushdown(request, columns, fields)
    local = request.model_copy(update={"properties": output, "associations": []})
    return _Plan(columns, filter_type, values, local, company_column)


def _field(name: str, names: dict[str, str], fields: dict[str, _Field], where: str) -> str:
    target = names.get(name, name)
    if target in fields:
        return target
    raise TerminalStepError(
        f"Marketo leads have no field '{name}'"
        + (f" (mapped to '{target}')" if target != name else ""),
        field=where,
        hint=_field_hint(name, names, fields),
    )


def _field_hint(name: str, names: dict[str, str], fields: dict[str, _Field]) -> str:
    known = sorted({*fields, *(k for k, v in names.items() if v in fields)})
    suggestion = did_you_mean(name, known)
    listing = "add it to field_map if the lead field has another name; fields: " + ", ".join(
        sorted(fields)
    )
    return f"{suggestion} {listing}" if suggestion else listing


def _pushdown(
    request: SearchConfig, columns: dict[str, str], fields: dict[str, _Field]
) -> tuple[str | None, list[str]]:
    """The filterType and filterValues: the first pushable filter of each group, when every
    group has one on the same field (several groups send the union of their values)."""
    chosen: list[tuple[str, list[str]]] = []
    for group in request.groups():
        found = _pushable(group, columns, fields)
        if found is None:
            return None, []
        chosen.append(found)
    if not chosen or len({name for name, _ in chosen}) != 1:
        return None, []
    values: list[str] = []
    for _, group_values in chosen:
        values.extend(v for v in group_values if v not in values)
    return chosen[0][0], values


def _pushable(
    group: list[SearchFilter], columns: dict[str, str], fields: dict[str, _Field]
) -> tuple[str, list[str]] | None:
    for spec in group:
        if spec.operator not in {"EQ", "IN"}:
            continue
        info = fields[columns[spec.property]]
        if not info.searchable:
            continue
        raw = [spec.value] if spec.operator == "EQ" else spec.values
        if not isinstance(raw, list):
            continue
        values = _filter_values(raw, info)
        if values is not None:
            return info.name, values
    return None


def _filter_values(raw: list[Any], info: _Field) -> list[str] | None:
    """The values as Marketo filterValues, or None when they cannot be sent as such."""
    values: list[str] = []
    for value in raw:
        if value is None or isinstance(value, bool | list | dict):
            return None
        if info.data_type == "integer":
            try:
                text = str(int(str(value).strip()))
            except ValueError:
                return None
        else:
            text = str(value)
        if "," in text or not text:
            return None
        if text not in values:
            values.append(text)
    return values


# ---------------------------------------------------------------------------------------------
# Fetching and typing
# ---------------------------------------------------------------------------------------------


def _records(
    client: _Client, plan: _Plan, fields: dict[str, _Field], batch_size: int
) -> list[dict[str, Any]]:
    if plan.filter_type is None:
        names = ", ".join(sorted(f.name for f in fields.values() if f.searchable))
        raise TerminalStepError(
            "Marketo can only search leads by an EQ or IN filter on a searchable field",
            field="filters",
            hint=f"add one (e.g. email IN ${{steps.ID.email}}); searchable fields: {names}",
        )
    marketo_fields = sorted(set(plan.columns.values()))
    seen: dict[int, dict[str, Any]] = {}
    for start in range(0, len(plan.filter_values), MAX_FILTER_VALUES):
        chunk = plan.filter_values[start : start + MAX_FILTER_VALUES]
        for lead in client.leads(plan.filter_type, chunk, marketo_fields, batch_size):
            seen.setdefault(int(lead["id"]), lead)
    return list(seen.values())


def _typed_table(records: list[dict[str, Any]], plan: _Plan, fields: dict[str, _Field]) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for column, field_name in plan.columns.items():
        raw = [record.get(field_name) for record in records]
        if column == plan.company_column:
            arrays[column] = _company_ids(raw)
        else:
            arrays[column] = _typed(raw, fields[field_name].data_type, column)
    return pa.table(arrays)


def _typed(raw: list[Any], data_type: str, column: str) -> pa.Array:
    try:
        if data_type in {"integer", "score", "reference"} or column == "hs_object_id":
            return pa.array([None if v is None else int(v) for v in raw], pa.int64())
        if data_type in {"float", "currency", "percent"}:
            return pa.array([None if v is None else float(v) for v in raw], pa.float64())
        if data_type == "boolean":
            return pa.array([None if v is None else _boolean(v) for v in raw], pa.bool_())
        if data_type == "date":
            return pa.array(
                [None if v is None else date.fromisoformat(v) for v in raw], pa.date32()
            )
        if data_type == "datetime":
            return pa.array([None if v is None else _instant(v) for v in raw], pa.timestamp("us"))
    except (TypeError, ValueError) as e:
        raise TerminalStepError(
            f"Marketo returned a value of '{column}' that is not a {data_type}: {e}"
        ) from e
    return pa.array([None if v is None else str(v) for v in raw], pa.string())


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "1", "yes"}


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _company_ids(raw: list[Any]) -> pa.Array:
    texts = [None if v is None or v == "" else str(v).strip() for v in raw]
    if all(t is None or t.lstrip("-").isdigit() for t in texts):
        return pa.array([None if t is None else int(t) for t in texts], pa.int64())
    return pa.array(texts, pa.string())


def _describe_filter(spec: SearchFilter) -> dict[str, Any]:
    described: dict[str, Any] = {"property": spec.property, "operator": spec.operator}
    for key in ("value", "values", "high_value"):
        value = getattr(spec, key)
        if value is not None:
            described[key] = (
                value if isinstance(value, str | int | float | bool | list) else str(value)
            )
    return described


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


class _Client:
    """One search's HTTP session: the access token, retries, time limit."""

    def __init__(self, crm: MarketoCrm, deadline: float | None, retries: int) -> None:
        self.crm = crm
        self.base = crm.base_url.rstrip("/")
        self.deadline = deadline
        self.retries = retries
        self.session = requests.Session()
        self.token: str | None = None
        self.token_expiry = 0.0
        self.field_names: list[str] = []

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def describe(self) -> dict[str, _Field]:
        """Lead fields by REST name (``/rest/v1/leads/describe2.json``)."""
        body = self.call("GET", "/rest/v1/leads/describe2.json", {})
        result = body.get("result") or [{}]
        searchable = {name for group in result[0].get("searchableFields", []) for name in group}
        fields = {
            str(f["name"]): _Field(
                str(f["name"]), str(f.get("dataType", "string")), f["name"] in searchable
            )
            for f in result[0].get("fields", [])
        }
        self.field_names = sorted(fields)
        return fields

    def leads(
        self, filter_type: str, values: list[str], fields: list[str], batch_size: int
    ) -> Iterator[dict[str, Any]]:
        """Every lead whose ``filter_type`` is one of ``values``, page by page."""
        page_token: str | None = None
        while True:
            params = {
                "filterType": filter_type,
                "filterValues": ",".join(values),
                "fields": ",".join(fields),
                "batchSize": str(batch_size),
            }
            if page_token:
                params["nextPageToken"] = page_token
            body = self.call("GET", "/rest/v1/leads.json", params)
            result = body.get("result") or []
            yield from result
            page_token = body.get("nextPageToken")
            if not page_token or not result:
                return

    def call(self, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        """One REST call with Marketo's error handling; the body of a successful answer."""
        reauthenticated = False
        attempt = 0
        while True:
            response = self._send(method, path, params)
            if response.status_code in {429, 502, 503, 504} or response.status_code >= 500:
                attempt = self._back_off(attempt, f"HTTP {response.status_code}")
                continue
            if response.status_code == 414:
                raise TerminalStepError("Marketo rejected the request URL as too long")
            if response.status_code != 200:
                raise TerminalStepError(
                    f"Marketo answered HTTP {response.status_code} to {path}: {response.text[:300]}"
                )
            body = _json(response, path)
            if body.get("success", False):
                return body
            errors = body.get("errors") or [{}]
            code = str(errors[0].get("code", ""))
            message = str(errors[0].get("message", "unknown error"))
            if code in _AUTH_CODES:
                if reauthenticated:
                    raise TerminalStepError(
                        f"Marketo rejected a fresh access token ({code} {message})",
                        hint="check that the API user's role has the 'Read-Only Lead' permission",
                    )
                reauthenticated = True
                self.token = None
                continue
            if code in _RETRY_CODES:
                attempt = self._back_off(attempt, f"Marketo error {code} {message}")
                continue
            if code == "607":
                raise TerminalStepError(
                    f"Marketo's daily API quota is used up ({code} {message})",
                    hint="the quota (50,000 calls a day unless Marketo raised it) resets at "
                    "midnight US Central time; run again then, or ask Marketo for a larger one",
                )
            if code in _FIELD_CODES:
                name = _quoted_name(message)
                suggestion = did_you_mean(name, self.field_names) if name else None
                raise TerminalStepError(
                    f"Marketo rejected a field or filter ({code} {message})",
                    field="properties",
                    hint=suggestion or "check the property names and field_map",
                )
            raise TerminalStepError(f"Marketo error {code}: {message}")

    def _send(self, method: str, path: str, params: dict[str, str]) -> requests.Response:
        self._wait_for_rate()
        url = self.base + path
        headers = {"Authorization": f"Bearer {self._access_token()}"}
        data: dict[str, str] | None = None
        prepared = requests.Request(method, url, params=params).prepare()
        if method == "GET" and len(prepared.url or "") > _MAX_GET_URL:
            # Marketo's documented way around its 8 KB URL limit.
            method, data, params = "POST", params, {"_method": "GET"}
        try:
            return self.session.request(
                method, url, params=params, data=data, headers=headers, timeout=self._timeout()
            )
        except requests.ConnectTimeout as e:
            raise SourceUnreachableError(f"cannot connect to Marketo at {self.base}") from e
        except requests.Timeout as e:
            raise self._timed_out(path) from e
        except requests.ConnectionError as e:
            raise SourceUnreachableError(
                f"cannot reach Marketo at {self.base}: {type(e).__name__}",
                hint="check base_url (https://<munchkin id>.mktorest.com) and the network",
            ) from e

    def _wait_for_rate(self) -> None:
        admitted = rate_limit.acquire(
            rate_limit.rate_limit_file(self.crm.rate_limit_file, self.crm._dagster_home),
            rate_limit.account_key("marketo", self.base, self.crm.client_id),
            [(self.crm.calls_per_20_seconds, 20.0)],
            self.deadline,
        )
        if not admitted:
            raise self._timed_out("within the rate limit")

    def _access_token(self) -> str:
        if self.token is not None and time.monotonic() < self.token_expiry:
            return self.token
        attempt = 0
        while True:
            try:
                response = self.session.get(
                    f"{self.base}/identity/oauth/token",
                    params={
                        "grant_type": "client_credentials",
                        "client_id": self.crm.client_id,
                        "client_secret": self.crm.client_secret,
                    },
                    timeout=self._timeout(),
                )
            except requests.RequestException as e:
                # The URL holds the client secret: report the error's kind only, no cause.
                raise SourceUnreachableError(
                    f"cannot reach Marketo's identity endpoint at {self.base}: {type(e).__name__}",
                    hint="check base_url and the network",
                ) from None
            if response.status_code >= 500 or response.status_code == 429:
                attempt = self._back_off(attempt, f"identity endpoint HTTP {response.status_code}")
                continue
            body = _json(response, "/identity/oauth/token")
            if response.status_code != 200 or "access_token" not in body:
                reason = body.get("error_description") or body.get("error") or response.status_code
                raise TerminalStepError(
                    f"Marketo refused the client credentials: {reason}",
                    hint="check client_id and client_secret (Admin > LaunchPoint > View Details)",
                )
            self.token = str(body["access_token"])
            # Renew a little early so a token never expires between check and use.
            lifetime = float(body.get("expires_in", 3600))
            self.token_expiry = time.monotonic() + lifetime - min(60.0, lifetime / 10)
            return self.token

    def _timeout(self) -> float:
        limit = self.crm.request_timeout_seconds
        if self.deadline is None:
            return limit
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out("the search")
        return min(limit, remaining)

    def _timed_out(self, what: str) -> StepTimeoutError:
        return StepTimeoutError(
            f"Marketo did not answer {what} in time",
            hint="raise timeout_seconds on the step or request_timeout_seconds on the connection",
        )

    def _back_off(self, attempt: int, reason: str) -> int:
        if attempt >= self.retries:
            raise TransientStepError(
                f"Marketo is still throttling or failing after {attempt} retries ({reason})",
                hint="Marketo allows 100 calls per 20 s and 10 at once per instance; "
                "retry later or lower the load from other integrations",
            )
        wait = self.crm.backoff_seconds * (2**attempt) * (0.5 + random.random() / 2)
        if self.deadline is not None and time.monotonic() + wait > self.deadline:
            raise self._timed_out(f"while backing off ({reason})")
        time.sleep(wait)
        return attempt + 1


def _json(response: requests.Response, path: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as e:
        raise TerminalStepError(
            f"Marketo answered {path} with HTTP {response.status_code} and no JSON body"
        ) from e
    if not isinstance(body, dict):
        raise TerminalStepError(f"Marketo answered {path} with unexpected JSON")
    return body


def _quoted_name(message: str) -> str | None:
    start = message.find("'")
    end = message.find("'", start + 1)
    return message[start + 1 : end] if 0 <= start < end else None
