"""Benchmark 5: artifact write and read of a 10M-row result.

Product: ``playbook_assets.core.artifacts.encode_table`` (zstd Parquet in memory plus its sha256)
then ``atomic_write_bytes`` (temporary file, fsync, rename), and ``pq.read_table`` of the file.
Baseline, interleaved in the same fresh process: ``pq.write_table(table, path,
compression="zstd")`` and ``pq.read_table``. Files go to a temporary folder under
bench/.cache (the project's disk, as the artifact store would be).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    CACHE_DIR,
    PYTHON,
    Options,
    Row,
    median,
    peak_rss_mib,
    reset_peak_rss,
    run_child,
    write_result,
)

ROWS = 10_000_000
TARGET_RATIO = 1.2


def _worker(rows: int, repeats: int, folder: str) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.data import deals_and_accounts
    from playbook_assets.core.artifacts import atomic_write_bytes, encode_table

    deals, accounts = deals_and_accounts(rows)
    # A 10M x 12 result shaped like a join output (what a step stores).
    table = pa.Table.from_arrays(
        [*deals.columns, *accounts.columns[1:]],
        names=[*deals.column_names, *accounts.column_names[1:]],
    )
    base = Path(folder)
    out: dict[str, Any] = {"table_mib": table.nbytes / 2**20}
    series: dict[str, list[float]] = {}
    peaks: dict[str, list[float]] = {}

    def measure(name: str, function: Any) -> None:
        reset_peak_rss()
        started = time.perf_counter()
        function()
        series.setdefault(name, []).append(time.perf_counter() - started)
        peaks.setdefault(name, []).append(peak_rss_mib())

    for index in range(repeats):
        product_path = base / f"product_{index}.parquet"
        plain_path = base / f"pyarrow_{index}.parquet"

        def product_write(path: Path = product_path) -> None:
            encoded = encode_table(table)
            atomic_write_bytes(path, encoded.parquet, overwrite=False)

        def plain_write(path: Path = plain_path) -> None:
            pq.write_table(table, path, compression="zstd")

        writes = [("product_write", product_write), ("pyarrow_write", plain_write)]
        reads = [
            ("product_read", lambda path=product_path: pq.read_table(path)),
            ("pyarrow_read", lambda path=plain_path: pq.read_table(path)),
        ]
        # Alternate which goes first: the second of a pair finds memory the first freed.
        for name, function in writes if index % 2 == 0 else writes[::-1]:
            measure(name, function)
        # The first read after writing pays for growing Arrow's memory pool again (about
        # 0.8 s at this size, whichever file it reads): an untimed read takes it.
        pq.read_table(plain_path)
        for name, function in reads if index % 2 == 0 else reads[::-1]:
            measure(name, function)
        out["product_mib"] = product_path.stat().st_size / 2**20
        out["pyarrow_mib"] = plain_path.stat().st_size / 2**20
        product_path.unlink()
        plain_path.unlink()
    out["s"] = series
    out["peak"] = peaks
    return out


def run(options: Options) -> list[Row]:
    """Write, read and both, against pyarrow's own zstd Parquet write."""
    repeats = options.repeats(5, 2)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="artifacts-", dir=CACHE_DIR) as tmp:
        child = run_child([PYTHON, "-m", "bench.artifacts", str(ROWS), str(repeats), tmp])
    out = child.output
    s = {name: median(values) for name, values in out["s"].items()}
    peak = {name: max(values) for name, values in out["peak"].items()}
    rows: list[Row] = []
    for label, product, baseline in (
        ("write", s["product_write"], s["pyarrow_write"]),
        ("read", s["product_read"], s["pyarrow_read"]),
        (
            "write + read",
            s["product_write"] + s["product_read"],
            s["pyarrow_write"] + s["pyarrow_read"],
        ),
    ):
        key = "product_" + label.split()[0]
        rows.append(
            Row(
                "artifact store (10M rows)",
                label,
                product,
                "pyarrow write_table zstd" if label != "read" else "pq.read_table of pyarrow file",
                baseline,
                f"<= {TARGET_RATIO:g}x",
                product <= TARGET_RATIO * baseline,
                peak[key] if label != "write + read" else None,
                repeats,
                f"table {out['table_mib']:.0f} MiB in memory; file {out['product_mib']:.0f} MiB"
                f" (pyarrow {out['pyarrow_mib']:.0f} MiB); pyarrow write peak"
                f" {peak['pyarrow_write']:.0f} MiB"
                if label == "write"
                else "",
            )
        )
    return rows


if __name__ == "__main__":
    write_result(_worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
