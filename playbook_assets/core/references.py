"""``${...}`` references: parsing and resolution.

- ``${parameters.NAME}``: a playbook parameter's value.
- ``${steps.ID}``: the whole result table of a step.
- ``${steps.ID.COLUMN}``: the distinct non-null values of that column, as a list, in order
  of first appearance.
- ``${partition.key|start|end}``: the run's partition (partitioned playbooks only).

A string that is exactly one reference resolves to the typed value; a reference inside a
longer string is substituted as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from playbook_assets.core.errors import (
    PlaybookValidationError,
    TerminalStepError,
    unknown_name_hint,
)

REFERENCE_PATTERN = re.compile(r"\$\{([^{}]*)\}")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PARAMETER = re.compile(rf"parameters\.({_NAME})")
_STEP = re.compile(rf"steps\.({_NAME})(?:\.({_NAME}))?")
_PARTITION = re.compile(rf"partition\.({_NAME})")

ReferenceKind = Literal["parameters", "steps", "partition"]


@dataclass(frozen=True)
class Reference:
    """One parsed ``${...}`` reference."""

    kind: ReferenceKind
    name: str
    column: str | None = None

    @property
    def text(self) -> str:
        """The reference as written."""
        suffix = f".{self.column}" if self.column else ""
        return f"${{{self.kind}.{self.name}{suffix}}}"


def parse_reference(inner: str) -> Reference:
    """Parse the text between ``${`` and ``}``."""
    text = inner.strip()
    if match := _PARAMETER.fullmatch(text):
        return Reference("parameters", match.group(1))
    if match := _STEP.fullmatch(text):
        return Reference("steps", match.group(1), match.group(2))
    if match := _PARTITION.fullmatch(text):
        return Reference("partition", match.group(1))
    raise PlaybookValidationError(
        f"invalid reference '${{{inner}}}'",
        hint="write ${parameters.NAME}, ${steps.ID}, ${steps.ID.COLUMN} or ${partition.key}",
    )


def find_references(text: str) -> list[Reference]:
    """Every reference in a string; a ``${`` that does not close is an error."""
    references = [parse_reference(match.group(1)) for match in REFERENCE_PATTERN.finditer(text)]
    remainder = REFERENCE_PATTERN.sub("", text)
    if "${" in remainder:
        raise PlaybookValidationError(
            f"unclosed or nested reference in '{text}'", hint="a reference looks like ${steps.ID}"
        )
    return references


def whole_reference(value: Any) -> Reference | None:
    """The reference when ``value`` is a string that is exactly one reference."""
    if not isinstance(value, str):
        return None
    match = REFERENCE_PATTERN.fullmatch(value.strip())
    return parse_reference(match.group(1)) if match else None


def walk_references(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Reference]]:
    """Every reference in a nested value, with the path of the string holding it."""
    if isinstance(value, str):
        for reference in find_references(value):
            yield path, reference
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk_references(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from walk_references(item, (*path, index))


@dataclass(frozen=True)
class ResolutionContext:
    """What references resolve against during a run."""

    parameters: Mapping[str, Any]
    steps: Mapping[str, pa.Table]
    partition: Mapping[str, Any] | None = None


def resolve(value: Any, context: ResolutionContext) -> Any:
    """Replace references in a nested value by their run-time values."""
    if isinstance(value, str):
        reference = whole_reference(value)
        if reference is not None:
            return resolve_reference(reference, context)
        if "${" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            resolved = resolve_reference(parse_reference(match.group(1)), context)
            if isinstance(resolved, pa.Table):
                raise TerminalStepError(
                    f"'{match.group(0)}' is a whole table and cannot be part of a text",
                    hint="use ${steps.ID.COLUMN} for a column's values",
                )
            return str(resolved)

        return REFERENCE_PATTERN.sub(substitute, value)
    if isinstance(value, Mapping):
        return {key: resolve(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(item, context) for item in value]
    return value


def resolve_reference(reference: Reference, context: ResolutionContext) -> Any:
    """The run-time value of one reference."""
    if reference.kind == "parameters":
        if reference.name not in context.parameters:
            raise TerminalStepError(
                f"no value for {reference.text}",
                hint=unknown_name_hint(reference.name, context.parameters, "parameter"),
            )
        return context.parameters[reference.name]
    if reference.kind == "partition":
        if context.partition is None:
            raise TerminalStepError(f"{reference.text} is used, but the run has no partition")
        return context.partition[reference.name]
    table = context.steps.get(reference.name)
    if table is None:
        raise TerminalStepError(
            f"the result of step '{reference.name}' is not available for {reference.text}",
            hint=unknown_name_hint(reference.name, context.steps, "step"),
        )
    if reference.column is None:
        return table
    return distinct_column_values(table, reference.column, reference.name)


def distinct_column_values(table: pa.Table, column: str, step_id: str) -> list[Any]:
    """The distinct non-null values of a column, in order of first appearance."""
    if column not in table.column_names:
        raise TerminalStepError(
            f"step '{step_id}' has no column '{column}'",
            hint=unknown_name_hint(column, table.column_names, "column"),
        )
    return table.column(column).drop_null().unique().to_pylist()
