"""Benchmark 6: ``presales_analysis`` on demo scale 100 (about 1M accounts, 5M deals).

The demo data is generated once into bench/.cache (about 20 s) and kept between runs. Each
run is ``playbook run presales_analysis`` in a fresh process (temporary DAGSTER_HOME and
artifact folder, one untimed warm-up run creating the instance storage); its peak RSS comes
from ``wait4``. The reference is the in-memory (Arrow) size of the input tables the playbook
reads (CRM ``deals`` and ``deal_company``, warehouse ``analytics.accounts``), measured by a
separate process that loads them whole.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.common import (
    PYTHON,
    Options,
    Row,
    dagster_home,
    demo_data_dir,
    median,
    run_child,
    write_config,
    write_result,
)
from bench.runs import run_cli

SCALE = 100
# "Bounded": the run's peak RSS stays under this multiple of the input tables' Arrow size.
PEAK_BOUND = 2.0


def _input_sizes(folder: str) -> None:
    import duckdb

    sizes: dict[str, float] = {}
    with duckdb.connect(f"{folder}/demo_crm.duckdb", read_only=True) as con:
        for table in ("deals", "deal_company"):
            sizes[table] = con.sql(f"SELECT * FROM {table}").to_arrow_table().nbytes / 2**20
    with duckdb.connect(f"{folder}/warehouse.duckdb", read_only=True) as con:
        sizes["analytics.accounts"] = (
            con.sql("SELECT * FROM analytics.accounts").to_arrow_table().nbytes / 2**20
        )
    write_result(sizes)


def run(options: Options) -> list[Row]:
    """One row: run time, peak RSS and peak / input size."""
    data = demo_data_dir(SCALE)
    sizes = run_child([PYTHON, "-m", "bench.scale", str(data)]).output
    input_mib = sum(sizes.values())
    repeats = options.repeats(5, 1)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        config = write_config(Path(tmp) / "config", data)
        home = dagster_home(Path(tmp) / "home")
        run_cli("presales_analysis", config, home)  # warm-up
        runs = [run_cli("presales_analysis", config, home) for _ in range(repeats)]
    peak = max(r.peak_mib for r in runs)
    report = runs[-1].output
    steps = ", ".join(
        f"{step['step_id']} {step['execution_time_ms'] / 1000:.2f} s" for step in report["steps"]
    )
    rows_out = report["outputs"]["opportunities_with_health"]["row_count"]
    return [
        Row(
            "presales_analysis, demo scale 100",
            "playbook run (1M accounts, 5M deals)",
            median([r.seconds for r in runs]),
            f"input tables in Arrow: {input_mib:.0f} MiB",
            None,
            f"completes; peak <= {PEAK_BOUND:g}x inputs",
            peak <= PEAK_BOUND * input_mib,
            peak,
            repeats,
            f"peak / inputs = {peak / input_mib:.2f}; {rows_out:,} result rows; steps: {steps}",
            ratio=peak / input_mib,
        )
    ]


if __name__ == "__main__":
    _input_sizes(sys.argv[1])
