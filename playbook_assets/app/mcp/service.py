"""What the MCP server's tools do, without MCP: one long-lived object per server that keeps
the configuration, the catalog, the Dagster instance and each playbook's built definitions,
so a run started by an agent pays neither the process start nor the imports again.

Every answer goes through ``redact``: nothing a tool returns holds a configured secret.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any, cast

import dagster as dg

from playbook_assets.app.catalog_listing import invalid_rows, playbook_rows
from playbook_assets.app.mcp.describe import describe_playbook
from playbook_assets.app.mcp.rows import step_rows
from playbook_assets.app.mcp.schemas import (
    InvalidPlaybook,
    PlaybookDescription,
    PlaybookInfo,
    PlaybookList,
    RunList,
    RunReport,
    RunSummary,
    StepRows,
    ValidationProblem,
    ValidationResult,
    Verification,
    VerifyProblem,
)
from playbook_assets.app.runner import (
    RunRequest,
    check_artifacts_folder,
    dagster_instance,
    playbook_definitions,
    run_playbook,
)
from playbook_assets.core.catalog import LoadedPlaybook, PlaybookCatalog, load_playbook_bytes
from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.errors import PlaybookError
from playbook_assets.core.redaction import redact
from playbook_assets.core.report import json_default
from playbook_assets.core.report_render.stored import stored_report
from playbook_assets.core.run_records import (
    RunRecordNotStoredError,
    iter_runs,
    summary_row,
    verify_store,
)

# Where the text given to ``validate_playbook`` is said to come from in its errors.
VALIDATED_TEXT = "yaml_text"
DEFAULT_RUNS_LIMIT = 20


def redacted(value: Any) -> Any:
    """``value`` as plain JSON with every configured secret masked in its texts."""
    return json.loads(redact(json.dumps(value, default=json_default)))


class PlaybookService:
    """The playbooks of one configuration, run on one Dagster instance."""

    def __init__(self, config: ExecutorConfig, catalog: PlaybookCatalog) -> None:
        self.config = config
        self.catalog = catalog
        self._instance: dg.DagsterInstance | None = None
        self._definitions: dict[tuple[str, str, str | None, str | None, bool], dg.Definitions] = {}
        self._lock = threading.Lock()
        # One run at a time: runs share the instance's SQLite storage and the connections.
        self.run_lock = threading.Lock()

    @property
    def instance(self) -> dg.DagsterInstance:
        """The Dagster instance, opened on first use (``playbook run`` uses the same one)."""
        with self._lock:
            if self._instance is None:
                self._instance = dagster_instance()
            return self._instance

    def playbook(self, playbook_id: str) -> LoadedPlaybook:
        """A playbook by id; an unknown id lists the valid ones and the closest match."""
        return self.catalog.get(playbook_id)

    def list_playbooks(self) -> PlaybookList:
        """Every playbook, and every file that failed to load."""
        return redacted(
            PlaybookList(
                playbooks=cast(list[PlaybookInfo], playbook_rows(self.catalog)),
                invalid=cast(list[InvalidPlaybook], invalid_rows(self.catalog)),
            )
        )

    def describe(
        self,
        playbook_id: str,
        parameters: Mapping[str, Any] | None = None,
        data_warehouse: str | None = None,
        crm: str | None = None,
    ) -> PlaybookDescription:
        """A playbook with each step's request rendered for ``parameters`` (a dry run)."""
        loaded = self.playbook(playbook_id)
        described = describe_playbook(
            loaded, self.config, parameters, data_warehouse=data_warehouse, crm=crm
        )
        return redacted(described)

    def run_request(
        self,
        playbook_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        save_artifacts: bool = True,
        data_warehouse: str | None = None,
        crm: str | None = None,
        partition: str | None = None,
        run_id: str | None = None,
    ) -> RunRequest:
        """The request to run a playbook (parameters are JSON values, checked as a params
        file's are when the run starts)."""
        return RunRequest(
            loaded=self.playbook(playbook_id),
            config=self.config,
            file_parameters=dict(parameters or {}),
            data_warehouse=data_warehouse,
            crm=crm,
            save_artifacts=save_artifacts,
            partition=partition,
            tags={"playbook/launched_by": "mcp"},
            run_id=run_id,
        )

    def definitions(self, request: RunRequest) -> dg.Definitions:
        """The definitions of a request's playbook, built once per playbook version and
        connection options, then kept."""
        key = (
            request.loaded.id,
            request.loaded.sha256,
            request.data_warehouse,
            request.crm,
            request.save_artifacts,
        )
        with self._lock:
            found = self._definitions.get(key)
        if found is None:
            found = playbook_definitions(request)
            with self._lock:
                self._definitions[key] = found
        return found

    def run(self, request: RunRequest) -> RunReport:
        """Run a playbook through Dagster on the instance, in this process; its report.

        A record that could not be stored (a full disk) leaves the report as it was, with
        ``artifact_path`` None and ``record_error`` saying what was not written.
        """
        check_artifacts_folder(request)
        definitions = self.definitions(request)
        with self.run_lock:
            try:
                report = run_playbook(request, self.instance, definitions)
            except RunRecordNotStoredError as e:
                report = {**e.report, "artifact_path": None, "record_error": str(e)}
        return redacted(report)

    def get_run(self, run_id: str) -> RunReport:
        """A stored run's report, once its bytes match the manifest's sha256."""
        return redacted(json.loads(stored_report(self.config.artifacts_dir, run_id, "json")))

    def list_runs(self, playbook_id: str | None = None, limit: int = DEFAULT_RUNS_LIMIT) -> RunList:
        """The latest stored runs (of one playbook), newest first."""
        if playbook_id is not None:
            self.playbook(playbook_id)  # an unknown id is an error, not an empty list
        rows = [
            summary_row(record)
            for record in iter_runs(self.config.artifacts_dir)
            if playbook_id is None or record.playbook_id == playbook_id
        ]
        latest = cast(list[RunSummary], [dict(row) for row in reversed(rows)][:limit])
        return redacted(RunList(runs=latest))

    def step_rows(self, run_id: str, name: str, limit: int, offset: int) -> StepRows:
        """A page of the stored result of a run's step or output."""
        return redacted(step_rows(self.config.artifacts_dir, run_id, name, limit, offset))

    def validate(self, yaml_text: str) -> ValidationResult:
        """Whether ``yaml_text`` is a valid playbook for this configuration; the error names
        its line, step and field."""
        path = self.config.playbooks_dir / f"{VALIDATED_TEXT}.yaml"
        try:
            loaded = load_playbook_bytes(
                yaml_text.encode("utf-8"), path, self.config, shown=VALIDATED_TEXT
            )
        except PlaybookError as e:
            problem = ValidationProblem(
                message=e.message,
                line=e.location.line if e.location is not None else None,
                step=e.step,
                field=e.field,
                hint=e.hint,
                text=str(e),
            )
            return redacted(ValidationResult(valid=False, playbook_id=None, errors=[problem]))
        return ValidationResult(valid=True, playbook_id=loaded.id, errors=[])

    def verify(self, run_id: str) -> Verification:
        """Every checksum of a stored run, recomputed."""
        (result,) = verify_store(self.config.artifacts_dir, run_id)
        problems = [VerifyProblem(path=p.path, issue=p.issue) for p in result.problems]
        return redacted(
            Verification(
                run_id=result.run_id,
                ok=not problems,
                checked_files=result.checked_files,
                problems=problems,
            )
        )
