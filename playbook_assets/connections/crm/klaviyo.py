"""Klaviyo: CRM ``search`` steps answered from Klaviyo profiles and segments.

Through the official klaviyo-api SDK (``KlaviyoAPI``), whose ``test_host`` sets the base URL
(used by tests); it sends ``Authorization: Klaviyo-API-Key <key>`` and its ``revision``
header, and retries 429 / 503 / 504 itself, honouring ``Retry-After``. Its ``max_retries``
counts attempts, and urllib3 under it retries dropped connections on its own: both are set
so that a request is sent at most ``1 + retry_attempts`` times (the step's
``execution.retry_attempts``; the step does not retry again). Every call waits for the
account's rate limit (``requests_per_second`` and ``requests_per_minute``: Klaviyo's profiles
endpoints allow 75/s burst and 700/min steady), shared by every process that uses the key
(``crm/rate_limit.py``), and has a time limit (``_request_timeout``).

Objects: ``profiles`` (or ``contacts``) is ``GET /api/profiles``; ``segments/<id>`` is the
members of a segment, ``GET /api/segments/<id>/profiles``. A segment is an object rather than a
filter because Klaviyo serves it from its own endpoint, with its own filter fields.

What runs where. Klaviyo filters a few fields server side (``filter=``, JSON:API syntax); for
a request with one filter group:

- ``profiles``: EQ / IN on ``email`` and ``id`` (``equals`` / ``any``; an IN list is sent in
  chunks of 100, Klaviyo's ``any`` limit); GT / GTE / LT / LTE / BETWEEN on ``created`` and
  ``updated`` as ``greater-than`` / ``less-than``, widened by one second for the inclusive
  ones (Klaviyo has only the strict operators on these fields);
- ``segments/<id>``: EQ / IN on ``email`` and ``id`` (``profile_id``);

emails are sent lower-cased (Klaviyo stores them so). Everything is then evaluated client
side with exactly the demo CRM's semantics (``evaluate_locally``): every filter again (the
server only narrows), NEQ, NOT_IN, CONTAINS_TOKEN, HAS_PROPERTY, NOT_HAS_PROPERTY, filters on
other fields, several filter groups, sorts and the limit. Pages are ``page[size]`` (max 100),
followed through ``links.next``.

Names: HubSpot contact properties map to profile attributes (``DEFAULT_FIELD_MAP``, extended
or overridden by ``field_map``); ``properties.<name>`` is a custom property; other names are
used as attribute names. ``hs_object_id`` is Klaviyo's profile id (text, not a number).
Profiles have no associations.

Errors: 401 / 403 -> ``TerminalStepError`` (bad or under-scoped key), 400 -> ``TerminalStepError``
with Klaviyo's detail, 429 / 5xx after the SDK's retries -> ``TransientStepError``, no
connection -> ``SourceUnreachableError``.

Documented behaviour this module relies on (developers.klaviyo.com/en/reference; each tested
in tests/test_crm_klaviyo.py against tests/klaviyo_standin.py):

- paging end: ``links.next`` until it is null (test_profiles_typed_and_paged);
- caps: ``page[size]`` up to 100, ``any(...)`` lists up to 100 values
  (test_in_list_is_sent_in_chunks_of_100);
- name case: attribute names as the API spells them (``first_name``), custom properties
  under ``properties`` (test_profiles_typed_and_paged);
- error shapes: ``{"errors": [{status, code, title, detail, source}]}``
  (test_bad_key, test_unknown_segment);
- rate limits: 429 ``throttled`` with ``Retry-After``, retried within the budget
  (test_rate_limit_then_success, test_retries_stay_within_the_budget).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import dagster as dg
import pyarrow as pa
import urllib3
from klaviyo_api import KlaviyoAPI
from openapi_client.api_arg_options import USE_DICTIONARY_FOR_RESPONSE_DATA
from openapi_client.exceptions import ApiException
from pydantic import Field, PrivateAttr
from urllib3.util.retry import Retry

from playbook_assets.connections.crm import rate_limit
from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, CrmResource
from playbook_assets.connections.crm.demo import DEFAULT_PROPERTIES
from playbook_assets.connections.crm.marketo import evaluate_locally
from playbook_assets.connections.crm.values import parse_instant
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
    did_you_mean,
)
from playbook_assets.core.spec import SearchConfig, SearchFilter

DEFAULT_FIELD_MAP: dict[str, str] = {
    "hs_object_id": "id",
    "email": "email",
    "firstname": "first_name",
    "lastname": "last_name",
    "jobtitle": "title",
    "phone": "phone_number",
    "company": "organization",
    "createdate": "created",
    "lastmodifieddate": "updated",
    "lifecyclestage": "properties.lifecyclestage",
    "hs_lead_status": "properties.hs_lead_status",
}
ATTRIBUTES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "email": pa.string(),
    "phone_number": pa.string(),
    "external_id": pa.string(),
    "first_name": pa.string(),
    "last_name": pa.string(),
    "organization": pa.string(),
    "locale": pa.string(),
    "title": pa.string(),
    "image": pa.string(),
    "created": pa.timestamp("us"),
    "updated": pa.timestamp("us"),
    "last_event_date": pa.timestamp("us"),
}
MAX_PAGE_SIZE = 100
MAX_ANY_VALUES = 100
_CUSTOM = "properties."
_OBJECTS = ("profiles", "contacts", "segments/<id>")
_ONE_SECOND = timedelta(seconds=1)


class KlaviyoCrm(CrmResource):
    """Klaviyo profiles (``object: profiles``) and segment members (``segments/<id>``).

    See the module docstring for which filters Klaviyo evaluates and which are evaluated
    locally with the demo CRM's semantics.
    """

    kind: ClassVar[str] = "klaviyo"

    api_key: str = Field(description="Private API key with profiles:read, segments:read.")
    base_url: str = Field(default="https://a.klaviyo.com", description="API base URL.")
    field_map: dict[str, str] = Field(
        default_factory=dict,
        description="Extra or overriding property -> profile attribute names "
        "('properties.x' for a custom property).",
    )
    page_size: int = Field(
        default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Profiles per page (max 100)."
    )
    request_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time limit of one HTTP call."
    )
    max_retry_delay_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait between two retries."
    )
    requests_per_second: float = Field(
        default=75, gt=0, description="Burst limit of the account (Klaviyo's: 75/s)."
    )
    requests_per_minute: float = Field(
        default=700, gt=0, description="Steady limit of the account (Klaviyo's: 700/min)."
    )
    rate_limit_file: str | None = Field(
        default=None,
        description="SQLite file holding the account's shared rate limit (default: "
        "crm_rate_limits.sqlite in the Dagster home).",
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
        """Run the search and return every matching profile (up to ``request.limit``)."""
        request = self.mapped(request)
        plan = _plan(request, {**DEFAULT_FIELD_MAP, **self.field_map})
        deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        client = KlaviyoAPI(
            self.api_key,
            max_delay=int(max(1, self.max_retry_delay_seconds)),
            max_retries=retry_attempts + 1,  # the SDK counts attempts, the first included
            test_host=self.base_url.rstrip("/"),
            options={USE_DICTIONARY_FOR_RESPONSE_DATA: True},
        )
        # urllib3 retries dropped connections by itself (3 times by default): within budget.
        pool = client.api_client.rest_client.pool_manager
        pool.connection_pool_kw["retries"] = Retry(
            total=retry_attempts, backoff_factor=0.5, raise_on_status=False, status=0
        )
        seen: dict[str, dict[str, Any]] = {}
        for server_filter in plan.server_filters or [None]:
            for record in self._pages(client, plan, server_filter, deadline):
                seen.setdefault(str(record["id"]), record)
        return evaluate_locally(_typed_table(list(seen.values()), plan), plan.local_request)

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The Klaviyo call(s): endpoint, ``filter`` values, fields; no secrets."""
        request = self.mapped(request)
        plan = _plan(request, {**DEFAULT_FIELD_MAP, **self.field_map})
        described: dict[str, Any] = {
            "endpoint": plan.endpoint,
            "fields[profile]": plan.sparse_fields,
            "filter": plan.server_filters,
            "page[size]": self.page_size,
            "evaluated_locally": "every filter, sorts and limit (demo CRM semantics)",
        }
        if request.limit is not None:
            described["limit"] = request.limit
        return described

    def _pages(
        self, client: Any, plan: _Plan, server_filter: str | None, deadline: float | None
    ) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            arguments: dict[str, Any] = {
                "fields_profile": plan.sparse_fields,
                "page_size": self.page_size,
                "_request_timeout": self._timeout(deadline),
            }
            if server_filter:
                arguments["filter"] = server_filter
            if cursor:
                arguments["page_cursor"] = cursor
            body = self._call(client, plan, arguments, deadline)
            for item in body.get("data") or []:
                yield {"id": item.get("id"), **(item.get("attributes") or {})}
            cursor = _next_cursor(body)
            if cursor is None:
                return

    def _call(
        self, client: Any, plan: _Plan, arguments: dict[str, Any], deadline: float | None
    ) -> dict[str, Any]:
        admitted = rate_limit.acquire(
            rate_limit.rate_limit_file(self.rate_limit_file, self._dagster_home),
            rate_limit.account_key("klaviyo", self.base_url.rstrip("/"), self.api_key),
            [(self.requests_per_second, 1.0), (self.requests_per_minute, 60.0)],
            deadline,
        )
        if not admitted:
            raise _timed_out()
        try:
            if plan.segment is None:
                body = client.Profiles.get_profiles(**arguments)
            else:
                body = client.Segments.get_profiles_for_segment(plan.segment, **arguments)
        except ApiException as e:
            raise _api_error(e, plan) from e
        except urllib3.exceptions.ReadTimeoutError as e:
            raise _timed_out() from e
        except urllib3.exceptions.HTTPError as e:
            cause = getattr(e, "reason", None)
            if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
                raise _timed_out() from e
            raise SourceUnreachableError(
                f"cannot reach Klaviyo at {self.base_url}: {type(cause or e).__name__}",
                hint="check base_url and the network",
            ) from e
        if not isinstance(body, dict):
            raise TerminalStepError("Klaviyo answered with an unexpected body")
        return body

    def _timeout(self, deadline: float | None) -> float:
        limit = self.request_timeout_seconds
        if deadline is None:
            return float(limit)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timed_out()
        return float(min(limit, remaining))


