"""A run's state in memory: each selected step's results per partition while something still
reads them, their summaries for the report, errors and skip reasons; and what becomes of every
step and output for each partition (``outcome_of``), which the run report is built from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from playbook_assets.core.partitions import PartitionUnit
from playbook_assets.core.plan import Mode
from playbook_assets.core.pushdown import MATERIALIZED_KEY, PLACEMENT_KEYS
from playbook_assets.core.report import (
    CACHED_AT_KEY,
    CACHED_DAGSTER_RUN_KEY,
    CACHED_RUN_KEY,
    FACTS_METADATA_KEY,
    OutputOutcome,
    RunOutcome,
    StepOutcome,
)
from playbook_assets.core.results import ELAPSED_KEY, Result
from playbook_assets.core.step_execution import StepRun

# Unit ids of results that are not one partition's: shared by every partition of the run, or
# over the whole range before it is split.
SHARED = "\x00shared"
RANGE = "\x00range"


def unit_id(unit: PartitionUnit) -> str:
    """A partition's id in the run's state ("" when the playbook is not partitioned)."""
    return unit.key if unit.key is not None else ""


def partition_of(unit: str) -> str | None:
    """The partition key of a unit id (None for the unpartitioned, shared or range ones)."""
    return None if unit in {"", SHARED, RANGE} else unit


@dataclass(frozen=True)
class Summary:
    """What the report and the manifest need of a result once its table is let go."""

    rows: int
    metadata: Mapping[str, Any]
    sha256: str | None
    size: int | None

    @classmethod
    def of(cls, result: Result) -> Summary:
        """The summary of a result."""
        encoded = result.encoded
        return cls(
            result.table.num_rows,
            dict(result.metadata),
            encoded.sha256 if encoded is not None else None,
            encoded.size if encoded is not None else None,
        )


@dataclass
class StepState:
    """One selected step in one run."""

    mode: Mode
    # Each partition's result (unit id -> result) while a later step or output still reads it.
    results: dict[str, Result] = field(default_factory=dict)
    summaries: dict[str, Summary] = field(default_factory=dict)
    runs: dict[str, StepRun] = field(default_factory=dict)
    pending: int = 0
    error: str | None = None
    elapsed_ms: float = 0.0
    reason: str | None = None  # why it was skipped
    checks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # How many selected steps and outputs have yet to read the result: a result no one will
    # read is let go, so a run holds only the tables it still needs.
    readers: int = 0

    @property
    def done(self) -> bool:
        """It succeeded for every partition."""
        return (
            self.error is None
            and self.reason is None
            and self.pending == 0
            and bool(self.summaries)
        )

    def key(self, unit: str) -> str:
        """Where a partition's result is kept (once for all when it is shared)."""
        return SHARED if self.mode == "shared" else unit

    def summary(self, unit: str) -> Summary | None:
        """A partition's summary."""
        return self.summaries.get(self.key(unit))

    def result(self, unit: str) -> Result | None:
        """A partition's result, while it is kept."""
        return self.results.get(self.key(unit))

    def read(self) -> None:
        """One reader is done with the result."""
        self.readers -= 1
        if self.readers <= 0:
            self.release()

    def release(self) -> None:
        """Let the tables go (the summaries stay)."""
        self.results.clear()
        self.runs.clear()


@dataclass
class OutputState:
    """One selected output in one run: its outcome, summary and checks per partition."""

    outcomes: dict[str, OutputOutcome] = field(default_factory=dict)
    summaries: dict[str, Summary] = field(default_factory=dict)
    checks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def step_outcome(state: StepState | None, unit: str, not_run: str) -> StepOutcome:
    """What became of a step for one partition."""
    if state is None:
        return StepOutcome("not_selected")
    summary = state.summary(unit)
    if state.error is not None:
        return StepOutcome(
            "error",
            row_count=summary.rows if summary is not None else None,
            execution_time_ms=state.elapsed_ms,
            error=state.error,
        )
    if summary is None:
        return StepOutcome("skipped", reason=state.reason or not_run)
    metadata = summary.metadata
    cached = CACHED_RUN_KEY in metadata
    placement = {key: metadata[key] for key in PLACEMENT_KEYS if key in metadata}
    return StepOutcome(
        "cached" if cached else "success",
        # A view has no rows here: its SQL is its result.
        row_count=None if metadata.get(MATERIALIZED_KEY) == "view" else summary.rows,
        execution_time_ms=float(metadata.get(ELAPSED_KEY) or 0.0),
        cached_from={
            "run_id": metadata.get(CACHED_RUN_KEY),
            "dagster_run_id": metadata.get(CACHED_DAGSTER_RUN_KEY),
            "executed_at": metadata.get(CACHED_AT_KEY),
        }
        if cached
        else None,
        facts=metadata.get(FACTS_METADATA_KEY),
        placement=placement or None,
    )


def outcome_of(
    spec_steps: Sequence[str],
    spec_outputs: Sequence[str],
    steps: Mapping[str, StepState],
    outputs: Mapping[str, OutputState],
    selected_outputs: Sequence[str],
    unit: str,
    error: str | None,
) -> RunOutcome:
    """What became of every step and output of the playbook for one partition."""
    outcome = RunOutcome(error=error)
    not_run = f"not run: {error}" if error else "the run stopped before this"
    for step_id in spec_steps:
        state = steps.get(step_id)
        outcome.steps[step_id] = step_outcome(state, unit, not_run)
        if state is not None:
            outcome.checks += state.checks.get(state.key(unit), [])
    for name in spec_outputs:
        found = outputs.get(name)
        if found is not None and unit in found.outcomes:
            outcome.outputs[name] = found.outcomes[unit]
            outcome.checks += found.checks.get(unit, [])
        elif name in selected_outputs:
            outcome.outputs[name] = OutputOutcome("skipped", reason=not_run)
        else:
            outcome.outputs[name] = OutputOutcome("not_selected")
    return outcome
