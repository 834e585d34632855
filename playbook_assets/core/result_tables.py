"""What every step result must be before anything reads or stores it.

A result is an Arrow table whose columns have distinct names (a ``SELECT a.*, b.*`` that returns
two ``account_id`` columns is an error naming them: later steps, checks and the report look
columns up by name, and a dict of a row would silently keep only one) and whose types Parquet
can store and DuckDB (which runs transforms and checks) can read. 256-bit decimals (BigQuery's
BIGNUMERIC) become 128-bit decimals when every value fits with every digit; intervals, unions
and decimals that do not fit become their exact text (``1 month 2 days``); the step's metadata
lists the columns stored as text, so the change is visible.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.file_access import scratch_connection


@dataclass(frozen=True)
class CheckedResult:
    """A step result ready to use and store, with the columns stored as text."""

    table: pa.Table
    as_text: dict[str, str] = field(default_factory=dict)


def checked_result(table: pa.Table) -> CheckedResult:
    """The result with distinct column names and storable types (see the module doc)."""
    counts = Counter(table.column_names)
    repeated = [name for name, count in counts.items() if count > 1]
    if repeated:
        names = ", ".join(f"'{name}'" for name in repeated)
        raise TerminalStepError(
            f"the result has more than one column named {names}",
            hint="give each column its own name with AS (e.g. SELECT a.*, b.id AS b_id), "
            "or list the columns instead of *",
        )
    wide = {
        f.name: f"{f.type} stored as text" for f in table.schema if pa.types.is_decimal256(f.type)
    }
    table = _narrow_wide_decimals(table)
    as_text = {
        name: why for name, why in wide.items() if pa.types.is_string(table.schema.field(name).type)
    }
    unstorable = {f.name: str(f.type) for f in table.schema if _needs_text(f.type)}
    if not unstorable:
        return CheckedResult(table, as_text)
    replaced = ", ".join(
        f"CAST({_quoted(name)} AS VARCHAR) AS {_quoted(name)}" for name in unstorable
    )
    with scratch_connection() as connection:
        connection.register("result", table)
        converted = connection.sql(f"SELECT * REPLACE ({replaced}) FROM result").to_arrow_table()
    return CheckedResult(
        converted, {name: f"{kind} stored as text" for name, kind in unstorable.items()}
    )


def _narrow_wide_decimals(table: pa.Table) -> pa.Table:
    """256-bit decimal columns as 128-bit ones where every value keeps every digit."""
    for index, column_field in enumerate(table.schema):
        if not pa.types.is_decimal256(column_field.type):
            continue
        column = table.column(index)
        largest = pc.max(pc.abs(column)).as_py()  # type: ignore[attr-defined]
        whole_digits = len(str(int(largest))) if largest is not None else 1
        scale = min(column_field.type.scale, max(0, 38 - whole_digits))
        try:
            narrowed = column.cast(pa.decimal128(38, scale))  # a safe cast: it refuses to lose
        except pa.ArrowInvalid:
            narrowed = column.cast(pa.string())  # DuckDB cannot read it to write its text
        table = table.set_column(index, column_field.name, narrowed)
    return table


def _needs_text(data_type: pa.DataType) -> bool:
    """Whether Parquet or DuckDB cannot take the type (intervals, unions, 256-bit decimals), at
    any depth."""
    if (
        pa.types.is_interval(data_type)
        or pa.types.is_union(data_type)
        or pa.types.is_decimal256(data_type)
    ):
        return True
    return any(_needs_text(data_type.field(i).type) for i in range(data_type.num_fields))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
