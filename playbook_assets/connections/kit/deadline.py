"""The time limit of one call to a connection, the same way for every backend.

A ``Deadline`` is the step's ``timeout_seconds`` seen from inside a backend: how long is left,
the time limit of the next request (a backend's own per-request limit, cut to what is left), and
the ``StepTimeoutError`` to raise when it has passed (with the step-timeout hint, written here
once). ``cancel_after`` is the one timer that cancels a running query from another thread
(DuckDB's interrupt, a driver's cancel). The limit of the whole step, which leaves a source
that ignores all of this behind, is the step's own (``call_within_limit`` in the core).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import duckdb

from playbook_assets.core.errors import STEP_TIMEOUT_HINT, StepTimeoutError


def step_timeout(message: str, *, also: str | None = None) -> StepTimeoutError:
    """The error of a call cut off at the step's time limit; ``also`` names another fix
    (``narrow the search``)."""
    hint = f"{STEP_TIMEOUT_HINT}, or {also}" if also else STEP_TIMEOUT_HINT
    return StepTimeoutError(message, hint=hint)


def limit_text(timeout_seconds: float | None) -> str:
    """``3 s``, or ``its time limit`` when there is none to name."""
    return f"{timeout_seconds:g} s" if timeout_seconds else "its time limit"


@dataclass
class Deadline:
    """When a call must be over (monotonic clock), and the error that says it is."""

    timeout_seconds: float | None
    # The backend's words for a call cut off at the limit (see ``step_timeout``).
    error: Callable[[], StepTimeoutError]
    at: float | None = field(init=False)

    def __post_init__(self) -> None:
        self.at = time.monotonic() + self.timeout_seconds if self.timeout_seconds else None

    def remaining(self) -> float | None:
        """Seconds left (never below 0), or None without a limit."""
        if self.at is None:
            return None
        return max(0.0, self.at - time.monotonic())

    def expired(self, margin: float = 0.0) -> bool:
        """Whether the limit has passed (or will within ``margin`` seconds)."""
        return self.at is not None and time.monotonic() + margin >= self.at

    def allows(self, delay: float) -> bool:
        """Whether waiting ``delay`` seconds still ends before the limit."""
        return self.at is None or time.monotonic() + delay < self.at

    def request_timeout(self, limit: float) -> float:
        """The time limit of the next request: ``limit``, or what is left when less; the
        deadline's error when nothing is left."""
        left = self.remaining()
        if left is None:
            return limit
        if left <= 0:
            raise self.error()
        return min(limit, left)

    def check(self) -> None:
        """Raise the deadline's error when the limit has passed."""
        if self.expired():
            raise self.error()


@contextmanager
def cancel_after(
    timeout_seconds: float | None, cancel: Callable[[], None]
) -> Iterator[threading.Event]:
    """Call ``cancel`` from a timer thread once ``timeout_seconds`` have passed (not at all
    without a limit).

    Yields an event that is set when the timer fired, so the caller can tell its own
    cancellation from any other failure of the call.
    """
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        cancel()

    timer = threading.Timer(timeout_seconds, fire) if timeout_seconds else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield fired
    finally:
        if timer is not None:
            timer.cancel()


def interrupt_after(
    connection: duckdb.DuckDBPyConnection, timeout_seconds: float | None
) -> AbstractContextManager[threading.Event]:
    """``cancel_after`` with DuckDB's ``interrupt``: the running query stops inside DuckDB."""
    return cancel_after(timeout_seconds, connection.interrupt)
