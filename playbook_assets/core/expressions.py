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
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from playbook_assets.core.errors import PlaybookValidationError

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

DIALECT = "duckdb"

ExpressionKind = Literal["condition", "metric"]
JoinSide = Literal["left", "right"]

# Name a user writes -> the sqlglot node(s) it parses to (checked against sqlglot 30).
SCALAR_FUNCTIONS: dict[str, tuple[type[exp.Expr], ...]] = {
    "abs": (exp.Abs,),
    "round": (exp.Round,),
    "floor": (exp.Floor,),
    "ceil": (exp.Ceil,),
    "ceiling": (exp.Ceil,),
    "sign": (exp.Sign,),
    "sqrt": (exp.Sqrt,),
    "power": (exp.Pow,),
    "pow": (exp.Pow,),
    "ln": (exp.Ln,),
    "log": (exp.Log,),
    "exp": (exp.Exp,),
    "coalesce": (exp.Coalesce,),
    "nullif": (exp.Nullif,),
    "if": (exp.If,),
    "lower": (exp.Lower,),
    "upper": (exp.Upper,),
    "length": (exp.Length,),
    "trim": (exp.Trim,),
    "ltrim": (exp.Trim,),
    "rtrim": (exp.Trim,),
    "concat": (exp.Concat,),
    "concat_ws": (exp.ConcatWs,),
    "substr": (exp.Substring,),
    "substring": (exp.Substring,),
    "left": (exp.Left,),
    "right": (exp.Right,),
    "replace": (exp.Replace,),
    "starts_with": (exp.StartsWith,),
    "contains": (exp.Contains,),
    "regexp_matches": (exp.RegexpLike,),
    "greatest": (exp.Greatest,),
    "least": (exp.Least,),
    "date_trunc": (exp.TimestampTrunc, exp.DateTrunc),
    "date_diff": (exp.DateDiff,),
    "datediff": (exp.DateDiff,),
    "date_add": (exp.DateAdd,),
    "date_part": (exp.Anonymous,),
    "datepart": (exp.Anonymous,),
    "extract": (exp.Extract,),
    "year": (exp.Year,),
    "quarter": (exp.Quarter,),
    "month": (exp.Month,),
    "week": (exp.Week,),
    "day": (exp.Day,),
    "dayofweek": (exp.DayOfWeek,),
    "make_date": (exp.DateFromParts,),
    "strftime": (exp.TimeToStr,),
    "current_date": (exp.CurrentDate,),
    "today": (exp.CurrentDate,),
    "current_timestamp": (exp.CurrentTimestamp,),
    "isnan": (exp.IsNan,),
}

AGGREGATE_FUNCTIONS: dict[str, tuple[type[exp.Expr], ...]] = {
    "count": (exp.Count,),
    "count_if": (exp.CountIf,),
    "sum": (exp.Sum,),
    "avg": (exp.Avg,),
    "min": (exp.Min,),
    "max": (exp.Max,),
    "median": (exp.Median,),
    "stddev": (exp.Stddev,),
    "stddev_samp": (exp.StddevSamp,),
    "stddev_pop": (exp.StddevPop,),
    "variance": (exp.Variance,),
    "var_samp": (exp.Variance,),
    "var_pop": (exp.VariancePop,),
    "quantile": (exp.Quantile,),
    "quantile_cont": (exp.PercentileCont,),
    "quantile_disc": (exp.PercentileDisc,),
    "approx_count_distinct": (exp.ApproxDistinct,),
    "any_value": (exp.AnyValue,),
    "bool_and": (exp.LogicalAnd,),
    "bool_or": (exp.LogicalOr,),
}

# Functions sqlglot does not model (they parse to Anonymous); allowed by name.
_ANONYMOUS_SCALARS = frozenset(
    name for name, classes in SCALAR_FUNCTIONS.items() if exp.Anonymous in classes
)
_SCALAR_CLASSES = frozenset(
    cls for classes in SCALAR_FUNCTIONS.values() for cls in classes if cls is not exp.Anonymous
)
_AGGREGATE_CLASSES = frozenset(cls for classes in AGGREGATE_FUNCTIONS.values() for cls in classes)

