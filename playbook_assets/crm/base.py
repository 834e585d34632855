"""The interface every CRM integration implements."""

from __future__ import annotations

from typing import Any, ClassVar

import dagster as dg
import pyarrow as pa

from playbook_assets.spec import SearchConfig


class CrmResource(dg.ConfigurableResource):
    """A CRM that answers ``search`` steps with HubSpot's search semantics.

    ``search`` receives a request whose ``${...}`` references are already resolved and
    returns one row per record: ``hs_object_id`` first, then the requested properties in
    order (typed: numbers, dates and booleans, not strings), then one ``<object>_id`` column
    per association (``company_id`` for ``associations: [companies]``).
    """

    kind: ClassVar[str] = "crm"

    def search(self, request: SearchConfig) -> pa.Table:
        """Run the search and return every matching record (up to ``request.limit``)."""
        raise NotImplementedError

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The request as the CRM sees it, for run metadata (no secrets)."""
        return request.model_dump(mode="json", exclude_defaults=True)
