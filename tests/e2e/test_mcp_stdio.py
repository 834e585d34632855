"""``playbook mcp`` as an agent's client starts it: a fresh process spoken to over stdio by
the SDK's client, answering the four "Example Usage" requests of the product specification.
Every figure is checked against the same question asked in plain SQL of the demo files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import dagster as dg
import duckdb
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import DemoFiles, Project
from tests.mcp_client import call

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sql(demo_files: DemoFiles) -> Iterator[duckdb.DuckDBPyConnection]:
    """Both demo files attached read-only: ``wh`` (warehouse) and ``crm``."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{demo_files.warehouse}' AS wh (READ_ONLY)")
    con.execute(f"ATTACH '{demo_files.crm}' AS crm (READ_ONLY)")
    yield con
    con.close()


def close(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Decimal):
        expected = float(expected)
    return actual == pytest.approx(expected, rel=1e-9)


def one(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    row = con.execute(query).fetchone()
    assert row is not None
    return row


def test_the_specifications_example_requests_over_stdio(
    project: Project, sql: duckdb.DuckDBPyConnection
) -> None:
    command = shutil.which("playbook", path=str(REPO / ".venv" / "bin"))
    assert command is not None
    server = StdioServerParameters(
        command=command,
        args=["mcp", "--config", str(project.config_path)],
        env={**os.environ, "DAGSTER_HOME": str(project.dagster_home)},
        cwd=str(project.root),
    )
    notes: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(message)

    async def requests() -> dict[str, Any]:
        async with Client(server, read_timeout_seconds=300) as client:
            answers: dict[str, Any] = {}
            # "Execute playbook presales_analysis"
            result = await client.call_tool(
                "run_playbook", {"playbook_id": "presales_analysis"}, progress_callback=on_progress
            )
            assert not result.is_error, result.content
            answers["presales"] = result.structured_content
            # "Run the at_risk_renewals playbook, save artifacts"
            answers["renewals"] = await call(
                client, "run_playbook", {"playbook_id": "at_risk_renewals", "save_artifacts": True}
            )
            run_id = answers["renewals"]["run_id"]
            answers["renewals_verified"] = await call(
                client, "verify_artifacts", {"run_id": run_id}
            )
            answers["renewals_rows"] = await call(
                client,
                "get_step_rows",
                {"run_id": run_id, "step_or_output": "at_risk", "limit": 1000},
            )
            # "Execute expansion_candidates with limit=50"
            answers["expansion"] = await call(client, "run_expansion_candidates", {"limit": 50})
            # "Run playbook segment_analysis with parameters: segment enterprise, min_arr
            # 100000, health_threshold 60"
            answers["segment"] = await call(
                client,
                "run_playbook",
                {
                    "playbook_id": "segment_analysis",
                    "parameters": {
                        "segment": "enterprise",
                        "min_arr": 100000,
                        "health_threshold": 60,
                    },
                },
            )
            return answers

    answers = anyio.run(requests)
    for name in ("presales", "renewals", "expansion", "segment"):
        assert answers[name]["status"] == "success", answers[name]
    assert notes == [
        f"step {step['step_id']}: success, {step['row_count']:,} rows"
        for step in answers["presales"]["steps"]
    ]

    presales = one(
        sql,
        """
        SELECT COUNT(*), SUM(d.amount),
               COUNT(*) FILTER (WHERE a.health_status = 'At-Risk')
        FROM crm.deals d
        LEFT JOIN crm.deal_company dc ON dc.deal_id = d.hs_object_id
        LEFT JOIN wh.analytics.accounts a ON a.account_id = dc.company_id
        WHERE d.dealstage IN ('qualifiedtobuy', 'presentationscheduled', 'decisionmakerboughtin')
        """,
    )
    summary = answers["presales"]["outputs"]["summary"]["values"]
    assert presales[0] > 100 and summary["open_deals"] == presales[0]
    assert close(summary["total_pipeline"], presales[1])
    assert summary["at_risk_deals"] == presales[2]

    at_risk = sql.execute(
        """
        SELECT account_id, arr FROM wh.analytics.accounts
        WHERE health_status = 'At-Risk' AND arr >= 10000
          AND renewal_date BETWEEN DATE '2026-11-01' AND DATE '2027-04-30'
        ORDER BY arr DESC, account_id
        """
    ).fetchall()
    renewals = answers["renewals"]
    assert len(at_risk) > 0
    assert renewals["outputs"]["summary"]["values"]["at_risk_accounts"] == len(at_risk)
    assert close(
        renewals["outputs"]["summary"]["values"]["at_risk_arr"], sum(row[1] for row in at_risk)
    )
    # Saved: the record is on disk, verified, and its stored rows are the accounts.
    assert (project.root / renewals["artifact_path"]).is_file()
    assert answers["renewals_verified"]["ok"] and answers["renewals_verified"]["problems"] == []
    rows = answers["renewals_rows"]
    assert rows["total_rows"] == len(at_risk)
    assert [row["account_id"] for row in rows["rows"]] == [row[0] for row in at_risk[:1000]]

    expansion = one(
        sql,
        """
        SELECT COUNT(*), SUM(arr) FROM (
          SELECT arr FROM wh.analytics.accounts
          WHERE seats_purchased > 0 AND seats_used * 1.0 / seats_purchased >= 0.9
            AND health_score >= 60
            AND account_id IN (SELECT account_id FROM wh.analytics.product_usage)
          ORDER BY ROUND(seats_used * 1.0 / seats_purchased, 3) DESC, arr DESC, account_id
          LIMIT 50)
        """,
    )
    values = answers["expansion"]["outputs"]["summary"]["values"]
    assert values["candidates"] == expansion[0] == 50
    assert close(values["candidate_arr"], expansion[1])
    assert answers["expansion"]["metadata"]["parameters_used"]["limit"] == 50

    accounts = one(
        sql,
        """
        SELECT COUNT(*), SUM(arr), COUNT(*) FILTER (WHERE health_score < 60),
               SUM(arr) FILTER (WHERE health_score < 60)
        FROM wh.analytics.accounts WHERE segment = 'enterprise' AND arr >= 100000
        """,
    )
    pipeline = one(
        sql,
        """
        SELECT COUNT(d.hs_object_id), SUM(d.amount)
        FROM wh.analytics.accounts a
        LEFT JOIN (crm.deal_company dc JOIN crm.deals d
                   ON d.hs_object_id = dc.deal_id AND NOT d.hs_is_closed)
          ON dc.company_id = a.account_id
        WHERE a.segment = 'enterprise' AND a.arr >= 100000
        """,
    )
    segment = answers["segment"]["outputs"]
    assert accounts[0] > 0 and segment["summary"]["values"]["accounts"] == accounts[0]
    assert close(segment["summary"]["values"]["segment_arr"], accounts[1])
    assert segment["summary"]["values"]["accounts_needing_attention"] == accounts[2]
    assert close(segment["summary"]["values"]["arr_needing_attention"], accounts[3])
    assert segment["pipeline_summary"]["values"]["open_deals"] == pipeline[0]
    assert close(segment["pipeline_summary"]["values"]["open_pipeline"], pipeline[1])
    assert answers["segment"]["metadata"]["parameters_used"] == {
        "segment": "enterprise",
        "min_arr": 100000,
        "health_threshold": 60,
    }

    # Every run is on the project's Dagster instance, so the UI shows it.
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    assert {run.run_id for run in instance.get_runs()} == {
        answers[name]["dagster_run_id"] for name in ("presales", "renewals", "expansion", "segment")
    }
