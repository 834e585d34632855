"""The ``aggregate`` step: metrics of a step result, grouped, on DuckDB over Arrow."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from playbook_assets.core.errors import PlaybookError, PlaybookValidationError, unknown_name_hint
from playbook_assets.core.expressions import check_columns, parse_metric
from playbook_assets.core.models import MetricSpec, StrictModel
from playbook_assets.core.steps.base import (
    StepBase,
    TransformPlan,
    TransformStepType,
    ValidationContext,
    step_input,
)
from playbook_assets.core.transforms import INPUT, aggregate_sql, aggregate_table


class AggregateConfig(StrictModel):
    """Configuration of an ``aggregate`` transform."""

    input: str = Field(description="Input: ${steps.ID}.")
    group_by: list[str] = Field(default_factory=list, description="Columns to group by.")
    metrics: list[MetricSpec] = Field(min_length=1, description="Aggregates to compute.")


class AggregateStep(StepBase[AggregateConfig]):
    """Aggregates a step result."""

    type: Literal["aggregate"] = Field(description="Step type.")
    source: Literal["transform"] = Field(default="transform", description="Always transform.")
    config: AggregateConfig = Field(description="The aggregation.")


class Aggregate(TransformStepType):
    """Metrics (``SUM(arr)``, ``COUNT(*) WHERE ...``) of a step result by its group columns."""

    name = "aggregate"
    model = AggregateStep

    def validate(self, step: StepBase[Any], ctx: ValidationContext) -> list[str] | None:
        assert isinstance(step, AggregateStep)
        reference = step_input(step.config.input, "input", ctx)
        known = ctx.columns.get(reference.name)
        for group_index, group in enumerate(step.config.group_by):
            if known is not None and group not in known:
                raise PlaybookValidationError(
                    f"unknown column '{group}' in group_by",
                    location=ctx.where("group_by", group_index),
                    field="config.group_by",
                    hint=unknown_name_hint(group, known, "column"),
                )
        for metric_index, metric in enumerate(step.config.metrics):
            try:
                parsed = parse_metric(metric.expression)
                if known is not None:
                    check_columns(parsed, known, f"input '{reference.name}'")
            except PlaybookError as e:
                raise e.at(
                    location=ctx.where("metrics", metric_index, "expression"),
                    field=f"config.metrics.{metric.name}",
                ) from None
        return [*step.config.group_by, *(metric.name for metric in step.config.metrics)]

    def transform_plan(self, step: StepBase[Any]) -> TransformPlan:
        assert isinstance(step, AggregateStep)
        config = step.config
        metrics = [(metric.name, metric.expression) for metric in config.metrics]
        return TransformPlan(
            inputs={INPUT: ("input", config.input)},
            sql=lambda columns: aggregate_sql(columns[INPUT], config.group_by, metrics)[0],
            run=lambda tables: aggregate_table(tables[INPUT], config.group_by, metrics),
        )
