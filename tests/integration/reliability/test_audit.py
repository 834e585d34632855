"""The audit trail holds: ``artifacts verify`` checks the stored playbook copy and flags a run
whose manifest is gone; a stored result is used only while it matches the sha256 its
materialization recorded; ``rerun`` refuses a playbook copy that no longer matches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playbook_assets.app.cli import EXIT_INVALID, EXIT_OK, EXIT_STEP_FAILED
from playbook_assets.app.runner import execute_playbook
from playbook_assets.core.artifacts import file_sha256
from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config_file
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.run_records import load_run
from playbook_assets.dagster_adapter.factory import build_definitions
from playbook_assets.dagster_adapter.io_manager import ArtifactIOManager
from tests.conftest import Project
from tests.integration.reliability.run_support import cli, run_json

AUDITED = """
playbook:
  id: audited
  name: Audited
  steps:
    - id: base
      type: query
      config:
        template: "SELECT account_id, arr FROM analytics.accounts ORDER BY account_id LIMIT 50"
    - id: big
      type: filter
      config: {input: "${steps.base}", condition: "arr > 0"}
"""


def _run(project: Project, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, report, _ = run_json(project, capsys, "audited")
    assert code == EXIT_OK, report
    return report


def test_verify_checks_the_stored_playbook_copy(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    playbook = project.add_playbook("audited.yaml", AUDITED)
    run_id = _run(project, capsys)["run_id"]
    copy = project.artifacts_dir / f"{run_id}.playbook.yaml"
    manifest = load_run(project.artifacts_dir, run_id).manifest
    assert manifest["playbook"]["copy_sha256"] == file_sha256(playbook) == file_sha256(copy)

    copy.write_text(AUDITED.replace("LIMIT 50", "LIMIT 5"), encoding="utf-8")
    code, out, _ = cli(project, capsys, "artifacts", "verify", run_id)
    assert (code, out) == (EXIT_STEP_FAILED, f"FAILED {run_id}: {copy}: changed (sha256 differs)\n")
    copy.unlink()
    code, out, _ = cli(project, capsys, "artifacts", "verify", "--all")
    assert (code, out) == (EXIT_STEP_FAILED, f"FAILED {run_id}: {copy}: missing\n")


def test_verify_checks_the_report_page(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("audited.yaml", AUDITED)
    run_id = _run(project, capsys)["run_id"]
    page = project.artifacts_dir / f"{run_id}.html"
    manifest = load_run(project.artifacts_dir, run_id).manifest
    assert manifest["report_html"] == {"path": page.name, "sha256": file_sha256(page)}
    page.write_text(page.read_text(encoding="utf-8").replace("</body>", "<p>x</p></body>"))
    code, out, _ = cli(project, capsys, "artifacts", "verify", run_id)
    assert (code, out) == (EXIT_STEP_FAILED, f"FAILED {run_id}: {page}: changed (sha256 differs)\n")


def test_verify_flags_a_report_without_its_manifest(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("audited.yaml", AUDITED)
    kept = _run(project, capsys)["run_id"]
    orphan = _run(project, capsys)["run_id"]
    manifest = project.artifacts_dir / f"{orphan}.manifest.json"
    manifest.unlink()
    failed = (
        f"FAILED {orphan}: {manifest}: missing: the run has a report but no manifest "
        "(an incomplete or altered record)\n"
    )
    code, out, _ = cli(project, capsys, "artifacts", "verify", "--all")
    # 2 artifacts (base, big), the report and the playbook copy.
    assert (code, out) == (EXIT_STEP_FAILED, f"ok {kept} (5 files)\n{failed}")
    code, out, _ = cli(project, capsys, "artifacts", "verify", orphan)
    assert (code, out) == (EXIT_STEP_FAILED, failed)


def test_rerun_refuses_a_playbook_copy_that_changed(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    playbook = project.add_playbook("audited.yaml", AUDITED)
    run_id = _run(project, capsys)["run_id"]
    # The file changed since the run, so rerun would take the stored copy: which was altered.
    playbook.write_text(AUDITED.replace("LIMIT 50", "LIMIT 10"), encoding="utf-8")
    copy = project.artifacts_dir / f"{run_id}.playbook.yaml"
    copy.write_text(AUDITED.replace("arr > 0", "arr > 1000000"), encoding="utf-8")
    runs_before = len(dg.DagsterInstance.get().get_runs())

    code, out, err = cli(project, capsys, "rerun", run_id, "--json")
    assert (code, out) == (EXIT_INVALID, "")
    assert err == (
        f"error: the stored copy of the playbook of {run_id} ({copy}) does not match the "
        "sha256 in its manifest: it was changed since the run and is not used; "
        f"`playbook artifacts verify {run_id}` shows the run's files\n"
    )
    assert len(dg.DagsterInstance.get().get_runs()) == runs_before


def _replace_with_other_numbers(path: Path) -> pa.Table:
    """Overwrite a stored result with a valid Parquet file of different figures."""
    original = pq.read_table(path)
    arr = original["arr"]
    tenfold = pa.array([None if v is None else v * 10 for v in arr.to_pylist()], arr.type)
    forged = original.set_column(original.schema.get_field_index("arr"), "arr", tenfold)
    pq.write_table(forged, path)
    return forged


def test_a_replaced_upstream_result_is_refused_not_used(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("audited.yaml", AUDITED)
    report = _run(project, capsys)
    base = Path(
        next(
            artifact["path"]
            for artifact in load_run(project.artifacts_dir, report["run_id"]).manifest["artifacts"]
            if artifact["asset"] == "audited/base"
        )
    )
    _replace_with_other_numbers(base)
    instance = dg.DagsterInstance.get()
    config = load_config_file(project.config_path)
    definitions = build_definitions(load_catalog(config, []), config, only=["audited"])

    # Only the downstream step: it reads base's latest stored result.
    result = execute_playbook(definitions, "audited", instance=instance, assets=["big"])
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data.user_failure_data
    assert data is not None and data.description is not None
    assert f"the stored result of audited/base ({base}) does not match the sha256 recorded" in (
        data.description
    )
    assert "is not used" in data.description
    latest = instance.get_latest_materialization_event(dg.AssetKey(["audited", "big"]))
    assert latest is not None and latest.run_id != result.run_id

    # The I/O manager refuses it too, whether it reads that run's result or the latest one.
    manager = ArtifactIOManager(base_dir=str(project.artifacts_dir))
    key = dg.AssetKey(["audited", "base"])
    for upstream in (dg.build_output_context(run_id=report["dagster_run_id"]), None):
        context = dg.build_input_context(asset_key=key, instance=instance, upstream_output=upstream)
        with pytest.raises(TerminalStepError, match="does not match the sha256 recorded"):
            manager.load_input(context)
