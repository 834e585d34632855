"""Reading an expression's text: the checks on the raw text and tokens (no comments, no
``;``), and sqlglot's parse into one syntax tree."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from playbook_assets.core.expressions.language import DIALECT, LANGUAGE, ExpressionError

EXAMPLES = {
    "condition": "\"arr >= 50000 AND health_status = 'At-Risk'\"",
    "metric": '"SUM(arr)" or "COUNT(*) WHERE health_status = \'At-Risk\'"',
    "join condition": '"company_id = account_id"',
}


def check_text(text: object, what: str) -> str:
    """``text`` when it is a non-empty string, else ExpressionError with an example."""
    if not isinstance(text, str):
        raise ExpressionError(
            f"{what} must be a string, got {type(text).__name__} {text!r}",
            hint=f"write it as text, e.g. {EXAMPLES[what]}",
        )
    if not text.strip():
        raise ExpressionError(f"{what} is empty", hint=f"write e.g. {EXAMPLES[what]}")
    return text


def tokenize(text: str, what: str, shown: str | None = None) -> list[Token]:
    """The DuckDB tokens of an expression; comments and semicolons are refused."""
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


def parse_tree(
    text: str, what: str, shown: str | None = None, tokens: list[Token] | None = None
) -> exp.Expr:
    """The one syntax tree of an expression (``tokens`` when they are read already)."""
    shown = text if shown is None else shown
    tokens = tokens if tokens is not None else tokenize(text, what, shown)
    if not tokens:
        raise ExpressionError(f"{what} is empty", hint=f"write e.g. {EXAMPLES[what]}")
    try:
        trees = Dialect.get_or_raise(DIALECT).parser().parse(tokens, text)
    except ParseError as e:
        detail = e.errors[0] if e.errors else {}
        description = detail.get("description", str(e))
        col = detail.get("col")
        where = f" near column {col}" if col else ""
        raise ExpressionError(
            f"cannot parse {what} '{shown}': {description}{where}", hint=LANGUAGE
        ) from e
    except SqlglotError as e:
        raise ExpressionError(f"cannot parse {what} '{shown}': {e}", hint=LANGUAGE) from e
    statements = [tree for tree in trees if tree is not None]
    if len(statements) != 1:
        raise ExpressionError(
            f"{what} '{shown}' must be exactly one expression", hint="remove the extra statements"
        )
    return statements[0]


def top_level_where(tokens: list[Token]) -> list[Token]:
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
