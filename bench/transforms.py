"""Benchmark 4: join, aggregate and filter at 1M and 10M rows.

Product: ``playbook_assets.core.transforms`` (``join_tables``, ``aggregate_table``,
``filter_table``) on Arrow tables. Baselines on the same Arrow tables, in the same process
and interleaved: one hand-written DuckDB statement returning Arrow (``to_arrow_table``,
a fresh in-memory connection per call, as the product opens one), and pandas
(merge / groupby / query on DataFrames converted beforehand, conversion not timed).
Each size runs in its own fresh process; peak RSS is measured per call (VmHWM reset first),
so it includes the inputs held by the process.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    PYTHON,
    Options,
    Row,
    median,
    reset_peak_rss,
    rss_mib,
    run_child,
    write_result,
)

SIZES = (1_000_000, 10_000_000)
TARGET_RATIO = 1.25
JOIN_ON = "company_id = account_id"
GROUP_BY = ("segment", "stage")
METRICS = (
    ("deals", "COUNT(*)"),
    ("total_amount", "SUM(amount)"),
    ("avg_amount", "AVG(amount)"),
    ("open_deals", "COUNT(*) WHERE is_open"),
)
CONDITION = "amount > 50000 AND stage IN ('qualified', 'decision')"


def _duckdb(sql: str, **tables: Any) -> Any:
    import duckdb

    with duckdb.connect() as con:
        for name, table in tables.items():
            con.register(name, table)
        return con.sql(sql).to_arrow_table()


def _variants(deals: Any, accounts: Any) -> dict[str, dict[str, Callable[[], Any]]]:
    from playbook_assets.core.transforms import aggregate_table, filter_table, join_tables

    deals_df = deals.to_pandas()
    accounts_df = accounts.to_pandas()
    return {
        "join": {
            "product": lambda: join_tables(deals, accounts, JOIN_ON, "left"),
            "duckdb": lambda: _duckdb(
                "SELECT d.*, a.* FROM d LEFT JOIN a ON d.company_id = a.account_id",
                d=deals,
                a=accounts,
            ),
            "pandas": lambda: deals_df.merge(
                accounts_df, how="left", left_on="company_id", right_on="account_id"
            ),
        },
        "aggregate": {
            "product": lambda: aggregate_table(deals, list(GROUP_BY), list(METRICS)),
            "duckdb": lambda: _duckdb(
                "SELECT segment, stage, COUNT(*) AS deals, SUM(amount) AS total_amount,"
                " AVG(amount) AS avg_amount, COUNT(*) FILTER (WHERE is_open) AS open_deals"
                " FROM t GROUP BY segment, stage ORDER BY 1, 2",
                t=deals,
            ),
            "pandas": lambda: deals_df.groupby(list(GROUP_BY), sort=True).agg(
                deals=("deal_id", "size"),
                total_amount=("amount", "sum"),
                avg_amount=("amount", "mean"),
                open_deals=("is_open", "sum"),
            ),
        },
        "filter": {
            "product": lambda: filter_table(deals, CONDITION),
            "duckdb": lambda: _duckdb(f"SELECT * FROM t WHERE {CONDITION}", t=deals),
            "pandas": lambda: deals_df.query(
                "amount > 50000 and stage in ['qualified', 'decision']"
            ),
        },
    }


def _worker(rows: int, repeats: int) -> dict[str, Any]:
    from bench.data import deals_and_accounts

    deals, accounts = deals_and_accounts(rows)
    variants = _variants(deals, accounts)
    out: dict[str, Any] = {"input_mib": (deals.nbytes + accounts.nbytes) / 2**20}
    for op, functions in variants.items():
        result: dict[str, Any] = {}
        for _ in range(repeats):
            for name, function in functions.items():
                before = rss_mib()
                reset_peak_rss()
                started = time.perf_counter()
                value = function()
                seconds = time.perf_counter() - started
                with open("/proc/self/status") as handle:
                    peak = next(int(x.split()[1]) for x in handle if x.startswith("VmHWM")) / 1024
                entry = result.setdefault(name, {"s": [], "peak": [], "extra": [], "rows": 0})
                entry["s"].append(seconds)
                entry["peak"].append(peak)
                entry["extra"].append(peak - before)
                entry["rows"] = len(value)
                del value
        out[op] = result
    return out


def run(options: Options) -> list[Row]:
    """Per operation and size: the product against raw DuckDB (target) and pandas (note)."""
    rows: list[Row] = []
    for size in SIZES:
        repeats = options.repeats(5, 3 if size < 10_000_000 else 2)
        child = run_child([PYTHON, "-m", "bench.transforms", str(size), str(repeats)])
        out = child.output
        label = f"{size // 1_000_000}M rows"
        for op in ("join", "aggregate", "filter"):
            result = out[op]
            product = median(result["product"]["s"])
            raw = median(result["duckdb"]["s"])
            pandas = median(result["pandas"]["s"])
            same_rows = result["product"]["rows"] == result["duckdb"]["rows"]
            rows.append(
                Row(
                    "transforms",
                    f"{op}, {label}",
                    product,
                    "raw DuckDB over Arrow",
                    raw,
                    f"<= {TARGET_RATIO:g}x raw DuckDB",
                    product <= TARGET_RATIO * raw,
                    max(result["product"]["peak"]),
                    repeats,
                    f"pandas {pandas:.3f} s ({pandas / raw:.1f}x raw, peak "
                    f"{max(result['pandas']['peak']):.0f} MiB); raw DuckDB peak "
                    f"{max(result['duckdb']['peak']):.0f} MiB; inputs {out['input_mib']:.0f} MiB"
                    + ("" if same_rows else "; ROW COUNTS DIFFER"),
                )
            )
    return rows


if __name__ == "__main__":
    write_result(_worker(int(sys.argv[1]), int(sys.argv[2])))
