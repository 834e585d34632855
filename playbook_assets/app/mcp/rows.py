"""Reading a page of a stored result of a run: only a file the run's manifest lists, inside
the artifact store, and only once its bytes match the sha256 the manifest recorded."""

from __future__ import annotations

from pathlib import Path

from playbook_assets.app.mcp.schemas import Column, StepRows
from playbook_assets.core.artifacts import read_verified_table
from playbook_assets.core.errors import PlaybookValidationError, unknown_name_hint
from playbook_assets.core.insights import json_value
from playbook_assets.core.run_records import load_run

# The most rows one page returns: an agent reads a result page by page rather than pulling a
# million rows into its context.
MAX_PAGE_ROWS = 1000


def step_rows(artifacts_dir: Path, run_id: str, name: str, limit: int, offset: int) -> StepRows:
    """Rows ``offset`` to ``offset + limit`` of the stored result of step or output ``name``
    of run ``run_id`` (of the run's partition, for a partitioned run)."""
    if not 1 <= limit <= MAX_PAGE_ROWS:
        raise PlaybookValidationError(
            f"limit {limit} is out of range", hint=f"ask for 1 to {MAX_PAGE_ROWS} rows a page"
        )
    if offset < 0:
        raise PlaybookValidationError(f"offset {offset} is negative", hint="start at offset 0")
    record = load_run(artifacts_dir, run_id)
    manifest = record.manifest
    prefix = f"{record.playbook_id}/"
    stored = {
        str(artifact["asset"]).removeprefix(prefix): artifact
        for artifact in manifest["artifacts"]
        if str(artifact["asset"]).startswith(prefix)
        and artifact.get("partition") == manifest.get("partition")
    }
    artifact = stored.get(name)
    if artifact is None:
        raise PlaybookValidationError(
            f"run {run_id} stored no result named '{name}'",
            hint=unknown_name_hint(name, stored, "step or output"),
        )
    path = Path(str(artifact["path"]))
    if not path.resolve().is_relative_to(artifacts_dir.resolve()):
        raise PlaybookValidationError(
            f"the manifest of {run_id} names {path}, outside the artifact store {artifacts_dir}",
            hint=f"`playbook artifacts verify {run_id}` checks the run's files",
        )
    table = read_verified_table(path, artifact.get("sha256"), f"{prefix}{name}")
    page = table.slice(offset, limit)
    end = offset + page.num_rows
    return StepRows(
        run_id=run_id,
        name=name,
        columns=[Column(name=field.name, type=str(field.type)) for field in table.schema],
        total_rows=table.num_rows,
        offset=offset,
        rows=[json_value(row) for row in page.to_pylist()],
        next_offset=end if end < table.num_rows else None,
    )
