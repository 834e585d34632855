"""Benchmark 3: per-step overhead of a ``presales_analysis`` run (demo data, scale 1).

One fresh worker process (temporary DAGSTER_HOME with the project's settings) runs the
playbook through ``playbook_assets.app.runner.run_playbook`` (what ``playbook run`` does) once to
warm up, then N times, and reads for each step its own time from the run report
(``execution_time_ms``: rendering, sending, reading the result as Arrow, metadata), and the
duration of the playbook's op (Dagster's one step for the whole playbook: every step, the
I/O manager writing each result, event writes and the report). The same work is then done
directly on DuckDB: the search step's SQL as the demo CRM builds it, the query step's SQL
(its list of account ids registered as an Arrow table, as the DuckDB warehouse does) rendered by
``playbook_assets.core.steps.render_query`` (checked equal to the SQL in the run's materialization
metadata), and the join as one hand-written DuckDB statement over the same Arrow tables.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    Options,
    Row,
    dagster_home,
    demo_data_dir,
    median,
    peak_rss_mib,
    run_child,
    write_config,
    write_result,
)

PLAYBOOK = "presales_analysis"


def _worker(config_path: str, repeats: int) -> dict[str, Any]:
    import dagster as dg
    import duckdb
    import pyarrow as pa

    from playbook_assets.app.runner import RunRequest, run_playbook
    from playbook_assets.connections.crm.demo import build_search_query, object_columns
    from playbook_assets.core.catalog import load_catalog
    from playbook_assets.core.config import load_config
    from playbook_assets.core.parameters import resolve_parameters
    from playbook_assets.core.references import ResolutionContext
    from playbook_defs import TEMPLATES_DIR

    config = load_config(config_path)
    loaded = load_catalog(config, [TEMPLATES_DIR]).get(PLAYBOOK)
    instance = dg.DagsterInstance.get()
    request = RunRequest(loaded=loaded, config=config)

    report_ms: dict[str, list[float]] = {}
    dagster_s: dict[str, list[float]] = {}
    run_s: list[float] = []
    last_run_id = ""
    for index in range(repeats + 1):
        started = time.perf_counter()
        report = run_playbook(request, instance)
        elapsed = time.perf_counter() - started
        if report["status"] != "success":
            raise RuntimeError(f"run failed: {report}")
        if index == 0:
            continue  # warm-up
        run_s.append(elapsed)
        last_run_id = report["dagster_run_id"]
        for step in report["steps"]:
            report_ms.setdefault(step["step_id"], []).append(step["execution_time_ms"])
        for stats in instance.get_run_step_stats(last_run_id):
            if stats.start_time is not None and stats.end_time is not None:
                dagster_s.setdefault(stats.step_key, []).append(stats.end_time - stats.start_time)

    # The SQL the last run sent, from its materialization metadata.
    record = instance.get_latest_materialization_event(dg.AssetKey([PLAYBOOK, "account_health"]))
    assert record is not None and record.asset_materialization is not None
    stored_sql = str(record.asset_materialization.metadata["sql"].value)

    spec = loaded.spec
    steps = {step.id: step for step in spec.steps}
    parameters = resolve_parameters(spec, {})
    crm_db = config.connections["demo"].settings["database"]
    warehouse_db = config.connections["duckdb"].settings["database"]

    from playbook_assets.core.steps.query import render_query
    from playbook_assets.core.steps.search import search_request

    search = search_request(steps["open_deals"], ResolutionContext(parameters, {}))  # type: ignore[arg-type]

    def direct_search() -> Any:
        with duckdb.connect(crm_db, read_only=True) as con:
            sql, params = build_search_query("deals", object_columns(con, "deals"), search)
            return con.sql(sql, params=params).to_arrow_table()

    deals = direct_search()
    rendered = render_query(
        steps["account_health"],  # type: ignore[arg-type]
        spec.parameters,
        ResolutionContext(parameters, {"open_deals": deals}),
        "duckdb",
        bind_lists=True,
    )
    query_sql = rendered.sql

    def direct_query() -> Any:
        with duckdb.connect(warehouse_db, read_only=True) as con:
            for name, values in rendered.lists.items():
                con.register(name, pa.table({"value": values}))
            return con.sql(query_sql).to_arrow_table()

    accounts = direct_query()

    def direct_join() -> Any:
        with duckdb.connect() as con:
            con.register("l", deals)
            con.register("r", accounts)
            return con.sql(
                "SELECT l.*, r.* FROM l LEFT JOIN r ON l.company_id = r.account_id"
            ).to_arrow_table()

    direct: dict[str, list[float]] = {"open_deals": [], "account_health": [], "combine_results": []}
    for _ in range(repeats):
        for name, function in (
            ("open_deals", direct_search),
            ("account_health", direct_query),
            ("combine_results", direct_join),
        ):
            started = time.perf_counter()
            function()
            direct[name].append(time.perf_counter() - started)
    return {
        "report_ms": report_ms,
        "dagster_s": dagster_s,
        "direct_s": direct,
        "run_s": run_s,
        "sql_matches": query_sql.strip() in stored_sql,
        "peak_mib": peak_rss_mib(),
    }


def run(options: Options) -> list[Row]:
    """One row per step: Dagster's step duration against the same work on DuckDB."""
    repeats = options.repeats(7, 5)
    data = demo_data_dir(1)
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        config = write_config(Path(tmp) / "config", data)
        home = dagster_home(Path(tmp) / "home")
        child = run_child(
            [PYTHON, "-m", "bench.step_overhead", str(config), str(repeats)],
            env={"DAGSTER_HOME": str(home)},
        )
    out = child.output
    rows: list[Row] = []
    total_direct = 0.0
    for name, own_ms in out["report_ms"].items():
        seconds = median(own_ms) / 1000
        direct = median(out["direct_s"][name]) if name in out["direct_s"] else None
        total_direct += direct or 0.0
        note = "step's own time (report)"
        if direct is not None:
            note += f"; overhead {(seconds - direct) * 1000:.1f} ms"
        if name == "account_health":
            note += "; SQL " + ("= run's metadata" if out["sql_matches"] else "DIFFERS from run's")
        rows.append(
            Row(
                "per-step overhead (presales_analysis)",
                f"step {name}",
                seconds,
                "same SQL on DuckDB" if direct is not None else "-",
                direct,
                "reported",
                None,
                None,
                len(own_ms),
                note,
            )
        )
    op_seconds = median(out["dagster_s"][PLAYBOOK])
    rows.append(
        Row(
            "per-step overhead (presales_analysis)",
            "playbook op (all steps, artifacts, events, report)",
            op_seconds,
            "the 3 steps on DuckDB",
            total_direct,
            "reported",
            None,
            None,
            len(out["dagster_s"][PLAYBOOK]),
            "Dagster's duration of the playbook's one step",
        )
    )
    rows.append(
        Row(
            "per-step overhead (presales_analysis)",
            "whole run in process (run_playbook)",
            median(out["run_s"]),
            "the 3 steps on DuckDB",
            total_direct,
            "reported",
            None,
            out["peak_mib"],
            len(out["run_s"]),
            "includes building the definitions and the run's start and end events",
        )
    )
    return rows


if __name__ == "__main__":
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="bench-home-"))
    write_result(_worker(sys.argv[1], int(sys.argv[2])))
