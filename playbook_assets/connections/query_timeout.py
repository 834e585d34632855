"""Time limits for queries on an in-process DuckDB connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def interrupt_after(
    connection: duckdb.DuckDBPyConnection, timeout_seconds: float | None
) -> Iterator[threading.Event]:
    """Interrupt the connection's running query once ``timeout_seconds`` have passed.

    Yields an event that is set when the interruption happened, so the caller can tell a
    timeout from any other DuckDB error.
    """
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        connection.interrupt()

    timer = threading.Timer(timeout_seconds, interrupt) if timeout_seconds else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield timed_out
    finally:
        if timer is not None:
            timer.cancel()
