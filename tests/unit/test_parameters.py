"""Parameter values: every type from text and native values, and how a playbook's set resolves."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.parameters import coerce_parameter, resolve_parameters, to_json_value
from playbook_assets.core.spec import ParameterSpec, ParameterType, PlaybookSpec


def _spec(kind: ParameterType, name: str = "x") -> ParameterSpec:
    return ParameterSpec(name=name, type=kind)


def _playbook(*parameters: dict[str, Any]) -> PlaybookSpec:
    return PlaybookSpec.model_validate(
        {
            "id": "pipeline",
            "name": "Pipeline",
            "parameters": list(parameters),
            "steps": [
                {
                    "id": "a",
                    "type": "filter",
                    "config": {"input": "${steps.b}", "condition": "x > 1"},
                }
            ],
        }
    )


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        # number: integers stay int, decimals are float
        ("number", "50000", 50000),
        ("number", " 50000 ", 50000),
        ("number", "1_000", 1000),
        ("number", "-0.5", -0.5),
        ("number", "+7", 7),
        ("number", "1e3", 1000.0),
        ("number", 42, 42),
        ("number", 2.5, 2.5),
        # integer
        ("integer", "100", 100),
        ("integer", "3.0", 3),
        ("integer", 3.0, 3),
        ("integer", -4, -4),
        ("integer", "-12", -12),
        # boolean
        ("boolean", "true", True),
        ("boolean", "True", True),
        ("boolean", "yes", True),
        ("boolean", "1", True),
        ("boolean", "on", True),
        ("boolean", " NO ", False),
        ("boolean", "false", False),
        ("boolean", "0", False),
        ("boolean", "off", False),
        ("boolean", True, True),
        ("boolean", False, False),
        # array
        ("array", '["a", "b"]', ["a", "b"]),
        ("array", "[1, 2.5, null]", [1, 2.5, None]),
        ("array", "a,b", ["a", "b"]),
        ("array", " a , b,,c ", ["a", "b", "c"]),
        ("array", "single", ["single"]),
        ("array", "", []),
        ("array", "[]", []),
        ("array", ["x", 1], ["x", 1]),
        ("array", ("x", "y"), ["x", "y"]),
        # date
        ("date", "2026-01-31", dt.date(2026, 1, 31)),
        ("date", " 2026-01-31 ", dt.date(2026, 1, 31)),
        ("date", dt.date(2026, 2, 1), dt.date(2026, 2, 1)),
        ("date", dt.datetime(2026, 1, 31, 23, 59), dt.date(2026, 1, 31)),
        # identifier
        ("identifier", "accounts", "accounts"),
        ("identifier", "analytics.accounts", "analytics.accounts"),
        ("identifier", "db.analytics.accounts", "db.analytics.accounts"),
        ("identifier", '"My Schema".t', '"My Schema".t'),
        ("identifier", " _t1 ", "_t1"),
        # string
        ("string", "enterprise", "enterprise"),
        ("string", "", ""),
        ("string", 5, "5"),
        ("string", 2.5, "2.5"),
    ],
)
def test_accepted_values(kind: ParameterType, value: Any, expected: Any) -> None:
    result = coerce_parameter(_spec(kind), value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "kind", ["string", "number", "integer", "boolean", "array", "date", "identifier"]
)
def test_none_means_no_value_for_every_type(kind: ParameterType) -> None:
    assert coerce_parameter(_spec(kind), None) is None


def test_array_returns_a_new_list() -> None:
    given = ["a"]
    result = coerce_parameter(_spec("array"), given)
    assert result == ["a"]
    result.append("b")
    assert given == ["a"]


# --------------------------------------------------------------------------- rejected


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("number", "abc", "parameter 'x' expects a number, got 'abc'; for example x=50000"),
        ("number", "nan", "parameter 'x' expects a number, got 'nan'; for example x=50000"),
        ("number", "inf", "parameter 'x' expects a number, got 'inf'; for example x=50000"),
        (
            "number",
            "-Infinity",
            "parameter 'x' expects a number, got '-Infinity'; for example x=50000",
        ),
        ("number", float("nan"), "parameter 'x' expects a number, got 'NaN'; for example x=50000"),
        (
            "number",
            float("inf"),
            "parameter 'x' expects a number, got 'Infinity'; for example x=50000",
        ),
        ("number", True, "parameter 'x' expects a number, got 'true'; for example x=50000"),
        ("number", "", "parameter 'x' expects a number, got ''; for example x=50000"),
        ("number", [1], "parameter 'x' expects a number, got '[1]'; for example x=50000"),
        ("integer", "3.5", "parameter 'x' expects an integer, got '3.5'; for example x=100"),
        ("integer", 3.5, "parameter 'x' expects an integer, got '3.5'; for example x=100"),
        ("integer", False, "parameter 'x' expects an integer, got 'false'; for example x=100"),
        ("integer", "ten", "parameter 'x' expects an integer, got 'ten'; for example x=100"),
        (
            "boolean",
            "maybe",
            "parameter 'x' expects a boolean (true or false), got 'maybe'; for example x=true",
        ),
        (
            "boolean",
            1,
            "parameter 'x' expects a boolean (true or false), got '1'; for example x=true",
        ),
        (
            "array",
            '["a", "b"',
            """parameter 'x' expects a list, got '["a", "b"'; for example x=["a", "b"] or a,b""",
        ),
        (
            "array",
            {"a": 1},
            """parameter 'x' expects a list, got '{"a": 1}'; for example x=["a", "b"] or a,b""",
        ),
        (
            "array",
            5,
            """parameter 'x' expects a list, got '5'; for example x=["a", "b"] or a,b""",
        ),
        (
            "date",
            "2026-13-01",
            "parameter 'x' expects a date (YYYY-MM-DD), got '2026-13-01'; for example x=2026-01-31",
        ),
        (
            "date",
            "31/01/2026",
            "parameter 'x' expects a date (YYYY-MM-DD), got '31/01/2026'; for example x=2026-01-31",
        ),
        (
            "date",
            20260131,
            "parameter 'x' expects a date (YYYY-MM-DD), got '20260131'; for example x=2026-01-31",
        ),
        (
            "identifier",
            "a;drop",
            "parameter 'x' expects an identifier (schema.table), got 'a;drop'; "
            "for example x=analytics.accounts",
        ),
        (
            "identifier",
            "a b",
            "parameter 'x' expects an identifier (schema.table), got 'a b'; "
            "for example x=analytics.accounts",
        ),
        (
            "identifier",
            "a.b.c.d",
            "parameter 'x' expects an identifier (schema.table), got 'a.b.c.d'; "
            "for example x=analytics.accounts",
        ),
        (
            "identifier",
            "1table",
            "parameter 'x' expects an identifier (schema.table), got '1table'; "
            "for example x=analytics.accounts",
        ),
        (
            "identifier",
            "t--",
            "parameter 'x' expects an identifier (schema.table), got 't--'; "
            "for example x=analytics.accounts",
        ),
        (
            "identifier",
            '"a"b".t',
            "parameter 'x' expects an identifier (schema.table), got '\"a\"b\".t'; "
            "for example x=analytics.accounts",
        ),
        (
            "identifier",
            5,
            "parameter 'x' expects an identifier (schema.table), got '5'; "
            "for example x=analytics.accounts",
        ),
        ("string", True, "parameter 'x' expects a string, got 'true'; for example x=enterprise"),
        (
            "string",
            ["a"],
            """parameter 'x' expects a string, got '["a"]'; for example x=enterprise""",
        ),
    ],
)
def test_rejected_values(kind: ParameterType, value: Any, message: str) -> None:
    with pytest.raises(PlaybookValidationError) as info:
        coerce_parameter(_spec(kind), value)
    assert str(info.value) == message
    assert isinstance(info.value.__cause__, ValueError | TypeError)


def test_message_uses_the_parameter_name() -> None:
    with pytest.raises(PlaybookValidationError) as info:
        coerce_parameter(ParameterSpec(name="min_arr", type="number"), "50k")
    assert str(info.value) == (
        "parameter 'min_arr' expects a number, got '50k'; for example min_arr=50000"
    )
    assert info.value.hint == "for example min_arr=50000"


# --------------------------------------------------------------------------- resolve_parameters

PARAMETERS = (
    {"name": "min_arr", "type": "number", "default": 50000},
    {"name": "since", "type": "date", "default": "2026-01-01"},
    {"name": "region", "type": "string", "required": True},
    {"name": "stages", "type": "array"},
)


def test_defaults_are_filled_and_coerced() -> None:
    values = resolve_parameters(_playbook(*PARAMETERS), {"region": "emea"})
    assert values == {
        "min_arr": 50000,
        "since": dt.date(2026, 1, 1),
        "region": "emea",
        "stages": None,
    }
    assert list(values) == ["min_arr", "since", "region", "stages"]


def test_given_text_values_override_defaults() -> None:
    values = resolve_parameters(
        _playbook(*PARAMETERS),
        {"min_arr": "75_000.5", "since": "2026-03-01", "region": "us", "stages": "won,open"},
    )
    assert values == {
        "min_arr": 75000.5,
        "since": dt.date(2026, 3, 1),
        "region": "us",
        "stages": ["won", "open"],
    }


def test_unknown_parameter_suggests_the_closest() -> None:
    with pytest.raises(PlaybookValidationError) as info:
        resolve_parameters(_playbook(*PARAMETERS), {"region": "us", "min_ar": "1"})
    assert (
        str(info.value) == "playbook 'pipeline' has no parameter 'min_ar'; did you mean 'min_arr'?"
    )


def test_unknown_parameter_without_a_close_name_lists_the_valid_ones() -> None:
    with pytest.raises(PlaybookValidationError) as info:
        resolve_parameters(_playbook(*PARAMETERS), {"zzz": "1"})
    assert str(info.value) == (
        "playbook 'pipeline' has no parameter 'zzz'; "
        "valid parameters: min_arr, region, since, stages"
    )
    with pytest.raises(PlaybookValidationError) as info:
        resolve_parameters(_playbook(), {"zzz": "1"})
    assert str(info.value) == "playbook 'pipeline' has no parameter 'zzz'; no parameter is defined"


def test_required_parameter_missing() -> None:
    with pytest.raises(PlaybookValidationError) as info:
        resolve_parameters(_playbook(*PARAMETERS), {"min_arr": "1"})
    assert str(info.value) == (
        "playbook 'pipeline' needs a value for parameter 'region'; pass region=enterprise"
    )


def test_required_parameter_given_as_null_is_missing() -> None:
    # A params file with `region: null` gives no value: the required check must still apply.
    with pytest.raises(PlaybookValidationError) as info:
        resolve_parameters(_playbook(*PARAMETERS), {"region": None})
    assert str(info.value) == (
        "playbook 'pipeline' needs a value for parameter 'region'; pass region=enterprise"
    )


def test_required_parameter_with_a_default_uses_the_default() -> None:
    playbook = _playbook({"name": "limit", "type": "integer", "default": 10, "required": True})
    assert resolve_parameters(playbook, {}) == {"limit": 10}


def test_invalid_given_value_names_the_parameter() -> None:
    with pytest.raises(PlaybookValidationError) as info:
        resolve_parameters(_playbook(*PARAMETERS), {"region": "us", "since": "yesterday"})
    assert str(info.value) == (
        "parameter 'since' expects a date (YYYY-MM-DD), got 'yesterday'; "
        "for example since=2026-01-31"
    )


def test_to_json_value() -> None:
    assert to_json_value(dt.date(2026, 1, 31)) == "2026-01-31"
    assert to_json_value(dt.datetime(2026, 1, 31, 8, 30)) == "2026-01-31T08:30:00"
    assert to_json_value([dt.date(2026, 1, 1), 2, "x"]) == ["2026-01-01", 2, "x"]
    assert to_json_value({"a": 1}) == {"a": 1}
    assert to_json_value(None) is None
