"""Filter values as SOQL literals: strings quoted with SOQL's escapes, numbers, booleans, dates
(``YYYY-MM-DD``) and date-times (``YYYY-MM-DDThh:mm:ssZ``) written unquoted only after being
parsed as such, each as the literal of the field's describe type (not of the value's look);
picklist values checked against the picklist."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from playbook_assets.connections.crm.salesforce.fields import Kind, OrgField
from playbook_assets.connections.crm.values import (
    DATE_FORMATS,
    bad_value,
    from_epoch_ms,
    parse_boolean,
    parse_number,
)
from playbook_assets.core.errors import TerminalStepError, did_you_mean

_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_SOQL_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def check_picklist(value: Any, prop: str, field: OrgField, sobject: str, where: str) -> None:
    """A filter on a picklist must use one of its values: another one matches nothing."""
    text = str(value)
    if text.lower() in {v.lower() for v in field.picklist}:
        return
    suggestion = did_you_mean(text, field.picklist)
    raise TerminalStepError(
        f"'{text}' is not a value of the picklist {sobject}.{field.name} (property '{prop}'), "
        "so the filter would match nothing",
        field=where,
        hint=(f"{suggestion} " if suggestion else "")
        + f"values: {', '.join(field.picklist)}; map the playbook's value in "
        f"value_mapping.<object>.{prop}",
    )


def soql_string(text: str) -> str:
    """A SOQL quoted string: backslash, quotes and control characters escaped."""
    out: list[str] = []
    for char in text:
        escaped = _SOQL_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def like_pattern(word: str) -> str:
    """``'%word%'`` with LIKE's wildcards in the word escaped; ``*`` becomes ``%``."""
    escaped = soql_string(word)[1:-1].replace("%", "\\%").replace("_", "\\_").replace("*", "%")
    return f"'%{escaped}%'"


def soql_literal(value: Any, kind: Kind | None, name: str, operator: str) -> str:
    """A filter value as a SOQL literal for a field of the given kind (None: from the value)."""
    if value is None:
        raise TerminalStepError(f"operator {operator} on '{name}' needs a value, got none")
    if isinstance(value, list | tuple | set | dict):
        raise TerminalStepError(
            f"operator {operator} on '{name}' takes one value, got {value!r}",
            hint="use IN / NOT_IN with 'values' to match any of several values",
        )
    if kind is None:
        kind = _kind_of_value(value)
    if kind in {"id", "text"}:
        if isinstance(value, bool):
            return soql_string("true" if value else "false")
        if isinstance(value, date | datetime):
            return soql_string(value.isoformat())
        return soql_string(str(value))
    if kind in {"number", "integer"}:
        return _number(value, name)
    if kind == "boolean":
        return _boolean(value, name)
    instant = _instant(value, name)
    if kind == "date":
        return instant.date().isoformat() if isinstance(instant, datetime) else instant.isoformat()
    if not isinstance(instant, datetime):
        instant = datetime(instant.year, instant.month, instant.day, tzinfo=UTC)
    text = instant.strftime("%Y-%m-%dT%H:%M:%S")
    if instant.microsecond:
        text += f".{instant.microsecond // 1000:03d}"
    return text + "Z"


def _kind_of_value(value: Any) -> Kind:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    return "text"


def _number(value: Any, name: str) -> str:
    text = format(parse_number(value, name), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _boolean(value: Any, name: str) -> str:
    return "true" if parse_boolean(value, name) else "false"


def _instant(value: Any, name: str) -> date | datetime:
    """A date, or an aware UTC datetime (a naive one is taken as UTC)."""
    if isinstance(value, bool):
        raise bad_value(value, name, DATE_FORMATS)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    if isinstance(value, int | float | Decimal):
        return from_epoch_ms(value, name).replace(tzinfo=UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return from_epoch_ms(int(text), name).replace(tzinfo=UTC)
    if _DATE_TEXT.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError as e:
            raise bad_value(value, name, DATE_FORMATS) from e
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise bad_value(value, name, DATE_FORMATS) from e
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
