"""Safe SQL template rendering per warehouse dialect, and the read-only guard.

A warehouse step's SQL is a template with ``{{name}}`` placeholders. Each placeholder gets one
of three kinds of value, and the caller (who knows where a value came from) says which:

- ``SqlCode``: a value written literally in the playbook YAML. It is code, written by the
  playbook's author, and is substituted as written (``str(value)``; YAML booleans become
  ``TRUE``/``FALSE`` and a YAML null becomes ``NULL``).
- ``SqlValue``: a value that arrives at run time (a parameter, a step result, a partition key).
  It is rendered as a SQL literal of the warehouse's dialect by sqlglot's generator, so it can
  never change the structure of the statement.
- ``SqlIdentifier``: a run-time value of a parameter declared ``type: identifier``. It must be a
  plain, possibly dotted, identifier (``analytics.accounts``, ``"My Schema".t``) and is quoted in
  the dialect where needed.

After substitution, every run-time value is checked in place with sqlglot's tokenizer: its
tokens must be exactly the tokens it has on its own, with no token crossing its edges. This
rejects a template that puts a run-time value inside a quoted string (``'{{v}}'``), a quoted
identifier or a comment, or glues it to neighbouring characters (``x -{{v}}`` with ``-5`` would
read ``x --5``, a comment).

Dialects use sqlglot's names: duckdb, postgres (also "postgresql"), redshift, snowflake,
bigquery, databricks. PostgreSQL strings are rendered as standard strings (a backslash is an
ordinary character), which assumes ``standard_conforming_strings = on``, the default since
PostgreSQL 9.1; BigQuery, Databricks, Snowflake and Redshift strings use backslash escapes.
"""

from __future__ import annotations

import datetime
import functools
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from playbook_assets.core.errors import PlaybookValidationError, did_you_mean, unknown_name_hint

__all__ = [
    "SUPPORTED_DIALECTS",
    "SqlCode",
    "SqlIdentifier",
    "SqlTemplateError",
    "SqlValue",
    "TemplateValue",
    "UnsafeSqlError",
    "ensure_read_only",
    "normalize_dialect",
    "placeholders",
    "render_sql",
    "sql_identifier",
    "sql_literal",
]


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

_WRITE_HINT = "set allow_writes: true on the connection to allow writes"
_READ_ONLY = "only a single read-only statement is allowed"


# ---------------------------------------------------------------------------------------------
# Values


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


# ---------------------------------------------------------------------------------------------
# Dialects


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
def _dialect(name: str) -> Dialect:
    return Dialect.get_or_raise(name)


# ---------------------------------------------------------------------------------------------
# Placeholders

_PLACEHOLDER_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Placeholder:
    name: str
    start: int
    end: int


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {col}"


def _scan(template: str) -> list[_Placeholder]:
    found: list[_Placeholder] = []
    position = 0
    for match in _PLACEHOLDER_RE.finditer(template):
        stray = template.find("{{", position, match.start())
        if stray != -1:
            raise _unbalanced(template, stray)
        name = match.group(1).strip()
        if not _NAME_RE.fullmatch(name):
            shown = match.group(0) if len(match.group(0)) <= 60 else match.group(0)[:57] + "..."
            raise SqlTemplateError(
                f"malformed placeholder {shown} at {_line_col(template, match.start())} of the "
                "SQL template",
                hint="a placeholder is {{name}} where name is letters, digits and underscores "
                "and does not start with a digit",
            )
        found.append(_Placeholder(name, match.start(), match.end()))
        position = match.end()
    stray = template.find("{{", position)
    if stray != -1:
        raise _unbalanced(template, stray)
    return found


def _unbalanced(template: str, offset: int) -> SqlTemplateError:
    return SqlTemplateError(
        f"unbalanced '{{{{' at {_line_col(template, offset)} of the SQL template",
        hint="close the placeholder with '}}', as in {{name}}",
    )


def placeholders(template: str) -> list[str]:
    """The distinct ``{{ name }}`` placeholder names of a template, in order of first use.

    Whitespace inside the braces is allowed. A malformed placeholder (``{{ }}``, ``{{a-b}}``,
    an unclosed ``{{``) raises SqlTemplateError with its line and column. A lone ``}}`` is
    ordinary SQL text (DuckDB struct literals end with it).
    """
    return list(dict.fromkeys(p.name for p in _scan(template)))


