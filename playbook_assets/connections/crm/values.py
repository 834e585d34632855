"""Filter values, the same way for every CRM: checked against a property's type, and mapped
from the playbook's values to the CRM's own (``value_mapping``)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.spec import SearchConfig, SearchFilter

DATE_FORMATS = "a date ('YYYY-MM-DD'), an ISO date-time or epoch milliseconds"
_EPOCH = datetime(1970, 1, 1)


def bad_value(raw: Any, name: str, expected: str) -> TerminalStepError:
    """The error for a filter value that does not fit its property."""
    return TerminalStepError(
        f"property '{name}' takes {expected}; got {raw!r}",
        hint="check the filter's value or the step result it references",
    )


def parse_number(raw: Any, name: str) -> int | Decimal:
    """A number: an int when it is whole, else an exact Decimal (booleans are not numbers)."""
    if isinstance(raw, bool):
        raise bad_value(raw, name, "a number")
    if isinstance(raw, int):
        return raw
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation as e:
        raise bad_value(raw, name, "a number") from e
    if not number.is_finite():
        raise bad_value(raw, name, "a finite number")
    if number == number.to_integral_value():
        return int(number)
    return number


def parse_boolean(raw: Any, name: str) -> bool:
    """true/false (or 1/0, in any case)."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "1"}:
        return True
    if text in {"false", "0"}:
        return False
    raise bad_value(raw, name, "true or false")


def from_epoch_ms(raw: int | float | Decimal, name: str) -> datetime:
    """Epoch milliseconds (HubSpot style) as a naive UTC datetime."""
    try:
        return _EPOCH + timedelta(milliseconds=int(raw))
    except (OverflowError, ValueError) as e:
        raise bad_value(raw, name, DATE_FORMATS) from e


def parse_instant(raw: Any, name: str) -> datetime:
    """Dates and date-times as naive UTC datetimes (a date is its midnight)."""
    if isinstance(raw, bool):
        raise bad_value(raw, name, DATE_FORMATS)
    if isinstance(raw, datetime):
        return raw.astimezone(UTC).replace(tzinfo=None) if raw.tzinfo else raw
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day)
    if isinstance(raw, int | float | Decimal):
        return from_epoch_ms(raw, name)
    text = str(raw).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return from_epoch_ms(Decimal(text), name)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as e:
        raise bad_value(raw, name, DATE_FORMATS) from e
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


# ---------------------------------------------------------------------------------------------
# Value mapping: the playbook's filter values -> the CRM's own values
# ---------------------------------------------------------------------------------------------

# object -> property -> playbook value -> the CRM's values (one or several).
ValueMapping = dict[str, dict[str, dict[str, list[str]]]]


def merged_mapping(defaults: ValueMapping, overrides: ValueMapping) -> ValueMapping:
    """``overrides`` over ``defaults``, per object and property (names and values matched
    case-insensitively)."""
    merged: ValueMapping = {}
    for source in (defaults, overrides):
        for object_name, properties in source.items():
            target = merged.setdefault(object_name.strip().lower(), {})
            for name, values in properties.items():
                mapping = target.setdefault(name.strip().lower(), {})
                mapping.update({str(k).strip().lower(): v for k, v in values.items()})
    return merged


def map_values(request: SearchConfig, mapping: ValueMapping) -> SearchConfig:
    """The request with every filter value the mapping lists replaced by the CRM's value(s).

    A value that maps to several CRM values widens the filter: EQ becomes IN, NEQ becomes
    NOT_IN, and IN / NOT_IN lists take all of them. Ordering operators (LT, BETWEEN, ...)
    need a value that maps to exactly one. Values the mapping does not list are kept.
    """
    properties = mapping.get(request.object.strip().lower())
    if not properties:
        return request
    groups = [[_mapped(f, properties.get(f.property.lower())) for f in g] for g in request.groups()]
    if request.filter_groups:
        return request.model_copy(update={"filter_groups": groups})
    return request.model_copy(update={"filters": groups[0] if groups else []})


def _mapped(spec: SearchFilter, values: dict[str, list[str]] | None) -> SearchFilter:
    if not values:
        return spec

    def targets(raw: Any) -> list[Any]:
        if not isinstance(raw, str) or raw.strip().lower() not in values:
            return [raw]
        return list(values[raw.strip().lower()])

    operator = spec.operator
    if operator in {"IN", "NOT_IN"} and isinstance(spec.values, list):
        listed = [t for raw in spec.values for t in targets(raw)]
        return spec.model_copy(update={"values": list(dict.fromkeys(listed))})
    if operator in {"EQ", "NEQ"}:
        found = targets(spec.value)
        if len(found) == 1:
            return spec.model_copy(update={"value": found[0]})
        return SearchFilter(
            property=spec.property, operator="IN" if operator == "EQ" else "NOT_IN", values=found
        )
    updates: dict[str, Any] = {}
    for key in ("value", "high_value"):
        raw = getattr(spec, key)
        found = targets(raw) if raw is not None else [raw]
        if len(found) != 1:
            raise TerminalStepError(
                f"'{raw}' of property '{spec.property}' stands for several CRM values "
                f"({', '.join(map(str, found))}); {operator} needs one",
                field="filters",
                hint="use EQ / IN with it, or map it to a single value in value_mapping",
            )
        updates[key] = found[0]
    return spec.model_copy(update=updates)
