"""What a playbook's op does when it runs.

A playbook is one Dagster op that materializes one asset per step and output, plus its run
report (a subsettable multi-asset, see ``factory``). The op runs the selected steps in
dependency order and hands each result to the steps that read it in memory, with no Parquet
round trip in between; a selected step whose upstream step is not selected reads that
upstream's latest stored result (same partition). A failing step does not stop the steps that
do not depend on it: its downstream steps are skipped, and the op fails at the end, recording
each step's error (``STEP_ERRORS_KEY``) for the run report. A failed blocking check skips the
downstream steps the same way.
"""

import time
import traceback
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from playbook_assets.artifacts import EncodedTable, read_latest_result
from playbook_assets.catalog import LoadedPlaybook, data_dependencies, step_dependencies
from playbook_assets.checks import evaluate as evaluate_check
from playbook_assets.errors import PlaybookError
from playbook_assets.execution import RunSettings, build_output, execute_step, fail
from playbook_assets.insights import table_facts
from playbook_assets.partitions import partition_values
from playbook_assets.references import ResolutionContext
from playbook_assets.report import STEP_ERRORS_KEY, RunContext, assemble_run_report
from playbook_assets.run_config import REPORT_ASSET, asset_key, parameter_values
from playbook_assets.run_records import run_artifacts, write_run_record
from playbook_assets.spec import AnyStep, CheckSpec, OutputSpec, QueryStep, SearchStep
from playbook_assets.transforms import aggregate_table


def output_name(key: dg.AssetKey) -> str:
    """The op output that materializes an asset (Dagster names multi-asset outputs so)."""
    return key.to_python_identifier()


Step = AnyStep


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

    @classmethod
    def build(cls, loaded: LoadedPlaybook, data_warehouse: str, crm: str) -> "PlaybookPlan":
        """The plan of a validated playbook, with the connections each step uses."""
        spec = loaded.spec
        data = data_dependencies(spec)
        upstream = {name: tuple(deps) for name, deps in step_dependencies(spec, data).items()}
        connections: dict[str, str | None] = {}
        for step in spec.steps:
            if isinstance(step, QueryStep):
                connections[step.id] = step.connection or data_warehouse
            elif isinstance(step, SearchStep):
                connections[step.id] = step.connection or crm
            else:
                connections[step.id] = None
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
            data_upstream={name: tuple(deps) for name, deps in data_dependencies(spec).items()},
            order=tuple(order),
            data_warehouse=data_warehouse,
            crm=crm,
        )

    @property
    def used_connections(self) -> set[str]:
        """Names of the connections the playbook's steps query."""
        return {name for name in self.connections.values() if name is not None}


@dataclass
class _RunState:
    """Results and failures so far in one execution of the op."""

    results: dict[str, dg.Output[Any]]
    errors: dict[str, dict[str, Any]]
    not_run: set[str]
    # How many selected steps and outputs have yet to read each step's result: a result no
    # one will read is let go, so a run holds only the tables it still needs.
    readers: dict[str, int]

    def blocked(self, upstream: Sequence[str]) -> bool:
        return any(name in self.errors or name in self.not_run for name in upstream)

    def finished_reading(self, upstream: Sequence[str]) -> None:
        for name in upstream:
            self.readers[name] = self.readers.get(name, 0) - 1
            if self.readers[name] <= 0:
                self.results.pop(name, None)


def run_playbook_op(context: dg.AssetExecutionContext, plan: PlaybookPlan) -> Iterator[Any]:
    """The op's body: selected steps, then outputs, then the report (see the module doc)."""
    loaded = plan.loaded
    spec = loaded.spec
    selected = context.selected_asset_keys
    settings: RunSettings = context.resources.run_settings
    parameters = parameter_values(spec, context.op_execution_context.op_config or {})
    resolution = ResolutionContext(
        parameters=parameters, steps={}, partition=partition_values(context, spec.partitions)
    )
    readers: dict[str, int] = {}
    for step_id in spec.step_ids:
        if asset_key(spec.id, step_id) in selected:
            for name in plan.data_upstream[step_id]:
                readers[name] = readers.get(name, 0) + 1
    for output in spec.outputs:
        if asset_key(spec.id, output.name) in selected:
            source = loaded.output_source(output)
            readers[source] = readers.get(source, 0) + 1
    state = _RunState(results={}, errors={}, not_run=set(), readers=readers)
    yield from _run_steps(context, plan, resolution, state, settings.max_parallel_steps)

    for output in spec.outputs:
        key = asset_key(spec.id, output.name)
        if key not in selected:
            continue
        source = loaded.output_source(output)
        if state.blocked([source]):
            context.log.warning(f"output {output.name} skipped: step {source} did not succeed")
            continue
        result = _output_result(context, state, loaded, output, source, settings)
        yield _named(result, key)
        yield from _checks(output.checks, key, _table(result))

    if state.errors:
        lines = "\n".join(f"- {name}: {error['error']}" for name, error in state.errors.items())
        raise dg.Failure(
            description=f"{len(state.errors)} step(s) of {spec.id} failed:\n{lines}",
            metadata={STEP_ERRORS_KEY: dg.MetadataValue.json(state.errors)},
            allow_retries=False,
        )
    report_key = asset_key(spec.id, REPORT_ASSET)
    if report_key in selected and not state.not_run:
        yield _report(context, plan, parameters, settings, report_key)


