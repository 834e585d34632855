"""Filter values checked against a CRM property's type, the same way for every CRM."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from playbook_assets.errors import TerminalStepError

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
