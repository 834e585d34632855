"""Tests of SQL template rendering per dialect and of the read-only guard
(playbook_assets.core.sql)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from playbook_assets.connections.warehouses.duckdb import DuckDBWarehouse
from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.sql import (
    LIST_BINDING_THRESHOLD,
    SUPPORTED_DIALECTS,
    SqlCode,
    SqlIdentifier,
    SqlTemplateError,
    SqlValue,
    UnsafeSqlError,
    ensure_read_only,
    normalize_dialect,
    placeholders,
    render_sql,
    render_sql_binding,
    sql_identifier,
    sql_literal,
)

UTC = datetime.UTC

# ---------------------------------------------------------------------------------------------
# placeholders


def test_placeholders_in_order_of_first_use_without_duplicates() -> None:
    template = (
        "SELECT * FROM {{ accounts_table }} WHERE id IN ({{ids}}) AND arr >= {{min_arr}}\n"
        "  AND region = {{\n  region\t}} OR id IN ({{ids}}) LIMIT {{limit}}"
    )
    assert placeholders(template) == ["accounts_table", "ids", "min_arr", "region", "limit"]


def test_placeholders_of_plain_sql_and_lone_closing_braces() -> None:
    assert placeholders("SELECT 1") == []
    # A DuckDB nested struct literal ends with '}}' and is ordinary SQL.
    assert placeholders("SELECT {'a': {'b': {{v}}}}") == ["v"]


@pytest.mark.parametrize(
    "template",
    [
        "SELECT {{ }}",
        "SELECT {{}}",
        "SELECT {{a-b}}",
        "SELECT {{1abc}}",
        "SELECT {{a b}}",
        "SELECT {{a.b}}",
        "SELECT {{a",
        "SELECT {{a}} + {{",
        "SELECT {{ {{a}} }}",
    ],
)
def test_malformed_placeholders_are_rejected(template: str) -> None:
    with pytest.raises(SqlTemplateError):
        placeholders(template)


def test_malformed_placeholder_error_gives_line_and_column() -> None:
    with pytest.raises(SqlTemplateError, match=r"\{\{a-b\}\} at line 2, column 7"):
        placeholders("SELECT 1\nWHERE {{a-b}} = 1")
    with pytest.raises(SqlTemplateError, match=r"unbalanced '\{\{' at line 1, column 8"):
        placeholders("SELECT {{limit")


# ---------------------------------------------------------------------------------------------
# dialects


def test_dialect_names_and_alias() -> None:
    assert normalize_dialect("postgresql") == "postgres"
    assert normalize_dialect("Snowflake") == "snowflake"
    assert set(SUPPORTED_DIALECTS) == {
        "duckdb",
        "postgres",
        "redshift",
        "snowflake",
        "bigquery",
        "databricks",
    }


def test_unknown_dialect_suggests_the_closest() -> None:
    with pytest.raises(SqlTemplateError, match=r"unknown SQL dialect 'snowflak'.*'snowflake'"):
        render_sql("SELECT 1", {}, "snowflak")
    with pytest.raises(SqlTemplateError, match="unknown SQL dialect 'mysql'"):
        sql_literal(1, "mysql")


# ---------------------------------------------------------------------------------------------
# literals: exact renderings


@pytest.mark.parametrize(
    ("value", "dialect", "expected"),
    [
        ("it's", "duckdb", "'it''s'"),
        ("it's", "postgres", "'it''s'"),
        ("it's", "bigquery", "'it\\'s'"),
        ("it's", "databricks", "'it\\'s'"),
        ("it's", "snowflake", "'it\\'s'"),
        ("a\\b", "postgres", "'a\\b'"),
        ("a\\b", "bigquery", "'a\\\\b'"),
        ("a\\b", "databricks", "'a\\\\b'"),
        ("line\nnext", "bigquery", "'line\\nnext'"),
        (42, "postgres", "42"),
        (-7, "duckdb", "-7"),
        (0.1, "snowflake", "0.1"),
        (1e-07, "duckdb", "1e-07"),
        (Decimal("123.4500"), "postgres", "123.4500"),
        (Decimal("-1E+3"), "bigquery", "-1000"),
        (True, "postgres", "TRUE"),
        (False, "bigquery", "FALSE"),
        (None, "snowflake", "NULL"),
        (datetime.date(2026, 1, 31), "duckdb", "CAST('2026-01-31' AS DATE)"),
        (datetime.date(2026, 1, 31), "bigquery", "CAST('2026-01-31' AS DATE)"),
        (
            datetime.datetime(2026, 1, 31, 12, 30),
            "postgres",
            "CAST('2026-01-31 12:30:00' AS TIMESTAMP)",
        ),
        (
            datetime.datetime(2026, 1, 31, 12, 30),
            "bigquery",
            "CAST('2026-01-31 12:30:00' AS DATETIME)",
        ),
        (
            datetime.datetime(2026, 1, 31, 12, 30, tzinfo=UTC),
            "bigquery",
            "CAST('2026-01-31 12:30:00+00:00' AS TIMESTAMP)",
        ),
        (
            datetime.datetime(2026, 1, 31, 12, 30, tzinfo=UTC),
            "postgres",
            "CAST('2026-01-31 12:30:00+00:00' AS TIMESTAMPTZ)",
        ),
        ([1, 2, 3], "duckdb", "1, 2, 3"),
        (("a", "b'c"), "postgres", "'a', 'b''c'"),
        ([], "postgres", "SELECT NULL LIMIT 0"),
    ],
)
def test_literal_renderings(value: object, dialect: str, expected: str) -> None:
    assert sql_literal(value, dialect) == expected


def test_empty_list_with_element_type_is_typed_per_dialect() -> None:
    assert sql_literal([], "postgres", element_type="BIGINT") == (
        "SELECT CAST(NULL AS BIGINT) LIMIT 0"
    )
    assert sql_literal([], "bigquery", element_type="BIGINT") == (
        "SELECT CAST(NULL AS INT64) LIMIT 0"
    )
    with pytest.raises(SqlTemplateError, match="unknown SQL type"):
        sql_literal([], "postgres", element_type="NOT A (TYPE")


# ---------------------------------------------------------------------------------------------
# literals: every value in every dialect parses back to the same value

ROUND_TRIP_VALUES: list[object] = [
    "plain",
    "",
    "it's",
    "back\\slash",
    "back\\'quote",
    "new\nline and\ttab\r",
    "ünïcödé \u2019quotes\u2018 and emoji \U0001f600",
    "percent %s and ? and :name",
    0,
    -5,
    2**63 - 1,
    10**30,
    0.1,
    -2.5,
    1e-07,
    1e20,
    Decimal("123.4500"),
    Decimal("-1E+3"),
    True,
    False,
    None,
    datetime.date(2026, 1, 31),
    datetime.datetime(2026, 1, 31, 12, 30, 1, 5),
    datetime.datetime(2026, 1, 31, 12, 30, tzinfo=UTC),
]


def _python_value(node: exp.Expr) -> object:
    """The Python value of a parsed literal, computed from the sqlglot AST."""
    if isinstance(node, exp.Neg):
        inner = _python_value(node.this)
        assert isinstance(inner, int | float | Decimal)
        return -inner
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return Decimal(text) if not any(c in text for c in "eE") else float(text)
    if isinstance(node, exp.Cast):
        assert isinstance(node.this, exp.Literal) and node.this.is_string
        if node.to.this == exp.DataType.Type.DATE:
            return datetime.date.fromisoformat(node.this.this)
        return datetime.datetime.fromisoformat(node.this.this)
    raise AssertionError(f"unexpected literal node {node!r}")


def _same(parsed: object, value: object) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str | datetime.date):
        return parsed == value and type(parsed) is type(value)
    assert isinstance(value, int | float | Decimal)
    assert isinstance(parsed, int | float | Decimal)
    if isinstance(value, float):
        return float(parsed) == value
    return Decimal(parsed) == Decimal(value)


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_every_value_parses_back_to_itself(dialect: str) -> None:
    for value in ROUND_TRIP_VALUES:
        rendered = sql_literal(value, dialect)
        (statement,) = sqlglot.parse(f"SELECT {rendered}", read=dialect)
        assert isinstance(statement, exp.Select)
        (node,) = statement.expressions
        assert _same(_python_value(node), value), (dialect, value, rendered)


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_lists_parse_back_to_the_same_values(dialect: str) -> None:
    values = [v for v in ROUND_TRIP_VALUES if v is not None]
    rendered = render_sql("SELECT 1 WHERE x IN ({{xs}})", {"xs": SqlValue(values)}, dialect)
    (statement,) = sqlglot.parse(rendered, read=dialect)
    assert statement is not None
    in_node = statement.find(exp.In)
    assert in_node is not None
    parsed = [_python_value(node) for node in in_node.expressions]
    assert all(_same(p, v) for p, v in zip(parsed, values, strict=True))


def test_duckdb_evaluates_each_literal_to_the_python_value() -> None:
    with duckdb.connect() as con:
        for value in ROUND_TRIP_VALUES:
            row = con.execute(f"SELECT {sql_literal(value, 'duckdb')}").fetchone()
            assert row is not None
            got = row[0]
            if isinstance(value, float):
                assert float(got) == value
            elif isinstance(value, Decimal | int) and not isinstance(value, bool):
                assert Decimal(got) == value
            else:
                assert got == value, (value, got)


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        Decimal("Infinity"),
        [[1, 2]],
        [{"a": 1}],
        {"a": 1},
        {1, 2},
        b"bytes",
        object(),
        "nul\x00byte",
    ],
)
def test_values_without_a_sql_literal_are_rejected(value: object) -> None:
    with pytest.raises(SqlTemplateError, match=r"\{\{v\}\}"):
        render_sql("SELECT {{v}}", {"v": SqlValue(value)}, "duckdb")


# ---------------------------------------------------------------------------------------------
# code


def test_code_is_substituted_as_written() -> None:
    template = (
        "SELECT account_id FROM {{accounts_table}} WHERE active = {{active}} "
        "AND churned IS {{nothing}} AND created >= '{{since}}' LIMIT {{limit}}"
    )
    values = {
        "accounts_table": SqlCode("analytics.accounts"),
        "active": SqlCode(True),
        "nothing": SqlCode(None),
        "since": SqlCode(datetime.date(2026, 1, 1)),
        "limit": SqlCode(100),
    }
    assert render_sql(template, values, "postgres") == (
        "SELECT account_id FROM analytics.accounts WHERE active = TRUE "
        "AND churned IS NULL AND created >= '2026-01-01' LIMIT 100"
    )


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, float("nan")])
def test_code_without_a_single_spelling_is_rejected(value: object) -> None:
    with pytest.raises(SqlTemplateError, match=r"\{\{v\}\}"):
        render_sql("SELECT {{v}}", {"v": SqlCode(value)}, "duckdb")


def test_values_are_substituted_in_a_single_pass() -> None:
    rendered = render_sql(
        "SELECT {{a}}, {{b}}",
        {"a": SqlValue("{{b}}"), "b": SqlCode("{{a}}")},
        "duckdb",
    )
    assert rendered == "SELECT '{{b}}', {{a}}"


def test_missing_value_names_the_placeholder_and_the_closest_name() -> None:
    with pytest.raises(SqlTemplateError) as caught:
        render_sql(
            "SELECT * FROM t WHERE arr >= {{min_arr}}",
            {"min_ar": SqlValue(1), "limit": SqlCode(10)},
            "duckdb",
        )
    message = str(caught.value)
    assert "{{min_arr}}" in message
    assert "did you mean 'min_ar'?" in message
    assert isinstance(caught.value, PlaybookValidationError)


def test_missing_value_without_close_name_lists_the_given_names() -> None:
    with pytest.raises(SqlTemplateError, match="valid parameters: limit, region"):
        render_sql("SELECT {{zzz}}", {"limit": SqlCode(1), "region": SqlValue("x")}, "duckdb")


def test_unused_values_are_fine() -> None:
    assert render_sql("SELECT 1", {"unused": SqlValue(1)}, "duckdb") == "SELECT 1"


# ---------------------------------------------------------------------------------------------
# where run-time values may land in a template


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("SELECT * FROM t WHERE name = '{{v}}'", "inside a quoted string"),
        ("SELECT * FROM t WHERE name LIKE '%{{v}}%'", "inside a quoted string"),
        ('SELECT * FROM t WHERE "{{v}}" = 1', "inside a quoted string"),
        ("SELECT * FROM t -- WHERE name = {{v}}\n", "inside a comment"),
        ("SELECT * FROM t /* {{v}} */", "inside a comment"),
    ],
)
def test_run_time_values_inside_strings_or_comments_are_rejected(
    template: str, message: str
) -> None:
    for dialect in SUPPORTED_DIALECTS:
        with pytest.raises(SqlTemplateError, match=message):
            render_sql(template, {"v": SqlValue("a")}, dialect)


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "redshift", "snowflake"])
def test_string_glued_to_a_template_string_is_rejected(dialect: str) -> None:
    # 'a''x' is one string where '' escapes a quote; the value would not end where it should.
    with pytest.raises(SqlTemplateError, match="inside a quoted string"):
        render_sql("SELECT * FROM t WHERE name = {{v}}'x'", {"v": SqlValue("a")}, dialect)


def test_negative_number_glued_to_a_minus_is_rejected() -> None:
    with pytest.raises(SqlTemplateError, match="comment"):
        render_sql("SELECT 10 -{{v}} AS x", {"v": SqlValue(-5)}, "postgres")
    assert render_sql("SELECT 10 - {{v}} AS x", {"v": SqlValue(-5)}, "postgres") == (
        "SELECT 10 - -5 AS x"
    )


def test_number_glued_to_digits_is_rejected() -> None:
    with pytest.raises(SqlTemplateError, match="merges with the text around it"):
        render_sql("SELECT {{v}}5 AS x", {"v": SqlValue(1)}, "duckdb")


def test_code_may_go_anywhere() -> None:
    rendered = render_sql("SELECT '{{v}}' -- {{v}}", {"v": SqlCode("x")}, "duckdb")
    assert rendered == "SELECT 'x' -- x"


# ---------------------------------------------------------------------------------------------
# empty lists on a real DuckDB


@pytest.fixture
def numbers_db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE accounts AS SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c'), "
        "(NULL, 'd')) AS v(account_id, account_name)"
    )
    return con


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("element_type", [None, "BIGINT", "INTEGER"])
def test_empty_list_matches_nothing_with_in_and_everything_with_not_in(
    numbers_db: duckdb.DuckDBPyConnection, element_type: str | None
) -> None:
    with numbers_db as con:
        values = {"ids": SqlValue([], element_type=element_type)}
        select_in = render_sql(
            "SELECT count(*) FROM accounts WHERE account_id IN ({{ids}})", values, "duckdb"
        )
        select_not_in = render_sql(
            "SELECT count(*) FROM accounts WHERE account_id not in( {{ids}} )", values, "duckdb"
        )
        total = _count(con, "SELECT count(*) FROM accounts")
        assert _count(con, select_in) == 0
        # Every row, the NULL id included: NOT IN of an empty set is true.
        assert _count(con, select_not_in) == total == 4


def test_empty_list_on_a_text_column(numbers_db: duckdb.DuckDBPyConnection) -> None:
    with numbers_db as con:
        for op, expected in [("IN", 0), ("NOT IN", 4)]:
            template = f"SELECT count(*) FROM accounts WHERE account_name {op} ({{{{names}}}})"
            sql = render_sql(template, {"names": SqlValue(())}, "duckdb")
            assert _count(con, sql) == expected


def test_non_empty_lists_match_like_python(numbers_db: duckdb.DuckDBPyConnection) -> None:
    ids = [1, 3, 99]
    rows = [(1, "a"), (2, "b"), (3, "c"), (None, "d")]
    with numbers_db as con:
        sql = render_sql(
            "SELECT count(*) FROM accounts WHERE account_id IN ({{ids}})",
            {"ids": SqlValue(ids)},
            "duckdb",
        )
        assert _count(con, sql) == sum(1 for i, _ in rows if i in ids)
        sql = render_sql(
            "SELECT count(*) FROM accounts WHERE account_id NOT IN ({{ids}})",
            {"ids": SqlValue(ids)},
            "duckdb",
        )
        # SQL: NULL NOT IN (...) is unknown, so the NULL row is not counted.
        assert _count(con, sql) == sum(1 for i, _ in rows if i is not None and i not in ids)


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_empty_list_statement_parses_in_every_dialect(dialect: str) -> None:
    sql = render_sql(
        "SELECT a FROM t WHERE a NOT IN ({{xs}}) AND b IN ({{xs}})",
        {"xs": SqlValue([], element_type="VARCHAR")},
        dialect,
    )
    (statement,) = sqlglot.parse(sql, read=dialect)
    assert statement is not None
    subqueries = list(statement.find_all(exp.Select))
    assert len(subqueries) == 3  # the statement and one empty subquery per IN


def test_empty_list_outside_in_is_rejected() -> None:
    with pytest.raises(SqlTemplateError, match=r"\{\{xs\}\}: an empty list can only"):
        render_sql("SELECT ARRAY[{{xs}}]", {"xs": SqlValue([])}, "duckdb")


# ---------------------------------------------------------------------------------------------
# identifiers


@pytest.mark.parametrize(
    ("value", "dialect", "expected"),
    [
        ("analytics.accounts", "postgres", "analytics.accounts"),
        ("analytics.accounts", "snowflake", "analytics.accounts"),
        ("analytics.accounts", "bigquery", "analytics.accounts"),
        ("prod.analytics.accounts_2024", "databricks", "prod.analytics.accounts_2024"),
        ('"My Schema".t', "postgres", '"My Schema".t'),
        ('"My Schema".t', "duckdb", '"My Schema".t'),
        ('"My Schema".t', "snowflake", '"My Schema".t'),
        ('"My Schema".t', "bigquery", "`My Schema`.t"),
        ('"My Schema".t', "databricks", "`My Schema`.t"),
        ("`my-project`.analytics.accounts", "bigquery", "`my-project`.analytics.accounts"),
        ("Accounts", "postgres", '"Accounts"'),
        ("Accounts", "duckdb", '"Accounts"'),
        ("Accounts", "redshift", '"Accounts"'),
        ("Accounts", "snowflake", "Accounts"),
        ("order", "postgres", '"order"'),
        ("analytics.order", "bigquery", "analytics.`order`"),
        ("order", "snowflake", '"ORDER"'),
        ("select", "databricks", "`select`"),
        ("user", "postgres", '"user"'),
        ('"accounts"', "postgres", "accounts"),
        ('"accounts"', "snowflake", '"accounts"'),
        ('"ACCOUNTS"', "snowflake", "ACCOUNTS"),
        ('"2024_sales"', "postgres", '"2024_sales"'),
        ('"données"', "postgres", '"données"'),
        ("_private", "duckdb", "_private"),
    ],
)
def test_identifiers_are_quoted_only_when_needed(value: str, dialect: str, expected: str) -> None:
    assert sql_identifier(value, dialect) == expected
    rendered = render_sql("SELECT * FROM {{t}}", {"t": SqlIdentifier(value)}, dialect)
    assert rendered == f"SELECT * FROM {expected}"
    (statement,) = sqlglot.parse(rendered, read=dialect)
    assert statement is not None
    assert statement.find(exp.Table) is not None


def test_identifier_reaches_the_table_on_duckdb() -> None:
    with duckdb.connect() as con:
        con.execute('CREATE SCHEMA "My Schema"')
        con.execute('CREATE TABLE "My Schema"."Order" AS SELECT 42 AS answer')
        sql = render_sql(
            "SELECT answer FROM {{t}}", {"t": SqlIdentifier('"My Schema".Order')}, "duckdb"
        )
        assert con.execute(sql).fetchall() == [(42,)]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "accounts; DROP TABLE accounts",
        "accounts --",
        "accounts/* x */",
        "analytics accounts",
        " accounts",
        "accounts ",
        "f()",
        "(SELECT 1)",
        '"unclosed',
        'a"b',
        '"a""b"',
        "`a`b`",
        '"a\nb"',
        '"a\\b"',
        '""',
        "a.",
        ".a",
        "a..b",
        "1abc",
        "a-b",
        "a.*",
        "accounts\n",
        "données",
    ],
)
def test_bad_identifiers_are_rejected_naming_the_value(value: str) -> None:
    for dialect in SUPPORTED_DIALECTS:
        with pytest.raises(SqlTemplateError, match="is not a plain identifier") as caught:
            render_sql("SELECT * FROM {{t}}", {"t": SqlIdentifier(value)}, dialect)
        assert repr(value)[:40] in str(caught.value)
        assert "{{t}}" in str(caught.value)


def test_identifier_must_be_a_string() -> None:
    with pytest.raises(SqlTemplateError, match="must be a string"):
        sql_identifier(42, "duckdb")


# ---------------------------------------------------------------------------------------------
# read-only guard

READ_ONLY_QUERIES: list[tuple[str, str]] = [
    ("duckdb", "SELECT 1"),
    ("duckdb", "select * from accounts where name = 'a; DROP TABLE x' ;"),
    ("duckdb", "-- leading comment\nSELECT 1 /* ; DELETE FROM x */"),
    ("duckdb", "FROM accounts SELECT account_id"),
    ("duckdb", "WITH a AS (SELECT 1 AS x) SELECT x FROM a"),
    ("duckdb", "SELECT 1 UNION ALL SELECT 2 EXCEPT SELECT 3"),
    ("duckdb", "VALUES (1, 'a'), (2, 'b')"),
    ("duckdb", "(SELECT 1) UNION (SELECT 2)"),
    ("duckdb", "SELECT * FROM read_parquet('x.parquet')"),
    ("postgres", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r"),
    ("postgres", "SELECT $$a ; b$$ AS s"),
    ("snowflake", "SELECT * FROM t QUALIFY ROW_NUMBER() OVER (ORDER BY x) = 1"),
    ("bigquery", "SELECT * FROM `my-project.analytics.accounts` WHERE x IN UNNEST([1, 2])"),
    ("databricks", "SELECT * FROM t TABLESAMPLE (10 PERCENT)"),
    ("redshift", "SELECT a, LISTAGG(b, ',') WITHIN GROUP (ORDER BY b) FROM t GROUP BY a"),
]


@pytest.mark.parametrize(("dialect", "sql"), READ_ONLY_QUERIES)
def test_read_only_queries_pass(dialect: str, sql: str) -> None:
    ensure_read_only(sql, dialect)


WRITES: list[tuple[str, str]] = [
    ("duckdb", "INSERT INTO accounts VALUES (1)"),
    ("duckdb", "UPDATE accounts SET arr = 0"),
    ("duckdb", "DELETE FROM accounts"),
    ("duckdb", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE"),
    ("duckdb", "CREATE TABLE x AS SELECT 1"),
    ("duckdb", "DROP TABLE accounts"),
    ("duckdb", "ALTER TABLE accounts ADD COLUMN x INT"),
    ("duckdb", "COPY accounts TO 'out.csv'"),
    ("duckdb", "ATTACH 'other.db' AS other"),
    ("duckdb", "PRAGMA enable_profiling"),
    ("duckdb", "SET threads = 1"),
    ("duckdb", "INSTALL httpfs"),
    ("duckdb", "TRUNCATE accounts"),
    ("postgres", "CALL refresh_all()"),
    ("postgres", "GRANT SELECT ON accounts TO public"),
    ("postgres", "SELECT 1 INTO new_table FROM accounts"),
    ("postgres", "WITH gone AS (DELETE FROM accounts RETURNING *) SELECT * FROM gone"),
    ("postgres", "WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM x"),
    ("postgres", "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"),
    ("postgres", "SELECT * FROM accounts FOR UPDATE"),
    ("postgres", "VACUUM accounts"),
    ("postgres", "BEGIN"),
    ("snowflake", "CREATE OR REPLACE TABLE t AS SELECT 1"),
    ("bigquery", "DELETE FROM dataset.t WHERE TRUE"),
    ("databricks", "INSERT OVERWRITE TABLE t SELECT 1"),
    ("redshift", "UNLOAD ('SELECT 1') TO 's3://bucket/x'"),
]


@pytest.mark.parametrize(("dialect", "sql"), WRITES)
def test_writes_are_rejected(dialect: str, sql: str) -> None:
    with pytest.raises(UnsafeSqlError) as caught:
        ensure_read_only(sql, dialect)
    assert isinstance(caught.value, PlaybookValidationError)
    message = str(caught.value)
    assert "only a single read-only statement is allowed" in message
    assert "set allow_writes: true on the connection to allow writes" in message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "SELECT 1; DROP TABLE accounts",
        "SELECT 1;\n-- comment\nDELETE FROM accounts;",
    ],
)
def test_multiple_statements_are_rejected(sql: str) -> None:
    with pytest.raises(UnsafeSqlError, match="statements"):
        ensure_read_only(sql, "duckdb")


def test_cte_write_is_named() -> None:
    with pytest.raises(UnsafeSqlError, match="DELETE inside the query"):
        ensure_read_only(
            "WITH gone AS (DELETE FROM accounts RETURNING *) SELECT * FROM gone", "postgres"
        )


def test_unparseable_sql_falls_back_to_the_tokenizer() -> None:
    # sqlglot cannot parse these; the fallback lets a lone query through for the warehouse
    # to judge, but still catches stacked statements and write keywords.
    ensure_read_only("SELECT (1", "duckdb")
    with pytest.raises(UnsafeSqlError, match="2 statements separated by ';'"):
        ensure_read_only("SELECT (1; DROP TABLE accounts", "duckdb")
    with pytest.raises(UnsafeSqlError, match="contains INTO"):
        ensure_read_only("SELECT (1 INTO x", "duckdb")
    with pytest.raises(UnsafeSqlError, match="contains DELETE"):
        ensure_read_only("SELECT ((( DELETE FROM accounts", "duckdb")


def test_untokenizable_sql_is_a_clear_error() -> None:
    with pytest.raises(UnsafeSqlError, match="cannot read the SQL as postgres"):
        ensure_read_only("SELECT 'unterminated", "postgres")


def test_long_integer_lists_render_whole_and_are_still_checked() -> None:
    ids = list(range(1, 5001))
    sql = render_sql(
        "SELECT * FROM t WHERE id IN ({{ids}})", {"ids": SqlValue(ids)}, "duckdb", read_only=True
    )
    assert sql == f"SELECT * FROM t WHERE id IN ({', '.join(map(str, ids))})"
    # The checks read the first and last elements in place: gluing is still caught ...
    with pytest.raises(SqlTemplateError, match="ends up inside a comment"):
        render_sql("SELECT x -{{ids}} FROM t", {"ids": SqlValue([-1, 2, 3, -4])}, "duckdb")
    with pytest.raises(SqlTemplateError, match="merges with the text around it"):
        render_sql("SELECT 1{{ids}} FROM t", {"ids": SqlValue([2, 3, 4])}, "duckdb")
    with pytest.raises(SqlTemplateError, match="inside a quoted string"):
        render_sql("SELECT '{{ids}}'", {"ids": SqlValue([1, 2, 3])}, "duckdb")
    # ... and so is a write, whatever the list's length.
    with pytest.raises(UnsafeSqlError):
        render_sql(
            "DELETE FROM t WHERE id IN ({{ids}})", {"ids": SqlValue(ids)}, "duckdb", read_only=True
        )


# ----------------------------------------------------------------------------- bound lists


def test_a_long_in_list_is_bound_as_a_table_and_reads_the_same_rows(tmp_path: Path) -> None:
    ids = list(range(0, 3000, 2))  # 1500 ids: over the threshold
    template = "SELECT id FROM t WHERE id IN ({{ids}}) AND label IN ({{labels}}) ORDER BY id"
    values = {"ids": SqlValue(ids), "labels": SqlValue(["a", "b"])}
    rendered = render_sql_binding(
        template, values, "duckdb", read_only=True, bind_lists_over=LIST_BINDING_THRESHOLD
    )
    assert rendered.sql == (
        "SELECT id FROM t WHERE id IN (SELECT value FROM playbook_list_ids) "
        "AND label IN ('a', 'b') ORDER BY id"
    )
    assert rendered.lists == {"playbook_list_ids": ids}
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(
            "CREATE TABLE t AS SELECT range AS id, CASE WHEN range % 3 = 0 THEN 'a' ELSE 'c' END "
            "AS label FROM range(5000)"
        )
    warehouse = DuckDBWarehouse(database=str(database))
    bound = warehouse.run_query_with_lists(rendered.sql, rendered.lists)
    literal = warehouse.run_query(render_sql(template, values, "duckdb", read_only=True))
    assert bound.equals(literal)
    assert bound.column("id").to_pylist() == [i for i in ids if i % 3 == 0]


@pytest.mark.parametrize(
    ("template", "items"),
    [
        ("SELECT 1 WHERE x IN ({{v}})", list(range(LIST_BINDING_THRESHOLD))),  # not over it
        ("SELECT 1 WHERE x IN ({{v}})", [1, "a"] * LIST_BINDING_THRESHOLD),  # two types
        ("SELECT 1 WHERE x IN ({{v}})", [True, False] * LIST_BINDING_THRESHOLD),  # booleans
        ("SELECT {{v}}", list(range(LIST_BINDING_THRESHOLD + 1))),  # not IN (...)
    ],
)
def test_other_lists_stay_literals(template: str, items: list[object]) -> None:
    rendered = render_sql_binding(
        template, {"v": SqlValue(items)}, "duckdb", bind_lists_over=LIST_BINDING_THRESHOLD
    )
    assert rendered.lists == {}
    assert rendered.sql == render_sql(template, {"v": SqlValue(items)}, "duckdb")


def test_a_bound_list_is_still_checked_where_it_lands() -> None:
    with pytest.raises(SqlTemplateError, match="inside a quoted string"):
        render_sql_binding(
            "SELECT 1 WHERE x IN ('{{v}}')",
            {"v": SqlValue(list(range(2000)))},
            "duckdb",
            bind_lists_over=LIST_BINDING_THRESHOLD,
        )
