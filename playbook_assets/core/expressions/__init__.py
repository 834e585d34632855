"""The transform expression language: parse and validate ``on``, ``condition`` and metrics.

Transform steps (join, aggregate, filter) take small SQL expressions written in the playbook.
They are parsed with sqlglot (DuckDB dialect), checked against a whitelist of node types and
functions, and rendered back to DuckDB SQL from the syntax tree with every column quoted, so
what runs is exactly what was validated; the playbook text itself is never pasted into SQL.

The language: columns (bare names; ``left.x`` / ``right.y`` only in join conditions), literals
(numbers, ``'strings'``, TRUE/FALSE/NULL, ``DATE '2026-01-01'``, ``INTERVAL 30 DAY``), arithmetic
``+ - * / // %``, ``||``, comparisons, AND/OR/NOT, IN (list), BETWEEN, LIKE/ILIKE, IS [NOT] NULL,
IS [NOT] DISTINCT FROM, CASE WHEN, CAST/TRY_CAST/``::``, parentheses, and the functions in
``SCALAR_FUNCTIONS`` and ``AGGREGATE_FUNCTIONS``. Everything else is rejected: subqueries,
EXISTS, table functions (``read_csv``, ``glob``, ...), functions not on the whitelist
(``getenv``, ``current_setting``, ...), window functions, ``*`` outside ``COUNT(*)``, several
statements, semicolons and comments.

Three kinds of expression:

- a condition (filter ``condition``; the filter of a filtered aggregate) has no aggregates;
- a metric (aggregate ``expression``) is built from aggregates: ``SUM(arr) / COUNT(*)``; every
  column is inside an aggregate. ``AGG(...) WHERE cond`` is a filtered aggregate: the condition
  applies to every aggregate of the metric, as ``AGG(...) FILTER (WHERE cond)`` would;
- a join ``on`` is ``a = b [AND c = d ...]`` between a column of each table.

Types and semantics are DuckDB's: ``/`` is floating-point division (``5 / 2`` is 2.5) and ``//``
integer division; SUM of integers is HUGEINT (an Arrow ``decimal128(38, 0)``); a comparison with
NULL is NULL, so a filter drops the row; identifiers match case-insensitively.

Modules: ``language`` (the whitelists), ``parsing`` (text to one tree), ``validation`` (the
tree against the language), ``conditions`` (conditions and metrics), ``join_on`` and
``columns`` (quoting, finding and checking column names).
"""

from playbook_assets.core.expressions.columns import check_columns, quote_identifier, resolve_column
from playbook_assets.core.expressions.conditions import (
    ParsedExpression,
    parse_condition,
    parse_metric,
)
from playbook_assets.core.expressions.join_on import (
    JoinColumn,
    JoinKey,
    ParsedJoinOn,
    parse_join_on,
)
from playbook_assets.core.expressions.language import (
    AGGREGATE_FUNCTIONS,
    SCALAR_FUNCTIONS,
    ExpressionError,
)

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "SCALAR_FUNCTIONS",
    "ExpressionError",
    "JoinColumn",
    "JoinKey",
    "ParsedExpression",
    "ParsedJoinOn",
    "check_columns",
    "parse_condition",
    "parse_join_on",
    "parse_metric",
    "quote_identifier",
    "resolve_column",
]
