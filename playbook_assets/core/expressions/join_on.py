"""Join conditions: ``a = b [AND c = d ...]``, each equality between a column of the left
table and one of the right, and how unqualified names are placed once the tables are known."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlglot import exp

from playbook_assets.core.expressions.columns import (
    find_column,
    quote_identifier,
    resolve_column,
    unknown_column,
)
from playbook_assets.core.expressions.language import DIALECT, ExpressionError, JoinSide
from playbook_assets.core.expressions.parsing import check_text, parse_tree


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
        if a.side is not None and a.side == b.side:
            raise ExpressionError(
                f"join condition '{self.text}': both sides of '{a} = {b}' refer to the "
                f"{a.side} table",
                hint="compare a column of the left table with one of the right table, "
                "e.g. left.company_id = right.account_id",
            )
        # One side qualified: the other is on the other table.
        if a.side is None and b.side is not None:
            a = JoinColumn(a.name, _other(b.side))
        elif b.side is None and a.side is not None:
            b = JoinColumn(b.name, _other(a.side))
        if a.side is None:
            a, b = self._place(a, b, left_columns, right_columns)
        left, right = (a, b) if a.side == "left" else (b, a)
        return JoinKey(
            left=resolve_column(left.name, left_columns, f"join condition '{self.text}' (left)"),
            right=resolve_column(
                right.name, right_columns, f"join condition '{self.text}' (right)"
            ),
        )

    def _place(
        self,
        a: JoinColumn,
        b: JoinColumn,
        left_columns: Sequence[str],
        right_columns: Sequence[str],
    ) -> tuple[JoinColumn, JoinColumn]:
        """Two unqualified columns, each placed on the table that has it."""
        pair_text = f"{a} = {b}"
        a_left = find_column(a.name, left_columns) is not None
        a_right = find_column(a.name, right_columns) is not None
        b_left = find_column(b.name, left_columns) is not None
        b_right = find_column(b.name, right_columns) is not None
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
                    raise unknown_column(
                        col.name,
                        [*left_columns, *right_columns],
                        f"join condition '{self.text}' (neither table has it)",
                    )
            side = "left" if a_left else "right"
            raise ExpressionError(
                f"join condition '{self.text}': '{pair_text}' compares two columns of the "
                f"{side} table",
                hint="each equality needs one column of the left table and one of the right table",
            )
        if forward:
            return JoinColumn(a.name, "left"), JoinColumn(b.name, "right")
        return JoinColumn(a.name, "right"), JoinColumn(b.name, "left")

    def __str__(self) -> str:
        return self.text


def _other(side: JoinSide) -> JoinSide:
    return "left" if side == "right" else "right"


def parse_join_on(text: str) -> ParsedJoinOn:
    """Parse a join ``on``: ``a = b`` equalities joined by AND, columns maybe ``left.``/``right.``.

    Which table each unqualified column belongs to is decided by ``ParsedJoinOn.resolve`` once
    the tables' columns are known.
    """
    what = "join condition"
    text = check_text(text, what)
    tree = parse_tree(text, what)
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
