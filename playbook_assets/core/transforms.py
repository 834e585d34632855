"""The three transforms (join, aggregate, filter) on an in-memory DuckDB over Arrow.

Each call opens an in-memory DuckDB connection that can open no file, registers the input
tables (a zero-copy Arrow scan), runs one generated statement and returns a ``pa.Table`` from
``to_arrow_table()``; the connection is closed before returning. DuckDB runs with its default
of one thread per available core and spills to its temporary directory when a result does not
fit in memory.

The SQL is generated from parsed expressions (``playbook_assets.core.expressions``), never from
playbook text: table names are fixed, columns are quoted, and expressions are rendered from
their validated syntax tree.

Semantics are DuckDB's: join keys that are NULL match nothing; ``/`` is floating-point division
and ``//`` integer division; SUM of integers is HUGEINT, which Arrow receives as
``decimal128(38, 0)``; AVG is DOUBLE; COUNT is BIGINT. Join and aggregate results carry the
Arrow types DuckDB exports (e.g. ``large_string`` comes back as ``string``); filter keeps the
input schema exactly. Unknown columns raise ``ExpressionError`` (a validation error) before
anything runs; a failure inside DuckDB (a type error, a bad cast) raises ``TerminalStepError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal, get_args

import duckdb
import pyarrow as pa

from playbook_assets.core.errors import TerminalStepError, unknown_name_hint
from playbook_assets.core.expressions import (
    ExpressionError,
    ParsedExpression,
    ParsedJoinOn,
    check_columns,
    parse_condition,
    parse_join_on,
    parse_metric,
    quote_identifier,
    resolve_column,
)
from playbook_assets.core.file_access import scratch_connection

__all__ = [
    "INPUT",
    "LEFT",
    "RIGHT",
    "JoinHow",
    "aggregate_sql",
    "aggregate_table",
    "filter_sql",
    "filter_table",
    "join_sql",
    "join_tables",
]

JoinHow = Literal["inner", "left", "right", "outer"]

_JOIN_SQL: Mapping[str, str] = {
    "inner": "INNER JOIN",
    "left": "LEFT JOIN",
    "right": "RIGHT JOIN",
    "outer": "FULL OUTER JOIN",
}
# The names the inputs are read under in the generated SQL.
INPUT, LEFT, RIGHT = "__playbook_input", "__playbook_left", "__playbook_right"
_T, _L, _R = quote_identifier("t"), quote_identifier("l"), quote_identifier("r")
RIGHT_SUFFIX = "_right"


@contextmanager
def _duckdb(tables: Mapping[str, pa.Table]) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection with ``tables`` registered as views over the Arrow data."""
    # The session reads only the registered tables: no file at all (the scratch database keeps
    # insertion order, which the filter relies on).
    with scratch_connection() as con:
        for name, table in tables.items():
            try:
                con.register(name, table)
            except duckdb.Error as e:
                raise TerminalStepError(
                    f"DuckDB cannot read the input table: {e}",
                    hint="the input needs at least one column of a type DuckDB supports",
                ) from e
        yield con


