"""The ``filter`` step: the rows of a step result that satisfy a condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.expressions import check_columns, parse_condition, quote_identifier
from playbook_assets.core.models import StrictModel
from playbook_assets.core.steps.base import (
    StepBase,
    TransformPlan,
    TransformStepType,
    ValidationContext,
    step_input,
)
from playbook_assets.core.transforms import INPUT, filter_sql, filter_table


class FilterConfig(StrictModel):
    """Configuration of a ``filter`` transform."""

    input: str = Field(description="Input: ${steps.ID}.")
    condition: str = Field(description="Boolean expression rows must satisfy.")


class FilterStep(StepBase[FilterConfig]):
    """Filters a step result."""

    type: Literal["filter"] = Field(description="Step type.")
    source: Literal["transform"] = Field(default="transform", description="Always transform.")
    config: FilterConfig = Field(description="The filter.")


class Filter(TransformStepType):
    """The rows of a step result for which the condition is true (NULL drops the row)."""

    name = "filter"
    model = FilterStep

    def validate(self, step: StepBase[Any], ctx: ValidationContext) -> list[str] | None:
        assert isinstance(step, FilterStep)
        reference = step_input(step.config.input, "input", ctx)
        known = ctx.columns.get(reference.name)
        try:
            parsed = parse_condition(step.config.condition)
            if known is not None:
                check_columns(parsed, known, f"input '{reference.name}'")
        except PlaybookError as e:
            raise e.at(location=ctx.where("condition"), field="config.condition") from None
        return known

    def transform_plan(self, step: StepBase[Any]) -> TransformPlan:
        assert isinstance(step, FilterStep)
        condition = parse_condition(step.config.condition)

        def sql(columns: Mapping[str, Sequence[str]]) -> str:
            keep, _ = filter_sql(columns[INPUT], condition)
            return (
                f"SELECT * FROM {quote_identifier(INPUT)} AS {quote_identifier('t')} WHERE {keep}"
            )

        return TransformPlan(
            inputs={INPUT: ("input", step.config.input)},
            sql=sql,
            run=lambda tables: filter_table(tables[INPUT], condition),
        )
