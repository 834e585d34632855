"""HubSpot's records as typed columns: property values arrive as text and are typed by the
property's ``type`` from the properties API (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from playbook_assets.connections.crm.hubspot.request_body import Property
from playbook_assets.connections.crm.hubspot_filters import ID
from playbook_assets.core.errors import TerminalStepError

_Values = list[str | None]


def records_table(
    records: list[dict[str, Any]], names: list[str], properties: dict[str, Property]
) -> pa.Table:
    """``hs_object_id`` (int64) and each named property, typed."""
    columns: dict[str, pa.Array] = {
        ID: pa.array([int(r[ID]) for r in records], pa.int64()),
    }
    for name in names:
        columns[name] = typed([r.get(name) for r in records], properties[name], name)
    return pa.table(columns)


def typed(values: list[Any], prop: Property, name: str) -> pa.Array:
    """One property's values as an Arrow array of the property's type (empty text is null)."""
    cleaned: _Values = [None if v is None or v == "" else str(v) for v in values]
    kind = prop.type
    if kind == "bool" or (kind == "enumeration" and prop.field_type == "booleancheckbox"):
        return pa.array([None if v is None else v.lower() == "true" for v in cleaned], pa.bool_())
    converter = _CONVERTERS.get(kind)
    if converter is None:
        return pa.array(cleaned, pa.string())
    try:
        return converter(cleaned)
    except (InvalidOperation, ValueError, OverflowError) as e:
        raise TerminalStepError(
            f"HubSpot sent a value of {kind} property '{name}' that is not a {kind}: {e}",
            hint="check the property's definition in HubSpot",
        ) from e


def _numbers(cleaned: _Values) -> pa.Array:
    """int64 when every value is whole, else float64."""
    numbers = [None if v is None else Decimal(v) for v in cleaned]
    if all(n is None or n == n.to_integral_value() for n in numbers):
        return pa.array([None if n is None else int(n) for n in numbers], pa.int64())
    return pa.array([None if n is None else float(n) for n in numbers], pa.float64())


def _dates(cleaned: _Values) -> pa.Array:
    return pa.array([None if v is None else _date(v) for v in cleaned], pa.date32())


def _datetimes(cleaned: _Values) -> pa.Array:
    return pa.array([None if v is None else _datetime(v) for v in cleaned], pa.timestamp("us"))


_CONVERTERS: dict[str, Callable[[_Values], pa.Array]] = {
    "number": _numbers,
    "date": _dates,
    "datetime": _datetimes,
}


def _date(text: str) -> date:
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC).date()
    return date.fromisoformat(text[:10])


def _datetime(text: str) -> datetime:
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC).replace(tzinfo=None)
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
