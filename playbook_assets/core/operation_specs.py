"""How a playbook is operated, as declared in its YAML: partitions, a schedule, triggers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from playbook_assets.core.models import IDENTIFIER_PATTERN, StrictModel, is_identifier


class _PartitionsBase(StrictModel):
    backfill: Literal["per_partition", "single_run"] = Field(
        default="per_partition",
        description="single_run: a backfill runs once over the whole range (time partitions).",
    )


class TimePartitions(_PartitionsBase):
    """Daily, weekly or monthly partitions."""

    type: Literal["daily", "weekly", "monthly"] = Field(description="daily, weekly or monthly.")
    start: str = Field(description="First partition, YYYY-MM-DD.")
    end_offset: int = Field(
        default=0, description="Partitions past the last complete one (1 = the current one)."
    )
    timezone: str = Field(default="UTC", description="Time zone of the partition boundaries.")

    @field_validator("start", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        return value.isoformat() if isinstance(value, dt.date) else value


class StaticPartitions(_PartitionsBase):
    """A fixed list of partitions (segments, clients, ...)."""

    type: Literal["static"] = Field(description="static.")
    values: list[str] = Field(min_length=1, description="The partition keys.")

    @model_validator(mode="after")
    def _single_run_needs_time(self) -> StaticPartitions:
        if self.backfill == "single_run":
            raise ValueError("single_run backfills need time partitions")
        return self


class DynamicPartitions(_PartitionsBase):
    """A named set of partitions extended at run time (`playbook partitions add`, sensors)."""

    type: Literal["dynamic"] = Field(description="dynamic.")
    name: str = Field(pattern=IDENTIFIER_PATTERN, description="Name of the partition set.")


SinglePartitions = Annotated[
    TimePartitions | StaticPartitions | DynamicPartitions, Field(discriminator="type")
]


class MultiPartitions(_PartitionsBase):
    """Two dimensions, e.g. month x client."""

    type: Literal["multi"] = Field(description="multi.")
    dimensions: dict[str, SinglePartitions] = Field(
        description="Exactly two named dimensions; ${partition.<name>} is each one's key."
    )

    @model_validator(mode="after")
    def _two(self) -> MultiPartitions:
        if len(self.dimensions) != 2:
            raise ValueError("multi partitions need exactly two dimensions")
        if sum(isinstance(d, TimePartitions) for d in self.dimensions.values()) > 1:
            raise ValueError("at most one dimension can be time-based")
        for name, dimension in self.dimensions.items():
            if name in {"key", "start", "end"} or not is_identifier(name):
                raise ValueError(f"'{name}' cannot name a dimension")
            if dimension.backfill != "per_partition":
                raise ValueError("set 'backfill' on the partitions, not on a dimension")
        if self.backfill == "single_run":
            raise ValueError("single_run backfills need time partitions, not multi")
        return self


PartitionsSpec = Annotated[
    TimePartitions | StaticPartitions | DynamicPartitions | MultiPartitions,
    Field(discriminator="type"),
]


class ScheduleSpec(StrictModel):
    """A Dagster schedule for the playbook."""

    cron: str = Field(description="Cron expression, e.g. '0 6 * * 1-5'.")
    timezone: str = Field(default="UTC", description="Time zone of the cron expression.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameter values of scheduled runs."
    )
    enabled: bool = Field(default=True, description="Whether the schedule starts running.")


class FileTrigger(StrictModel):
    """Run when a file matching ``path`` appears or changes."""

    type: Literal["file"] = Field(description="file.")
    path: str = Field(description="Glob, relative to the playbook file's folder.")
    parameter: str | None = Field(
        default=None,
        pattern=IDENTIFIER_PATTERN,
        description="String parameter that receives the file's path.",
    )
    interval_seconds: int = Field(default=30, ge=5, description="How often to look.")


class AssetTrigger(StrictModel):
    """Run when another playbook's step or output is materialized."""

    type: Literal["asset"] = Field(description="asset.")
    asset: str = Field(description="Asset key, e.g. presales_analysis/summary.")


TriggerSpec = Annotated[FileTrigger | AssetTrigger, Field(discriminator="type")]
