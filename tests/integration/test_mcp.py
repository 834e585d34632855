"""The MCP server driven in process by the SDK's real client: tools per mode, typed schemas,
the dry run, errors (the command line's messages), runs through Dagster with progress and
cancellation, run records, paged rows and secrets. Expected values come from plain SQL over
the demo files, from the playbook YAML, or from the command line's own output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import dagster as dg
import duckdb
import pytest
import yaml
from mcp import Client

from playbook_assets.app.cli import main
from playbook_assets.app.mcp.server import ServerOptions
from playbook_assets.core.redaction import remember_secret
from playbook_defs import TEMPLATES_DIR
from tests.conftest import DemoFiles, Project
from tests.mcp_client import call, server_for, tool_error, with_client

READING = [
    "describe_playbook",
    "get_run",
    "get_step_rows",
    "list_playbooks",
    "list_runs",
    "validate_playbook",
    "verify_artifacts",
]
TEMPLATE_IDS = [
    "at_risk_renewals",
    "churn_risk",
    "expansion_candidates",
    "health_dashboard",
    "presales_analysis",
    "segment_analysis",
]


@pytest.fixture
def sql(demo_files: DemoFiles) -> Iterator[duckdb.DuckDBPyConnection]:
    """The demo warehouse, read-only, as the default catalog (``analytics.accounts``)."""
    con = duckdb.connect(str(demo_files.warehouse), read_only=True)
    yield con
    con.close()


def tool_names(project: Project, options: ServerOptions) -> list[str]:
    async def body(client: Client) -> list[str]:
        return sorted(tool.name for tool in (await client.list_tools()).tools)

    return with_client(server_for(project.config_path, options), body)


def test_tools_of_each_mode(project: Project) -> None:
    playbook_tools = [f"run_{playbook_id}" for playbook_id in TEMPLATE_IDS]
    assert tool_names(project, ServerOptions()) == sorted(
        [*READING, "run_playbook", *playbook_tools]
    )
    assert tool_names(project, ServerOptions(playbook_tools=False)) == sorted(
        [*READING, "run_playbook"]
    )
    assert tool_names(project, ServerOptions(read_only=True)) == READING


def test_playbook_tool_schema_is_the_playbooks_typed_parameters(project: Project) -> None:
    declared = yaml.safe_load((TEMPLATES_DIR / "segment_analysis.yaml").read_text())
    parameters = {p["name"]: p for p in declared["playbook"]["parameters"]}

    async def body(client: Client) -> dict[str, Any]:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        run_tool = tools["run_segment_analysis"]
        assert run_tool.output_schema is not None
        assert {"steps", "summary", "insights", "run_id"} <= set(
            run_tool.output_schema["properties"]
        )
        return run_tool.input_schema

    schema = with_client(server_for(project.config_path), body)
    properties = schema["properties"]
    json_types = {"string": "string", "number": "number", "integer": "integer"}
    for name, parameter in parameters.items():
        assert properties[name]["type"] == json_types[parameter["type"]], name
        assert properties[name]["default"] == parameter["default"], name
        assert properties[name]["description"] == parameter["description"], name
    assert set(properties) == {*parameters, "save_artifacts"}
    assert schema.get("required", []) == []


def test_list_playbooks_gives_parameters_with_types_and_defaults(project: Project) -> None:
    listing = with_client(server_for(project.config_path), lambda c: call(c, "list_playbooks"))
    assert [p["id"] for p in listing["playbooks"]] == TEMPLATE_IDS
    declared = yaml.safe_load((TEMPLATES_DIR / "expansion_candidates.yaml").read_text())
    expansion = next(p for p in listing["playbooks"] if p["id"] == "expansion_candidates")
    assert [(p["name"], p["type"], p["default"]) for p in expansion["parameters"]] == [
        (p["name"], p["type"], p["default"]) for p in declared["playbook"]["parameters"]
    ]
    assert expansion["data_sources"] == ["data_warehouse"]
    assert listing["invalid"] == []


def test_describe_renders_the_sql_a_run_sends_without_running(
    project: Project, sql: duckdb.DuckDBPyConnection
) -> None:
    parameters = {"min_arr": 25000, "renewal_to": "2027-01-31"}
    described = with_client(
        server_for(project.config_path),
        lambda c: call(
            c, "describe_playbook", {"playbook_id": "at_risk_renewals", "parameters": parameters}
        ),
    )
    steps = {step["step_id"]: step for step in described["steps"]}
    assert described["parameters_used"] == {
        "min_arr": 25000,
        "renewal_from": "2026-11-01",
        "renewal_to": "2027-01-31",
    }
    assert described["parameters_schema"]["properties"]["renewal_to"] == {
        "type": "string",
        "format": "date",
        "default": "2027-04-30",
        "description": "Last renewal date in scope.",
    }
    rendered = steps["at_risk_accounts"]["request"]
    # The rendered statement, run by DuckDB directly, answers the question asked.
    got = sql.execute(rendered).fetchall()
    expected = sql.execute(
        """
        SELECT account_id FROM analytics.accounts
        WHERE health_status = 'At-Risk' AND arr >= 25000
          AND renewal_date BETWEEN DATE '2026-11-01' AND DATE '2027-01-31'
        ORDER BY arr DESC, account_id
        """
    ).fetchall()
    assert len(expected) > 0
    assert [row[0] for row in got] == [row[0] for row in expected]
    search = steps["renewal_pipeline"]["request"]
    assert {"propertyName": "closedate", "operator": "BETWEEN"}.items() <= search["filterGroups"][
        0
    ]["filters"][2].items()
    assert steps["renewal_pipeline"]["connection"] == "demo"
    # Nothing ran: no run record, no Dagster run.
    assert not project.artifacts_dir.exists() or not list(project.artifacts_dir.glob("run_*"))
    assert dg.DagsterInstance.from_config(str(project.dagster_home)).get_runs() == []


def test_describe_says_what_a_step_waits_for(project: Project) -> None:
    described = with_client(
        server_for(project.config_path),
        lambda c: call(c, "describe_playbook", {"playbook_id": "presales_analysis"}),
    )
    steps = {step["step_id"]: step for step in described["steps"]}
    assert steps["open_deals"]["request"]["filterGroups"][0]["filters"][0]["values"] == [
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
    ]
    assert steps["account_health"]["request"] is None
    assert steps["account_health"]["waits_for"] == ["${steps.open_deals.company_id}"]
    assert steps["combine_results"]["depends_on"] == ["open_deals", "account_health"]


def cli_error(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main([*args, "--config", str(project.config_path)]) == 2
    return capsys.readouterr().err.removeprefix("error: ").strip()


def test_errors_are_the_command_lines(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    unknown = cli_error(project, capsys, "run", "presales_analysys")
    bad_value = cli_error(project, capsys, "run", "segment_analysis", "min_arr=lots")
    assert "did you mean 'presales_analysis'?" in unknown and "valid ids: " in unknown
    assert bad_value == (
        "parameter 'min_arr' expects a number, got 'lots'; for example min_arr=50000"
    )

    async def body(client: Client) -> list[str]:
        return [
            await tool_error(client, "run_playbook", {"playbook_id": "presales_analysys"}),
            await tool_error(client, "describe_playbook", {"playbook_id": "presales_analysys"}),
            await tool_error(
                client,
                "run_playbook",
                {"playbook_id": "segment_analysis", "parameters": {"min_arr": "lots"}},
            ),
            await tool_error(client, "run_segment_analysis", {"min_arr": "lots"}),
            await tool_error(
                client,
                "run_playbook",
                {"playbook_id": "segment_analysis", "parameters": {"min_ar": 5}},
            ),
        ]

    errors = with_client(server_for(project.config_path), body)
    assert errors[0].endswith(unknown) and errors[1].endswith(unknown)
    assert errors[2].endswith(bad_value) and errors[3].endswith(bad_value)
    assert (
        "playbook 'segment_analysis' has no parameter 'min_ar'; did you mean 'min_arr'?"
        in (errors[4])
    )
    assert dg.DagsterInstance.from_config(str(project.dagster_home)).get_runs() == []


def test_run_reports_progress_per_step_and_is_a_dagster_run_with_records(
    project: Project, sql: duckdb.DuckDBPyConnection
) -> None:
    notes: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append((progress, total, message))

    async def body(client: Client) -> dict[str, Any]:
        result = await client.call_tool(
            "run_expansion_candidates", {"limit": 50}, progress_callback=on_progress
        )
        assert not result.is_error, result.content
        report = result.structured_content
        assert report is not None
        run_id = report["run_id"]
        return {
            "report": report,
            "stored": await call(client, "get_run", {"run_id": run_id}),
            "runs": await call(client, "list_runs", {"playbook_id": "expansion_candidates"}),
            "verified": await call(client, "verify_artifacts", {"run_id": run_id}),
            "page": await call(
                client,
                "get_step_rows",
                {"run_id": run_id, "step_or_output": "candidates", "limit": 20, "offset": 40},
            ),
        }

    answers = with_client(server_for(project.config_path), body)
    report = answers["report"]
    expected = sql.execute(
        """
        SELECT account_id, arr FROM analytics.accounts
        WHERE seats_purchased > 0 AND seats_used * 1.0 / seats_purchased >= 0.9
          AND health_score >= 60
          AND account_id IN (SELECT account_id FROM analytics.product_usage)
        ORDER BY ROUND(seats_used * 1.0 / seats_purchased, 3) DESC, arr DESC, account_id
        LIMIT 50
        """
    ).fetchall()
    segments = len(
        {
            row[0]
            for row in sql.execute(
                f"SELECT segment FROM analytics.accounts WHERE account_id IN "
                f"({', '.join(repr(row[0]) for row in expected)})"
            ).fetchall()
        }
    )
    assert report["status"] == "success"
    assert report["outputs"]["summary"]["values"]["candidates"] == len(expected) == 50
    assert report["outputs"]["summary"]["values"]["candidate_arr"] == pytest.approx(
        float(sum(row[1] for row in expected)), rel=1e-9
    )
    assert notes == [
        (1, 2, "step candidates: success, 50 rows"),
        (2, 2, f"step by_segment: success, {segments} rows"),
    ]
    # The run is an ordinary Dagster run on the project's instance, launched by MCP.
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    run = instance.get_run_by_id(report["dagster_run_id"])
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["playbook/launched_by"] == "mcp"
    assert report["artifact_path"] == f"artifacts/{report['run_id']}.json"
    assert answers["stored"] == json.loads(
        (project.artifacts_dir / f"{report['run_id']}.json").read_text()
    )
    assert answers["stored"]["outputs"] == report["outputs"]
    assert [r["run_id"] for r in answers["runs"]["runs"]] == [report["run_id"]]
    assert answers["verified"] == {
        "run_id": report["run_id"],
        "ok": True,
        "checked_files": answers["verified"]["checked_files"],
        "problems": [],
    }
    page = answers["page"]
    assert page["total_rows"] == 50 and page["offset"] == 40 and page["next_offset"] is None
    assert [row["account_id"] for row in page["rows"]] == [row[0] for row in expected[40:50]]
    assert "seat_utilization" in {column["name"] for column in page["columns"]}


def test_a_run_without_artifacts_stores_nothing(project: Project) -> None:
    async def body(client: Client) -> list[dict[str, Any]]:
        return [
            await call(client, "run_health_dashboard", {"save_artifacts": False}),
            await call(client, "run_health_dashboard", {"save_artifacts": False}),
        ]

    first, second = with_client(server_for(project.config_path), body)
    assert first["status"] == second["status"] == "success"
    assert first["artifact_path"] is None and first["run_id"] != second["run_id"]
    assert first["outputs"]["summary"]["values"] == second["outputs"]["summary"]["values"]
    stored = list(project.artifacts_dir.rglob("*")) if project.artifacts_dir.exists() else []
    assert [path for path in stored if path.is_file()] == []
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    assert {run.run_id for run in instance.get_runs()} == {
        first["dagster_run_id"],
        second["dagster_run_id"],
    }


SLOW_PLAYBOOK = """
playbook:
  id: slow_chain
  name: Slow chain
  data_sources:
    - type: data_warehouse
  steps:
    - id: first
      type: query
      config:
        template: "SELECT 1 AS x"
    - id: slow
      type: query
      depends_on: [first]
      config:
        template: "SELECT sum(i * i % 7) AS s FROM range(400000000) t(i)"
    - id: last
      type: query
      depends_on: [slow]
      config:
        template: "SELECT 2 AS y"