# Operators and literals: matched by exact type, so a subclass never slips through.
_STRUCTURAL = frozenset(
    {
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Paren,
        exp.Neg,
        exp.Not,
        exp.And,
        exp.Or,
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.IntDiv,
        exp.Mod,
        exp.DPipe,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.NullSafeEQ,
        exp.NullSafeNEQ,
        exp.Is,
        exp.In,
        exp.Between,
        exp.Like,
        exp.ILike,
        exp.Escape,
        exp.Case,
        exp.If,
        exp.Cast,
        exp.TryCast,
        exp.Interval,
    }
)
_TYPE_NODES = (exp.DataType, exp.DataTypeParam, exp.Literal, exp.Identifier, exp.ColumnDef)
_SUBQUERY_NODES = (exp.Query, exp.Subquery, exp.Exists, exp.Any, exp.All)

_LANGUAGE = (
    "expressions may use columns, literals, arithmetic (+ - * / // %), comparisons, AND/OR/NOT, "
    "IN (...), BETWEEN, LIKE/ILIKE, IS [NOT] NULL, CASE WHEN, CAST and whitelisted functions"
)
_MAX_LISTED_COLUMNS = 40


class ExpressionError(PlaybookValidationError):
    """A transform expression is invalid, or names a column the input does not have."""


def quote_identifier(name: str) -> str:
    """``name`` as a quoted DuckDB identifier (``"a""b"`` for ``a"b``)."""
    return exp.to_identifier(name, quoted=True).sql(dialect=DIALECT)


def _allowed_functions_text() -> str:
    scalars = ", ".join(sorted(SCALAR_FUNCTIONS))
    aggregates = ", ".join(sorted(AGGREGATE_FUNCTIONS))
    return f"allowed functions: {scalars}; allowed aggregate functions: {aggregates}"


@dataclass(frozen=True, eq=False)
class ParsedExpression:
    """A validated condition or metric.

    ``columns`` holds the referenced column names as written (check them with
    ``check_columns``); ``sql()`` renders the expression as DuckDB SQL with every column quoted.
    """

    text: str
    kind: ExpressionKind
    tree: exp.Expr
    columns: frozenset[str]

    def sql(self, qualifier: str | None = None) -> str:
        """DuckDB SQL for this expression; columns are prefixed with ``qualifier`` when given."""
        tree = self.tree.copy()
        if qualifier is not None:
            for column in tree.find_all(exp.Column):
                column.set("table", exp.to_identifier(qualifier, quoted=True))
        return tree.sql(dialect=DIALECT, identify=True)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class JoinColumn:
    """One side of an equality in a join ``on``: a column, maybe qualified ``left.``/``right.``."""

    name: str
    side: JoinSide | None

    def __str__(self) -> str:
        return f"{self.side}.{self.name}" if self.side else self.name


@dataclass(frozen=True)
class JoinKey:
    """A resolved equi-join key: the actual column names in the left and right tables."""

    left: str
    right: str


