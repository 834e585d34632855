"""``timeout_seconds`` holds for every step type: an API that trickles its answer, a CRM behind
such a server, a FIFO nobody writes to, and retries are all cut at the step's limit, with an
error that names it, instead of running until the other side is done (about a minute here)."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from playbook_assets.app.cli import EXIT_STEP_FAILED
from standins.slow_server import BODY, TRICKLE_INTERVAL_SECONDS, SlowServer
from tests.conftest import DemoFiles, Project, connection_config_text
from tests.integration.reliability.run_support import run_json, step_of

LIMIT = 3
# How long a source that ignored the limit would have held the step (one byte a second).
UNBOUNDED_SECONDS = len(BODY) * TRICKLE_INTERVAL_SECONDS


@pytest.fixture
def slow() -> Iterator[SlowServer]:
    with SlowServer() as server:
        yield server


def _one_step(step: str) -> str:
    return f"playbook:\n  id: slow\n  name: Slow\n  steps:\n    - id: fetch\n{step}"


def _cut_at_the_limit(step: dict[str, Any]) -> str:
    """The step failed at its limit (not before, not when the server was done)."""
    assert step["status"] == "error", step
    seconds = step["execution_time_ms"] / 1000
    assert LIMIT - 0.1 <= seconds < LIMIT + 2, seconds
    assert seconds < UNBOUNDED_SECONDS / 2
    return str(step["error"])


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("rest_body", f"the API did not answer within the step's time limit of {LIMIT} s"),
        ("rest_headers", f"the step ran longer than its time limit of {LIMIT} s and was cut off"),
        ("graphql_body", f"the step ran longer than its time limit of {LIMIT} s and was cut off"),
    ],
)
def test_an_api_that_trickles_its_answer_is_cut_at_the_limit(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    slow: SlowServer,
    kind: str,
    message: str,
) -> None:
    step = {
        "rest_body": f'      type: request\n      config: {{url: "{slow.base_url}/items", '
        "records_path: items}\n",
        "rest_headers": f'      type: request\n      config: {{url: "{slow.base_url}'
        '/trickle-headers", records_path: items}\n',
        "graphql_body": f'      type: graphql\n      config: {{url: "{slow.base_url}/graphql", '
        'query: "{ items { id } }", records_path: items}\n',
    }[kind]
    project.add_playbook("slow.yaml", _one_step(f"{step}      timeout_seconds: {LIMIT}\n"))
    code, report, _ = run_json(project, capsys, "slow")
    assert code == EXIT_STEP_FAILED
    error = _cut_at_the_limit(step_of(report, "fetch"))
    assert message in error
    assert error.endswith("timeout_seconds in the config")


def test_a_crm_behind_a_trickling_server_is_cut_at_the_limit(
    project: Project, demo_files: DemoFiles, capsys: pytest.CaptureFixture[str], slow: SlowServer
) -> None:
    settings = {"type": "hubspot", "access_token": "pat-test", "base_url": slow.base_url}
    project.config_path.write_text(
        connection_config_text(demo_files, "hub", settings, role="crm"), encoding="utf-8"
    )
    project.add_playbook(
        "slow.yaml",
        _one_step(
            f"      type: search\n      timeout_seconds: {LIMIT}\n"
            "      config: {object: deals, properties: [dealname]}\n"
        ),
    )
    code, report, _ = run_json(project, capsys, "slow")
    assert code == EXIT_STEP_FAILED
    error = _cut_at_the_limit(step_of(report, "fetch"))
    assert f"longer than {LIMIT} s" in error or f"time limit of {LIMIT} s" in error


def test_a_fifo_nobody_writes_to_is_cut_at_the_limit(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    pipe = project.playbooks_dir / "incoming" / "pipe.csv"
    pipe.parent.mkdir()
    os.mkfifo(pipe)
    project.add_playbook(
        "slow.yaml",
        _one_step(
            f"      type: read\n      timeout_seconds: {LIMIT}\n"
            "      config: {path: incoming/pipe.csv}\n"
        ),
    )
    try:
        code, report, _ = run_json(project, capsys, "slow")
    finally:
        _release_readers(str(pipe))
    assert code == EXIT_STEP_FAILED
    error = _cut_at_the_limit(step_of(report, "fetch"))
    assert f"the step ran longer than its time limit of {LIMIT} s and was cut off" in error


def _release_readers(pipe: str) -> None:
    """Let every reader left blocked on the FIFO see an end of file (DuckDB opens a file more
    than once), so that no thread of this test outlives it."""
    quiet_rounds = 0
    for _ in range(100):
        try:
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
            quiet_rounds = 0
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no reader is waiting
                raise
            quiet_rounds += 1
            if quiet_rounds == 10:
                return
        time.sleep(0.05)


def test_retries_stay_within_the_limit(
    project: Project, capsys: pytest.CaptureFixture[str], slow: SlowServer
) -> None:
    # 503 with Retry-After: 2, and the step may be retried 3 times: each attempt alone fits
    # in the limit, all of them do not.
    config = project.config_path.read_text().replace("retry_attempts: 1", "retry_attempts: 3")
    project.config_path.write_text(config, encoding="utf-8")
    project.add_playbook(
        "slow.yaml",
        _one_step(
            f'      type: request\n      timeout_seconds: {LIMIT}\n      config: {{url: "'
            f'{slow.base_url}/unavailable", records_path: items}}\n'
        ),
    )
    code, report, _ = run_json(project, capsys, "slow")
    assert code == EXIT_STEP_FAILED
    step = step_of(report, "fetch")
    assert step["status"] == "error"
    assert "the API answered 503" in step["error"]
    assert step["execution_time_ms"] / 1000 < LIMIT + 1
