"""Finding, loading and validating playbooks.

Built-in templates are read first, then the deployment's own playbooks (``playbooks/``
beside the config file); a deployment playbook with a built-in's id replaces it. A broken
playbook is kept aside with its error, so one bad file never hides the others.
"""

from __future__ import annotations

import graphlib
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import ValidationError

from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.connection_types import connection_type
from playbook_assets.core.errors import (
    PlaybookError,
    PlaybookNotFoundError,
    PlaybookValidationError,
    SourceLocation,
    did_you_mean,
    unknown_name_hint,
)
from playbook_assets.core.expressions import (
    check_columns,
    parse_condition,
    parse_join_on,
    parse_metric,
)
from playbook_assets.core.insights import check_insight
from playbook_assets.core.parameters import coerce_parameter, resolve_parameters
from playbook_assets.core.partitions import has_time, reference_names
from playbook_assets.core.references import Reference, walk_references, whole_reference
from playbook_assets.core.report_render.charts import check_charts
from playbook_assets.core.spec import (
    AggregateStep,
    AnyStep,
    AssetTrigger,
    CheckSpec,
    FileStep,
    FileTrigger,
    FilterStep,
    GraphQLStep,
    JoinStep,
    MultiPartitions,
    OutputSpec,
    PlaybookFile,
    PlaybookSpec,
    QueryStep,
    RequestStep,
    SearchStep,
    StaticPartitions,
)
from playbook_assets.core.sql import SqlTemplateError, placeholders
from playbook_assets.core.yaml_source import YamlDocument, load_yaml, load_yaml_file, read_bounded

RESERVED_ASSET_NAMES = frozenset({"run_report"})
BROKEN_ASSET_NAME = "invalid_playbook"
# What Dagster refuses in a group name and in a part of an asset key.
_NOT_IN_ASSET_NAMES = re.compile(r"[^A-Za-z0-9_]")
logger = logging.getLogger(__name__)
STEP_TYPES = ("query", "search", "join", "aggregate", "filter", "request", "graphql", "read")


@dataclass(frozen=True)
class LoadedPlaybook:
    """A valid playbook with where it came from."""

    spec: PlaybookSpec
    path: Path
    document: YamlDocument
    origin: str  # "builtin" or "custom"
    sha256: str
    text: str = ""  # the file as it was loaded: run records keep a copy

    @property
    def id(self) -> str:
        """The playbook id."""
        return self.spec.id

    @property
    def display_path(self) -> str:
        """The file as shown in messages."""
        return self.document.path

    def step_location(self, step_id: str) -> SourceLocation:
        """Where a step is defined."""
        return self.document.location(("playbook", "steps", self.spec.step_ids.index(step_id)))

    def output_location(self, name: str) -> SourceLocation:
        """Where an output is defined."""
        names = [output.name for output in self.spec.outputs]
        return self.document.location(("playbook", "outputs", names.index(name)))

    def output_source(self, output: OutputSpec) -> str:
        """The step an output reads (aggregate outputs default to the first data output's)."""
        return resolved_output_source(self.spec, output)


@dataclass(frozen=True)
class BrokenPlaybook:
    """A playbook file that failed to load, with its error."""

    path: Path
    display_path: str
    playbook_id: str | None
    error: PlaybookError
    # Its asset in the code location, unique among the catalog's (``name_broken_assets``).
    asset_key: tuple[str, str] = ("invalid", "invalid_playbook")


@dataclass
class PlaybookCatalog:
    """Every playbook found: the valid ones by id, and the broken ones."""

    playbooks: dict[str, LoadedPlaybook] = field(default_factory=dict)
    broken: list[BrokenPlaybook] = field(default_factory=list)
    replaced: dict[str, Path] = field(default_factory=dict)

    def get(self, playbook_id: str) -> LoadedPlaybook:
        """The playbook with this id; unknown ids list the valid ones and the closest match."""
        if playbook_id in self.playbooks:
            return self.playbooks[playbook_id]
        for broken in self.broken:
            if broken.playbook_id == playbook_id:
                raise broken.error
        valid = sorted(self.playbooks)
        suggestion = did_you_mean(playbook_id, valid)
        hint = f"valid ids: {', '.join(valid)}" if valid else "no playbook is defined"
        if suggestion:
            hint = f"{suggestion} ({hint})"
        raise PlaybookNotFoundError(f"unknown playbook '{playbook_id}'", hint=hint)