# ---------------------------------------------------------------------------------------------
# Literals


def _scalar_literal(value: object, dialect: str) -> str:
    """One run-time scalar as a SQL literal, generated by sqlglot for the dialect."""
    node: exp.Expr
    if value is None:
        node = exp.null()
    elif isinstance(value, bool):
        node = exp.convert(value)
    elif isinstance(value, str):
        if "\x00" in value:
            raise SqlTemplateError(
                f"the string {_preview(value)} contains a NUL character, which SQL strings "
                "cannot hold",
                hint="remove the NUL characters from the value",
            )
        node = exp.Literal.string(value)
    elif isinstance(value, numbers.Integral):
        # Digits need no escaping in any dialect; skipping the generator matters for the
        # thousands of ids a ${steps.X.id} list can hold.
        return str(int(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise SqlTemplateError(
                f"the number {value} has no SQL literal", hint="pass a finite number or None"
            )
        node = exp.Literal.number(format(value, "f"))
    elif isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise SqlTemplateError(
                f"the number {number} has no SQL literal", hint="pass a finite number or None"
            )
        node = exp.Literal.number(repr(number))
    elif isinstance(value, datetime.date):
        # datetime is a subclass of date: exp.convert gives CAST('...' AS TIMESTAMP) for a naive
        # datetime, TIMESTAMPTZ for an aware one, DATE for a date, in the dialect's type names.
        node = exp.convert(value)
    else:
        raise SqlTemplateError(
            f"cannot render a {type(value).__name__} value as a SQL literal",
            hint="supported values are str, int, float, Decimal, bool, None, date, datetime, "
            "and lists or tuples of those",
        )
    return node.sql(dialect=dialect)


def _preview(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."


def _empty_list_subquery(element_type: str | None, dialect: str) -> str:
    column: exp.Expr = exp.null()
    if element_type is not None:
        try:
            data_type = exp.DataType.build(element_type, dialect=dialect)
        except (SqlglotError, ValueError) as e:
            raise SqlTemplateError(
                f"unknown SQL type '{element_type}' for the elements of an empty list: {e}",
                hint="use a type name such as BIGINT, VARCHAR, DATE or TIMESTAMP",
            ) from e
        column = exp.cast(column, data_type)
    return exp.select(column).limit(0).sql(dialect=dialect)


def sql_literal(
    value: object, dialect: str, *, element_type: str | None = None, in_list: bool = True
) -> str:
    """A run-time value as SQL literal text for the dialect.

    str, int, float (finite), Decimal, bool, None, date (``CAST('2026-01-31' AS DATE)``),
    datetime (``CAST(... AS TIMESTAMP)``, ``TIMESTAMPTZ`` when it has a time zone; sqlglot spells
    the type per dialect, e.g. BigQuery DATETIME/TIMESTAMP), and a list or tuple of those as
    comma-separated literals (``1, 2, 3``) for ``IN ({{x}})``. Nested lists, mappings, sets and
    other types are rejected; so are NUL characters in strings, which no warehouse stores.

    An empty list renders as the subquery ``SELECT NULL LIMIT 0`` (``SELECT CAST(NULL AS T)
    LIMIT 0`` with ``element_type``), so ``x IN ({{x}})`` reads ``x IN (SELECT NULL LIMIT 0)``:
    a set with no rows, so ``IN`` is false and ``NOT IN`` is true for every row, NULLs
    included, and the statement still parses. ``NULL`` would not do: ``x NOT IN (NULL)`` is
    never true, so NOT IN would match nothing instead of everything. ``LIMIT 0`` rather than
    ``WHERE FALSE`` because BigQuery refuses a WHERE clause without FROM. Limits: the left side
    of IN is compared with the subquery's column type, which is text in PostgreSQL/Redshift and
    INT64 in BigQuery for a bare NULL (DuckDB, Snowflake and Databricks accept any type), so
    pass ``element_type`` there; and the subquery only makes sense inside ``IN ( )``, so with
    ``in_list=False`` (``render_sql`` sets it when the placeholder is not written as
    ``IN ({{x}})``) an empty list is an error.
    """
    dialect = normalize_dialect(dialect)
    if isinstance(value, list | tuple):
        items: Sequence[object] = value
        if not items:
            if not in_list:
                raise SqlTemplateError(
                    "an empty list can only be rendered inside IN ( ), where it matches nothing",
                    hint="write the placeholder as IN ({{name}}) or make sure the list is not "
                    "empty",
                )
            return _empty_list_subquery(element_type, dialect)
        for item in items:
            if isinstance(item, list | tuple | set | frozenset | Mapping):
                raise SqlTemplateError(
                    f"a list element is a {type(item).__name__}; lists of lists, sets and "
                    "mappings have no SQL literal",
                    hint="pass a flat list of scalar values",
                )
        return ", ".join(_scalar_literal(item, dialect) for item in items)
    return _scalar_literal(value, dialect)


# ---------------------------------------------------------------------------------------------
# Identifiers

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
        dialect = _dialect(name)
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
        f"{_preview(text)} is not a plain identifier",
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


# ---------------------------------------------------------------------------------------------
# Code


def _code(value: object) -> str:
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


# ---------------------------------------------------------------------------------------------
# Rendering

_IN_BEFORE_RE = re.compile(r"\bIN\s*\(\s*\Z", re.IGNORECASE)
_IN_AFTER_RE = re.compile(r"\A\s*\)")
_STRINGLIKE = frozenset(
    token_type
    for token_type in TokenType
    if token_type.name.endswith("STRING") or token_type is TokenType.IDENTIFIER
)


@dataclass(frozen=True)
class _Insertion:
    name: str
    start: int
    end: int
    text: str


def _in_list(placeholder: _Placeholder, template: str) -> bool:
    """Whether the placeholder is written as ``IN ({{name}})``."""
    return bool(
        _IN_BEFORE_RE.search(template, 0, placeholder.start)
        and _IN_AFTER_RE.match(template[placeholder.end :])
    )


def _render_one(
    placeholder: _Placeholder, value: TemplateValue, template: str, dialect: str
) -> str:
    try:
        if isinstance(value, SqlCode):
            return _code(value.value)
        if isinstance(value, SqlIdentifier):
            return sql_identifier(value.name, dialect)
        if isinstance(value, SqlValue):
            return sql_literal(
                value.value,
                dialect,
                element_type=value.element_type,
                in_list=_in_list(placeholder, template),
            )
    except SqlTemplateError as e:
        e.message = f"placeholder {{{{{placeholder.name}}}}}: {e.message}"
        e.args = (e.render(),)
        raise
    raise SqlTemplateError(
        f"placeholder {{{{{placeholder.name}}}}}: the value is a {type(value).__name__}, "
        "not SqlCode, SqlValue or SqlIdentifier",
        hint="wrap it to say whether it is YAML code, a run-time value or an identifier",
    )


def _tokenize(sql: str, dialect: str, what: str) -> list[Token]:
    try:
        return _dialect(dialect).tokenize(sql)
    except (TokenError, SqlglotError) as e:
        raise SqlTemplateError(
            f"cannot read {what} as {dialect} SQL to check where run-time values land: {e}",
            hint="check the template for an unterminated string, quoted name or comment",
        ) from e


def _context(sql: str, start: int, end: int) -> str:
    before = sql[max(0, start - 20) : start]
    after = sql[end : end + 20]
    inner = sql[start:end] if end - start <= 40 else sql[start : start + 37] + "..."
    return repr(before + inner + after)


def _check_insertions(sql: str, insertions: list[_Insertion], dialect: str) -> None:
    """Each run-time value must read as the same tokens in place as on its own."""
    tokens = _tokenize(sql, dialect, "the rendered SQL")
    for insertion in insertions:
        inside: list[Token] = []
        for token in tokens:
            token_start, token_end = token.start, token.end + 1
            if token_end <= insertion.start or token_start >= insertion.end:
                continue
            if token_start < insertion.start or token_end > insertion.end:
                if token.token_type in _STRINGLIKE:
                    raise SqlTemplateError(
                        f"placeholder {{{{{insertion.name}}}}} is inside a quoted string or "
                        "quoted name in the template, where a run-time value would change "
                        f"the statement: {_context(sql, insertion.start, insertion.end)}",
                        hint="remove the quotes around the placeholder: run-time values are "
                        "rendered as quoted SQL literals for you",
                    )
                raise _glued(insertion, sql)
            inside.append(token)
        alone = _tokenize(insertion.text, dialect, f"the value of {{{{{insertion.name}}}}}")
        if [(t.token_type, t.text) for t in inside] != [(t.token_type, t.text) for t in alone]:
            if not inside:
                raise SqlTemplateError(
                    f"the value of placeholder {{{{{insertion.name}}}}} ends up inside a comment: "
                    f"{_context(sql, insertion.start, insertion.end)}",
                    hint="move the placeholder out of the comment, and put a space before it "
                    "when the character before it is '-' or '/'",
                )
            raise _glued(insertion, sql)


def _glued(insertion: _Insertion, sql: str) -> SqlTemplateError:
    return SqlTemplateError(
        f"the value of placeholder {{{{{insertion.name}}}}} merges with the text around it in "
        f"the template, which would change the statement: "
        f"{_context(sql, insertion.start, insertion.end)}",
        hint="put spaces around the placeholder and keep it out of strings and comments",
    )


def _integer_list(value: TemplateValue) -> bool:
    """A run-time list of more than two integers (their literals are plain digits)."""
    if not isinstance(value, SqlValue) or not isinstance(value.value, list | tuple):
        return False
    items = value.value
    return len(items) > 2 and all(
        isinstance(item, numbers.Integral) and not isinstance(item, bool) for item in items
    )


def render_sql(
    template: str,
    values: Mapping[str, TemplateValue],
    dialect: str,
    *,
    read_only: bool = False,
) -> str:
    """The statement with every placeholder rendered as literals (``render_sql_binding``
    without binding lists)."""
    return render_sql_binding(template, values, dialect, read_only=read_only).sql


# A run-time list longer than this, written as ``IN ({{name}})``, travels as a one-column table
# where the warehouse can read one (``bind_lists_over``): DuckDB took 24 s to parse a query with
# 1M integer literals and 0.06 s to read the same ids as an Arrow table.
LIST_BINDING_THRESHOLD = 1000
BOUND_LIST_COLUMN = "value"


@dataclass(frozen=True)
class RenderedSql:
    """A rendered statement and the lists it reads as tables (relation name -> values)."""

    sql: str
    lists: Mapping[str, list[Any]]


def bound_list_relation(placeholder: str) -> str:
    """The name of the table a bound list is read from (placeholder names are identifiers)."""
    return f"playbook_list_{placeholder}"


def _bindable(value: TemplateValue, threshold: int | None) -> bool:
    """A long list of integers or of strings (one type: the table has one column type)."""
    if threshold is None or not isinstance(value, SqlValue):
        return False
    items = value.value
    if not isinstance(items, list | tuple) or len(items) <= threshold:
        return False
    if all(isinstance(item, str) for item in items):
        return True
    return all(isinstance(item, numbers.Integral) and not isinstance(item, bool) for item in items)


def render_sql_binding(
    template: str,
    values: Mapping[str, TemplateValue],
    dialect: str,
    *,
    read_only: bool = False,
    bind_lists_over: int | None = None,
) -> RenderedSql:
    """Replace every ``{{name}}`` of a SQL template with its value rendered for the dialect.

    With ``bind_lists_over``, a run-time list of more than that many integers or strings
    written as ``IN ({{name}})`` is rendered as ``IN (SELECT value FROM playbook_list_<name>)``
    and returned in ``lists``, for a warehouse that registers it as a table (see
    ``WarehouseResource.binds_lists``); every other value is a literal.

    ``values`` maps placeholder names to ``SqlCode`` (YAML text, substituted as written),
    ``SqlValue`` (run-time value, rendered as a literal, see ``sql_literal``) or
    ``SqlIdentifier`` (run-time identifier, see ``sql_identifier``). Values the template does not
    use are ignored. Substitution is a single pass, so ``{{...}}`` inside a value is never
    expanded. Raises SqlTemplateError for a malformed placeholder, a placeholder without a value
    (with the closest given name), an unknown dialect, a value that cannot be rendered, or a
    run-time value that would not stand as its own tokens in the statement (inside quotes or a
    comment, or glued to neighbouring characters). With ``read_only``, the statement must also
    pass ``ensure_read_only``.

    The checks read a skeleton of the statement in which a list of more than two integers
    keeps only its first and last element: its other elements are plain digits between
    commas, so they cannot change what the checks see, and a list of thousands of ids (from
    ``${steps.X.id}``) is not read again token by token.
    """
    dialect = normalize_dialect(dialect)
    found = _scan(template)
    pieces: list[str] = []
    skeleton: list[str] = []
    insertions: list[_Insertion] = []
    lists: dict[str, list[Any]] = {}
    position = 0
    length = 0
    for placeholder in found:
        if placeholder.name not in values:
            raise SqlTemplateError(
                f"the SQL template uses {{{{{placeholder.name}}}}} but no value named "
                f"'{placeholder.name}' is given",
                hint=did_you_mean(placeholder.name, values)
                or unknown_name_hint(placeholder.name, values, "parameter"),
            )
        value = values[placeholder.name]
        bound = _bindable(value, bind_lists_over) and _in_list(placeholder, template)
        if bound:
            assert isinstance(value, SqlValue) and isinstance(value.value, list | tuple)
            relation = bound_list_relation(placeholder.name)
            lists[relation] = list(value.value)
            text = f"SELECT {BOUND_LIST_COLUMN} FROM {relation}"
        else:
            text = _render_one(placeholder, value, template, dialect)
        checked = text
        if _integer_list(value) and not bound:
            assert isinstance(value, SqlValue) and isinstance(value.value, list | tuple)
            ends = SqlValue([value.value[0], value.value[-1]], value.element_type)
            checked = _render_one(placeholder, ends, template, dialect)
        literal = template[position : placeholder.start]
        pieces.append(literal)
        skeleton.append(literal)
        length += len(literal)
        if not isinstance(value, SqlCode):
            insertions.append(_Insertion(placeholder.name, length, length + len(checked), checked))
        pieces.append(text)
        skeleton.append(checked)
        length += len(checked)
        position = placeholder.end
    pieces.append(template[position:])
    skeleton.append(template[position:])
    outline = "".join(skeleton)
    if insertions:
        _check_insertions(outline, insertions, dialect)
    if read_only:
        ensure_read_only(outline, dialect)
    return RenderedSql(sql="".join(pieces), lists=lists)


# ---------------------------------------------------------------------------------------------
# Read-only guard


def _node_types(*names: str) -> tuple[type[exp.Expr], ...]:
    return tuple(
        node_type
        for name in names
        if isinstance(node_type := getattr(exp, name, None), type)
        and issubclass(node_type, exp.Expr)
    )


# Statements and clauses that write, change session or database state, or that sqlglot could
# not parse (Command: CALL, EXPLAIN, VACUUM, ... are kept as raw text, so are not trusted).
_WRITE_NODES = _node_types(
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Create",
    "Drop",
    "Alter",
    "Copy",
    "Command",
    "Set",
    "Pragma",
    "Attach",
    "Detach",
    "TruncateTable",
    "Grant",
    "Revoke",
    "Into",
    "Lock",
    "Transaction",
    "Commit",
    "Rollback",
    "Use",
    "Cache",
    "Uncache",
    "LoadData",
    "Refresh",
    "Analyze",
    "Kill",
    "Comment",
    "Install",
    "Export",
    "Execute",
    "Put",
)
_QUERY_ROOTS = _node_types("Query", "Values", "Pivot")

# Used only when sqlglot cannot parse the statement: keywords that start a write, or that mark
# one anywhere in it.
_WRITE_KEYWORDS = frozenset(
    {
        "ALTER",
        "ANALYZE",
        "ATTACH",
        "BEGIN",
        "CALL",
        "COMMENT",
        "COMMIT",
        "COPY",
        "CREATE",
        "DELETE",
        "DETACH",
        "DO",
        "DROP",
        "EXEC",
        "EXECUTE",
        "EXPORT",
        "GRANT",
        "IMPORT",
        "INSERT",
        "INSTALL",
        "INTO",
        "LOAD",
        "LOCK",
        "MERGE",
        "PRAGMA",
        "PUT",
        "REFRESH",
        "REMOVE",
        "RENAME",
        "REPLACE",
        "RESET",
        "REVOKE",
        "ROLLBACK",
        "SET",
        "TRUNCATE",
        "UNLOAD",
        "UPDATE",
        "UPSERT",
        "USE",
        "VACUUM",
    }
)
_WRITE_KEYWORDS_ANYWHERE = frozenset(
    {"ALTER", "COPY", "CREATE", "DELETE", "DROP", "GRANT", "INSERT", "INTO", "MERGE"}
    | {"REVOKE", "TRUNCATE", "UPDATE"}
)


def _describe(node: exp.Expr) -> str:
    key = node.key.upper()
    if isinstance(node, exp.Command):
        key = str(node.this).upper()
    return {"INTO": "SELECT ... INTO", "LOCK": "FOR UPDATE/SHARE lock", "SET": "SET"}.get(key, key)


def ensure_read_only(sql: str, dialect: str) -> None:
    """Raise UnsafeSqlError unless ``sql`` is exactly one read-only query.

    The statement is parsed with sqlglot in the dialect. It must be a query (SELECT, WITH ...
    SELECT, UNION/INTERSECT/EXCEPT, VALUES, DuckDB PIVOT) and contain no write anywhere: no
    INSERT/UPDATE/DELETE/MERGE (also not in a WITH clause, as PostgreSQL allows), no SELECT ...
    INTO, no FOR UPDATE, no DDL, COPY, ATTACH, PRAGMA, SET, CALL, GRANT, and nothing sqlglot
    keeps as unparsed text. A trailing ``;`` is fine.

    When sqlglot cannot parse the SQL (warehouse syntax it does not know), the check falls
    back to its tokenizer rather than refusing valid SQL: it still rejects two non-empty
    statements separated by ``;``, a statement starting with a write keyword, and the keywords
    INSERT, UPDATE, DELETE, MERGE, INTO, CREATE, DROP, ALTER, TRUNCATE, COPY, GRANT, REVOKE
    anywhere (outside strings, quoted names and comments). SQL that cannot even be tokenized (an
    unterminated string or comment) raises UnsafeSqlError with sqlglot's message.

    This is a guard against mistakes and hostile templates, not a sandbox: functions with side
    effects (``SELECT setval(...)``) are not recognised, so connect with a read-only role too.
    """
    dialect = normalize_dialect(dialect)
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as e:
        _ensure_read_only_tokens(sql, dialect, e)
        return
    except TokenError as e:
        raise UnsafeSqlError(
            f"cannot read the SQL as {dialect} to check that it is read-only: {e}",
            hint="check for an unterminated string, quoted name or comment",
        ) from e
    if len(statements) != 1:
        raise UnsafeSqlError(f"found {len(statements)} statements; {_READ_ONLY}", hint=_WRITE_HINT)
    statement = statements[0]
    for node in statement.walk():
        if isinstance(node, _WRITE_NODES):
            where = " inside the query" if node is not statement else ""
            raise UnsafeSqlError(
                f"the statement contains {_describe(node)}{where}; {_READ_ONLY}",
                hint=_WRITE_HINT,
            )
    if not isinstance(statement, _QUERY_ROOTS):
        raise UnsafeSqlError(
            f"the statement is {_describe(statement)}, not a query; {_READ_ONLY}",
            hint=_WRITE_HINT,
        )


def _ensure_read_only_tokens(sql: str, dialect: str, parse_error: ParseError) -> None:
    try:
        tokens = _dialect(dialect).tokenize(sql)
    except (TokenError, SqlglotError) as e:
        raise UnsafeSqlError(
            f"cannot read the SQL as {dialect} to check that it is read-only: {e}",
            hint="check for an unterminated string, quoted name or comment",
        ) from parse_error
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type is TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    non_empty = [s for s in statements if s]
    if len(non_empty) > 1:
        raise UnsafeSqlError(
            f"found {len(non_empty)} statements separated by ';'; {_READ_ONLY}",
            hint=_WRITE_HINT,
        ) from parse_error
    for position, token in enumerate(non_empty[0] if non_empty else []):
        if token.token_type in _STRINGLIKE:
            continue
        word = token.text.upper()
        if (position == 0 and word in _WRITE_KEYWORDS) or word in _WRITE_KEYWORDS_ANYWHERE:
            raise UnsafeSqlError(
                f"the statement contains {word}; {_READ_ONLY}", hint=_WRITE_HINT
            ) from parse_error