@dataclass(frozen=True)
class _Plan:
    """The endpoint, server-side filters and the local evaluation of one search."""

    segment: str | None
    endpoint: str
    columns: dict[str, str]  # user column -> attribute ('properties.x' for custom)
    sparse_fields: list[str]
    server_filters: list[str]  # one call (with paging) per filter; [] = no filter
    local_request: SearchConfig


def _plan(request: SearchConfig, names: dict[str, str]) -> _Plan:
    segment = _segment(request.object)
    if request.associations:
        raise TerminalStepError(
            "Klaviyo profiles have no associations",
            field="associations",
            hint="remove 'associations'; 'company' (organization) is a profile property",
        )
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
        columns[name] = _attribute(name, names, where)
    sparse = sorted({"properties" if a.startswith(_CUSTOM) else a for a in columns.values()})
    sparse = [a for a in sparse if a != "id"]
    endpoint = f"/api/segments/{segment}/profiles" if segment else "/api/profiles"
    local = request.model_copy(update={"properties": properties, "object": "contacts"})
    return _Plan(
        segment, endpoint, columns, sparse, _server_filters(request, columns, segment), local
    )


def _segment(name: str) -> str | None:
    text = name.strip()
    if text.lower() in {"profiles", "contacts", "profile"}:
        return None
    if text.lower().startswith("segments/") and text[len("segments/") :].strip():
        return text[len("segments/") :].strip()
    raise TerminalStepError(
        f"Klaviyo has no object '{name}'",
        field="object",
        hint=(did_you_mean(name, _OBJECTS) or "") + " objects: profiles, segments/<segment id>",
    )


