"""The ``query`` step: a SQL template run on a data warehouse.

A value written in the YAML is SQL code; a value that arrives at run time (a parameter, a
step result, a partition) is rendered as a literal of the warehouse's dialect, or checked as
an identifier for a ``type: identifier`` parameter (``core.sql``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field

from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint
from playbook_assets.core.models import ParameterSpec, StrictModel
from playbook_assets.core.pushdown import MATERIALIZED_KEY, view_request
from playbook_assets.core.references import (
    Reference,
    ResolutionContext,
    find_references,
    resolve,
    whole_reference,
)
from playbook_assets.core.sql import (
    LIST_BINDING_THRESHOLD,
    RenderedSql,
    SqlCode,
    SqlIdentifier,
    SqlTemplateError,
    SqlValue,
    TemplateValue,
    placeholders,
    render_sql_binding,
)
from playbook_assets.core.steps.base import (
    StepBase,
    StepContext,
    StepRequest,
    StepType,
    ValidationContext,
    request_fingerprint,
)

# Lists a query read as tables rather than literals: {relation: number of values}.
BOUND_LISTS_KEY = "bound_lists"


class QueryConfig(StrictModel):
    """Configuration of a warehouse ``query`` step."""

    template: str = Field(description="SQL with {{name}} placeholders.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Values of the placeholders: literal YAML values are SQL code; "
        "${...} references are rendered as safe literals.",
    )


class QueryStep(StepBase[QueryConfig]):
    """Runs a SQL query on a data warehouse."""

    type: Literal["query"] = Field(description="Step type.")
    source: Literal["data_warehouse"] = Field(
        default="data_warehouse", description="Always data_warehouse."
    )
    connection: str | None = Field(
        default=None, description="Named connection (default: defaults.data_warehouse)."
    )
    config: QueryConfig = Field(description="The query.")


class Query(StepType):
    """A SQL query on a warehouse connection."""

    name = "query"
    source = "data_warehouse"
    model = QueryStep
    connection_category = "data_warehouse"

    def validate(self, step: StepBase[Any], ctx: ValidationContext) -> list[str] | None:
        assert isinstance(step, QueryStep)
        ctx.check_connection(step, step.connection, "data_warehouse")
        try:
            names = placeholders(step.config.template)
        except SqlTemplateError as e:
            raise e.at(location=ctx.where("template"), field="config.template") from None
        declared = {parameter.name for parameter in ctx.loaded.spec.parameters}
        for name in names:
            if name not in step.config.parameters and name not in declared:
                raise PlaybookValidationError(
                    f"placeholder '{{{{{name}}}}}' has no value",
                    location=ctx.where("template"),
                    field="config.template",
                    hint=(
                        f"add '{name}' under config.parameters; "
                        + unknown_name_hint(name, [*step.config.parameters, *declared], "name")
                    ),
                )
        for name in step.config.parameters:
            if name not in names:
                raise PlaybookValidationError(
                    f"parameter '{name}' is not used by the template",
                    location=ctx.where("parameters", name),
                    field=f"config.parameters.{name}",
                    hint=unknown_name_hint(name, names, "placeholder")
                    if names
                    else "the template has no {{placeholders}}",
                )
        return None

    def prepare(
        self, step: StepBase[Any], ctx: StepContext, resolution: ResolutionContext
    ) -> StepRequest:
        assert isinstance(step, QueryStep)
        name = ctx.connection or ""
        warehouse = ctx.services.warehouse(name)
        warehouse.raise_if_unresolved(name)
        view = step.materialize == "view"
        rendered = render_query(
            step,
            ctx.loaded.spec.parameters,
            resolution,
            warehouse.dialect,
            # A view's SQL is read inside other statements: one query, its lists as literals.
            allow_writes=warehouse.allow_writes and not view,
            bind_lists=warehouse.binds_lists and not view,
        )
        lists = rendered.lists
        timeout = ctx.timeout_seconds
        if view:
            return StepRequest(
                request=rendered.sql,
                send=lambda: view_request(
                    rendered.sql, name, warehouse.dialect, ctx.services, timeout
                ),
                fingerprint=request_fingerprint(name, rendered.sql),
                metadata={MATERIALIZED_KEY: "view"},
            )
        asked: Any = {"sql": rendered.sql, "lists": lists} if lists else rendered.sql
        return StepRequest(
            request=rendered.sql,
            send=lambda: warehouse.run_query_with_lists(
                rendered.sql, lists, timeout_seconds=timeout
            ),
            fingerprint=request_fingerprint(name, asked),
            metadata={BOUND_LISTS_KEY: {key: len(v) for key, v in lists.items()}} if lists else {},
        )


def sql_values(
    step: QueryStep, parameters: Sequence[ParameterSpec], context: ResolutionContext
) -> dict[str, TemplateValue]:
    """How each placeholder of a query is filled.

    A value written in the YAML is code; a value from a reference arrives at run time and is
    rendered as a literal, or as a checked identifier for ``type: identifier`` parameters. A
    placeholder without an entry in ``config.parameters`` takes the playbook parameter of the
    same name.
    """
    identifiers = {p.name for p in parameters if p.type == "identifier"}
    values: dict[str, TemplateValue] = {}
    for name in placeholders(step.config.template):
        raw = step.config.parameters.get(name, f"${{parameters.{name}}}")
        if not isinstance(raw, str) or not find_references(raw):
            values[name] = SqlCode(raw)
            continue
        resolved = resolve(raw, context)
        reference = whole_reference(raw)
        if (
            reference is not None
            and reference.kind == "parameters"
            and reference.name in identifiers
        ):
            values[name] = SqlIdentifier(resolved)
        else:
            values[name] = SqlValue(resolved, element_type=_element_type(reference, context))
    return values


_SQL_TYPES = (
    (pa.types.is_integer, "BIGINT"),
    (pa.types.is_floating, "DOUBLE"),
    (pa.types.is_decimal, "DOUBLE"),
    (pa.types.is_date, "DATE"),
    (pa.types.is_timestamp, "TIMESTAMP"),
    (pa.types.is_boolean, "BOOLEAN"),
    (pa.types.is_string, "VARCHAR"),
    (pa.types.is_large_string, "VARCHAR"),
)


def _element_type(reference: Reference | None, context: ResolutionContext) -> str | None:
    """The SQL type of a ``${steps.ID.COLUMN}`` list, so an empty list still types its IN."""
    if reference is None or reference.kind != "steps" or reference.column is None:
        return None
    table = context.steps.get(reference.name)
    if table is None or reference.column not in table.column_names:
        return None
    arrow_type = table.schema.field(reference.column).type
    return next((sql for test, sql in _SQL_TYPES if test(arrow_type)), None)


def render_query(
    step: QueryStep,
    parameters: Sequence[ParameterSpec],
    context: ResolutionContext,
    dialect: str,
    *,
    allow_writes: bool = False,
    bind_lists: bool = False,
) -> RenderedSql:
    """The SQL a query step sends, with run-time values rendered safely for ``dialect``
    (``parameters``: the playbook's declared parameters); with ``bind_lists``, long ``IN``
    lists travel as tables (``sql.render_sql_binding``)."""
    values = sql_values(step, parameters, context)
    return render_sql_binding(
        step.config.template,
        values,
        dialect,
        read_only=not allow_writes,
        bind_lists_over=LIST_BINDING_THRESHOLD if bind_lists else None,
    )
