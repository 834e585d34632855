"""Running the ``playbook`` command in the test's project, for the reliability tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from playbook_assets.app.cli import main
from tests.conftest import Project


def cli(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``playbook ARGS --config PROJECT_CONFIG``: its exit code, stdout and stderr."""
    code = main([*args, "--config", str(project.config_path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(
    project: Project, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any], str]:
    """``playbook run ARGS --json``: its exit code, the report and stderr."""
    code, out, err = cli(project, capsys, "run", *args, "--json")
    assert out, err
    return code, json.loads(out), err


def step_of(report: dict[str, Any], step_id: str) -> dict[str, Any]:
    """One step of a run report."""
    (step,) = [step for step in report["steps"] if step["step_id"] == step_id]
    return step
