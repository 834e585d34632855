"""The interface every CRM integration implements."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from playbook_assets.env_settings import EnvResolvedResource
from playbook_assets.spec import SearchConfig


class CrmResource(EnvResolvedResource):
    """A CRM that answers ``search`` steps with HubSpot's search semantics.

    ``search`` receives a request whose ``${...}`` references are already resolved and
    returns one row per record: ``hs_object_id`` first, then the requested properties in
    order (typed: numbers, dates and booleans, not strings), then one ``<object>_id`` column
    per association (``company_id`` for ``associations: [companies]``). ``kind`` is the
    Dagster kind shown on the step's asset.

    Implementations raise, from ``playbook_assets.errors``: ``SourceUnreachableError`` when
    the CRM cannot be reached (connection refused, DNS, the auth endpoint down, a timeout
    while connecting); ``TransientStepError`` for what a retry may fix (throttling once the
    client's own backoff is exhausted, 5xx); ``StepTimeoutError`` past ``timeout_seconds``;
    ``TerminalStepError`` for the rest (bad token, unknown object or property, bad request),
    with a message that says how to fix it and never contains a secret.
    """

    kind: ClassVar[str] = "crm"

    def search(self, request: SearchConfig, *, timeout_seconds: float | None = None) -> pa.Table:
        """Run the search and return every matching record (up to ``request.limit``)."""
        raise NotImplementedError

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The request as the CRM sees it, for run metadata (no secrets)."""
        return request.model_dump(mode="json", exclude_defaults=True)
