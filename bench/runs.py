"""Benchmark 2: ``playbook run ID`` end to end for each built-in template (demo data, scale 1).

Each run is the real command line (``.venv/bin/playbook run ID --config CFG --json``) in a
fresh process, with a temporary DAGSTER_HOME (the project's dagster.yaml; its SQLite storage
is created by one untimed warm-up run per template, as on any machine that ran once) and a
temporary config pointing at demo data generated once under bench/.cache. The baseline, timed
in the same loop, is the floor of any command-line run: ``python -c "import dagster, duckdb,
pyarrow"``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.common import (
    PYTHON,
    ROOT,
    ChildResult,
    Options,
    Row,
    dagster_home,
    demo_data_dir,
    median,
    run_child,
    write_config,
)
from playbook_assets.core.catalog import playbook_files

FLOOR_CODE = "import dagster, duckdb, pyarrow"
TARGET_RATIO = 2.0


def template_ids() -> list[str]:
    """Ids of the built-in templates (their file names)."""
    return sorted(path.stem for path in playbook_files([ROOT / "playbook_defs" / "templates"]))


def playbook_command() -> str:
    """The ``playbook`` console script of the venv running the suite."""
    return str(Path(PYTHON).parent / "playbook")


def run_cli(playbook_id: str, config: Path, home: Path) -> ChildResult:
    """``playbook run ID`` in a fresh process; fails unless the run succeeded."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out = Path(tmp) / "report.json"
        result = run_child(
            [playbook_command(), "run", playbook_id, "--config", str(config), "--json"],
            env={"DAGSTER_HOME": str(home)},
            stdout_path=out,
        )
        report = json.loads(out.read_text())
    if report.get("status") != "success":
        raise RuntimeError(f"playbook run {playbook_id} did not succeed: {report}")
    return ChildResult(result.seconds, result.peak_mib, result.returncode, report, result.stderr)


def run(options: Options) -> list[Row]:
    """One row per template: median wall time against the import floor."""
    data = demo_data_dir(1)
    ids = template_ids()
    repeats = options.repeats(5, 3)
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        config = write_config(Path(tmp) / "config", data)
        homes = {pid: dagster_home(Path(tmp) / f"home_{pid}") for pid in ids}
        for pid in ids:  # warm-up: creates each instance's SQLite storage
            run_cli(pid, config, homes[pid])
        floor: list[ChildResult] = []
        runs: dict[str, list[ChildResult]] = {pid: [] for pid in ids}
        for _ in range(repeats):
            floor.append(run_child([PYTHON, "-c", FLOOR_CODE]))
            for pid in ids:
                runs[pid].append(run_cli(pid, config, homes[pid]))
    floor_s = median([r.seconds for r in floor])
    rows = [
        Row(
            "playbook run (scale 1)",
            "floor: import dagster, duckdb, pyarrow",
            floor_s,
            "-",
            None,
            "-",
            None,
            max(r.peak_mib for r in floor),
            len(floor),
        )
    ]
    for pid in ids:
        seconds = median([r.seconds for r in runs[pid]])
        steps_ms = median([r.output["summary"]["total_execution_time_ms"] for r in runs[pid]])
        rows.append(
            Row(
                "playbook run (scale 1)",
                pid,
                seconds,
                "import floor",
                floor_s,
                f"<= {TARGET_RATIO:g}x floor",
                seconds <= TARGET_RATIO * floor_s,
                max(r.peak_mib for r in runs[pid]),
                repeats,
                f"steps' own time {steps_ms:.0f} ms",
            )
        )
    return rows
