"""Comparing a result with what a test expects, and the row diff of a failure.

Values compare as written: numbers by value (an integer, a float and a decimal that are the
same number are equal; ``tolerance`` allows a difference), text by its characters, dates by
date (an expected text equals a date or timestamp whose ISO form it is), NULL only with NULL.
Booleans never equal numbers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from playbook_assets.core.playbook_tests.spec import Expectation

Row = dict[str, Any]


@dataclass(frozen=True)
class Mismatch:
    """Why a result is not what was expected, with the rows that differ."""

    message: str
    # Expected rows the result does not have, and rows of the result no expected row matches
    # (on the compared columns), or per position when the order matters.
    missing: list[Row] = field(default_factory=list)
    unexpected: list[Row] = field(default_factory=list)


def compare(expectation: Expectation, table: pa.Table) -> list[Mismatch]:
    """Every way ``table`` differs from ``expectation`` (none: it passes)."""
    found: list[Mismatch] = []
    if expectation.row_count is not None and table.num_rows != expectation.row_count:
        found.append(
            Mismatch(f"expected {expectation.row_count} rows, the result has {table.num_rows}")
        )
    if expectation.values is not None:
        found.extend(_compare_values(expectation.values, table, expectation.tolerance))
    if expectation.rows is not None:
        found.extend(_compare_rows(expectation, table))
    return found


def _compare_values(
    expected: Mapping[str, Any], table: pa.Table, tolerance: float
) -> list[Mismatch]:
    absent = _absent_columns(expected, table)
    if absent:
        return [absent]
    if table.num_rows != 1:
        return [Mismatch(f"'values' needs a result of one row; it has {table.num_rows}")]
    (actual,) = table.select(list(expected)).to_pylist()
    wrong = [name for name, value in expected.items() if not equal(value, actual[name], tolerance)]
    if not wrong:
        return []
    described = "; ".join(
        f"{name}: expected {show(expected[name])}, got {show(actual[name])}" for name in wrong
    )
    return [
        Mismatch(
            f"values differ: {described}",
            missing=[{name: expected[name] for name in wrong}],
            unexpected=[{name: actual[name] for name in wrong}],
        )
    ]


def _compare_rows(expectation: Expectation, table: pa.Table) -> list[Mismatch]:
    expected_rows = expectation.rows or []
    columns = list(dict.fromkeys(name for row in expected_rows for name in row))
    absent = _absent_columns(columns, table)
    if absent:
        return [absent]
    expected = [{name: row.get(name) for name in columns} for row in expected_rows]
    actual = table.select(columns).to_pylist() if columns else [{}] * table.num_rows
    tolerance = expectation.tolerance
    if expectation.ordered:
        missing, unexpected = _ordered_diff(expected, actual, tolerance)
    else:
        missing, unexpected = _unordered_diff(expected, actual, tolerance)
    if not missing and not unexpected:
        return []
    order = "in this order, " if expectation.ordered else ""
    return [
        Mismatch(
            f"rows differ ({order}compared on {', '.join(columns) or 'no column'}): "
            f"{len(missing)} expected row(s) not in the result, {len(unexpected)} row(s) of "
            f"the result not expected ({len(expected)} expected, {len(actual)} in the result)",
            missing=missing,
            unexpected=unexpected,
        )
    ]


def _absent_columns(names: Sequence[str] | Mapping[str, Any], table: pa.Table) -> Mismatch | None:
    absent = [name for name in names if name not in table.column_names]
    if not absent:
        return None
    return Mismatch(
        f"the result has no column {', '.join(repr(n) for n in absent)}; "
        f"its columns: {', '.join(table.column_names)}"
    )


def _unordered_diff(
    expected: list[Row], actual: list[Row], tolerance: float
) -> tuple[list[Row], list[Row]]:
    """Rows matched one to one whatever their order (a multiset: a row expected twice must be
    there twice)."""
    unmatched = list(actual)
    missing: list[Row] = []
    for row in expected:
        index = next(
            (i for i, candidate in enumerate(unmatched) if rows_equal(row, candidate, tolerance)),
            None,
        )
        if index is None:
            missing.append(row)
        else:
            del unmatched[index]
    return missing, unmatched


def _ordered_diff(
    expected: list[Row], actual: list[Row], tolerance: float
) -> tuple[list[Row], list[Row]]:
    """Rows compared position by position; each differing position gives its expected and
    its actual row."""
    missing: list[Row] = []
    unexpected: list[Row] = []
    for index in range(max(len(expected), len(actual))):
        want = expected[index] if index < len(expected) else None
        got = actual[index] if index < len(actual) else None
        if want is not None and got is not None and rows_equal(want, got, tolerance):
            continue
        if want is not None:
            missing.append({"#": index + 1, **want})
        if got is not None:
            unexpected.append({"#": index + 1, **got})
    return missing, unexpected


def rows_equal(expected: Row, actual: Row, tolerance: float = 0) -> bool:
    """Whether two rows hold equal values in every column of ``expected``."""
    return all(equal(value, actual.get(name), tolerance) for name, value in expected.items())


def equal(expected: Any, actual: Any, tolerance: float = 0) -> bool:
    """Whether an expected value (as YAML or a fixture gives it) equals a result's value."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if _is_number(expected) and _is_number(actual):
        if not (_finite(expected) and _finite(actual)):  # NaN equals NaN here, as in a diff
            return str(float(expected)) == str(float(actual))
        difference = abs(_exact(expected) - _exact(actual))
        return difference <= decimal.Decimal(str(tolerance))
    if isinstance(expected, str) and isinstance(actual, dt.date):
        return expected == actual.isoformat()
    if isinstance(expected, dt.date) and isinstance(actual, dt.date):
        # A date never equals a timestamp (datetime is a date too).
        return type(expected) is type(actual) and expected == actual
    return type(expected) is type(actual) and expected == actual


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal)


def _finite(value: int | float | decimal.Decimal) -> bool:
    if isinstance(value, decimal.Decimal):
        return value.is_finite()
    return not isinstance(value, float) or math.isfinite(value)


def _exact(value: int | float | decimal.Decimal) -> decimal.Decimal:
    # A float as its shortest text: 0.1 written in a test is the 0.1 a result holds.
    return decimal.Decimal(str(value)) if isinstance(value, float) else decimal.Decimal(value)


def show(value: Any) -> str:
    """A value as a diff shows it."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def show_row(row: Row) -> str:
    """A row as a diff shows it: ``{column: value, ...}``."""
    return "{" + ", ".join(f"{name}: {show(value)}" for name, value in row.items()) + "}"
