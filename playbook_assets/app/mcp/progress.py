"""A run started by an MCP tool call: one progress notification per finished step, and
cancellation.

The run is a Dagster run in this process, on a thread of its own (Dagster runs it
synchronously). Its steps tell ``core.run_control`` as they finish; this side forwards each to
the client as a progress notification. When the client cancels the call, the run is asked to
stop: it starts no further step (each is reported skipped, "the run was cancelled"), the steps
already running finish, and the call ends once the run has, so the run and its record are
never left half done.
"""

from __future__ import annotations

import queue
import threading
import uuid
from typing import Any

import anyio
from mcp.server.mcpserver import Context

from playbook_assets.app.mcp.schemas import RunReport
from playbook_assets.app.mcp.service import PlaybookService
from playbook_assets.app.runner import RunRequest
from playbook_assets.core.run_control import watch_run

# How often the call looks for finished steps: small beside a step's own cost.
POLL_SECONDS = 0.01


def new_run_id() -> str:
    """A Dagster run id chosen before the run starts, so the run can be followed."""
    return str(uuid.uuid4())


async def run_with_progress(
    service: PlaybookService, request: RunRequest, ctx: Context[Any, Any]
) -> RunReport:
    """Run ``request`` (which must carry its ``run_id``), reporting each finished step."""
    assert request.run_id is not None
    total = len(request.loaded.spec.steps)
    finished: queue.SimpleQueue[tuple[str, str, int | None]] = queue.SimpleQueue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["report"] = service.run(request)
        except BaseException as e:  # handed to the caller's task below
            outcome["error"] = e

    with watch_run(request.run_id, lambda *step: finished.put(step)) as watch:
        thread = threading.Thread(target=work, name=f"playbook {request.loaded.id}", daemon=True)
        thread.start()
        done = 0
        try:
            while thread.is_alive():
                await anyio.sleep(POLL_SECONDS)
                done = await _forward(finished, ctx, done, total)
        except anyio.get_cancelled_exc_class():
            watch.stop.set()
            with anyio.CancelScope(shield=True):
                while thread.is_alive():
                    await anyio.sleep(POLL_SECONDS)
            raise
        await _forward(finished, ctx, done, total)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["report"]


async def _forward(
    finished: queue.SimpleQueue[tuple[str, str, int | None]],
    ctx: Context[Any, Any],
    done: int,
    total: int,
) -> int:
    """Send a progress notification for each step finished since the last call."""
    while not finished.empty():
        step_id, status, rows = finished.get()
        done += 1
        detail = f", {rows:,} rows" if rows is not None else ""
        await ctx.report_progress(done, total, f"step {step_id}: {status}{detail}")
    return done
