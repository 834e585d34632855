"""Playbook parameters: checking values against their declared types.

Values arrive as YAML defaults, as ``k=v`` text on the command line, from a params file, or
as Dagster run config; all go through ``coerce_parameter`` so every entry point accepts and
rejects the same values with the same message.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from playbook_assets.errors import PlaybookValidationError, unknown_name_hint
from playbook_assets.spec import ParameterSpec, ParameterType, PlaybookSpec

_IDENTIFIER_PART = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"[^"]+")'
_DOTTED_IDENTIFIER = re.compile(rf"{_IDENTIFIER_PART}(?:\.{_IDENTIFIER_PART}){{0,2}}")

EXAMPLES: Mapping[ParameterType, str] = {
    "string": "enterprise",
    "number": "50000",
    "integer": "100",
    "boolean": "true",
    "array": '["a", "b"] or a,b',
    "date": "2026-01-31",
    "identifier": "analytics.accounts",
}

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def coerce_parameter(spec: ParameterSpec, value: Any) -> Any:
    """Check ``value`` against the parameter's type and return it in its Python type.

    Text is parsed by type (``k=v`` on the command line is always text): ``50000`` for a
    number, ``true`` for a boolean, ``a,b`` or ``["a", "b"]`` for an array.
    """
    try:
        return _coerce(spec.type, value)
    except (ValueError, TypeError) as e:
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        raise PlaybookValidationError(
            f"parameter '{spec.name}' expects {_article(spec.type)}, got {shown!r}",
            hint=f"for example {spec.name}={EXAMPLES[spec.type]}",
        ) from e


def resolve_parameters(playbook: PlaybookSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter's value: the given one, else the default.

    Unknown names and missing required values are errors.
    """
    declared = {parameter.name: parameter for parameter in playbook.parameters}
    for name in given:
        if name not in declared:
            raise PlaybookValidationError(
                f"playbook '{playbook.id}' has no parameter '{name}'",
                hint=unknown_name_hint(name, declared, "parameter"),
            )
    values: dict[str, Any] = {}
    for name, parameter in declared.items():
        if given.get(name) is not None:
            values[name] = coerce_parameter(parameter, given[name])
        elif parameter.default is not None:
            values[name] = coerce_parameter(parameter, parameter.default)
        elif parameter.required:
            raise PlaybookValidationError(
                f"playbook '{playbook.id}' needs a value for parameter '{name}'",
                hint=f"pass {name}={EXAMPLES[parameter.type]}",
            )
        else:
            values[name] = None
    return values


def to_json_value(value: Any) -> Any:
    """A parameter value as JSON (dates as ISO text)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [to_json_value(item) for item in value]
    return value


def _coerce(kind: ParameterType, value: Any) -> Any:
    if value is None:
        return None
    if kind == "string":
        if isinstance(value, bool | list | dict):
            raise TypeError("not a string")
        return str(value)
    if kind == "number":
        number = _number(value)
        return int(number) if isinstance(number, int) else number
    if kind == "integer":
        number = _number(value)
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError("not an integer")
            return int(number)
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("not a boolean")
    if kind == "array":
        if isinstance(value, list | tuple):
            return list(value)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                parsed = json.loads(text)
                if isinstance(parsed, list):
                    return parsed
                raise ValueError("not a list")
            return [item.strip() for item in text.split(",") if item.strip()]
        raise TypeError("not a list")
    if kind == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            return dt.date.fromisoformat(value.strip())
        raise TypeError("not a date")
    if kind == "identifier":
        if not isinstance(value, str) or not _DOTTED_IDENTIFIER.fullmatch(value.strip()):
            raise ValueError("not an identifier")
        return value.strip()
    raise AssertionError(kind)


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        number = float(text)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    raise TypeError("not a number")


def _article(kind: ParameterType) -> str:
    names = {
        "string": "a string",
        "number": "a number",
        "integer": "an integer",
        "boolean": "a boolean (true or false)",
        "array": "a list",
        "date": "a date (YYYY-MM-DD)",
        "identifier": "an identifier (schema.table)",
    }
    return names[kind]
