"""The playbook model: a playbook file as Pydantic models.

Every model rejects unknown keys, so a typo is an error with the file and line instead of a
setting silently ignored. The models check the shape of one playbook; checks that need the
whole playbook (references, cycles, expressions) are in ``core.validation``. The models of the
parts live beside what they describe: ``core.models`` (parameters, metrics, checks, outputs),
``core.steps`` (one module per step type), ``core.operation_specs`` (partitions, schedule,
triggers) and ``core.chart_specs``; their names are importable from here too.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from playbook_assets.core.chart_specs import (
    ChartAggregate,
    ChartFormat,
    ChartSort,
    ChartSpec,
    ChartTimeUnit,
    ChartType,
)
from playbook_assets.core.models import (
    IDENTIFIER_PATTERN,
    PLAYBOOK_ID_PATTERN,
    CheckSpec,
    DataSourceSpec,
    ElementType,
    MetricSpec,
    OutputSpec,
    ParameterSpec,
    ParameterType,
    StrictModel,
    is_identifier,
)
from playbook_assets.core.operation_specs import (
    AssetTrigger,
    DynamicPartitions,
    FileTrigger,
    MultiPartitions,
    PartitionsSpec,
    ScheduleSpec,
    SinglePartitions,
    StaticPartitions,
    TimePartitions,
    TriggerSpec,
)
from playbook_assets.core.steps.aggregate import AggregateConfig, AggregateStep
from playbook_assets.core.steps.api_models import ApiAuth, Pagination
from playbook_assets.core.steps.base import StepBase
from playbook_assets.core.steps.filter import FilterConfig, FilterStep
from playbook_assets.core.steps.graphql import GraphQLConfig, GraphQLStep
from playbook_assets.core.steps.join import JoinConfig, JoinStep, JoinType
from playbook_assets.core.steps.query import QueryConfig, QueryStep
from playbook_assets.core.steps.read import FileConfig, FileStep
from playbook_assets.core.steps.registry import AnyStep, StepSpec
from playbook_assets.core.steps.request import RequestConfig, RequestStep
from playbook_assets.core.steps.search import (
    OPERATORS_WITH_RANGE,
    OPERATORS_WITH_VALUES,
    OPERATORS_WITHOUT_VALUE,
    FilterOperator,
    SearchConfig,
    SearchFilter,
    SearchSort,
    SearchStep,
)

__all__ = [
    "IDENTIFIER_PATTERN",
    "OPERATORS_WITHOUT_VALUE",
    "OPERATORS_WITH_RANGE",
    "OPERATORS_WITH_VALUES",
    "PLAYBOOK_ID_PATTERN",
    "AggregateConfig",
    "AggregateStep",
    "AnyStep",
    "ApiAuth",
    "AssetTrigger",
    "ChartAggregate",
    "ChartFormat",
    "ChartSort",
    "ChartSpec",
    "ChartTimeUnit",
    "ChartType",
    "CheckSpec",
    "DataSourceSpec",
    "DynamicPartitions",
    "ElementType",
    "FileConfig",
    "FileStep",
    "FileTrigger",
    "FilterConfig",
    "FilterOperator",
    "FilterStep",
    "GraphQLConfig",
    "GraphQLStep",
    "JoinConfig",
    "JoinStep",
    "JoinType",
    "MetricSpec",
    "MultiPartitions",
    "OutputSpec",
    "Pagination",
    "ParameterSpec",
    "ParameterType",
    "PartitionsSpec",
    "PlaybookFile",
    "PlaybookSpec",
    "QueryConfig",
    "QueryStep",
    "RequestConfig",
    "RequestStep",
    "ScheduleSpec",
    "SearchConfig",
    "SearchFilter",
    "SearchSort",
    "SearchStep",
    "SinglePartitions",
    "StaticPartitions",
    "StepBase",
    "StepSpec",
    "StrictModel",
    "TimePartitions",
    "TriggerSpec",
    "is_identifier",
]


class PlaybookSpec(StrictModel):
    """One playbook: a named sequence of steps and its outputs."""

    id: str = Field(
        pattern=PLAYBOOK_ID_PATTERN, description="Unique identifier (lower case, digits, _)."
    )
    name: str = Field(description="Human-readable name.")
    description: str = Field(default="", description="What the playbook does.")
    version: str = Field(default="1.0", description="Version of the playbook.")
    data_sources: list[DataSourceSpec] = Field(
        default_factory=list, description="Kinds of source the playbook needs."
    )
    parameters: list[ParameterSpec] = Field(
        default_factory=list, description="User-configurable parameters."
    )
    steps: list[StepSpec] = Field(min_length=1, description="The steps, in any order.")
    outputs: list[OutputSpec] = Field(default_factory=list, description="Final outputs.")
    owners: list[str] = Field(
        default_factory=list, description="Owners shown in Dagster (emails or team:name)."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="Tags carried onto every asset of the playbook."
    )
    partitions: PartitionsSpec | None = Field(
        default=None, description="Partitions of the playbook's assets."
    )
    schedule: ScheduleSpec | None = Field(default=None, description="A schedule.")
    triggers: list[TriggerSpec] = Field(
        default_factory=list, description="Sensors that start runs."
    )
    insights: list[str] = Field(
        default_factory=list,
        description="Sentences with {{name.field | filter}} placeholders over outputs and steps, "
        "e.g. '{{summary.at_risk_deals | int}} deals at risk'.",
    )
    charts: list[ChartSpec] = Field(
        default_factory=list,
        description="Charts of the run report (bar, line, table), each drawn from a step's "
        "result; a grouped aggregate step without one gets a bar chart of its first metric.",
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # `version: 1.0` in YAML is a float; the version is text.
        return str(value) if isinstance(value, int | float) else value

    @property
    def step_ids(self) -> list[str]:
        """Step ids in file order."""
        return [step.id for step in self.steps]

    def step(self, step_id: str) -> AnyStep:
        """The step with this id (the id must exist)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def parameter(self, name: str) -> ParameterSpec | None:
        """The declared parameter with this name, if any."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        return None


class PlaybookFile(StrictModel):
    """The root of a playbook file: a single ``playbook:`` key."""

    playbook: PlaybookSpec = Field(description="The playbook.")
