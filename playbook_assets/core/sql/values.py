"""The three kinds of value a placeholder gets, and how a value written in the YAML is spelled.

The caller, who knows where a value came from, says which kind it is: ``SqlCode`` (written in
the playbook: code), ``SqlValue`` (arrives at run time: a literal) or ``SqlIdentifier`` (a
run-time value of a parameter declared ``type: identifier``).
"""

from __future__ import annotations

import datetime
import math
import numbers
from dataclasses import dataclass

from playbook_assets.core.sql.dialects import SqlTemplateError


@dataclass(frozen=True)
class SqlCode:
    """A value written literally in the playbook YAML: SQL code, substituted as written.

    Strings, numbers, dates and datetimes are substituted as ``str(value)``; ``True``/``False``
    become ``TRUE``/``FALSE`` and ``None`` becomes ``NULL``. Lists and mappings have no single
    SQL spelling and are rejected: write the SQL text as a string instead.
    """

    value: object


@dataclass(frozen=True)
class SqlValue:
    """A value that arrives at run time, rendered as a SQL literal of the dialect.

    ``element_type`` is an optional SQL type name (``"BIGINT"``, ``"VARCHAR"``, ``"DATE"``, any
    type sqlglot reads) of a list's elements. It is only used to type the subquery an empty
    list renders as (see ``sql_literal``), which PostgreSQL, Redshift and BigQuery need when
    the left side of ``IN`` is not text (PostgreSQL) or not INT64 (BigQuery).
    """

    value: object
    element_type: str | None = None


@dataclass(frozen=True)
class SqlIdentifier:
    """A run-time value of a parameter declared ``type: identifier``.

    It must be a plain, possibly dotted identifier such as ``analytics.accounts`` or
    ``"My Schema".t`` (parts may be quoted with double quotes or backticks).
    """

    name: object


TemplateValue = SqlCode | SqlValue | SqlIdentifier


def code_text(value: object) -> str:
    """A value written in the YAML as SQL text: as written, booleans as TRUE/FALSE, None as
    NULL; lists and mappings (no single SQL spelling) and non-finite numbers are refused."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and not math.isfinite(value):
        raise SqlTemplateError(
            f"the number {value} has no SQL spelling", hint="write a finite number in the YAML"
        )
    if isinstance(value, str | numbers.Number | datetime.date | datetime.time):
        return str(value)
    raise SqlTemplateError(
        f"a {type(value).__name__} written in the YAML has no single SQL spelling",
        hint="write the SQL text as a string (for example '1, 2, 3'), or pass the list as a "
        "run-time value such as ${parameters.NAME} to get SQL literals",
    )
