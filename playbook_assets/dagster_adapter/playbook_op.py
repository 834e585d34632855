"""What a playbook's op does when it runs.

A playbook is one Dagster op that materializes one asset per step and output, plus its run
report (a subsettable multi-asset, see ``factory``). The op runs the selected steps in
dependency order and hands each result to the steps that read it in memory, with no Parquet
round trip in between; a selected step whose upstream step is not selected reads that
upstream's latest stored result (same partition). A failing step does not stop the steps that
do not depend on it: its downstream steps are skipped, with the failed step as their reason,
and the op fails at the end, recording each step's error (``STEP_ERRORS_KEY``). A failed
blocking check fails its step the same way. Steps and outputs the run did not select are
``not_selected``: a run that materializes part of a playbook succeeds when what it ran did.

**Partitions.** A run of one partition runs each step once. A run over a range of partitions
(a single-run backfill) gives each partition exactly what a run of that partition alone would
give, stored and recorded per partition: a step that reads no partition value and nothing that
does runs once and its result holds for every partition; a source step that reads
``${partition.start}``/``${partition.end}`` and declares ``partition_column`` runs once over the
whole range and its result is split by that column; every other step runs once per partition.

The op keeps every outcome in memory and builds each partition's run report from it
(``report.build_report``), writes the run records (whatever the outcome), and hands the
reports to whoever reads the run (``REPORTS_KEY`` in the report asset's or the failure's
metadata).
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import pyarrow as pa

from playbook_assets.core.artifacts import (
    BYTES_METADATA_KEY,
    PATH_METADATA_KEY,
    SHA256_METADATA_KEY,
    EncodedTable,
    PartitionedResult,
    artifact_file,
    store_encoded,
)
from playbook_assets.core.catalog import LoadedPlaybook, data_dependencies, step_dependencies
from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.execution import RunSettings, StepRun, build_output, execute_step
from playbook_assets.core.insights import table_facts
from playbook_assets.core.partitions import PartitionUnit, range_values, split_by_partition
from playbook_assets.core.references import ResolutionContext, walk_references
from playbook_assets.core.report import (
    CACHED_AT_KEY,
    CACHED_DAGSTER_RUN_KEY,
    CACHED_RUN_KEY,
    FACTS_METADATA_KEY,
    RECORD_ERRORS_KEY,
    REPORTS_KEY,
    RUN_ID_METADATA_KEY,
    STEP_ERRORS_KEY,
    OutputOutcome,
    RunInfo,
    RunOutcome,
    StepOutcome,
    build_report,
)
from playbook_assets.core.report_render.content import ReportView, report_view
from playbook_assets.core.report_render.data import ReportTables
from playbook_assets.core.report_render.html import html_report
from playbook_assets.core.report_render.markdown import markdown_report
from playbook_assets.core.run_records import RunRecordNotStoredError, write_run_record
from playbook_assets.core.spec import (
    AggregateStep,
    AnyStep,
    CheckSpec,
    FilterStep,
    JoinStep,
    OutputSpec,
    QueryStep,
    SearchStep,
)
from playbook_assets.core.transforms import aggregate_table
from playbook_assets.dagster_adapter.asset_checks import evaluate_check
from playbook_assets.dagster_adapter.dagster_runs import TAG_RERUN_OF, run_started_at
from playbook_assets.dagster_adapter.io_manager import read_latest_result
from playbook_assets.dagster_adapter.partitions import run_units
from playbook_assets.dagster_adapter.run_config import (
    REPORT_ASSET,
    TAG_PLAYBOOK,
    asset_key,
    parameter_values,
)
from playbook_assets.dagster_adapter.stale_runs import TAG_PID, process_tags

Step = AnyStep
Mode = Literal["shared", "ranged", "per_partition"]
# Unit ids of results that are not one partition's: shared by every partition of the run, or
# over the whole range before it is split.
SHARED = "\x00shared"
RANGE = "\x00range"
_TRANSFORMS = (JoinStep, AggregateStep, FilterStep)


def output_name(key: dg.AssetKey) -> str:
    """The op output that materializes an asset (Dagster names multi-asset outputs so)."""
    return key.to_python_identifier()


@dataclass(frozen=True)
class PlaybookPlan:
    """What the op needs to know about its playbook, worked out once when it is defined."""

    loaded: LoadedPlaybook
    connections: Mapping[str, str | None]
    upstream: Mapping[str, tuple[str, ...]]
    data_upstream: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]
    data_warehouse: str
    crm: str
    # Steps whose own configuration reads ${partition.*} (which values: key, start, ...).
    partition_reads: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, loaded: LoadedPlaybook, data_warehouse: str, crm: str) -> PlaybookPlan:
        """The plan of a validated playbook, with the connections each step uses."""
        spec = loaded.spec
        data = data_dependencies(spec)
        upstream = {name: tuple(deps) for name, deps in step_dependencies(spec, data).items()}
        connections: dict[str, str | None] = {}
        partition_reads: dict[str, frozenset[str]] = {}
        for step in spec.steps:
            if isinstance(step, QueryStep):
                connections[step.id] = step.connection or data_warehouse
            elif isinstance(step, SearchStep):
                connections[step.id] = step.connection or crm
            else:
                connections[step.id] = None
            reads = {
                reference.name
                for _, reference in walk_references(step.config.model_dump(mode="python"))
                if reference.kind == "partition"
            }
            if reads:
                partition_reads[step.id] = frozenset(reads)
        # Validation rejected cycles; ties keep the file's order.
        sorter = TopologicalSorter({name: upstream[name] for name in spec.step_ids})
        order: list[str] = []
        sorter.prepare()
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=spec.step_ids.index)
            order.extend(ready)
            sorter.done(*ready)
        return cls(
            loaded=loaded,
            connections=connections,
            upstream=upstream,
            data_upstream={name: tuple(deps) for name, deps in data.items()},
            order=tuple(order),
            data_warehouse=data_warehouse,
            crm=crm,
            partition_reads=partition_reads,
        )

    @property
    def used_connections(self) -> set[str]:
        """Names of the connections the playbook's steps query."""
        return {name for name in self.connections.values() if name is not None}

    def modes(self, selected: Sequence[str]) -> dict[str, Mode]:
        """How each selected step runs over a range of partitions (see the module doc)."""
        spec = self.loaded.spec
        modes: dict[str, Mode] = {}
        for step_id in self.order:
            if step_id not in selected:
                continue
            step = spec.step(step_id)
            upstream = self.upstream[step_id]
            # An upstream step not in the run is read per partition from the store.
            all_shared = all(modes.get(name) == "shared" for name in upstream)
            reads = self.partition_reads.get(step_id, frozenset())
            if not reads and all_shared:
                modes[step_id] = "shared"
            elif (
                all_shared
                and step.partition_column is not None
                and not isinstance(step, _TRANSFORMS)
                and reads <= {"start", "end"}
            ):
                modes[step_id] = "ranged"
            else:
                modes[step_id] = "per_partition"
        return modes


