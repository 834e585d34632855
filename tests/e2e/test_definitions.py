"""The code location as deployed: the built-in playbooks' full asset graph, and Dagster's own
validation of the module."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

EXPECTED_ASSETS = {
    "at_risk_renewals": [
        "at_risk",
        "at_risk_accounts",
        "health_distribution",
        "pipeline",
        "renewal_pipeline",
        "renewals",
        "run_report",
        "summary",
    ],
    "churn_risk": [
        "companies",
        "crm_companies",
        "declining_accounts",
        "run_report",
        "summary",
        "usage_decline",
    ],
    "expansion_candidates": [
        "by_segment",
        "candidates",
        "expansion_list",
        "run_report",
        "segments",
        "summary",
    ],
    "health_dashboard": [
        "accounts",
        "accounts_to_review",
        "by_segment",
        "by_status",
        "high_value_low_health",
        "run_report",
        "segment_breakdown",
        "status_breakdown",
        "summary",
    ],
    "presales_analysis": [
        "account_health",
        "combine_results",
        "open_deals",
        "opportunities_with_health",
        "run_report",
        "summary",
    ],
    "segment_analysis": [
        "accounts",
        "open_deals",
        "pipeline",
        "pipeline_summary",
        "run_report",
        "segment_accounts",
        "segment_pipeline",
        "summary",
    ],
}


@pytest.fixture
def shipped_config(tmp_path: Path) -> Path:
    """The repository's config file, in a folder of its own: the deployment's own playbooks
    (``config/playbooks/``) are the user's, and never part of what a test expects."""
    folder = tmp_path / "config"
    (folder / "playbooks").mkdir(parents=True)
    path = folder / "playbook-executor.yaml"
    path.write_text((REPO / "config" / "playbook-executor.yaml").read_text())
    return path


def test_defs_has_every_builtin_asset_and_job(
    monkeypatch: pytest.MonkeyPatch, shipped_config: Path
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PLAYBOOK_CONFIG", str(shipped_config))
    monkeypatch.setenv("PLAYBOOK_STRICT", "1")
    # The module reads nothing when imported: the definitions are built when asked for.
    defs = importlib.import_module("playbook_defs.definitions").defs()
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    found: dict[str, list[str]] = {}
    for key in keys:
        found.setdefault(key.path[0], []).append(key.path[1])
    assert {group: sorted(names) for group, names in found.items()} == EXPECTED_ASSETS
    # Playbooks run in the implicit asset job: the only declared job prunes artifacts.
    assert [job.name for job in defs.jobs or []] == ["artifacts_prune"]
    assert [s.name for s in defs.schedules or []] == ["artifacts_prune_daily"]
    assert sorted(s.name for s in defs.sensors or []) == [
        "playbook_requests",
        "playbook_run_records",
        "playbook_stale_runs",
    ]


def test_dagster_definitions_validate(shipped_config: Path) -> None:
    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, "PLAYBOOK_STRICT": "1", "PLAYBOOK_CONFIG": str(shipped_config)}
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr
