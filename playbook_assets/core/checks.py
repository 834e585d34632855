"""Data quality checks on step and output results, as Dagster asset checks.

A check runs inside the step that produced the table (no second read of the data) and its
result is recorded as an asset check evaluation; a blocking check that fails stops the
downstream steps.

NULLs are treated as SQL and dbt treat them:

- ``not_null``: fails on each row where any listed column is NULL (observed: those rows).
- ``unique``: rows where a listed column is NULL are ignored (NULLs are never equal, as in a
  SQL UNIQUE constraint and dbt's ``unique``); fails when a value, or a combination of the
  listed columns, occurs more than once (observed: how many such values).
- ``accepted_values``: NULL passes (``NULL NOT IN (...)`` is not true, as in dbt); fails on
  each row with a value outside the list (observed: those rows).
- ``expression``: an aggregate that must be true; false fails, NULL (e.g. ``MIN(x) > 0`` over
  no rows or only NULLs) passes, as in dbt's ``expression_is_true`` (observed: the value).
- ``row_count``: the number of rows against ``min``/``max``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.expressions import quote_identifier, resolve_column
from playbook_assets.core.file_access import scratch_connection
from playbook_assets.core.spec import CheckSpec
from playbook_assets.core.sql import sql_literal
from playbook_assets.core.transforms import aggregate_table


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


def _evaluate(check: CheckSpec, table: pa.Table) -> tuple[bool, str | int | float | bool | None]:
    """Whether the check passes, and what it observed (see the module doc for NULLs)."""
    columns = table.column_names
    if check.type == "row_count":
        rows = table.num_rows
        ok = (check.min is None or rows >= check.min) and (check.max is None or rows <= check.max)
        return ok, rows
    if check.type == "not_null":
        names = [
            quote_identifier(resolve_column(c, columns, "not_null check")) for c in check.columns
        ]
        nulls = _scalar(
            table,
            f"SELECT count(*) FROM checked WHERE {' OR '.join(f'{n} IS NULL' for n in names)}",
        )
        return nulls == 0, nulls
    if check.type == "unique":
        names = [
            quote_identifier(resolve_column(c, columns, "unique check")) for c in check.columns
        ]
        listed = ", ".join(names)
        duplicated = _scalar(
            table,
            f"SELECT count(*) FROM (SELECT {listed} FROM checked "
            f"WHERE {' AND '.join(f'{n} IS NOT NULL' for n in names)} "
            f"GROUP BY {listed} HAVING count(*) > 1)",
        )
        return duplicated == 0, duplicated
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
    if value is not None and not isinstance(value, bool):
        raise PlaybookError(
            f"the expression gives {value!r}, not true or false",
            hint="compare the aggregate with something, e.g. SUM(arr) > 0",
        )
    # As dbt's expression_is_true: only a false result fails; NULL (nothing to compare, e.g.
    # MIN over no rows) passes, and is reported as observed null.
    return value is not False, value


def _scalar(table: pa.Table, sql: str) -> int:
    with scratch_connection() as connection:  # reads the registered table, no file
        connection.register("checked", table)
        row = connection.execute(sql).fetchone()
    return int(row[0]) if row is not None else 0


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one table: whether it passed, what it observed."""

    check: CheckSpec
    passed: bool
    observed: str | int | float | bool | None
    description: str
    error: str | None = None

    @property
    def entry(self) -> dict[str, object]:
        """The check as the run report lists it (``asset`` is added by the caller)."""
        return {
            "check": self.check.check_name,
            "passed": self.passed,
            "severity": self.check.severity,
            "description": self.description,
            "observed": self.observed,
        }


def check_result(check: CheckSpec, table: pa.Table) -> CheckResult:
    """Run one check on a table; a check that cannot run fails, saying why."""
    try:
        passed, observed = _evaluate(check, table)
    except PlaybookError as e:
        return CheckResult(check, False, None, f"the check could not run: {e}", error=str(e))
    return CheckResult(check, passed, observed, describe(check))