@dataclass(frozen=True)
class _Summary:
    """What the report and the manifest need of a result once its table is let go."""

    rows: int
    metadata: Mapping[str, Any]
    sha256: str | None
    size: int | None

    @classmethod
    def of(cls, result: dg.Output[Any]) -> _Summary:
        value = result.value
        metadata = {name: _metadata_value(item) for name, item in result.metadata.items()}
        if isinstance(value, EncodedTable):
            return cls(value.table.num_rows, metadata, value.sha256, value.size)
        return cls(value.num_rows, metadata, None, None)


@dataclass
class _StepState:
    """One selected step (or output) in one execution of the op."""

    mode: Mode
    # Each partition's result (unit id -> output) while a later step or output still reads it.
    outputs: dict[str, dg.Output[Any]] = field(default_factory=dict)
    summaries: dict[str, _Summary] = field(default_factory=dict)
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
        return (
            self.error is None
            and self.reason is None
            and self.pending == 0
            and bool(self.summaries)
        )

    def summary(self, unit_id: str) -> _Summary | None:
        return self.summaries.get(SHARED if self.mode == "shared" else unit_id)

    def read(self) -> None:
        """One reader is done with the result."""
        self.readers -= 1
        if self.readers <= 0:
            self.outputs.clear()
            self.runs.clear()


