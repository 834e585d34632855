"""The ``playbook`` command line: outputs, exit codes and error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from playbook_assets.app.cli import EXIT_INVALID, EXIT_OK, EXIT_STEP_FAILED, main
from tests.conftest import DemoFiles, Project

REPO = Path(__file__).resolve().parents[2]


def cli(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--config", str(project.config_path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def report_of(out: str) -> dict[str, Any]:
    return json.loads(out)


def test_list_json(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(project, capsys, "list", "--json")
    assert code == EXIT_OK
    data = json.loads(out)
    assert [p["id"] for p in data["playbooks"]] == [
        "at_risk_renewals",
        "churn_risk",
        "expansion_candidates",
        "health_dashboard",
        "presales_analysis",
        "segment_analysis",
    ]
    presales = next(p for p in data["playbooks"] if p["id"] == "presales_analysis")
    assert presales["steps"] == 3 and presales["origin"] == "builtin"
    assert data["invalid"] == []


def test_show(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(project, capsys, "show", "segment_analysis")
    assert code == EXIT_OK
    assert "segment_analysis: Segment Deep Dive (version 1.0)" in out
    assert "  segment (string) = 'enterprise' - Segment to analyse" in out
    assert "  segment_pipeline: Segment Accounts with Open Deals [transform/join]" in out


def test_validate_reports_broken_and_exits_2(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(project, capsys, "validate")
    assert code == EXIT_OK
    assert "ok presales_analysis (" in out
    project.add_playbook("bad.yaml", "playbook:\n  id: bad\n  name: Bad\n  stepz: []\n")
    code, out, err = cli(project, capsys, "validate")
    assert code == EXIT_INVALID
    assert "ok presales_analysis" in out
    assert "error: config/playbooks/bad.yaml:4: unknown key 'stepz'; did you mean 'steps'?" in err


def test_validate_strict_fails_on_replaced_builtin(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (REPO / "playbook_defs/templates/churn_risk.yaml").read_text()
    project.add_playbook("churn.yaml", text)
    code, _, err = cli(project, capsys, "validate")
    assert code == EXIT_OK
    assert "playbook 'churn_risk' replaces the built-in churn_risk.yaml" in err
    code, _, _ = cli(project, capsys, "validate", "--strict")
    assert code == EXIT_INVALID


def test_validate_given_paths(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    bad = project.root / "elsewhere.yaml"
    bad.write_text("playbook:\n  id: Bad-Id\n  name: x\n  steps: []\n")
    code, _, err = cli(project, capsys, "validate", str(bad))
    assert code == EXIT_INVALID
    assert "elsewhere.yaml:2: field 'id': String should match pattern" in err


def test_global_options_before_or_after_the_command(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook(
        "mine.yaml",
        "playbook:\n  id: mine\n  name: Mine\n  steps:\n"
        "    - {id: a, type: query, config: {template: 'SELECT 1 AS x'}}\n",
    )
    elsewhere = project.root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x").mkdir()
    os.chdir(elsewhere / "x")  # ./config/ is not the project's: only --config finds it
    for argv in (
        ["--config", str(project.config_path), "list", "--json"],
        ["list", "--config", str(project.config_path), "--json"],
    ):
        assert main(argv) == EXIT_OK
        ids = [p["id"] for p in json.loads(capsys.readouterr().out)["playbooks"]]
        assert "mine" in ids, argv


def test_params_file_keeps_the_text_of_string_parameters(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook(
        "texts.yaml",
        """
        playbook:
          id: texts
          name: Texts
          parameters:
            - {name: zip, type: string}
            - {name: at, type: string}
            - {name: answer, type: string}
            - {name: sci, type: string}
            - {name: big, type: integer}
          steps:
            - id: echo
              type: query
              config:
                template: "SELECT {{zip}} AS zip, {{at}} AS at, {{answer}} AS answer,
                  {{sci}} AS sci, {{big}} AS big"
        """,
    )
    params = project.root / "params.yaml"
    params.write_text(
        "zip: 00123\nat: 12:30\nanswer: NO\nsci: 1e3\nbig: 123456789012345678901234567890\n"
    )
    code, out, err = cli(project, capsys, "run", "texts", "--params-file", str(params))
    assert code == EXIT_OK, err
    report = report_of(out)
    assert report["metadata"]["parameters_used"] == {
        "zip": "00123",
        "at": "12:30",
        "answer": "NO",
        "sci": "1e3",
        "big": 123456789012345678901234567890,
    }
    assert '"big": 123456789012345678901234567890' in out
    stored = duckdb.connect().sql(
        f"FROM read_parquet('{project.artifacts_dir}/data/texts/echo/*.parquet')"
    )
    assert stored.fetchall() == [("00123", "12:30", "NO", "1e3", 123456789012345678901234567890)]
    params.write_text("zip: [1, 2]\n")
    code, out, err = cli(project, capsys, "run", "texts", "--params-file", str(params))
    assert code == EXIT_INVALID and out == ""
    assert "params.yaml:1: parameter 'zip' expects a string, got a list" in err


def test_number_parameters_are_exact_or_refused(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook(
        "numbers.yaml",
        """
        playbook:
          id: numbers
          name: Numbers
          parameters:
            - {name: n, type: number, default: 1}
          steps:
            - id: echo
              type: query
              config: {template: "SELECT CAST({{n}} AS VARCHAR) AS n"}
        """,
    )
    for given, expected in (("0.1", "0.1"), ("9007199254740992", "9007199254740992")):
        code, out, err = cli(project, capsys, "run", "numbers", f"n={given}", "--no-artifacts")
        assert code == EXIT_OK, err
        assert report_of(out)["metadata"]["parameters_used"] == {"n": json.loads(given)}
    for given in ("12345678901234567", "0.1000000000000000055511151231257827"):
        code, out, err = cli(project, capsys, "run", "numbers", f"n={given}")
        assert code == EXIT_INVALID and out == ""
        assert f"parameter 'n': '{given}' has more digits than a number parameter" in err
        assert "type: integer" in err


def test_a_long_array_parameter_compares_with_a_numeric_column(
    project: Project, capsys: pytest.CaptureFixture[str], demo_files: DemoFiles
) -> None:
    project.add_playbook(
        "ids.yaml",
        """
        playbook:
          id: ids
          name: Ids
          parameters:
            - {name: ids, type: array, items: integer, default: [1]}
          steps:
            - id: picked
              type: query
              config:
                template: "SELECT count(*) AS n FROM analytics.accounts
                  WHERE account_id IN ({{ids}})"
        """,
    )
    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        ids = [row[0] for row in con.sql("SELECT account_id FROM analytics.accounts").fetchall()]
        # Every third id, and as many unknown ones: more than the 1000 bound as a table.
        given = ids[::3] + [max(ids) + 1 + i for i in range(len(ids[::3]))]
        assert len(given) > 1000
        expected = con.execute(
            "SELECT count(*) FROM analytics.accounts WHERE list_contains($ids, account_id)",
            {"ids": given},
        ).fetchone()
    assert expected is not None and expected[0] == len(ids[::3])
    text = ",".join(str(i) for i in given)
    code, out, err = cli(project, capsys, "run", "ids", f"ids={text}", "--no-artifacts")
    assert code == EXIT_OK, err
    report = report_of(out)
    assert report["outputs"] == {} and report["steps"][0]["row_count"] == 1
    assert report["insights"] == ["picked: 1 rows"]
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    records = instance.fetch_materializations(dg.AssetKey(["ids", "picked"]), limit=1).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    assert materialization.metadata["bound_lists"].value == {"playbook_list_ids": len(given)}
    facts: Any = materialization.metadata["facts"].value
    assert facts["first"] == {"n": expected[0]}


def test_run_unknown_playbook(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(project, capsys, "run", "presales")
    assert code == EXIT_INVALID and out == ""
    assert "unknown playbook 'presales'" in err
    assert "valid ids: at_risk_renewals, churn_risk, expansion_candidates" in err


def test_run_bad_parameter_value(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(project, capsys, "run", "segment_analysis", "min_arr=lots")
    assert code == EXIT_INVALID and out == ""
    assert err.strip() == (
        "error: parameter 'min_arr' expects a number, got 'lots'; for example min_arr=50000"
    )


def test_run_unknown_parameter(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(project, capsys, "run", "segment_analysis", "--param", "segmnt=smb")
    assert code == EXIT_INVALID
    assert "has no parameter 'segmnt'; did you mean 'segment'?" in err


def test_run_unknown_connection_override(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(project, capsys, "run", "health_dashboard", "--data-warehouse", "duckbd")
    assert code == EXIT_INVALID
    assert "--data-warehouse names unknown connection 'duckbd'; did you mean 'duckdb'?" in err
    code, _, err = cli(project, capsys, "run", "health_dashboard", "--crm", "duckdb")
    assert code == EXIT_INVALID
    assert "--crm names connection 'duckdb', which is a data warehouse" in err


def test_run_writes_report_and_artifacts(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(project, capsys, "run", "health_dashboard", "min_arr=100000")
    assert code == EXIT_OK
    report = report_of(out)
    assert report["run_id"].startswith("run_")
    assert len(report["run_id"]) == len("run_20260128_143000_abc123")
    assert report["artifact_path"] == f"artifacts/{report['run_id']}.json"
    stored = json.loads((project.root / report["artifact_path"]).read_text())
    assert stored == report
    assert report["summary"] == {
        "total_steps": 4,
        "successful_steps": 4,
        "cached_steps": 0,
        "failed_steps": 0,
        "skipped_steps": 0,
        "not_selected_steps": 0,
        "total_execution_time_ms": pytest.approx(
            sum(s["execution_time_ms"] for s in report["steps"]), abs=0.2
        ),
    }
    assert report["metadata"]["data_warehouse"] == "duckdb"
    assert report["metadata"]["crm"] == "demo"
    assert report["metadata"]["parameters_used"] == {"min_arr": 100000}
    # The run is an ordinary run of the instance in DAGSTER_HOME, visible in the UI.
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    run = instance.get_run_by_id(report["dagster_run_id"])
    assert run is not None and run.job_name == "__ASSET_JOB"
    assert run.tags["playbook/id"] == "health_dashboard"
    assert {key.path[0] for key in run.asset_selection or []} == {"health_dashboard"}
    assert run.status == dg.DagsterRunStatus.SUCCESS
    parquet = list((project.artifacts_dir / "data" / "health_dashboard").glob("*/*.parquet"))
    assert len(parquet) == 8


def test_run_no_artifacts_writes_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(project, capsys, "run", "expansion_candidates", "--no-artifacts")
    assert code == EXIT_OK
    report = report_of(out)
    assert report["artifact_path"] is None
    assert report["outputs"]["summary"]["values"]["candidates"] == 100
    assert not project.artifacts_dir.exists()
    # The run says so, so the run-failure sensor never writes a record for it either.
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    run = instance.get_run_by_id(report["dagster_run_id"])
    assert run is not None and run.tags["playbook/save_artifacts"] == "false"


def test_params_file_and_overrides(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    params = project.root / "params.yaml"
    params.write_text("segment: smb\nmin_arr: 20000\nhealth_threshold: 40\n")
    code, out, _ = cli(
        project, capsys, "run", "segment_analysis", "--params-file", str(params), "min_arr=25000"
    )
    assert code == EXIT_OK
    used = report_of(out)["metadata"]["parameters_used"]
    assert used == {"segment": "smb", "min_arr": 25000, "health_threshold": 40}


def test_failed_step_exits_1_with_report(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook(
        "bad_sql.yaml",
        """
        playbook:
          id: bad_sql
          name: Bad SQL
          steps:
            - id: first
              type: query
              config: {template: "SELECT * FROM analytics.no_such_table"}
            - id: second
              type: filter
              config: {input: "${steps.first}", condition: "1 = 1"}
            - id: independent
              type: query
              config: {template: "SELECT 42 AS answer"}
        """,
    )
    code, out, _ = cli(project, capsys, "run", "bad_sql")
    assert code == EXIT_STEP_FAILED
    report = report_of(out)
    assert report["status"] == "failed"
    statuses = {step["step_id"]: step["status"] for step in report["steps"]}
    assert statuses == {"first": "error", "second": "skipped", "independent": "success"}
    error = report["steps"][0]["error"]
    assert error.startswith("config/playbooks/bad_sql.yaml:5: step 'first': DuckDB rejected")
    assert "no_such_table" in error
    assert report["summary"]["successful_steps"] == 1
    assert (project.root / report["artifact_path"]).exists()


def test_injection_through_a_parameter_is_a_literal(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = "enterprise' OR '1'='1"
    code, out, _ = cli(project, capsys, "run", "segment_analysis", f"segment={payload}")
    assert code == EXIT_OK
    report = report_of(out)
    assert report["outputs"]["summary"]["values"]["accounts"] == 0


def test_console_script_end_to_end(project: Project) -> None:
    """The installed ``playbook`` command, as a user runs it, in a fresh process."""
    script = Path(sys.executable).parent / "playbook"
    env = {**os.environ, "DAGSTER_HOME": str(project.dagster_home)}
    done = subprocess.run(
        [str(script), "run", "presales_analysis", "--config", str(project.config_path)],
        capture_output=True,
        text=True,
        cwd=project.root,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["playbook_id"] == "presales_analysis"
    assert [step["status"] for step in report["steps"]] == ["success"] * 3
    assert report["insights"]
    assert "Traceback" not in done.stderr


def test_write_statement_is_refused_without_allow_writes(
    project: Project, capsys: pytest.CaptureFixture[str], demo_files: DemoFiles
) -> None:
    project.add_playbook(
        "writer.yaml",
        """
        playbook:
          id: writer
          name: Writer
          steps:
            - id: wipe
              type: query
              config: {template: "DELETE FROM analytics.accounts"}
        """,
    )
    code, out, _ = cli(project, capsys, "run", "writer")
    assert code == EXIT_STEP_FAILED
    error = report_of(out)["steps"][0]["error"]
    assert "only a single read-only statement is allowed" in error
    assert "allow_writes: true" in error
    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM analytics.accounts").fetchone() == (2000,)


def test_demo_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "conf" / "playbook-executor.yaml"
    config.parent.mkdir()
    config.write_text(
        "playbook_executor:\n"
        "  connections:\n"
        "    duckdb: {database: '${DEMO_DIR:-data}/w.duckdb', demo_data: true}\n"
        "    demo: {database: data/crm.duckdb}\n"
    )
    assert main(["demo", "init", "--scale", "0.05", "--config", str(config)]) == EXIT_OK
    out = capsys.readouterr().out
    warehouse = tmp_path / "conf" / "data" / "w.duckdb"
    assert f"duckdb: wrote {warehouse} (analytics.accounts 500, " in out
    assert "demo: wrote " in out and "deals 2,500" in out
    assert main(["demo", "init", "--config", str(config)]) == EXIT_OK
    assert f"duckdb: {warehouse} exists (use --force to regenerate)" in capsys.readouterr().out
    assert main(["demo", "init", "--scale", "0", "--config", str(config)]) == EXIT_INVALID


def test_demo_load_copies_the_demo_warehouse_into_another_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], demo_files: DemoFiles
) -> None:
    config = tmp_path / "playbook-executor.yaml"
    target = tmp_path / "other.duckdb"
    config.write_text(
        "playbook_executor:\n"
        "  connections:\n"
        f"    duckdb: {{database: '{demo_files.warehouse}', demo_data: true}}\n"
        f"    other: {{type: duckdb, database: '{target}', allow_writes: true}}\n"
        f"    demo: {{database: '{demo_files.crm}'}}\n"
    )
    assert main(["demo", "load", "--connection", "other", "--config", str(config)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "other: loaded analytics.accounts (2,000 rows)" in out
    with duckdb.connect(str(target), read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics'"
        ).fetchall()
        assert sorted(t[0] for t in tables) == ["accounts", "product_usage", "support_tickets"]
    assert main(["demo", "load", "--connection", "demo", "--config", str(config)]) == EXIT_INVALID
    assert "connection 'demo' is not a data warehouse" in capsys.readouterr().err
