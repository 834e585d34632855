"""A playbook run with no Dagster, on the configured connections: what programs use when
they need a run's report without an orchestrator."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from playbook_assets.connections.registry import build_resource
from playbook_assets.connections.services import RunConnections
from playbook_assets.core.catalog import LoadedPlaybook
from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.local_run import LocalRun, run_locally
from playbook_assets.core.parameters import resolve_parameters
from playbook_assets.core.plan import PlaybookPlan
from playbook_assets.core.step_execution import ExecutionSettings


def run_playbook_locally(
    loaded: LoadedPlaybook,
    config: ExecutorConfig,
    parameters: Mapping[str, Any] | None = None,
    *,
    data_warehouse: str | None = None,
    crm: str | None = None,
    artifacts_dir: Path | None = None,
) -> LocalRun:
    """Run a playbook in this process on the connections of ``config`` (its parameters
    checked as on the command line); nothing is stored unless ``artifacts_dir`` is given."""
    warehouse = data_warehouse or config.defaults.data_warehouse
    default_crm = crm or config.defaults.crm
    plan = PlaybookPlan.build(loaded, warehouse, default_crm)
    resources = {
        name: build_resource(config, name).process_config_and_initialize()
        for name in sorted(plan.used_connections)
    }
    execution = config.execution
    services = RunConnections(
        resources,
        retry_attempts=execution.retry_attempts,
        allowed_directories=tuple(str(folder) for folder in config.allowed_directories),
    )
    return run_locally(
        loaded,
        services,
        parameters=resolve_parameters(loaded.spec, parameters or {}),
        data_warehouse=warehouse,
        crm=default_crm,
        settings=ExecutionSettings(
            retry_attempts=execution.retry_attempts,
            timeout_seconds=execution.timeout_seconds,
            max_parallel_steps=execution.max_parallel_steps,
        ),
        artifacts_dir=artifacts_dir,
    )
