"""The one way a backend turns a client library's exception into the product's error kinds.

Each backend has one error-mapping hook: a function from the exception its client raised to
``SourceUnreachableError`` (cannot reach the service: the step may fall back to a stored
result), ``TransientStepError`` (a retry may work), ``StepTimeoutError`` (past the step's time
limit) or ``TerminalStepError`` (anything else, with a message that says how to fix it).
``mapped_errors`` applies it around a call, and every message and hint that leaves the hook is
redacted of configured secrets (``playbook_assets.core.redaction``), whatever text the
service put in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.redaction import redact

ErrorMapping = Callable[[Exception], Exception]
_E = TypeVar("_E", bound=Exception)


def redacted(error: _E) -> _E:
    """``error`` with configured secrets masked in its message and hint."""
    if isinstance(error, PlaybookError):
        error.message = redact(error.message)
        error.hint = redact(error.hint) if error.hint else error.hint
        error.args = (error.render(),)
    return error


def unchained(error: _E) -> _E:
    """``error`` marked to be raised without its cause (a cause whose text may hold a secret
    the product cannot name, such as the faulty part of a connection string)."""
    error.__suppress_context__ = True
    return error


@contextmanager
def mapped_errors(
    mapping: ErrorMapping, passthrough: tuple[type[Exception], ...] = ()
) -> Iterator[None]:
    """Raise what ``mapping`` makes of an exception of the block, chained to it.

    The product's own errors, and the ``passthrough`` types (a backend's internal signals),
    go through unchanged, as does an exception the mapping hands back as it is.
    """
    try:
        yield
    except PlaybookError:
        raise
    except passthrough:
        raise
    except Exception as e:
        mapped = mapping(e)
        if mapped is e:
            raise
        if mapped.__suppress_context__:
            raise redacted(mapped) from None
        raise redacted(mapped) from e
