"""Run the benchmark suite: ``python -m bench.run [--quick] [--only NAME ...]``.

Prints a markdown table and writes it to bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence

from bench.common import RESULTS_DIR, Options, Row, fmt_seconds

BENCHMARKS = {
    "load": "bench.load",
    "runs": "bench.runs",
    "steps": "bench.step_overhead",
    "transforms": "bench.transforms",
    "artifacts": "bench.artifacts",
    "scale": "bench.scale",
    "hubspot": "bench.hubspot",
    "report": "bench.report_render",
    "mcp": "bench.mcp_warm",
    "pushdown": "bench.pushdown",
    "launch": "bench.ui_launch",
}


def machine_line() -> str:
    """Which machine and versions produced the figures."""
    with open("/proc/meminfo") as handle:
        total_kib = int(handle.readline().split()[1])
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("dagster", "duckdb", "pyarrow", "pandas")
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {total_kib / 2**20:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"{versions}"
    )


def render(rows: Sequence[Row]) -> str:
    """The results as a markdown table."""
    lines = [
        "| benchmark | case | median | baseline | baseline median | ratio | target | result "
        "| peak RSS | runs | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        result = "-" if row.passed is None else ("pass" if row.passed else "**miss**")
        peak = "-" if row.peak_mib is None else f"{row.peak_mib:,.0f} MiB"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        lines.append(
            f"| {row.benchmark} | {row.case} | {fmt_seconds(row.median_s)} | {row.baseline} "
            f"| {fmt_seconds(row.baseline_s)} | {ratio} | {row.target} | {result} | {peak} "
            f"| {row.runs} | {row.note} |"
        )
    return "\n".join(lines)


def _write(rows: Sequence[Row], quick: bool, started: float) -> str:
    header = (
        f"Benchmarks run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
        f"{' (--quick)' if quick else ''} in {time.perf_counter() - started:.0f} s on: "
        f"{machine_line()}"
    )
    text = f"{header}\n\n{render(rows)}\n"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "latest.md").write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks and write bench/results/latest.md."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions for slow ones")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        help="run only this benchmark (repeatable)",
    )
    args = parser.parse_args(argv)
    options = Options(quick=args.quick)
    selected = args.only or list(BENCHMARKS)
    rows: list[Row] = []
    started = time.perf_counter()
    text = ""
    for name in selected:
        sys.stderr.write(f"[bench] {name} ...\n")
        sys.stderr.flush()
        begun = time.perf_counter()
        try:
            module = importlib.import_module(BENCHMARKS[name])
            rows.extend(module.run(options))
        except Exception as e:  # one broken benchmark must not hide the others
            traceback.print_exc()
            rows.append(Row(name, "ERROR", None, "-", None, "-", False, note=str(e)[:300]))
        sys.stderr.write(f"[bench] {name} done in {time.perf_counter() - begun:.0f} s\n")
        text = _write(rows, args.quick, started)  # after each one: a killed run keeps its rows
    sys.stdout.write(text)
    return 0 if all(row.case != "ERROR" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
