"""The HubSpot resource: settings, the client, the search (windows past the result cap, pages,
associations), its requests through the kit's retry policy and the one place HubSpot's
answers become the product's errors. See the package docstring for the documented behaviours
it relies on."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import hubspot
import pyarrow as pa
from pydantic import Field, PrivateAttr
from urllib3.util.retry import Retry

from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, RateLimitedCrm
from playbook_assets.connections.crm.hubspot.columns import records_table
from playbook_assets.connections.crm.hubspot.errors import ErrorMapping, HttpError
from playbook_assets.connections.crm.hubspot.request_body import (
    Property,
    association_column,
    association_targets,
    check_property,
    filter_groups,
    id_sort,
    primary,
    requested_properties,
)
from playbook_assets.connections.crm.hubspot.windows import collect, plan
from playbook_assets.connections.crm.hubspot_filters import DEFAULT_PROPERTIES, ID, describe_filter
from playbook_assets.connections.kit.deadline import Deadline, step_timeout
from playbook_assets.connections.kit.errors import mapped_errors
from playbook_assets.connections.kit.retry import Attempt, RetryPolicy, call_with_retries
from playbook_assets.core.errors import (
    StepTimeoutError,
    TerminalStepError,
    did_you_mean,
)
from playbook_assets.core.spec import SearchConfig

ASSOCIATION_BATCH = 100
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


@dataclass
class _Apis:
    """The hubspot-api-client APIs one search uses, its deadline and retry policy."""

    search: Any
    properties: Any
    associations: Any
    policy: RetryPolicy
    timeout_seconds: float | None
    requests: int = 0
    deadline: Deadline = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = Deadline(self.timeout_seconds, self.timed_out)

    def timed_out(self) -> StepTimeoutError:
        """The error of a search cut off at its time limit."""
        return step_timeout(
            f"the HubSpot search ran longer than {self.timeout_seconds:g} s and was stopped "
            f"after {self.requests} requests",
            also="narrow the search or raise requests_per_second",
        )


class HubSpotCrm(RateLimitedCrm):
    """HubSpot's CRM, searched with its search API through hubspot-api-client.

    Use a private app access token from the environment: ``access_token: "${HUBSPOT_TOKEN}"``.
    """

    kind: ClassVar[str] = "hubspot"

    # -- settings -------------------------------------------------------------------------------

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

    _properties: dict[str, dict[str, Property]] = PrivateAttr(default_factory=dict)

    # -- search ---------------------------------------------------------------------------------

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search and return every matching record (up to ``request.limit``)."""
        request = self.mapped(request)
        apis = self._connect(timeout_seconds, retry_attempts)
        object_type = request.object.strip().lower()
        properties = self._object_properties(apis, object_type)
        names = requested_properties(request, object_type, properties)
        for sort in request.sorts:
            check_property(sort.property, properties, object_type, "sorts")
        groups = filter_groups(request, properties, object_type)
        associations = association_targets(request.associations)

        records: list[dict[str, Any]] = []
        if groups is not None:
            search = plan(request, object_type, names, self.page_size)
            page = functools.partial(self._search_page, apis, object_type)
            records = collect(groups, search, page)
        table = records_table(records, names, properties)
        for target in associations:
            table = table.append_column(
                pa.field(association_column(target), pa.int64()),
                self._associated_ids(apis, object_type, target, table.column(ID).to_pylist()),
            )
        keys = [
            (s.property, "descending" if s.direction == "DESCENDING" else "ascending", "at_end")
            for s in request.sorts
        ]
        table = table.sort_by([*keys, (ID, "ascending", "at_end")])
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
                {"filters": [describe_filter(f) for f in group]} for group in request.groups()
            ],
            "properties": list(request.properties) or list(DEFAULT_PROPERTIES.get(object_type, ())),
            "sorts": [{"propertyName": s.property, "direction": s.direction} for s in request.sorts]
            or [id_sort()],
            "limit": self.page_size,
        }
        if request.limit is not None:
            body["max_records"] = request.limit
        if request.associations:
            body["associations"] = list(request.associations)
        return body

    # -- requests -------------------------------------------------------------------------------

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
        except HttpError as e:
            raise TerminalStepError(
                f"HubSpot rejected the search of '{object_type}' ({e.status}): {e.message}",
                hint="check the step's filters, values and sorts",
            ) from e

    def _object_properties(self, apis: _Apis, object_type: str) -> dict[str, Property]:
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
        except HttpError as e:
            raise _unknown_object(e, object_type, scopes) from e
        found = {
            str(item["name"]): Property(
                str(item["name"]), str(item.get("type") or "string"), str(item.get("fieldType"))
            )
            for item in body.get("results", [])
        }
        found.setdefault(ID, Property(ID, "number", "number"))
        self._properties[object_type] = found
        return found

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
            except HttpError as e:
                raise TerminalStepError(
                    f"HubSpot cannot read '{target}' associations of {object_type}: {e.message}",
                    field="associations",
                    hint="associations name an object type, e.g. companies or contacts",
                ) from e
            for result in body.get("results") or []:
                linked = result.get("to") or []
                if linked:
                    found[int(result["from"]["id"])] = primary(linked)
        return pa.array([found.get(int(i)) for i in ids], pa.int64())

    # -- connect --------------------------------------------------------------------------------

    def _connect(self, timeout_seconds: float | None, retry_attempts: int) -> _Apis:
        # The kit retries (so that every attempt passes the rate limiter); the client's urllib3
        # Retry must neither retry nor turn statuses into MaxRetryError.
        retry = Retry(
            total=0,
            allowed_methods=None,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        client = hubspot.HubSpot(
            access_token=self.access_token, host=self.base_url.rstrip("/"), retry=retry
        )
        policy = RetryPolicy(
            retries=retry_attempts,
            backoff_seconds=self.backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
        )
        return _Apis(
            search=client.crm.objects.search_api,
            properties=client.crm.properties.core_api,
            associations=client.crm.associations.v4.batch_api,
            policy=policy,
            timeout_seconds=timeout_seconds,
        )

    def _call(
        self,
        apis: _Apis,
        what: str,
        send: Callable[[tuple[float, float]], Any],
        scopes: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Send one request (``send(timeout)``) with rate limiting and retries; the JSON body.

        ``scopes`` are the scopes the request needs, named when HubSpot answers 403 without
        saying which. Raises ``HttpError`` for 4xx answers other than 401, 403 and 429, for
        the caller to explain in its own terms.
        """

        def once(attempt: Attempt) -> dict[str, Any]:
            self.wait_for_rate(
                ("hubspot", self.base_url.rstrip("/"), self.access_token),
                [(self.requests_per_second, 1.0)],
                apis.deadline,
            )
            apis.requests += 1
            mapping = ErrorMapping(self.base_url, apis.deadline, what, scopes, attempt)
            with mapped_errors(mapping, passthrough=(HttpError,)):
                response = send(self._request_timeout(apis))
                return json.loads(response.data or b"{}")

        return call_with_retries(once, apis.policy, apis.deadline)

    def _request_timeout(self, apis: _Apis) -> tuple[float, float]:
        connect, read = self.connect_timeout_seconds, self.read_timeout_seconds
        remaining = apis.deadline.remaining()
        if remaining is not None:
            remaining = max(0.001, remaining)
            connect, read = min(connect, remaining), min(read, remaining)
        return (connect, read)


def _unknown_object(e: HttpError, object_type: str, scopes: tuple[str, str]) -> Exception:
    """The error of a properties call HubSpot refused: an object it does not serve."""
    if e.status in (400, 404) and object_type in _SCOPES:
        # A standard object HubSpot does not serve: it is not set up in this account.
        return TerminalStepError(
            f"HubSpot does not serve the standard object '{object_type}' for this "
            f"account ({e.status}: {e.message})",
            field="object",
            hint=f"check that the account has {object_type} turned on (e.g. tickets "
            "need a help desk or Service Hub, products and line items the product "
            "library) and that the private app has the "
            f"{' and '.join(dict.fromkeys(scopes))} scope",
        )
    if e.status in (400, 404):
        return TerminalStepError(
            f"unknown HubSpot object '{object_type}' (HubSpot: {e.message})",
            field="object",
            hint=did_you_mean(object_type, _STANDARD_OBJECTS)
            or f"standard objects: {', '.join(_STANDARD_OBJECTS)}; a custom object is "
            "named by its fully qualified name (p_<name>) or objectTypeId (2-...)",
        )
    return TerminalStepError(
        f"HubSpot refused to list the properties of '{object_type}': {e.message}"
    )
