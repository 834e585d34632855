"""Views, and transforms run on the warehouse their inputs live in.

A query step with ``materialize: view`` keeps its rendered SQL, not its rows: its result is a
table with no rows, the query's columns and, in its schema metadata, the SQL and the
connection (stored and checksummed like any result). A transform (join, aggregate, filter)
whose inputs are all views on one connection is compiled into that warehouse's SQL: its
DuckDB statement (``core.transforms``) is transpiled by sqlglot with each input replaced by
the view's SQL as a subquery, run there, and only its result moves. Its result keeps its own
SQL in the same way, so a transform over it is compiled in turn. Anything else runs locally,
with every view it reads fetched first; the step's metadata says where it ran and why.

The pushed result is cast to the types the local path gives (the local transform run on the
inputs' empty tables says which), so both paths give the same table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.expressions.columns import find_column
from playbook_assets.core.references import ResolutionContext
from playbook_assets.core.steps.base import (
    StepBase,
    StepContext,
    StepRequest,
    StepServices,
    StepType,
    TransformPlan,
    input_tables,
    request_fingerprint,
)

# Schema metadata of a table that stands for a query on a warehouse.
_VIEW_KEY = b"playbook.view"
MATERIALIZED_KEY = "materialized"
RAN_IN_KEY = "ran_in"
# Why a transform ran locally.
LOCAL_REASON_KEY = "ran_locally_because"
# The views a step fetched before it ran locally: {step: rows}.
FETCHED_KEY = "fetched_views"
# What the run report shows of a step's placement, from its metadata.
PLACEMENT_KEYS = (MATERIALIZED_KEY, RAN_IN_KEY, LOCAL_REASON_KEY, FETCHED_KEY)
_ALIASES = {"t": "__playbook_input", "l": "__playbook_left", "r": "__playbook_right"}


@dataclass(frozen=True)
class View:
    """A query on a warehouse connection; ``fetched``: the table holds its rows too."""

    sql: str
    connection: str
    dialect: str
    fetched: bool = False


def as_view(table: pa.Table, view: View) -> pa.Table:
    """``table`` marked as the result of ``view`` (with no rows: a view step's result)."""
    text = json.dumps(
        {
            "sql": view.sql,
            "connection": view.connection,
            "dialect": view.dialect,
            "fetched": view.fetched,
        }
    ).encode()
    marked = table if view.fetched else table.schema.empty_table()
    return marked.replace_schema_metadata({**(table.schema.metadata or {}), _VIEW_KEY: text})


def view_of(table: pa.Table) -> View | None:
    """The query ``table`` stands for, when it is a view's or a pushed-down result."""
    found = (table.schema.metadata or {}).get(_VIEW_KEY)
    if found is None:
        return None
    data = json.loads(found)
    return View(data["sql"], data["connection"], data["dialect"], fetched=data["fetched"])


def is_unfetched_view(table: pa.Table) -> bool:
    """A view's result: its SQL, without its rows."""
    view = view_of(table)
    return view is not None and not view.fetched


def view_request(
    sql: str, connection: str, dialect: str, services: StepServices, timeout: float | None
) -> pa.Table:
    """A view step's result: the query's columns (asked of the warehouse with no rows) and
    its SQL."""
    warehouse = services.warehouse(connection)
    probe = f"SELECT * FROM ({_statement(sql)}) AS playbook_view WHERE 1 = 0"
    columns = warehouse.run_query_with_lists(probe, {}, timeout_seconds=timeout)
    return as_view(columns, View(sql, connection, dialect))


def stored_form(table: pa.Table) -> pa.Table:
    """``table`` as the artifact store keeps it. A view keeps its SQL (that is all it holds);
    a pushed-down result keeps its rows only: read back by a later run, it is those rows, not
    its SQL run again on the warehouse's data of that day."""
    view = view_of(table)
    return _unmarked(table) if view is not None and view.fetched else table


def fetched(table: pa.Table, services: StepServices, timeout: float | None) -> pa.Table:
    """``table``'s rows: a view's are fetched from its warehouse now."""
    view = view_of(table)
    if view is None or view.fetched:
        return table
    warehouse = services.warehouse(view.connection)
    return warehouse.run_query_with_lists(view.sql, {}, timeout_seconds=timeout)


def prepare_step(
    behaviour: StepType, step: StepBase[Any], ctx: StepContext, resolution: ResolutionContext
) -> StepRequest:
    """What a step sends: a transform over views on one connection, compiled and sent to
    that warehouse; any other step with the views it reads fetched first."""
    plan = behaviour.transform_plan(step)
    if plan is not None:
        tables = input_tables(plan, resolution)
        views = {name: view_of(table) for name, table in tables.items()}
        reason = _why_local(plan, views)
        if reason is None:
            try:
                return _pushed(plan, tables, views, ctx)
            except SqlglotError as e:
                reason = f"it cannot be written in the warehouse's SQL ({e})"
    else:
        reason = None
    fetches = {name: table for name, table in resolution.steps.items() if is_unfetched_view(table)}
    steps = {
        name: fetched(table, ctx.services, ctx.timeout_seconds)
        for name, table in resolution.steps.items()
    }
    local = ResolutionContext(
        parameters=resolution.parameters, steps=steps, partition=resolution.partition
    )
    prepared = behaviour.prepare(step, ctx, local)
    metadata: dict[str, Any] = dict(prepared.metadata)
    if fetches:
        metadata[FETCHED_KEY] = {name: steps[name].num_rows for name in fetches}
    send = prepared.send
    if plan is not None:
        metadata[RAN_IN_KEY] = "local"
        metadata[LOCAL_REASON_KEY] = reason
        # A filter keeps its input's schema, marker included: a later transform must not
        # take the input's SQL for the filter's.
        send = lambda: _unmarked(prepared.send())  # noqa: E731
    return StepRequest(
        prepared.request,
        send,
        prepared.fingerprint,
        metadata,
        retries_inside=prepared.retries_inside,
    )


def _unmarked(table: pa.Table) -> pa.Table:
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != _VIEW_KEY}
    return table.replace_schema_metadata(metadata or None)


