"""Running a template through the command line and comparing run reports across warehouses."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from playbook_assets.app.cli import main


def run_template(
    config_path: Path, playbook_id: str, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """Run a playbook through the command line and return its JSON report."""
    code = main(["run", playbook_id, "--config", str(config_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["status"] == "success", report
    return report


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or not isinstance(expected, int | float):
        return actual == expected
    return isinstance(actual, int | float) and actual == pytest.approx(expected, rel=1e-9)


def assert_same_results(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Two run reports of one playbook agree: step statuses and row counts, every output's
    row count and values (numbers to a relative 1e-9)."""
    steps = {step["step_id"]: (step["status"], step.get("row_count")) for step in actual["steps"]}
    assert steps == {
        step["step_id"]: (step["status"], step.get("row_count")) for step in expected["steps"]
    }
    assert actual["outputs"].keys() == expected["outputs"].keys()
    for name, output in expected["outputs"].items():
        got = actual["outputs"][name]
        assert got.get("row_count") == output.get("row_count"), name
        values = output.get("values") or {}
        assert (got.get("values") or {}).keys() == values.keys(), name
        for key, value in values.items():
            assert _same(got["values"][key], value), (name, key, got["values"][key], value)
    assert actual["insights"] == expected["insights"]


class DuckDBReports:
    """Run reports of the built-in templates on the embedded DuckDB default, each run once
    per test session and shared by every warehouse's comparison."""

    def __init__(self, config_path: Path, dagster_home: Path) -> None:
        self.config_path = config_path
        self.dagster_home = dagster_home
        self._reports: dict[str, dict[str, Any]] = {}

    def __getitem__(self, playbook_id: str) -> dict[str, Any]:
        if playbook_id not in self._reports:
            out = io.StringIO()
            previous = os.environ.get("DAGSTER_HOME")
            os.environ["DAGSTER_HOME"] = str(self.dagster_home)
            try:
                with contextlib.redirect_stdout(out):
                    code = main(["run", playbook_id, "--config", str(self.config_path), "--json"])
            finally:
                if previous is None:
                    os.environ.pop("DAGSTER_HOME", None)
                else:
                    os.environ["DAGSTER_HOME"] = previous
            report = json.loads(out.getvalue())
            assert code == 0 and report["status"] == "success", report
            self._reports[playbook_id] = report
        return self._reports[playbook_id]
