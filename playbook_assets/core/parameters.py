"""Playbook parameters: checking values against their declared types.

Values arrive as YAML (defaults, schedules, params files), as ``k=v`` text on the command line,
or as Dagster run config; all go through ``coerce_parameter`` so every entry point accepts and
rejects the same values with the same message.

Two rules keep values exact:

- A value written in YAML must already have its declared type (``strict``): a string default
  written ``00123`` or ``12:30`` is refused with a hint to quote it, rather than read as a
  number. A params file keeps the text of a string parameter as written (``params_from_yaml``).
- A ``number`` travels through Dagster's run config as a float, so a number that a float cannot
  carry exactly (more than 15 significant digits, or an integer beyond 2**53) is refused, with
  the hint to declare ``integer`` (any size) or ``string``; it is never rounded silently.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from playbook_assets.core.errors import PlaybookValidationError, SourceLocation, unknown_name_hint
from playbook_assets.core.spec import ParameterSpec, ParameterType, PlaybookSpec

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
# The largest integer every float between -2**53 and 2**53 holds exactly.
_FLOAT_EXACT_INTEGER = 2**53


class _Unexact(ValueError):
    """A number a float cannot carry with every digit."""


def coerce_parameter(spec: ParameterSpec, value: Any, *, strict: bool = False) -> Any:
    """Check ``value`` against the parameter's type and return it in its Python type.

    Text is parsed by type (``k=v`` on the command line is always text): ``50000`` for a
    number, ``true`` for a boolean, ``a,b`` or ``["a", "b"]`` for an array. With ``strict``
    (values written in YAML, which has its own types) the value must already have the declared
    type: a number written for a string, or text for a number, is refused.
    """
    try:
        if strict:
            _check_yaml_type(spec.type, value)
        result = _coerce(spec.type, value)
        if spec.type == "array" and result is not None:
            result = [_coerce_element(spec, item, strict) for item in result]
        return result
    except _Unexact as e:
        raise PlaybookValidationError(
            f"parameter '{spec.name}': {_shown(value)} has more digits than a number parameter "
            "carries exactly (15 significant digits)",
            hint="declare the parameter type: integer (whole numbers of any size) or "
            "type: string, or give fewer digits",
        ) from e
    except (ValueError, TypeError) as e:
        expected = _article(spec.type)
        if spec.element_type is not None:
            expected = f"a list of {_plural(spec.element_type)}"
        hint = f"for example {spec.name}={EXAMPLES[spec.type]}"
        if strict and isinstance(value, int | float) and spec.type in {"string", "identifier"}:
            hint = f'quote it in the YAML, e.g. "{value}", to keep the text as written'
        raise PlaybookValidationError(
            f"parameter '{spec.name}' expects {expected}, got {_shown(value)}", hint=hint
        ) from e


def resolve_parameters(
    playbook: PlaybookSpec, given: Mapping[str, Any], *, strict: bool = False
) -> dict[str, Any]:
    """Every declared parameter's value: the given one, else the default.

    Unknown names and missing required values are errors. ``strict``: the given values were
    written in YAML (a schedule's parameters) and must have their declared types.
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
            values[name] = coerce_parameter(parameter, given[name], strict=strict)
        elif parameter.default is not None:
            values[name] = coerce_parameter(parameter, parameter.default, strict=True)
        elif parameter.required:
            raise PlaybookValidationError(
                f"playbook '{playbook.id}' needs a value for parameter '{name}'",
                hint=f"pass {name}={EXAMPLES[parameter.type]}",
            )
        else:
            values[name] = None
    return values


def params_from_yaml(text: str, playbook: PlaybookSpec, path: str) -> dict[str, Any]:
    """The parameters a params file (YAML or JSON) gives.

    A string parameter keeps the text written in the file (``zip: 00123`` is ``"00123"``,
    ``at: 12:30`` is ``"12:30"``, ``answer: NO`` is ``"NO"``), whatever YAML would read it
    as; other types are read as YAML values and checked against their declared type.
    """
    from playbook_assets.core.yaml_source import PlaybookYamlLoader

    loader = PlaybookYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise PlaybookValidationError(
                "a params file holds a mapping of parameter names to values",
                location=SourceLocation(path, node.start_mark.line + 1),
                hint="e.g. segment: smb",
            )
        values: dict[str, Any] = {}
        for key_node, value_node in node.value:
            name = str(loader.construct_object(key_node, deep=True))
            declared = playbook.parameter(name)
            where = SourceLocation(path, key_node.start_mark.line + 1)
            if (
                declared is not None
                and declared.type in {"string", "identifier"}
                and isinstance(value_node, yaml.ScalarNode)
                and value_node.tag != "tag:yaml.org,2002:null"
            ):
                values[name] = value_node.value
                continue
            if declared is not None and declared.type in {"string", "identifier"}:
                kind = "a list" if isinstance(value_node, yaml.SequenceNode) else "a mapping"
                if isinstance(value_node, yaml.ScalarNode):
                    values[name] = None
                    continue
                raise PlaybookValidationError(
                    f"parameter '{name}' expects {_article(declared.type)}, got {kind}",
                    location=where,
                    hint=f"for example {name}: {EXAMPLES[declared.type]}",
                )
            values[name] = loader.construct_object(value_node, deep=True)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise PlaybookValidationError(
            f"params file is not valid YAML or JSON: {getattr(e, 'problem', None) or e}",
            location=SourceLocation(path, mark.line + 1 if mark is not None else None),
        ) from e
    finally:
        loader.dispose()
    return values


def to_json_value(value: Any) -> Any:
    """A parameter value as JSON (dates as ISO text, exact numbers as numbers)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [to_json_value(item) for item in value]
    return value


def _shown(value: Any) -> str:
    return repr(value if isinstance(value, str) else json.dumps(value, default=str))


def _check_yaml_type(kind: ParameterType, value: Any) -> None:
    """A value written in YAML must have the declared type already (dates may be ISO text:
    YAML 1.2 has no date type)."""
    if value is None:
        return
    allowed: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "identifier": (str,),
        "number": (int, float),
        "integer": (int,),
        "boolean": (bool,),
        "array": (list,),
        "date": (dt.date, str),
    }
    if isinstance(value, bool) and kind != "boolean":
        raise TypeError("a boolean")
    if not isinstance(value, allowed[kind]):
        raise TypeError(f"not {kind}")
    if kind == "integer" and isinstance(value, float):
        raise TypeError("not an integer")


def _coerce_element(spec: ParameterSpec, item: Any, strict: bool) -> Any:
    element_type = spec.element_type
    if element_type is None or item is None:
        return item
    if strict:
        _check_yaml_type(element_type, item)
    return _coerce(element_type, item)


def _coerce(kind: ParameterType, value: Any) -> Any:
    if value is None:
        return None
    return _COERCERS[kind](value)


def _to_string(value: Any) -> str:
    if isinstance(value, bool | list | dict):
        raise TypeError("not a string")
    return str(value)


def _to_number(value: Any) -> int | float:
    return _number(value, exact_float=True)


def _to_integer(value: Any) -> int:
    number = _number(value, exact_float=False)
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError("not an integer")
        return int(number)
    return number


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("not a boolean")


def _to_array(value: Any) -> list[Any]:
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


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip())
    raise TypeError("not a date")


def _to_identifier(value: Any) -> str:
    if not isinstance(value, str) or not _DOTTED_IDENTIFIER.fullmatch(value.strip()):
        raise ValueError("not an identifier")
    return value.strip()


# One coercer per declared type: each returns the value in its Python type, or raises
# ValueError/TypeError (``coerce_parameter`` turns them into the message users see).
_COERCERS: Mapping[ParameterType, Callable[[Any], Any]] = {
    "string": _to_string,
    "number": _to_number,
    "integer": _to_integer,
    "boolean": _to_boolean,
    "array": _to_array,
    "date": _to_date,
    "identifier": _to_identifier,
}


def _number(value: Any, *, exact_float: bool) -> int | float:
    """An int for whole numbers written as such (any size), else a float; with
    ``exact_float`` (a ``number``, which runs through a float) a float that cannot hold every
    digit given raises ``_Unexact``, and a whole-valued float becomes an int."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        if exact_float and abs(value) > _FLOAT_EXACT_INTEGER:
            raise _Unexact(value)
        return value
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        # Dagster's Float config hands back 50000 as 50000.0: the same number, kept whole.
        return _whole(value) if exact_float else value
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
    else:
        raise TypeError("not a number")
    if re.fullmatch(r"[+-]?\d+", text):
        return _number(int(text), exact_float=exact_float)
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    if exact_float:
        try:
            if Decimal(repr(number)) != Decimal(text):
                raise _Unexact(text)
        except InvalidOperation as e:
            raise ValueError("not a number") from e
    return number


def _whole(number: float) -> int | float:
    """A float that holds a whole number as that int (run config turns 50000 into 50000.0)."""
    if number.is_integer() and abs(number) <= _FLOAT_EXACT_INTEGER:
        return int(number)
    return number


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


def _plural(kind: ParameterType) -> str:
    return {
        "string": "strings",
        "number": "numbers",
        "integer": "integers",
        "boolean": "booleans",
        "date": "dates",
    }.get(kind, kind)