class _Execution:
    """The state of one execution of a playbook's op."""

    def __init__(self, context: dg.AssetExecutionContext, plan: PlaybookPlan) -> None:
        self.context = context
        self.plan = plan
        self.loaded = plan.loaded
        self.spec = plan.loaded.spec
        self.settings: RunSettings = context.resources.run_settings
        selected = context.selected_asset_keys
        self.selected_steps = [s for s in plan.order if asset_key(self.spec.id, s) in selected]
        self.selected_outputs = [
            o for o in self.spec.outputs if asset_key(self.spec.id, o.name) in selected
        ]
        self.report_selected = asset_key(self.spec.id, REPORT_ASSET) in selected
        self.units = run_units(context, self.spec.partitions)
        self.ranged_run = len(self.units) > 1
        self.modes: dict[str, Mode] = (
            plan.modes(self.selected_steps)
            if self.ranged_run
            else dict.fromkeys(self.selected_steps, "per_partition")
        )
        self.steps = {name: _StepState(self.modes[name]) for name in self.selected_steps}
        for name in self.selected_steps:
            for upstream in plan.data_upstream[name]:
                if upstream in self.steps:
                    self.steps[upstream].readers += 1
        for output in self.selected_outputs:
            source = self.steps.get(self.loaded.output_source(output))
            if source is not None:
                source.readers += 1
        self.outputs: dict[str, dict[str, OutputOutcome]] = {}
        self.output_summaries: dict[str, dict[str, _Summary]] = {}
        self.output_checks: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.error: str | None = None
        # Run records that could not be written: {run id: {"message", "hint"}}.
        self.record_errors: dict[str, dict[str, str | None]] = {}
        run = context.run
        self.started = run_started_at(context.instance, run.run_id)
        self.parameters: Mapping[str, Any] = {}
        self.infos = {
            _unit_id(unit): RunInfo(
                playbook_id=self.spec.id,
                dagster_run_id=run.run_id,
                started=self.started,
                parameters={},
                data_warehouse=plan.data_warehouse,
                crm=plan.crm,
                partition=unit.key,
                per_partition=self.ranged_run,
                rerun_of=run.tags.get(TAG_RERUN_OF),
            )
            for unit in self.units
        }
        # What each partition's rendered report shows of the results, kept as steps finish.
        self.report_tables = {unit_id: ReportTables(self.spec) for unit_id in self.infos}
        self.report_views: dict[str, ReportView | None] = {}

    # ------------------------------------------------------------------------------ steps

    def run_steps(self) -> Iterator[Any]:
        """Run the selected steps, each as soon as what it reads is ready, up to
        ``max_parallel_steps`` at once (threads: the work waits on a warehouse, an API or
        DuckDB, which release the GIL); yield each step's results and checks once it is
        done for every partition."""
        waiting = [
            (step_id, unit_id)
            for step_id in self.selected_steps
            for unit_id in self._task_units(step_id)
        ]
        for step_id, _ in waiting:
            self.steps[step_id].pending += 1
        running: dict[Future[StepRun], tuple[str, str, float]] = {}
        limit = self.settings.max_parallel_steps
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix=self.spec.id) as pool:
            while waiting or running:
                for task in list(waiting):
                    step_id, unit_id = task
                    state = self.steps[step_id]
                    blocker = self._blocker(step_id)
                    if state.error is not None or blocker is not None:
                        waiting.remove(task)
                        state.pending -= 1
                        if state.error is None and state.reason is None:
                            state.reason = blocker
                            self.context.log.warning(f"step {step_id} skipped: {blocker}")
                        if state.pending == 0:
                            self._finished_reading(step_id)
                        continue
                    if len(running) >= limit or not self._ready(step_id, unit_id):
                        continue
                    waiting.remove(task)
                    started = time.perf_counter()
                    try:
                        inputs = self._inputs(step_id, unit_id)
                    except Exception as e:
                        self._fail(step_id, e, started)
                        state.pending -= 1
                        if state.pending == 0:
                            self._finished_reading(step_id)
                        continue
                    future = pool.submit(
                        execute_step,
                        self.context,
                        self.loaded,
                        self.spec.step(step_id),
                        self.plan.connections[step_id],
                        inputs,
                        self._resolution(unit_id),
                        partition=unit_id if unit_id not in {"", SHARED, RANGE} else None,
                    )
                    running[future] = (step_id, unit_id, started)
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: self.plan.order.index(running[f][0])):
                    step_id, unit_id, started = running.pop(future)
                    state = self.steps[step_id]
                    state.pending -= 1
                    try:
                        run = future.result()
                        if state.error is None:
                            state.elapsed_ms += run.elapsed_ms
                            self._record(step_id, unit_id, run)
                    except PlaybookError as e:
                        e.at(location=self.loaded.step_location(step_id), step=step_id)
                        self._fail(step_id, e, started)
                    except Exception as e:  # one step's failure must not hide the others'
                        self._fail(step_id, e, started)
                    if state.pending > 0:
                        continue
                    if state.error is None:
                        yield from self._step_done(step_id)
                    self._finished_reading(step_id)

    def _task_units(self, step_id: str) -> list[str]:
        mode = self.modes[step_id]
        if mode == "shared":
            return [SHARED]
        if mode == "ranged":
            return [RANGE]
        return [_unit_id(unit) for unit in self.units]

    def _blocker(self, step_id: str) -> str | None:
        """Why a step cannot run: an upstream step of the run that failed or was skipped."""
        for name in self.plan.upstream[step_id]:
            upstream = self.steps.get(name)
            if upstream is None:
                continue
            if upstream.error is not None:
                return f"upstream step '{name}' failed"
            if upstream.reason is not None:
                return f"upstream step '{name}' was skipped ({upstream.reason})"
        return None

    def _ready(self, step_id: str, unit_id: str) -> bool:
        for name in self.plan.upstream[step_id]:
            upstream = self.steps.get(name)
            if upstream is not None and not upstream.done:
                return False
        return True

    def _inputs(self, step_id: str, unit_id: str) -> dict[str, pa.Table]:
        return {name: self._table(name, unit_id) for name in self.plan.data_upstream[step_id]}

    def _table(self, step_id: str, unit_id: str) -> pa.Table:
        """A step's result for a partition: this run's, else its latest stored one."""
        state = self.steps.get(step_id)
        if state is not None:
            found = state.outputs.get(SHARED if state.mode == "shared" else unit_id)
            assert found is not None, (step_id, unit_id)
            return _value_table(found)
        partition = None if unit_id in {"", SHARED, RANGE} else unit_id
        return read_latest_result(
            self.context.instance, asset_key(self.spec.id, step_id), partition
        )

    def _resolution(self, unit_id: str) -> ResolutionContext:
        if unit_id == RANGE:
            partition: Mapping[str, Any] | None = range_values(self.units)
        elif unit_id == SHARED:
            partition = None
        else:
            partition = self._unit(unit_id).values
        return ResolutionContext(parameters=self.parameters, steps={}, partition=partition)

    def _unit(self, unit_id: str) -> PartitionUnit:
        return next(unit for unit in self.units if _unit_id(unit) == unit_id)

    def _record(self, step_id: str, unit_id: str, run: StepRun) -> None:
        """Keep a finished execution's result, per partition (a range's is split)."""
        state = self.steps[step_id]
        if unit_id == RANGE:
            step = self.spec.step(step_id)
            assert step.partition_column is not None
            parts = split_by_partition(run.table, step.partition_column, self.units)
            for key, part in parts.items():
                state.runs[key] = StepRun(
                    part, run.request, run.elapsed_ms, run.metadata, run.cached
                )
        else:
            state.runs[unit_id] = run
        for unit, part in list(state.runs.items()):
            if unit not in state.outputs:
                output = build_output(
                    part.table,
                    self.settings,
                    request=part.request,
                    elapsed_ms=part.elapsed_ms,
                    extra=dict(part.metadata),
                )
                state.outputs[unit] = output
                state.summaries[unit] = _Summary.of(output)

    def _step_done(self, step_id: str) -> Iterator[Any]:
        """Yield a finished step's results (every partition's) and its checks."""
        state = self.steps[step_id]
        step = self.spec.step(step_id)
        key = asset_key(self.spec.id, step_id)
        rows = sum(summary.rows for summary in state.summaries.values())
        self.context.log.info(f"step {step_id}: {rows:,} rows in {state.elapsed_ms:.1f} ms")
        try:
            self._store(key, state.outputs)
        except PlaybookError as e:  # a full disk, a folder that cannot be written
            e.at(location=self.loaded.step_location(step_id), step=step_id)
            self._fail(step_id, e, time.perf_counter())
            return
        yield self._named(key, state.outputs)
        failed = yield from self._checks(step.checks, key, state.outputs, state.checks)
        if failed:  # a failed blocking check fails its step: downstream steps skip
            state.error = "blocking check failed: " + "; ".join(failed)
            self.context.log.error(f"step {step_id} failed: {state.error}")
        for unit_id, tables in self.report_tables.items():
            found = state.outputs.get(SHARED if state.mode == "shared" else unit_id)
            if step_id in tables.steps and found is not None:
                tables.add(step_id, _value_table(found))

    def _finished_reading(self, step_id: str) -> None:
        """A step is over (done, failed or skipped): what it read may be let go, and its own
        result too when nothing reads it."""
        for name in self.plan.data_upstream[step_id]:
            if name in self.steps:
                self.steps[name].read()
        state = self.steps[step_id]
        if state.readers <= 0:
            state.outputs.clear()
            state.runs.clear()

    def _fail(self, step_id: str, error: BaseException, started: float) -> None:
        state = self.steps[step_id]
        text = _failure_text(error)
        if state.error is None:
            state.error = text
            self.context.log.error(f"step {step_id} failed: {text}")
            if not isinstance(error, dg.Failure | PlaybookError):
                self.context.log.error("".join(traceback.format_exception(error)))
        state.elapsed_ms += (time.perf_counter() - started) * 1000

    # ---------------------------------------------------------------------------- outputs

    def run_outputs(self) -> Iterator[Any]:
        """Each selected output, for every partition, once its step is done."""
        for output in self.selected_outputs:
            source = self.loaded.output_source(output)
            yield from self._output(output, source)
            if source in self.steps:
                self.steps[source].read()

    def _output(self, output: OutputSpec, source: str) -> Iterator[Any]:
        outcomes: dict[str, OutputOutcome] = {}
        self.outputs[output.name] = outcomes
        blocker = self._output_blocker(source)
        if blocker is not None:
            self.context.log.warning(f"output {output.name} skipped: {blocker}")
            for unit in self.units:
                outcomes[_unit_id(unit)] = OutputOutcome("skipped", reason=blocker)
            return
        results: dict[str, dg.Output[Any]] = {}
        try:
            for unit in self.units:
                results[_unit_id(unit)] = self._output_result(output, source, _unit_id(unit))
        except PlaybookError as e:
            e.at(location=self.loaded.output_location(output.name), field="metrics")
            self.context.log.error(f"output {output.name} failed: {e}")
            for unit in self.units:
                outcomes[_unit_id(unit)] = OutputOutcome("error", error=str(e))
            return
        key = asset_key(self.spec.id, output.name)
        try:
            self._store(key, results)
        except PlaybookError as e:
            e.at(location=self.loaded.output_location(output.name))
            self.context.log.error(f"output {output.name} failed: {e}")
            for unit in self.units:
                outcomes[_unit_id(unit)] = OutputOutcome("error", error=str(e))
            return
        yield self._named(key, results)
        checks: dict[str, list[dict[str, Any]]] = {}
        yield from self._checks(output.checks, key, results, checks)
        self.output_checks[output.name] = checks
        summaries = {unit_id: _Summary.of(result) for unit_id, result in results.items()}
        self.output_summaries[output.name] = summaries
        for unit_id, summary in summaries.items():
            outcomes[unit_id] = OutputOutcome(
                "success", row_count=summary.rows, facts=summary.metadata.get(FACTS_METADATA_KEY)
            )

    def _output_blocker(self, source: str) -> str | None:
        state = self.steps.get(source)
        if state is None:
            return None
        if state.error is not None:
            return f"step '{source}' failed"
        if state.reason is not None:
            return f"step '{source}' was skipped ({state.reason})"
        return None

    def _output_result(self, output: OutputSpec, source: str, unit_id: str) -> dg.Output[Any]:
        started = time.perf_counter()
        state = self.steps.get(source)
        step_result = None
        if state is not None:
            step_result = state.outputs.get(SHARED if state.mode == "shared" else unit_id)
        if output.type == "data" and step_result is not None:
            # The same table as its step: same encoding, same facts, same data version.
            kept = ("dagster/row_count", "dagster/column_schema", "preview", FACTS_METADATA_KEY)
            metadata = {name: step_result.metadata[name] for name in kept}
            metadata["execution_time_ms"] = dg.MetadataValue.float(0.0)
            return dg.Output(
                step_result.value, metadata=metadata, data_version=step_result.data_version
            )
        table = (
            _value_table(step_result) if step_result is not None else self._table(source, unit_id)
        )
        if output.type == "data":
            elapsed = (time.perf_counter() - started) * 1000
            return build_output(table, self.settings, request=None, elapsed_ms=elapsed)
        metrics = [(metric.name, metric.expression) for metric in output.metrics]
        aggregated = aggregate_table(table, [], metrics)
        facts = table_facts(aggregated)
        return build_output(
            aggregated,
            self.settings,
            request=None,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            facts={**facts, "values": facts["first"]},
        )

    # ----------------------------------------------------------------- results and checks

    def _named(self, key: dg.AssetKey, results: Mapping[str, dg.Output[Any]]) -> dg.Output[Any]:
        """One op output for an asset: a partition's result, or every partition's of a range
        (each with its own metadata, so each partition records what it holds)."""
        if not self.ranged_run:
            ((unit_id, result),) = results.items()
            metadata = {**result.metadata, **self._run_metadata(unit_id)}
            return dg.Output(
                result.value,
                output_name=output_name(key),
                metadata=metadata,
                data_version=result.data_version,
            )
        parts: dict[str, Any] = {}
        versions: list[str] = []
        for unit in self.units:
            unit_id = _unit_id(unit)
            result = results.get(unit_id) or results[SHARED]
            assert unit.key is not None
            parts[unit.key] = result.value
            metadata = {**result.metadata, **self._run_metadata(unit_id)}
            if isinstance(result.value, EncodedTable):
                path = artifact_file(
                    self.settings.artifacts_dir, key, self.context.run.run_id, unit.key
                )
                metadata[PATH_METADATA_KEY] = dg.MetadataValue.path(str(path))
                metadata[SHA256_METADATA_KEY] = dg.MetadataValue.text(result.value.sha256)
                metadata[BYTES_METADATA_KEY] = dg.MetadataValue.int(result.value.size)
            self.context.add_asset_metadata(metadata, asset_key=key, partition_key=unit.key)
            versions.append(result.data_version.value if result.data_version else "")
        version = hashlib.sha256("\n".join(versions).encode()).hexdigest()
        return dg.Output(
            PartitionedResult(parts),
            output_name=output_name(key),
            data_version=dg.DataVersion(version),
        )

    def _store(self, key: dg.AssetKey, results: Mapping[str, dg.Output[Any]]) -> None:
        """Store each partition's result before handing it to Dagster, at the path the I/O
        manager uses (it then finds the bytes in place), so a write that fails (a full disk)
        fails its step, with the file named, instead of ending the op."""
        if not self.settings.save_artifacts:
            return
        for unit in self.units:
            result = results.get(_unit_id(unit)) or results.get(SHARED)
            if result is None or not isinstance(result.value, EncodedTable):
                continue
            path = artifact_file(
                self.settings.artifacts_dir, key, self.context.run.run_id, unit.key
            )
            store_encoded(result.value, path)

    def _run_metadata(self, unit_id: str) -> dict[str, Any]:
        unit = SHARED if unit_id in {SHARED, RANGE} else unit_id
        info = self.infos.get(unit) or next(iter(self.infos.values()))
        return {RUN_ID_METADATA_KEY: info.run_id}

    def _checks(
        self,
        checks: Sequence[CheckSpec],
        key: dg.AssetKey,
        results: Mapping[str, dg.Output[Any]],
        recorded: dict[str, list[dict[str, Any]]],
    ) -> Generator[dg.AssetCheckResult, None, list[str]]:
        """Yield each check's result over every partition's table (a range's check passes
        when every partition passes); keep each partition's result for its report. Returns
        the failed blocking checks, described."""
        failed: list[str] = []
        for check in checks:
            per_unit: dict[str, dg.AssetCheckResult] = {}
            for unit_id, result in results.items():
                per_unit[unit_id] = evaluate_check(check, _value_table(result), key)
                recorded.setdefault(unit_id, []).append(_check_entry(key, check, per_unit[unit_id]))
            passed = all(result.passed for result in per_unit.values())
            if len(per_unit) == 1:
                (combined,) = per_unit.values()
            else:
                first = next(iter(per_unit.values()))
                combined = dg.AssetCheckResult(
                    asset_key=key,
                    check_name=check.check_name,
                    passed=passed,
                    severity=first.severity,
                    description=first.description,
                    metadata={
                        "observed_by_partition": dg.MetadataValue.json(
                            {
                                unit: _metadata_value(result.metadata.get("observed"))
                                for unit, result in per_unit.items()
                            }
                        )
                    },
                )
            yield combined
            if check.blocking and not passed and check.severity == "error":
                observed = [
                    _metadata_value(result.metadata.get("observed"))
                    for result in per_unit.values()
                    if not result.passed
                ]
                seen = f" (observed {', '.join(str(o) for o in observed)})" if observed else ""
                failed.append(f"{check.check_name}: {combined.description}{seen}")
        return failed

    # ---------------------------------------------------------------------------- reports

    def outcome(self, unit: PartitionUnit) -> RunOutcome:
        """What became of every step and output for one partition."""
        unit_id = _unit_id(unit)
        outcome = RunOutcome(error=self.error)
        not_run = f"not run: {self.error}" if self.error else "the run stopped before this"
        for step in self.spec.steps:
            state = self.steps.get(step.id)
            if state is None:
                outcome.steps[step.id] = StepOutcome("not_selected")
                continue
            summary = state.summary(unit_id)
            if state.error is not None:
                outcome.steps[step.id] = StepOutcome(
                    "error",
                    row_count=summary.rows if summary is not None else None,
                    execution_time_ms=state.elapsed_ms,
                    error=state.error,
                )
            elif summary is None:
                outcome.steps[step.id] = StepOutcome("skipped", reason=state.reason or not_run)
            else:
                metadata = summary.metadata
                cached = CACHED_RUN_KEY in metadata
                outcome.steps[step.id] = StepOutcome(
                    "cached" if cached else "success",
                    row_count=summary.rows,
                    execution_time_ms=float(metadata.get("execution_time_ms") or 0.0),
                    cached_from={
                        "run_id": metadata.get(CACHED_RUN_KEY),
                        "dagster_run_id": metadata.get(CACHED_DAGSTER_RUN_KEY),
                        "executed_at": metadata.get(CACHED_AT_KEY),
                    }
                    if cached
                    else None,
                    facts=metadata.get(FACTS_METADATA_KEY),
                )
            outcome.checks += state.checks.get(SHARED if state.mode == "shared" else unit_id, [])
        for output in self.spec.outputs:
            found = self.outputs.get(output.name)
            if found is not None:
                outcome.outputs[output.name] = found[unit_id]
            elif output in self.selected_outputs:
                outcome.outputs[output.name] = OutputOutcome("skipped", reason=not_run)
            else:
                outcome.outputs[output.name] = OutputOutcome("not_selected")
            outcome.checks += self.output_checks.get(output.name, {}).get(unit_id, [])
        return outcome

    def artifacts(self, unit: PartitionUnit) -> list[dict[str, Any]]:
        """The files this run stored for one partition, for its manifest."""
        unit_id = _unit_id(unit)
        named: list[tuple[str, _Summary | None]] = [
            (step_id, state.summary(unit_id) if state.error is None else None)
            for step_id, state in self.steps.items()
        ]
        named += [(name, found.get(unit_id)) for name, found in self.output_summaries.items()]
        artifacts: list[dict[str, Any]] = []
        for name, summary in named:
            if summary is None or summary.sha256 is None:
                continue
            key = asset_key(self.spec.id, name)
            path = artifact_file(
                self.settings.artifacts_dir, key, self.context.run.run_id, unit.key
            )
            entry: dict[str, Any] = {
                "asset": key.to_user_string(),
                "partition": unit.key,
                "path": str(path),
                "sha256": summary.sha256,
                "rows": summary.rows,
                "bytes": summary.size,
            }
            if summary.metadata.get(CACHED_RUN_KEY):
                entry["cached_from"] = summary.metadata[CACHED_RUN_KEY]
            artifacts.append(entry)
        return artifacts

    def reports(self) -> list[dict[str, Any]]:
        """Every partition's run report; their run records are written when artifacts are
        stored (whatever the outcome)."""
        artifacts_dir = Path(self.settings.artifacts_dir) if self.settings.save_artifacts else None
        reports: list[dict[str, Any]] = []
        for unit in self.units:
            info = self.infos[_unit_id(unit)]
            report = build_report(
                self.loaded, info, self.outcome(unit), artifacts_dir=artifacts_dir
            )
            view = self._report_view(_unit_id(unit), report)
            self.report_views[report["run_id"]] = view
            if artifacts_dir is not None:
                html = html_report(view, report["run_id"]) if view is not None else None
                try:
                    write_run_record(
                        report, self.loaded, self.artifacts(unit), artifacts_dir, html=html
                    )
                except RunRecordNotStoredError as e:
                    # The run happened: its report is still handed over, with what could
                    # not be written (the command line prints both).
                    report = {**report, "artifact_path": None}
                    cause = e.__cause__ if isinstance(e.__cause__, PlaybookError) else e
                    self.record_errors[report["run_id"]] = {
                        "message": cause.message,
                        "hint": cause.hint,
                    }
                    self.context.log.error(str(e))
            reports.append(report)
        return reports

    def _report_view(self, unit_id: str, report: Mapping[str, Any]) -> ReportView | None:
        """The report as people read it; None when it cannot be drawn (logged): the run's
        record and its JSON report never depend on it."""
        try:
            return report_view(report, self.spec, self.report_tables[unit_id].data(report))
        except Exception as e:
            self.context.log.error(
                "the run report could not be rendered: " + "".join(traceback.format_exception(e))
            )
            return None

    def report_result(self, reports: Sequence[Mapping[str, Any]]) -> dg.MaterializeResult:
        """The run report asset's materialization: each partition's report in its metadata."""
        key = asset_key(self.spec.id, REPORT_ASSET)
        per_partition = []
        for unit, report in zip(self.units, reports, strict=True):
            view = self.report_views.get(report["run_id"])
            markdown = markdown_report(view) if view is not None else None
            metadata = _report_metadata(report, self.settings.save_artifacts, markdown)
            if self.ranged_run:
                assert unit.key is not None
                self.context.add_asset_metadata(metadata, asset_key=key, partition_key=unit.key)
            per_partition.append(metadata)
        shared: dict[str, Any] = per_partition[0] if not self.ranged_run else {}
        shared[REPORTS_KEY] = dg.MetadataValue.json(list(reports))
        shared[RECORD_ERRORS_KEY] = dg.MetadataValue.json(self.record_errors)
        return dg.MaterializeResult(asset_key=key, metadata=shared)

    # ------------------------------------------------------------------------- the whole

    def set_parameters(self) -> None:
        """The run's parameters, checked (a launchpad value of the wrong type is an error
        naming the parameter)."""
        given = self.context.op_execution_context.op_config or {}
        try:
            self.parameters = parameter_values(self.spec, given)
        except PlaybookError:
            self.parameters = dict(given)  # the report shows what was given
            raise
        finally:
            self.infos = {
                unit_id: replace(info, parameters=self.parameters)
                for unit_id, info in self.infos.items()
            }

    def step_errors(self) -> dict[str, dict[str, Any]]:
        errors = {
            name: {"error": state.error, "execution_time_ms": round(state.elapsed_ms, 1)}
            for name, state in self.steps.items()
            if state.error is not None
        }
        for name, outcomes in self.outputs.items():
            for outcome in outcomes.values():
                if outcome.status == "error":
                    errors[name] = {"error": outcome.error, "execution_time_ms": 0.0}
                    break
        return errors


