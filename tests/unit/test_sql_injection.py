"""Injection tests of SQL template rendering: run-time values never change a statement."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from playbook_assets.core.sql import (
    SUPPORTED_DIALECTS,
    SqlIdentifier,
    SqlTemplateError,
    SqlValue,
    render_sql,
)

PAYLOADS: list[str] = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "' OR ''='",
    "'; DROP TABLE accounts; --",
    "'); DROP TABLE accounts; --",
    "')) OR 1=1 --",
    "\\' OR 1=1 --",
    "\\'; DROP TABLE accounts; --",
    "\\\\'; DROP TABLE accounts; --",
    "\\",
    "\\\\\\'",
    "''''",
    "' /* comment */ OR '1'='1",
    "*/ OR 1=1 /*",
    "/*' OR 1=1 --*/",
    "$$; DROP TABLE accounts; $$",
    "$tag$' OR 1=1 $tag$",
    "\u2019 OR \u20191\u2019=\u20191",  # right single quotation mark
    "\u02bc OR 1=1 --",  # modifier letter apostrophe
    "\uff07 OR 1=1 --",  # fullwidth apostrophe
    "\u2018'\u201b OR 1=1 --",
    "x'\n-- \nOR 1=1",
    "x\r\n'; DROP TABLE accounts; --",
    "x\u2028' OR 1=1 --",
    "E'\\x27 OR 1=1 --",
    "E'\\'' OR 1=1 --",
    "U&'\\0027' OR 1=1 --",
    "N' OR 1=1 --",
    "' UNION SELECT account_id, account_name FROM accounts --",
    "' UNION ALL SELECT NULL, NULL --",
    "1' AND 1=(SELECT COUNT(*) FROM accounts) AND '1'='1",
    "'||(SELECT account_name FROM accounts LIMIT 1)||'",
    "%27 OR 1=1 --",
    "\\u0027 OR 1=1 --",
    "\\x27 OR 1=1 --",
    '"; DROP TABLE accounts; --',
    "` OR 1=1 --",
    "' OR 1=1 #",
    "#'\nOR 1=1",
    "{{v}}",
    "${parameters.min_arr}",
    "?; DROP TABLE accounts",
    ":v OR 1=1",
    "'\t;\tDROP TABLE accounts",
    "'; COPY accounts TO '/tmp/stolen.csv'; --",
    "'; ATTACH ':memory:' AS other; --",
    "\U0001f600' OR 1=1 --",
    "'" * 257,
    "\\" * 33 + "' OR 1=1 --",
]

BENIGN = "benign"
SCALAR_TEMPLATE = "SELECT * FROM accounts WHERE account_name = {{v}}"
LIST_TEMPLATE = "SELECT * FROM accounts WHERE account_name IN ({{v}}) AND arr >= {{min_arr}}"
ACCOUNT_NAMES = ["Acme", "Globex", "O'Brien & Co", "Back\\slash Ltd", "Initech"]


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(PAYLOADS) >= 30
    assert len(set(PAYLOADS)) == len(PAYLOADS)
    assert not set(PAYLOADS) & set(ACCOUNT_NAMES)


def _one_statement(sql: str, dialect: str) -> exp.Expr:
    statements = sqlglot.parse(sql, read=dialect)
    assert len(statements) == 1, sql
    statement = statements[0]
    assert statement is not None
    return statement


def _blank_strings(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Literal) and node.is_string:
        return exp.Literal.string("?")
    return node


def _shape(statement: exp.Expr) -> exp.Expr:
    """The statement with every string literal's content replaced, i.e. its structure."""
    return statement.copy().transform(_blank_strings)


def _strings(statement: exp.Expr) -> list[str]:
    return [node.this for node in statement.find_all(exp.Literal) if node.is_string]


# One test per dialect looping over the corpus (rather than one per pair) keeps the suite fast;
# each assertion names the payload.


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_payload_as_value_keeps_the_statement_structure(dialect: str) -> None:
    sql = render_sql(SCALAR_TEMPLATE, {"v": SqlValue(BENIGN)}, dialect)
    benign = _shape(_one_statement(sql, dialect))
    for payload in PAYLOADS:
        sql = render_sql(SCALAR_TEMPLATE, {"v": SqlValue(payload)}, dialect)
        rendered = _one_statement(sql, dialect)
        assert _shape(rendered) == benign, (payload, sql)
        # The literal reads back as exactly the payload.
        assert _strings(rendered) == [payload], (payload, sql)


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_payload_as_list_element_keeps_the_statement_structure(dialect: str) -> None:
    def render(item: str) -> str:
        values = {"v": SqlValue([item, "Acme", item]), "min_arr": SqlValue(10)}
        return render_sql(LIST_TEMPLATE, values, dialect)

    benign = _shape(_one_statement(render(BENIGN), dialect))
    for payload in PAYLOADS:
        sql = render(payload)
        rendered = _one_statement(sql, dialect)
        assert _shape(rendered) == benign, (payload, sql)
        assert _strings(rendered) == [payload, "Acme", payload], (payload, sql)
        in_node = rendered.find(exp.In)
        assert in_node is not None and len(in_node.expressions) == 3


