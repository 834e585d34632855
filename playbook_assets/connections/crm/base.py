"""The interface every CRM integration implements."""

from __future__ import annotations

from typing import Any, ClassVar

import dagster as dg
import pyarrow as pa
from pydantic import Field, PrivateAttr

from playbook_assets.connections.crm import rate_limit
from playbook_assets.connections.crm.values import ValueMapping, map_values, merged_mapping
from playbook_assets.connections.env_settings import EnvResolvedResource
from playbook_assets.connections.kit.deadline import Deadline
from playbook_assets.connections.kit.retry import DEFAULT_RETRY_ATTEMPTS
from playbook_assets.core.spec import SearchConfig

__all__ = ["DEFAULT_RETRY_ATTEMPTS", "CrmResource", "RateLimitedCrm"]


class CrmResource(EnvResolvedResource):
    """A CRM that answers ``search`` steps with HubSpot's search semantics.

    ``search`` receives a request whose ``${...}`` references are already resolved and
    returns one row per record: ``hs_object_id`` first, then the requested properties in
    order (typed: numbers, dates and booleans, not strings), then one ``<object>_id`` column
    per association (``company_id`` for ``associations: [companies]``). A column's type never
    depends on the rows: an empty result has the types a full one would have. ``kind`` is
    the Dagster kind shown on the step's asset.

    Filter values are the playbook's (HubSpot's default values, e.g. deal stage
    ``qualifiedtobuy``); ``value_mapping`` (over the integration's ``DEFAULT_VALUE_MAPPING``)
    translates them to the CRM's own values before the search is sent.

    Every request is sent at most ``1 + retry_attempts`` times (throttling, 5xx, dropped
    connections): the step that calls ``search`` does not retry it again, so retries never
    multiply (unless ``retries_requests`` is False: then the step retries the search).

    Implementations raise, from ``playbook_assets.core.errors``: ``SourceUnreachableError`` when
    the CRM cannot be reached (connection refused, DNS, the auth endpoint down, a timeout
    while connecting); ``TransientStepError`` for what a later run may fix (throttling once
    the retries are used up, 5xx); ``StepTimeoutError`` past ``timeout_seconds``;
    ``TerminalStepError`` for the rest (bad token, missing scope, unknown object or property,
    bad request, a daily API quota used up), with a message that says how to fix it and never
    contains a secret.
    """

    kind: ClassVar[str] = "crm"
    # Whether ``search`` retries each request itself within ``retry_attempts`` (a remote
    # CRM); otherwise the step retries the whole search.
    retries_requests: ClassVar[bool] = True
    # object -> property -> playbook value -> the CRM's value(s); see ``value_mapping``.
    DEFAULT_VALUE_MAPPING: ClassVar[ValueMapping] = {}

    value_mapping: ValueMapping = Field(
        default_factory=dict,
        description="Per object and property, a playbook filter value -> the CRM's values, "
        "merged over the integration's defaults, e.g. {deals: {dealstage: {qualifiedtobuy: "
        "[Qualification, Needs Analysis]}}}. Values not listed are sent as written.",
    )

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search and return every matching record (up to ``request.limit``)."""
        raise NotImplementedError

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The request as the CRM sees it, for run metadata (no secrets)."""
        return self.mapped(request).model_dump(mode="json", exclude_defaults=True)

    def mapped(self, request: SearchConfig) -> SearchConfig:
        """The request with its filter values translated by the value mapping."""
        return map_values(request, merged_mapping(self.DEFAULT_VALUE_MAPPING, self.value_mapping))


class RateLimitedCrm(CrmResource):
    """A CRM whose account allows so many requests per window, whatever process sends them:
    every request first waits for a slot of the account's shared limits (``rate_limit``)."""

    rate_limit_file: str | None = Field(
        default=None,
        description="SQLite file holding the account's shared rate limit; every process that "
        "uses the account must see it (default: crm_rate_limits.sqlite in the Dagster home).",
    )

    _dagster_home: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Keep the run's Dagster home: the shared rate limit lives there by default."""
        if context.instance is not None:
            self._dagster_home = context.instance.root_directory

    def wait_for_rate(
        self, account: tuple[str, ...], limits: rate_limit.Limits, deadline: Deadline
    ) -> None:
        """Wait for a request slot of the account (its URL and credential, hashed) under every
        limit; the deadline's error when the wait would pass it."""
        admitted = rate_limit.acquire(
            rate_limit.rate_limit_file(self.rate_limit_file, self._dagster_home),
            rate_limit.account_key(*account),
            limits,
            deadline.at,
        )
        if not admitted:
            raise deadline.error()