def _attribute(name: str, names: dict[str, str], where: str) -> str:
    target = names.get(name, name)
    if target in ATTRIBUTES or (target.startswith(_CUSTOM) and len(target) > len(_CUSTOM)):
        return target
    known = sorted({*ATTRIBUTES, *names})
    suggestion = did_you_mean(name, known)
    listing = (
        "use 'properties.<name>' for a custom property, or map it in field_map; "
        f"attributes: {', '.join(sorted(ATTRIBUTES))}"
    )
    raise TerminalStepError(
        f"Klaviyo profiles have no attribute '{name}'",
        field=where,
        hint=f"{suggestion} {listing}" if suggestion else listing,
    )


def _server_filters(
    request: SearchConfig, columns: dict[str, str], segment: str | None
) -> list[str]:
    """Klaviyo ``filter`` values: one per chunk of the pushed IN list (ANDed with the rest)."""
    groups = request.groups()
    if len(groups) != 1:
        return []
    fixed: list[str] = []
    listed: tuple[str, list[str]] | None = None
    done: set[str] = set()
    for spec in groups[0]:
        attribute = columns[spec.property]
        if attribute in {"email", "id"} and spec.operator in {"EQ", "IN"}:
            if attribute in done:
                continue
            values = _string_values(spec, attribute)
            if values is None:
                continue
            field = "profile_id" if attribute == "id" and segment else attribute
            done.add(attribute)
            if len(values) == 1:
                fixed.append(f"equals({field},{json.dumps(values[0])})")
            elif listed is None:
                listed = (field, values)
            else:
                done.discard(attribute)
        elif attribute in {"created", "updated"} and segment is None:
            fixed.extend(_range_filters(spec, attribute))
    if listed is None:
        return [_and(fixed)] if fixed else []
    field, values = listed
    return [
        _and([*fixed, f"any({field},{json.dumps(values[i : i + MAX_ANY_VALUES])})"])
        for i in range(0, len(values), MAX_ANY_VALUES)
    ]


