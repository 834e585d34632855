"""Benchmark: a filter and an aggregate over a 5M-row warehouse step on PostgreSQL, pushed
down (the step a view) against the same playbook pulling the rows (the step a table).

A throwaway PostgreSQL server (``standins/postgres_server.py``) holds ``bench.deals``, made by
``generate_series`` on the server. Each run is ``run_playbook_locally`` in this process, the
two playbooks interleaved. Data moved is what the warehouse sent: pulling, the query step's
rows; pushed down, the two transforms' results (a view's column probe has no rows). Both
runs' aggregate and filter results are compared, value for value.
"""

from __future__ import annotations

import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from bench.common import Options, Row, median

ROWS = 5_000_000
# Pushed down: at least this many times less data moved (bytes and rows).
TARGET_LESS_DATA = 10.0

PLAYBOOK = """
playbook:
  id: deals_{kind}
  name: Deals ({kind})
  steps:
    - id: deals
      type: query
      materialize: {kind}
      config: {{template: "SELECT id, account_id, stage, amount FROM bench.deals"}}
    - id: by_stage
      type: aggregate
      config:
        input: "${{steps.deals}}"
        group_by: [stage]
        metrics:
          - {{name: total, expression: "SUM(amount)"}}
          - {{name: deals, expression: "COUNT(*)"}}
          - {{name: won_big, expression: "COUNT(*) WHERE amount > 900"}}
    - id: big_won
      type: filter
      config: {{input: "${{steps.deals}}", condition: "stage = 'won' AND amount > 990"}}
"""
CREATE = f"""
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.deals;
CREATE TABLE bench.deals AS
SELECT g::bigint AS id, g % 100000 AS account_id,
       (ARRAY['new', 'open', 'won', 'lost'])[1 + g % 4] AS stage,
       (((g::bigint * 7919) % 100000) / 100.0)::numeric(12, 2) AS amount
FROM generate_series(1, {ROWS}) AS g;
ANALYZE bench.deals;
"""


def _moved(run: Any, names: list[str]) -> tuple[int, int]:
    """Rows and Arrow bytes of the named results."""
    tables = [run.table(name) for name in names]
    return sum(t.num_rows for t in tables), sum(t.nbytes for t in tables)


def _sorted(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted((tuple(row.values()) for row in table.to_pylist()), key=repr)


def run(options: Options) -> list[Row]:
    """The pushed-down and the pulling runs, interleaved; medians and ratios."""
    from playbook_assets.app.local import run_playbook_locally
    from playbook_assets.connections.warehouses.postgres import PostgresWarehouse
    from playbook_assets.core.catalog import load_playbook_file
    from playbook_assets.core.config import load_config_file
    from standins.postgres_server import start_server, stop_server

    server = start_server()
    try:
        settings = {"host": server.host, "port": server.port, "user": "postgres"}
        writer = PostgresWarehouse(**settings, database="postgres", allow_writes=True)
        for statement in filter(str.strip, CREATE.split(";")):
            writer.run_query(statement)
        with tempfile.TemporaryDirectory(prefix="bench-pushdown-") as folder:
            root = Path(folder)
            config_path = root / "playbook-executor.yaml"
            connection = {"type": "postgres", **settings, "database": "postgres"}
            body = {
                "defaults": {"data_warehouse": "pg", "crm": "pg"},
                "connections": {"pg": connection},
                "execution": {"timeout_seconds": 1200},
            }
            config_path.write_text(yaml.safe_dump({"playbook_executor": body}))
            config = load_config_file(config_path)
            loaded = {}
            for kind in ("view", "table"):
                path = root / f"{kind}.yaml"
                path.write_text(textwrap.dedent(PLAYBOOK.format(kind=kind)).lstrip())
                loaded[kind] = load_playbook_file(path, config)
            times: dict[str, list[float]] = {"view": [], "table": []}
            last: dict[str, Any] = {}
            for _ in range(options.repeats(5, 3)):
                for kind in ("view", "table"):
                    started = time.perf_counter()
                    result = run_playbook_locally(loaded[kind], config)
                    times[kind].append(time.perf_counter() - started)
                    if result.report["status"] != "success":
                        raise RuntimeError(f"the {kind} run failed: {result.report}")
                    last[kind] = result
    finally:
        stop_server(server)

    pushed, pulled = last["view"], last["table"]
    ran_in = {step["step_id"]: step.get("ran_in") for step in pushed.report["steps"]}
    if ran_in["by_stage"] != "warehouse pg" or ran_in["big_won"] != "warehouse pg":
        raise RuntimeError(f"the transforms were not pushed down: {ran_in}")
    identical = pushed.table("by_stage").to_pylist() == pulled.table("by_stage").to_pylist()
    identical = identical and _sorted(pushed.table("big_won")) == _sorted(pulled.table("big_won"))
    pushed_rows, pushed_bytes = _moved(pushed, ["by_stage", "big_won"])
    pulled_rows, pulled_bytes = _moved(pulled, ["deals"])
    less_bytes, less_rows = pulled_bytes / pushed_bytes, pulled_rows / pushed_rows
    pushed_s, pulled_s = median(times["view"]), median(times["table"])
    passed = (
        identical
        and less_bytes >= TARGET_LESS_DATA
        and less_rows >= TARGET_LESS_DATA
        and pushed_s < pulled_s
    )
    note = (
        f"data moved: {pushed_rows:,} rows / {pushed_bytes / 2**20:.2f} MiB pushed down vs "
        f"{pulled_rows:,} rows / {pulled_bytes / 2**20:.1f} MiB pulled ({less_rows:,.0f}x fewer "
        f"rows, {less_bytes:,.0f}x fewer bytes); results identical: {identical}"
    )
    return [
        Row(
            "pushdown",
            f"filter + aggregate over {ROWS / 1e6:.0f}M rows on PostgreSQL, pushed down",
            pushed_s,
            "same playbook pulling the rows",
            pulled_s,
            f">= {TARGET_LESS_DATA:.0f}x less data, faster, identical",
            passed,
            runs=len(times["view"]),
            note=note,
        )
    ]
