"""One retry policy for every warehouse, CRM and source.

What is retried: a ``TransientStepError`` (``SourceUnreachableError`` included), which is what a
backend's error mapping (``kit.errors``) makes of throttling, 5xx answers, dropped or refused
connections and the like. Everything else, ``StepTimeoutError`` included, is raised at once.

How often: at most ``retries`` times per request, the run's ``execution.retry_attempts``. A
backend that retries its own requests says so (``CrmResource.retries_requests``) and the step
does not retry it again, so the two never multiply: the step and the backend share one budget.

How long between attempts: exponential from ``backoff_seconds`` (doubled at each retry), with
jitter (x0.5 to x1.5, the shape of the step's own retry delay) so that parallel steps spread
out, at most ``max_backoff_seconds``, and never less than the ``Retry-After`` the service sent.
A retry whose wait would end past the call's deadline is not made: the last failure is raised,
as the step does with its own retries (it says what went wrong, where a timeout would not).

The loop is tenacity's (a widely used, well-kept library: its stop, wait and retry strategies
compose, and it counts attempts and measures waits the same way everywhere), rather than one
hand-written loop per backend.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from playbook_assets.connections.kit.deadline import Deadline
from playbook_assets.core.errors import SourceUnreachableError, TransientStepError

# execution.retry_attempts' default, for calls made outside a playbook run.
DEFAULT_RETRY_ATTEMPTS = 2

_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How many retries a request gets and how long to wait before each."""

    retries: int = DEFAULT_RETRY_ATTEMPTS
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    # The longest Retry-After honoured (None: any).
    max_retry_after_seconds: float | None = None
    # Whether a source that cannot be reached is retried here; otherwise the step retries it
    # (and then falls back on a stored result).
    retry_unreachable: bool = True

    def retries_error(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another attempt."""
        if not isinstance(error, TransientStepError):
            return False
        return self.retry_unreachable or not isinstance(error, SourceUnreachableError)

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0 for the first), jittered."""
        jittered = self.backoff_seconds * 2**retry * random.uniform(0.5, 1.5)
        return min(self.max_backoff_seconds, jittered)


@dataclass
class Attempt:
    """One attempt of a request, as the backend's request function sees it.

    ``number`` counts from 1. The function sets ``retry_after`` (seconds) when the service
    said how long to wait before asking again.
    """

    number: int = 1
    retry_after: float | None = None

    @property
    def retries(self) -> int:
        """How many attempts came before this one."""
        return self.number - 1


def call_with_retries(
    send: Callable[[Attempt], _T],
    policy: RetryPolicy,
    deadline: Deadline | None = None,
) -> _T:
    """``send(attempt)``, tried again after each ``TransientStepError`` it raises, within the
    policy's budget and the deadline (see the module docstring)."""
    attempt = Attempt()

    def begin(state: tenacity.RetryCallState) -> None:
        attempt.number = state.attempt_number
        attempt.retry_after = None

    def wait(state: tenacity.RetryCallState) -> float:
        delay = policy.delay(state.attempt_number - 1)
        asked = attempt.retry_after
        if asked is None:
            return delay
        if policy.max_retry_after_seconds is not None:
            asked = min(asked, policy.max_retry_after_seconds)
        return max(delay, asked)

    def out_of_budget(state: tenacity.RetryCallState) -> bool:
        return state.attempt_number > policy.retries

    def out_of_time(state: tenacity.RetryCallState) -> bool:
        return deadline is not None and not deadline.allows(state.upcoming_sleep)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(policy.retries_error),
        stop=lambda state: out_of_budget(state) or out_of_time(state),
        wait=wait,
        before=begin,
        reraise=True,
    )
    return retrying(send, attempt)
