"""The transform expression language: what parses, what renders, what is rejected and why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest

from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.expressions import (
    AGGREGATE_FUNCTIONS,
    SCALAR_FUNCTIONS,
    ExpressionError,
    JoinKey,
    check_columns,
    parse_condition,
    parse_join_on,
    parse_metric,
    quote_identifier,
)

ROWS = pa.table(
    {
        "arr": pa.array([100.0, 60000.0, None, 25000.0]),
        "health_score": pa.array([80, 40, 30, None], pa.int64()),
        "name": pa.array(["Acme", " Globex ", "initech", None]),
        "closed": pa.array([dt.date(2026, 1, 15), dt.date(2025, 12, 1), None, dt.date(2026, 3, 2)]),
        "flag": pa.array([True, False, None, True]),
    }
)


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB connection with ROWS registered as ``rows_``, shared by this module."""
    with duckdb.connect() as con:
        con.register("rows_", ROWS)
        yield con


def _select(con: duckdb.DuckDBPyConnection, sql: str) -> list[object]:
    """Evaluate rendered SQL over ROWS in DuckDB: the values, one per row (or one)."""
    return [row[0] for row in con.sql(f"SELECT {sql} FROM rows_").fetchall()]


# --------------------------------------------------------------------------- accepted


def test_condition_columns_and_rendering(duck: duckdb.DuckDBPyConnection) -> None:
    parsed = parse_condition("arr >= 50000 AND health_score < 50")
    assert parsed.columns == frozenset({"arr", "health_score"})
    assert parsed.kind == "condition"
    assert parsed.sql() == '"arr" >= 50000 AND "health_score" < 50'
    assert parsed.sql(qualifier="t") == '"t"."arr" >= 50000 AND "t"."health_score" < 50'
    assert _select(duck, parsed.sql()) == [False, True, None, False]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("health_score IN (40, 30)", [False, True, True, None]),
        ("health_score NOT IN (40, 30)", [True, False, False, None]),
        ("arr BETWEEN 100 AND 25000", [True, False, None, True]),
        ("name LIKE 'A%'", [True, False, False, None]),
        ("name ILIKE 'INIT%'", [False, False, True, None]),
        ("arr IS NULL", [False, False, True, False]),
        ("name IS NOT NULL", [True, True, True, False]),
        ("closed >= DATE '2026-01-01'", [True, False, None, True]),
        ("flag = TRUE OR flag IS NULL", [True, False, True, True]),
        ("NOT (health_score > 50)", [False, True, True, None]),
        (
            "CASE WHEN health_score >= 50 THEN 'Healthy' ELSE 'At-Risk' END = 'At-Risk'",
            [False, True, True, True],
        ),
        ("CAST(health_score AS VARCHAR) = '40'", [False, True, False, None]),
        ("health_score::DOUBLE / 4 = 10", [False, True, False, None]),
        ("health_score // 3 = 13", [False, True, False, None]),
        ("health_score % 2 = 0", [True, True, True, None]),
        ("(arr + 1) * 2 - 2 > 100", [True, True, None, True]),
        ("coalesce(arr, 0) = 0", [False, False, True, False]),
        ("lower(trim(name)) = 'globex'", [False, True, False, None]),
        ("name || '!' = 'Acme!'", [True, False, False, None]),
        ('"health_score" > 35', [True, True, False, None]),
        ("date_diff('day', closed, DATE '2026-03-02') = 0", [False, False, None, True]),
        ("extract(year FROM closed) = 2026", [True, False, None, True]),
        ("closed + INTERVAL 1 DAY = DATE '2026-01-16'", [True, False, None, False]),
    ],
)
def test_condition_semantics_match_duckdb(
    duck: duckdb.DuckDBPyConnection, text: str, expected: list[object]
) -> None:
    assert _select(duck, parse_condition(text).sql()) == expected


def test_column_names_are_quoted_safely() -> None:
    parsed = parse_condition('"we""ird col" = 1 AND "select" = 2')
    assert parsed.columns == frozenset({'we"ird col', "select"})
    assert parsed.sql() == '"we""ird col" = 1 AND "select" = 2'
    assert quote_identifier('a"b') == '"a""b"'


