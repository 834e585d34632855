"""The run's settings as a Dagster resource, from the executor configuration."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from playbook_assets.core.step_execution import ExecutionSettings


class RunSettings(dg.ConfigurableResource):
    """Settings shared by every step of a run, from the executor configuration."""

    artifacts_dir: str
    save_artifacts: bool = True
    retry_attempts: int = 2
    retry_base_delay_seconds: float = 0.5
    max_parallel_steps: int = 3
    timeout_seconds: float = 300
    retention_days: int = 90
    # Whether a playbook's op runs in the run's own process (the in-process executor).
    in_process: bool = True
    allowed_directories: list[str] = Field(
        default_factory=list, description="Folders file steps may read (ExecutorConfig)."
    )

    def execution(self) -> ExecutionSettings:
        """How steps run."""
        return ExecutionSettings(
            retry_attempts=self.retry_attempts,
            retry_base_delay_seconds=self.retry_base_delay_seconds,
            timeout_seconds=self.timeout_seconds,
            max_parallel_steps=self.max_parallel_steps,
        )
