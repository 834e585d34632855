"""Rendering a SQL template: every placeholder replaced by its value, then checked in place.

After substitution, every run-time value is checked in place with sqlglot's tokenizer: its
tokens must be exactly the tokens it has on its own, with no token crossing its edges. This
rejects a template that puts a run-time value inside a quoted string (``'{{v}}'``), a quoted
identifier or a comment, or glues it to neighbouring characters (``x -{{v}}`` with ``-5`` would
read ``x --5``, a comment).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot.errors import SqlglotError, TokenError
from sqlglot.tokenizer_core import Token

from playbook_assets.core.errors import did_you_mean, unknown_name_hint
from playbook_assets.core.sql.dialects import (
    STRINGLIKE_TOKENS,
    SqlTemplateError,
    normalize_dialect,
    sqlglot_dialect,
)
from playbook_assets.core.sql.identifiers import sql_identifier
from playbook_assets.core.sql.literals import sql_literal
from playbook_assets.core.sql.placeholders import Placeholder, in_list, scan
from playbook_assets.core.sql.read_only import ensure_read_only
from playbook_assets.core.sql.values import (
    SqlCode,
    SqlIdentifier,
    SqlValue,
    TemplateValue,
    code_text,
)


@dataclass(frozen=True)
class _Insertion:
    name: str
    start: int
    end: int
    text: str


def _render_one(placeholder: Placeholder, value: TemplateValue, template: str, dialect: str) -> str:
    try:
        if isinstance(value, SqlCode):
            return code_text(value.value)
        if isinstance(value, SqlIdentifier):
            return sql_identifier(value.name, dialect)
        if isinstance(value, SqlValue):
            return sql_literal(
                value.value,
                dialect,
                element_type=value.element_type,
                in_list=in_list(placeholder, template),
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
        return sqlglot_dialect(dialect).tokenize(sql)
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
                if token.token_type in STRINGLIKE_TOKENS:
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
    found = scan(template)
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
        bound = _bindable(value, bind_lists_over) and in_list(placeholder, template)
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
