"""The read-only guard: a statement must be exactly one read-only query."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from playbook_assets.core.sql.dialects import (
    STRINGLIKE_TOKENS,
    UnsafeSqlError,
    normalize_dialect,
    sqlglot_dialect,
)

_WRITE_HINT = "set allow_writes: true on the connection to allow writes"
_READ_ONLY = "only a single read-only statement is allowed"


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
        tokens = sqlglot_dialect(dialect).tokenize(sql)
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
        if token.token_type in STRINGLIKE_TOKENS:
            continue
        word = token.text.upper()
        if (position == 0 and word in _WRITE_KEYWORDS) or word in _WRITE_KEYWORDS_ANYWHERE:
            raise UnsafeSqlError(
                f"the statement contains {word}; {_READ_ONLY}", hint=_WRITE_HINT
            ) from parse_error
