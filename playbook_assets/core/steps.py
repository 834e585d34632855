"""Running one step: render its request from parameters and upstream results, execute it.

Nothing here knows about Dagster; the factory wraps these functions in assets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.references import (
    Reference,
    ResolutionContext,
    find_references,
    resolve,
    whole_reference,
)
from playbook_assets.core.spec import (
    AggregateStep,
    FilterStep,
    JoinStep,
    PlaybookSpec,
    QueryStep,
    SearchConfig,
    SearchStep,
)
from playbook_assets.core.sql import (
    LIST_BINDING_THRESHOLD,
    RenderedSql,
    SqlCode,
    SqlIdentifier,
    SqlValue,
    TemplateValue,
    placeholders,
    render_sql_binding,
)
from playbook_assets.core.transforms import aggregate_table, filter_table, join_tables


@dataclass(frozen=True)
class StepResult:
    """A step's result table and the request that produced it (SQL or search body)."""

    table: pa.Table
    request: str | dict[str, Any] | None = None


def sql_values(
    step: QueryStep, playbook: PlaybookSpec, context: ResolutionContext
) -> dict[str, TemplateValue]:
    """How each placeholder of a query is filled.

    A value written in the YAML is code; a value from a reference arrives at run time and is
    rendered as a literal, or as a checked identifier for ``type: identifier`` parameters. A
    placeholder without an entry in ``config.parameters`` takes the playbook parameter of the
    same name.
    """
    values: dict[str, TemplateValue] = {}
    for name in placeholders(step.config.template):
        raw = step.config.parameters.get(name, f"${{parameters.{name}}}")
        if not isinstance(raw, str) or not find_references(raw):
            values[name] = SqlCode(raw)
            continue
        resolved = resolve(raw, context)
        reference = whole_reference(raw)
        declared = playbook.parameter(reference.name) if reference is not None else None
        if (
            reference is not None
            and reference.kind == "parameters"
            and declared is not None
            and declared.type == "identifier"
        ):
            values[name] = SqlIdentifier(resolved)
        else:
            values[name] = SqlValue(resolved, element_type=_element_type(reference, context))
    return values


def _element_type(reference: Reference | None, context: ResolutionContext) -> str | None:
    """The SQL type of a ``${steps.ID.COLUMN}`` list, so an empty list still types its IN."""
    if reference is None or reference.kind != "steps" or reference.column is None:
        return None
    table = context.steps.get(reference.name)
    if table is None or reference.column not in table.column_names:
        return None
    arrow_type = table.schema.field(reference.column).type
    if pa.types.is_integer(arrow_type):
        return "BIGINT"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "DOUBLE"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "VARCHAR"
    return None


def render_query(
    step: QueryStep,
    playbook: PlaybookSpec,
    context: ResolutionContext,
    dialect: str,
    *,
    allow_writes: bool = False,
    bind_lists: bool = False,
) -> RenderedSql:
    """The SQL a query step sends, with run-time values rendered safely for ``dialect``; with
    ``bind_lists``, long ``IN`` lists travel as tables (``sql.render_sql_binding``)."""
    values = sql_values(step, playbook, context)
    return render_sql_binding(
        step.config.template,
        values,
        dialect,
        read_only=not allow_writes,
        bind_lists_over=LIST_BINDING_THRESHOLD if bind_lists else None,
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


def run_transform_step(
    step: JoinStep | AggregateStep | FilterStep, context: ResolutionContext
) -> StepResult:
    """Run a join, aggregate or filter on its upstream results."""
    if isinstance(step, JoinStep):
        left = _table(resolve(step.config.left, context), "left")
        right = _table(resolve(step.config.right, context), "right")
        table = join_tables(left, right, step.config.on, step.config.type)
        return StepResult(table=table)
    if isinstance(step, AggregateStep):
        source = _table(resolve(step.config.input, context), "input")
        metrics = [(metric.name, metric.expression) for metric in step.config.metrics]
        return StepResult(table=aggregate_table(source, step.config.group_by, metrics))
    source = _table(resolve(step.config.input, context), "input")
    return StepResult(table=filter_table(source, step.config.condition))


def _table(value: Mapping[str, Any] | pa.Table | Any, field: str) -> pa.Table:
    if not isinstance(value, pa.Table):
        raise TerminalStepError(f"'{field}' must be a step result (${{steps.ID}})", field=field)
    return value
