"""Checks that need the whole playbook: unique names, references, cycles, outputs, each step
(by its step type, ``core.steps``), insights, charts, partitions, checks, schedule and
triggers. The first problem is raised with its file, line, step and field."""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from playbook_assets.core.connection_types import connection_type
from playbook_assets.core.errors import (
    PlaybookError,
    PlaybookValidationError,
    SourceLocation,
    unknown_name_hint,
)
from playbook_assets.core.expressions import check_columns, parse_metric
from playbook_assets.core.graph import resolved_output_source, step_dependencies
from playbook_assets.core.insights import check_insight
from playbook_assets.core.parameters import coerce_parameter
from playbook_assets.core.partitions import has_time, reference_names
from playbook_assets.core.references import Reference, walk_references
from playbook_assets.core.report_render.charts import check_charts
from playbook_assets.core.steps.base import ValidationContext
from playbook_assets.core.steps.registry import step_type
from playbook_assets.core.validation_operations import check_operations

if TYPE_CHECKING:
    from playbook_assets.core.catalog import LoadedPlaybook
    from playbook_assets.core.config import ExecutorConfig

RESERVED_ASSET_NAMES = frozenset({"run_report"})


def validate_playbook(loaded: LoadedPlaybook, config: ExecutorConfig) -> None:
    """Checks that need the whole playbook: names, references, cycles, SQL, expressions."""
    spec = loaded.spec
    _check_names(loaded)
    parameter_names = {parameter.name for parameter in spec.parameters}
    _check_references(loaded, parameter_names)
    order, dependencies = _check_cycles(loaded)
    _check_partition_columns(loaded, order, dependencies)
    _check_outputs(loaded)
    columns = _check_steps(loaded, config, order)
    _check_insights(loaded, sorted(parameter_names))
    check_charts(spec, loaded.document, columns)
    check_operations(loaded, columns)
    _check_output_metrics(loaded, columns)


def _at_step(loaded: LoadedPlaybook, index: int, *path: str | int) -> SourceLocation:
    return loaded.document.location(("playbook", "steps", index, *path))


def _check_names(loaded: LoadedPlaybook) -> None:
    """Step ids, parameters and outputs are unique; parameter defaults have their types."""
    spec, document = loaded.spec, loaded.document
    seen: set[str] = set()
    for index, step_id in enumerate(spec.step_ids):
        if step_id in seen:
            raise PlaybookValidationError(
                f"duplicate step id '{step_id}'",
                location=_at_step(loaded, index, "id"),
                hint="step ids must be unique in a playbook",
            )
        if step_id in RESERVED_ASSET_NAMES:
            raise PlaybookValidationError(
                f"'{step_id}' is reserved for the run report",
                location=_at_step(loaded, index, "id"),
            )
        seen.add(step_id)
    parameter_names: set[str] = set()
    for index, parameter in enumerate(spec.parameters):
        where = document.location(("playbook", "parameters", index))
        if parameter.name in parameter_names:
            raise PlaybookValidationError(f"duplicate parameter '{parameter.name}'", location=where)
        parameter_names.add(parameter.name)
        if parameter.default is not None:
            try:
                coerce_parameter(parameter, parameter.default, strict=True)
            except PlaybookValidationError as e:
                raise e.at(
                    location=document.location(("playbook", "parameters", index, "default"))
                ) from None
    for index, output in enumerate(spec.outputs):
        where = document.location(("playbook", "outputs", index, "name"))
        if output.name in seen:
            raise PlaybookValidationError(
                f"output name '{output.name}' is already used by a step or output",
                location=where,
                hint="outputs and steps share one namespace (each becomes an asset)",
            )
        if output.name in RESERVED_ASSET_NAMES:
            raise PlaybookValidationError(
                f"'{output.name}' is reserved for the run report", location=where
            )
        seen.add(output.name)


