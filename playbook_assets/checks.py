"""Data quality checks on step and output results, as Dagster asset checks.

A check runs inside the step that produced the table (no second read of the data) and its
result is recorded as an asset check evaluation; a blocking check that fails stops the
downstream steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
import pyarrow as pa

from playbook_assets.errors import PlaybookError
from playbook_assets.expressions import quote_identifier, resolve_column
from playbook_assets.file_access import confined_connection
from playbook_assets.spec import CheckSpec
from playbook_assets.sql import sql_literal
from playbook_assets.transforms import aggregate_table


def check_specs(key: dg.AssetKey, checks: Sequence[CheckSpec]) -> list[dg.AssetCheckSpec]:
    """The Dagster check specs of an asset."""
    return [
        dg.AssetCheckSpec(
            name=check.check_name,
            asset=key,
            description=describe(check),
            blocking=check.blocking,
        )
        for check in checks
    ]


def describe(check: CheckSpec) -> str:
    """What a check requires, in words."""
    if check.type == "row_count":
        bounds = []
        if check.min is not None:
            bounds.append(f"at least {check.min}")
        if check.max is not None:
            bounds.append(f"at most {check.max}")
        return f"{' and '.join(bounds)} rows"
    if check.type == "not_null":
        return f"no null in {', '.join(check.columns)}"
    if check.type == "unique":
        return f"{', '.join(check.columns)} unique"
    if check.type == "accepted_values":
        return f"{check.column} in {check.values}"
    return f"{check.expression}"


def evaluate(check: CheckSpec, table: pa.Table, key: dg.AssetKey) -> dg.AssetCheckResult:
    """Run one check on the result table of the asset ``key``."""
    severity = (
        dg.AssetCheckSeverity.ERROR if check.severity == "error" else (dg.AssetCheckSeverity.WARN)
    )
    try:
        passed, observed = _evaluate(check, table)
    except PlaybookError as e:
        return dg.AssetCheckResult(
            asset_key=key,
            check_name=check.check_name,
            passed=False,
            severity=severity,
            description=f"the check could not run: {e}",
            metadata={"error": str(e)},
        )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=check.check_name,
        passed=passed,
        severity=severity,
        description=describe(check),
        metadata={"observed": observed},
    )


def _evaluate(check: CheckSpec, table: pa.Table) -> tuple[bool, str | int | float | bool]:
    columns = table.column_names
    if check.type == "row_count":
        rows = table.num_rows
        ok = (check.min is None or rows >= check.min) and (check.max is None or rows <= check.max)
        return ok, rows
    if check.type == "not_null":
        nulls = sum(
            table.column(resolve_column(c, columns, "not_null check")).null_count
            for c in check.columns
        )
        return nulls == 0, nulls
    if check.type == "unique":
        names = [
            quote_identifier(resolve_column(c, columns, "unique check")) for c in check.columns
        ]
        duplicates = _scalar(
            table,
            f"SELECT count(*) - count(DISTINCT ({', '.join(names)})) FROM checked",
        )
        return duplicates == 0, int(duplicates)
    if check.type == "accepted_values":
        column = quote_identifier(resolve_column(str(check.column), columns, "accepted_values"))
        allowed = sql_literal(list(check.values), "duckdb")
        outside = _scalar(
            table,
            f"SELECT count(*) FROM checked WHERE {column} IS NOT NULL "
            f"AND {column} NOT IN ({allowed})",
        )
        return outside == 0, int(outside)
    result = aggregate_table(table, [], [("passed", str(check.expression))])
    value = result.column("passed")[0].as_py()
    return value is True, bool(value)


def _scalar(table: pa.Table, sql: str) -> int:
    with confined_connection() as connection:  # reads the registered table, no file
        connection.register("checked", table)
        row = connection.execute(sql).fetchone()
    return int(row[0]) if row is not None else 0
