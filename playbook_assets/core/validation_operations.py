"""Checks of how a playbook is operated: its data checks, its schedule and its triggers."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from typing import TYPE_CHECKING

from croniter import croniter

from playbook_assets.core.errors import PlaybookError, PlaybookValidationError, unknown_name_hint
from playbook_assets.core.expressions import check_columns, parse_metric
from playbook_assets.core.models import CheckSpec
from playbook_assets.core.operation_specs import FileTrigger, MultiPartitions, StaticPartitions
from playbook_assets.core.parameters import resolve_parameters

if TYPE_CHECKING:
    from playbook_assets.core.catalog import LoadedPlaybook


def check_operations(loaded: LoadedPlaybook, columns: Mapping[str, list[str] | None]) -> None:
    """Checks, schedule and triggers."""
    _check_checks(loaded, columns)
    _check_schedule(loaded)
    _check_triggers(loaded)


def _check_checks(loaded: LoadedPlaybook, columns: Mapping[str, list[str] | None]) -> None:
    """Check names are unique per asset; the columns they name exist where known."""
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


def _check_schedule(loaded: LoadedPlaybook) -> None:
    """A schedule's cron and time zone are valid, its parameters of their declared types."""
    spec = loaded.spec
    if spec.schedule is None:
        return
    where = loaded.document.location(("playbook", "schedule"))
    problem = schedule_problem(spec.schedule.cron, spec.schedule.timezone)
    if problem is not None:
        raise PlaybookValidationError(
            f"invalid schedule: {problem}",
            location=where,
            field="schedule",
            hint="cron looks like '0 6 * * 1-5'; timezone like 'Europe/Paris'",
        )
    try:
        resolve_parameters(spec, spec.schedule.parameters, strict=True)
    except PlaybookError as e:
        raise e.at(location=where, field="schedule.parameters") from None


def schedule_problem(cron: str, timezone: str) -> str | None:
    """What is wrong with a schedule's cron expression (five fields, as Dagster takes them)
    or time zone, if anything."""
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        return f"'{cron}' is not a cron expression of five fields"
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"'{timezone}' is not a time zone"
    return None


def _check_triggers(loaded: LoadedPlaybook) -> None:
    """File triggers fit the partitions and name a string parameter; asset triggers name an
    asset key."""
    spec = loaded.spec
    document = loaded.document
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
