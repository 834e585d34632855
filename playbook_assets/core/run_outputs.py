"""The outputs of a run: each selected output for every partition, once its step is done. A
data output is its step's table (the same encoding and facts); an aggregate output computes its
metrics over the whole table."""

from __future__ import annotations

import time
from collections.abc import Iterator

from playbook_assets.core.engine import SHARED_WITH_STEP, Event, PlaybookRun, ResultsReady
from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.insights import table_facts
from playbook_assets.core.models import OutputSpec
from playbook_assets.core.pushdown import fetched, is_unfetched_view
from playbook_assets.core.report import FACTS_METADATA_KEY, OutputOutcome
from playbook_assets.core.results import ELAPSED_KEY, Result, build_result
from playbook_assets.core.run_state import OutputState, Summary, unit_id
from playbook_assets.core.transforms import aggregate_table


def run_outputs(run: PlaybookRun) -> Iterator[Event]:
    """Each selected output, for every partition, once its step is done."""
    for output in run.selected_outputs:
        source = run.loaded.output_source(output)
        yield from _output(run, output, source)
        if source in run.steps:
            run.steps[source].read()


def _output(run: PlaybookRun, output: OutputSpec, source: str) -> Iterator[Event]:
    state = OutputState()
    run.outputs[output.name] = state
    blocker = _output_blocker(run, source)
    if blocker is not None:
        run.env.log.warning(f"output {output.name} skipped: {blocker}")
        state.outcomes = {unit_id(u): OutputOutcome("skipped", reason=blocker) for u in run.units}
        return
    results: dict[str, Result] = {}
    try:
        try:
            for unit in run.units:
                results[unit_id(unit)] = _output_result(run, output, source, unit_id(unit))
        except PlaybookError as e:
            raise e.at(field="metrics")
        run.store(output.name, results)
    except PlaybookError as e:
        e.at(location=run.loaded.output_location(output.name))
        run.env.log.error(f"output {output.name} failed: {e}")
        state.outcomes = {unit_id(u): OutputOutcome("error", error=str(e)) for u in run.units}
        return
    yield ResultsReady(output.name, results)
    yield from run.evaluate_checks(output.name, output.checks, results, state.checks)
    state.summaries = {unit: Summary.of(result) for unit, result in results.items()}
    state.outcomes = {
        unit: OutputOutcome(
            "success", row_count=summary.rows, facts=summary.metadata.get(FACTS_METADATA_KEY)
        )
        for unit, summary in state.summaries.items()
    }


def _output_blocker(run: PlaybookRun, source: str) -> str | None:
    state = run.steps.get(source)
    if state is None:
        return None
    if state.error is not None:
        return f"step '{source}' failed"
    if state.reason is not None:
        return f"step '{source}' was skipped ({state.reason})"
    return None


def _output_result(run: PlaybookRun, output: OutputSpec, source: str, unit: str) -> Result:
    started = time.perf_counter()
    state = run.steps.get(source)
    step_result = state.result(unit) if state is not None else None
    view = step_result is not None and is_unfetched_view(step_result.table)
    if output.type == "data" and step_result is not None and not view:
        # The same table as its step: same encoding, same facts, same data version.
        metadata = {name: step_result.metadata[name] for name in SHARED_WITH_STEP}
        metadata[ELAPSED_KEY] = 0.0
        return Result(step_result.table, step_result.encoded, metadata)
    table = step_result.table if step_result is not None else run.table_of(source, unit)
    # An output of a view holds its rows: fetched from the warehouse now.
    table = fetched(table, run.env.services, run.env.settings.timeout_seconds)
    store = run.artifacts_dir is not None
    if output.type == "data":
        elapsed = (time.perf_counter() - started) * 1000
        return build_result(table, store=store, request=None, elapsed_ms=elapsed)
    metrics = [(metric.name, metric.expression) for metric in output.metrics]
    aggregated = aggregate_table(table, [], metrics)
    facts = table_facts(aggregated)
    return build_result(
        aggregated,
        store=store,
        request=None,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        facts={**facts, "values": facts["first"]},
    )
