"""Shared helpers: subprocess timing with peak memory, medians, result rows, cached demo data."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
CACHE_DIR = BENCH_DIR / ".cache"
RESULTS_DIR = BENCH_DIR / "results"
PYTHON = sys.executable


@dataclass(frozen=True)
class Options:
    """Command-line choices every benchmark sees."""

    quick: bool = False

    def repeats(self, full: int = 5, quick: int = 3) -> int:
        """Repetitions: ``full`` normally, ``quick`` with --quick."""
        return quick if self.quick else full


@dataclass
class Row:
    """One line of the results table."""

    benchmark: str
    case: str
    median_s: float | None
    baseline: str
    baseline_s: float | None
    target: str
    passed: bool | None
    peak_mib: float | None = None
    runs: int = 0
    note: str = ""
    ratio: float | None = field(default=None)

    def __post_init__(self) -> None:
        if self.ratio is None and self.median_s is not None and self.baseline_s:
            self.ratio = self.median_s / self.baseline_s


@dataclass(frozen=True)
class ChildResult:
    """A finished child process: wall time, peak RSS and what it wrote to its result file."""

    seconds: float
    peak_mib: float
    returncode: int
    output: Any
    stderr: str


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(values))


def run_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    stdout_path: Path | None = None,
) -> ChildResult:
    """Run ``argv`` in a fresh process; its wall time and its own peak RSS (``wait4``).

    The child may write JSON to the file named by ``$BENCH_RESULT``; it comes back as
    ``output``. stdout goes to ``stdout_path`` (else it is discarded); stderr is kept for
    errors.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result_path = Path(tmp) / "result.json"
        stderr_path = Path(tmp) / "stderr.txt"
        child_env = {**os.environ, **(env or {}), "BENCH_RESULT": str(result_path)}
        out_path = stdout_path or Path(os.devnull)
        with stderr_path.open("wb") as stderr, out_path.open("wb") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                list(argv), env=child_env, cwd=cwd or ROOT, stdout=out, stderr=stderr
            )
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err = stderr_path.read_text(errors="replace")
        if check and process.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}:\n{err[-4000:]}")
        output = json.loads(result_path.read_text()) if result_path.exists() else None
    # ru_maxrss is in KiB on Linux.
    return ChildResult(seconds, usage.ru_maxrss / 1024, process.returncode, output, err)


# ---------------------------------------------------------------------------------------------
# Inside a worker process
# ---------------------------------------------------------------------------------------------


def write_result(data: Any) -> None:
    """Hand ``data`` (JSON) back to the parent (see ``run_child``)."""
    Path(os.environ["BENCH_RESULT"]).write_text(json.dumps(data))


def reset_peak_rss() -> None:
    """Reset this process's RSS high-water mark (Linux >= 4.0: ``clear_refs`` 5)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def peak_rss_mib() -> float:
    """This process's RSS high-water mark (VmHWM) in MiB."""
    return _status_kib("VmHWM") / 1024


def rss_mib() -> float:
    """This process's current RSS in MiB."""
    return _status_kib("VmRSS") / 1024


# ---------------------------------------------------------------------------------------------
# Demo data and configs
# ---------------------------------------------------------------------------------------------


def demo_data_dir(scale: float) -> Path:
    """Demo warehouse and CRM at ``scale`` under bench/.cache, generated once (in a child)."""
    folder = CACHE_DIR / f"demo_scale_{scale:g}"
    done = folder / "done"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys; from pathlib import Path;"
            "from playbook_assets.demo.generator import write_demo_crm, write_demo_warehouse;"
            "d = Path(sys.argv[1]); s = float(sys.argv[2]);"
            "write_demo_warehouse(d / 'warehouse.duckdb', s);"
            "write_demo_crm(d / 'demo_crm.duckdb', s)"
        )
        run_child([PYTHON, "-c", code, str(folder), str(scale)])
        done.write_text("ok\n")
    return folder


def write_config(folder: Path, data_dir: Path, *, artifacts: bool = True) -> Path:
    """A config file in ``folder`` using the demo data in ``data_dir``; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "playbooks").mkdir(exist_ok=True)
    path = folder / "playbook-executor.yaml"
    path.write_text(
        "playbook_executor:\n"
        "  defaults: {data_warehouse: duckdb, crm: demo}\n"
        "  connections:\n"
        f"    duckdb: {{database: {data_dir / 'warehouse.duckdb'}, demo_data: true}}\n"
        f"    demo: {{database: {data_dir / 'demo_crm.duckdb'}}}\n"
        f"  artifacts: {{enabled: {'true' if artifacts else 'false'},"
        f" directory: {folder / 'artifacts'}}}\n"
    )
    return path


def dagster_home(folder: Path) -> Path:
    """A fresh DAGSTER_HOME in ``folder`` with the project's instance settings."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", folder / "dagster.yaml")
    return folder


def fmt_seconds(value: float | None) -> str:
    """Seconds for the table (ms below one second)."""
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
