"""A disk that fills up, and an artifacts folder that cannot be one: the report is still
printed on stdout, one line on stderr says what could not be written and where, the exit code
is not 0, and no partial record is left behind.

The full disk is a 1 MiB tmpfs mounted on the artifacts folder in a private mount namespace
(``unshare``; as root, or as a user through a user namespace), so nothing outside the test's
process sees it and it disappears with the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import dagster as dg
import pytest

from playbook_assets.app.cli import EXIT_INVALID, EXIT_STEP_FAILED
from tests.conftest import DemoFiles, Project, write_config
from tests.integration.reliability.run_support import cli

# Mounts a tmpfs on the artifacts folder, fills it to all but KEEP pages, runs the command
# line, then lists what the artifacts folder holds (the mount goes away with the process).
_INNER = r"""
import json, os, subprocess, sys
from pathlib import Path
artifacts, keep, listing = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(artifacts)], check=True)
free = os.statvfs(artifacts)
(artifacts / "filler").write_bytes(b"\0" * ((free.f_bavail - keep) * free.f_bsize))
assert os.statvfs(artifacts).f_bavail == keep
from playbook_assets.app.cli import main
try:
    code = main(sys.argv[4:])
finally:
    sys.stdout.flush()
    names = [str(p.relative_to(artifacts)) for p in artifacts.rglob("*") if p.is_file()]
    listing.write_text(json.dumps(sorted(names)))
sys.exit(code)
"""

TINY = """
playbook:
  id: tiny
  name: Tiny
  parameters:
    - {name: note, type: string, default: ""}
  steps:
    - id: one
      type: query
      config: {template: "SELECT 1 AS one"}
"""


def _run_on_a_full_disk(
    project: Project, keep_pages: int, *args: str
) -> tuple[int, str, str, list[str]]:
    """``playbook run ARGS`` with the artifacts folder on a tmpfs that has ``keep_pages``
    pages (4 KiB) free: exit code, stdout, stderr and the files left in the folder."""
    project.artifacts_dir.mkdir(exist_ok=True)
    listing = project.root / "listing.json"
    namespace = (
        ["unshare", "--mount", "--propagation", "private"]
        if os.geteuid() == 0
        else ["unshare", "--user", "--map-root-user", "--mount"]
    )
    command = [
        *namespace,
        sys.executable,
        "-c",
        _INNER,
        str(project.artifacts_dir),
        str(keep_pages),
        str(listing),
        "run",
        *args,
        "--json",
        "--config",
        str(project.config_path),
    ]
    done = subprocess.run(
        command, cwd=project.root, capture_output=True, text=True, timeout=300, check=False
    )
    assert listing.exists(), f"the command did not run: {done.stderr[-2000:]}"
    return done.returncode, done.stdout, done.stderr, json.loads(listing.read_text())


def _last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def test_a_full_disk_still_prints_the_report(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("tiny.yaml", TINY)
    code, out, err, left = _run_on_a_full_disk(project, 0, "tiny")
    assert code == EXIT_STEP_FAILED
    report: dict[str, Any] = json.loads(out)
    (step,) = report["steps"]
    assert report["status"] == "failed" and step["status"] == "error"
    assert f"cannot write {project.artifacts_dir}/data/tiny/one/" in step["error"]
    assert "No space left on device" in step["error"]
    assert report["artifact_path"] is None
    assert "Traceback" not in err
    assert _last_line(err) == (
        f"error: the record of {report['run_id']} was not stored: cannot write "
        f"{project.artifacts_dir}/{report['run_id']}.playbook.yaml: No space left on device; "
        f"free space on the disk that holds {project.artifacts_dir}"
    )
    assert left == ["filler"]


def test_results_stored_but_no_room_for_the_record(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("tiny.yaml", TINY)
    # Two pages: the step's Parquet file (one) and the playbook copy (one) fit; the report,
    # which quotes a 20 KB parameter, does not.
    code, out, err, left = _run_on_a_full_disk(project, 2, "tiny", f"note={'n' * 20_000}")
    assert code == EXIT_STEP_FAILED
    report: dict[str, Any] = json.loads(out)
    (step,) = report["steps"]
    assert step["status"] == "success" and step["row_count"] == 1
    assert report["metadata"]["parameters_used"]["note"] == "n" * 20_000
    assert report["artifact_path"] is None
    assert "Traceback" not in err
    assert _last_line(err) == (
        f"error: the record of {report['run_id']} was not stored: cannot write "
        f"{project.artifacts_dir}/{report['run_id']}.json: No space left on device; "
        f"free space on the disk that holds {project.artifacts_dir}"
    )
    # The result is stored; of the record nothing is left (no copy without its report).
    assert left == [f"data/tiny/one/{report['dagster_run_id']}.parquet", "filler"]


@pytest.mark.parametrize(
    ("layout", "reason"), [("file", "File exists"), ("parent", "Not a directory")]
)
def test_an_artifacts_folder_that_cannot_be_one_is_a_clear_error(
    project: Project,
    demo_files: DemoFiles,
    capsys: pytest.CaptureFixture[str],
    layout: str,
    reason: str,
) -> None:
    project.add_playbook("tiny.yaml", TINY)
    blocker = project.root / "artifacts"
    blocker.write_text("not a folder", encoding="utf-8")
    folder = blocker if layout == "file" else blocker / "store"
    config = write_config(project.root, demo_files).read_text()
    config = config.replace("directory: ../artifacts", f"directory: {folder}")
    project.config_path.write_text(config, encoding="utf-8")
    code, out, err = cli(project, capsys, "run", "tiny", "--json")
    assert code == EXIT_INVALID
    assert out == ""
    assert err == (
        f"error: {project.config_path}: field 'artifacts.directory': cannot create the folder "
        f"{folder}: {reason}; "
        "a file stands where a folder should be: check artifacts.directory\n"
    )
    assert blocker.read_text(encoding="utf-8") == "not a folder"
    assert dg.DagsterInstance.get().get_runs() == []  # nothing ran