# Every whitelisted function, used once, so each renders to SQL DuckDB accepts.
SCALAR_EXAMPLES = {
    "abs": "abs(health_score - 50)",
    "round": "round(arr / 3, 1)",
    "floor": "floor(arr / 7)",
    "ceil": "ceil(arr / 7)",
    "ceiling": "ceiling(arr / 7)",
    "sign": "sign(health_score - 50)",
    "sqrt": "sqrt(arr)",
    "power": "power(health_score, 2)",
    "pow": "pow(health_score, 2)",
    "ln": "ln(arr)",
    "log": "log(arr)",
    "exp": "exp(health_score / 100)",
    "coalesce": "coalesce(arr, 0)",
    "nullif": "nullif(health_score, 40)",
    "if": "if(health_score > 50, 'high', 'low')",
    "lower": "lower(name)",
    "upper": "upper(name)",
    "length": "length(name)",
    "trim": "trim(name)",
    "ltrim": "ltrim(name)",
    "rtrim": "rtrim(name)",
    "concat": "concat(name, '-', health_score)",
    "concat_ws": "concat_ws('-', name, health_score)",
    "substr": "substr(name, 1, 2)",
    "substring": "substring(name, 2, 3)",
    "left": "left(name, 2)",
    "right": "right(name, 2)",
    "replace": "replace(name, 'A', 'a')",
    "starts_with": "starts_with(name, 'A')",
    "contains": "contains(name, 'lob')",
    "regexp_matches": "regexp_matches(name, '^[A-Z]')",
    "greatest": "greatest(health_score, 50)",
    "least": "least(health_score, 50)",
    "date_trunc": "date_trunc('month', closed)",
    "date_diff": "date_diff('day', closed, DATE '2026-12-31')",
    "datediff": "datediff('month', closed, DATE '2026-12-31')",
    "date_add": "date_add(closed, INTERVAL 1 DAY)",
    "date_part": "date_part('year', closed)",
    "datepart": "datepart('month', closed)",
    "extract": "extract(month FROM closed)",
    "year": "year(closed)",
    "quarter": "quarter(closed)",
    "month": "month(closed)",
    "week": "week(closed)",
    "day": "day(closed)",
    "dayofweek": "dayofweek(closed)",
    "make_date": "make_date(2026, 1, health_score // 10)",
    "strftime": "strftime(closed, '%Y-%m')",
    "current_date": "current_date",
    "today": "today()",
    "current_timestamp": "current_timestamp",
    "isnan": "isnan(arr)",
}
AGGREGATE_EXAMPLES = {
    "count": "count(DISTINCT name) + count(arr) + count(*)",
    "count_if": "count_if(arr > 1000)",
    "sum": "sum(arr)",
    "avg": "avg(health_score)",
    "min": "min(closed)",
    "max": "max(name)",
    "median": "median(arr)",
    "stddev": "stddev(arr)",
    "stddev_samp": "stddev_samp(arr)",
    "stddev_pop": "stddev_pop(arr)",
    "variance": "variance(arr)",
    "var_samp": "var_samp(arr)",
    "var_pop": "var_pop(arr)",
    "quantile": "quantile(arr, 0.5)",
    "quantile_cont": "quantile_cont(arr, 0.9)",
    "quantile_disc": "quantile_disc(arr, 0.9)",
    "approx_count_distinct": "approx_count_distinct(name)",
    "any_value": "any_value(name)",
    "bool_and": "bool_and(flag)",
    "bool_or": "bool_or(flag)",
}


def test_examples_cover_the_whole_whitelist() -> None:
    assert set(SCALAR_EXAMPLES) == set(SCALAR_FUNCTIONS)
    assert set(AGGREGATE_EXAMPLES) == set(AGGREGATE_FUNCTIONS)


@pytest.mark.parametrize("name", sorted(SCALAR_EXAMPLES))
def test_every_scalar_function_runs_in_duckdb(duck: duckdb.DuckDBPyConnection, name: str) -> None:
    text = f"{SCALAR_EXAMPLES[name]} IS NOT NULL"
    assert len(_select(duck, parse_condition(text).sql())) == ROWS.num_rows


@pytest.mark.parametrize("name", sorted(AGGREGATE_EXAMPLES))
def test_every_aggregate_function_runs_in_duckdb(
    duck: duckdb.DuckDBPyConnection, name: str
) -> None:
    assert len(_select(duck, parse_metric(AGGREGATE_EXAMPLES[name]).sql())) == 1


def test_scalar_results_equal_duckdb_on_the_original_text(duck: duckdb.DuckDBPyConnection) -> None:
    # The rendered SQL means what the user wrote: same values as DuckDB on the raw text.
    for text in ("round(arr / 3, 1)", "date_trunc('month', closed)", "substr(name, 1, 2)"):
        assert _select(duck, parse_condition(f"{text} IS NULL").sql()) == _select(
            duck, f"{text} IS NULL"
        )
    for text in ("median(arr)", "quantile_cont(arr, 0.9)", "stddev(arr)", "count(DISTINCT name)"):
        assert _select(duck, parse_metric(text).sql()) == _select(duck, text)


def test_metric_combines_aggregates(duck: duckdb.DuckDBPyConnection) -> None:
    parsed = parse_metric("SUM(arr) / COUNT(*)")
    assert parsed.kind == "metric"
    assert parsed.columns == frozenset({"arr"})
    assert _select(duck, parsed.sql()) == [(100.0 + 60000.0 + 25000.0) / 4]