def _and(filters: list[str]) -> str:
    return filters[0] if len(filters) == 1 else f"and({','.join(filters)})"


def _string_values(spec: SearchFilter, attribute: str) -> list[str] | None:
    raw = [spec.value] if spec.operator == "EQ" else spec.values
    if not isinstance(raw, list):
        return None
    values: list[str] = []
    for value in raw:
        if value is None or isinstance(value, bool | list | dict):
            return None
        text = str(value).strip().lower() if attribute == "email" else str(value)
        if text not in values:
            values.append(text)
    return values or None


def _range_filters(spec: SearchFilter, attribute: str) -> list[str]:
    """greater-than / less-than; inclusive bounds widened by a second (superset)."""

    def bound(operator: str, raw: Any, delta: timedelta) -> str | None:
        try:
            moved = parse_instant(raw, attribute).replace(microsecond=0) + delta
        except TerminalStepError:
            return None  # the local evaluation reports the bad value
        return f"{operator}({attribute},{moved.isoformat()}Z)"

    op = spec.operator
    found: list[str | None] = []
    if op in {"GT", "GTE", "BETWEEN"}:
        shift = timedelta(0) if op == "GT" else -_ONE_SECOND
        found.append(bound("greater-than", spec.value, shift))
    if op in {"LT", "LTE"}:
        found.append(bound("less-than", spec.value, timedelta(0) if op == "LT" else _ONE_SECOND))
    if op == "BETWEEN":
        found.append(bound("less-than", spec.high_value, _ONE_SECOND))
    return [f for f in found if f is not None]


def _next_cursor(body: dict[str, Any]) -> str | None:
    link = (body.get("links") or {}).get("next")
    if not link:
        return None
    values = parse_qs(urlparse(str(link)).query).get("page[cursor]")
    return values[0] if values else None


def _typed_table(records: list[dict[str, Any]], plan: _Plan) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for column, attribute in plan.columns.items():
        if attribute.startswith(_CUSTOM):
            key = attribute[len(_CUSTOM) :]
            raw = [(r.get("properties") or {}).get(key) for r in records]
            arrays[column] = _inferred(raw)
        else:
            raw = [r.get(attribute) for r in records]
            kind = ATTRIBUTES[attribute]
            if pa.types.is_timestamp(kind):
                arrays[column] = pa.array([None if v is None else _timestamp(v) for v in raw], kind)
            else:
                arrays[column] = pa.array([None if v is None else str(v) for v in raw], kind)
    return pa.table(arrays)


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _inferred(raw: list[Any]) -> pa.Array:
    """A custom property typed from its JSON values (text when they disagree)."""
    try:
        array = pa.array(raw)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else json.dumps(v) for v in raw], pa.string())
    if pa.types.is_null(array.type):
        return array.cast(pa.string())
    return array


def _api_error(e: ApiException, plan: _Plan) -> Exception:
    status = int(e.status or 0)
    detail = _detail(e)
    if status in {401, 403}:
        return TerminalStepError(
            f"Klaviyo rejected the API key (HTTP {status}: {detail})",
            hint="check api_key: a private key with the profiles:read and segments:read scopes",
        )
    if status == 404 and plan.segment is not None:
        return TerminalStepError(
            f"Klaviyo has no segment '{plan.segment}' ({detail})",
            field="object",
            hint="use the segment id from the segment's URL in Klaviyo",
        )
    if status == 429 or status >= 500:
        return TransientStepError(
            f"Klaviyo is still throttling or failing after the retries (HTTP {status}: {detail})",
            hint="retry later; Klaviyo's profiles API allows 75 requests/s and 700/min",
        )
    if status == 0:
        return SourceUnreachableError(f"cannot reach Klaviyo: {e.reason}")
    return TerminalStepError(f"Klaviyo rejected the request (HTTP {status}: {detail})")


def _detail(e: ApiException) -> str:
    try:
        errors = json.loads(e.body or "{}").get("errors") or []
    except (TypeError, ValueError):
        return str(e.reason)
    return "; ".join(str(x.get("detail") or x.get("title")) for x in errors) or str(e.reason)


def _timed_out() -> StepTimeoutError:
    return StepTimeoutError(
        "Klaviyo did not answer in time",
        hint="raise timeout_seconds on the step or request_timeout_seconds on the connection",
    )
