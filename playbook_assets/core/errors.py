"""The one error hierarchy of the product.

Every error says where it happened (file:line, step, field) and how to fix it, so that a
user can act on it without reading a traceback. Three kinds matter to callers:

- ``PlaybookValidationError``: the playbook, the configuration or an input is wrong. Nothing
  ran; the command line exits with 2.
- ``TerminalStepError``: a step failed in a way a retry cannot fix (SQL error, missing column).
- ``TransientStepError``: a step failed in a way a retry may fix (connection reset, throttling).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLocation:
    """A position in a YAML file (1-based line)."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


class PlaybookError(Exception):
    """Base of every error the product raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        location: SourceLocation | None = None,
        step: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.location = location
        self.step = step
        self.field = field
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        """The full one-line message: ``file:line: step 'x': field 'y': message; hint``."""
        parts: list[str] = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.step is not None:
            parts.append(f"step '{self.step}'")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        text = self.message
        if self.hint:
            text = f"{text}; {self.hint}"
        return ": ".join([*parts, text])

    def __str__(self) -> str:
        return self.render()

    def at(
        self,
        *,
        location: SourceLocation | None = None,
        step: str | None = None,
        field: str | None = None,
    ) -> PlaybookError:
        """Fill in where the error happened, keeping what is already known."""
        if self.location is None and location is not None:
            self.location = location
        if self.step is None and step is not None:
            self.step = step
        if self.field is None and field is not None:
            self.field = field
        self.args = (self.render(),)
        return self


class PlaybookValidationError(PlaybookError):
    """The playbook, configuration or input is invalid; nothing was run."""


class ConfigError(PlaybookValidationError):
    """The executor configuration file is invalid."""


class PlaybookNotFoundError(PlaybookValidationError):
    """No playbook has the requested id."""


class StepExecutionError(PlaybookError):
    """A step failed while running."""


class TerminalStepError(StepExecutionError):
    """A failure a retry cannot fix: a SQL error, a missing column, a bad request."""


class TransientStepError(StepExecutionError):
    """A failure a retry may fix: a dropped connection, throttling, a lock timeout."""


class SourceUnreachableError(TransientStepError):
    """The warehouse or CRM cannot be reached at all: connection refused, DNS failure, the
    auth endpoint down, a timeout while connecting. Not a SQL error or a bad request. After
    the retries, a step may fall back to its latest stored result (the cached fallback)."""


class StepTimeoutError(TerminalStepError):
    """The step ran past its time limit; the query was cancelled on the server."""


class ArtifactWriteError(TerminalStepError):
    """A file of the artifact store could not be written: the disk is full, a file stands
    where a folder should be, or the folder is not writable."""


class ArtifactChecksumError(TerminalStepError):
    """A stored file no longer matches the sha256 recorded for it; it is refused, not used."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest candidate, or None when nothing is close (the
    name itself is never suggested back)."""
    others = [c for c in candidates if c != name]
    matches = difflib.get_close_matches(name, others, n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def unknown_name_hint(name: str, candidates: Iterable[str], what: str) -> str:
    """A hint for an unknown name: the closest match, else the valid names."""
    options = sorted(set(candidates))
    suggestion = did_you_mean(name, options)
    if suggestion:
        return suggestion
    if not options:
        return f"no {what} is defined"
    return f"valid {what}s: {', '.join(options)}"


# How to give a step more time, in every time-limit error (a backend's and the step's own).
STEP_TIMEOUT_HINT = "raise timeout_seconds on the step or execution.timeout_seconds in the config"
