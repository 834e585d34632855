"""The dependency graph of a playbook's steps: what each step reads and waits for, and the
partition values it reads itself."""

from __future__ import annotations

from graphlib import TopologicalSorter
from typing import TYPE_CHECKING

from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.references import walk_references, whole_reference

if TYPE_CHECKING:
    from playbook_assets.core.models import OutputSpec
    from playbook_assets.core.spec import PlaybookSpec


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


def partition_reads(spec: PlaybookSpec) -> dict[str, frozenset[str]]:
    """The ``${partition.*}`` values (key, start, ...) each step's own configuration reads."""
    reads: dict[str, frozenset[str]] = {}
    for step in spec.steps:
        found = {
            reference.name
            for _, reference in walk_references(step.config.model_dump(mode="python"))
            if reference.kind == "partition"
        }
        if found:
            reads[step.id] = frozenset(found)
    return reads


def execution_order(spec: PlaybookSpec, upstream: dict[str, list[str]]) -> list[str]:
    """The steps in dependency order, ties in the file's order (the graph has no cycle:
    validation refused it)."""
    sorter = TopologicalSorter({name: upstream[name] for name in spec.step_ids})
    order: list[str] = []
    sorter.prepare()
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=spec.step_ids.index)
        order.extend(ready)
        sorter.done(*ready)
    return order


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
