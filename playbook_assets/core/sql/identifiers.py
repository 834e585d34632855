"""Run-time identifiers (``analytics.accounts``, ``"My Schema".t``) as SQL of a dialect."""

from __future__ import annotations

import functools
import re

from sqlglot import exp

from playbook_assets.core.sql.dialects import (
    SUPPORTED_DIALECTS,
    SqlTemplateError,
    normalize_dialect,
    preview,
    sqlglot_dialect,
)

_IDENTIFIER_PART_RE = re.compile(r'"([^"]*)"|`([^`]*)`|([A-Za-z_][A-Za-z0-9_]*)')
_PLAIN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A dot inside quotes is refused too: BigQuery reads `a.b` as the path a.b, not one name.
_FORBIDDEN_IN_QUOTES = re.compile(r'["`.\\\x00-\x1f\x7f]')


@functools.cache
def _keywords() -> frozenset[str]:
    """Every word any supported dialect's tokenizer or generator treats as a keyword.

    Deliberately broad: quoting a non-reserved keyword is harmless (its case is kept right), so
    over-quoting is safe while under-quoting would break the statement.
    """
    words: set[str] = set()
    for name in SUPPORTED_DIALECTS:
        dialect = sqlglot_dialect(name)
        for key in dialect.tokenizer_class.KEYWORDS:
            words.update(word for word in key.upper().split() if word.isalpha())
        reserved = getattr(dialect.generator_class, "RESERVED_KEYWORDS", None) or ()
        words.update(word.strip().upper() for word in reserved)
    return frozenset(words)


def _split_identifier(text: str) -> list[tuple[str, bool]]:
    """``(name, was_quoted)`` per dotted part, or SqlTemplateError when not a plain identifier."""
    parts: list[tuple[str, bool]] = []
    position = 0
    while True:
        match = _IDENTIFIER_PART_RE.match(text, position)
        if match is None:
            break
        quoted = match.group(3) is None
        name = match.group(1) if match.group(1) is not None else match.group(2) or match.group(3)
        if name is None or name == "":
            break
        if quoted and _FORBIDDEN_IN_QUOTES.search(name):
            break
        parts.append((name, quoted))
        position = match.end()
        if position == len(text):
            return parts
        if text[position] != ".":
            break
        position += 1
    raise SqlTemplateError(
        f"{preview(text)} is not a plain identifier",
        hint="an identifier is a dotted name such as analytics.accounts; parts with other "
        'characters go in double quotes ("My Schema".accounts) and may not contain quotes, '
        "dots, backslashes or control characters; spaces, semicolons, comments and parentheses are "
        "not allowed outside quotes",
    )


def _identifier_part(name: str, was_quoted: bool, dialect: str) -> str:
    # Unquoted parts mean what the user typed: the exact name, except in Snowflake, where an
    # unquoted name is case-insensitive (upper-cased) exactly as it would be in written SQL.
    if not was_quoted and dialect == "snowflake":
        exact = name.upper()
    else:
        exact = name
    folded = exact.upper() if dialect == "snowflake" else exact.lower()
    bare = (
        _PLAIN_RE.fullmatch(exact) is not None
        and exact == folded
        and exact.upper() not in _keywords()
    )
    if bare:
        text = name if not was_quoted else exact
        return exp.Identifier(this=text, quoted=False).sql(dialect=dialect)
    return exp.Identifier(this=exact, quoted=True).sql(dialect=dialect)


def sql_identifier(text: object, dialect: str) -> str:
    """A run-time identifier (``analytics.accounts``, ``"My Schema".t``) as SQL for the dialect.

    Each dotted part is quoted only when needed: when it is a keyword of any supported dialect,
    has characters other than ASCII letters, digits and underscores, starts with a digit, or
    has upper-case letters outside Snowflake (PostgreSQL folds unquoted names to lower case;
    in DuckDB, Databricks and BigQuery the quotes are harmless). In Snowflake an unquoted part
    keeps Snowflake's meaning (upper-cased) and, when it must be quoted, is quoted upper-cased;
    quote the part in the value (``"lower"``) for an exact lower-case name. Anything else
    (spaces outside quotes, semicolons, comments, parentheses, unmatched quotes; quotes, dots,
    backslashes or control characters inside a quoted part) raises SqlTemplateError naming
    the value.
    """
    dialect = normalize_dialect(dialect)
    if not isinstance(text, str):
        raise SqlTemplateError(
            f"an identifier must be a string, got {type(text).__name__} {text!r}",
            hint="pass a table or column name such as analytics.accounts",
        )
    return ".".join(
        _identifier_part(name, quoted, dialect) for name, quoted in _split_identifier(text)
    )
