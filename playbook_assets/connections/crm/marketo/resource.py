"""The Marketo resource: settings, the search (plan, fetch, evaluate locally) and its request
as run metadata. See the package docstring for the documented behaviours it relies on."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from playbook_assets.connections.crm.base import DEFAULT_RETRY_ATTEMPTS, RateLimitedCrm
from playbook_assets.connections.crm.hubspot_filters import DEFAULT_PROPERTIES, evaluate_locally
from playbook_assets.connections.crm.marketo.client import MarketoClient, timed_out
from playbook_assets.connections.crm.marketo.plan import (
    LeadField,
    Plan,
    describe_filter,
    object_name,
    plan,
    typed_table,
)
from playbook_assets.connections.kit.deadline import Deadline
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.spec import SearchConfig

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


class MarketoCrm(RateLimitedCrm):
    """Marketo leads searched through Marketo's REST API (OAuth client credentials).

    ``object: leads`` (or ``contacts``). See the module docstring for which filters Marketo
    evaluates and which are evaluated locally, with the demo CRM's semantics.
    """

    kind: ClassVar[str] = "marketo"

    # -- settings -------------------------------------------------------------------------------

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
    backoff_seconds: float = Field(
        default=2.0,
        ge=0,
        description="First wait before a retry; doubles on each retry (with jitter).",
    )

    # -- search ---------------------------------------------------------------------------------

    def search(
        self,
        request: SearchConfig,
        *,
        timeout_seconds: float | None = None,
        retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    ) -> pa.Table:
        """Run the search and return every matching lead (up to ``request.limit``)."""
        request = self.mapped(request)
        object_name(request.object)
        deadline = Deadline(timeout_seconds, lambda: timed_out("the search"))
        with MarketoClient(self, deadline, retry_attempts) as client:
            fields = client.describe()
            planned = plan(request, self._names(), fields, self.company_id_field)
            records = _records(client, planned, fields, self.batch_size)
        table = typed_table(records, planned, fields)
        return evaluate_locally(table, planned.local_request)

    def describe_request(self, request: SearchConfig) -> dict[str, Any]:
        """The leads call (Marketo field names) and which filters may be evaluated locally."""
        request = self.mapped(request)
        names = self._names()
        properties = list(request.properties) or list(DEFAULT_PROPERTIES["contacts"])
        fields = [names.get(p, p) for p in properties]
        if request.associations:
            fields.append(self.company_id_field)
        groups = [
            [{**describe_filter(f), "field": names.get(f.property, f.property)} for f in group]
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


def _records(
    client: MarketoClient, plan: Plan, fields: dict[str, LeadField], batch_size: int
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
