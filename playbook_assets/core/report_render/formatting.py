"""Numbers for people, exact underneath.

A cell shows a value the way a reader expects it (``$12,345.50``, ``95.2%``, ``8,460``) and
keeps its exact text beside it whenever the shown text rounds it, so the HTML can carry it in
a ``title`` and ``data-value`` attribute. Values arrive as exact JSON values
(``insights.json_value``: integers with every digit, decimals that a float cannot hold as
text).

How a number reads follows its column: money when the name says so (``amount``, ``arr``, ...,
as insights do), a percentage for a fraction column named ``*_share``, ``*_utilization`` or
``*_change`` (0.952 -> 95.2%; whole-number columns never), else a count or a number. A chart
may declare its format instead.
"""

from __future__ import annotations

import decimal
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from playbook_assets.core.insights import MONEY_COLUMN, format_money, is_identifier_column

ColumnKind = Literal["integer", "decimal", "float", "boolean", "date", "timestamp", "text"]
NumberFormat = Literal["money", "percent", "integer", "number"]
NUMERIC_KINDS = frozenset({"integer", "decimal", "float"})
PERCENT_COLUMN = re.compile(r"(^|_)(share|utilization|change)$", re.IGNORECASE)
NULL_TEXT = "—"


@dataclass(frozen=True)
class Cell:
    """A value as shown; ``exact`` is its exact text (numbers always), ``rounded`` whether
    the shown text leaves some of it out."""

    text: str
    exact: str | None = None
    rounded: bool = False
    numeric: bool = False
    # Dates and times are not broken across lines.
    nowrap: bool = False


def column_kind(arrow_type: pa.DataType) -> ColumnKind:
    """What a column holds, as far as showing it goes."""
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_decimal(arrow_type):
        return "decimal"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return "text"


def number_format(
    name: str, kind: ColumnKind, declared: NumberFormat | None = None
) -> NumberFormat | None:
    """How a column's numbers read (None: it holds no numbers, or identifiers, which read
    as they are: ``9000000635``, not ``9,000,000,635``)."""
    if kind not in NUMERIC_KINDS:
        return None
    if declared is not None:
        return declared
    if is_identifier_column(name):
        return None
    if MONEY_COLUMN.search(name):
        return "money"
    if kind != "integer" and PERCENT_COLUMN.search(name):
        return "percent"
    return "integer" if kind == "integer" else "number"


def exact_number(value: Any) -> decimal.Decimal | None:
    """A JSON number (or an exact decimal kept as text) as a Decimal; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return decimal.Decimal(value)
    if isinstance(value, float):
        return decimal.Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str):
        try:
            number = decimal.Decimal(value)
        except decimal.InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def exact_text(value: Any) -> str:
    """The exact text of a value (what the JSON report holds)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def cell(value: Any, name: str, kind: ColumnKind, declared: NumberFormat | None = None) -> Cell:
    """A value of column ``name`` as a reader sees it, with its exact text."""
    if value is None:
        return Cell(NULL_TEXT)
    chosen = number_format(name, kind, declared)
    if chosen is not None:
        number = exact_number(value)
        if number is None:  # NaN, or text in a numeric column: shown as it is
            return Cell(exact_text(value))
        return number_cell(number, format_number(number, chosen))
    if kind == "boolean" or isinstance(value, bool):
        return Cell("yes" if value else "no", exact_text(value))
    text = exact_text(value)
    if kind == "timestamp":
        shown = text.replace("T", " ")
        return Cell(shown, text, rounded=shown != text, nowrap=True)
    return Cell(text, nowrap=kind == "date")


def number_cell(number: decimal.Decimal, shown: str) -> Cell:
    """A number shown as ``shown``, with its exact text."""
    exact = exact_digits(number)
    digits = re.sub(r"[^0-9.\-]", "", shown)
    try:
        same = "%" not in shown and decimal.Decimal(digits) == number
    except decimal.InvalidOperation:
        same = False
    return Cell(shown, exact, rounded=not same, numeric=True)


def exact_digits(number: decimal.Decimal) -> str:
    """Every digit of a number, no exponent: ``494405509.48``, ``0.0000012``."""
    if number == 0:
        return "0"
    return format(number.normalize(), "f")


def grouped_digits(number: decimal.Decimal) -> str:
    """Every digit of a number with thousands separators: ``494,405,509.48``."""
    return f"{decimal.Decimal(exact_digits(number)):,}"


def format_number(number: decimal.Decimal, chosen: NumberFormat) -> str:
    """A number in full, the way ``chosen`` reads: ``$12,345.50``, ``95.2%``, ``8,460``,
    ``63.25`` (rounded half away from zero where it has more places than shown)."""
    if chosen == "money":
        places = 0 if number == number.to_integral_value() else 2
        sign = "-" if number < 0 else ""
        return f"{sign}${_grouped(abs(number), places)}"
    if chosen == "percent":
        return f"{_trimmed(_grouped(number * 100, 1))}%"
    if chosen == "integer" or number == number.to_integral_value():
        return _grouped(number, 0)
    return _trimmed(_grouped(number, _places(number)))


def compact(number: decimal.Decimal, chosen: NumberFormat | None) -> str:
    """A short form for axes and summary figures: ``$3.2M``, ``25%``, ``1,861``, ``0.42``."""
    if chosen == "money":
        return format_money(float(number))
    if chosen == "percent":
        return f"{_trimmed(_grouped(number * 100, 1))}%"
    if number == number.to_integral_value():
        return _grouped(number, 0)
    return _trimmed(_grouped(number, _places(number)))


def _places(number: decimal.Decimal) -> int:
    """Two decimals, or enough for three significant digits below 1 (at most 6)."""
    magnitude = abs(number)
    if magnitude >= 1 or magnitude == 0:
        return 2
    return min(6, 2 - math.floor(math.log10(magnitude)))


def _grouped(number: decimal.Decimal, places: int) -> str:
    quantum = decimal.Decimal(1).scaleb(-places)
    return f"{number.quantize(quantum, decimal.ROUND_HALF_UP):,}"


def _trimmed(text: str) -> str:
    """``63.20`` -> ``63.2``, ``4.00`` -> ``4``."""
    if "." not in text:
        return text
    return text.rstrip("0").rstrip(".")
