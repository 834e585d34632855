"""What the expression language allows: the dialect, the error, and the whitelists of node
types and of scalar and aggregate functions."""

from __future__ import annotations

from typing import Literal

from sqlglot import exp

from playbook_assets.core.errors import PlaybookValidationError

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
ANONYMOUS_SCALARS = frozenset(
    name for name, classes in SCALAR_FUNCTIONS.items() if exp.Anonymous in classes
)
SCALAR_CLASSES = frozenset(
    cls for classes in SCALAR_FUNCTIONS.values() for cls in classes if cls is not exp.Anonymous
)
AGGREGATE_CLASSES = frozenset(cls for classes in AGGREGATE_FUNCTIONS.values() for cls in classes)

# Operators and literals: matched by exact type, so a subclass never slips through.
STRUCTURAL_NODES = frozenset(
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
TYPE_NODES = (exp.DataType, exp.DataTypeParam, exp.Literal, exp.Identifier, exp.ColumnDef)
SUBQUERY_NODES = (exp.Query, exp.Subquery, exp.Exists, exp.Any, exp.All)

LANGUAGE = (
    "expressions may use columns, literals, arithmetic (+ - * / // %), comparisons, AND/OR/NOT, "
    "IN (...), BETWEEN, LIKE/ILIKE, IS [NOT] NULL, CASE WHEN, CAST and whitelisted functions"
)


class ExpressionError(PlaybookValidationError):
    """A transform expression is invalid, or names a column the input does not have."""


def allowed_functions_text() -> str:
    """The whitelisted functions, for a hint."""
    scalars = ", ".join(sorted(SCALAR_FUNCTIONS))
    aggregates = ", ".join(sorted(AGGREGATE_FUNCTIONS))
    return f"allowed functions: {scalars}; allowed aggregate functions: {aggregates}"


def function_name(node: exp.Expr) -> str:
    """The name a function call is written with (lower case)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return type(node).__name__.lower()


def is_aggregate(node: exp.Expr) -> bool:
    """Whether a node is a call of a whitelisted aggregate function."""
    return type(node) in AGGREGATE_CLASSES or (
        isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue)
    )
