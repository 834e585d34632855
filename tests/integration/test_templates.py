"""Each built-in template end to end through the command line, checked against the same
question answered independently in SQL over the same demo files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import dagster as dg
import duckdb
import pytest

from playbook_assets.app.cli import main
from playbook_assets.app.runner import execute_playbook
from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config_file
from playbook_assets.dagster_adapter.factory import build_definitions
from playbook_defs import TEMPLATES_DIR
from tests.conftest import DemoFiles, Project

EXPECTED_OUTPUTS = {
    "presales_analysis": ["opportunities_with_health", "summary"],
    "at_risk_renewals": ["at_risk", "renewals", "summary", "pipeline"],
    "expansion_candidates": ["expansion_list", "segments", "summary"],
    "churn_risk": ["declining_accounts", "companies", "summary"],
    "health_dashboard": ["status_breakdown", "segment_breakdown", "accounts_to_review", "summary"],
    "segment_analysis": ["accounts", "pipeline", "summary", "pipeline_summary"],
}


@pytest.fixture
def sql(demo_files: DemoFiles) -> Iterator[duckdb.DuckDBPyConnection]:
    """Both demo files attached read-only: ``wh`` (warehouse) and ``crm``."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{demo_files.warehouse}' AS wh (READ_ONLY)")
    con.execute(f"ATTACH '{demo_files.crm}' AS crm (READ_ONLY)")
    yield con
    con.close()