def run_playbook_op(context: dg.AssetExecutionContext, plan: PlaybookPlan) -> Iterator[Any]:
    """The op's body: selected steps, then outputs, then the records and the report (see the
    module doc)."""
    execution = _Execution(context, plan)
    _tag_run(context, plan.loaded.id, execution.settings.in_process)
    try:
        execution.set_parameters()
    except PlaybookError as e:
        execution.error = str(e)
    if execution.error is None:
        yield from execution.run_steps()
        yield from execution.run_outputs()
    errors = execution.step_errors()
    reports = execution.reports()
    if execution.error is not None or errors or any(r["status"] != "success" for r in reports):
        lines = [f"- {name}: {error['error']}" for name, error in errors.items()]
        if execution.error is not None:
            lines.insert(0, f"- {execution.error}")
        raise dg.Failure(
            description=f"{plan.loaded.id} failed:\n" + "\n".join(lines),
            metadata={
                STEP_ERRORS_KEY: dg.MetadataValue.json(errors),
                REPORTS_KEY: dg.MetadataValue.json(reports),
                RECORD_ERRORS_KEY: dg.MetadataValue.json(execution.record_errors),
            },
            allow_retries=False,
        )
    if execution.report_selected:
        yield execution.report_result(reports)


def _tag_run(context: dg.AssetExecutionContext, playbook_id: str, in_process: bool) -> None:
    """Tag the run with the playbooks it covers (a run launched from the UI has no tags of
    ours), so it can be found by playbook like runs the product launches, and, when the op
    runs in the run's own process, with that process, so a run whose process is killed is
    found and failed (``stale_runs``) instead of holding the queue for ever."""
    run = context.run
    tags: dict[str, str] = {}
    if TAG_PLAYBOOK not in run.tags:
        covered = sorted({key.path[0] for key in run.asset_selection or ()} or {playbook_id})
        tags[TAG_PLAYBOOK] = ",".join(covered)
    if in_process and TAG_PID not in run.tags:
        tags.update(process_tags())
    if tags:
        context.instance.add_run_tags(run.run_id, tags)


