"""What a run needs to know of a playbook, worked out once: each step's connection, what it
reads and waits for, the order, and how each step runs over a range of partitions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from playbook_assets.core.graph import (
    data_dependencies,
    execution_order,
    partition_reads,
    step_dependencies,
)
from playbook_assets.core.steps.registry import step_type

if TYPE_CHECKING:
    from playbook_assets.core.catalog import LoadedPlaybook

# How a step runs in a run over a range of partitions: once for every partition (it reads no
# partition value), once over the range then split by its partition_column, or once per
# partition.
Mode = Literal["shared", "ranged", "per_partition"]


@dataclass(frozen=True)
class PlaybookPlan:
    """A validated playbook ready to run, with the connections its steps use."""

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
        """The plan of a validated playbook; steps that name no connection use the default
        warehouse or CRM given."""
        spec = loaded.spec
        data = data_dependencies(spec)
        upstream = step_dependencies(spec, data)
        defaults = {"data_warehouse": data_warehouse, "crm": crm}
        connections: dict[str, str | None] = {}
        for step in spec.steps:
            behaviour = step_type(step)
            category = behaviour.connection_category
            named = behaviour.connection(step)
            connections[step.id] = (named or defaults[category]) if category else None
        return cls(
            loaded=loaded,
            connections=connections,
            upstream={name: tuple(deps) for name, deps in upstream.items()},
            data_upstream={name: tuple(deps) for name, deps in data.items()},
            order=tuple(execution_order(spec, upstream)),
            data_warehouse=data_warehouse,
            crm=crm,
            partition_reads=partition_reads(spec),
        )

    @property
    def used_connections(self) -> set[str]:
        """Names of the connections the playbook's steps query."""
        return {name for name in self.connections.values() if name is not None}

    def modes(self, selected: Sequence[str]) -> dict[str, Mode]:
        """How each selected step runs over a range of partitions (see ``Mode``)."""
        spec = self.loaded.spec
        modes: dict[str, Mode] = {}
        for step_id in self.order:
            if step_id not in selected:
                continue
            step = spec.step(step_id)
            # An upstream step not in the run is read per partition from the store.
            all_shared = all(modes.get(name) == "shared" for name in self.upstream[step_id])
            reads = self.partition_reads.get(step_id, frozenset())
            if not reads and all_shared:
                modes[step_id] = "shared"
            elif (
                all_shared
                and step.partition_column is not None
                and not step_type(step).transform
                and reads <= {"start", "end"}
            ):
                modes[step_id] = "ranged"
            else:
                modes[step_id] = "per_partition"
        return modes