"""


def test_cancelling_a_run_stops_it_before_its_next_step(project: Project) -> None:
    project.add_playbook("slow_chain.yaml", SLOW_PLAYBOOK)
    seen: list[str | None] = []

    async def body(client: Client) -> dict[str, Any]:
        with anyio.CancelScope() as scope:

            async def on_progress(
                progress: float, total: float | None, message: str | None
            ) -> None:
                seen.append(message)
                scope.cancel()  # as soon as the first step is done; `slow` is running

            await client.call_tool("run_slow_chain", {}, progress_callback=on_progress)
        assert scope.cancelled_caught
        with anyio.fail_after(120):
            while not (runs := await call(client, "list_runs", {})).get("runs"):
                await anyio.sleep(0.2)
        return await call(client, "get_run", {"run_id": runs["runs"][0]["run_id"]})

    report = with_client(server_for(project.config_path), body)
    assert seen == ["step first: success, 1 rows"]
    steps = {step["step_id"]: step for step in report["steps"]}
    assert steps["first"]["status"] == steps["slow"]["status"] == "success"
    assert steps["last"]["status"] == "skipped"
    assert steps["last"]["reason"] == "the run was cancelled"
    assert report["status"] == "failed"


def test_get_step_rows_refuses_a_changed_file_and_unknown_names(project: Project) -> None:
    async def body(client: Client) -> list[str]:
        report = await call(client, "run_expansion_candidates", {"limit": 5})
        run_id = report["run_id"]
        manifest = json.loads(
            (project.artifacts_dir / f"{run_id}.manifest.json").read_text(encoding="utf-8")
        )
        path = Path(
            next(a["path"] for a in manifest["artifacts"] if a["asset"].endswith("/by_segment"))
        )
        unknown = await tool_error(
            client, "get_step_rows", {"run_id": run_id, "step_or_output": "by_segmnt"}
        )
        too_many = await tool_error(
            client,
            "get_step_rows",
            {"run_id": run_id, "step_or_output": "candidates", "limit": 5000},
        )
        path.write_bytes(path.read_bytes()[:-1] + b"\0")
        changed = await tool_error(
            client, "get_step_rows", {"run_id": run_id, "step_or_output": "by_segment"}
        )
        return [unknown, too_many, changed]

    unknown, too_many, changed = with_client(server_for(project.config_path), body)
    assert "stored no result named 'by_segmnt'; did you mean 'by_segment'?" in unknown
    assert "limit" in too_many and "1000" in too_many
    assert "does not match the sha256 recorded" in changed and "is not used" in changed


def test_validate_playbook_names_the_line(project: Project) -> None:
    text = "playbook:\n  id: x\n  name: X\n  stepz: []\n"
    result = with_client(
        server_for(project.config_path), lambda c: call(c, "validate_playbook", {"yaml_text": text})
    )
    assert result == {
        "valid": False,
        "playbook_id": None,
        "errors": [
            {
                "message": "unknown key 'stepz'",
                "line": 4,
                "step": None,
                "field": None,
                "hint": "did you mean 'steps'?",
                "text": "yaml_text:4: unknown key 'stepz'; did you mean 'steps'?",
            }
        ],
    }
    good = (TEMPLATES_DIR / "churn_risk.yaml").read_text()
    result = with_client(
        server_for(project.config_path), lambda c: call(c, "validate_playbook", {"yaml_text": good})
    )
    assert result == {"valid": True, "playbook_id": "churn_risk", "errors": []}


def test_no_tool_answer_holds_a_secret(project: Project) -> None:
    secret = "tok-9f8e7d6c5b4a"
    remember_secret(secret)  # as a run does when it reads a connection's ${VAR}
    text = f"playbook:\n  id: x\n  name: X\n  {secret}: 1\n"

    async def body(client: Client) -> list[str]:
        validated = await call(client, "validate_playbook", {"yaml_text": text})
        error = await tool_error(client, "describe_playbook", {"playbook_id": secret})
        return [json.dumps(validated), error]

    validated, error = with_client(server_for(project.config_path), body)
    assert secret not in validated and "unknown key '***'" in validated
    assert secret not in error and "unknown playbook '***'" in error