@dataclass(frozen=True)
class ParsedJoinOn:
    """A validated join ``on``: one or more equalities between a left and a right column."""

    text: str
    pairs: tuple[tuple[JoinColumn, JoinColumn], ...]

    @property
    def columns(self) -> frozenset[str]:
        """Every column name referenced, on either side."""
        return frozenset(col.name for pair in self.pairs for col in pair)

    def resolve(self, left_columns: Sequence[str], right_columns: Sequence[str]) -> list[JoinKey]:
        """Match each equality to a (left column, right column) pair of the actual tables.

        Unqualified names are placed by which table has them, in either order
        (``account_id = company_id`` works like ``company_id = account_id``); a pair that
        could be read both ways is ambiguous and must be qualified. Names match
        case-insensitively, as in DuckDB.
        """
        return [self._resolve_pair(a, b, left_columns, right_columns) for a, b in self.pairs]

    def sql(
        self,
        left_columns: Sequence[str],
        right_columns: Sequence[str],
        left_alias: str = "l",
        right_alias: str = "r",
    ) -> str:
        """DuckDB SQL for the join condition, with the tables aliased as given."""
        return " AND ".join(
            f"{quote_identifier(left_alias)}.{quote_identifier(key.left)} = "
            f"{quote_identifier(right_alias)}.{quote_identifier(key.right)}"
            for key in self.resolve(left_columns, right_columns)
        )

    def _resolve_pair(
        self,
        a: JoinColumn,
        b: JoinColumn,
        left_columns: Sequence[str],
        right_columns: Sequence[str],
    ) -> JoinKey:
        pair_text = f"{a} = {b}"
        if a.side is not None and a.side == b.side:
            raise ExpressionError(
                f"join condition '{self.text}': both sides of '{pair_text}' refer to the "
                f"{a.side} table",
                hint="compare a column of the left table with one of the right table, "
                "e.g. left.company_id = right.account_id",
            )
        if a.side is None and b.side is not None:
            a = JoinColumn(a.name, "left" if b.side == "right" else "right")
        elif b.side is None and a.side is not None:
            b = JoinColumn(b.name, "left" if a.side == "right" else "right")
        if a.side is None:
            a_left = _find_column(a.name, left_columns) is not None
            a_right = _find_column(a.name, right_columns) is not None
            b_left = _find_column(b.name, left_columns) is not None
            b_right = _find_column(b.name, right_columns) is not None
            forward = a_left and b_right
            backward = b_left and a_right
            if forward and backward and a.name.lower() != b.name.lower():
                raise ExpressionError(
                    f"join condition '{self.text}': '{pair_text}' is ambiguous because both "
                    "tables have both columns",
                    hint=f"qualify them: left.{a.name} = right.{b.name} or "
                    f"left.{b.name} = right.{a.name}",
                )
            if not forward and not backward:
                for col, in_left, in_right in ((a, a_left, a_right), (b, b_left, b_right)):
                    if not in_left and not in_right:
                        raise _unknown_column(
                            col.name,
                            [*left_columns, *right_columns],
                            f"join condition '{self.text}' (neither table has it)",
                        )
                side = "left" if a_left else "right"
                raise ExpressionError(
                    f"join condition '{self.text}': '{pair_text}' compares two columns of the "
                    f"{side} table",
                    hint="each equality needs one column of the left table and one of the "
                    "right table",
                )
            a, b = (
                (JoinColumn(a.name, "left"), JoinColumn(b.name, "right"))
                if forward
                else (JoinColumn(a.name, "right"), JoinColumn(b.name, "left"))
            )
        left, right = (a, b) if a.side == "left" else (b, a)
        return JoinKey(
            left=resolve_column(left.name, left_columns, f"join condition '{self.text}' (left)"),
            right=resolve_column(
                right.name, right_columns, f"join condition '{self.text}' (right)"
            ),
        )

    def __str__(self) -> str:
        return self.text


# --------------------------------------------------------------------------- parsing


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise ExpressionError(
            f"{what} must be a string, got {type(text).__name__} {text!r}",
            hint=f"write it as text, e.g. {_EXAMPLES[what]}",
        )
    if not text.strip():
        raise ExpressionError(f"{what} is empty", hint=f"write e.g. {_EXAMPLES[what]}")
    return text


_EXAMPLES = {
    "condition": "\"arr >= 50000 AND health_status = 'At-Risk'\"",
    "metric": '"SUM(arr)" or "COUNT(*) WHERE health_status = \'At-Risk\'"',
    "join condition": '"company_id = account_id"',
}