def test_metric_where_is_a_filter_on_every_aggregate(duck: duckdb.DuckDBPyConnection) -> None:
    parsed = parse_metric("COUNT(*) WHERE health_score < 50")
    assert parsed.sql() == 'COUNT(*) FILTER(WHERE ("health_score" < 50))'
    assert parsed.columns == frozenset({"health_score"})
    assert _select(duck, parsed.sql()) == [2]

    ratio = parse_metric("SUM(arr) / COUNT(arr) WHERE name <> 'Acme'")
    assert ratio.columns == frozenset({"arr", "name"})
    assert _select(duck, ratio.sql()) == [
        60000.0
    ]  # only ' Globex ' has both arr and name <> 'Acme'


def test_metric_where_inside_strings_and_parentheses_is_not_split(
    duck: duckdb.DuckDBPyConnection,
) -> None:
    parsed = parse_metric("COUNT(*) WHERE name <> 'x WHERE y' AND (arr > 0)")
    assert _select(duck, parsed.sql()) == [2]  # Acme and Globex: name set and arr > 0


def test_standard_filter_syntax_and_combination_with_where(duck: duckdb.DuckDBPyConnection) -> None:
    standard = parse_metric("COUNT(*) FILTER (WHERE arr > 1000)")
    assert _select(duck, standard.sql()) == [2]
    both = parse_metric("COUNT(*) FILTER (WHERE arr > 1000) WHERE health_score < 35")
    assert _select(duck, both.sql()) == [0]
    assert both.columns == frozenset({"arr", "health_score"})


def test_filtered_any_value(duck: duckdb.DuckDBPyConnection) -> None:
    parsed = parse_metric("any_value(name) WHERE health_score = 40")
    assert _select(duck, parsed.sql()) == [" Globex "]


def test_join_on_pairs() -> None:
    parsed = parse_join_on("company_id = account_id AND left.region = right.area")
    assert parsed.columns == frozenset({"company_id", "account_id", "region", "area"})
    keys = parsed.resolve(["company_id", "region", "x"], ["account_id", "area", "x"])
    assert keys == [JoinKey("company_id", "account_id"), JoinKey("region", "area")]


def test_join_on_either_order_and_qualified() -> None:
    left, right = ["company_id", "deal"], ["account_id", "name"]
    expected = [JoinKey("company_id", "account_id")]
    assert parse_join_on("account_id = company_id").resolve(left, right) == expected
    assert parse_join_on("right.account_id = left.company_id").resolve(left, right) == expected
    assert parse_join_on("right.account_id = company_id").resolve(left, right) == expected
    assert parse_join_on("(Company_ID = ACCOUNT_ID)").resolve(left, right) == expected
    same = parse_join_on("account_id = account_id").resolve(["account_id"], ["account_id"])
    assert same == [JoinKey("account_id", "account_id")]
    sql = parse_join_on("company_id = account_id").sql(left, right)
    assert sql == '"l"."company_id" = "r"."account_id"'