def _check_references(loaded: LoadedPlaybook, parameter_names: set[str]) -> None:
    """Every ``${...}`` and ``depends_on`` names something that exists."""
    spec = loaded.spec
    for index, step in enumerate(spec.steps):
        try:
            references = list(walk_references(step.config.model_dump(mode="python")))
        except PlaybookError as e:
            raise e.at(location=_at_step(loaded, index, "config"), step=step.id) from None
        for path, reference in references:
            where = _at_step(loaded, index, "config", *path)
            _check_reference(loaded, reference, step.id, where, parameter_names)
        for dep_index, dep in enumerate(step.depends_on):
            if dep not in spec.step_ids:
                raise PlaybookValidationError(
                    f"depends_on names unknown step '{dep}'",
                    location=_at_step(loaded, index, "depends_on", dep_index),
                    step=step.id,
                    hint=unknown_name_hint(dep, spec.step_ids, "step"),
                )


def _check_cycles(loaded: LoadedPlaybook) -> tuple[list[str], dict[str, list[str]]]:
    """The steps in an order where each comes after what it reads; a cycle is named."""
    spec = loaded.spec
    dependencies = step_dependencies(spec)
    try:
        order = list(graphlib.TopologicalSorter(dependencies).static_order())
    except graphlib.CycleError as e:
        cycle = list(reversed(e.args[1]))
        raise PlaybookValidationError(
            f"dependency cycle: {' -> '.join(cycle)}",
            location=_at_step(loaded, spec.step_ids.index(cycle[0])),
            hint="remove one of these references or depends_on entries",
        ) from e
    return order, dependencies


def _check_outputs(loaded: LoadedPlaybook) -> None:
    """Each output reads a step that exists."""
    spec = loaded.spec
    for index, output in enumerate(spec.outputs):
        where = loaded.document.location(("playbook", "outputs", index, "source"))
        try:
            source = resolved_output_source(spec, output)
        except PlaybookValidationError as e:
            raise e.at(location=where) from None
        if source not in spec.step_ids:
            raise PlaybookValidationError(
                f"output '{output.name}' reads unknown step '{source}'",
                location=where,
                hint=unknown_name_hint(source, spec.step_ids, "step"),
            )


def _check_steps(
    loaded: LoadedPlaybook, config: ExecutorConfig, order: Sequence[str]
) -> dict[str, list[str] | None]:
    """Each step by its type (connection, SQL placeholders, expressions, known columns), in
    dependency order; the result columns known before running, by step."""
    spec = loaded.spec
    columns: dict[str, list[str] | None] = {}

    def category(name: str) -> str:
        return connection_type(config.connections[name]).category

    for step_id in order:
        step = spec.step(step_id)
        index = spec.step_ids.index(step_id)
        ctx = ValidationContext(loaded, config, index, columns, category)
        _check_materialize(loaded, index)
        try:
            columns[step_id] = step_type(step).validate(step, ctx)
        except PlaybookError as e:
            raise e.at(location=_at_step(loaded, index), step=step_id) from None
    return columns


def _check_materialize(loaded: LoadedPlaybook, index: int) -> None:
    """Only a query can be a view, and a view has no rows for checks to read."""
    step = loaded.spec.steps[index]
    if step.materialize != "view":
        return
    kind = step_type(step).name
    if kind != "query":
        raise PlaybookValidationError(
            f"a {kind} step cannot be a view: only a query step can have 'materialize: view'",
            location=_at_step(loaded, index, "materialize"),
            step=step.id,
            field="materialize",
            hint="remove 'materialize: view' (a transform over views runs on their warehouse "
            "by itself)",
        )
    if step.partition_column is not None:
        raise PlaybookValidationError(
            "a view cannot be split by partition_column: it keeps its SQL, not its rows",
            location=_at_step(loaded, index, "partition_column"),
            step=step.id,
            field="partition_column",
            hint="remove partition_column (the view then runs once per partition), "
            "or remove 'materialize: view'",
        )
    if step.checks:
        raise PlaybookValidationError(
            "a view keeps its SQL, not its rows: its checks would have nothing to read",
            location=_at_step(loaded, index, "checks"),
            step=step.id,
            field="checks",
            hint="put the checks on a step that reads the view, or remove 'materialize: view'",
        )


def _check_insights(loaded: LoadedPlaybook, parameters: list[str]) -> None:
    spec = loaded.spec
    aggregates = {
        output.name: [metric.name for metric in output.metrics]
        for output in spec.outputs
        if output.type == "aggregate"
    }
    tables = [*(output.name for output in spec.outputs if output.type == "data"), *spec.step_ids]
    for index, text in enumerate(spec.insights):
        try:
            check_insight(text, aggregates=aggregates, tables=tables, parameters=parameters)
        except PlaybookError as e:
            where = loaded.document.location(("playbook", "insights", index))
            raise e.at(location=where, field="insights") from None


