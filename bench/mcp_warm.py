"""Benchmark: a warm ``run_playbook`` through the MCP server (demo data, scale 1).

``playbook mcp`` is started once over stdio with the SDK's client, as an agent's client
starts it (temporary DAGSTER_HOME with the project's settings); one call warms it up (imports,
the Dagster instance, the playbook's definitions), then N calls of ``run_playbook`` for
``presales_analysis`` are timed from the client, call sent to report received. The baseline
is the same steps' own work in the same runs: the sum of each step's ``execution_time_ms``
in the report (rendering, sending, reading the result as Arrow). The difference is what the
server, Dagster's run (events, run record, artifacts, the report) and the protocol add.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bench.common import ROOT, Options, Row, dagster_home, demo_data_dir, median, write_config

PLAYBOOK = "presales_analysis"
TARGET_OVERHEAD_S = 0.150


async def _calls(server: StdioServerParameters, repeats: int) -> list[tuple[float, float]]:
    """(seconds from the client, the steps' own seconds) of each timed call."""
    timings: list[tuple[float, float]] = []
    async with Client(server, read_timeout_seconds=600) as client:
        for index in range(repeats + 1):
            started = time.perf_counter()
            result = await client.call_tool("run_playbook", {"playbook_id": PLAYBOOK})
            elapsed = time.perf_counter() - started
            report: Any = result.structured_content
            if result.is_error or report is None or report["status"] != "success":
                raise RuntimeError(f"run failed: {result.content}")
            if index == 0:
                continue  # warm-up: imports, instance, definitions
            own = sum(step["execution_time_ms"] for step in report["steps"]) / 1000
            timings.append((elapsed, own))
    return timings


def run(options: Options) -> list[Row]:
    """One row: the warm MCP call against the steps' own work."""
    repeats = options.repeats(9, 5)
    data = demo_data_dir(1)
    command = shutil.which("playbook", path=str(ROOT / ".venv" / "bin"))
    if command is None:
        raise RuntimeError("no playbook command in .venv/bin: run scripts/install")
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        config = write_config(Path(tmp) / "config", data)
        home = dagster_home(Path(tmp) / "home")
        server = StdioServerParameters(
            command=command,
            args=["mcp", "--config", str(config)],
            env={**os.environ, "DAGSTER_HOME": str(home)},
            cwd=tmp,
        )
        timings = anyio.run(_calls, server, repeats)
    call_s = median([call for call, _ in timings])
    own_s = median([own for _, own in timings])
    overheads = sorted((call - own) * 1000 for call, own in timings)
    overhead_s = median(overheads) / 1000
    return [
        Row(
            "MCP warm run",
            f"run_playbook {PLAYBOOK}, stdio, warm server",
            call_s,
            "the steps' own time (report)",
            own_s,
            f"overhead <= {TARGET_OVERHEAD_S * 1000:.0f} ms",
            overhead_s <= TARGET_OVERHEAD_S,
            None,
            len(timings),
            f"overhead median {overhead_s * 1000:.0f} ms "
            f"(min {overheads[0]:.0f}, max {overheads[-1]:.0f}); no process start, no imports",
        )
    ]