def _tokenize(text: str, what: str, shown: str | None = None) -> list[Token]:
    shown = text if shown is None else shown
    try:
        tokens = Dialect.get_or_raise(DIALECT).tokenize(text)
    except TokenError as e:
        raise ExpressionError(
            f"cannot read {what} '{shown}': {e}",
            hint="check that every quote and parenthesis is closed",
        ) from e
    for token in tokens:
        if token.comments:
            raise ExpressionError(
                f"{what} '{shown}': comments (-- or /* */) are not allowed in expressions",
                hint="remove the comment",
            )
        if token.token_type == TokenType.SEMICOLON:
            raise ExpressionError(
                f"{what} '{shown}': ';' is not allowed; an expression is a single expression, "
                "never a statement",
                hint="remove the semicolon and whatever follows it",
            )
    return tokens


def _parse_tree(
    text: str, what: str, shown: str | None = None, tokens: list[Token] | None = None
) -> exp.Expr:
    shown = text if shown is None else shown
    tokens = tokens if tokens is not None else _tokenize(text, what, shown)
    if not tokens:
        raise ExpressionError(f"{what} is empty", hint=f"write e.g. {_EXAMPLES[what]}")
    try:
        trees = Dialect.get_or_raise(DIALECT).parser().parse(tokens, text)
    except ParseError as e:
        detail = e.errors[0] if e.errors else {}
        description = detail.get("description", str(e))
        col = detail.get("col")
        where = f" near column {col}" if col else ""
        raise ExpressionError(
            f"cannot parse {what} '{shown}': {description}{where}", hint=_LANGUAGE
        ) from e
    except SqlglotError as e:
        raise ExpressionError(f"cannot parse {what} '{shown}': {e}", hint=_LANGUAGE) from e
    statements = [tree for tree in trees if tree is not None]
    if len(statements) != 1:
        raise ExpressionError(
            f"{what} '{shown}' must be exactly one expression", hint="remove the extra statements"
        )
    return statements[0]


def _top_level_where(tokens: list[Token]) -> list[Token]:
    """WHERE keywords outside any parentheses/brackets (strings are single tokens)."""
    depth = 0
    found: list[Token] = []
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1
        elif token.token_type == TokenType.WHERE and depth == 0:
            found.append(token)
    return found


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return type(node).__name__.lower()


def _is_aggregate(node: exp.Expr) -> bool:
    return type(node) in _AGGREGATE_CLASSES or (
        isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue)
    )


