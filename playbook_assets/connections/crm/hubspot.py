"""HubSpot: search steps answered by the CRM search API through hubspot-api-client.

A search is ``POST /crm/v3/objects/{object}/search`` with ``filterGroups``, ``properties``,
``sorts`` and paging by ``after`` (up to 200 records a page). HubSpot answers at most 10,000
records per search, so every search that may need more is sorted by ``hs_object_id`` ascending
and read in windows. HubSpot keeps sending a ``paging.next.after`` link up to the cap and
answers 400 to a page past it, so a window ends by counting: once it holds 10,000 records (its
last page shortened to end exactly there) and its ``total`` is larger, the next window repeats
the search with an extra ``hs_object_id GT <last id>`` filter in every group. HubSpot takes
one sort rule per search, so a step's own ``sorts`` are applied to the collected rows with
pyarrow (then ``hs_object_id`` ascending, NULLs last, as the demo CRM does); a step with a
single sort and a ``limit`` of at most 10,000 is sorted by HubSpot instead and stops reading
at the limit (rows tied with the last one may then differ from the demo CRM's choice).

Filter groups that leave no room for the window filter (HubSpot allows 5 groups, 6 filters a
group, 18 in all) are searched one group at a time and the results united by id.

Property values arrive as strings and are typed by the property's ``type`` from the properties
API (``GET /crm/v3/properties/{object}``, read once per object and resource instance):
``number`` -> int64 when every value of the column is a whole number, else float64; ``date``
-> date32; ``datetime`` -> naive UTC timestamp[us]; ``bool`` -> bool; other types stay text.
``hs_object_id`` and association columns are int64. ``associations: [companies]`` is read
with the v4 batch associations API (100 ids a request) into ``company_id`` (the primary
association, else the smallest id).

Every request waits for the account's rate limit (``requests_per_second``), shared by every
process that uses the same token through a SQLite bucket (``crm/rate_limit.py``). 429 and 5xx
answers, dropped connections and read timeouts are retried with exponential backoff and full
jitter, waiting at least the ``Retry-After`` HubSpot sends, at most ``retry_attempts`` times
(the step's ``execution.retry_attempts``: the step does not retry again). Retries are done
here, not by urllib3 (whose Retry is off), so that each attempt passes the rate limiter and
the attempts do not multiply.

Documented behaviour this module relies on (each tested in tests/test_crm_hubspot.py against
tests/hubspot_standin.py):

- paging end: ``paging.next.after`` until the last page; it is also sent on the page that
  reaches the 10,000 cap (test_more_than_10000_results_are_complete, both link behaviours);
- caps: 200 records a page, 10,000 a search and a 400 past it, 5 filter groups, 6 filters a
  group, 18 in all, one sort (test_more_than_10000_results_are_complete,
  test_filter_groups_beyond_the_limits_are_split);
- name case: property names are the internal names, lower case, and values come back as
  text (test_values_are_typed);
- error shapes: ``{"status": "error", "message", "category"}``; 401 INVALID_AUTHENTICATION,
  403 MISSING_SCOPES with ``context.requiredGranularScopes``, 400 VALIDATION_ERROR, 429
  RATE_LIMIT with Retry-After (test_bad_token_is_a_clear_terminal_error,
  test_missing_scope_names_the_scope, test_unknown_names_suggest_the_closest_but_never_the_same);
- rate limits: 5 search requests per second per account
  (test_rate_limit_holds_across_processes, test_429_storm_loses_no_rows...);
- retries: at most ``retry_attempts`` of each request (test_retries_stay_within_the_budget).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import dagster as dg
import hubspot
import hubspot.crm.associations.v4 as associations_v4
import hubspot.crm.objects as objects_api
import hubspot.crm.properties as properties_api
import pyarrow as pa
import urllib3
from pydantic import Field, PrivateAttr
from urllib3.util.retry import Retry

from playbook_assets.connections.crm import rate_limit
from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, CrmResource
from playbook_assets.connections.crm.demo import DEFAULT_PROPERTIES
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
    did_you_mean,
)
from playbook_assets.core.spec import SearchConfig, SearchFilter

SEARCH_RESULT_CAP = 10_000  # HubSpot returns at most this many records per search
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
ASSOCIATION_BATCH = 100
_ID = "hs_object_id"
# The scopes a private app needs to search an object and to read its properties
# (developers.hubspot.com/docs/api/scopes).
_SCOPES: dict[str, tuple[str, str]] = {
    "companies": ("crm.objects.companies.read", "crm.schemas.companies.read"),
    "contacts": ("crm.objects.contacts.read", "crm.schemas.contacts.read"),
    "deals": ("crm.objects.deals.read", "crm.schemas.deals.read"),
    "tickets": ("tickets", "tickets"),
    "products": ("e-commerce", "e-commerce"),
    "line_items": ("e-commerce", "e-commerce"),
}
_CUSTOM_SCOPES = ("crm.objects.custom.read", "crm.schemas.custom.read")
_STANDARD_OBJECTS = tuple(_SCOPES)
_ASSOCIATION_ALIASES = {
    "company": "companies",
    "contact": "contacts",
    "deal": "deals",
    "ticket": "tickets",
}
_ASSOCIATION_COLUMNS = {"companies": "company_id", "contacts": "contact_id", "deals": "deal_id"}
_EPOCH = datetime(1970, 1, 1)
# Each API package of hubspot-api-client has its own ApiException class.
_API_EXCEPTIONS = (
    objects_api.ApiException,
    properties_api.ApiException,
    associations_v4.ApiException,
)
_TOKEN_HINT = (
    'set the connection\'s access_token (e.g. access_token: "${HUBSPOT_TOKEN}") to a valid '
    "private app token with the crm.objects.*.read and crm.schemas.*.read scopes"
)


@dataclass(frozen=True)
class _Property:
    name: str
    type: str
    field_type: str


@dataclass
class _Apis:
    """The hubspot-api-client APIs one search uses, and its deadline."""

    search: Any
    properties: Any
    associations: Any
    deadline: float | None
    timeout_seconds: float | None
    retry_attempts: int
    requests: int = 0
    windows: int = 0


class HubSpotCrm(CrmResource):
    """HubSpot's CRM, searched with its search API through hubspot-api-client.

    Use a private app access token from the environment: ``access_token: "${HUBSPOT_TOKEN}"``.
    """

    kind: ClassVar[str] = "hubspot"

    access_token: str = Field(
        description="Private app (or OAuth) access token; write it as ${ENV_VAR}."
    )
    base_url: str = Field(
        default="https://api.hubapi.com", description="API root (tests point it at a stand-in)."
    )
    requests_per_second: float = Field(
        default=5,
        gt=0,
        description="Requests per second for the account, all runs and processes together "
        "(HubSpot's search limit is 5/s per account).",
    )
    rate_limit_file: str | None = Field(
        default=None,
        description="SQLite file holding the account's shared rate limit; every process that "
        "uses the account must see it (default: crm_rate_limits.sqlite in the Dagster home).",
    )
    page_size: int = Field(
        default=200, ge=1, le=200, description="Records per search page (HubSpot's max: 200)."
    )
    backoff_seconds: float = Field(
        default=0.5, gt=0, description="First retry delay; doubles on each retry (with jitter)."
    )
    max_backoff_seconds: float = Field(
        default=30.0, gt=0, description="Upper bound of one retry delay (Retry-After excepted)."
    )
    connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Time to establish a connection."
    )
    read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Time to wait for one response."
    )

    _properties: dict[str, dict[str, _Property]] = PrivateAttr(default_factory=dict)
    _dagster_home: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Keep the run's Dagster home: the shared rate limit lives there by default."""
        if context.instance is not None:
            self._dagster_home = context.instance.root_directory

    # -----------------------------------------------------------------------------------------
    # Interface
    # -----------------------------------------------------------------------------------------

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search and return every matching record (up to ``request.limit``)."""
        request = self.mapped(request)
        apis = self._apis(timeout_seconds, retry_attempts)
        object_type = request.object.strip().lower()
        properties = self._object_properties(apis, object_type)
        names = _requested_properties(request, object_type, properties)
        for sort in request.sorts:
            _check_property(sort.property, properties, object_type, "sorts")
        groups = _filter_groups(request, properties, object_type)
        associations = _association_targets(request.associations)

        records: list[dict[str, Any]] = []
        if groups is not None:
            single_sort = len(request.sorts) == 1
            if not request.sorts:
                sorts, window, stop_at = [_id_sort()], True, request.limit
            elif single_sort and request.limit is not None and request.limit <= SEARCH_RESULT_CAP:
                sort = request.sorts[0]
                sorts = [{"propertyName": sort.property, "direction": sort.direction}]
                window, stop_at = False, request.limit
            else:
                sorts, window, stop_at = [_id_sort()], True, None
            records = self._collect(apis, object_type, groups, names, sorts, window, stop_at)

        table = _to_table(records, names, properties)
        for target in associations:
            table = table.append_column(
                pa.field(_association_column(target), pa.int64()),
                self._associated_ids(apis, object_type, target, table.column(_ID).to_pylist()),
            )
        keys = [
            (s.property, "descending" if s.direction == "DESCENDING" else "ascending", "at_end")
            for s in request.sorts
        ]
        table = table.sort_by([*keys, (_ID, "ascending", "at_end")])
        if request.limit is not None:
            table = table.slice(0, request.limit)
        return table

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The search request body sent to HubSpot (before windowing), without secrets."""
        request = self.mapped(request)
        object_type = request.object.strip().lower()
        body: dict[str, Any] = {
            "object": object_type,
            "filterGroups": [
                {"filters": [_describe_filter(f) for f in group]} for group in request.groups()
            ],
            "properties": list(request.properties) or list(DEFAULT_PROPERTIES.get(object_type, ())),
            "sorts": [{"propertyName": s.property, "direction": s.direction} for s in request.sorts]
            or [_id_sort()],
            "limit": self.page_size,
        }
        if request.limit is not None:
            body["max_records"] = request.limit
        if request.associations:
            body["associations"] = list(request.associations)
        return body

    # -----------------------------------------------------------------------------------------
    # Requests
    # -----------------------------------------------------------------------------------------

    def _apis(self, timeout_seconds: float | None, retry_attempts: int) -> _Apis:
        # Retries happen in _call so that every attempt passes through the rate limiter; the
        # client's urllib3 Retry must neither retry nor turn statuses into MaxRetryError.
        retry = Retry(
            total=0,
            allowed_methods=None,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        client = hubspot.HubSpot(
            access_token=self.access_token, host=self.base_url.rstrip("/"), retry=retry
        )
        deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        return _Apis(
            search=client.crm.objects.search_api,
            properties=client.crm.properties.core_api,
            associations=client.crm.associations.v4.batch_api,
            deadline=deadline,
            timeout_seconds=timeout_seconds,
            retry_attempts=retry_attempts,
        )

    def _wait_for_rate(self, apis: _Apis) -> None:
        admitted = rate_limit.acquire(
            rate_limit.rate_limit_file(self.rate_limit_file, self._dagster_home),
            rate_limit.account_key("hubspot", self.base_url.rstrip("/"), self.access_token),
            [(self.requests_per_second, 1.0)],
            apis.deadline,
        )
        if not admitted:
            raise _timeout_error(apis)

    def _call(
        self, apis: _Apis, what: str, send: Any, scopes: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Send one request (``send(timeout)``) with rate limiting and retries; the JSON body.

        ``scopes`` are the scopes the request needs, named when HubSpot answers 403 without
        saying which. Raises ``_HttpError`` for 4xx answers other than 401, 403 and 429, for
        the caller to explain in its own terms.
        """
        attempt = 0
        while True:
            self._wait_for_rate(apis)
            apis.requests += 1
            retry_after: float | None = None
            try:
                response = send(self._request_timeout(apis))
                return json.loads(response.data or b"{}")
            except _API_EXCEPTIONS as e:
                status = int(e.status or 0)
                message = _error_message(e.body)
                if status == 401:
                    raise TerminalStepError(
                        f"the HubSpot access token was rejected while {what}"
                        + (f" (HubSpot: {message})" if message else ""),
                        hint=_TOKEN_HINT,
                    ) from None
                if status == 403:
                    needed = _required_scopes(e.body) or list(scopes)
                    raise TerminalStepError(
                        f"the HubSpot access token lacks a scope needed for {what}"
                        + (f" (HubSpot: {message})" if message else ""),
                        hint=(
                            f"grant the private app the {' and '.join(needed)} scope"
                            + ("s" if len(needed) > 1 else "")
                            if needed
                            else "add the missing read scopes to the private app"
                        )
                        + " (Settings > Integrations > Private apps > Scopes)",
                    ) from None
                if status == 0:
                    failure: Exception = SourceUnreachableError(
                        f"cannot reach HubSpot at {self.base_url} while {what}: {e.reason}",
                        hint="check base_url and the network",
                    )
                elif status == 429 or status >= 500:
                    retry_after = _retry_after(e.headers)
                    failure = TransientStepError(
                        f"HubSpot answered {status} while {what} after {attempt} retries"
                        + (f" (HubSpot: {message})" if message else ""),
                        hint="lower requests_per_second or run the step again later",
                    )
                else:
                    raise _HttpError(status, message) from e
                cause: Exception = e
            except urllib3.exceptions.HTTPError as e:
                if apis.deadline is not None and time.monotonic() >= apis.deadline:
                    raise _timeout_error(apis) from e
                reason = getattr(e, "reason", None) or e
                failure = SourceUnreachableError(
                    f"cannot reach HubSpot at {self.base_url} while {what}: {reason}",
                    hint="check base_url, the network and HubSpot's status page",
                )
                cause = e
            attempt += 1
            if attempt > apis.retry_attempts:
                raise failure from cause
            delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
            delay = random.uniform(0, delay)
            if retry_after is not None:
                delay = max(delay, retry_after)
            if apis.deadline is not None and time.monotonic() + delay > apis.deadline:
                raise _timeout_error(apis) from cause
            time.sleep(delay)

    def _request_timeout(self, apis: _Apis) -> tuple[float, float]:
        connect, read = self.connect_timeout_seconds, self.read_timeout_seconds
        if apis.deadline is not None:
            remaining = max(0.001, apis.deadline - time.monotonic())
            connect, read = min(connect, remaining), min(read, remaining)
        return (connect, read)

    def _object_properties(self, apis: _Apis, object_type: str) -> dict[str, _Property]:
        cached = self._properties.get(object_type)
        if cached is not None:
            return cached
        scopes = _SCOPES.get(object_type, _CUSTOM_SCOPES)
        try:
            body = self._call(
                apis,
                f"reading the properties of '{object_type}'",
                lambda timeout: apis.properties.get_all(
                    object_type, archived=False, _preload_content=False, _request_timeout=timeout
                ),
                scopes=(scopes[1],),
            )
        except _HttpError as e:
            if e.status in (400, 404) and object_type in _SCOPES:
                # A standard object HubSpot does not serve: it is not set up in this account.
                raise TerminalStepError(
                    f"HubSpot does not serve the standard object '{object_type}' for this "
                    f"account ({e.status}: {e.message})",
                    field="object",
                    hint=f"check that the account has {object_type} turned on (e.g. tickets "
                    "need a help desk or Service Hub, products and line items the product "
                    "library) and that the private app has the "
                    f"{' and '.join(dict.fromkeys(scopes))} scope",
                ) from e
            if e.status in (400, 404):
                raise TerminalStepError(
                    f"unknown HubSpot object '{object_type}' (HubSpot: {e.message})",
                    field="object",
                    hint=did_you_mean(object_type, _STANDARD_OBJECTS)
                    or f"standard objects: {', '.join(_STANDARD_OBJECTS)}; a custom object is "
                    "named by its fully qualified name (p_<name>) or objectTypeId (2-...)",
                ) from e
            raise TerminalStepError(
                f"HubSpot refused to list the properties of '{object_type}': {e.message}"
            ) from e
        found = {
            str(item["name"]): _Property(
                str(item["name"]), str(item.get("type") or "string"), str(item.get("fieldType"))
            )
            for item in body.get("results", [])
        }
        found.setdefault(_ID, _Property(_ID, "number", "number"))
        self._properties[object_type] = found
        return found

    def _collect(
        self,
        apis: _Apis,
        object_type: str,
        groups: list[list[dict[str, Any]]],
        properties: list[str],
        sorts: list[dict[str, str]],
        window: bool,
        stop_at: int | None,
    ) -> list[dict[str, Any]]:
        """Every record of the searches (deduplicated by id), windowed past the result cap."""
        extra = 1 if window else 0
        plans = [groups] if _fits(groups, extra) else [[group] for group in groups]
        records: dict[str, dict[str, Any]] = {}
        for plan in plans:
            _check_limits(plan)
            collected = 0
            last_id: str | None = None
            while True:  # windows
                apis.windows += 1
                window_groups = plan if last_id is None else _after_id(plan, last_id)
                after: str | None = None
                in_window, total = 0, 0
                while True:  # pages
                    size = self.page_size
                    if stop_at is not None:
                        size = max(1, min(size, stop_at - collected))
                    if window:  # end the window exactly at the cap, never a page past it
                        size = min(size, SEARCH_RESULT_CAP - in_window)
                    body: dict[str, Any] = {
                        "filterGroups": [{"filters": g} for g in window_groups],
                        "properties": properties,
                        "sorts": sorts,
                        "limit": size,
                    }
                    if after is not None:
                        body["after"] = after
                    page = self._search_page(apis, object_type, body)
                    results = page.get("results") or []
                    total = int(page.get("total") or 0)
                    for result in results:
                        record_id = str(result["id"])
                        if record_id not in records:
                            records[record_id] = result.get("properties") or {}
                        last_id = record_id
                    in_window += len(results)
                    collected += len(results)
                    if stop_at is not None and collected >= stop_at:
                        break
                    after = ((page.get("paging") or {}).get("next") or {}).get("after")
                    if after is None or not results:
                        break
                    if window and in_window >= SEARCH_RESULT_CAP:
                        break  # HubSpot still links to the next page here and answers it 400
                done = stop_at is not None and collected >= stop_at
                if done or not window or in_window == 0 or in_window >= total:
                    break
        return [{**props, _ID: record_id} for record_id, props in records.items()]

    def _search_page(self, apis: _Apis, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._call(
                apis,
                f"searching '{object_type}'",
                lambda timeout: apis.search.do_search(
                    object_type, body, _preload_content=False, _request_timeout=timeout
                ),
                scopes=(_SCOPES.get(object_type, _CUSTOM_SCOPES)[0],),
            )
        except _HttpError as e:
            raise TerminalStepError(
                f"HubSpot rejected the search of '{object_type}' ({e.status}): {e.message}",
                hint="check the step's filters, values and sorts",
            ) from e

    def _associated_ids(
        self, apis: _Apis, object_type: str, target: str, ids: list[Any]
    ) -> pa.Array:
        found: dict[int, int] = {}
        for start in range(0, len(ids), ASSOCIATION_BATCH):
            batch = {"inputs": [{"id": str(i)} for i in ids[start : start + ASSOCIATION_BATCH]]}
            try:
                body = self._call(
                    apis,
                    f"reading {object_type} -> {target} associations",
                    lambda timeout, batch=batch: apis.associations.get_page(
                        object_type,
                        target,
                        batch,
                        _preload_content=False,
                        _request_timeout=timeout,
                    ),
                )
            except _HttpError as e:
                raise TerminalStepError(
                    f"HubSpot cannot read '{target}' associations of {object_type}: {e.message}",
                    field="associations",
                    hint="associations name an object type, e.g. companies or contacts",
                ) from e
            for result in body.get("results") or []:
                linked = result.get("to") or []
                if linked:
                    found[int(result["from"]["id"])] = _primary(linked)
        return pa.array([found.get(int(i)) for i in ids], pa.int64())


class _HttpError(Exception):
    """A 4xx answer (not 401/403/429) for the caller to explain."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _timeout_error(apis: _Apis) -> StepTimeoutError:
    return StepTimeoutError(
        f"the HubSpot search ran longer than {apis.timeout_seconds:g} s and was stopped "
        f"after {apis.requests} requests",
        hint="raise timeout_seconds on the step, narrow the search or raise requests_per_second",
    )


def _error_message(body: Any) -> str:
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        return str(body)[:300]
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed)[:500]
    return str(parsed)[:300]


def _required_scopes(body: Any) -> list[str]:
    """The scopes a 403 MISSING_SCOPES body names (``errors[].context.required*Scopes``)."""
    try:
        parsed = json.loads(body or "{}")
    except (TypeError, ValueError):
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    found: list[str] = []
    for error in errors if isinstance(errors, list) else []:
        context = error.get("context") if isinstance(error, dict) else None
        for key in ("requiredGranularScopes", "requiredScopes"):
            for scope in (context or {}).get(key) or []:
                if str(scope) not in found:
                    found.append(str(scope))
    return found


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Request building
# ---------------------------------------------------------------------------------------------


def _id_sort() -> dict[str, str]:
    return {"propertyName": _ID, "direction": "ASCENDING"}


def _check_property(
    name: str, properties: dict[str, _Property], object_type: str, where: str
) -> _Property:
    found = properties.get(name)
    if found is not None:
        return found
    hint = did_you_mean(name, properties) or f"see GET /crm/v3/properties/{object_type}"
    if name.lower() in {"associatedcompanyid", "company_id", "company"}:
        hint = f"use 'associations: [companies]' to get company_id; {hint}"
    raise TerminalStepError(f"unknown {object_type} property '{name}'", field=where, hint=hint)


def _requested_properties(
    request: SearchConfig, object_type: str, properties: dict[str, _Property]
) -> list[str]:
    names: list[str] = []
    for name in request.properties or DEFAULT_PROPERTIES.get(object_type, ()):
        _check_property(name, properties, object_type, "properties")
        if name != _ID and name not in names:
            names.append(name)
    return names


def _filter_groups(
    request: SearchConfig, properties: dict[str, _Property], object_type: str
) -> list[list[dict[str, Any]]] | None:
    """The request's groups as HubSpot filters; None when no record can match."""
    where = "filter_groups" if request.filter_groups else "filters"
    groups: list[list[dict[str, Any]]] = []
    raw_groups = request.groups()
    for group in raw_groups:
        filters: list[dict[str, Any]] = []
        impossible = False
        for spec in group:
            prop = _check_property(spec.property, properties, object_type, where)
            if spec.operator in {"IN", "NOT_IN"} and isinstance(spec.values, list):
                if not spec.values:  # IN () matches nothing, NOT_IN () everything
                    impossible = impossible or spec.operator == "IN"
                    continue
            filters.append(_filter_body(spec, prop, where))
        if not impossible:
            groups.append(filters)
    if raw_groups and not groups:
        return None
    if any(not g for g in groups):
        return []  # a group without filters matches every record
    return groups


def _filter_body(spec: SearchFilter, prop: _Property, where: str) -> dict[str, Any]:
    body: dict[str, Any] = {"propertyName": spec.property, "operator": spec.operator}
    if spec.operator in {"IN", "NOT_IN"}:
        if not isinstance(spec.values, list):
            raise TerminalStepError(
                f"operator {spec.operator} on '{spec.property}' needs a list of values, "
                f"got {spec.values!r}",
                field=where,
                hint="give 'values' as a YAML list or a ${steps.ID.COLUMN} reference",
            )
        body["values"] = [_filter_value(v, prop) for v in spec.values]
    if spec.value is not None:
        body["value"] = _filter_value(spec.value, prop)
    if spec.high_value is not None:
        body["highValue"] = _filter_value(spec.high_value, prop)
    return body


def _filter_value(value: Any, prop: _Property) -> str:
    """A filter value as HubSpot takes it: text; dates as epoch milliseconds (UTC)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if prop.type in {"date", "datetime"}:
        instant = _instant(value)
        if instant is not None:
            return str(int((instant - _EPOCH).total_seconds() * 1000))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None  # epoch milliseconds or something HubSpot will judge
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    return None


def _fits(groups: list[list[dict[str, Any]]], extra: int) -> bool:
    count = max(1, len(groups))
    sizes = [len(g) + extra for g in groups] or [extra]
    return (
        count <= MAX_FILTER_GROUPS
        and max(sizes) <= MAX_FILTERS_PER_GROUP
        and sum(sizes) <= MAX_FILTERS
    )


def _check_limits(groups: list[list[dict[str, Any]]]) -> None:
    if not _fits(groups, 0):
        raise TerminalStepError(
            f"a filter group has more than {MAX_FILTERS_PER_GROUP} filters, HubSpot's limit",
            field="filter_groups",
            hint="split the group's conditions or filter the results in a later filter step",
        )


def _after_id(groups: list[list[dict[str, Any]]], last_id: str) -> list[list[dict[str, Any]]]:
    window_filter = {"propertyName": _ID, "operator": "GT", "value": last_id}
    widened = [[*g, window_filter] for g in groups] or [[window_filter]]
    if not _fits(widened, 0):
        raise TerminalStepError(
            f"more than {SEARCH_RESULT_CAP} records match and a filter group already has "
            f"{MAX_FILTERS_PER_GROUP} filters, leaving no room for the hs_object_id window "
            "that reads past HubSpot's cap",
            field="filters",
            hint="remove one filter from the group (filter later in a filter step)",
        )
    return widened


def _association_targets(names: list[str]) -> list[str]:
    targets: list[str] = []
    for name in names:
        key = name.strip().lower()
        key = _ASSOCIATION_ALIASES.get(key, key)
        if key not in targets:
            targets.append(key)
    return targets


def _association_column(target: str) -> str:
    return _ASSOCIATION_COLUMNS.get(target, f"{target.removesuffix('s')}_id")


def _primary(linked: list[dict[str, Any]]) -> int:
    for item in linked:
        labels = [str(t.get("label") or "") for t in item.get("associationTypes") or []]
        if "Primary" in labels:
            return int(item["toObjectId"])
    return min(int(item["toObjectId"]) for item in linked)


def _describe_filter(spec: SearchFilter) -> dict[str, Any]:
    described: dict[str, Any] = {"propertyName": spec.property, "operator": spec.operator}
    for key, value in (("value", spec.value), ("highValue", spec.high_value)):
        if value is not None:
            described[key] = _describe_value(value)
    if spec.values is not None:
        described["values"] = (
            [_describe_value(v) for v in spec.values]
            if isinstance(spec.values, list)
            else spec.values
        )
    return described


def _describe_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value if isinstance(value, str | int | float | bool) else str(value)


# ---------------------------------------------------------------------------------------------
# Typing
# ---------------------------------------------------------------------------------------------


def _to_table(
    records: list[dict[str, Any]], names: list[str], properties: dict[str, _Property]
) -> pa.Table:
    columns: dict[str, pa.Array] = {
        _ID: pa.array([int(r[_ID]) for r in records], pa.int64()),
    }
    for name in names:
        values = [r.get(name) for r in records]
        columns[name] = _typed(values, properties[name], name)
    return pa.table(columns)


def _typed(values: list[Any], prop: _Property, name: str) -> pa.Array:
    cleaned = [None if v is None or v == "" else str(v) for v in values]
    kind = prop.type
    if kind == "bool" or (kind == "enumeration" and prop.field_type == "booleancheckbox"):
        return pa.array([None if v is None else v.lower() == "true" for v in cleaned], pa.bool_())
    try:
        if kind == "number":
            numbers = [None if v is None else Decimal(v) for v in cleaned]
            if all(n is None or n == n.to_integral_value() for n in numbers):
                return pa.array([None if n is None else int(n) for n in numbers], pa.int64())
            return pa.array([None if n is None else float(n) for n in numbers], pa.float64())
        if kind == "date":
            return pa.array([None if v is None else _date(v) for v in cleaned], pa.date32())
        if kind == "datetime":
            return pa.array(
                [None if v is None else _datetime(v) for v in cleaned], pa.timestamp("us")
            )
    except (InvalidOperation, ValueError, OverflowError) as e:
        raise TerminalStepError(
            f"HubSpot sent a value of {kind} property '{name}' that is not a {kind}: {e}",
            hint="check the property's definition in HubSpot",
        ) from e
    return pa.array(cleaned, pa.string())


def _date(text: str) -> date:
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC).date()
    return date.fromisoformat(text[:10])


def _datetime(text: str) -> datetime:
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC).replace(tzinfo=None)
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
