"""Watching and stopping a run from outside it: the caller that starts a run in this process
learns as each step finishes and can ask the run to stop.

A run is known by the id its results are named by (the Dagster run id when Dagster runs it).
The run tells ``step_finished`` when a step is over and asks ``stop_requested`` before it
starts the next one; a stopped run starts no more steps (each is skipped, with the reason),
while the steps already running finish. Nothing here knows Dagster or MCP.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# step id, its status (success, cached, error, skipped), its row count (None unless success).
StepFinished = Callable[[str, str, int | None], None]
STOPPED_REASON = "the run was cancelled"


@dataclass
class RunWatch:
    """What the caller of a run follows: its step callback, and whether it asked to stop."""

    on_step_finished: StepFinished
    stop: threading.Event = field(default_factory=threading.Event)


_lock = threading.Lock()
_watches: dict[str, RunWatch] = {}


@contextlib.contextmanager
def watch_run(run_id: str, on_step_finished: StepFinished) -> Iterator[RunWatch]:
    """Follow the run ``run_id`` while the block lasts (``RunWatch.stop.set()`` stops it)."""
    watch = RunWatch(on_step_finished)
    with _lock:
        _watches[run_id] = watch
    try:
        yield watch
    finally:
        with _lock:
            _watches.pop(run_id, None)


def step_finished(run_id: str, step_id: str, status: str, rows: int | None) -> None:
    """Tell the run's watcher, if any, that a step is over."""
    with _lock:
        watch = _watches.get(run_id)
    if watch is not None:
        watch.on_step_finished(step_id, status, rows)


def stop_requested(run_id: str) -> bool:
    """Whether the run's watcher asked the run to stop."""
    with _lock:
        watch = _watches.get(run_id)
    return watch is not None and watch.stop.is_set()