def _run_steps(
    context: dg.AssetExecutionContext,
    plan: PlaybookPlan,
    resolution: ResolutionContext,
    state: _RunState,
    max_parallel: int,
) -> Iterator[Any]:
    """Run the selected steps, each as soon as its upstream steps are done, up to
    ``max_parallel`` at once (threads: the work waits on a warehouse, an API or DuckDB, which
    release the GIL); yield each result and its checks as it completes."""
    spec = plan.loaded.spec
    selected = context.selected_asset_keys
    waiting = [name for name in plan.order if asset_key(spec.id, name) in selected]
    running: dict[Future[dg.Output[Any]], tuple[str, float]] = {}
    with ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix=spec.id) as pool:
        while waiting or running:
            busy = {name for name, _ in running.values()}
            for step_id in list(waiting):
                upstream = plan.upstream[step_id]
                if state.blocked(upstream):
                    waiting.remove(step_id)
                    state.not_run.add(step_id)
                    state.finished_reading(plan.data_upstream[step_id])
                    context.log.warning(f"step {step_id} skipped: an upstream step failed")
                elif len(running) < max_parallel and not any(
                    name in waiting or name in busy for name in upstream
                ):
                    waiting.remove(step_id)
                    started = time.perf_counter()
                    try:
                        inputs = {
                            name: _table_of(context, state, spec.id, name)
                            for name in plan.data_upstream[step_id]
                        }
                    except Exception as e:
                        _record_failure(context, state, step_id, e, started)
                        state.finished_reading(plan.data_upstream[step_id])
                        continue
                    future = pool.submit(
                        execute_step,
                        context,
                        plan.loaded,
                        spec.step(step_id),
                        plan.connections[step_id],
                        inputs,
                        resolution,
                    )
                    running[future] = (step_id, started)
                    busy.add(step_id)
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: plan.order.index(running[f][0])):
                step_id, started = running.pop(future)
                state.finished_reading(plan.data_upstream[step_id])
                try:
                    result = future.result()
                except Exception as e:  # one step's failure must not hide the others' results
                    _record_failure(context, state, step_id, e, started)
                    continue
                yield from _step_done(context, state, spec.id, spec.step(step_id), result)


def _step_done(
    context: dg.AssetExecutionContext,
    state: _RunState,
    playbook_id: str,
    step: Step,
    result: dg.Output[Any],
) -> Iterator[Any]:
    key = asset_key(playbook_id, step.id)
    if state.readers.get(step.id, 0) > 0:
        state.results[step.id] = result
    context.log.info(
        f"step {step.id}: {_table(result).num_rows:,} rows in "
        f"{result.metadata['execution_time_ms'].value} ms"
    )
    yield _named(result, key)
    failed_checks = yield from _checks(step.checks, key, _table(result))
    if failed_checks:  # a failed blocking check fails its step: downstream steps skip
        state.results.pop(step.id, None)
        state.errors[step.id] = {
            "error": "blocking check failed: " + "; ".join(failed_checks),
            "execution_time_ms": result.metadata["execution_time_ms"].value,
        }


