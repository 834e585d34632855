"""How a playbook appears in Dagster: asset keys, groups, owners, tags, kinds, descriptions,
metadata and code references of its steps, outputs and run report.

One object decides, one method per decision, so a deployment changes one decision by
overriding one method (as dagster-dbt's ``DagsterDbtTranslator``), or sets the common ones
(``key_prefix``, ``group_name``, ``owners``, ``tags``) from the component's YAML. An asset key
always ends with ``[playbook_id, name]``: runs, sensors and reports find a playbook and its
step or output from the key's last two parts.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from playbook_assets.core.catalog import BrokenPlaybook, LoadedPlaybook
from playbook_assets.core.checks import describe
from playbook_assets.core.models import CheckSpec, OutputSpec
from playbook_assets.core.plan import PlaybookPlan
from playbook_assets.core.spec import AnyStep
from playbook_assets.core.steps.registry import step_type
from playbook_assets.dagster_adapter.run_config import REPORT_ASSET

# What `AssetSpec.with_io_manager_key("io_manager")` sets, without copying each spec: the
# step's and output's tables go through the I/O manager (the report asset has no value).
_STORED_BY_IO_MANAGER = {"dagster/io_manager_key": "io_manager"}


@dataclass(frozen=True)
class PlaybookTranslator:
    """Decides how each playbook's assets look in Dagster (see the module doc).

    ``key_prefix`` goes before every key; ``group_name``, ``owners`` and ``tags`` replace or
    extend what the playbook declares (the group defaults to the playbook id).
    """

    key_prefix: Sequence[str] = ()
    group_name: str | None = None
    owners: Sequence[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # The Dagster kind of each connection (its resource's ``kind``), by connection name.
    connection_kinds: Mapping[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ one decision each

    def asset_key(self, playbook_id: str, name: str) -> dg.AssetKey:
        """The key of a playbook's step, output or run report."""
        return dg.AssetKey([*self.key_prefix, playbook_id, name])

    def group(self, loaded: LoadedPlaybook) -> str:
        """The asset group of a playbook's assets."""
        return self.group_name or loaded.id

    def asset_owners(self, loaded: LoadedPlaybook) -> list[str] | None:
        """The owners of a playbook's assets."""
        owners = list(self.owners) if self.owners is not None else list(loaded.spec.owners)
        return owners or None

    def asset_tags(self, loaded: LoadedPlaybook) -> dict[str, str]:
        """The tags every asset of a playbook carries."""
        return {**loaded.spec.tags, **self.tags}

    def step_kind(self, loaded: LoadedPlaybook, step: AnyStep, connection: str | None) -> str:
        """The kind a step's asset shows: its connection's, its source's, else DuckDB's."""
        kind = self.connection_kinds.get(connection) if connection is not None else None
        return step_type(step).kind(step, kind)

    def step_description(self, loaded: LoadedPlaybook, step: AnyStep) -> str:
        """A step asset's description."""
        return step.title + (f"\n\n{step.description}" if step.description else "")

    def output_description(self, loaded: LoadedPlaybook, output: OutputSpec) -> str:
        """An output asset's description."""
        source = loaded.output_source(output)
        if output.description:
            return output.description
        return f"Aggregates of {source}" if output.type == "aggregate" else f"Output: {source}"

    def code_reference(self, loaded: LoadedPlaybook, line: int | None) -> dict[str, Any]:
        """Links an asset to its playbook file and line in the UI."""
        reference = dg.CodeReferencesMetadataValue(
            code_references=[
                dg.LocalFileCodeReference(
                    file_path=loaded.resolved_path, line_number=line, label="playbook"
                )
            ]
        )
        return {"dagster/code_references": reference}

    # -------------------------------------------------------------------------- the specs

    def asset_specs(self, plan: PlaybookPlan) -> list[dg.AssetSpec]:
        """Every asset of a playbook: its steps, outputs and run report."""
        loaded = plan.loaded
        # Code references are a beta API; the link is worth it, a warning per asset is not.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            specs = [self.step_spec(plan, step) for step in loaded.spec.steps]
            specs += [self.output_spec(loaded, output) for output in loaded.spec.outputs]
            specs.append(self.report_spec(loaded))
        return specs

    def step_spec(self, plan: PlaybookPlan, step: AnyStep) -> dg.AssetSpec:
        """The asset of one step."""
        loaded = plan.loaded
        connection = plan.connections[step.id]
        location = loaded.step_location(step.id)
        metadata: dict[str, Any] = {
            **_STORED_BY_IO_MANAGER,
            "playbook/step_type": step.type,
            "playbook/source": step.source,
            "playbook/file": str(location),
            **self.code_reference(loaded, location.line),
        }
        if connection is not None:
            metadata["playbook/connection"] = connection
        return dg.AssetSpec(
            key=self.asset_key(loaded.id, step.id),
            deps=[self.asset_key(loaded.id, name) for name in plan.upstream[step.id]],
            description=self.step_description(loaded, step),
            kinds={self.step_kind(loaded, step, connection)},
            metadata=metadata,
            tags={**self.asset_tags(loaded), "playbook/step_type": step.type},
            group_name=self.group(loaded),
            owners=self.asset_owners(loaded),
            skippable=True,
        )

    def output_spec(self, loaded: LoadedPlaybook, output: OutputSpec) -> dg.AssetSpec:
        """The asset of one output."""
        location = loaded.output_location(output.name)
        return dg.AssetSpec(
            key=self.asset_key(loaded.id, output.name),
            deps=[self.asset_key(loaded.id, loaded.output_source(output))],
            description=self.output_description(loaded, output),
            kinds={"duckdb"},
            metadata={
                **_STORED_BY_IO_MANAGER,
                "playbook/output_type": output.type,
                "playbook/file": str(location),
                **self.code_reference(loaded, location.line),
            },
            tags={**self.asset_tags(loaded), "playbook/output_type": output.type},
            group_name=self.group(loaded),
            owners=self.asset_owners(loaded),
            skippable=True,
        )

    def report_spec(self, loaded: LoadedPlaybook) -> dg.AssetSpec:
        """The run report asset of a playbook."""
        spec = loaded.spec
        upstream = [self.asset_key(loaded.id, output.name) for output in spec.outputs]
        upstream += [self.asset_key(loaded.id, step_id) for step_id in spec.step_ids]
        return dg.AssetSpec(
            key=self.asset_key(loaded.id, REPORT_ASSET),
            deps=upstream,
            description=f"Run report of {spec.name}: step statuses, outputs, insights and "
            "charts (Markdown here, JSON and HTML in the artifact store).",
            kinds={"json"},
            metadata=self.code_reference(loaded, 1),
            tags=self.asset_tags(loaded),
            group_name=self.group(loaded),
            owners=self.asset_owners(loaded),
            skippable=True,
        )

    def check_specs(self, loaded: LoadedPlaybook) -> list[dg.AssetCheckSpec]:
        """The asset checks of a playbook's steps and outputs."""
        owners: list[tuple[str, Sequence[CheckSpec]]] = [
            (step.id, step.checks) for step in loaded.spec.steps
        ]
        owners += [(output.name, output.checks) for output in loaded.spec.outputs]
        return [
            dg.AssetCheckSpec(
                name=check.check_name,
                asset=self.asset_key(loaded.id, name),
                description=describe(check),
                blocking=check.blocking,
            )
            for name, checks in owners
            for check in checks
        ]

    def broken_playbook_spec(self, broken: BrokenPlaybook) -> dg.AssetSpec:
        """An asset that shows a broken playbook and its error in the UI (its key is unique
        whatever the broken file holds: ``catalog.name_broken_assets``)."""
        prefix, name = broken.asset_key
        # Next to the valid playbook of the same id, when the id is known.
        group = prefix if prefix == broken.playbook_id else "invalid_playbooks"
        return dg.AssetSpec(
            key=[*self.key_prefix, prefix, name],
            group_name=self.group_name or group,
            description="This playbook failed to load and does not run.\n\n"
            f"```\n{broken.error}\n```",
            metadata={
                "error": dg.MetadataValue.text(str(broken.error)),
                "playbook/file": broken.display_path,
            },
            tags={"playbook/status": "invalid"},
        )