class _Validator:
    """Walks a parsed tree and rejects anything outside the language."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.columns: set[str] = set()
        self.aggregates = 0

    def fail(self, message: str, hint: str = _LANGUAGE) -> ExpressionError:
        return ExpressionError(f"{self.what} '{self.text}': {message}", hint=hint)

    def visit(self, node: exp.Expr, *, kind: ExpressionKind, in_aggregate: bool) -> None:
        node_type = type(node)
        if isinstance(node, exp.Column):
            self.visit_column(node, kind=kind, in_aggregate=in_aggregate)
        elif isinstance(node, exp.Star):
            raise self.fail("'*' is only allowed in COUNT(*)", hint="name the column(s) instead")
        elif isinstance(node, exp.Filter):
            self.visit_filter(node, kind=kind, in_aggregate=in_aggregate)
        elif _is_aggregate(node):
            self.visit_aggregate(node, kind=kind, in_aggregate=in_aggregate)
        elif isinstance(node, exp.Var):
            parent = node.parent
            if not (node.arg_key == "unit" or isinstance(parent, exp.Extract)):
                raise self.fail(f"unexpected word '{node.name}'")
        elif isinstance(node, exp.DataType):
            for part in node.walk():
                if not isinstance(part, (*_TYPE_NODES, exp.Var)):
                    raise self.fail(f"unsupported type '{node.sql(dialect=DIALECT)}'")
        elif (
            node_type in _STRUCTURAL
            or node_type in _SCALAR_CLASSES
            or (isinstance(node, exp.Anonymous) and _function_name(node) in _ANONYMOUS_SCALARS)
        ):
            for child in node.iter_expressions():
                self.visit(child, kind=kind, in_aggregate=in_aggregate)
        else:
            raise self.reject(node)

    def visit_column(self, node: exp.Column, *, kind: ExpressionKind, in_aggregate: bool) -> None:
        if isinstance(node.this, exp.Star):
            raise self.fail(
                f"'{node.sql(dialect=DIALECT)}' is not allowed; '*' is only allowed in COUNT(*)",
                hint="name the column(s) instead",
            )
        if node.table or node.args.get("db") or node.args.get("catalog"):
            raise self.fail(
                f"qualified column '{node.sql(dialect=DIALECT)}' is not allowed here; "
                "qualified names (left.x, right.y) are only for join conditions",
                hint=f"write the bare column name '{node.name}'",
            )
        if kind == "metric" and not in_aggregate:
            raise self.fail(
                f"column '{node.name}' is used outside an aggregate function",
                hint=f"wrap it in an aggregate, e.g. SUM({node.name}) or MAX({node.name}), or "
                "make it a group_by column",
            )
        self.columns.add(node.name)

    def visit_aggregate(self, node: exp.Expr, *, kind: ExpressionKind, in_aggregate: bool) -> None:
        name = _function_name(node.this if isinstance(node, exp.IgnoreNulls) else node)
        if kind == "condition":
            raise self.fail(
                f"aggregate function '{name}' is not allowed in a condition",
                hint="a condition is evaluated row by row; put aggregates in an aggregate "
                "step's metrics (a filtered aggregate is written 'COUNT(*) WHERE cond')",
            )
        if in_aggregate:
            raise self.fail(
                f"aggregate function '{name}' is nested inside another aggregate",
                hint="aggregates cannot be nested; combine them instead, e.g. SUM(a) / COUNT(*)",
            )
        self.aggregates += 1
        call = node.this if isinstance(node, exp.IgnoreNulls) else node
        for child in call.iter_expressions():
            if isinstance(child, exp.Star) and isinstance(call, exp.Count):
                continue
            if isinstance(child, exp.Distinct):
                if child.args.get("on") is not None or len(child.expressions) != 1:
                    raise self.fail(
                        "DISTINCT inside an aggregate takes exactly one expression",
                        hint="write e.g. COUNT(DISTINCT account_id)",
                    )
                self.visit(child.expressions[0], kind=kind, in_aggregate=True)
                continue
            self.visit(child, kind=kind, in_aggregate=True)

    def visit_filter(self, node: exp.Filter, *, kind: ExpressionKind, in_aggregate: bool) -> None:
        where = node.expression
        if kind != "metric" or not _is_aggregate(node.this) or not isinstance(where, exp.Where):
            raise self.fail(
                "FILTER (WHERE ...) is only allowed right after an aggregate function in a metric",
                hint="write e.g. COUNT(*) FILTER (WHERE health_status = 'At-Risk')",
            )
        self.visit(node.this, kind=kind, in_aggregate=in_aggregate)
        self.visit(where.this, kind="condition", in_aggregate=True)

    def reject(self, node: exp.Expr) -> ExpressionError:
        snippet = node.sql(dialect=DIALECT)
        if isinstance(node, exp.Window):
            return self.fail(
                "window functions (OVER ...) are not allowed",
                hint="use an aggregate step with group_by instead",
            )
        if isinstance(node, (exp.Any, exp.All)) and node.find(exp.Query) is None:
            return self.fail(
                f"'{snippet}' is not allowed", hint="compare with a list using IN (...) instead"
            )
        if isinstance(node, _SUBQUERY_NODES):
            return self.fail(
                f"subqueries are not allowed ('{snippet}')",
                hint="compute it in its own step and join or filter on the result",
            )
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            return self.fail(f"parameters ('{snippet}') are not allowed", hint=_LANGUAGE)
        if isinstance(node, exp.Alias):
            return self.fail(
                f"unexpected name '{node.alias}' after the expression (aliases are not allowed)",
                hint="name a metric with its 'name' field",
            )
        if isinstance(node, exp.Func):
            return self.fail(
                f"function '{_function_name(node)}' is not allowed in expressions",
                hint=_allowed_functions_text(),
            )
        return self.fail(f"'{snippet}' is not allowed")


def _parse_validated(
    text: str,
    what: str,
    kind: ExpressionKind,
    shown: str | None = None,
    tokens: list[Token] | None = None,
) -> tuple[exp.Expr, _Validator]:
    shown = text if shown is None else shown
    tree = _parse_tree(text, what, shown, tokens)
    validator = _Validator(shown, what)
    validator.visit(tree, kind=kind, in_aggregate=False)
    return tree, validator


def parse_condition(text: str) -> ParsedExpression:
    """Parse a row condition (filter ``condition``): no aggregates, no WHERE keyword.

    Raises ``ExpressionError`` naming what is not allowed and what is.
    """
    what = "condition"
    text = _check_text(text, what)
    tokens = _tokenize(text, what)
    if _top_level_where(tokens):
        raise ExpressionError(
            f"condition '{text}': WHERE is not allowed in a condition",
            hint="write only the condition, e.g. \"arr >= 50000\"; 'AGG(...) WHERE cond' is for "
            "aggregate metrics",
        )
    tree, validator = _parse_validated(text, what, "condition", tokens=tokens)
    return ParsedExpression(text, "condition", tree, frozenset(validator.columns))


def parse_metric(text: str) -> ParsedExpression:
    """Parse an aggregate metric: ``SUM(arr)``, ``SUM(arr) / COUNT(*)``, ``COUNT(*) WHERE x > 1``.

    ``AGG(...) WHERE cond`` applies ``cond`` as ``FILTER (WHERE cond)`` to every aggregate of the
    metric (and-ed with a FILTER already written). Every column must be inside an aggregate.
    """
    what = "metric"
    text = _check_text(text, what)
    tokens = _tokenize(text, what)
    wheres = _top_level_where(tokens)
    if len(wheres) > 1:
        raise ExpressionError(
            f"metric '{text}' has more than one WHERE",
            hint='combine the conditions with AND: "COUNT(*) WHERE a > 1 AND b < 2"',
        )
    body, condition_tree, condition_validator = text, None, None
    if wheres:
        body, condition_text = text[: wheres[0].start], text[wheres[0].end + 1 :]
        if not body.strip():
            raise ExpressionError(
                f"metric '{text}' has nothing before WHERE",
                hint="write the aggregate first: \"COUNT(*) WHERE health_status = 'At-Risk'\"",
            )
        if not condition_text.strip():
            raise ExpressionError(
                f"metric '{text}' has nothing after WHERE",
                hint="write the condition after WHERE, or remove WHERE",
            )
        condition_tree, condition_validator = _parse_validated(
            condition_text, what, "condition", shown=text
        )
    tree, validator = _parse_validated(
        body, what, "metric", shown=text, tokens=None if wheres else tokens
    )
    if validator.aggregates == 0:
        raise ExpressionError(
            f"metric '{text}' has no aggregate function",
            hint="a metric summarises rows, e.g. COUNT(*), SUM(arr), AVG(health_score); "
            f"allowed aggregate functions: {', '.join(sorted(AGGREGATE_FUNCTIONS))}",
        )
    columns = set(validator.columns)
    if condition_tree is not None and condition_validator is not None:
        tree = _apply_filter(tree, condition_tree)
        columns |= condition_validator.columns
    return ParsedExpression(text, "metric", tree, frozenset(columns))


def _aggregate_units(tree: exp.Expr) -> Iterator[exp.Expr]:
    """The outermost aggregate calls of a metric (any_value is wrapped in IgnoreNulls)."""
    for node in tree.walk():
        if _is_aggregate(node) and not isinstance(node.parent, exp.IgnoreNulls):
            yield node


def _apply_filter(tree: exp.Expr, condition: exp.Expr) -> exp.Expr:
    for unit in list(_aggregate_units(tree)):
        parent = unit.parent
        if isinstance(parent, exp.Filter) and isinstance(parent.expression, exp.Where):
            existing = parent.expression.this
            parent.expression.set(
                "this", exp.and_(exp.paren(existing.copy()), exp.paren(condition.copy()))
            )
            continue
        filtered = exp.Filter(
            this=unit.copy(), expression=exp.Where(this=exp.paren(condition.copy()))
        )
        if unit is tree:
            tree = filtered
        else:
            unit.replace(filtered)
    return tree


def parse_join_on(text: str) -> ParsedJoinOn:
    """Parse a join ``on``: ``a = b`` equalities joined by AND, columns maybe ``left.``/``right.``.

    Which table each unqualified column belongs to is decided by ``ParsedJoinOn.resolve`` once
    the tables' columns are known.
    """
    what = "join condition"
    text = _check_text(text, what)
    tree = _parse_tree(text, what)
    hint = (
        "write one or more equalities joined by AND, each between a column of the left table "
        'and one of the right table, e.g. "company_id = account_id" or '
        '"left.region = right.region AND left.id = right.account_id"'
    )

    def equalities(node: exp.Expr) -> Iterator[exp.Expr]:
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.And):
            yield from equalities(node.this)
            yield from equalities(node.expression)
        else:
            yield node

    def column(node: exp.Expr, equality: exp.Expr) -> JoinColumn:
        while isinstance(node, exp.Paren):
            node = node.this
        if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
            raise ExpressionError(
                f"join condition '{text}': '{node.sql(dialect=DIALECT)}' in "
                f"'{equality.sql(dialect=DIALECT)}' is not a column; a join compares columns",
                hint=hint,
            )
        if node.args.get("db") or node.args.get("catalog"):
            raise ExpressionError(
                f"join condition '{text}': '{node.sql(dialect=DIALECT)}' has too many parts",
                hint="write a column as name, left.name or right.name",
            )
        qualifier = node.table.lower() if node.table else None
        if qualifier not in (None, "left", "right"):
            raise ExpressionError(
                f"join condition '{text}': unknown table '{node.table}' in "
                f"'{node.sql(dialect=DIALECT)}'",
                hint=f"qualify columns with left. or right., e.g. left.{node.name}",
            )
        side: JoinSide | None = (
            "left" if qualifier == "left" else ("right" if qualifier == "right" else None)
        )
        return JoinColumn(node.name, side)

    pairs: list[tuple[JoinColumn, JoinColumn]] = []
    for equality in equalities(tree):
        if isinstance(equality, exp.Or):
            raise ExpressionError(
                f"join condition '{text}': OR is not allowed in a join condition", hint=hint
            )
        if not isinstance(equality, exp.EQ):
            raise ExpressionError(
                f"join condition '{text}': '{equality.sql(dialect=DIALECT)}' is not an "
                "equality between two columns",
                hint=hint,
            )
        pairs.append((column(equality.this, equality), column(equality.expression, equality)))
    return ParsedJoinOn(text, tuple(pairs))


# --------------------------------------------------------------------------- columns


def _find_column(name: str, available: Sequence[str]) -> str | None:
    """The available column ``name`` refers to: exact match first, then case-insensitive."""
    if name in available:
        return name
    lowered = name.lower()
    matches = [col for col in available if col.lower() == lowered]
    return matches[0] if len(matches) == 1 else None


def _unknown_column(name: str, available: Sequence[str], context: str) -> ExpressionError:
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
    found = _find_column(name, available)
    if found is None:
        raise _unknown_column(name, available, context)
    return found


def check_columns(
    parsed: ParsedExpression | ParsedJoinOn, available: Sequence[str], context: str
) -> None:
    """Check that every column ``parsed`` references is in ``available``.

    ``context`` says where the expression is (e.g. ``"filter condition"``); for a join pass the
    columns of both tables (``ParsedJoinOn.resolve`` also checks each side). Names match
    case-insensitively, like DuckDB identifiers.
    """
    for name in sorted(parsed.columns):
        resolve_column(name, available, f"{context} '{parsed.text}'")