def _record_failure(
    context: dg.AssetExecutionContext,
    state: _RunState,
    step_id: str,
    error: Exception,
    started: float,
) -> None:
    text = _failure_text(error)
    state.errors[step_id] = {
        "error": text,
        "execution_time_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    context.log.error(f"step {step_id} failed: {text}")
    if not isinstance(error, dg.Failure | PlaybookError):
        context.log.error("".join(traceback.format_exception(error)))


def _table_of(
    context: dg.AssetExecutionContext, state: _RunState, playbook_id: str, step_id: str
) -> pa.Table:
    """An upstream step's result: this run's, else its latest stored one."""
    if step_id in state.results:
        return _table(state.results[step_id])
    return read_latest_result(
        context.instance, asset_key(playbook_id, step_id), artifact_partition(context)
    )


def artifact_partition(context: dg.AssetExecutionContext) -> str | None:
    """The partition a run covers as the artifact store names it (a range as ``a...b``)."""
    if not context.has_partition_key_range:
        return None
    key_range = context.partition_key_range
    if key_range.start == key_range.end:
        return key_range.start
    return f"{key_range.start}...{key_range.end}"


def _table(result: dg.Output[Any]) -> pa.Table:
    value = result.value
    return value.table if isinstance(value, EncodedTable) else value


def _named(result: dg.Output[Any], key: dg.AssetKey) -> dg.Output[Any]:
    return dg.Output(
        result.value,
        output_name=output_name(key),
        metadata=result.metadata,
        data_version=result.data_version,
    )


def _checks(
    checks: Sequence[CheckSpec], key: dg.AssetKey, table: pa.Table
) -> Generator[dg.AssetCheckResult, None, list[str]]:
    """Yield the check results of a table; return the failed blocking checks, described."""
    failed: list[str] = []
    for check in checks:
        result = evaluate_check(check, table, key)
        yield result
        if check.blocking and not result.passed and check.severity == "error":
            observed = result.metadata.get("observed")
            seen = f" (observed {observed.value})" if observed is not None else ""
            failed.append(f"{check.check_name}: {result.description}{seen}")
    return failed


def _output_result(
    context: dg.AssetExecutionContext,
    state: _RunState,
    loaded: LoadedPlaybook,
    output: OutputSpec,
    source: str,
    settings: RunSettings,
) -> dg.Output[Any]:
    started = time.perf_counter()
    step_result = state.results.get(source)
    if output.type == "data" and step_result is not None:
        # The same table as its step: same encoding, same facts, same data version.
        kept = ("dagster/row_count", "dagster/column_schema", "preview", "facts")
        metadata = {name: step_result.metadata[name] for name in kept}
        metadata["execution_time_ms"] = dg.MetadataValue.float(0.0)
        return dg.Output(
            step_result.value, metadata=metadata, data_version=step_result.data_version
        )
    table = _table_of(context, state, loaded.id, source)
    if output.type == "data":
        return build_output(
            table, settings, request=None, elapsed_ms=(time.perf_counter() - started) * 1000
        )
    metrics = [(metric.name, metric.expression) for metric in output.metrics]
    try:
        aggregated = aggregate_table(table, [], metrics)
    except PlaybookError as e:
        raise fail(e, loaded.output_location(output.name), field="metrics") from e
    facts = table_facts(aggregated)
    return build_output(
        aggregated,
        settings,
        request=None,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        facts={**facts, "values": facts["first"]},
    )


def _report(
    context: dg.AssetExecutionContext,
    plan: PlaybookPlan,
    parameters: Mapping[str, Any],
    settings: RunSettings,
    key: dg.AssetKey,
) -> dg.MaterializeResult:
    loaded = plan.loaded
    run_context = RunContext(
        dagster_run_id=context.run.run_id,
        parameters=parameters,
        data_warehouse=plan.data_warehouse,
        crm=plan.crm,
    )
    artifacts_dir = Path(settings.artifacts_dir) if settings.save_artifacts else None
    report = assemble_run_report(
        context.instance, loaded, run_context, report_running=True, artifacts_dir=artifacts_dir
    )
    metadata: dict[str, Any] = {
        "run_id": report["run_id"],
        "status": report["status"],
        "insights": dg.MetadataValue.md("\n".join(f"- {i}" for i in report["insights"])),
    }
    if artifacts_dir is not None:
        artifacts = run_artifacts(context.instance, context.run.run_id, loaded.id)
        path = write_run_record(report, loaded, artifacts, artifacts_dir)
        metadata["report_path"] = dg.MetadataValue.path(str(path))
    return dg.MaterializeResult(asset_key=key, metadata=metadata)


def _failure_text(error: BaseException) -> str:
    if isinstance(error, dg.Failure) and error.description:
        return error.description
    if isinstance(error, PlaybookError):
        return str(error)
    return f"{type(error).__name__}: {error}"