@pytest.fixture(scope="module")
def accounts_db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE accounts (account_id INTEGER, account_name VARCHAR, arr DOUBLE)")
    con.executemany(
        "INSERT INTO accounts VALUES (?, ?, ?)",
        [(i, name, 100.0 * i) for i, name in enumerate(ACCOUNT_NAMES, start=1)],
    )
    return con


def _tables(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute(
        "SELECT database_name, schema_name, table_name FROM duckdb_tables() ORDER BY ALL"
    ).fetchall()


def _account_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute("SELECT * FROM accounts ORDER BY account_id").fetchall()


def test_payloads_match_nothing_and_change_nothing_on_duckdb(
    accounts_db: duckdb.DuckDBPyConnection,
) -> None:
    con = accounts_db
    before_rows, before_tables = _account_rows(con), _tables(con)
    assert len(before_rows) == len(ACCOUNT_NAMES)
    for payload in PAYLOADS:
        scalar = render_sql(SCALAR_TEMPLATE, {"v": SqlValue(payload)}, "duckdb")
        assert con.execute(scalar).fetchall() == [], payload
        in_list = render_sql(
            LIST_TEMPLATE, {"v": SqlValue([payload, "nobody"]), "min_arr": SqlValue(0)}, "duckdb"
        )
        assert con.execute(in_list).fetchall() == [], payload
        # The string reaches DuckDB intact: DuckDB evaluates the literal back to the payload.
        literal = render_sql("SELECT {{v}}", {"v": SqlValue(payload)}, "duckdb")
        assert con.execute(literal).fetchall() == [(payload,)], payload
        assert _account_rows(con) == before_rows, payload
        assert _tables(con) == before_tables, payload


@pytest.mark.parametrize("name", ACCOUNT_NAMES)
def test_names_with_quotes_and_backslashes_still_match_on_duckdb(
    accounts_db: duckdb.DuckDBPyConnection, name: str
) -> None:
    sql = render_sql(
        "SELECT account_name FROM accounts WHERE account_name = {{v}}",
        {"v": SqlValue(name)},
        "duckdb",
    )
    assert accounts_db.execute(sql).fetchall() == [(name,)]


def test_postgres_literal_round_trips_exactly() -> None:
    for payload in PAYLOADS:
        rendered = render_sql("SELECT {{v}}", {"v": SqlValue(payload)}, "postgres")
        statement = _one_statement(rendered, "postgres")
        assert isinstance(statement, exp.Select)
        (literal,) = statement.expressions
        assert isinstance(literal, exp.Literal) and literal.is_string
        assert literal.this == payload
        # PostgreSQL standard strings: only the quote is doubled, nothing else changes.
        assert rendered == "SELECT '" + payload.replace("'", "''") + "'"


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_nul_byte_is_rejected(dialect: str) -> None:
    for payload in ["abc\x00' OR 1=1 --", "\x00", "'\x00; DROP TABLE accounts; --"]:
        with pytest.raises(SqlTemplateError, match="NUL character"):
            render_sql(SCALAR_TEMPLATE, {"v": SqlValue(payload)}, dialect)
        with pytest.raises(SqlTemplateError, match="NUL character"):
            render_sql(
                LIST_TEMPLATE, {"v": SqlValue(["ok", payload]), "min_arr": SqlValue(1)}, dialect
            )


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_payload_as_identifier_is_rejected(dialect: str) -> None:
    for payload in [*PAYLOADS, "abc\x00' OR 1=1 --"]:
        for value in [payload, f"analytics.{payload}", f"{payload}.accounts"]:
            with pytest.raises(SqlTemplateError, match="is not a plain identifier"):
                render_sql("SELECT * FROM {{t}}", {"t": SqlIdentifier(value)}, dialect)


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_payload_in_double_quotes_is_rejected_or_stays_one_quoted_name(dialect: str) -> None:
    """A quoted part may hold odd characters; it then stays one name and changes nothing."""
    template = "SELECT * FROM analytics.{{t}} WHERE x = 1"
    benign = _one_statement(
        render_sql(template, {"t": SqlIdentifier('"Benign Name"')}, dialect), dialect
    )
    accepted = 0
    for payload in PAYLOADS:
        try:
            sql = render_sql(template, {"t": SqlIdentifier(f'"{payload}"')}, dialect)
        except SqlTemplateError as e:
            assert "is not a plain identifier" in str(e)
            assert any(c in payload for c in '"`.\\\n\r\t'), payload
            continue
        accepted += 1
        statement = _one_statement(sql, dialect)
        tables = list(statement.find_all(exp.Table))
        assert [(t.db, t.name) for t in tables] == [("analytics", payload)], (payload, sql)
        for table in tables:
            table.set("this", exp.to_identifier("Benign Name", quoted=True))
        assert statement == benign, (payload, sql)
    assert accepted >= 20
