"""The demo data generator: determinism, row counts, value domains, files."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.demo.generator import (
    ensure_demo_crm,
    ensure_demo_warehouse,
    write_demo_crm,
    write_demo_warehouse,
)

WAREHOUSE_TABLES = ["analytics.accounts", "analytics.product_usage", "analytics.support_tickets"]
CRM_TABLES = ["companies", "deals", "deal_company", "contacts", "contact_company"]


def _digest(path: Path, tables: list[str]) -> dict[str, str]:
    """sha256 of each table's Arrow data (as Python values, so bytes under NULLs don't count)."""
    digests: dict[str, str] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for name in tables:
            table = con.sql(f"SELECT * FROM {name} ORDER BY ALL").to_arrow_table()
            canonical = repr((table.schema.to_string(), table.to_pydict())).encode()
            digests[name] = hashlib.sha256(canonical).hexdigest()
    return digests


def _counts(path: Path, tables: list[str]) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        counts = {}
        for name in tables:
            counts[name] = int(con.sql(f"SELECT count(*) FROM {name}").fetchall()[0][0])
        return counts


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The warehouse and CRM at scale 1 (a few tenths of a second each)."""
    folder = tmp_path_factory.mktemp("demo")
    warehouse, crm = folder / "warehouse.duckdb", folder / "crm.duckdb"
    write_demo_warehouse(warehouse, scale=1)
    write_demo_crm(crm, scale=1)
    return {"warehouse": warehouse, "crm": crm}


