"""A playbook run on its own, with no Dagster: the same report as a run through Dagster, its
values checked against plain SQL on the demo data."""

from __future__ import annotations

import json

import duckdb
import pytest

from playbook_assets.app.cli import main
from playbook_assets.app.local import run_playbook_locally
from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config_file
from playbook_defs import TEMPLATES_DIR
from tests.conftest import DemoFiles, Project


def test_a_local_run_gives_the_report_a_dagster_run_gives(
    project: Project, demo_files: DemoFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config_file(project.config_path)
    loaded = load_catalog(config, [TEMPLATES_DIR]).get("health_dashboard")
    local = run_playbook_locally(loaded, config, {"min_arr": 100000})
    assert local.report["status"] == "success"
    argv = ["run", "health_dashboard", "min_arr=100000", "--config", str(project.config_path)]
    assert main([*argv, "--json"]) == 0
    dagster = json.loads(capsys.readouterr().out)
    assert local.report["outputs"] == dagster["outputs"]
    assert local.report["insights"] == dagster["insights"]
    assert [s["row_count"] for s in local.report["steps"]] == [
        s["row_count"] for s in dagster["steps"]
    ]
    # The values are the warehouse's own.
    with duckdb.connect(str(demo_files.warehouse), read_only=True) as con:
        found = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE arr >= 100000 "
            "AND health_status IN ('At-Risk', 'Churned')) FROM analytics.accounts"
        ).fetchone()
    assert found is not None
    rows = {s["step_id"]: s["row_count"] for s in local.report["steps"]}
    assert (rows["accounts"], rows["high_value_low_health"]) == found
    assert found[1] > 0
    assert local.table("high_value_low_health").num_rows == found[1]
