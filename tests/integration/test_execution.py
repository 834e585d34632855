"""Step execution rules in real runs: time limits, retries of transient failures only."""

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import dagster as dg
import pytest

from playbook_assets.app.cli import EXIT_STEP_FAILED, main
from playbook_assets.app.runner import execute_playbook
from playbook_assets.core.catalog import load_catalog
from playbook_assets.core.config import load_config_file
from playbook_assets.dagster_adapter.factory import build_definitions
from standins.local_http import LocalHttpServer, QuietHandler
from tests.conftest import DemoFiles, Project, write_config

SLOW_AND_INDEPENDENT = """
playbook:
  id: slow
  name: Slow
  steps:
    - id: slow_query
      type: query
      timeout_seconds: 1
      config:
        template: "SELECT count(*) AS n FROM range(100000000000) AS a"
    - id: after_slow
      type: filter
      config: {input: "${steps.slow_query}", condition: "n > 0"}
    - id: independent
      type: query
      config: {template: "SELECT count(*) AS accounts FROM analytics.accounts"}
"""


def test_a_step_past_its_time_limit_fails_alone(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("slow.yaml", SLOW_AND_INDEPENDENT)
    started = time.monotonic()
    code = main(["run", "slow", "--config", str(project.config_path), "--json"])
    elapsed = time.monotonic() - started
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_STEP_FAILED
    steps = {step["step_id"]: step for step in report["steps"]}
    assert steps["slow_query"]["status"] == "error"
    assert steps["slow_query"]["error"] == (
        "config/playbooks/slow.yaml:5: step 'slow_query': the query ran longer than 1 s and was "
        "cancelled; raise timeout_seconds on the step or execution.timeout_seconds in the config"
    )
    assert steps["after_slow"]["status"] == "skipped"
    assert steps["independent"]["status"] == "success"
    assert steps["independent"]["row_count"] == 1
    assert elapsed < 30  # cancelled, not run to the end (which takes minutes)


def _attempts(instance: dg.DagsterInstance, key: list[str]) -> int:
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    assert event is not None and event.asset_materialization is not None
    return int(event.asset_materialization.metadata["attempts"].value)  # type: ignore[arg-type]


def test_a_transient_failure_is_retried_then_succeeds(
    project: Project, demo_files: DemoFiles
) -> None:
    # A writer holds the warehouse file's lock for a while: opening it fails for a moment.
    folder = project.root / "data"
    folder.mkdir()
    files = DemoFiles(warehouse=folder / "warehouse.duckdb", crm=demo_files.crm)
    shutil.copy(demo_files.warehouse, files.warehouse)
    config_path = write_config(project.root, files)
    text = config_path.read_text().replace("retry_attempts: 1", "retry_attempts: 4")
    config_path.write_text(text)
    project.add_playbook("count.yaml", SLOW_AND_INDEPENDENT.replace("id: slow\n", "id: count\n"))
    config = load_config_file(project.config_path)
    defs = build_definitions(load_catalog(config, []), config, only=["count"])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "print('locked', flush=True)\n"
            "time.sleep(3)\n"
            "con.close()\n",
            str(files.warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = execute_playbook(defs, "count", instance=instance, assets=["independent"])
    finally:
        holder.wait(timeout=30)
    assert result.success
    assert _attempts(instance, ["count", "independent"]) >= 2


def test_a_terminal_error_is_not_retried(project: Project) -> None:
    project.add_playbook(
        "bad.yaml",
        """
        playbook:
          id: bad
          name: Bad
          steps:
            - id: missing_table
              type: query
              config: {template: "SELECT * FROM analytics.no_such_table"}
        """,
    )
    config = load_config_file(project.config_path)
    defs = build_definitions(load_catalog(config, []), config, only=["bad"])
    instance = dg.DagsterInstance.ephemeral()
    result = execute_playbook(defs, "bad", instance=instance)
    assert not result.success
    retries = [
        record
        for record in instance.all_logs(result.run_id)
        if "retry" in record.user_message and record.dagster_event is None
    ]
    assert retries == []
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert len(failures) == 1


def test_step_timeout_must_be_positive(project: Project) -> None:
    path = project.add_playbook(
        "zero.yaml", SLOW_AND_INDEPENDENT.replace("timeout_seconds: 1", "timeout_seconds: 0")
    )
    code = main(["validate", str(path), "--config", str(project.config_path)])
    assert code == 2
    assert Path(path).exists()


class _SlowApi(QuietHandler):
    """Answers after a pause and records how many requests it served at once."""

    lock: ClassVar[threading.Lock] = threading.Lock()
    active: ClassVar[int] = 0
    most: ClassVar[int] = 0

    def do_GET(self) -> None:
        with _SlowApi.lock:
            _SlowApi.active += 1
            _SlowApi.most = max(_SlowApi.most, _SlowApi.active)
        time.sleep(0.5)
        with _SlowApi.lock:
            _SlowApi.active -= 1
        body = json.dumps([{"id": 1}, {"id": 2}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


TWO_CALLS = """
playbook:
  id: two_calls
  name: Two calls
  steps:
    - id: first
      type: request
      config: {{url: "{api}/a"}}
    - id: second
      type: request
      config: {{url: "{api}/b"}}
    - id: after_first
      type: filter
      config: {{input: "${{steps.first}}", condition: "id > 0"}}
"""


@pytest.mark.parametrize(("max_parallel", "expected"), [(1, 1), (3, 2)])
def test_independent_steps_run_at_once_up_to_max_parallel_steps(
    project: Project, capsys: pytest.CaptureFixture[str], max_parallel: int, expected: int
) -> None:
    _SlowApi.most = 0
    with LocalHttpServer(_SlowApi) as server:
        text = project.config_path.read_text().replace(
            "retry_attempts: 1", f"retry_attempts: 1\n    max_parallel_steps: {max_parallel}"
        )
        project.config_path.write_text(text)
        project.add_playbook("two.yaml", TWO_CALLS.format(api=server.base_url))
        code = main(["run", "two_calls", "--config", str(project.config_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert [step["row_count"] for step in report["steps"]] == [2, 2, 2]
    assert _SlowApi.most == expected
