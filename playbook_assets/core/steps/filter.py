"""The ``filter`` step: the rows of a step result that satisfy a condition."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.expressions import check_columns, parse_condition
from playbook_assets.core.models import StrictModel
from playbook_assets.core.references import ResolutionContext, resolve
from playbook_assets.core.steps.base import (
    StepBase,
    StepContext,
    StepRequest,
    StepType,
    ValidationContext,
    input_table,
    step_input,
)
from playbook_assets.core.transforms import filter_table


class FilterConfig(StrictModel):
    """Configuration of a ``filter`` transform."""

    input: str = Field(description="Input: ${steps.ID}.")
    condition: str = Field(description="Boolean expression rows must satisfy.")


class FilterStep(StepBase[FilterConfig]):
    """Filters a step result."""

    type: Literal["filter"] = Field(description="Step type.")
    source: Literal["transform"] = Field(default="transform", description="Always transform.")
    config: FilterConfig = Field(description="The filter.")


class Filter(StepType):
    """The rows of a step result for which the condition is true (NULL drops the row)."""

    name = "filter"
    source = "transform"
    model = FilterStep
    transform = True

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

    def prepare(
        self, step: StepBase[Any], ctx: StepContext, resolution: ResolutionContext
    ) -> StepRequest:
        assert isinstance(step, FilterStep)

        def send() -> Any:
            source = input_table(resolve(step.config.input, resolution), "input")
            return filter_table(source, step.config.condition)

        return StepRequest(request=None, send=send, fingerprint=None)
