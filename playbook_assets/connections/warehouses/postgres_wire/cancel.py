"""The client's side of a query's time limit: a timer that cancels the query shortly after the
limit, in case the server's own ``statement_timeout`` did not."""

from __future__ import annotations

import threading
import time

import psycopg

# The client-side guard cancels this long after the limit, so that the server's own
# statement_timeout (exact, and reported as such) normally comes first.
_CLIENT_GRACE_SECONDS = 0.5
_CANCEL_WAIT_SECONDS = 5.0


class CancelGuard:
    """Tracks the time limit of one query and cancels it from the client when it overruns."""

    def __init__(self, connection: psycopg.Connection, timeout_seconds: float | None) -> None:
        self.timeout_seconds = timeout_seconds
        self.fired = threading.Event()
        self._connection = connection
        self._deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        self._timer: threading.Timer | None = None
        if timeout_seconds:
            self._timer = threading.Timer(timeout_seconds + _CLIENT_GRACE_SECONDS, self._cancel)
            self._timer.daemon = True

    def _cancel(self) -> None:
        self.fired.set()
        try:
            self._connection.cancel_safe(timeout=_CANCEL_WAIT_SECONDS)
        except psycopg.Error:
            pass  # the connection is closing; closing it ends the query as well

    def expired(self) -> bool:
        """Whether the time limit has passed."""
        return self.fired.is_set() or (
            self._deadline is not None and time.monotonic() >= self._deadline
        )

    def __enter__(self) -> CancelGuard:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