def _narrow(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """Only the columns an expression reads (zero-copy), so DuckDB never sees the others."""
    names = list(dict.fromkeys(columns))
    if names:
        return table.select(names)
    # DuckDB needs at least one column to see the rows (COUNT(*), a constant condition).
    return table.select([0]) if table.num_columns else table


def _run(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> pa.Table:
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise TerminalStepError(
            f"{what} failed in DuckDB: {e}",
            hint="check the column types the expression uses (e.g. compare numbers with numbers,"
            " CAST text first)",
        ) from e


def _qualified(alias: str, column: str) -> str:
    return f"{alias}.{quote_identifier(column)}"


def _right_output_names(left_names: Sequence[str], right_names: Sequence[str]) -> list[str]:
    """Right column names after collision handling: ``x`` -> ``x_right``, ``x_right_2``, ...

    Names collide case-insensitively (DuckDB identifiers do); a right column that does not
    collide keeps its name and is never taken by a suffixed one.
    """
    left_lower = {name.lower() for name in left_names}
    taken = left_lower | {name.lower() for name in right_names}
    output: list[str] = []
    for name in right_names:
        if name.lower() not in left_lower:
            output.append(name)
            continue
        candidate, n = f"{name}{RIGHT_SUFFIX}", 2
        while candidate.lower() in taken:
            candidate, n = f"{name}{RIGHT_SUFFIX}_{n}", n + 1
        taken.add(candidate.lower())
        output.append(candidate)
    return output


def join_tables(
    left: pa.Table,
    right: pa.Table,
    on: str | ParsedJoinOn,
    how: JoinHow | str = "inner",
) -> pa.Table:
    """Join two tables on column equalities (``"company_id = account_id"``).

    ``how`` is ``inner``, ``left``, ``right`` or ``outer``. The result has every left column
    under its own name, then the right columns; a right column whose name collides with a left
    one gets the suffix ``_right`` (``_right_2``, ... if that is taken too). A key compared with
    the same name on both sides (``account_id = account_id``) appears once, in the left
    position: the left value for inner/left joins, the right value for right joins and
    ``COALESCE(left, right)`` for outer joins. NULL keys match nothing (SQL semantics). Row
    order is not specified.
    """
    parsed = on if isinstance(on, ParsedJoinOn) else parse_join_on(on)
    sql = join_sql(left.column_names, right.column_names, parsed, how)
    with _duckdb({LEFT: left, RIGHT: right}) as con:
        return _run(con, sql, f"join on '{parsed.text}'")


def join_sql(
    left_names: Sequence[str],
    right_names: Sequence[str],
    on: str | ParsedJoinOn,
    how: JoinHow | str = "inner",
) -> str:
    """The DuckDB statement of ``join_tables`` over inputs named ``LEFT`` and ``RIGHT`` with
    these columns."""
    if how not in _JOIN_SQL:
        raise ExpressionError(
            f"unknown join type '{how}'",
            hint=unknown_name_hint(str(how), get_args(JoinHow), "join type"),
        )
    parsed = on if isinstance(on, ParsedJoinOn) else parse_join_on(on)
    keys = parsed.resolve(left_names, right_names)
    # Same-named keys: left column name -> right column name, merged into one output column.
    merged = {key.left: key.right for key in keys if key.left.lower() == key.right.lower()}
    right_kept = [name for name in right_names if name not in merged.values()]

    select: list[str] = []
    for name in left_names:
        if name in merged and how == "right":
            value = _qualified(_R, merged[name])
        elif name in merged and how == "outer":
            value = f"COALESCE({_qualified(_L, name)}, {_qualified(_R, merged[name])})"
        else:
            value = _qualified(_L, name)
        select.append(f"{value} AS {quote_identifier(name)}")
    for name, output in zip(right_kept, _right_output_names(left_names, right_kept), strict=True):
        select.append(f"{_qualified(_R, name)} AS {quote_identifier(output)}")

    condition = " AND ".join(
        f"{_qualified(_L, key.left)} = {_qualified(_R, key.right)}" for key in keys
    )
    return (
        f"SELECT {', '.join(select)} FROM {quote_identifier(LEFT)} AS {_L} "
        f"{_JOIN_SQL[how]} {quote_identifier(RIGHT)} AS {_R} ON {condition}"
    )


def aggregate_table(
    table: pa.Table,
    group_by: Sequence[str],
    metrics: Sequence[tuple[str, str | ParsedExpression]],
) -> pa.Table:
    """One row per distinct ``group_by`` combination with each named metric.

    ``metrics`` is ``(name, expression)`` pairs such as ``("total_arr", "SUM(arr)")`` or
    ``("at_risk", "COUNT(*) WHERE health_status = 'At-Risk'")``. The result has the group
    columns first, then the metrics in order, sorted by the group columns (NULLs last). With no
    ``group_by`` the result is exactly one row, even for an empty input (COUNT is 0, SUM NULL).
    """
    sql, used = aggregate_sql(table.column_names, group_by, metrics)
    with _duckdb({INPUT: _narrow(table, used)}) as con:
        return _run(con, sql, "aggregate")


def aggregate_sql(
    columns: Sequence[str],
    group_by: Sequence[str],
    metrics: Sequence[tuple[str, str | ParsedExpression]],
) -> tuple[str, list[str]]:
    """The DuckDB statement of ``aggregate_table`` over an input named ``INPUT`` with these
    columns, and the columns it reads."""
    groups = [resolve_column(name, columns, "aggregate group_by") for name in group_by]
    if not groups and not metrics:
        raise ExpressionError(
            "aggregate needs at least one metric or group_by column",
            hint="add a metric such as {name: count, expression: 'COUNT(*)'}",
        )
    seen: dict[str, str] = {}
    for name in groups:
        if name.lower() in seen:
            raise ExpressionError(
                f"group_by lists column '{name}' twice", hint="list each column once"
            )
        seen[name.lower()] = "group_by column"

    select = [_qualified(_T, name) for name in groups]
    used = list(groups)
    for name, expression in metrics:
        if not isinstance(name, str) or not name.strip():
            raise ExpressionError(
                f"metric name {name!r} is not a name", hint="give every metric a 'name'"
            )
        if name.lower() in seen:
            raise ExpressionError(
                f"metric name '{name}' is already used by a {seen[name.lower()]}",
                hint="give every metric and group_by column a distinct name "
                "(names are case-insensitive)",
            )
        seen[name.lower()] = "metric"
        parsed = _as_metric(expression)
        check_columns(parsed, columns, f"metric '{name}'")
        used.extend(resolve_column(col, columns, name) for col in sorted(parsed.columns))
        select.append(f"{parsed.sql(qualifier='t')} AS {quote_identifier(name)}")

    sql = f"SELECT {', '.join(select)} FROM {quote_identifier(INPUT)} AS {_T}"
    if groups:
        sql += " GROUP BY " + ", ".join(_qualified(_T, name) for name in groups)
        # Positional ORDER BY: never confused with a metric alias.
        sql += " ORDER BY " + ", ".join(f"{i} ASC NULLS LAST" for i in range(1, len(groups) + 1))
    return sql, used


def _as_metric(expression: str | ParsedExpression) -> ParsedExpression:
    if isinstance(expression, ParsedExpression):
        if expression.kind != "metric":
            raise ExpressionError(
                f"'{expression.text}' was parsed as a {expression.kind}, not a metric",
                hint="parse it with parse_metric",
            )
        return expression
    return parse_metric(expression)


def filter_table(table: pa.Table, condition: str | ParsedExpression) -> pa.Table:
    """The rows of ``table`` for which ``condition`` is true, in their original order.

    A row whose condition is NULL (e.g. ``arr > 5`` with ``arr`` NULL) is dropped, as in SQL.
    DuckDB evaluates the condition to a boolean mask (order preserved) and Arrow applies it,
    so the result has exactly the input schema.
    """
    if isinstance(condition, ParsedExpression):
        if condition.kind != "condition":
            raise ExpressionError(
                f"'{condition.text}' was parsed as a {condition.kind}, not a condition",
                hint="parse it with parse_condition",
            )
        parsed = condition
    else:
        parsed = parse_condition(condition)
    keep, used = filter_sql(table.column_names, parsed)
    sql = f"SELECT {keep} AS keep FROM {quote_identifier(INPUT)} AS {_T}"
    with _duckdb({INPUT: _narrow(table, used)}) as con:
        mask = _run(con, sql, f"filter '{parsed.text}'").column(0)
    if not pa.types.is_boolean(mask.type):
        raise TerminalStepError(
            f"filter condition '{parsed.text}' gives values of type {mask.type}, not true/false",
            hint="write a comparison, e.g. 'is_active = 1' or 'arr > 0'",
        )
    if len(mask) != table.num_rows:  # pragma: no cover - DuckDB guarantees one value per row
        raise TerminalStepError(
            f"filter '{parsed.text}' produced {len(mask)} values for {table.num_rows} rows"
        )
    return table.filter(mask, null_selection_behavior="drop")


def filter_sql(columns: Sequence[str], condition: ParsedExpression) -> tuple[str, list[str]]:
    """The condition of ``filter_table`` as DuckDB SQL over the input aliased ``t`` with
    these columns, and the columns it reads."""
    check_columns(condition, columns, "filter condition")
    used = [resolve_column(col, columns, "filter") for col in sorted(condition.columns)]
    return condition.sql(qualifier="t"), used
