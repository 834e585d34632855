"""The ``search`` step: a CRM search with HubSpot's search semantics, on every CRM."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.models import StrictModel
from playbook_assets.core.references import ResolutionContext, resolve
from playbook_assets.core.steps.base import (
    StepBase,
    StepContext,
    StepRequest,
    StepType,
    ValidationContext,
    request_fingerprint,
)

FilterOperator = Literal[
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "IN",
    "NOT_IN",
    "BETWEEN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
]

# Which operators take which value fields (HubSpot's CRM search semantics).
OPERATORS_WITHOUT_VALUE = frozenset({"HAS_PROPERTY", "NOT_HAS_PROPERTY"})
OPERATORS_WITH_VALUES = frozenset({"IN", "NOT_IN"})
OPERATORS_WITH_RANGE = frozenset({"BETWEEN"})


class SearchFilter(StrictModel):
    """One CRM search filter, in HubSpot's terms."""

    property: str = Field(description="CRM property name, e.g. dealstage.")
    operator: FilterOperator = Field(description="Comparison operator (HubSpot names).")
    value: Any = Field(default=None, description="Value for single-value operators.")
    values: list[Any] | str | None = Field(
        default=None, description="Values for IN / NOT_IN (a list or a ${...} reference)."
    )
    high_value: Any = Field(default=None, description="Upper bound for BETWEEN.")

    @model_validator(mode="after")
    def _value_fields_match_operator(self) -> SearchFilter:
        op = self.operator
        if op in OPERATORS_WITHOUT_VALUE:
            if self.value is not None or self.values is not None or self.high_value is not None:
                raise ValueError(f"operator {op} takes no value, values or high_value")
        elif op in OPERATORS_WITH_VALUES:
            if self.values is None:
                raise ValueError(f"operator {op} needs 'values' (a list)")
            if self.value is not None or self.high_value is not None:
                raise ValueError(f"operator {op} takes 'values', not 'value'/'high_value'")
        elif op in OPERATORS_WITH_RANGE:
            if self.value is None or self.high_value is None:
                raise ValueError("operator BETWEEN needs 'value' (low) and 'high_value' (high)")
            if self.values is not None:
                raise ValueError("operator BETWEEN takes 'value' and 'high_value', not 'values'")
        else:
            if self.value is None:
                raise ValueError(f"operator {op} needs 'value'")
            if self.values is not None or self.high_value is not None:
                raise ValueError(f"operator {op} takes 'value' only")
        return self


class SearchSort(StrictModel):
    """One sort key of a CRM search."""

    property: str = Field(description="Property to sort by.")
    direction: Literal["ASCENDING", "DESCENDING"] = Field(
        default="ASCENDING", description="ASCENDING or DESCENDING."
    )


class SearchConfig(StrictModel):
    """Configuration of a CRM ``search`` step (HubSpot search semantics on every CRM)."""

    object: str = Field(description="CRM object type: deals, companies, contacts, ...")
    filters: list[SearchFilter] = Field(
        default_factory=list, description="Filters that must all match (AND)."
    )
    filter_groups: list[list[SearchFilter]] = Field(
        default_factory=list,
        description="Groups of filters: a record matches if all filters of any group match.",
    )
    properties: list[str] = Field(
        default_factory=list, description="Properties to return (default: the object's defaults)."
    )
    sorts: list[SearchSort] = Field(default_factory=list, description="Sort order of results.")
    limit: int | None = Field(
        default=None, ge=1, description="Maximum number of records (default: all matching)."
    )
    associations: list[str] = Field(
        default_factory=list,
        description="Associated object types to add as <object>_id columns, e.g. companies.",
    )

    @model_validator(mode="after")
    def _filters_or_groups(self) -> SearchConfig:
        if self.filters and self.filter_groups:
            raise ValueError("use either 'filters' or 'filter_groups', not both")
        return self

    def groups(self) -> list[list[SearchFilter]]:
        """The filter groups to OR together (``filters`` is a single group)."""
        if self.filter_groups:
            return self.filter_groups
        return [self.filters] if self.filters else []


class SearchStep(StepBase[SearchConfig]):
    """Searches a CRM."""

    type: Literal["search"] = Field(description="Step type.")
    source: Literal["crm"] = Field(default="crm", description="Always crm.")
    connection: str | None = Field(
        default=None, description="Named connection (default: defaults.crm)."
    )
    config: SearchConfig = Field(description="The search.")


class Search(StepType):
    """A search on a CRM connection."""

    name = "search"
    source = "crm"
    model = SearchStep
    connection_category = "crm"

    def validate(self, step: StepBase[Any], ctx: ValidationContext) -> list[str] | None:
        assert isinstance(step, SearchStep)
        ctx.check_connection(step, step.connection, "crm")
        if not step.config.properties:
            return None
        association_columns = [f"{_singular(name)}_id" for name in step.config.associations]
        return ["hs_object_id", *step.config.properties, *association_columns]

    def prepare(
        self, step: StepBase[Any], ctx: StepContext, resolution: ResolutionContext
    ) -> StepRequest:
        assert isinstance(step, SearchStep)
        name = ctx.connection or ""
        crm = ctx.services.crm(name)
        crm.raise_if_unresolved(name)
        retries = ctx.services.retry_attempts
        search = search_request(step, resolution)
        body = crm.describe_request(search)
        timeout = ctx.timeout_seconds
        return StepRequest(
            request=body,
            send=lambda: crm.search(search, timeout_seconds=timeout, retry_attempts=retries),
            fingerprint=request_fingerprint(name, body),
            retries_inside=crm.retries_requests,
        )


def search_request(step: SearchStep, context: ResolutionContext) -> SearchConfig:
    """The search with its references resolved."""
    resolved = resolve(step.config.model_dump(mode="python"), context)
    try:
        return SearchConfig.model_validate(resolved)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise TerminalStepError(
            f"the resolved search is invalid: {first['msg']}", field=f"config.{field}"
        ) from e


def _singular(object_type: str) -> str:
    irregular = {"companies": "company"}
    return irregular.get(object_type, object_type.removesuffix("s"))