def _check_output_metrics(loaded: LoadedPlaybook, columns: Mapping[str, list[str] | None]) -> None:
    spec = loaded.spec
    for index, output in enumerate(spec.outputs):
        if output.type != "aggregate":
            continue
        known = columns.get(resolved_output_source(spec, output))
        for metric_index, metric in enumerate(output.metrics):
            where = loaded.document.location(
                ("playbook", "outputs", index, "metrics", metric_index, "expression")
            )
            try:
                parsed = parse_metric(metric.expression)
                if known is not None:
                    check_columns(parsed, known, f"output '{output.name}'")
            except PlaybookError as e:
                raise e.at(location=where, field=f"metrics.{metric.name}") from None


def _check_partition_columns(
    loaded: LoadedPlaybook, order: Sequence[str], dependencies: Mapping[str, list[str]]
) -> None:
    """``partition_column`` needs time partitions; a single-run backfill needs it on every
    source step that reads the partition window and nothing partitioned: such a step runs
    once over the whole range, and its result must be split per partition."""
    spec = loaded.spec
    document = loaded.document
    time_partitioned = has_time(spec.partitions)
    single_run = spec.partitions is not None and spec.partitions.backfill == "single_run"
    partitioned: set[str] = set()
    for step_id in order:
        step = spec.step(step_id)
        index = spec.step_ids.index(step_id)
        if step.partition_column is not None and not time_partitioned:
            raise PlaybookValidationError(
                "partition_column needs time partitions (daily, weekly or monthly)",
                location=document.location(("playbook", "steps", index, "partition_column")),
                step=step_id,
                field="partition_column",
            )
        reads = {
            reference.name
            for _, reference in walk_references(step.config.model_dump(mode="python"))
            if reference.kind == "partition"
        }
        upstream_partitioned = any(name in partitioned for name in dependencies[step_id])
        if reads or upstream_partitioned:
            partitioned.add(step_id)
        once_over_range = (
            single_run
            and reads
            and reads <= {"start", "end"}
            and not upstream_partitioned
            and not step_type(step).transform
        )
        if once_over_range and step.partition_column is None:
            raise PlaybookValidationError(
                "a single-run backfill queries the whole range once, so this step's result "
                "must be split per partition, and nothing says which column places a row",
                location=document.location(("playbook", "steps", index)),
                step=step_id,
                field="partition_column",
                hint="add 'partition_column: <the date or timestamp column of the result>' "
                "to the step, or use backfill: per_partition",
            )


def _check_reference(
    loaded: LoadedPlaybook,
    reference: Reference,
    step_id: str,
    where: SourceLocation,
    parameter_names: set[str],
) -> None:
    spec = loaded.spec
    if reference.kind == "parameters" and reference.name not in parameter_names:
        raise PlaybookValidationError(
            f"unknown parameter '{reference.name}' in {reference.text}",
            location=where,
            step=step_id,
            hint=unknown_name_hint(reference.name, parameter_names, "parameter"),
        )
    if reference.kind == "steps":
        if reference.name == step_id:
            raise PlaybookValidationError(
                f"step refers to its own result in {reference.text}", location=where, step=step_id
            )
        if reference.name not in spec.step_ids:
            raise PlaybookValidationError(
                f"unknown step '{reference.name}' in {reference.text}",
                location=where,
                step=step_id,
                hint=unknown_name_hint(reference.name, spec.step_ids, "step"),
            )
    if reference.kind == "partition":
        names = reference_names(spec.partitions)
        if not names:
            raise PlaybookValidationError(
                f"{reference.text} is used, but the playbook declares no partitions",
                location=where,
                step=step_id,
                hint="add 'partitions:' to the playbook",
            )
        if reference.name not in names:
            raise PlaybookValidationError(
                f"{reference.text} is not available for these partitions",
                location=where,
                step=step_id,
                hint=unknown_name_hint(reference.name, names, "partition value"),
            )
