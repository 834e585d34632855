"""Join, aggregate and filter, each checked against the same computation written as plain SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from playbook_assets.core.errors import PlaybookValidationError, TerminalStepError
from playbook_assets.core.expressions import ExpressionError, parse_condition, parse_metric
from playbook_assets.core.transforms import aggregate_table, filter_table, join_tables

DEALS = pa.table(
    {
        "deal_id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
        "company_id": pa.array([10, 10, 20, 30, None, 99], pa.int64()),
        "name": ["Renewal", "Upsell", "New", "Expansion", "Orphan", "Lost"],
        "amount": pa.array([1000.0, 2500.0, 400.0, None, 50.0, 10.0]),
        "stage": ["open", "open", "won", "open", "open", "lost"],
        "region": ["EU", "EU", "US", "US", "EU", "APAC"],
    }
)
ACCOUNTS = pa.table(
    {
        "account_id": pa.array([10, 20, 30, 40, None], pa.int64()),
        "name": ["Acme", "Globex", "Initech", "Umbrella", "Nobody"],
        "arr": pa.array([60000, 12000, 90000, 30000, 5], pa.int64()),
        "health_score": pa.array([40, 85, None, 20, 50], pa.int64()),
        "health_status": ["At-Risk", "Healthy", None, "At-Risk", "Healthy"],
        "region": ["EU", "US", "US", "EU", "EU"],
        "signup": pa.array(
            [
                dt.date(2024, 1, 5),
                dt.date(2025, 6, 1),
                dt.date(2025, 11, 20),
                None,
                dt.date(2023, 2, 2),
            ]
        ),
    }
)


def _sql(query: str, **tables: pa.Table) -> pa.Table:
    """The independent computation: plain SQL over the same Arrow tables in DuckDB."""
    with duckdb.connect() as con:
        for name, table in tables.items():
            con.register(name, table)
        return con.sql(query).to_arrow_table()


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    """Rows as tuples, sorted (join order is unspecified)."""
    rows = [tuple(row.values()) for row in table.to_pylist()]
    return sorted(rows, key=repr)


def _assert_same_rows(result: pa.Table, expected: pa.Table) -> None:
    assert result.column_names == expected.column_names
    assert result.schema.types == expected.schema.types
    assert _rows(result) == _rows(expected)


def _names(table: pa.Table) -> list[str]:
    return table.column_names


# --------------------------------------------------------------------------- join

JOIN_SQL: Mapping[str, str] = {
    "inner": "INNER JOIN",
    "left": "LEFT JOIN",
    "right": "RIGHT JOIN",
    "outer": "FULL OUTER JOIN",
}


@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
def test_join_with_collisions_matches_sql(how: str) -> None:
    result = join_tables(DEALS, ACCOUNTS, "company_id = account_id", how)
    expected = _sql(
        "SELECT d.deal_id, d.company_id, d.name, d.amount, d.stage, d.region, a.account_id, "
        "a.name AS name_right, a.arr, a.health_score, a.health_status, "
        "a.region AS region_right, a.signup "
        f"FROM deals d {JOIN_SQL[how]} accounts a ON d.company_id = a.account_id",
        deals=DEALS,
        accounts=ACCOUNTS,
    )
    _assert_same_rows(result, expected)
    expected_rows = {"inner": 4, "left": 6, "right": 6, "outer": 8}[how]
    assert result.num_rows == expected_rows  # NULL keys never match


@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
def test_join_same_named_key_appears_once(how: str) -> None:
    usage = pa.table(
        {
            "account_id": pa.array([10, 20, 50, None], pa.int64()),
            "seats": pa.array([5, 7, 9, 1], pa.int64()),
            "name": ["acme-usage", "globex-usage", "ghost", "null-key"],
        }
    )
    result = join_tables(ACCOUNTS, usage, "account_id = account_id", how)
    key = {
        "inner": "a.account_id",
        "left": "a.account_id",
        "right": "u.account_id",
        "outer": "COALESCE(a.account_id, u.account_id)",
    }[how]
    expected = _sql(
        f"SELECT {key} AS account_id, a.name, a.arr, a.health_score, a.health_status, a.region, "
        "a.signup, u.seats, u.name AS name_right "
        f"FROM accounts a {JOIN_SQL[how]} usage u ON a.account_id = u.account_id",
        accounts=ACCOUNTS,
        usage=usage,
    )
    _assert_same_rows(result, expected)
    assert result.column_names.count("account_id") == 1
    if how == "outer":
        # Unmatched right rows keep their key in the merged column.
        assert 50 in result.column("account_id").to_pylist()


def test_join_suffix_skips_names_already_taken() -> None:
    left = pa.table({"id": [1], "name": ["l"], "name_right": ["taken"]})
    right = pa.table({"id": [1], "name": ["r"], "name_right_2": ["also taken"]})
    result = join_tables(left, right, "left.id = right.id")
    assert result.column_names == [
        "id",
        "name",
        "name_right",
        "name_right_3",
        "name_right_2",
    ]
    assert result.to_pylist() == [
        {
            "id": 1,
            "name": "l",
            "name_right": "taken",
            "name_right_3": "r",
            "name_right_2": "also taken",
        }
    ]


def test_join_collisions_are_case_insensitive() -> None:
    left = pa.table({"ID": [1, 2], "Name": ["a", "b"]})
    right = pa.table({"id": [2, 1], "name": ["B", "A"]})
    result = join_tables(left, right, "ID = id")
    assert result.column_names == ["ID", "Name", "name_right"]
    assert _rows(result) == [(1, "a", "A"), (2, "b", "B")]


def test_multi_condition_join_matches_sql() -> None:
    targets = pa.table(
        {
            "area": ["EU", "EU", "US", "US"],
            "stage": ["open", "won", "open", "won"],
            "target": pa.array([3000.0, 100.0, 50.0, 400.0]),
        }
    )
    result = join_tables(DEALS, targets, "region = area AND stage = stage", "left")
    expected = _sql(
        "SELECT d.*, t.area, t.target FROM deals d "
        "LEFT JOIN targets t ON d.region = t.area AND d.stage = t.stage",
        deals=DEALS,
        targets=targets,
    )
    _assert_same_rows(result, expected)
    assert result.column_names.count("stage") == 1


@pytest.mark.parametrize(
    "on",
    [
        "company_id = account_id",
        "account_id = company_id",
        "right.account_id = left.company_id",
        "left.company_id = account_id",
        "COMPANY_ID = Account_Id",
    ],
)
def test_join_sides_in_any_order_or_qualified(on: str) -> None:
    result = join_tables(DEALS, ACCOUNTS, on, "inner")
    expected = join_tables(DEALS, ACCOUNTS, "company_id = account_id", "inner")
    assert result.column_names == expected.column_names
    assert _rows(result) == _rows(expected)


def test_join_pyarrow_check() -> None:
    # Independent of SQL: pyarrow's own hash join gives the same matches.
    result = join_tables(DEALS, ACCOUNTS, "company_id = account_id", "inner")
    arrow = DEALS.select(["deal_id", "company_id"]).join(
        ACCOUNTS.select(["account_id", "arr"]),
        keys="company_id",
        right_keys="account_id",
        join_type="inner",
    )
    ours = sorted(zip(result["deal_id"].to_pylist(), result["arr"].to_pylist(), strict=True))
    theirs = sorted(zip(arrow["deal_id"].to_pylist(), arrow["arr"].to_pylist(), strict=True))
    assert ours == theirs == [(1, 60000), (2, 60000), (3, 12000), (4, 90000)]


def test_join_errors() -> None:
    valid = r"unknown join type 'full'; valid join types: inner, left, outer, right"
    with pytest.raises(ExpressionError, match=valid):
        join_tables(DEALS, ACCOUNTS, "company_id = account_id", "full")
    with pytest.raises(ExpressionError, match=r"unknown join type 'lefft'; did you mean 'left'\?"):
        join_tables(DEALS, ACCOUNTS, "company_id = account_id", "lefft")
    with pytest.raises(ExpressionError) as info:
        join_tables(DEALS, ACCOUNTS, "company_id = acount_id")
    assert "unknown column 'acount_id'" in str(info.value)
    assert "did you mean 'account_id'?" in str(info.value)
    with pytest.raises(ExpressionError, match="ambiguous"):
        join_tables(DEALS, ACCOUNTS, "region = name")
    with pytest.raises(ExpressionError, match="not an equality"):
        join_tables(DEALS, ACCOUNTS, "company_id < account_id")


def test_join_empty_input_keeps_columns() -> None:
    result = join_tables(DEALS.slice(0, 0), ACCOUNTS, "company_id = account_id", "left")
    assert result.num_rows == 0
    assert "name_right" in result.column_names


# --------------------------------------------------------------------------- aggregate

METRICS = [
    ("count", "COUNT(*)"),
    ("total_arr", "SUM(arr)"),
    ("at_risk_accounts", "COUNT(*) WHERE health_status = 'At-Risk'"),
    ("avg_arr_per_account", "SUM(arr) / COUNT(*)"),
    ("healthy_arr", "SUM(arr) FILTER (WHERE health_score >= 50)"),
    ("regions", "COUNT(DISTINCT region)"),
    ("median_score", "median(health_score)"),
]
METRICS_SQL = (
    "COUNT(*) AS count, SUM(arr) AS total_arr, "
    "COUNT(*) FILTER (WHERE health_status = 'At-Risk') AS at_risk_accounts, "
    "SUM(arr) / COUNT(*) AS avg_arr_per_account, "
    "SUM(arr) FILTER (WHERE health_score >= 50) AS healthy_arr, "
    "COUNT(DISTINCT region) AS regions, median(health_score) AS median_score"
)


def test_aggregate_with_group_by_matches_sql() -> None:
    result = aggregate_table(ACCOUNTS, ["health_status"], METRICS)
    expected = _sql(
        f"SELECT health_status, {METRICS_SQL} FROM accounts "
        "GROUP BY health_status ORDER BY health_status NULLS LAST",
        accounts=ACCOUNTS,
    )
    assert result.schema == expected.schema
    assert result.to_pylist() == expected.to_pylist()  # same order: sorted, NULL group last
    assert result.column("health_status").to_pylist() == ["At-Risk", "Healthy", None]
    assert result.column("total_arr").to_pylist() == [90000, 12005, 90000]
    # pyarrow's own group-by agrees on the sums.
    arrow = ACCOUNTS.group_by("health_status").aggregate([("arr", "sum")])
    arrow_sums = dict(
        zip(arrow["health_status"].to_pylist(), arrow["arr_sum"].to_pylist(), strict=True)
    )
    assert (
        dict(zip(result["health_status"].to_pylist(), result["total_arr"].to_pylist(), strict=True))
        == arrow_sums
    )


def test_aggregate_without_group_by_matches_sql_and_pyarrow() -> None:
    result = aggregate_table(ACCOUNTS, [], METRICS)
    expected = _sql(f"SELECT {METRICS_SQL} FROM accounts", accounts=ACCOUNTS)
    assert result.schema == expected.schema
    assert result.to_pylist() == expected.to_pylist()
    row = result.to_pylist()[0]
    assert row["count"] == ACCOUNTS.num_rows
    assert row["total_arr"] == sum(ACCOUNTS.column("arr").to_pylist()) == 192005
    at_risk = ACCOUNTS.filter(pc.field("health_status") == "At-Risk").num_rows
    assert row["at_risk_accounts"] == at_risk == 2


def test_aggregate_two_group_columns_case_insensitive() -> None:
    result = aggregate_table(
        DEALS, ["Region", "STAGE"], [("deals", "count(*)"), ("amount", "sum(amount)")]
    )
    expected = _sql(
        "SELECT region, stage, count(*) AS deals, sum(amount) AS amount FROM deals "
        "GROUP BY region, stage ORDER BY region NULLS LAST, stage NULLS LAST",
        deals=DEALS,
    )
    assert result.column_names == ["region", "stage", "deals", "amount"]
    assert result.to_pylist() == expected.to_pylist()


def test_metric_named_like_an_input_column_reads_the_column() -> None:
    result = aggregate_table(
        ACCOUNTS, ["region"], [("arr", "SUM(arr)"), ("avg_arr", "AVG(arr)"), ("n", "COUNT(arr)")]
    )
    expected = _sql(
        "SELECT region, SUM(arr) AS s, AVG(arr) AS a, COUNT(arr) AS n FROM accounts "
        "GROUP BY region ORDER BY region",
        accounts=ACCOUNTS,
    )
    assert [list(r.values()) for r in result.to_pylist()] == [
        list(r.values()) for r in expected.to_pylist()
    ]


def test_aggregate_empty_input() -> None:
    empty = ACCOUNTS.slice(0, 0)
    overall = aggregate_table(empty, [], [("n", "COUNT(*)"), ("total", "SUM(arr)")])
    assert overall.to_pylist() == [{"n": 0, "total": None}]
    grouped = aggregate_table(empty, ["region"], [("n", "COUNT(*)")])
    assert grouped.num_rows == 0
    assert grouped.column_names == ["region", "n"]


def test_aggregate_accepts_parsed_metrics() -> None:
    parsed = parse_metric("MAX(arr) WHERE region = 'EU'")
    result = aggregate_table(ACCOUNTS, [], [("max_eu", parsed)])
    assert result.to_pylist() == [{"max_eu": 60000}]


def test_aggregate_errors() -> None:
    with pytest.raises(ExpressionError) as info:
        aggregate_table(ACCOUNTS, ["helth_status"], [("n", "COUNT(*)")])
    assert "unknown column 'helth_status' in aggregate group_by" in str(info.value)
    assert "did you mean 'health_status'?" in str(info.value)
    with pytest.raises(ExpressionError) as info:
        aggregate_table(ACCOUNTS, [], [("n", "SUM(ar)")])
    assert "unknown column 'ar' in metric 'n' 'SUM(ar)'" in str(info.value)
    assert "did you mean 'arr'?" in str(info.value)
    with pytest.raises(ExpressionError, match="already used by a group_by column"):
        aggregate_table(ACCOUNTS, ["region"], [("Region", "COUNT(*)")])
    with pytest.raises(ExpressionError, match="already used by a metric"):
        aggregate_table(ACCOUNTS, [], [("n", "COUNT(*)"), ("n", "SUM(arr)")])
    with pytest.raises(ExpressionError, match="has no aggregate function"):
        aggregate_table(ACCOUNTS, [], [("n", "1 + 1")])
    with pytest.raises(ExpressionError, match="parsed as a condition, not a metric"):
        aggregate_table(ACCOUNTS, [], [("n", parse_condition("arr > 1"))])
    with pytest.raises(ExpressionError, match="at least one metric or group_by"):
        aggregate_table(ACCOUNTS, [], [])


def test_aggregate_type_error_is_terminal() -> None:
    with pytest.raises(TerminalStepError, match="aggregate failed in DuckDB") as info:
        aggregate_table(ACCOUNTS, [], [("n", "SUM(name)")])
    assert not isinstance(info.value, PlaybookValidationError)
    assert isinstance(info.value.__cause__, duckdb.Error)


# --------------------------------------------------------------------------- filter


@pytest.mark.parametrize(
    "condition",
    [
        "arr >= 50000 AND health_score < 50",
        "region IN ('US', 'APAC')",
        "arr BETWEEN 10000 AND 60000",
        "name LIKE '%e%'",
        "name ILIKE 'a%'",
        "health_score IS NULL",
        "health_status IS NOT NULL AND NOT (region = 'US')",
        "CASE WHEN health_score >= 50 THEN 'ok' ELSE 'watch' END = 'watch'",
        "signup >= DATE '2025-01-01'",
        "arr / 1000 > 50 OR account_id IS NULL",
        "upper(substr(name, 1, 1)) IN ('A', 'G')",
    ],
)
def test_filter_matches_sql(condition: str) -> None:
    result = filter_table(ACCOUNTS, condition)
    expected = _sql(f"SELECT * FROM accounts WHERE {condition}", accounts=ACCOUNTS)
    assert result.schema == ACCOUNTS.schema
    assert result.to_pylist() == expected.to_pylist()  # same rows in the same order


def test_filter_pyarrow_check_and_order() -> None:
    result = filter_table(ACCOUNTS, "arr >= 30000")
    assert result.equals(ACCOUNTS.filter(pc.field("arr") >= 30000))
    assert result.column("name").to_pylist() == ["Acme", "Initech", "Umbrella"]


def test_filter_keeps_order_and_schema_on_many_chunks() -> None:
    n = 200_000
    base = pa.table(
        {
            "i": pa.array(range(n), pa.int64()),
            "s": pa.array([f"v{i % 7}" for i in range(n)], pa.large_string()),
        }
    )
    chunked = pa.concat_tables([base.slice(start, 10_000) for start in range(0, n, 10_000)])
    result = filter_table(chunked, "i % 3 = 0 AND s <> 'v1'")
    assert result.schema == base.schema  # large_string kept
    assert result.column("i").to_pylist() == [i for i in range(n) if i % 3 == 0 and i % 7 != 1]


def test_filter_null_condition_drops_row() -> None:
    result = filter_table(ACCOUNTS, "health_score < 60")
    assert result.column("name").to_pylist() == ["Acme", "Umbrella", "Nobody"]  # NULL score out


def test_filter_empty_input() -> None:
    result = filter_table(ACCOUNTS.slice(0, 0), "arr > 1")
    assert result.num_rows == 0
    assert result.schema == ACCOUNTS.schema


def test_filter_errors() -> None:
    with pytest.raises(ExpressionError) as info:
        filter_table(ACCOUNTS, "helth_score < 50")
    message = str(info.value)
    assert "unknown column 'helth_score' in filter condition 'helth_score < 50'" in message
    assert "did you mean 'health_score'?" in message
    assert "available columns: account_id, arr, health_score" in message
    with pytest.raises(ExpressionError, match="aggregate function 'sum' is not allowed"):
        filter_table(ACCOUNTS, "SUM(arr) > 1")
    with pytest.raises(ExpressionError, match="function 'read_csv' is not allowed"):
        filter_table(ACCOUNTS, "read_csv('/etc/passwd') IS NOT NULL")
    with pytest.raises(TerminalStepError, match="gives values of type int64, not true/false"):
        filter_table(ACCOUNTS, "arr + 1")
    with pytest.raises(TerminalStepError, match="filter 'name > 5' failed in DuckDB"):
        filter_table(ACCOUNTS, "name > 5")


def test_expressions_without_columns() -> None:
    assert filter_table(ACCOUNTS, "TRUE").equals(ACCOUNTS)
    assert filter_table(ACCOUNTS, "1 = 0").num_rows == 0
    assert aggregate_table(ACCOUNTS, [], [("n", "COUNT(*)")]).to_pylist() == [{"n": 5}]


def test_odd_column_names_are_quoted() -> None:
    left = pa.table({'my "id"': [1, 2, 3], "select": ["a", "b", "c"]})
    right = pa.table({"key id": [2, 3, 4], "from": [20, 30, 40]})
    joined = join_tables(left, right, '"my ""id""" = "key id"', "inner")
    assert joined.column_names == ['my "id"', "select", "key id", "from"]
    assert _rows(joined) == [(2, "b", 2, 20), (3, "c", 3, 30)]
    filtered = filter_table(joined, '"from" >= 30 AND "select" = \'c\'')
    assert filtered.to_pylist() == [{'my "id"': 3, "select": "c", "key id": 3, "from": 30}]
    totals = aggregate_table(joined, ["select"], [("sum of from", 'SUM("from")')])
    assert totals.to_pylist() == [
        {"select": "b", "sum of from": 20},
        {"select": "c", "sum of from": 30},
    ]
