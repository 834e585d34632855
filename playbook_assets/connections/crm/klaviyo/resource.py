"""The Klaviyo resource: settings, the search (plan, fetch pages, evaluate locally), its
requests through the SDK and the one place the SDK's exceptions become the product's errors.
See the package docstring for the documented behaviours it relies on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pyarrow as pa
import urllib3
from klaviyo_api import KlaviyoAPI
from openapi_client.api_arg_options import USE_DICTIONARY_FOR_RESPONSE_DATA
from openapi_client.exceptions import ApiException
from pydantic import Field
from urllib3.util.retry import Retry

from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, RateLimitedCrm
from playbook_assets.connections.crm.hubspot_filters import evaluate_locally
from playbook_assets.connections.crm.klaviyo.plan import (
    DEFAULT_FIELD_MAP,
    Plan,
    plan,
    typed_table,
)
from playbook_assets.connections.kit.deadline import Deadline, step_timeout
from playbook_assets.connections.kit.errors import mapped_errors
from playbook_assets.connections.kit.retry import Attempt, RetryPolicy, call_with_retries
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.spec import SearchConfig

MAX_PAGE_SIZE = 100


class KlaviyoCrm(RateLimitedCrm):
    """Klaviyo profiles (``object: profiles``) and segment members (``segments/<id>``).

    See the module docstring for which filters Klaviyo evaluates and which are evaluated
    locally with the demo CRM's semantics.
    """

    kind: ClassVar[str] = "klaviyo"

    # -- settings -------------------------------------------------------------------------------

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

    # -- search ---------------------------------------------------------------------------------

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search and return every matching profile (up to ``request.limit``)."""
        request = self.mapped(request)
        planned = plan(request, {**DEFAULT_FIELD_MAP, **self.field_map})
        deadline = Deadline(timeout_seconds, _timed_out)
        policy = RetryPolicy(
            retries=retry_attempts, max_backoff_seconds=self.max_retry_delay_seconds
        )
        client = self._connect()
        seen: dict[str, dict[str, Any]] = {}
        for server_filter in planned.server_filters or [None]:
            for record in self._pages(client, planned, server_filter, deadline, policy):
                seen.setdefault(str(record["id"]), record)
        return evaluate_locally(typed_table(list(seen.values()), planned), planned.local_request)

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The Klaviyo call(s): endpoint, ``filter`` values, fields; no secrets."""
        request = self.mapped(request)
        planned = plan(request, {**DEFAULT_FIELD_MAP, **self.field_map})
        described: dict[str, Any] = {
            "endpoint": planned.endpoint,
            "fields[profile]": planned.sparse_fields,
            "filter": planned.server_filters,
            "page[size]": self.page_size,
            "evaluated_locally": "every filter, sorts and limit (demo CRM semantics)",
        }
        if request.limit is not None:
            described["limit"] = request.limit
        return described

    # -- connect --------------------------------------------------------------------------------

    def _connect(self) -> Any:
        """The SDK's client, with its own retries and urllib3's off (the kit retries)."""
        client = KlaviyoAPI(
            self.api_key,
            max_retries=1,  # the SDK counts attempts, the first included
            test_host=self.base_url.rstrip("/"),
            options={USE_DICTIONARY_FOR_RESPONSE_DATA: True},
        )
        pool = client.api_client.rest_client.pool_manager
        pool.connection_pool_kw["retries"] = Retry(total=0, raise_on_status=False)
        return client

    def _pages(
        self,
        client: Any,
        planned: Plan,
        server_filter: str | None,
        deadline: Deadline,
        policy: RetryPolicy,
    ) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            arguments: dict[str, Any] = {
                "fields_profile": planned.sparse_fields,
                "page_size": self.page_size,
            }
            if server_filter:
                arguments["filter"] = server_filter
            if cursor:
                arguments["page_cursor"] = cursor
            body = call_with_retries(
                lambda attempt, arguments=arguments: self._call(
                    client, planned, arguments, deadline, attempt
                ),
                policy,
                deadline,
            )
            for item in body.get("data") or []:
                yield {"id": item.get("id"), **(item.get("attributes") or {})}
            cursor = _next_cursor(body)
            if cursor is None:
                return

    def _call(
        self,
        client: Any,
        planned: Plan,
        arguments: dict[str, Any],
        deadline: Deadline,
        attempt: Attempt,
    ) -> dict[str, Any]:
        self.wait_for_rate(
            ("klaviyo", self.base_url.rstrip("/"), self.api_key),
            [(self.requests_per_second, 1.0), (self.requests_per_minute, 60.0)],
            deadline,
        )
        timeout = deadline.request_timeout(self.request_timeout_seconds)
        with mapped_errors(lambda e: self._mapped(e, planned, attempt)):
            if planned.segment is None:
                body = client.Profiles.get_profiles(**arguments, _request_timeout=timeout)
            else:
                body = client.Segments.get_profiles_for_segment(
                    planned.segment, **arguments, _request_timeout=timeout
                )
        if not isinstance(body, dict):
            raise TerminalStepError("Klaviyo answered with an unexpected body")
        return body

    # -- error mapping --------------------------------------------------------------------------

    def _mapped(self, error: Exception, planned: Plan, attempt: Attempt) -> Exception:
        """The product's error for what the SDK (or urllib3 under it) raised."""
        if isinstance(error, ApiException):
            attempt.retry_after = _retry_after(error.headers)
            return _api_error(error, planned)
        if isinstance(error, urllib3.exceptions.ReadTimeoutError):
            return _timed_out()
        if isinstance(error, urllib3.exceptions.HTTPError):
            cause = getattr(error, "reason", None)
            if isinstance(cause, urllib3.exceptions.ReadTimeoutError):
                return _timed_out()
            return SourceUnreachableError(
                f"cannot reach Klaviyo at {self.base_url}: {type(cause or error).__name__}",
                hint="check base_url and the network",
            )
        return error


def _next_cursor(body: dict[str, Any]) -> str | None:
    link = (body.get("links") or {}).get("next")
    if not link:
        return None
    values = parse_qs(urlparse(str(link)).query).get("page[cursor]")
    return values[0] if values else None


def _retry_after(headers: Any) -> float | None:
    raw = headers.get("Retry-After") if headers else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _api_error(e: ApiException, planned: Plan) -> Exception:
    status = int(e.status or 0)
    detail = _detail(e)
    if status in {401, 403}:
        return TerminalStepError(
            f"Klaviyo rejected the API key (HTTP {status}: {detail})",
            hint="check api_key: a private key with the profiles:read and segments:read scopes",
        )
    if status == 404 and planned.segment is not None:
        return TerminalStepError(
            f"Klaviyo has no segment '{planned.segment}' ({detail})",
            field="object",
            hint="use the segment id from the segment's URL in Klaviyo",
        )
    if status in {104, 429, 524} or status >= 500:
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
    return step_timeout(
        "Klaviyo did not answer in time", also="request_timeout_seconds on the connection"
    )