@pytest.fixture()
def con(files: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """One connection with both files attached: ``wh`` and ``crm``."""
    connection = duckdb.connect()
    connection.execute(f"ATTACH '{files['warehouse']}' AS wh (READ_ONLY)")
    connection.execute(f"ATTACH '{files['crm']}' AS crm (READ_ONLY)")
    return connection


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The single value of a one-row, one-column query."""
    [(value,)] = con.sql(sql).fetchall()
    return value


def test_same_seed_and_scale_give_identical_data(tmp_path: Path) -> None:
    first = [tmp_path / "a" / "wh.duckdb", tmp_path / "a" / "crm.duckdb"]
    second = [tmp_path / "b" / "wh.duckdb", tmp_path / "b" / "crm.duckdb"]
    for warehouse, crm in (first, second):
        write_demo_warehouse(warehouse, scale=0.1)
        write_demo_crm(crm, scale=0.1)
    assert _digest(first[0], WAREHOUSE_TABLES) == _digest(second[0], WAREHOUSE_TABLES)
    assert _digest(first[1], CRM_TABLES) == _digest(second[1], CRM_TABLES)

    other_seed = tmp_path / "c" / "wh.duckdb"
    write_demo_warehouse(other_seed, scale=0.1, seed=7)
    assert _digest(other_seed, WAREHOUSE_TABLES) != _digest(first[0], WAREHOUSE_TABLES)


@pytest.mark.parametrize("scale", [0.1, 1.0])
def test_row_counts_follow_scale(tmp_path: Path, scale: float) -> None:
    started = time.perf_counter()
    warehouse_counts = write_demo_warehouse(tmp_path / "wh.duckdb", scale=scale)
    crm_counts = write_demo_crm(tmp_path / "crm.duckdb", scale=scale)
    elapsed = time.perf_counter() - started

    accounts = round(10_000 * scale)
    assert warehouse_counts["analytics.accounts"] == accounts
    assert warehouse_counts["analytics.product_usage"] == 6 * accounts
    assert crm_counts["companies"] == accounts
    assert crm_counts["deals"] == crm_counts["deal_company"] == round(50_000 * scale)
    assert crm_counts["contacts"] == round(30_000 * scale)
    # The returned counts are what the files hold.
    assert _counts(tmp_path / "wh.duckdb", WAREHOUSE_TABLES) == warehouse_counts
    assert _counts(tmp_path / "crm.duckdb", CRM_TABLES) == crm_counts
    assert elapsed < 15, f"generation at scale {scale} took {elapsed:.1f}s"


def test_column_types_are_the_documented_ones(con: duckdb.DuckDBPyConnection) -> None:
    types = dict(
        con.sql(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = 'wh' AND table_schema = 'analytics' "
            "AND table_name = 'accounts'"
        ).fetchall()
    )
    assert types == {
        "account_id": "BIGINT",
        "account_name": "VARCHAR",
        "segment": "VARCHAR",
        "industry": "VARCHAR",
        "region": "VARCHAR",
        "employees": "INTEGER",
        "health_score": "INTEGER",
        "health_status": "VARCHAR",
        "arr": "DECIMAL(12,2)",
        "owner_email": "VARCHAR",
        "renewal_date": "DATE",
        "created_at": "DATE",
        "plan": "VARCHAR",
        "seats_purchased": "INTEGER",
        "seats_used": "INTEGER",
    }


def test_accounts_value_domains(con: duckdb.DuckDBPyConnection) -> None:
    accounts = "wh.analytics.accounts"
    # health_status is derived from health_score with the documented thresholds.
    mismatched = _one(
        con,
        f"""SELECT count(*) FROM {accounts} WHERE health_status <> CASE
            WHEN health_score >= 70 THEN 'Healthy' WHEN health_score >= 50 THEN 'Neutral'
            WHEN health_score >= 25 THEN 'At-Risk' ELSE 'Churned' END
            OR health_score NOT BETWEEN 0 AND 100""",
    )
    assert mismatched == 0
    shares = dict(
        con.sql(f"SELECT health_status, count(*) / 10000 FROM {accounts} GROUP BY ALL").fetchall()
    )
    assert 0.04 <= shares["Churned"] <= 0.06
    assert 0.13 <= shares["At-Risk"] <= 0.17
    segments = dict(
        con.sql(f"SELECT segment, count(*) / 10000 FROM {accounts} GROUP BY ALL").fetchall()
    )
    assert segments.keys() == {"enterprise", "mid-market", "smb"}
    assert 0.13 <= segments["enterprise"] <= 0.17 and 0.47 <= segments["smb"] <= 0.53
    arr_ranges = {
        segment: (low, high)
        for segment, low, high in con.sql(
            f"SELECT segment, min(arr), max(arr) FROM {accounts} GROUP BY ALL"
        ).fetchall()
    }
    assert Decimal(100_000) <= arr_ranges["enterprise"][0] <= arr_ranges["enterprise"][1]
    assert arr_ranges["enterprise"][1] <= Decimal(1_500_000)
    assert Decimal(20_000) <= arr_ranges["mid-market"][0]
    assert arr_ranges["mid-market"][1] <= Decimal(200_000)
    assert Decimal(2_000) <= arr_ranges["smb"][0] and arr_ranges["smb"][1] <= Decimal(30_000)

    assert _one(con, f"SELECT count(DISTINCT account_name) FROM {accounts}") == 10_000
    assert _one(con, f"SELECT min(account_id) FROM {accounts}") == 1_000_001
    assert set(
        con.sql(f"SELECT DISTINCT region FROM {accounts}").to_arrow_table()["region"].to_pylist()
    ) == {"NA", "EMEA", "APAC", "LATAM"}
    emails = con.sql(f"SELECT DISTINCT owner_email FROM {accounts}").fetchall()
    assert len(emails) == 12 and all(e[0].endswith("@example.com") for e in emails)
    [(low, high)] = con.sql(
        f"SELECT min(renewal_date), max(renewal_date) FROM {accounts}"
    ).fetchall()
    assert date(2026, 1, 1) <= low and high <= date(2027, 9, 1)
    assert _one(con, f"SELECT count(*) FROM {accounts} WHERE created_at >= renewal_date") == 0
    # Seats: used within purchased mostly, with some expansion candidates above.
    over = _one(con, f"SELECT avg((seats_used > seats_purchased)::INT) FROM {accounts}")
    assert 0.01 < float(over) < 0.15
    # Presales reality: at-risk accounts worth a real amount exist.
    assert (
        _one(
            con, f"SELECT count(*) FROM {accounts} WHERE health_status = 'At-Risk' AND arr >= 50000"
        )
        > 50
    )


def test_usage_and_tickets_follow_health(con: duckdb.DuckDBPyConnection) -> None:
    months = con.sql("SELECT DISTINCT month FROM wh.analytics.product_usage ORDER BY 1").fetchall()
    assert [m[0] for m in months] == [date(2026, month, 1) for month in range(5, 11)]
    trend = dict(
        con.sql(
            """SELECT a.health_status,
                      avg(active_users) FILTER (month = DATE '2026-10-01')
                      / avg(active_users) FILTER (month = DATE '2026-05-01')
               FROM wh.analytics.product_usage u JOIN wh.analytics.accounts a USING (account_id)
               GROUP BY ALL"""
        ).fetchall()
    )
    assert trend["At-Risk"] < 0.7 and trend["Churned"] < trend["At-Risk"]
    assert trend["Healthy"] >= 1.0
    assert (
        _one(
            con,
            "SELECT count(*) FROM wh.analytics.product_usage "
            "WHERE feature_adoption_pct NOT BETWEEN 0 AND 100 OR active_users < 0",
        )
        == 0
    )
    urgent_share = dict(
        con.sql(
            """SELECT a.health_status, avg((priority IN ('high', 'urgent'))::INT)
               FROM wh.analytics.support_tickets t JOIN wh.analytics.accounts a USING (account_id)
               GROUP BY ALL"""
        ).fetchall()
    )
    assert urgent_share["At-Risk"] > urgent_share["Healthy"] + 0.2
    assert (
        _one(
            con,
            "SELECT count(*) FROM wh.analytics.support_tickets "
            "WHERE (csat IS NOT NULL AND status <> 'closed') OR csat NOT BETWEEN 1 AND 5",
        )
        == 0
    )


def test_crm_companies_are_the_warehouse_accounts(con: duckdb.DuckDBPyConnection) -> None:
    differences = _one(
        con,
        """SELECT count(*) FROM (
             (SELECT account_id, account_name FROM wh.analytics.accounts
              EXCEPT SELECT hs_object_id, name FROM crm.companies)
             UNION ALL
             (SELECT hs_object_id, name FROM crm.companies
              EXCEPT SELECT account_id, account_name FROM wh.analytics.accounts))""",
    )
    assert differences == 0
    assert _one(con, "SELECT count(*) FROM crm.companies") == 10_000


def test_every_deal_has_one_existing_company(con: duckdb.DuckDBPyConnection) -> None:
    per_deal = con.sql(
        """SELECT d.hs_object_id, count(dc.company_id) AS companies,
                  count(a.account_id) AS accounts
           FROM crm.deals d
           LEFT JOIN crm.deal_company dc ON dc.deal_id = d.hs_object_id
           LEFT JOIN wh.analytics.accounts a ON a.account_id = dc.company_id
           GROUP BY ALL HAVING companies <> 1 OR accounts <> 1"""
    ).fetchall()
    assert per_deal == []
    # The deal name is "<company> - <kind> 2026", matching its dealtype.
    wrong_names = _one(
        con,
        """SELECT count(*) FROM crm.deals d
           JOIN crm.deal_company dc ON dc.deal_id = d.hs_object_id
           JOIN crm.companies c ON c.hs_object_id = dc.company_id
           WHERE d.dealname NOT IN (c.name || ' - New business 2026',
                                    c.name || ' - Renewal 2026', c.name || ' - Expansion 2026')
              OR (d.dealname LIKE '% - New business 2026') <> (d.dealtype = 'newbusiness')""",
    )
    assert wrong_names == 0
    assert (
        _one(
            con,
            "SELECT count(*) FROM crm.deals WHERE hs_is_closed <> "
            "(dealstage IN ('closedwon', 'closedlost')) OR pipeline <> 'default'",
        )
        == 0
    )
    open_share = float(_one(con, "SELECT avg((NOT hs_is_closed)::INT) FROM crm.deals"))
    assert 0.25 <= open_share <= 0.5
    assert (
        _one(
            con,
            "SELECT count(*) FROM crm.deals "
            "WHERE createdate > hs_lastmodifieddate OR createdate >= TIMESTAMP '2026-11-01'",
        )
        == 0
    )


def test_crm_has_the_situations_a_bi_demo_needs(con: duckdb.DuckDBPyConnection) -> None:
    presales = dict(
        con.sql(
            """SELECT a.health_status, count(*) FROM crm.deals d
               JOIN crm.deal_company dc ON dc.deal_id = d.hs_object_id
               JOIN wh.analytics.accounts a ON a.account_id = dc.company_id
               WHERE d.dealstage IN ('qualifiedtobuy', 'presentationscheduled',
                                     'decisionmakerboughtin')
               GROUP BY ALL"""
        ).fetchall()
    )
    assert presales["At-Risk"] > 100 and presales["Healthy"] > 100
    renewing_soon = """a.renewal_date >= DATE '2026-11-01'
                       AND a.renewal_date < DATE '2026-11-01' + INTERVAL 6 MONTH"""
    at_risk_renewals = _one(
        con,
        f"""SELECT count(*) FROM crm.deals d
            JOIN crm.deal_company dc ON dc.deal_id = d.hs_object_id
            JOIN wh.analytics.accounts a ON a.account_id = dc.company_id
            WHERE d.dealtype = 'existingbusiness' AND a.health_status = 'At-Risk'
              AND {renewing_soon}""",
    )
    assert at_risk_renewals > 100
    # Renewal deals cluster on the accounts renewing in the next six months.
    renewal_share = float(
        _one(
            con,
            f"""SELECT avg(({renewing_soon})::INT) FROM crm.deals d
                JOIN crm.deal_company dc ON dc.deal_id = d.hs_object_id
                JOIN wh.analytics.accounts a ON a.account_id = dc.company_id
                WHERE d.dealname LIKE '% - Renewal 2026'""",
        )
    )
    account_share = float(
        _one(con, f"SELECT avg(({renewing_soon})::INT) FROM wh.analytics.accounts a")
    )
    assert renewal_share > account_share + 0.25
    assert _one(con, "SELECT count(DISTINCT email) = count(*) FROM crm.contacts") is True
    stages = {
        row[0] for row in con.sql("SELECT DISTINCT lifecyclestage FROM crm.contacts").fetchall()
    }
    assert stages == {
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    }
    orphans = _one(
        con,
        "SELECT count(*) FROM crm.contact_company cc "
        "LEFT JOIN crm.companies c ON c.hs_object_id = cc.company_id WHERE c.hs_object_id IS NULL",
    )
    assert orphans == 0


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "folder" / "crm.duckdb"
    write_demo_crm(target, scale=0.02)
    write_demo_crm(target, scale=0.03)  # replaces the existing file
    assert sorted(p.name for p in target.parent.iterdir()) == ["crm.duckdb"]
    assert _counts(target, ["companies"]) == {"companies": 300}


def test_ensure_creates_once(tmp_path: Path) -> None:
    warehouse = tmp_path / "demo" / "warehouse.duckdb"
    assert ensure_demo_warehouse(warehouse, scale=0.02) is True
    before = _digest(warehouse, WAREHOUSE_TABLES)
    mtime = warehouse.stat().st_mtime_ns
    assert ensure_demo_warehouse(warehouse, scale=0.05) is False
    assert warehouse.stat().st_mtime_ns == mtime
    assert _digest(warehouse, WAREHOUSE_TABLES) == before


def test_ensure_is_safe_when_called_at_once(tmp_path: Path) -> None:
    # flock locks belong to open file descriptions, so threads contend like processes do.
    crm = tmp_path / "crm.duckdb"
    barrier = threading.Barrier(4)
    results: list[bool] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(ensure_demo_crm(crm, scale=0.02))
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [False, False, False, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.duckdb", "crm.duckdb.lock"]
    assert _counts(crm, ["companies"]) == {"companies": 200}


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), float("inf")])
def test_invalid_scale_is_rejected(tmp_path: Path, scale: float) -> None:
    with pytest.raises(PlaybookValidationError, match="scale"):
        write_demo_warehouse(tmp_path / "wh.duckdb", scale=scale)
    assert list(tmp_path.iterdir()) == []


def test_an_account_has_at_most_one_open_renewal(con: duckdb.DuckDBPyConnection) -> None:
    most = _one(
        con,
        """SELECT max(n) FROM (
             SELECT dc.company_id, count(*) AS n FROM crm.deals d
             JOIN crm.deal_company dc ON dc.deal_id = d.hs_object_id
             WHERE d.dealtype = 'existingbusiness' AND d.dealname LIKE '% - Renewal 2026'
               AND NOT d.hs_is_closed
             GROUP BY dc.company_id)""",
    )
    assert most == 1
