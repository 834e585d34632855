"""What one step does when it runs: prepare its request, execute it within its time limit,
retry transient failures with backoff, and fall back to a stored result when its source
cannot be reached.

The time limit (``timeout_seconds``) covers the whole step, retries included. Each source
enforces it itself (a query is cancelled on the server, an API response stops being read);
a source that does not (a read blocked on a FIFO, a server trickling its headers) is left
behind on its thread shortly after the limit, and the step fails all the same.

Text a failure carries from a service is redacted of every configured secret
(``core.redaction``) before it becomes a failure, a log line or metadata. Nothing here knows
Dagster: the run's environment (``RunEnvironment``) gives the connections, the stored results
the fallback may use and the log.
"""

from __future__ import annotations

import contextvars
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from playbook_assets.core.errors import (
    STEP_TIMEOUT_HINT,
    PlaybookError,
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.pushdown import prepare_step
from playbook_assets.core.redaction import redact
from playbook_assets.core.references import ResolutionContext
from playbook_assets.core.report import CACHED_AT_KEY, CACHED_RUN_KEY
from playbook_assets.core.result_tables import checked_result
from playbook_assets.core.steps.base import StepContext, StepRequest, StepServices
from playbook_assets.core.steps.registry import AnyStep, step_type

if TYPE_CHECKING:
    from playbook_assets.core.catalog import LoadedPlaybook

REQUEST_SHA256_KEY = "request_sha256"
ATTEMPTS_KEY = "attempts"
# Columns stored as their text because Parquet cannot hold their type: {column: why}.
AS_TEXT_KEY = "columns_as_text"
MAX_RETRY_DELAY_SECONDS = 30.0
# How long past its time limit a step whose source ignores the limit is still awaited: long
# enough for a source's own cancellation (and its clearer message) to come first.
TIME_LIMIT_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class ExecutionSettings:
    """How steps run (``execution`` in the configuration)."""

    retry_attempts: int = 2
    retry_base_delay_seconds: float = 0.5
    timeout_seconds: float = 300
    max_parallel_steps: int = 3


@dataclass(frozen=True)
class CachedResult:
    """A stored result reused when the source cannot be reached, with where it came from."""

    table: pa.Table
    metadata: dict[str, Any]


class RunLog(Protocol):
    """Where a run says what happens."""

    def info(self, message: str, /) -> None:
        """Progress."""
        ...

    def warning(self, message: str, /) -> None:
        """Something the run works around."""
        ...

    def error(self, message: str, /) -> None:
        """A failure."""
        ...


@dataclass(frozen=True)
class RunEnvironment:
    """What a run of a playbook has around it: its connections and sources, its settings,
    the stored results it may read and its log."""

    services: StepServices
    settings: ExecutionSettings
    log: RunLog
    # The latest stored result of a step for a partition (a step reads it when its upstream
    # is not in the run); raises a PlaybookError when there is none.
    stored_result: Callable[[str, str | None], pa.Table]
    # The latest stored result of a step and partition made by the same request
    # (fingerprint), for the cached fallback; None when there is none.
    cached_result: Callable[[str, str, str | None], CachedResult | None] = field(
        default=lambda step_id, fingerprint, partition: None
    )


class StepFailure(Exception):
    """A step failed; ``description`` is what the report and the log say (redacted)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True)
class StepRun:
    """What one execution of a step gave: its result and what to record about it."""

    table: pa.Table
    request: str | dict[str, Any] | None
    elapsed_ms: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # Read from a stored result (the source was unreachable).
    cached: bool = False


def execute_step(
    env: RunEnvironment,
    loaded: LoadedPlaybook,
    step: AnyStep,
    connection: str | None,
    inputs: Mapping[str, pa.Table],
    resolution: ResolutionContext,
    *,
    partition: str | None = None,
) -> StepRun:
    """Run one step (for one partition, or a range's values) and return its result.

    A transient failure (a source that times out, refuses or cannot be reached for a moment)
    is retried after an exponential, jittered delay, up to ``retry_attempts`` times; a CRM
    retries each of its requests within that budget itself and is not retried again. A
    source that stays unreachable falls back to the latest stored result of the same request
    for ``partition``. Raises ``StepFailure`` with the step's location otherwise.
    """
    settings = env.settings
    resolution = ResolutionContext(
        parameters=resolution.parameters, steps=inputs, partition=resolution.partition
    )
    location = loaded.step_location(step.id)
    behaviour = step_type(step)
    limit = step.timeout_seconds or settings.timeout_seconds
    deadline = time.monotonic() + limit
    attempt = 0
    while True:
        started = time.perf_counter()
        prepared: StepRequest | None = None
        try:
            # The first attempt has the whole limit; a retry, what is left of it.
            timeout = limit if attempt == 0 else round(max(0.1, deadline - time.monotonic()), 1)
            context = StepContext(loaded, connection, env.services, timeout)
            prepared = prepare_step(behaviour, step, context, resolution)
            checked = checked_result(call_within_limit(prepared.send, timeout, limit))
        except TransientStepError as e:  # SourceUnreachableError included
            e.at(location=location, step=step.id)
            retried = prepared is not None and prepared.retries_inside
            delay = _retry_delay(settings, attempt)
            if (
                attempt < settings.retry_attempts
                and not retried
                and time.monotonic() + delay < deadline
            ):
                env.log.warning(
                    redact(
                        f"{e}; retry {attempt + 1} of {settings.retry_attempts} in {delay:.1f} s"
                    )
                )
                time.sleep(delay)
                attempt += 1
                continue
            if not isinstance(e, SourceUnreachableError):
                raise StepFailure(redact(str(e))) from None
            return _cached_run(env, step.id, partition, prepared, e, started, attempt)
        except PlaybookError as e:
            e.at(location=location, step=step.id)
            raise StepFailure(redact(str(e))) from None
        except Exception as e:  # a defect, not a product error: say so, without secrets
            env.log.error(redact("".join(traceback.format_exception(e))))
            error = TerminalStepError(f"{type(e).__name__}: {e}", location=location, step=step.id)
            raise StepFailure(redact(str(error))) from None
        metadata: dict[str, Any] = {
            **prepared.metadata,
            REQUEST_SHA256_KEY: prepared.fingerprint,
            ATTEMPTS_KEY: attempt + 1,
            AS_TEXT_KEY: checked.as_text or None,
        }
        return StepRun(
            checked.table,
            prepared.request,
            (time.perf_counter() - started) * 1000,
            {name: value for name, value in metadata.items() if value is not None},
        )


def _cached_run(
    env: RunEnvironment,
    step_id: str,
    partition: str | None,
    prepared: StepRequest | None,
    error: SourceUnreachableError,
    started: float,
    attempt: int,
) -> StepRun:
    fingerprint = prepared.fingerprint if prepared is not None else None
    cached = env.cached_result(step_id, fingerprint, partition) if fingerprint else None
    if cached is None:
        raise StepFailure(
            redact(f"{error}; no stored result of this step for the same request to fall back on")
        )
    env.log.warning(
        redact(
            f"{error}; using the stored result of run {cached.metadata[CACHED_RUN_KEY]} "
            f"from {cached.metadata[CACHED_AT_KEY]}"
        )
    )
    return StepRun(
        cached.table,
        prepared.request if prepared is not None else None,
        (time.perf_counter() - started) * 1000,
        {**cached.metadata, REQUEST_SHA256_KEY: fingerprint, ATTEMPTS_KEY: attempt + 1},
        cached=True,
    )


def _retry_delay(settings: ExecutionSettings, attempt: int) -> float:
    """An exponential, jittered delay before trying a step again."""
    return min(
        MAX_RETRY_DELAY_SECONDS,
        settings.retry_base_delay_seconds * 2**attempt * random.uniform(0.5, 1.5),
    )


def call_within_limit(send: Callable[[], pa.Table], timeout: float, limit: float) -> pa.Table:
    """``send()``, unless it is still running ``TIME_LIMIT_GRACE_SECONDS`` after ``timeout``:
    then ``StepTimeoutError`` naming ``limit``, the step's time limit.

    ``send`` runs on a daemon thread of its own, so one that never returns (a read blocked
    on a FIFO) is left behind without holding up the run or the process's exit.
    """
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def target() -> None:
        try:
            outcome["table"] = send()
        except BaseException as e:  # handed to the waiting thread
            outcome["error"] = e
        finally:
            finished.set()

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(target,), daemon=True, name="step")
    worker.start()
    if not finished.wait(timeout + TIME_LIMIT_GRACE_SECONDS):
        raise StepTimeoutError(
            f"the step ran longer than its time limit of {limit:g} s and was cut off",
            hint=STEP_TIMEOUT_HINT,
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["table"]


def failure_text(error: BaseException) -> str:
    """What a report says of a step's failure."""
    if isinstance(error, StepFailure):
        return error.description
    if isinstance(error, PlaybookError):
        return redact(str(error))
    return redact(f"{type(error).__name__}: {error}")
