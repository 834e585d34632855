"""``${...}`` references: what parses, what is rejected, and what each resolves to."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from playbook_assets.core.errors import PlaybookValidationError, TerminalStepError
from playbook_assets.core.references import (
    Reference,
    ResolutionContext,
    distinct_column_values,
    find_references,
    parse_reference,
    resolve,
    resolve_reference,
    walk_references,
    whole_reference,
)

SYNTAX_HINT = "write ${parameters.NAME}, ${steps.ID}, ${steps.ID.COLUMN} or ${partition.key}"

# Duplicates and nulls on purpose, spread over two chunks.
DEALS = pa.concat_tables(
    [
        pa.table(
            {
                "company_id": pa.array([30, 10, None, 30], pa.int64()),
                "stage": pa.array(["won", None, "open", "won"]),
                "amount": pa.array([1.5, 2.0, 2.0, None]),
            }
        ),
        pa.table(
            {
                "company_id": pa.array([20, 10, None, 40], pa.int64()),
                "stage": pa.array(["lost", "open", "won", None]),
                "amount": pa.array([3.0, 1.5, None, 4.0]),
            }
        ),
    ]
)


def _first_appearance(values: list[Any]) -> list[Any]:
    """Distinct non-null values in order of first appearance, computed in plain Python."""
    seen: list[Any] = []
    for value in values:
        if value is not None and value not in seen:
            seen.append(value)
    return seen


@pytest.fixture
def context() -> ResolutionContext:
    return ResolutionContext(
        parameters={
            "min_arr": 50000,
            "since": dt.date(2026, 1, 31),
            "stages": ["won", "open"],
            "active": True,
            "label": "enterprise",
            "nothing": None,
        },
        steps={"deals": DEALS, "empty": pa.table({"id": pa.array([], pa.int64())})},
    )


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("parameters.min_arr", Reference("parameters", "min_arr")),
        ("steps.deals", Reference("steps", "deals")),
        ("steps.deals.company_id", Reference("steps", "deals", "company_id")),
        ("partition.key", Reference("partition", "key")),
        ("partition.start", Reference("partition", "start")),
        ("partition.end", Reference("partition", "end")),
        # A dimension of two-dimensional partitions; the catalog checks the name exists.
        ("partition.client", Reference("partition", "client")),
        (" steps._x1 ", Reference("steps", "_x1")),
    ],
)
def test_parse_every_kind(inner: str, expected: Reference) -> None:
    parsed = parse_reference(inner)
    assert parsed == expected
    assert parsed.text == "${" + inner.strip() + "}"


@pytest.mark.parametrize(
    "inner",
    [
        "steps.",
        "foo.bar",
        "parameters.",
        "parameters.a.b",
        "steps.a.b.c",
        "steps.1deals",
        "partition.",
        "partition.a.b",
        "steps",
        "",
    ],
)
def test_invalid_references_are_rejected(inner: str) -> None:
    with pytest.raises(PlaybookValidationError) as info:
        parse_reference(inner)
    assert str(info.value) == f"invalid reference '${{{inner}}}'; {SYNTAX_HINT}"


def test_find_references_in_order() -> None:
    text = "${steps.deals.company_id} in ${parameters.stages} since ${partition.start}"
    assert find_references(text) == [
        Reference("steps", "deals", "company_id"),
        Reference("parameters", "stages"),
        Reference("partition", "start"),
    ]
    assert find_references("no references, $ { } $x") == []


def test_find_references_reports_the_invalid_one() -> None:
    with pytest.raises(PlaybookValidationError) as info:
        find_references("ok ${steps.a} then ${steps.}")
    assert str(info.value) == f"invalid reference '${{steps.}}'; {SYNTAX_HINT}"


@pytest.mark.parametrize("text", ["a ${steps.x", "${steps.x", "${a${parameters.b}}"])
def test_unclosed_or_nested_reference(text: str) -> None:
    with pytest.raises(PlaybookValidationError) as info:
        find_references(text)
    assert str(info.value) == (
        f"unclosed or nested reference in '{text}'; a reference looks like ${{steps.ID}}"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${steps.deals}", Reference("steps", "deals")),
        ("  ${parameters.min_arr}\n", Reference("parameters", "min_arr")),
        ("x ${steps.deals}", None),
        ("${steps.a}${steps.b}", None),
        ("plain", None),
        (5, None),
        (None, None),
    ],
)
def test_whole_reference(value: object, expected: Reference | None) -> None:
    assert whole_reference(value) == expected


def test_whole_reference_that_is_invalid_is_an_error() -> None:
    with pytest.raises(PlaybookValidationError, match=r"invalid reference '\$\{foo\.bar\}'"):
        whole_reference("${foo.bar}")


def test_walk_references_gives_the_path_of_each_string() -> None:
    value = {
        "input": "${steps.deals}",
        "filters": [
            {"property": "stage", "values": "${parameters.stages}"},
            {"property": "id", "values": ["${steps.deals.company_id}", 3, None]},
        ],
        "template": "a ${parameters.min_arr} b ${partition.key}",
        7: ("${steps.other}",),
        "plain": "nothing here",
    }
    assert list(walk_references(value)) == [
        (("input",), Reference("steps", "deals")),
        (("filters", 0, "values"), Reference("parameters", "stages")),
        (("filters", 1, "values", 0), Reference("steps", "deals", "company_id")),
        (("template",), Reference("parameters", "min_arr")),
        (("template",), Reference("partition", "key")),
        (("7", 0), Reference("steps", "other")),
    ]


def test_walk_references_with_a_prefix_and_an_error() -> None:
    assert list(walk_references(["${steps.a}"], ("config",))) == [
        (("config", 0), Reference("steps", "a"))
    ]
    with pytest.raises(PlaybookValidationError, match="unclosed or nested reference"):
        list(walk_references({"a": ["${steps.x"]}))


# --------------------------------------------------------------------------- resolution


def test_whole_references_resolve_to_typed_values(context: ResolutionContext) -> None:
    assert resolve("${parameters.min_arr}", context) == 50000
    assert resolve("${parameters.since}", context) == dt.date(2026, 1, 31)
    assert resolve("${parameters.stages}", context) == ["won", "open"]
    assert resolve("${parameters.active}", context) is True
    assert resolve("${parameters.nothing}", context) is None
    assert resolve("${steps.deals}", context) is DEALS


def test_column_reference_is_distinct_non_null_values_in_first_appearance_order(
    context: ResolutionContext,
) -> None:
    for column in ("company_id", "stage", "amount"):
        expected = _first_appearance(DEALS.column(column).to_pylist())
        assert resolve(f"${{steps.deals.{column}}}", context) == expected
    assert resolve("${steps.deals.company_id}", context) == [30, 10, 20, 40]
    assert resolve("${steps.deals.stage}", context) == ["won", "open", "lost"]
    assert resolve("${steps.empty.id}", context) == []


def test_distinct_column_values_of_an_all_null_column() -> None:
    table = pa.table({"x": pa.array([None, None], pa.string())})
    assert distinct_column_values(table, "x", "s") == []


def test_embedded_references_are_substituted_as_text(context: ResolutionContext) -> None:
    assert resolve("ARR over ${parameters.min_arr} since ${parameters.since}", context) == (
        "ARR over 50000 since 2026-01-31"
    )
    assert resolve("${parameters.label}-${parameters.min_arr}", context) == "enterprise-50000"
    assert resolve("no reference", context) == "no reference"


def test_nested_values_are_resolved_and_other_values_kept(context: ResolutionContext) -> None:
    value = {
        "property": "company_id",
        "values": "${steps.deals.company_id}",
        "limit": 10,
        "flags": [True, None, "${parameters.min_arr}"],
        "pair": ("${parameters.label}", 1.5),
    }
    assert resolve(value, context) == {
        "property": "company_id",
        "values": [30, 10, 20, 40],
        "limit": 10,
        "flags": [True, None, 50000],
        "pair": ["enterprise", 1.5],
    }


def test_a_table_inside_text_is_an_error(context: ResolutionContext) -> None:
    with pytest.raises(TerminalStepError) as info:
        resolve("select * from ${steps.deals}", context)
    assert str(info.value) == (
        "'${steps.deals}' is a whole table and cannot be part of a text; "
        "use ${steps.ID.COLUMN} for a column's values"
    )


def test_unknown_column_suggests_the_closest(context: ResolutionContext) -> None:
    with pytest.raises(TerminalStepError) as info:
        resolve("${steps.deals.company}", context)
    assert str(info.value) == ("step 'deals' has no column 'company'; did you mean 'company_id'?")
    with pytest.raises(TerminalStepError) as info:
        resolve("${steps.deals.zzz}", context)
    assert str(info.value) == (
        "step 'deals' has no column 'zzz'; valid columns: amount, company_id, stage"
    )


def test_unavailable_step_and_parameter(context: ResolutionContext) -> None:
    with pytest.raises(TerminalStepError) as info:
        resolve("${steps.deal}", context)
    assert str(info.value) == (
        "the result of step 'deal' is not available for ${steps.deal}; did you mean 'deals'?"
    )
    with pytest.raises(TerminalStepError) as info:
        resolve("${parameters.min_ar}", context)
    assert str(info.value) == "no value for ${parameters.min_ar}; did you mean 'min_arr'?"


def test_partition_references(context: ResolutionContext) -> None:
    with pytest.raises(TerminalStepError) as info:
        resolve("${partition.key}", context)
    assert str(info.value) == "${partition.key} is used, but the run has no partition"

    partitioned = ResolutionContext(
        parameters={},
        steps={},
        partition={"key": "2026-01-31", "start": dt.date(2026, 1, 31), "end": dt.date(2026, 2, 1)},
    )
    assert resolve("${partition.start}", partitioned) == dt.date(2026, 1, 31)
    assert resolve("day ${partition.key} to ${partition.end}", partitioned) == (
        "day 2026-01-31 to 2026-02-01"
    )
    assert resolve_reference(Reference("partition", "key"), partitioned) == "2026-01-31"