def display_path(path: Path) -> str:
    """A path relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def playbook_files(directories: Iterable[Path]) -> list[Path]:
    """YAML files in the given folders, sorted by name within each folder."""
    files: list[Path] = []
    for directory in directories:
        if directory.is_dir():
            files.extend(sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"}))
    return files


def load_catalog(
    config: ExecutorConfig,
    template_dirs: Sequence[Path],
    extra_files: Sequence[Path] = (),
) -> PlaybookCatalog:
    """Load built-in templates, then the deployment's playbooks (which replace built-ins)."""
    catalog = PlaybookCatalog()
    sources: list[tuple[Path, str]] = [(p, "builtin") for p in playbook_files(template_dirs)]
    sources += [(p, "custom") for p in playbook_files([config.playbooks_dir])]
    sources += [(p, "custom") for p in extra_files]
    for path, origin in sources:
        try:
            loaded = load_playbook_file(path, config, origin)
        except PlaybookError as e:
            catalog.broken.append(
                BrokenPlaybook(path, display_path(path), _guess_id(path, config), e)
            )
            continue
        except Exception as e:  # a fault in one file's checks must not hide the others
            logger.exception("unexpected error while loading %s", path)
            error = PlaybookValidationError(
                f"unexpected error while loading the playbook: {type(e).__name__}: {e}",
                location=SourceLocation(display_path(path)),
                hint="this is a fault of the product, not of the file: please report it",
            )
            catalog.broken.append(BrokenPlaybook(path, display_path(path), path.stem, error))
            continue
        previous = catalog.playbooks.get(loaded.id)
        if previous is not None:
            if previous.origin == "builtin" and origin == "custom":
                catalog.replaced[loaded.id] = previous.path
            else:
                error = PlaybookValidationError(
                    f"playbook id '{loaded.id}' is already defined in {previous.display_path}",
                    location=loaded.document.location(("playbook", "id")),
                    hint="give each playbook a unique id",
                )
                catalog.broken.append(BrokenPlaybook(path, loaded.display_path, loaded.id, error))
                continue
        catalog.playbooks[loaded.id] = loaded
    check_asset_triggers(catalog)
    catalog.broken = name_broken_assets(catalog)
    return catalog


def name_broken_assets(catalog: PlaybookCatalog) -> list[BrokenPlaybook]:
    """The broken playbooks, each with an asset key of its own.

    The key is ``[id, invalid_playbook]`` (the file's name when the id is unknown or not a
    valid name); a second broken file with the same id, or an id whose valid playbook has an
    asset of that name, gets ``invalid_playbook_2``, ``_3``, ...: two broken files never
    collide, whatever their ids.
    """
    taken = {
        (loaded.id, name)
        for loaded in catalog.playbooks.values()
        for name in [*loaded.spec.step_ids, *(o.name for o in loaded.spec.outputs), "run_report"]
    }
    named: list[BrokenPlaybook] = []
    for broken in catalog.broken:
        prefix = _asset_name(broken.playbook_id) or _asset_name(broken.path.stem) or "invalid"
        name = BROKEN_ASSET_NAME
        number = 1
        while (prefix, name) in taken:
            number += 1
            name = f"{BROKEN_ASSET_NAME}_{number}"
        taken.add((prefix, name))
        named.append(replace(broken, asset_key=(prefix, name)))
    return named


def _asset_name(text: str | None) -> str | None:
    """``text`` as one part of an asset key and a group name, if it can be one."""
    return _NOT_IN_ASSET_NAMES.sub("_", text) if text else None


