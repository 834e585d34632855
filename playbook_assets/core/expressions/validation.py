"""Validating a parsed expression against the language: node types, functions, aggregates
and where columns may stand; the referenced columns are collected on the way."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.tokenizer_core import Token

from playbook_assets.core.expressions.language import (
    ANONYMOUS_SCALARS,
    DIALECT,
    LANGUAGE,
    SCALAR_CLASSES,
    STRUCTURAL_NODES,
    SUBQUERY_NODES,
    TYPE_NODES,
    ExpressionError,
    ExpressionKind,
    allowed_functions_text,
    function_name,
    is_aggregate,
)
from playbook_assets.core.expressions.parsing import parse_tree


class Validator:
    """Walks a parsed tree and rejects anything outside the language."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.columns: set[str] = set()
        self.aggregates = 0

    def fail(self, message: str, hint: str = LANGUAGE) -> ExpressionError:
        """An error about this expression."""
        return ExpressionError(f"{self.what} '{self.text}': {message}", hint=hint)

    def visit(self, node: exp.Expr, *, kind: ExpressionKind, in_aggregate: bool) -> None:
        """Check ``node`` and everything below it."""
        node_type = type(node)
        if isinstance(node, exp.Column):
            self.visit_column(node, kind=kind, in_aggregate=in_aggregate)
        elif isinstance(node, exp.Star):
            raise self.fail("'*' is only allowed in COUNT(*)", hint="name the column(s) instead")
        elif isinstance(node, exp.Filter):
            self.visit_filter(node, kind=kind, in_aggregate=in_aggregate)
        elif is_aggregate(node):
            self.visit_aggregate(node, kind=kind, in_aggregate=in_aggregate)
        elif isinstance(node, exp.Var):
            parent = node.parent
            if not (node.arg_key == "unit" or isinstance(parent, exp.Extract)):
                raise self.fail(f"unexpected word '{node.name}'")
        elif isinstance(node, exp.DataType):
            for part in node.walk():
                if not isinstance(part, (*TYPE_NODES, exp.Var)):
                    raise self.fail(f"unsupported type '{node.sql(dialect=DIALECT)}'")
        elif (
            node_type in STRUCTURAL_NODES
            or node_type in SCALAR_CLASSES
            or (isinstance(node, exp.Anonymous) and function_name(node) in ANONYMOUS_SCALARS)
        ):
            for child in node.iter_expressions():
                self.visit(child, kind=kind, in_aggregate=in_aggregate)
        else:
            raise self.reject(node)

    def visit_column(self, node: exp.Column, *, kind: ExpressionKind, in_aggregate: bool) -> None:
        """A bare column, inside an aggregate in a metric."""
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
        """An aggregate call: only in a metric, never nested."""
        name = function_name(node.this if isinstance(node, exp.IgnoreNulls) else node)
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
        """``AGG(...) FILTER (WHERE cond)``: only right after an aggregate in a metric."""
        where = node.expression
        if kind != "metric" or not is_aggregate(node.this) or not isinstance(where, exp.Where):
            raise self.fail(
                "FILTER (WHERE ...) is only allowed right after an aggregate function in a metric",
                hint="write e.g. COUNT(*) FILTER (WHERE health_status = 'At-Risk')",
            )
        self.visit(node.this, kind=kind, in_aggregate=in_aggregate)
        self.visit(where.this, kind="condition", in_aggregate=True)

    def reject(self, node: exp.Expr) -> ExpressionError:
        """The error for a node outside the language, saying what to write instead."""
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
        if isinstance(node, SUBQUERY_NODES):
            return self.fail(
                f"subqueries are not allowed ('{snippet}')",
                hint="compute it in its own step and join or filter on the result",
            )
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            return self.fail(f"parameters ('{snippet}') are not allowed", hint=LANGUAGE)
        if isinstance(node, exp.Alias):
            return self.fail(
                f"unexpected name '{node.alias}' after the expression (aliases are not allowed)",
                hint="name a metric with its 'name' field",
            )
        if isinstance(node, exp.Func):
            return self.fail(
                f"function '{function_name(node)}' is not allowed in expressions",
                hint=allowed_functions_text(),
            )
        return self.fail(f"'{snippet}' is not allowed")


def parse_validated(
    text: str,
    what: str,
    kind: ExpressionKind,
    shown: str | None = None,
    tokens: list[Token] | None = None,
) -> tuple[exp.Expr, Validator]:
    """The tree of an expression of ``kind``, validated, and its validator (which holds the
    columns it references and how many aggregates it has)."""
    shown = text if shown is None else shown
    tree = parse_tree(text, what, shown, tokens)
    validator = Validator(shown, what)
    validator.visit(tree, kind=kind, in_aggregate=False)
    return tree, validator
