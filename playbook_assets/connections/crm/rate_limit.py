"""A CRM account's request rate, shared by every process that uses the account.

Concurrent runs (separate processes: the run launcher starts one per run) must together stay
under a vendor's per-account limits, so the limits are kept in a pyrate-limiter SQLite bucket
in a file every process of the deployment sees (the Dagster home by default), locked across
processes by pyrate-limiter's file lock. The bucket is a sliding log: at most ``requests``
request starts in any window of ``seconds`` for each limit, each window stretched by
``_MARGIN`` so that network jitter between the start of a request and its arrival cannot put
one more into the vendor's window.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pyrate_limiter import Limiter, Rate, SQLiteBucket

FILE_NAME = "crm_rate_limits.sqlite"
_MARGIN = 0.95
# (requests, seconds) limits of an account, e.g. [(75, 1), (700, 60)].
Limits = Sequence[tuple[float, float]]
_limiters: dict[tuple[str, str, tuple[tuple[int, int], ...]], Limiter] = {}
_limiters_lock = threading.Lock()


def rate_limit_file(configured: str | None, dagster_home: str | None) -> Path:
    """Where the shared bucket lives: the configured file, else the Dagster home of the run,
    else ``$DAGSTER_HOME``, else the system's temporary folder."""
    if configured:
        return Path(configured).expanduser()
    home = dagster_home or os.environ.get("DAGSTER_HOME")
    return Path(home or tempfile.gettempdir()) / FILE_NAME


def account_key(*parts: str) -> str:
    """A bucket name for an account (a hash of its URL and credential; never the secret)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def acquire(path: Path, key: str, limits: Limits, deadline: float | None) -> bool:
    """Wait for a request slot of the account ``key`` under every limit; False when
    ``deadline`` (monotonic) would pass first."""
    limiter = _limiter(path, key, _rates(limits))
    if deadline is None:
        return bool(limiter.try_acquire(key))
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    return bool(limiter.try_acquire(key, timeout=remaining))


def _rates(limits: Limits) -> tuple[tuple[int, int], ...]:
    """(count, window in ms) per limit; a fractional count (2.5/s) becomes 1 per 0.4 s."""
    rates = []
    for requests, seconds in limits:
        window_ms = seconds * 1000 / _MARGIN
        if requests == int(requests):
            rates.append((int(requests), int(window_ms)))
        else:
            rates.append((1, int(window_ms / requests)))
    return tuple(sorted(rates, key=lambda rate: rate[1]))


def _limiter(path: Path, key: str, rates: tuple[tuple[int, int], ...]) -> Limiter:
    cache_key = (str(path), key, rates)
    with _limiters_lock:
        found = _limiters.get(cache_key)
        if found is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # One table per account and limits: the bucket counts every row of its table.
            suffix = hashlib.sha256(repr(rates).encode()).hexdigest()[:8]
            bucket = SQLiteBucket.init_from_file(
                [Rate(count, window) for count, window in rates],
                table=f"rate_{key}_{suffix}",
                db_path=str(path),
                use_file_lock=True,
            )
            found = Limiter(bucket, buffer_ms=10)
            _limiters[cache_key] = found
        return found
