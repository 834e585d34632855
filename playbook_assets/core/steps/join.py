"""The ``join`` step: two step results joined on equal columns, on DuckDB over Arrow."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.expressions import parse_join_on
from playbook_assets.core.models import StrictModel
from playbook_assets.core.steps.base import (
    StepBase,
    TransformPlan,
    TransformStepType,
    ValidationContext,
    step_input,
)
from playbook_assets.core.transforms import LEFT, RIGHT, join_sql, join_tables

JoinType = Literal["inner", "left", "right", "outer"]


class JoinConfig(StrictModel):
    """Configuration of a ``join`` transform."""

    left: str = Field(description="Left input: ${steps.ID}.")
    right: str = Field(description="Right input: ${steps.ID}.")
    on: str = Field(description="Join condition: 'a = b' equalities joined by AND.")
    type: JoinType = Field(default="inner", description="inner, left, right or outer.")


class JoinStep(StepBase[JoinConfig]):
    """Joins two step results."""

    type: Literal["join"] = Field(description="Step type.")
    source: Literal["transform"] = Field(default="transform", description="Always transform.")
    config: JoinConfig = Field(description="The join.")


class Join(TransformStepType):
    """A join of two step results; a right column whose name collides gets ``_right``."""

    name = "join"
    model = JoinStep

    def validate(self, step: StepBase[Any], ctx: ValidationContext) -> list[str] | None:
        assert isinstance(step, JoinStep)
        left = step_input(step.config.left, "left", ctx)
        right = step_input(step.config.right, "right", ctx)
        try:
            parse_join_on(step.config.on)
        except PlaybookError as e:
            raise e.at(location=ctx.where("on"), field="config.on") from None
        left_columns, right_columns = ctx.columns.get(left.name), ctx.columns.get(right.name)
        if left_columns is None or right_columns is None:
            return None
        return [*left_columns, *(c for c in right_columns if c not in left_columns)]

    def transform_plan(self, step: StepBase[Any]) -> TransformPlan:
        assert isinstance(step, JoinStep)
        config = step.config
        return TransformPlan(
            inputs={LEFT: ("left", config.left), RIGHT: ("right", config.right)},
            sql=lambda columns: join_sql(columns[LEFT], columns[RIGHT], config.on, config.type),
            run=lambda tables: join_tables(tables[LEFT], tables[RIGHT], config.on, config.type),
        )