def _why_local(plan: TransformPlan, views: Mapping[str, View | None]) -> str | None:
    """Why a transform cannot run on a warehouse (None: it can)."""
    for name, (field_name, reference) in plan.inputs.items():
        if views[name] is None:
            return f"its {field_name} {reference} is not a view (materialize: view)"
    connections = sorted({view.connection for view in views.values() if view is not None})
    if len(connections) > 1:
        return f"its inputs are on different connections ({', '.join(connections)})"
    return None


def _pushed(
    plan: TransformPlan,
    tables: Mapping[str, pa.Table],
    views: Mapping[str, View | None],
    ctx: StepContext,
) -> StepRequest:
    known = {name: view for name, view in views.items() if view is not None}
    first = next(iter(known.values()))
    columns = {name: table.column_names for name, table in tables.items()}
    sql = compile_transform(
        plan.sql(columns), columns, {name: view.sql for name, view in known.items()}, first.dialect
    )
    # The local transform over no rows gives the result's columns and types.
    expected = plan.run({name: table.schema.empty_table() for name, table in tables.items()})
    warehouse = ctx.services.warehouse(first.connection)
    timeout = ctx.timeout_seconds

    def send() -> pa.Table:
        result = warehouse.run_query_with_lists(sql, {}, timeout_seconds=timeout)
        view = View(sql, first.connection, first.dialect, fetched=True)
        return as_view(_as_local(result, expected.schema), view)

    return StepRequest(
        request=sql,
        send=send,
        fingerprint=request_fingerprint(first.connection, sql),
        metadata={RAN_IN_KEY: f"warehouse {first.connection}"},
    )


def compile_transform(
    duckdb_sql: str,
    columns: Mapping[str, Sequence[str]],
    views: Mapping[str, str],
    dialect: str,
) -> str:
    """A transform's DuckDB statement in ``dialect``, each input read from its view's SQL.

    Columns are named as the warehouse names them (an expression may write ``arr`` for
    Snowflake's ``ARR``: DuckDB matches case-insensitively, a quoted name elsewhere does not).
    Raises ``SqlglotError`` when the statement has no equivalent in ``dialect``.
    """
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    _without_aggregate_filters(tree)
    for column in tree.find_all(exp.Column):
        available = columns.get(_ALIASES.get(column.table, ""), ())
        found = find_column(column.name, available)
        if found is not None:
            column.set("this", exp.to_identifier(found, quoted=True))
    text = tree.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE, identify=True)
    for name, view_sql in views.items():
        placeholder = exp.to_identifier(name, quoted=True).sql(dialect=dialect)
        text = text.replace(placeholder, f"({_statement(view_sql)})")
    return text


def _without_aggregate_filters(tree: exp.Expr) -> None:
    """``AGG(x) FILTER (WHERE c)`` as ``AGG(CASE WHEN c THEN x END)``: the same in every
    dialect, where a dialect's own form differs at the edges (DuckDB's ``COUNT_IF`` of only
    NULLs is NULL; BigQuery's ``COUNTIF`` and Snowflake's ``COUNT_IF`` are 0)."""
    for node in list(tree.find_all(exp.Filter)):
        aggregate, where = node.this, node.expression
        argument = aggregate.this
        if isinstance(argument, exp.Distinct) or not isinstance(where, exp.Where):
            continue
        value = (
            exp.Literal.number(1)
            if argument is None or isinstance(argument, exp.Star)
            else argument
        )
        rewritten = aggregate.copy()
        rewritten.set("this", exp.Case(ifs=[exp.If(this=where.this.copy(), true=value.copy())]))
        node.replace(rewritten)


def _statement(sql: str) -> str:
    """The query as a subquery can hold it: no final semicolon."""
    return sql.strip().rstrip(";").strip()


def _as_local(result: pa.Table, schema: pa.Schema) -> pa.Table:
    """The warehouse's result with the column names and types the local path gives."""
    if len(result.column_names) != len(schema.names):
        raise TerminalStepError(
            f"the warehouse returned columns {result.column_names}, expected {schema.names}"
        )
    columns = []
    try:
        for column, field in zip(result.columns, schema, strict=True):
            exact = column
            if pa.types.is_floating(column.type) and pa.types.is_decimal(field.type):
                # A warehouse that sums decimals in floating point (fakesnow does; Snowflake
                # documents NUMBER(38, s)): the exact value has the decimal's scale.
                exact = pc.call_function("round", [column], pc.RoundOptions(field.type.scale))
            columns.append(exact.cast(field.type))
        return pa.Table.from_arrays(columns, schema=schema.remove_metadata())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise TerminalStepError(
            f"the warehouse's result ({_types(result.schema)}) does not fit the types of the "
            f"local transform ({_types(schema)}): {e}",
            hint="set 'materialize: table' on the steps it reads to run it locally",
        ) from e


def _types(schema: pa.Schema) -> str:
    return ", ".join(f"{field.name} {field.type}" for field in schema)