def run(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["run", *args, "--config", str(project.config_path), "--json"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code == 0, report
    assert report["status"] == "success"
    assert all(step["status"] == "success" for step in report["steps"])
    return report


def money(value: Any) -> str:
    """The money filter, written out independently: $3.2M, $156K, $950."""
    amount = float(value)
    if amount >= 1e9:
        return f"${amount / 1e9:.1f}B"
    if amount >= 1e6:
        return f"${amount / 1e6:.1f}M"
    if amount >= 1e3:
        return f"${amount / 1e3:.0f}K"
    return f"${amount:,.0f}"


def close(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Decimal):
        expected = float(expected)
    return actual == pytest.approx(expected, rel=1e-9)


def test_presales_analysis(
    project: Project, capsys: pytest.CaptureFixture[str], sql: duckdb.DuckDBPyConnection
) -> None:
    report = run(project, capsys, "presales_analysis")
    expected = sql.execute(
        """
        SELECT COUNT(*), SUM(d.amount), AVG(a.health_score),
               COUNT(*) FILTER (WHERE a.health_status = 'At-Risk'),
               SUM(d.amount) FILTER (WHERE a.health_status = 'At-Risk')
        FROM crm.deals d
        LEFT JOIN crm.deal_company dc ON dc.deal_id = d.hs_object_id
        LEFT JOIN wh.analytics.accounts a ON a.account_id = dc.company_id
        WHERE d.dealstage IN ('qualifiedtobuy', 'presentationscheduled', 'decisionmakerboughtin')
        """
    ).fetchone()
    assert expected is not None and expected[0] > 100 and expected[3] > 0
    summary = report["outputs"]["summary"]["values"]
    assert summary["open_deals"] == expected[0]
    assert close(summary["total_pipeline"], expected[1])
    assert close(summary["avg_health_score"], expected[2])
    assert summary["at_risk_deals"] == expected[3]
    assert close(summary["at_risk_pipeline"], expected[4])
    steps = {step["step_id"]: step for step in report["steps"]}
    assert steps["open_deals"]["row_count"] == expected[0]
    assert report["outputs"]["opportunities_with_health"]["row_count"] == expected[0]
    assert report["metadata"]["parameters_used"] == {
        "stages": ["qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin"],
        "accounts_table": "analytics.accounts",
    }
    largest = sql.execute(
        """
        SELECT dealname, amount FROM crm.deals
        WHERE dealstage IN ('qualifiedtobuy', 'presentationscheduled', 'decisionmakerboughtin')
        ORDER BY amount DESC NULLS LAST, hs_object_id LIMIT 1
        """
    ).fetchone()
    assert largest is not None
    assert report["insights"] == [
        f"{expected[0]:,} open deals in presales stages worth {money(expected[1])}",
        f"{expected[3]:,} deals at risk worth {money(expected[4])}",
        f"Average health of the accounts behind them: {float(expected[2]):.1f}",
        f"Largest open deal: {largest[0]} ({money(largest[1])})",
    ]


def test_presales_analysis_with_other_stages(
    project: Project, capsys: pytest.CaptureFixture[str], sql: duckdb.DuckDBPyConnection
) -> None:
    report = run(project, capsys, "presales_analysis", "stages=contractsent")
    expected = sql.execute(
        "SELECT COUNT(*), SUM(amount) FROM crm.deals WHERE dealstage = 'contractsent'"
    ).fetchone()
    assert expected is not None
    assert report["outputs"]["summary"]["values"]["open_deals"] == expected[0]
    assert close(report["outputs"]["summary"]["values"]["total_pipeline"], expected[1])


def test_at_risk_renewals(
    project: Project, capsys: pytest.CaptureFixture[str], sql: duckdb.DuckDBPyConnection
) -> None:
    report = run(project, capsys, "at_risk_renewals", "min_arr=20000")
    at_risk = sql.execute(
        """
        SELECT account_name, arr FROM wh.analytics.accounts
        WHERE health_status = 'At-Risk' AND arr >= 20000
          AND renewal_date BETWEEN DATE '2026-11-01' AND DATE '2027-04-30'
        ORDER BY arr DESC, account_id
        """
    ).fetchall()
    distribution = sql.execute(
        "SELECT COUNT(DISTINCT health_status) FROM wh.analytics.accounts"
    ).fetchone()
    renewals = sql.execute(
        """
        SELECT COUNT(*), SUM(amount) FROM crm.deals
        WHERE dealtype = 'existingbusiness' AND NOT hs_is_closed
          AND closedate BETWEEN DATE '2026-11-01' AND DATE '2027-04-30'
        """
    ).fetchone()
    assert renewals is not None and distribution is not None
    assert len(at_risk) > 0
    steps = {step["step_id"]: step for step in report["steps"]}
    assert steps["at_risk_accounts"]["row_count"] == len(at_risk)
    assert steps["health_distribution"]["row_count"] == distribution[0] == 4
    assert report["outputs"]["pipeline"]["values"]["renewal_deals"] == renewals[0]
    assert close(report["outputs"]["pipeline"]["values"]["renewal_amount"], renewals[1])
    assert report["metadata"]["parameters_used"]["min_arr"] == 20000
    assert report["metadata"]["parameters_used"]["renewal_from"] == "2026-11-01"
    at_risk_arr = sum(float(row[1]) for row in at_risk)
    assert report["insights"] == [
        f"{len(at_risk):,} accounts at-risk with combined ARR of {money(at_risk_arr)}",
        f"{renewals[0]:,} renewals in pipeline totaling {money(renewals[1])}",
        f"Top at-risk account: {at_risk[0][0]} ({money(at_risk[0][1])} ARR)",
    ]


def test_expansion_candidates(
    project: Project, capsys: pytest.CaptureFixture[str], sql: duckdb.DuckDBPyConnection
) -> None:
    report = run(project, capsys, "expansion_candidates", "limit=50")
    expected = sql.execute(
        """
        SELECT COUNT(*), SUM(arr) FROM (
          SELECT arr FROM wh.analytics.accounts
          WHERE seats_purchased > 0 AND seats_used * 1.0 / seats_purchased >= 0.9
            AND health_score >= 60
            AND account_id IN (SELECT account_id FROM wh.analytics.product_usage)
          ORDER BY ROUND(seats_used * 1.0 / seats_purchased, 3) DESC, arr DESC, account_id
          LIMIT 50)
        """
    ).fetchone()
    assert expected is not None and expected[0] == 50
    summary = report["outputs"]["summary"]["values"]
    assert summary["candidates"] == 50
    assert close(summary["candidate_arr"], expected[1])
    assert report["outputs"]["segments"]["row_count"] <= 3


def test_churn_risk(
    project: Project, capsys: pytest.CaptureFixture[str], sql: duckdb.DuckDBPyConnection
) -> None:
    report = run(project, capsys, "churn_risk")
    expected = sql.execute(
        """
        SELECT COUNT(*), SUM(a.arr)
        FROM wh.analytics.accounts a
        JOIN wh.analytics.product_usage r ON r.account_id = a.account_id
             AND r.month = DATE '2026-10-01'
        JOIN wh.analytics.product_usage e ON e.account_id = a.account_id
             AND e.month = DATE '2026-07-01'
        WHERE a.health_status <> 'Churned' AND e.active_users > 0
          AND (r.active_users - e.active_users) * 1.0 / e.active_users <= -0.2
        """
    ).fetchone()
    assert expected is not None and expected[0] > 0
    summary = report["outputs"]["summary"]["values"]
    assert summary["declining_accounts"] == expected[0]
    assert close(summary["arr_at_risk"], expected[1])
    # Every declining account is a CRM company (the demo CRM's companies are the accounts).
    assert report["outputs"]["companies"]["row_count"] == expected[0]


def test_health_dashboard(
    project: Project, capsys: pytest.CaptureFixture[str], sql: duckdb.DuckDBPyConnection
) -> None:
    report = run(project, capsys, "health_dashboard")
    totals = sql.execute(
        """
        SELECT COUNT(*), SUM(arr), AVG(health_score),
               SUM(arr) FILTER (WHERE health_status = 'At-Risk'),
               COUNT(*) FILTER (WHERE arr >= 50000
                                AND health_status IN ('At-Risk', 'Churned'))
        FROM wh.analytics.accounts
        """
    ).fetchone()
    assert totals is not None
    summary = report["outputs"]["summary"]["values"]
    assert summary["total_accounts"] == totals[0]
    assert close(summary["total_arr"], totals[1])
    assert close(summary["avg_health_score"], totals[2])
    assert close(summary["at_risk_arr"], totals[3])
    assert report["outputs"]["accounts_to_review"]["row_count"] == totals[4] > 0
    assert report["insights"] == [
        f"{totals[0]:,} accounts with {money(totals[1])} ARR, "
        f"average health score {float(totals[2]):.1f}",
        f"{money(totals[3])} ARR is at risk",
        f"{totals[4]:,} high-value accounts are At-Risk or Churned",
    ]
    assert report["outputs"]["status_breakdown"]["row_count"] == 4
    assert report["outputs"]["segment_breakdown"]["row_count"] == 3


def test_segment_analysis(
    project: Project, capsys: pytest.CaptureFixture[str], sql: duckdb.DuckDBPyConnection
) -> None:
    report = run(
        project,
        capsys,
        "segment_analysis",
        "segment=mid-market",
        "min_arr=50000",
        "health_threshold=70",
    )
    accounts = sql.execute(
        """
        SELECT COUNT(*), SUM(arr), COUNT(*) FILTER (WHERE health_score < 70)
        FROM wh.analytics.accounts WHERE segment = 'mid-market' AND arr >= 50000
        """
    ).fetchone()
    pipeline = sql.execute(
        """
        SELECT COUNT(d.hs_object_id), SUM(d.amount)
        FROM wh.analytics.accounts a
        LEFT JOIN (crm.deal_company dc JOIN crm.deals d
                   ON d.hs_object_id = dc.deal_id AND NOT d.hs_is_closed)
          ON dc.company_id = a.account_id
        WHERE a.segment = 'mid-market' AND a.arr >= 50000
        """
    ).fetchone()
    assert accounts is not None and pipeline is not None and accounts[0] > 0
    summary = report["outputs"]["summary"]["values"]
    assert summary["accounts"] == accounts[0]
    assert close(summary["segment_arr"], accounts[1])
    assert summary["accounts_needing_attention"] == accounts[2]
    assert report["outputs"]["pipeline_summary"]["values"]["open_deals"] == pipeline[0]
    assert close(report["outputs"]["pipeline_summary"]["values"]["open_pipeline"], pipeline[1])


@pytest.mark.parametrize("playbook_id", sorted(EXPECTED_OUTPUTS))
def test_template_job_materializes_every_asset(project: Project, playbook_id: str) -> None:
    """Each template's job, run as Dagster runs it, materializes every step and output."""
    config = load_config_file(project.config_path)
    catalog = load_catalog(config, [TEMPLATES_DIR])
    defs = build_definitions(catalog, config, only=[playbook_id])
    instance = dg.DagsterInstance.ephemeral()
    result = execute_playbook(defs, playbook_id, instance=instance)
    assert result.success
    materialized = {
        event.asset_key.path[1]
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    spec = catalog.get(playbook_id).spec
    assert materialized == {*spec.step_ids, *EXPECTED_OUTPUTS[playbook_id], "run_report"}
    for output in spec.outputs:
        table = result.asset_value(dg.AssetKey([playbook_id, output.name])).table
        assert table.num_rows > 0, output.name
