"""The ``read`` step: CSV or Parquet files read by DuckDB, confined to the allowed folders."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.models import StrictModel
from playbook_assets.core.references import ResolutionContext
from playbook_assets.core.steps.base import (
    StepBase,
    StepContext,
    StepRequest,
    StepType,
    ValidationContext,
)

_EXTENSIONS = (".csv", ".tsv", ".txt", ".parquet", ".pq")


class FileConfig(StrictModel):
    """Configuration of a file ``read`` step."""

    path: str = Field(
        description="File or glob, relative to the playbook file's folder; written in the "
        "playbook only, never from run-time values."
    )
    format: Literal["csv", "parquet"] | None = Field(
        default=None, description="csv or parquet (default: from the file extension)."
    )
    header: bool = Field(default=True, description="csv: the first line names the columns.")
    delimiter: str | None = Field(
        default=None, description="csv: the delimiter (default: sniffed)."
    )
    include_filename: bool = Field(
        default=False, description="Add a 'filename' column with each row's file."
    )


class FileStep(StepBase[FileConfig]):
    """Reads CSV or Parquet files."""

    type: Literal["read"] = Field(description="Step type.")
    source: Literal["file"] = Field(default="file", description="Always file.")
    config: FileConfig = Field(description="The files.")


class Read(StepType):
    """Files matching a path or glob relative to the playbook's folder; the path comes only
    from the playbook, never from a run-time value."""

    name = "read"
    source = "file"
    model = FileStep

    def validate(self, step: StepBase[Any], ctx: ValidationContext) -> list[str] | None:
        assert isinstance(step, FileStep)
        if "${" in step.config.path:
            raise PlaybookValidationError(
                "a file path cannot contain ${...} references",
                location=ctx.where("path"),
                field="config.path",
                hint="file paths come only from the playbook, never from run-time values",
            )
        if step.config.format is None and not step.config.path.lower().endswith(_EXTENSIONS):
            raise PlaybookValidationError(
                f"cannot tell the format of '{step.config.path}' from its extension",
                location=ctx.where("path"),
                field="config.format",
                hint="add 'format: csv' or 'format: parquet'",
            )
        return None

    def prepare(
        self, step: StepBase[Any], ctx: StepContext, resolution: ResolutionContext
    ) -> StepRequest:
        assert isinstance(step, FileStep)
        sources = ctx.services.sources
        folder = ctx.loaded.path.parent
        allowed = ctx.services.allowed_directories
        timeout = ctx.timeout_seconds
        return StepRequest(
            request=sources.describe_files(step.config, folder),
            send=lambda: sources.read_files(
                step.config, folder, allowed_directories=allowed, timeout_seconds=timeout
            ),
            fingerprint=None,
        )

    def kind(self, step: StepBase[Any], connection_kind: str | None) -> str:
        assert isinstance(step, FileStep)
        return step.config.format or step.config.path.lower().rsplit(".", 1)[-1]
