"""Column names in expressions: quoting them, and finding them among a table's columns
(case-insensitively, as DuckDB does), with a did-you-mean when one is unknown."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Protocol

from sqlglot import exp

from playbook_assets.core.expressions.language import DIALECT, ExpressionError

_MAX_LISTED_COLUMNS = 40


class ReferencesColumns(Protocol):
    """A parsed expression: its text and the column names it references."""

    @property
    def text(self) -> str: ...

    @property
    def columns(self) -> frozenset[str]: ...


def quote_identifier(name: str) -> str:
    """``name`` as a quoted DuckDB identifier (``"a""b"`` for ``a"b``)."""
    return exp.to_identifier(name, quoted=True).sql(dialect=DIALECT)


def find_column(name: str, available: Sequence[str]) -> str | None:
    """The available column ``name`` refers to: exact match first, then case-insensitive."""
    if name in available:
        return name
    lowered = name.lower()
    matches = [col for col in available if col.lower() == lowered]
    return matches[0] if len(matches) == 1 else None


def unknown_column(name: str, available: Sequence[str], context: str) -> ExpressionError:
    """The error for a column ``name`` that ``available`` does not have, with the closest one."""
    by_lower = {col.lower(): col for col in available}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    suggestion = f"did you mean '{by_lower[close[0]]}'?" if close else None
    names = sorted(set(available))
    listed = ", ".join(names[:_MAX_LISTED_COLUMNS])
    if len(names) > _MAX_LISTED_COLUMNS:
        listed += f", ... ({len(names)} in all)"
    columns = f"available columns: {listed}" if names else "the input has no columns"
    note = f"{columns} (names match case-insensitively, as in DuckDB)"
    hint = f"{suggestion} {note}" if suggestion else note
    return ExpressionError(f"unknown column '{name}' in {context}", hint=hint)


def resolve_column(name: str, available: Sequence[str], context: str) -> str:
    """The actual name of column ``name`` in ``available`` (case-insensitive, as DuckDB).

    Raises ``ExpressionError`` with a did-you-mean and the available columns when unknown.
    """
    found = find_column(name, available)
    if found is None:
        raise unknown_column(name, available, context)
    return found


def check_columns(parsed: ReferencesColumns, available: Sequence[str], context: str) -> None:
    """Check that every column ``parsed`` references is in ``available``.

    ``context`` says where the expression is (e.g. ``"filter condition"``); for a join pass the
    columns of both tables (``ParsedJoinOn.resolve`` also checks each side). Names match
    case-insensitively, like DuckDB identifiers.
    """
    for name in sorted(parsed.columns):
        resolve_column(name, available, f"{context} '{parsed.text}'")
