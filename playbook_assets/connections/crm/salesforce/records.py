"""Salesforce records as a table typed by the fields' describe types: ids and references text,
numbers float64 (``int`` fields int64), booleans, dates, date-times as naive UTC timestamps;
the results of a split search united."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from playbook_assets.connections.crm.salesforce.fields import ID_PROPERTY, Kind
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.spec import SearchConfig

_ARROW_TYPES: dict[Kind, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
}


def records_table(
    records: list[dict[str, Any]], columns: tuple[tuple[str, str, Kind | None], ...]
) -> pa.Table:
    """Records under the org's field names -> a table typed by the fields' kinds."""
    arrays: list[pa.Array] = []
    for _, field, described in columns:
        values = [record.get(field) for record in records]
        kind = described or "text"
        if kind == "date":
            arrays.append(pa.array([_parse_date(v) for v in values], pa.date32()))
        elif kind == "datetime":
            arrays.append(pa.array([_parse_datetime(v) for v in values], pa.timestamp("us")))
        elif kind in {"id", "text"}:
            text = [None if v is None else v if isinstance(v, str) else str(v) for v in values]
            arrays.append(pa.array(text, pa.string()))
        else:
            arrays.append(pa.array(values, _ARROW_TYPES[kind]))
    return pa.Table.from_arrays(arrays, names=[name for name, _, _ in columns])


def combine(
    tables: list[pa.Table],
    columns: tuple[tuple[str, str, Kind | None], ...],
    request: SearchConfig,
    *,
    several: bool,
) -> pa.Table:
    """The batches as one table; the results of several queries united by Id, sorted and
    cut to the limit as one query would have."""
    table = pa.concat_tables([records_table([], columns), *tables])
    if not several:
        return table
    seen: set[Any] = set()
    first: list[bool] = []
    for record_id in table.column(ID_PROPERTY).to_pylist():
        first.append(record_id not in seen)
        seen.add(record_id)
    table = table.filter(pa.array(first, pa.bool_()))
    missing = [s.property for s in request.sorts if s.property not in table.column_names]
    if missing:
        raise TerminalStepError(
            f"the search was split into several queries (a long IN list) and is sorted by "
            f"'{missing[0]}', which it does not return",
            field="sorts",
            hint=f"add '{missing[0]}' to the step's properties",
        )
    keys = [
        (s.property, "descending" if s.direction == "DESCENDING" else "ascending", "at_end")
        for s in request.sorts
    ]
    table = table.sort_by([*keys, (ID_PROPERTY, "ascending", "at_end")])
    return table.slice(0, request.limit) if request.limit is not None else table


def _parse_date(value: Any) -> date | None:
    if value is None:
        return None
    return date.fromisoformat(str(value)[:10])


def _parse_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    text = str(value)
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