def _report_metadata(
    report: Mapping[str, Any], stored: bool, markdown: str | None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "report": dg.MetadataValue.md(
            markdown or "The report could not be rendered: see the run's log."
        ),
        "run_id": report["run_id"],
        "status": report["status"],
        "parameters": dg.MetadataValue.json(report["metadata"]["parameters_used"]),
        "insights": dg.MetadataValue.md("\n".join(f"- {i}" for i in report["insights"])),
    }
    if report.get("partition") is not None:
        metadata["partition"] = str(report["partition"])
    if stored and report.get("artifact_path"):
        json_path = Path(str(report["artifact_path"]))
        metadata["report_path"] = dg.MetadataValue.path(str(json_path))
        if markdown is not None:
            metadata["report_html"] = dg.MetadataValue.path(str(json_path.with_suffix(".html")))
    return metadata


def _check_entry(key: dg.AssetKey, check: CheckSpec, result: dg.AssetCheckResult) -> dict[str, Any]:
    return {
        "asset": key.to_user_string(),
        "check": check.check_name,
        "passed": result.passed,
        "severity": result.severity.value.lower(),
        "description": result.description,
        "observed": _metadata_value(result.metadata.get("observed")),
    }


def _unit_id(unit: PartitionUnit) -> str:
    return unit.key if unit.key is not None else ""


def _value_table(result: dg.Output[Any]) -> pa.Table:
    value = result.value
    return value.table if isinstance(value, EncodedTable) else value


def _metadata_value(value: Any) -> Any:
    """A metadata entry's plain value."""
    if isinstance(value, dg.MetadataValue):
        return value.value
    return value


def _failure_text(error: BaseException) -> str:
    if isinstance(error, dg.Failure) and error.description:
        return error.description
    if isinstance(error, PlaybookError):
        return str(error)
    return f"{type(error).__name__}: {error}"
