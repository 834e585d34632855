"""Insights: plain sentences from a run's data.

A playbook declares sentences with placeholders::

    insights:
      - "{{summary.at_risk_accounts | int}} accounts at-risk, ARR {{summary.at_risk_arr | money}}"
      - "Top at-risk account: {{at_risk.first.account_name}} ({{at_risk.first.arr | money}})"

A placeholder names an output or step and a field of it:

- ``NAME.METRIC``: a metric of an aggregate output;
- ``NAME.row_count``: the number of rows of an output or step;
- ``NAME.first.COLUMN``: a column of the first row;
- ``NAME.sum|avg|min|max.COLUMN``: a numeric column's total, mean, smallest or largest value;
- ``parameters.NAME``: a parameter's value.

Filters: ``money`` ($3.2M, $156K), ``pct`` (0.25 -> 25%), ``int`` (1,861), ``number``
(one decimal), ``date`` (Jan 28, 2026). A sentence whose values are missing (a step that did
not run) is left out. Without declared insights, each output gets deterministic defaults.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STATISTICS = ("sum", "avg", "min", "max")
MONEY_COLUMN = re.compile(r"(^|_)(amount|arr|mrr|acv|revenue|pipeline|value|price)(_|$)", re.I)
LABEL_COLUMNS = ("account_name", "dealname", "name", "company_name", "email")


def format_money(value: float) -> str:
    """``$3.2M``, ``$156K``, ``$950``."""
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount >= 1_000_000_000:
        return f"{sign}${amount / 1_000_000_000:.1f}B"
    if amount >= 1_000_000:
        return f"{sign}${amount / 1_000_000:.1f}M"
    if amount >= 1_000:
        return f"{sign}${amount / 1_000:.0f}K"
    return f"{sign}${amount:,.0f}"


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _exact(value: Any) -> int | decimal.Decimal:
    """A number as an int or Decimal, so formatting keeps every digit."""
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    if isinstance(value, int | decimal.Decimal):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return decimal.Decimal(repr(value))
    if isinstance(value, str):  # an exact decimal kept as text (see json_value)
        return decimal.Decimal(value)
    raise TypeError(f"{value!r} is not a number")


def format_integer(value: Any) -> str:
    """A number rounded half away from zero to a whole number, with thousands separators and
    every digit (``1,861``)."""
    exact = _exact(value)
    whole = exact if isinstance(exact, int) else int(exact.to_integral_value(decimal.ROUND_HALF_UP))
    return f"{whole:,}"


def format_decimal(value: Any, places: int = 1) -> str:
    """A number with ``places`` decimals and thousands separators, exact (``1,234.5``)."""
    exact = decimal.Decimal(_exact(value))
    quantum = decimal.Decimal(1).scaleb(-places)
    return f"{exact.quantize(quantum, decimal.ROUND_HALF_UP):,}"


def _format_date(value: Any) -> str:
    day = dt.date.fromisoformat(value[:10]) if isinstance(value, str) else value
    if not isinstance(day, dt.date):
        raise TypeError(f"{value!r} is not a date")
    return f"{day:%b} {day.day}, {day.year}"


FILTERS: Mapping[str, Callable[[Any], str]] = {
    "money": lambda value: format_money(_number(_exact(value))),
    "pct": lambda value: f"{format_decimal(decimal.Decimal(_exact(value)) * 100, 0)}%",
    "int": format_integer,
    "number": format_decimal,
    "date": _format_date,
}


@dataclass(frozen=True)
class Placeholder:
    """One ``{{name.field | filter}}`` of an insight."""

    text: str
    name: str
    path: tuple[str, ...]
    filter: str | None


def parse_insight(text: str) -> list[Placeholder]:
    """The placeholders of an insight sentence; malformed ones are errors."""
    found: list[Placeholder] = []
    for match in PLACEHOLDER.finditer(text):
        inner = match.group(1)
        expression, _, filter_name = inner.partition("|")
        parts = expression.strip().split(".")
        if len(parts) < 2 or not all(_FIELD.fullmatch(part) for part in parts):
            raise PlaybookValidationError(
                f"invalid placeholder '{match.group(0)}'",
                hint="write {{output.metric}}, {{output.first.column}} or "
                "{{output.row_count}}, optionally with | money, pct, int, number or date",
            )
        chosen = filter_name.strip() or None
        if chosen is not None and chosen not in FILTERS:
            raise PlaybookValidationError(
                f"unknown filter '{chosen}' in '{match.group(0)}'",
                hint=unknown_name_hint(chosen, FILTERS, "filter"),
            )
        found.append(Placeholder(match.group(0), parts[0], tuple(parts[1:]), chosen))
    remainder = PLACEHOLDER.sub("", text)
    if "{{" in remainder or "}}" in remainder:
        raise PlaybookValidationError(f"unbalanced braces in insight '{text}'")
    return found


def check_insight(
    text: str,
    *,
    aggregates: Mapping[str, Sequence[str]],
    tables: Sequence[str],
    parameters: Sequence[str],
) -> None:
    """Validate an insight against the playbook: names, fields and filters must exist."""
    for placeholder in parse_insight(text):
        name, path = placeholder.name, placeholder.path
        if name == "parameters":
            if len(path) != 1 or path[0] not in parameters:
                raise PlaybookValidationError(
                    f"unknown parameter in '{placeholder.text}'",
                    hint=unknown_name_hint(path[0], parameters, "parameter"),
                )
            continue
        if name not in aggregates and name not in tables:
            raise PlaybookValidationError(
                f"'{placeholder.text}' names no output or step '{name}'",
                hint=unknown_name_hint(name, [*aggregates, *tables], "output or step"),
            )
        if path == ("row_count",):
            continue
        if len(path) == 2 and path[0] in ("first", *STATISTICS):
            continue
        if name in aggregates and len(path) == 1:
            if path[0] not in aggregates[name]:
                raise PlaybookValidationError(
                    f"aggregate output '{name}' has no metric '{path[0]}' in '{placeholder.text}'",
                    hint=unknown_name_hint(path[0], aggregates[name], "metric"),
                )
            continue
        raise PlaybookValidationError(
            f"'{placeholder.text}' is not a field of '{name}'",
            hint="use .row_count, .first.COLUMN, .sum|avg|min|max.COLUMN "
            "(or .METRIC for an aggregate output)",
        )


def table_facts(table: pa.Table) -> dict[str, Any]:
    """What insights may quote of a result: its size, first row and numeric statistics.

    Statistics skip identifier columns (``id``, ``*_id``, ``AccountId``: a sum of ids means
    nothing). They are computed by DuckDB, whose integer sums widen to 128 bits instead of
    wrapping around as Arrow's do, and every value is exact in JSON (``json_value``).
    """
    facts: dict[str, Any] = {"row_count": table.num_rows, "first": {}}
    if table.num_rows:
        facts["first"] = {k: json_value(v) for k, v in table.slice(0, 1).to_pylist()[0].items()}
    for statistic in STATISTICS:
        facts[statistic] = {}
    measured = [
        field.name
        for field in table.schema
        if _numeric(field.type) and not is_identifier_column(field.name)
    ]
    if not measured:
        return facts
    import duckdb

    from playbook_assets.core.file_access import scratch_connection

    selects = [
        f"{function}({_quoted(name)})"
        for name in measured
        for function in ("sum", "avg", "min", "max")
    ]
    with scratch_connection() as connection:
        connection.register("measured", table.select(measured))
        try:
            found = connection.execute(f"SELECT {', '.join(selects)} FROM measured").fetchone()
            values: list[Any] = list(found or ())
        except duckdb.OutOfRangeException:
            # A sum past 38 digits: that statistic is left out rather than approximated.
            values = [_statistic(connection, select) for select in selects]
    for index, name in enumerate(measured):
        for offset, statistic in enumerate(STATISTICS):
            facts[statistic][name] = json_value(values[index * 4 + offset])
    return facts


def _statistic(connection: Any, select: str) -> Any:
    try:
        found = connection.execute(f"SELECT {select} FROM measured").fetchone()
    except Exception:  # overflow of this one statistic
        return None
    return found[0] if found else None


_IDENTIFIER_COLUMN = re.compile(r"(?:^|_)(?:id|ID|Id)$|[a-z0-9]Id$")


def is_identifier_column(name: str) -> bool:
    """Whether a column holds identifiers (``id``, ``account_id``, ``hs_object_id``,
    ``AccountId``), whose sums and averages mean nothing."""
    return _IDENTIFIER_COLUMN.search(name) is not None


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def json_value(value: Any) -> Any:
    """A value as exact JSON.

    Integers (including 128-bit sums, which Arrow hands over as decimals with no fraction) are
    JSON integers with every digit; a decimal is a JSON number when its shortest float text is
    the same number (it always is up to 15 significant digits), else its exact text as a
    string; dates and times are ISO text, bytes hex, NaN null. Structs, lists and maps keep
    their shape; anything else is its text.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, decimal.Decimal):
        return exact_decimal(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return str(value)


def exact_decimal(value: decimal.Decimal) -> int | float | str | None:
    """A decimal as an exact JSON value: an int when whole, a float when the float's text is
    the same number, else the decimal's own text."""
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    if decimal.Decimal(repr(number)) == value:
        return number
    return format(value.normalize(), "f")


def render_insight(
    text: str, facts: Mapping[str, Mapping[str, Any]], parameters: Mapping[str, Any]
) -> str | None:
    """The sentence with its values, or None when a value is missing."""
    rendered = text
    for placeholder in parse_insight(text):
        value = _lookup(placeholder, facts, parameters)
        if value is None:
            return None
        try:
            shown = (
                FILTERS[placeholder.filter](value)
                if placeholder.filter
                else format_metric(placeholder.path[-1], value)
            )
        except (TypeError, ValueError):
            shown = str(value)
        rendered = rendered.replace(placeholder.text, shown, 1)
    return rendered


def _lookup(
    placeholder: Placeholder, facts: Mapping[str, Mapping[str, Any]], parameters: Mapping[str, Any]
) -> Any:
    if placeholder.name == "parameters":
        return parameters.get(placeholder.path[0])
    node: Any = facts.get(placeholder.name)
    if node is None:
        return None
    path = placeholder.path
    if len(path) == 1 and path[0] != "row_count":
        node = node.get("values", {})
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def humanize(name: str) -> str:
    """``total_pipeline`` -> ``Total pipeline``."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def format_metric(name: str, value: Any) -> str:
    """A value formatted by what its name says it is (money, count or plain number)."""
    if value is None:
        return "n/a"
    if isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool):
        if MONEY_COLUMN.search(name):
            return format_money(float(value))
        exact = _exact(value)
        if isinstance(exact, int) or exact == exact.to_integral_value():
            return format_integer(exact)
        return format_decimal(exact)
    return str(value)


def default_insights(
    name: str, facts: Mapping[str, Any], *, aggregate: bool, include_totals: bool
) -> list[str]:
    """Deterministic insights of one output: its size, money totals and the top row.

    ``include_totals`` is off when the playbook declares aggregate outputs: they say what the
    totals are meant to be, where a plain sum over a joined table could count a value twice.
    """
    if aggregate:
        return [f"{humanize(k)}: {format_metric(k, v)}" for k, v in facts["values"].items()]
    insights = [f"{humanize(name)}: {facts['row_count']:,} rows"]
    money = [column for column in facts["sum"] if MONEY_COLUMN.search(column)]
    if include_totals:
        insights += [
            f"Total {column} in {name}: {format_money(_number(_exact(facts['sum'][column])))}"
            for column in money
            if facts["sum"][column] is not None
        ]
    top = facts.get("top")
    if top:
        value = format_money(_number(_exact(top["value"])))
        insights.append(f"Top by {top['column']}: {top['label']} ({value})")
    return insights


def top_row(table: pa.Table) -> dict[str, Any] | None:
    """The row with the largest value of the first money column, labelled by a name column."""
    money = [f.name for f in table.schema if MONEY_COLUMN.search(f.name) and _numeric(f.type)]
    label = next((c for c in LABEL_COLUMNS if c in table.column_names), None)
    if not money or label is None or table.num_rows == 0:
        return None
    column = table.column(money[0])
    index = pc.index(column, _compute("max", column)).as_py()
    if index is None or index < 0:
        return None
    row = table.slice(index, 1).to_pylist()[0]
    if row[money[0]] is None:
        return None
    return {"column": money[0], "label": json_value(row[label]), "value": json_value(row[money[0]])}


def _numeric(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    )


def _compute(function: str, column: pa.ChunkedArray) -> pa.Scalar:
    # pyarrow's generated pc.sum/pc.max wrappers are invisible to type checkers.
    return pc.call_function(function, [column])  # type: ignore[arg-type]
