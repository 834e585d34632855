"""The SQL dialects templates are rendered for, and the errors of rendering and the guard.

Dialects use sqlglot's names: duckdb, postgres (also "postgresql"), redshift, snowflake,
bigquery, databricks.
"""

from __future__ import annotations

import functools

from sqlglot.dialects.dialect import Dialect
from sqlglot.tokenizer_core import TokenType

from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint


class SqlTemplateError(PlaybookValidationError):
    """A SQL template or one of its values cannot be rendered safely."""


class UnsafeSqlError(PlaybookValidationError):
    """A statement is not a single read-only query and the connection does not allow writes."""


SUPPORTED_DIALECTS: tuple[str, ...] = (
    "bigquery",
    "databricks",
    "duckdb",
    "postgres",
    "redshift",
    "snowflake",
)
_DIALECT_ALIASES: dict[str, str] = {"postgresql": "postgres"}

# Tokens whose text is quoted (strings of every kind, quoted names): a run-time value must
# never land inside one, and keywords inside one are not keywords.
STRINGLIKE_TOKENS = frozenset(
    token_type
    for token_type in TokenType
    if token_type.name.endswith("STRING") or token_type is TokenType.IDENTIFIER
)


def normalize_dialect(dialect: str) -> str:
    """The sqlglot name of a supported dialect (``"postgresql"`` -> ``"postgres"``).

    Raises SqlTemplateError with a did-you-mean for an unknown dialect.
    """
    key = dialect.strip().lower()
    key = _DIALECT_ALIASES.get(key, key)
    if key not in SUPPORTED_DIALECTS:
        raise SqlTemplateError(
            f"unknown SQL dialect '{dialect}'",
            hint=unknown_name_hint(key, [*SUPPORTED_DIALECTS, *_DIALECT_ALIASES], "dialect"),
        )
    return key


@functools.cache
def sqlglot_dialect(name: str) -> Dialect:
    """sqlglot's dialect object of a normalized dialect name (made once)."""
    return Dialect.get_or_raise(name)


def preview(value: str) -> str:
    """A value short enough to quote in an error message."""
    return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