def load_playbook_file(
    path: Path, config: ExecutorConfig, origin: str = "custom"
) -> LoadedPlaybook:
    """Load, parse and validate one playbook file."""
    shown = display_path(path)
    limits = config.limits.yaml_limits()
    raw = read_bounded(path, shown, limits.max_file_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PlaybookValidationError(
            "the file is not UTF-8 text", location=SourceLocation(shown)
        ) from e
    document = load_yaml(text, shown, limits)
    spec = parse_playbook(document)
    loaded = LoadedPlaybook(
        spec=spec,
        path=path,
        document=document,
        origin=origin,
        sha256=hashlib.sha256(raw).hexdigest(),
        text=text,
    )
    validate_playbook(loaded, config)
    return loaded


def parse_playbook(document: YamlDocument) -> PlaybookSpec:
    """Turn a YAML document into the spec models; the first error names its line."""
    if not isinstance(document.data, dict) or "playbook" not in document.data:
        raise PlaybookValidationError(
            "a playbook file must have a single root key 'playbook:'",
            location=document.location(),
        )
    try:
        return PlaybookFile.model_validate(document.data).playbook
    except ValidationError as e:
        raise _validation_error(e, document) from e


def _validation_error(error: ValidationError, document: YamlDocument) -> PlaybookValidationError:
    # A misspelt key also makes the key it was meant to be "missing": report the typo.
    errors = sorted(error.errors(), key=lambda item: item["type"] != "extra_forbidden")
    first = errors[0]
    loc = list(first["loc"])
    if first["type"] == "union_tag_invalid":
        loc.append("type")
    location = document.location_of_loc(loc)
    step = _step_id_at(document, loc)
    matched = document.matched_path(loc)
    field_name = ".".join(str(part) for part in matched[3:] if not isinstance(part, int)) or None
    if step is None:
        field_name = ".".join(str(part) for part in matched[1:]) or None
    if first["type"] == "extra_forbidden":
        key = str(loc[-1])
        message = f"unknown key '{key}'"
        hint = _unknown_key_hint(key, loc)
        field_name = ".".join(str(p) for p in matched[3 if step else 1 : -1]) or None
    elif first["type"] == "missing":
        message = f"missing required key '{loc[-1]}'"
        hint = None
        field_name = ".".join(str(p) for p in matched[3 if step else 1 :]) or None
    elif first["type"] == "union_tag_invalid":
        tag = str((first.get("ctx") or {}).get("tag", ""))
        message = f"unknown step type '{tag}'"
        hint = unknown_name_hint(tag, list(STEP_TYPES), "step type")
        field_name = "type"
    elif first["type"] == "union_tag_not_found":
        message = "missing required key 'type'"
        hint = f"one of {', '.join(STEP_TYPES)}"
    elif first["type"] == "literal_error":
        message = f"{first['input']!r} is not allowed here: {first['msg']}"
        hint = None
    else:
        message = first["msg"].removeprefix("Value error, ")
        hint = None
    return PlaybookValidationError(
        message, location=location, step=step, field=field_name, hint=hint
    )


def _step_id_at(document: YamlDocument, loc: Sequence[Any]) -> str | None:
    if len(loc) >= 3 and loc[0] == "playbook" and loc[1] == "steps" and isinstance(loc[2], int):
        steps = document.data["playbook"].get("steps") or []
        if loc[2] < len(steps) and isinstance(steps[loc[2]], dict):
            step_id = steps[loc[2]].get("id")
            return str(step_id) if step_id is not None else f"#{loc[2] + 1}"
    return None


def _unknown_key_hint(key: str, loc: Sequence[Any]) -> str | None:
    from playbook_assets.core import spec as spec_module

    parents = [str(part) for part in loc[:-1] if isinstance(part, str)]
    candidates: dict[str, type[spec_module.StrictModel]] = {
        "query": spec_module.QueryStep,
        "search": spec_module.SearchStep,
        "join": spec_module.JoinStep,
        "aggregate": spec_module.AggregateStep,
        "filter": spec_module.FilterStep,
        "request": spec_module.RequestStep,
        "graphql": spec_module.GraphQLStep,
        "read": spec_module.FileStep,
    }
    model: type[spec_module.StrictModel] | None = None
    if parents and parents[-1] == "config" and len(parents) >= 2 and parents[-2] in candidates:
        model = candidates[parents[-2]].model_fields["config"].annotation  # type: ignore[assignment]
    elif parents and parents[-1] in candidates:
        model = candidates[parents[-1]]
    elif parents and parents[-1] == "playbook":
        model = spec_module.PlaybookSpec
    elif parents and parents[-1] == "outputs":
        model = spec_module.OutputSpec
    elif parents and parents[-1] == "parameters":
        model = spec_module.ParameterSpec
    elif parents and parents[-1] in {"filters", "filter_groups"}:
        model = spec_module.SearchFilter
    elif parents and parents[-1] == "metrics":
        model = spec_module.MetricSpec
    elif parents and parents[-1] == "charts":
        model = spec_module.ChartSpec
    if model is None:
        return None
    return unknown_name_hint(key, model.model_fields, "key")


def _guess_id(path: Path, config: ExecutorConfig) -> str | None:
    try:
        document = load_yaml_file(path, limits=config.limits.yaml_limits())
    except PlaybookError:
        return path.stem
    data = document.data
    if isinstance(data, dict) and isinstance(data.get("playbook"), dict):
        playbook_id = data["playbook"].get("id")
        if isinstance(playbook_id, str):
            return playbook_id
    return path.stem


def resolved_output_source(spec: PlaybookSpec, output: OutputSpec) -> str:
    """The step id an output reads."""
    source = output.source
    if source is None:
        for candidate in spec.outputs:
            if candidate.type == "data" and candidate.source is not None:
                source = candidate.source
                break
    if source is None:
        raise PlaybookValidationError(
            f"aggregate output '{output.name}' has no source and there is no data output",
            hint="add 'source: ${steps.ID}'",
        )
    reference = whole_reference(source)
    if reference is None or reference.kind != "steps" or reference.column is not None:
        raise PlaybookValidationError(
            f"output source must be a whole step result like ${{steps.ID}}, got '{source}'"
        )
    return reference.name


def step_dependencies(
    spec: PlaybookSpec, data: dict[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """Each step's upstream steps: its ``${steps.*}`` references, then ``depends_on``
    (``data``: the ``data_dependencies`` of the spec, when already worked out)."""
    data = data if data is not None else data_dependencies(spec)
    result: dict[str, list[str]] = {}
    for step in spec.steps:
        upstream = list(data[step.id])
        upstream += [dep for dep in dict.fromkeys(step.depends_on) if dep not in upstream]
        result[step.id] = upstream
    return result


def data_dependencies(spec: PlaybookSpec) -> dict[str, list[str]]:
    """Each step's upstream steps whose results it reads (references only)."""
    result: dict[str, list[str]] = {}
    for step in spec.steps:
        upstream: list[str] = []
        for _, reference in walk_references(step.config.model_dump(mode="python")):
            if reference.kind == "steps" and reference.name not in upstream:
                upstream.append(reference.name)
        result[step.id] = upstream
    return result


def validate_playbook(loaded: LoadedPlaybook, config: ExecutorConfig) -> None:
    """Checks that need the whole playbook: names, references, cycles, SQL, expressions."""
    spec = loaded.spec
    document = loaded.document
    step_ids = spec.step_ids

    def at_step(index: int, *path: str | int) -> SourceLocation:
        return document.location(("playbook", "steps", index, *path))

    # Unique names.
    seen: dict[str, int] = {}
    for index, step_id in enumerate(step_ids):
        if step_id in seen:
            raise PlaybookValidationError(
                f"duplicate step id '{step_id}'",
                location=at_step(index, "id"),
                hint="step ids must be unique in a playbook",
            )
        seen[step_id] = index
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
    output_names: set[str] = set()
    for index, output in enumerate(spec.outputs):
        where = document.location(("playbook", "outputs", index, "name"))
        if output.name in output_names or output.name in seen:
            raise PlaybookValidationError(
                f"output name '{output.name}' is already used by a step or output",
                location=where,
                hint="outputs and steps share one namespace (each becomes an asset)",
            )
        if output.name in RESERVED_ASSET_NAMES:
            raise PlaybookValidationError(
                f"'{output.name}' is reserved for the run report", location=where
            )
        output_names.add(output.name)
    for index, step_id in enumerate(step_ids):
        if step_id in RESERVED_ASSET_NAMES:
            raise PlaybookValidationError(
                f"'{step_id}' is reserved for the run report", location=at_step(index, "id")
            )

    # References and depends_on.
    for index, step in enumerate(spec.steps):
        config_data = step.config.model_dump(mode="python")
        try:
            references = list(walk_references(config_data))
        except PlaybookError as e:
            raise e.at(location=at_step(index, "config"), step=step.id) from None
        for path, reference in references:
            _check_reference(
                loaded, reference, step.id, at_step(index, "config", *path), parameter_names
            )
        for dep_index, dep in enumerate(step.depends_on):
            if dep not in seen:
                raise PlaybookValidationError(
                    f"depends_on names unknown step '{dep}'",
                    location=at_step(index, "depends_on", dep_index),
                    step=step.id,
                    hint=unknown_name_hint(dep, step_ids, "step"),
                )

    # Cycles.
    dependencies = step_dependencies(spec)
    sorter = graphlib.TopologicalSorter(dependencies)
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as e:
        cycle = list(reversed(e.args[1]))
        raise PlaybookValidationError(
            f"dependency cycle: {' -> '.join(cycle)}",
            location=at_step(step_ids.index(cycle[0])),
            hint="remove one of these references or depends_on entries",
        ) from e

    _check_partition_columns(loaded, order, dependencies)

    # Outputs.
    for index, output in enumerate(spec.outputs):
        where = document.location(("playbook", "outputs", index, "source"))
        try:
            source = resolved_output_source(spec, output)
        except PlaybookValidationError as e:
            raise e.at(location=where) from None
        if source not in seen:
            raise PlaybookValidationError(
                f"output '{output.name}' reads unknown step '{source}'",
                location=where,
                hint=unknown_name_hint(source, step_ids, "step"),
            )

    # Step configuration: connections, SQL placeholders, expressions and known columns.
    columns: dict[str, list[str] | None] = {}
    by_id = {step.id: step for step in spec.steps}
    for step_id in order:
        step = by_id[step_id]
        index = step_ids.index(step_id)
        try:
            columns[step_id] = _validate_step(loaded, step, index, config, columns)
        except PlaybookError as e:
            raise e.at(location=at_step(index), step=step_id) from None

    aggregates = {
        output.name: [metric.name for metric in output.metrics]
        for output in spec.outputs
        if output.type == "aggregate"
    }
    tables = [*(output.name for output in spec.outputs if output.type == "data"), *step_ids]
    for index, text in enumerate(spec.insights):
        try:
            check_insight(
                text, aggregates=aggregates, tables=tables, parameters=sorted(parameter_names)
            )
        except PlaybookError as e:
            raise e.at(
                location=document.location(("playbook", "insights", index)), field="insights"
            ) from None
    check_charts(spec, document, columns)

    _validate_operations(loaded, columns)

    for index, output in enumerate(spec.outputs):
        if output.type != "aggregate":
            continue
        known = columns.get(resolved_output_source(spec, output))
        for metric_index, metric in enumerate(output.metrics):
            where = document.location(
                ("playbook", "outputs", index, "metrics", metric_index, "expression")
            )
            try:
                parsed = parse_metric(metric.expression)
                if known is not None:
                    check_columns(parsed, known, f"output '{output.name}'")
            except PlaybookError as e:
                raise e.at(location=where, field=f"metrics.{metric.name}") from None


def _validate_operations(loaded: LoadedPlaybook, columns: Mapping[str, list[str] | None]) -> None:
    """Checks, schedule and triggers."""
    spec = loaded.spec
    document = loaded.document
    owners: list[tuple[tuple[str | int, ...], list[CheckSpec], list[str] | None]] = []
    for index, step in enumerate(spec.steps):
        owners.append((("steps", index), step.checks, columns.get(step.id)))
    for index, output in enumerate(spec.outputs):
        known = None if output.type == "aggregate" else columns.get(loaded.output_source(output))
        if output.type == "aggregate":
            known = [metric.name for metric in output.metrics]
        owners.append((("outputs", index), output.checks, known))
    for path, checks, known in owners:
        names: set[str] = set()
        for check_index, check in enumerate(checks):
            where = document.location(("playbook", *path, "checks", check_index))
            if check.check_name in names:
                raise PlaybookValidationError(
                    f"two checks are named '{check.check_name}'",
                    location=where,
                    hint="give one of them a 'name'",
                )
            names.add(check.check_name)
            try:
                if check.type == "expression":
                    parsed = parse_metric(str(check.expression))
                    if known is not None:
                        check_columns(parsed, known, f"check '{check.check_name}'")
                elif known is not None:
                    for column in [*check.columns, *([check.column] if check.column else [])]:
                        if column not in known:
                            raise PlaybookValidationError(
                                f"unknown column '{column}' in check '{check.check_name}'",
                                hint=unknown_name_hint(column, known, "column"),
                            )
            except PlaybookError as e:
                raise e.at(location=where, field="checks") from None

    if spec.schedule is not None:
        where = document.location(("playbook", "schedule"))
        try:
            dg.ScheduleDefinition(
                name="validation",
                cron_schedule=spec.schedule.cron,
                job_name="validation",
                execution_timezone=spec.schedule.timezone,
            )
        except dg.DagsterInvalidDefinitionError as e:
            raise PlaybookValidationError(
                f"invalid schedule: {e}",
                location=where,
                field="schedule",
                hint="cron looks like '0 6 * * 1-5'; timezone like 'Europe/Paris'",
            ) from e
        try:
            resolve_parameters(spec, spec.schedule.parameters, strict=True)
        except PlaybookError as e:
            raise e.at(location=where, field="schedule.parameters") from None

    for index, trigger in enumerate(spec.triggers):
        where = document.location(("playbook", "triggers", index))
        if isinstance(trigger, FileTrigger):
            if isinstance(spec.partitions, StaticPartitions | MultiPartitions):
                raise PlaybookValidationError(
                    "a file trigger cannot choose among static or two-dimensional partitions",
                    location=where,
                    field="triggers",
                    hint="use it on an unpartitioned, time- or dynamically-partitioned playbook",
                )
            if "${" in trigger.path:
                raise PlaybookValidationError(
                    "a file trigger's path cannot contain ${...} references",
                    location=where,
                    field="triggers.path",
                )
            if trigger.parameter is not None:
                parameter = spec.parameter(trigger.parameter)
                if parameter is None or parameter.type != "string":
                    raise PlaybookValidationError(
                        f"the file trigger sets parameter '{trigger.parameter}', "
                        "which must be declared with type: string",
                        location=where,
                        field="triggers.parameter",
                        hint=unknown_name_hint(
                            trigger.parameter, [p.name for p in spec.parameters], "parameter"
                        ),
                    )
        elif trigger.asset.count("/") != 1:
            raise PlaybookValidationError(
                f"'{trigger.asset}' is not an asset key",
                location=where,
                field="triggers.asset",
                hint="write playbook_id/step_or_output, e.g. presales_analysis/summary",
            )


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
            and not isinstance(step, JoinStep | AggregateStep | FilterStep)
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


def check_asset_triggers(catalog: PlaybookCatalog) -> None:
    """Asset triggers must name a step or output of a loaded playbook; a playbook whose
    trigger does not is moved to the broken ones."""
    known = {
        f"{loaded.id}/{name}"
        for loaded in catalog.playbooks.values()
        for name in [*loaded.spec.step_ids, *(o.name for o in loaded.spec.outputs)]
    }
    for playbook_id, loaded in list(catalog.playbooks.items()):
        for index, trigger in enumerate(loaded.spec.triggers):
            if isinstance(trigger, AssetTrigger) and trigger.asset not in known:
                error = PlaybookValidationError(
                    f"the asset trigger names unknown asset '{trigger.asset}'",
                    location=loaded.document.location(("playbook", "triggers", index)),
                    field="triggers.asset",
                    hint=unknown_name_hint(trigger.asset, known, "asset"),
                )
                del catalog.playbooks[playbook_id]
                catalog.broken.append(
                    BrokenPlaybook(loaded.path, loaded.display_path, playbook_id, error)
                )
                break


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


def _connection_for(step: QueryStep | SearchStep, config: ExecutorConfig, category: str) -> str:
    name = step.connection or (
        config.defaults.data_warehouse if category == "data_warehouse" else config.defaults.crm
    )
    if name not in config.connections:
        raise PlaybookValidationError(
            f"unknown connection '{name}'",
            field="connection",
            hint=unknown_name_hint(name, config.connections, "connection"),
        )
    actual = connection_type(config.connections[name]).category
    if actual != category:
        raise PlaybookValidationError(
            f"connection '{name}' is a {actual.replace('_', ' ')}, "
            f"but a {step.type} step needs a {category.replace('_', ' ')}",
            field="connection",
        )
    return name


def _validate_step(
    loaded: LoadedPlaybook,
    step: AnyStep,
    index: int,
    config: ExecutorConfig,
    columns: Mapping[str, list[str] | None],
) -> list[str] | None:
    """Validate one step; return its result columns when they can be known before running."""
    spec = loaded.spec
    document = loaded.document

    def where(*path: str | int) -> SourceLocation:
        return document.location(("playbook", "steps", index, "config", *path))

    if isinstance(step, QueryStep):
        if step.connection is not None or config.connections:
            _connection_for(step, config, "data_warehouse")
        try:
            names = placeholders(step.config.template)
        except SqlTemplateError as e:
            raise e.at(location=where("template"), field="config.template") from None
        declared = {parameter.name for parameter in spec.parameters}
        for name in names:
            if name not in step.config.parameters and name not in declared:
                raise PlaybookValidationError(
                    f"placeholder '{{{{{name}}}}}' has no value",
                    location=where("template"),
                    field="config.template",
                    hint=(
                        f"add '{name}' under config.parameters; "
                        + (unknown_name_hint(name, [*step.config.parameters, *declared], "name"))
                    ),
                )
        for name in step.config.parameters:
            if name not in names:
                raise PlaybookValidationError(
                    f"parameter '{name}' is not used by the template",
                    location=where("parameters", name),
                    field=f"config.parameters.{name}",
                    hint=unknown_name_hint(name, names, "placeholder")
                    if names
                    else "the template has no {{placeholders}}",
                )
        return None

    if isinstance(step, SearchStep):
        if step.connection is not None or config.connections:
            _connection_for(step, config, "crm")
        if not step.config.properties:
            return None
        association_columns = [f"{_singular(name)}_id" for name in step.config.associations]
        return ["hs_object_id", *step.config.properties, *association_columns]

    if isinstance(step, RequestStep | GraphQLStep):
        url = step.config.url.strip()
        if not url.lower().startswith(("http://", "https://")):
            raise PlaybookValidationError(
                f"'{url}' is not an http(s) URL",
                location=where("url"),
                field="config.url",
                hint="write the URL in full, e.g. https://api.example.com/v1/items",
            )
        return None

    if isinstance(step, FileStep):
        if "${" in step.config.path:
            raise PlaybookValidationError(
                "a file path cannot contain ${...} references",
                location=where("path"),
                field="config.path",
                hint="file paths come only from the playbook, never from run-time values",
            )
        if step.config.format is None and not step.config.path.lower().endswith(
            (".csv", ".tsv", ".txt", ".parquet", ".pq")
        ):
            raise PlaybookValidationError(
                f"cannot tell the format of '{step.config.path}' from its extension",
                location=where("path"),
                field="config.format",
                hint="add 'format: csv' or 'format: parquet'",
            )
        return None

    if isinstance(step, JoinStep):
        left_ref = whole_reference(step.config.left)
        right_ref = whole_reference(step.config.right)
        for side, reference in (("left", left_ref), ("right", right_ref)):
            if reference is None or reference.kind != "steps" or reference.column is not None:
                raise PlaybookValidationError(
                    f"'{side}' must be a whole step result like ${{steps.ID}}",
                    location=where(side),
                    field=f"config.{side}",
                )
        assert left_ref is not None and right_ref is not None
        left_columns = columns.get(left_ref.name)
        right_columns = columns.get(right_ref.name)
        try:
            parse_join_on(step.config.on)
        except PlaybookError as e:
            raise e.at(location=where("on"), field="config.on") from None
        if left_columns is None or right_columns is None:
            return None
        return [*left_columns, *(c for c in right_columns if c not in left_columns)]

    if isinstance(step, AggregateStep | FilterStep):
        reference = whole_reference(step.config.input)
        if reference is None or reference.kind != "steps" or reference.column is not None:
            raise PlaybookValidationError(
                "'input' must be a whole step result like ${steps.ID}",
                location=where("input"),
                field="config.input",
            )
        known = columns.get(reference.name)
        if isinstance(step, FilterStep):
            try:
                parsed = parse_condition(step.config.condition)
                if known is not None:
                    check_columns(parsed, known, f"input '{reference.name}'")
            except PlaybookError as e:
                raise e.at(location=where("condition"), field="config.condition") from None
            return known
        for group_index, group in enumerate(step.config.group_by):
            if known is not None and group not in known:
                raise PlaybookValidationError(
                    f"unknown column '{group}' in group_by",
                    location=where("group_by", group_index),
                    field="config.group_by",
                    hint=unknown_name_hint(group, known, "column"),
                )
        for metric_index, metric in enumerate(step.config.metrics):
            try:
                parsed = parse_metric(metric.expression)
                if known is not None:
                    check_columns(parsed, known, f"input '{reference.name}'")
            except PlaybookError as e:
                raise e.at(
                    location=where("metrics", metric_index, "expression"),
                    field=f"config.metrics.{metric.name}",
                ) from None
        return [*step.config.group_by, *(metric.name for metric in step.config.metrics)]
    raise AssertionError(step)


def _singular(object_type: str) -> str:
    irregular = {"companies": "company"}
    return irregular.get(object_type, object_type.removesuffix("s"))