# --------------------------------------------------------------------------- rejected


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("arr > (SELECT max(arr) FROM accounts)", ["subqueries are not allowed"]),
        ("arr IN (SELECT arr FROM accounts)", ["subqueries are not allowed"]),
        ("EXISTS (SELECT 1)", ["subqueries are not allowed"]),
        (
            "read_csv('x') IS NOT NULL",
            ["function 'read_csv' is not allowed", "allowed functions: abs"],
        ),
        ("getenv('HOME') = 'x'", ["function 'getenv' is not allowed", "allowed functions"]),
        ("current_setting('threads') = 1", ["function 'current_setting' is not allowed"]),
        ("glob('*') IS NULL", ["function 'glob' is not allowed"]),
        ("read_parquet('x.parquet') IS NULL", ["function 'read_parquet' is not allowed"]),
        ("sum(arr) OVER () > 1", ["window functions (OVER ...) are not allowed"]),
        ("row_number() OVER (ORDER BY arr) = 1", ["window functions"]),
        ("*", ["'*' is only allowed in COUNT(*)"]),
        ("t.* IS NULL", ["'*' is only allowed in COUNT(*)"]),
        ("arr > 1; DROP TABLE accounts", ["';' is not allowed"]),
        ("arr > 1 -- AND hidden", ["comments"]),
        ("arr > 1 /* ; DROP */", ["comments"]),
        ("sum(arr) > 100", ["aggregate function 'sum' is not allowed in a condition"]),
        ("count(*) > 1", ["aggregate function 'count' is not allowed in a condition"]),
        ("accounts.arr > 1", ["qualified column 'accounts.arr'", "only for join conditions"]),
        ("arr > 1 WHERE x = 1", ["WHERE is not allowed in a condition"]),
        ("arr > $1", ["parameters"]),
        ("arr > 1 total", ["aliases are not allowed"]),
        ("arr >", ["cannot parse condition 'arr >'"]),
        ("name = 'unclosed", ["cannot read condition", "quote"]),
        ("", ["condition is empty"]),
        ("   ", ["condition is empty"]),
    ],
)
def test_condition_rejections(text: str, fragments: list[str]) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_condition(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert isinstance(info.value, PlaybookValidationError)
    if text.strip():
        assert f"'{text}'" in message  # the message quotes the expression


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("arr", ["column 'arr' is used outside an aggregate function", "SUM(arr)"]),
        ("1 + 2", ["has no aggregate function", "allowed aggregate functions"]),
        ("SUM(arr) + health_score", ["column 'health_score' is used outside an aggregate"]),
        ("SUM(COUNT(*))", ["nested inside another aggregate"]),
        ("COUNT(*) WHERE SUM(arr) > 1", ["aggregate function 'sum' is not allowed in a condition"]),
        ("COUNT(*) WHERE", ["nothing after WHERE"]),
        ("WHERE arr > 1", ["nothing before WHERE"]),
        ("COUNT(*) WHERE a > 1 WHERE b > 1", ["more than one WHERE"]),
        ("COUNT(*) WHERE arr > 1; DROP TABLE t", ["';' is not allowed"]),
        ("SUM(arr) OVER ()", ["window functions"]),
        ("mode(arr)", ["function 'mode' is not allowed"]),
        ("string_agg(name, ',')", ["is not allowed"]),
        ("sum(*)", ["'*' is only allowed in COUNT(*)"]),
        ("count(DISTINCT arr, name)", ["DISTINCT inside an aggregate takes exactly one"]),
        ("COUNT(*) WHERE arr IN (SELECT 1)", ["subqueries are not allowed"]),
        ("COUNT(*) WHERE getenv('HOME') = ''", ["function 'getenv' is not allowed"]),
    ],
)
def test_metric_rejections(text: str, fragments: list[str]) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_metric(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert f"metric '{text}'" in message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("company_id > account_id", ["is not an equality between two columns"]),
        ("company_id = account_id OR a = b", ["OR is not allowed"]),
        ("lower(company_id) = account_id", ["is not a column"]),
        ("company_id = 5", ["is not a column"]),
        ("l.company_id = r.account_id", ["unknown table 'l'", "left."]),
        ("company_id = account_id; DROP TABLE x", ["';' is not allowed"]),
        ("company_id = (SELECT 1)", ["is not a column"]),
    ],
)
def test_join_on_rejections(text: str, fragments: list[str]) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_join_on(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert f"join condition '{text}'" in message


def test_join_resolution_errors() -> None:
    left, right = ["company_id", "region"], ["account_id", "region_name"]
    with pytest.raises(ExpressionError, match=r"both sides of 'left\.company_id = left\.region'"):
        parse_join_on("left.company_id = left.region").resolve(left, right)
    with pytest.raises(ExpressionError, match="compares two columns of the left table"):
        parse_join_on("company_id = region").resolve(left, right)
    with pytest.raises(ExpressionError) as info:
        parse_join_on("compnay_id = account_id").resolve(left, right)
    assert "unknown column 'compnay_id'" in str(info.value)
    assert "did you mean 'company_id'?" in str(info.value)
    with pytest.raises(ExpressionError) as info:
        parse_join_on("left.account_id = right.company_id").resolve(left, right)
    assert "unknown column 'account_id'" in str(info.value)
    assert "(left)" in str(info.value)
    with pytest.raises(ExpressionError, match="ambiguous"):
        parse_join_on("a = b").resolve(["a", "b"], ["b", "a"])


def test_check_columns_suggests_and_is_case_insensitive() -> None:
    available = ["arr", "health_score", "health_status"]
    check_columns(parse_condition("HEALTH_SCORE < 50 AND Arr > 1"), available, "filter")
    with pytest.raises(ExpressionError) as info:
        check_columns(parse_condition("helth_score < 50"), available, "filter condition")
    message = str(info.value)
    assert message.startswith("unknown column 'helth_score' in filter condition 'helth_score < 50'")
    assert "did you mean 'health_score'?" in message
    assert "available columns: arr, health_score, health_status" in message
    assert "case-insensitively" in message
    with pytest.raises(ExpressionError, match=r"unknown column 'zzz'.*available columns: arr"):
        check_columns(parse_metric("COUNT(*) WHERE zzz > 1"), available, "metric 'n'")


def test_non_string_expression_is_rejected() -> None:
    with pytest.raises(ExpressionError, match="condition must be a string, got int"):
        parse_condition(5)  # type: ignore[arg-type]
