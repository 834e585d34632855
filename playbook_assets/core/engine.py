"""Running a playbook: the selected steps in dependency order, in parallel, in memory; then its
outputs and checks. Nothing here knows Dagster: a run's environment
(``step_execution.RunEnvironment``) gives the connections, the stored results and the log, and
the run tells what it produced through events (``ResultsReady``, ``ChecksDone``) that the
Dagster adapter turns into materializations and check results, or that a local run just reads.

Each result goes to the steps that read it in memory, with no Parquet round trip in between; a
selected step whose upstream step is not selected reads that upstream's latest stored result
(same partition). A failing step does not stop the steps that do not depend on it: its
downstream steps are skipped, with the failed step as their reason. A failed blocking check
fails its step the same way. Steps and outputs a run did not select are ``not_selected``.

**Partitions.** A run of one partition runs each step once. A run over a range of partitions
(a single-run backfill) gives each partition exactly what a run of that partition alone would
give: a step that reads no partition value and nothing that does runs once and its result
holds for every partition; a source step that reads ``${partition.start}``/``${partition.end}``
and declares ``partition_column`` runs once over the whole range and its result is split by
that column; every other step runs once per partition (``plan.PlaybookPlan.modes``).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from playbook_assets.core.artifacts import artifact_file, store_encoded
from playbook_assets.core.checks import CheckResult, check_result
from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.models import CheckSpec
from playbook_assets.core.partitions import PartitionUnit, range_values, split_by_partition
from playbook_assets.core.plan import Mode, PlaybookPlan
from playbook_assets.core.pushdown import fetched
from playbook_assets.core.references import ResolutionContext
from playbook_assets.core.report import FACTS_METADATA_KEY
from playbook_assets.core.report_render.data import ReportTables
from playbook_assets.core.results import Result, build_result
from playbook_assets.core.run_control import STOPPED_REASON, step_finished, stop_requested
from playbook_assets.core.run_state import (
    RANGE,
    SHARED,
    OutputState,
    StepState,
    Summary,
    partition_of,
    step_outcome,
    unit_id,
)
from playbook_assets.core.step_execution import (
    RunEnvironment,
    StepRun,
    execute_step,
    failure_text,
)

# Metadata of a data output that its step's result already has (the same table).
SHARED_WITH_STEP = ("dagster/row_count", "dagster/column_schema", "preview", FACTS_METADATA_KEY)


@dataclass(frozen=True)
class ResultsReady:
    """A step or output is done for every partition of the run: its results by unit id
    (``SHARED`` for a step whose result holds for every partition), already stored."""

    name: str
    results: Mapping[str, Result]


@dataclass(frozen=True)
class ChecksDone:
    """The checks of a step or output, each with its result per unit id."""

    name: str
    evaluations: Sequence[tuple[CheckSpec, Mapping[str, CheckResult]]]


Event = ResultsReady | ChecksDone


class PlaybookRun:
    """One run of a playbook: the selected steps and outputs over the run's partitions."""

    def __init__(
        self,
        plan: PlaybookPlan,
        env: RunEnvironment,
        *,
        selected: set[str],
        units: Sequence[PartitionUnit],
        parameters: Mapping[str, Any],
        run_id: str,
        artifacts_dir: Path | None,
    ) -> None:
        """``selected``: the names of the steps and outputs to run; ``run_id``: the id the
        stored results are named by; ``artifacts_dir``: where results are stored (None:
        kept in memory only)."""
        self.plan = plan
        self.env = env
        self.loaded = plan.loaded
        self.spec = plan.loaded.spec
        self.selected_steps = [s for s in plan.order if s in selected]
        self.selected_outputs = [o for o in self.spec.outputs if o.name in selected]
        self.units = list(units)
        self.ranged = len(self.units) > 1
        self.parameters = parameters
        self.run_id = run_id
        self.artifacts_dir = artifacts_dir
        self.error: str | None = None
        modes: dict[str, Mode] = (
            plan.modes(self.selected_steps)
            if self.ranged
            else dict.fromkeys(self.selected_steps, "per_partition")
        )
        self.steps = {name: StepState(modes[name]) for name in self.selected_steps}
        for name in self.selected_steps:
            for upstream in plan.data_upstream[name]:
                if upstream in self.steps:
                    self.steps[upstream].readers += 1
        for output in self.selected_outputs:
            source = self.steps.get(self.loaded.output_source(output))
            if source is not None:
                source.readers += 1
        self.outputs: dict[str, OutputState] = {}
        # What each partition's rendered report shows of the results, kept as steps finish.
        self.report_tables = {unit_id(unit): ReportTables(self.spec) for unit in self.units}

    # ------------------------------------------------------------------------------ steps

    def run(self) -> Iterator[Event]:
        """Run the steps, then the outputs (nothing when the run already failed)."""
        from playbook_assets.core.run_outputs import run_outputs

        if self.error is not None:
            return
        yield from self.run_steps()
        yield from run_outputs(self)

    def run_steps(self) -> Iterator[Event]:
        """Run the selected steps, each as soon as what it reads is ready, up to
        ``max_parallel_steps`` at once (threads: the work waits on a warehouse, an API or
        DuckDB, which release the GIL); each step's events once it is done for every
        partition."""
        waiting = [(step, unit) for step in self.selected_steps for unit in self._units_of(step)]
        for step_id, _ in waiting:
            self.steps[step_id].pending += 1
        running: dict[Future[StepRun], tuple[str, str, float]] = {}
        limit = self.env.settings.max_parallel_steps
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix=self.spec.id) as pool:
            while waiting or running:
                for task in list(waiting):
                    if self._settle(task, waiting):
                        continue
                    if len(running) < limit and self._ready(task[0]):
                        waiting.remove(task)
                        submitted = self._submit(pool, *task)
                        if submitted is not None:
                            running[submitted[0]] = submitted[1]
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: self.plan.order.index(running[f][0])):
                    step_id, unit, started = running.pop(future)
                    yield from self._finish(step_id, unit, started, future)

    def _units_of(self, step_id: str) -> list[str]:
        mode = self.steps[step_id].mode
        if mode == "shared":
            return [SHARED]
        if mode == "ranged":
            return [RANGE]
        return [unit_id(unit) for unit in self.units]

    def _settle(self, task: tuple[str, str], waiting: list[tuple[str, str]]) -> bool:
        """Drop a task whose step failed or cannot run (an upstream step failed); say so."""
        step_id, _ = task
        state = self.steps[step_id]
        blocker = self._blocker(step_id)
        if state.error is None and blocker is None:
            return False
        waiting.remove(task)
        state.pending -= 1
        if state.error is None and state.reason is None:
            state.reason = blocker
            self.env.log.warning(f"step {step_id} skipped: {blocker}")
        if state.pending == 0:
            self._finished_reading(step_id)
        return True

    def _submit(
        self, pool: ThreadPoolExecutor, step_id: str, unit: str
    ) -> tuple[Future[StepRun], tuple[str, str, float]] | None:
        started = time.perf_counter()
        state = self.steps[step_id]
        try:
            inputs = {name: self.table_of(name, unit) for name in self.plan.data_upstream[step_id]}
        except Exception as e:
            self._fail(step_id, e, started)
            state.pending -= 1
            if state.pending == 0:
                self._finished_reading(step_id)
            return None
        future = pool.submit(
            execute_step,
            self.env,
            self.loaded,
            self.spec.step(step_id),
            self.plan.connections[step_id],
            inputs,
            self._resolution(unit),
            partition=partition_of(unit),
        )
        return future, (step_id, unit, started)

    def _finish(
        self, step_id: str, unit: str, started: float, future: Future[StepRun]
    ) -> Iterator[Event]:
        state = self.steps[step_id]
        state.pending -= 1
        try:
            run = future.result()
            if state.error is None:
                state.elapsed_ms += run.elapsed_ms
                self._record(step_id, unit, run)
        except PlaybookError as e:
            e.at(location=self.loaded.step_location(step_id), step=step_id)
            self._fail(step_id, e, started)
        except Exception as e:  # one step's failure must not hide the others'
            self._fail(step_id, e, started)
        if state.pending > 0:
            return
        if state.error is None:
            yield from self._step_done(step_id)
        self._finished_reading(step_id)

    def _blocker(self, step_id: str) -> str | None:
        """Why a step cannot run: an upstream step failed or was skipped, or the run stopped."""
        if stop_requested(self.run_id):
            return STOPPED_REASON
        for name in self.plan.upstream[step_id]:
            upstream = self.steps.get(name)
            if upstream is None:
                continue
            if upstream.error is not None:
                return f"upstream step '{name}' failed"
            if upstream.reason is not None:
                return f"upstream step '{name}' was skipped ({upstream.reason})"
        return None

    def _ready(self, step_id: str) -> bool:
        return all(
            state.done
            for name in self.plan.upstream[step_id]
            if (state := self.steps.get(name)) is not None
        )

    def table_of(self, step_id: str, unit: str) -> pa.Table:
        """A step's result for a partition: this run's, else its latest stored one."""
        state = self.steps.get(step_id)
        if state is not None:
            found = state.result(unit)
            assert found is not None, (step_id, unit)
            return found.table
        return self.env.stored_result(step_id, partition_of(unit))

    def _resolution(self, unit: str) -> ResolutionContext:
        if unit == RANGE:
            partition: Mapping[str, Any] | None = range_values(self.units)
        elif unit == SHARED:
            partition = None
        else:
            partition = next(u for u in self.units if unit_id(u) == unit).values
        return ResolutionContext(parameters=self.parameters, steps={}, partition=partition)

    def _record(self, step_id: str, unit: str, run: StepRun) -> None:
        """Keep a finished execution's result, per partition (a range's is split)."""
        state = self.steps[step_id]
        if unit == RANGE:
            column = self.spec.step(step_id).partition_column
            assert column is not None
            for key, part in split_by_partition(run.table, column, self.units).items():
                state.runs[key] = StepRun(part, run.request, run.elapsed_ms, run.metadata)
        else:
            state.runs[unit] = run
        for key, part in list(state.runs.items()):
            if key not in state.results:
                result = build_result(
                    part.table,
                    store=self.artifacts_dir is not None,
                    request=part.request,
                    elapsed_ms=part.elapsed_ms,
                    extra=dict(part.metadata),
                )
                state.results[key] = result
                state.summaries[key] = Summary.of(result)

    def _step_done(self, step_id: str) -> Iterator[Event]:
        """The events of a step done for every partition: its results (stored first), checks."""
        state = self.steps[step_id]
        rows = sum(summary.rows for summary in state.summaries.values())
        self.env.log.info(f"step {step_id}: {rows:,} rows in {state.elapsed_ms:.1f} ms")
        try:
            self.store(step_id, state.results)
            for unit, tables in self.report_tables.items():
                if step_id in tables.steps and (found := state.result(unit)) is not None:
                    timeout = self.env.settings.timeout_seconds
                    tables.add(step_id, fetched(found.table, self.env.services, timeout))
        except PlaybookError as e:  # a full disk, a bad folder, a view's rows not fetched
            e.at(location=self.loaded.step_location(step_id), step=step_id)
            self._fail(step_id, e, time.perf_counter())
            return
        yield ResultsReady(step_id, dict(state.results))
        checks = self.spec.step(step_id).checks
        failed = yield from self.evaluate_checks(step_id, checks, state.results, state.checks)
        if failed:  # a failed blocking check fails its step: downstream steps skip
            state.error = "blocking check failed: " + "; ".join(failed)
            self.env.log.error(f"step {step_id} failed: {state.error}")

    def _finished_reading(self, step_id: str) -> None:
        """A step is over (done, failed or skipped): its watcher hears of it (``run_control``),
        what it read may be let go, and its own result too when nothing reads it."""
        for name in self.plan.data_upstream[step_id]:
            if name in self.steps:
                self.steps[name].read()
        state = self.steps[step_id]
        status = step_outcome(state, unit_id(self.units[0]), "").status
        rows = sum(summary.rows for summary in state.summaries.values()) if state.done else None
        step_finished(self.run_id, step_id, status, rows)
        if state.readers <= 0:
            state.release()

    def _fail(self, step_id: str, error: BaseException, started: float) -> None:
        state = self.steps[step_id]
        if state.error is None:
            state.error = failure_text(error)
            self.env.log.error(f"step {step_id} failed: {state.error}")
        state.elapsed_ms += (time.perf_counter() - started) * 1000

    # ----------------------------------------------------------------- storing and checks

    def artifact_path(self, name: str, unit: PartitionUnit) -> Path | None:
        """Where a result of this run is stored (None when results are not stored)."""
        if self.artifacts_dir is None:
            return None
        return artifact_file(self.artifacts_dir, [self.spec.id, name], self.run_id, unit.key)

    def store(self, name: str, results: Mapping[str, Result]) -> None:
        """Store each partition's result now, so a write that fails (a full disk) fails its
        step or output, with the file named, instead of ending the run."""
        for unit in self.units:
            result = results.get(unit_id(unit)) or results.get(SHARED)
            path = self.artifact_path(name, unit)
            if result is not None and result.encoded is not None and path is not None:
                store_encoded(result.encoded, path)

    def evaluate_checks(
        self,
        name: str,
        checks: Sequence[CheckSpec],
        results: Mapping[str, Result],
        recorded: dict[str, list[dict[str, Any]]],
    ) -> Generator[Event, None, list[str]]:
        """Each check over every partition's table (over a range, a check passes when every
        partition passes); each partition's result is kept for its report. Returns the
        failed blocking checks, described."""
        failed: list[str] = []
        evaluations: list[tuple[CheckSpec, Mapping[str, CheckResult]]] = []
        asset = f"{self.spec.id}/{name}"
        for check in checks:
            per_unit = {unit: check_result(check, result.table) for unit, result in results.items()}
            for unit, outcome in per_unit.items():
                recorded.setdefault(unit, []).append({"asset": asset, **outcome.entry})
            evaluations.append((check, per_unit))
            if check.blocking and check.severity == "error":
                missed = [outcome for outcome in per_unit.values() if not outcome.passed]
                if missed:
                    seen = ", ".join(str(outcome.observed) for outcome in missed)
                    failed.append(f"{check.check_name}: {missed[0].description} (observed {seen})")
        if evaluations:
            yield ChecksDone(name, evaluations)
        return failed

    # ------------------------------------------------------------------------- the whole

    def step_errors(self) -> dict[str, dict[str, Any]]:
        """Each failed step's and output's error."""
        errors = {
            name: {"error": state.error, "execution_time_ms": round(state.elapsed_ms, 1)}
            for name, state in self.steps.items()
            if state.error is not None
        }
        for name, state in self.outputs.items():
            failed = next((o for o in state.outcomes.values() if o.status == "error"), None)
            if failed is not None:
                errors[name] = {"error": failed.error, "execution_time_ms": 0.0}
        return errors
