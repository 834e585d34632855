"""Conditions (row filters) and metrics (aggregates, ``AGG(...) WHERE cond``): parsed,
validated and rendered back to DuckDB SQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlglot import exp

from playbook_assets.core.expressions.language import (
    AGGREGATE_FUNCTIONS,
    DIALECT,
    ExpressionError,
    ExpressionKind,
    is_aggregate,
)
from playbook_assets.core.expressions.parsing import check_text, tokenize, top_level_where
from playbook_assets.core.expressions.validation import parse_validated


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


def parse_condition(text: str) -> ParsedExpression:
    """Parse a row condition (filter ``condition``): no aggregates, no WHERE keyword.

    Raises ``ExpressionError`` naming what is not allowed and what is.
    """
    what = "condition"
    text = check_text(text, what)
    tokens = tokenize(text, what)
    if top_level_where(tokens):
        raise ExpressionError(
            f"condition '{text}': WHERE is not allowed in a condition",
            hint="write only the condition, e.g. \"arr >= 50000\"; 'AGG(...) WHERE cond' is for "
            "aggregate metrics",
        )
    tree, validator = parse_validated(text, what, "condition", tokens=tokens)
    return ParsedExpression(text, "condition", tree, frozenset(validator.columns))


def parse_metric(text: str) -> ParsedExpression:
    """Parse an aggregate metric: ``SUM(arr)``, ``SUM(arr) / COUNT(*)``, ``COUNT(*) WHERE x > 1``.

    ``AGG(...) WHERE cond`` applies ``cond`` as ``FILTER (WHERE cond)`` to every aggregate of the
    metric (and-ed with a FILTER already written). Every column must be inside an aggregate.
    """
    what = "metric"
    text = check_text(text, what)
    tokens = tokenize(text, what)
    wheres = top_level_where(tokens)
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
        condition_tree, condition_validator = parse_validated(
            condition_text, what, "condition", shown=text
        )
    tree, validator = parse_validated(
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
        if is_aggregate(node) and not isinstance(node.parent, exp.IgnoreNulls):
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
