"""What one step does when it runs: resolve, execute within its time limit, retry
transient failures with backoff, fall back to a stored result when its source cannot be
reached, and describe the result in materialization metadata.

The time limit (``timeout_seconds``) covers the whole step, retries included. Each source
enforces it itself (a query is cancelled on the server, an API response stops being read);
a source that does not (a read blocked on a FIFO, a server trickling its headers) is left
behind on its thread shortly after the limit, and the step fails all the same.

Text a failure carries from a service is redacted of every configured secret
(``playbook_assets.core.redaction``) before it becomes a failure, a log line or metadata.
"""

import contextvars
import hashlib
import json
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field

from playbook_assets.connections.crm.base import CrmResource
from playbook_assets.connections.sources.files import file_format, read_files, resolve_file_path
from playbook_assets.connections.warehouses.base import WarehouseResource
from playbook_assets.core.artifacts import (
    PATH_METADATA_KEY,
    SHA256_METADATA_KEY,
    encode_table,
    read_verified_table,
)
from playbook_assets.core.catalog import LoadedPlaybook
from playbook_assets.core.errors import (
    PlaybookError,
    SourceLocation,
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.insights import table_facts, top_row
from playbook_assets.core.redaction import redact, safe_cause
from playbook_assets.core.references import ResolutionContext
from playbook_assets.core.report import (
    CACHED_AT_KEY,
    CACHED_DAGSTER_RUN_KEY,
    CACHED_RUN_KEY,
    FACTS_METADATA_KEY,
    RUN_ID_METADATA_KEY,
    report_run_id,
)
from playbook_assets.core.result_tables import checked_result
from playbook_assets.core.spec import (
    AnyStep,
    FileStep,
    GraphQLStep,
    QueryStep,
    RequestStep,
    SearchStep,
)
from playbook_assets.core.steps import render_query, run_transform_step, search_request

Step = AnyStep
REQUEST_SHA256_KEY = "request_sha256"
ATTEMPTS_KEY = "attempts"
# Columns stored as their text because Parquet cannot hold their type: {column: why}.
AS_TEXT_KEY = "columns_as_text"
# Lists a query read as tables rather than literals: {relation: number of values}.
BOUND_LISTS_KEY = "bound_lists"
PREVIEW_ROWS = 5
MAX_RETRY_DELAY_SECONDS = 30.0
# How many earlier materializations the cached fallback looks through for the same request.
CACHE_SEARCH_LIMIT = 100
# How long past its time limit a step whose source ignores the limit is still awaited: long
# enough for a source's own cancellation (and its clearer message) to come first.
TIME_LIMIT_GRACE_SECONDS = 1.0
TIMEOUT_HINT = "raise timeout_seconds on the step or execution.timeout_seconds in the config"


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


@dataclass(frozen=True)
class StepRequest:
    """What a source step will send (SQL or a search) and how to send it."""

    request: str | dict[str, Any] | None
    send: Callable[[], pa.Table]
    fingerprint: str | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # The source retries each of its requests within execution.retry_attempts itself (CRMs):
    # the step must not retry it again, or the attempts multiply.
    retries_inside: bool = False


def request_fingerprint(connection: str, request: str | dict[str, Any]) -> str:
    """A hash of what a step asks its source: equal fingerprints mean the same question."""
    text = request if isinstance(request, str) else json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(f"{connection}\n{text}".encode()).hexdigest()


def prepare_step(
    context: dg.AssetExecutionContext,
    loaded: LoadedPlaybook,
    step: Step,
    connection: str | None,
    resolution: ResolutionContext,
    timeout_seconds: float,
) -> StepRequest:
    """Render the step's request from parameters and upstream results."""
    spec = loaded.spec
    if isinstance(step, QueryStep):
        warehouse: WarehouseResource = getattr(context.resources, f"connection_{connection}")
        warehouse.raise_if_unresolved(connection or "")
        rendered = render_query(
            step,
            spec,
            resolution,
            warehouse.dialect,
            allow_writes=warehouse.allow_writes,
            bind_lists=warehouse.binds_lists,
        )
        lists = rendered.lists
        asked: Any = {"sql": rendered.sql, "lists": lists} if lists else rendered.sql
        return StepRequest(
            request=rendered.sql,
            send=lambda: warehouse.run_query_with_lists(
                rendered.sql, lists, timeout_seconds=timeout_seconds
            ),
            fingerprint=request_fingerprint(connection or "", asked),
            metadata={BOUND_LISTS_KEY: {name: len(v) for name, v in lists.items()}}
            if lists
            else {},
        )
    if isinstance(step, SearchStep):
        crm: CrmResource = getattr(context.resources, f"connection_{connection}")
        crm.raise_if_unresolved(connection or "")
        retries = context.resources.run_settings.retry_attempts
        search = search_request(step, resolution)
        body = crm.describe_request(search)
        return StepRequest(
            request=body,
            send=lambda: crm.search(
                search, timeout_seconds=timeout_seconds, retry_attempts=retries
            ),
            fingerprint=request_fingerprint(connection or "", body),
            retries_inside=crm.retries_requests,
        )
    if isinstance(step, RequestStep):
        # requests and gql load only for playbooks that call an API (0.25 s of every start).
        from playbook_assets.connections.sources.api import describe_request, fetch_rest

        request = describe_request(step.config, resolution)
        return StepRequest(
            request=request,
            send=lambda: fetch_rest(step.config, resolution, timeout_seconds=timeout_seconds),
            fingerprint=request_fingerprint("api", request),
        )
    if isinstance(step, GraphQLStep):
        from playbook_assets.connections.sources.api import describe_graphql, fetch_graphql

        request = describe_graphql(step.config, resolution)
        return StepRequest(
            request=request,
            send=lambda: fetch_graphql(step.config, resolution, timeout_seconds=timeout_seconds),
            fingerprint=request_fingerprint("api", request),
        )
    if isinstance(step, FileStep):
        folder = loaded.path.parent
        allowed = context.resources.run_settings.allowed_directories
        request = {
            "path": resolve_file_path(step.config, folder),
            "format": file_format(step.config),
        }
        return StepRequest(
            request=request,
            send=lambda: read_files(
                step.config,
                folder,
                allowed_directories=allowed,
                timeout_seconds=timeout_seconds,
            ),
            fingerprint=None,
        )
    return StepRequest(
        request=None,
        send=lambda: run_transform_step(step, resolution).table,
        fingerprint=None,
    )


@dataclass(frozen=True)
class StepRun:
    """What one execution of a step gave: its result and what to record about it."""

    table: pa.Table
    request: str | dict[str, Any] | None
    elapsed_ms: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # Read from a stored result (the source was unreachable): stored as it is, not re-encoded.
    cached: bool = False


def execute_step(
    context: dg.AssetExecutionContext,
    loaded: LoadedPlaybook,
    step: Step,
    connection: str | None,
    inputs: Mapping[str, pa.Table],
    resolution: ResolutionContext,
    *,
    partition: str | None = None,
) -> StepRun:
    """Run one step (for one partition, or a range's values) and return its result.

    A transient failure (a source that times out, refuses or cannot be reached for a moment)
    is retried after an exponential, jittered delay, up to ``execution.retry_attempts`` times;
    a CRM retries each of its requests within that budget itself and is not retried again. A
    source that stays unreachable falls back to the latest stored result of the same
    request for ``partition``. Raises ``dg.Failure`` with the step's location otherwise.
    """
    settings: RunSettings = context.resources.run_settings
    resolution = ResolutionContext(
        parameters=resolution.parameters, steps=inputs, partition=resolution.partition
    )
    location = loaded.step_location(step.id)
    key = dg.AssetKey([loaded.id, step.id])
    limit = step.timeout_seconds or settings.timeout_seconds
    deadline = time.monotonic() + limit
    attempt = 0
    while True:
        started = time.perf_counter()
        prepared: StepRequest | None = None
        try:
            # The first attempt has the whole limit; a retry, what is left of it.
            timeout = limit if attempt == 0 else round(max(0.1, deadline - time.monotonic()), 1)
            prepared = prepare_step(context, loaded, step, connection, resolution, timeout)
            checked = checked_result(call_within_limit(prepared.send, timeout, limit))
        except TransientStepError as e:  # SourceUnreachableError included
            e.at(location=location, step=step.id)
            retried = prepared is not None and prepared.retries_inside
            delay = _retry_delay(settings, attempt)
            if (
                attempt < settings.retry_attempts
                and not retried
                and time.monotonic() + delay < deadline
            ):
                context.log.warning(
                    redact(
                        f"{e}; retry {attempt + 1} of {settings.retry_attempts} in {delay:.1f} s"
                    )
                )
                time.sleep(delay)
                attempt += 1
                continue
            if not isinstance(e, SourceUnreachableError):
                raise step_failure(e) from safe_cause(e)
            return _cached_run(context, key, partition, prepared, e, started, attempt)
        except PlaybookError as e:
            e.at(location=location, step=step.id)
            raise step_failure(e) from safe_cause(e)
        except Exception as e:  # a defect, not a product error: say so, without secrets
            context.log.error(redact("".join(traceback.format_exception(e))))
            error = TerminalStepError(f"{type(e).__name__}: {e}", location=location, step=step.id)
            raise step_failure(error) from safe_cause(e)
        metadata: dict[str, Any] = {
            **prepared.metadata,
            REQUEST_SHA256_KEY: prepared.fingerprint,
            ATTEMPTS_KEY: attempt + 1,
            AS_TEXT_KEY: checked.as_text or None,
        }
        return StepRun(
            checked.table,
            prepared.request,
            (time.perf_counter() - started) * 1000,
            {name: value for name, value in metadata.items() if value is not None},
        )


def _cached_run(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    partition: str | None,
    prepared: StepRequest | None,
    error: SourceUnreachableError,
    started: float,
    attempt: int,
) -> StepRun:
    fingerprint = prepared.fingerprint if prepared is not None else None
    cached = find_cached_result(context, key, fingerprint, partition) if fingerprint else None
    if cached is None:
        raise dg.Failure(
            description=redact(
                f"{error}; no stored result of this step for the same request to fall back on"
            ),
            allow_retries=False,
        ) from safe_cause(error)
    context.log.warning(
        redact(
            f"{error}; using the stored result of run {cached.metadata[CACHED_RUN_KEY]} "
            f"from {cached.metadata[CACHED_AT_KEY]}"
        )
    )
    return StepRun(
        cached.table,
        prepared.request if prepared is not None else None,
        (time.perf_counter() - started) * 1000,
        {**cached.metadata, REQUEST_SHA256_KEY: fingerprint, ATTEMPTS_KEY: attempt + 1},
        cached=True,
    )


def _retry_delay(settings: RunSettings, attempt: int) -> float:
    """An exponential, jittered delay before trying a step again."""
    return min(
        MAX_RETRY_DELAY_SECONDS,
        settings.retry_base_delay_seconds * 2**attempt * random.uniform(0.5, 1.5),
    )


def call_within_limit(send: Callable[[], pa.Table], timeout: float, limit: float) -> pa.Table:
    """``send()``, unless it is still running ``TIME_LIMIT_GRACE_SECONDS`` after ``timeout``:
    then ``StepTimeoutError`` naming ``limit``, the step's time limit.

    ``send`` runs on a daemon thread of its own, so one that never returns (a read blocked
    on a FIFO) is left behind without holding up the run or the process's exit.
    """
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def target() -> None:
        try:
            outcome["table"] = send()
        except BaseException as e:  # handed to the waiting thread
            outcome["error"] = e
        finally:
            finished.set()

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(target,), daemon=True, name="step")
    worker.start()
    if not finished.wait(timeout + TIME_LIMIT_GRACE_SECONDS):
        raise StepTimeoutError(
            f"the step ran longer than its time limit of {limit:g} s and was cut off",
            hint=TIMEOUT_HINT,
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["table"]


def step_failure(error: PlaybookError) -> dg.Failure:
    """The Dagster failure of a step error, its text redacted of secrets."""
    return dg.Failure(description=redact(str(error)), allow_retries=False)


@dataclass(frozen=True)
class CachedResult:
    """A stored result reused when the source cannot be reached."""

    table: pa.Table
    metadata: dict[str, Any]


def find_cached_result(
    context: dg.AssetExecutionContext, key: dg.AssetKey, fingerprint: str, partition: str | None
) -> CachedResult | None:
    """The latest stored result of an asset and partition made by the same request."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key,
            asset_partitions=[partition] if partition is not None else None,
        ),
        limit=CACHE_SEARCH_LIMIT,
    ).records
    for record in records:
        materialization = record.asset_materialization
        if materialization is None:
            continue
        metadata = {name: value.value for name, value in materialization.metadata.items()}
        if metadata.get(REQUEST_SHA256_KEY) != fingerprint or PATH_METADATA_KEY not in metadata:
            continue
        path = Path(str(metadata[PATH_METADATA_KEY]))
        recorded = metadata.get(SHA256_METADATA_KEY)
        expected = str(recorded) if recorded else None
        try:
            table = read_verified_table(path, expected, key.to_user_string())
        except TerminalStepError as e:  # missing, unreadable or changed
            context.log.warning(f"{e}; looking for an earlier result of the same request")
            continue
        source_run = str(metadata.get(CACHED_DAGSTER_RUN_KEY) or record.run_id)
        return CachedResult(
            table=table,
            metadata={
                CACHED_RUN_KEY: str(
                    metadata.get(CACHED_RUN_KEY)
                    or metadata.get(RUN_ID_METADATA_KEY)
                    or _product_run_id(context.instance, source_run, key.path[0])
                ),
                CACHED_DAGSTER_RUN_KEY: source_run,
                CACHED_AT_KEY: str(metadata.get(CACHED_AT_KEY) or _iso(record.timestamp)),
                PATH_METADATA_KEY: str(path),
                SHA256_METADATA_KEY: expected,
            },
        )
    return None


def _product_run_id(instance: dg.DagsterInstance, dagster_run_id: str, playbook_id: str) -> str:
    """The run id of a result stored before results carried it: from the run's start."""
    record = instance.get_run_record_by_id(dagster_run_id)
    if record is None:
        return ""
    import datetime as dt

    timestamp = record.start_time or record.create_timestamp.timestamp()
    started = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return report_run_id(dagster_run_id, playbook_id, started)


def _iso(timestamp: float) -> str:
    import datetime as dt

    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def build_output(
    table: pa.Table,
    settings: RunSettings,
    *,
    request: str | dict[str, Any] | None,
    elapsed_ms: float,
    extra: Mapping[str, Any] | None = None,
    facts: dict[str, Any] | None = None,
    encode: bool = True,
) -> dg.Output[Any]:
    """The output of a step or output asset: the table (encoded once for the artifact
    store), its data version (the Parquet file's sha256) and its metadata."""
    metadata = result_metadata(table, request, elapsed_ms, facts)
    for name, value in (extra or {}).items():
        if value is not None:
            metadata[name] = value
    if settings.save_artifacts and encode:
        encoded = encode_table(table)
        return dg.Output(encoded, metadata=metadata, data_version=dg.DataVersion(encoded.sha256))
    if SHA256_METADATA_KEY in metadata:  # a cached result keeps its stored file's version
        version = dg.DataVersion(str(metadata[SHA256_METADATA_KEY]))
        return dg.Output(table, metadata=metadata, data_version=version)
    return dg.Output(table, metadata=metadata)


def result_metadata(
    table: pa.Table,
    request: str | dict[str, Any] | None,
    elapsed_ms: float,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rows, time, request, schema, a preview and the facts insights may quote."""
    all_facts = facts if facts is not None else table_facts(table)
    top = top_row(table)
    if top is not None:
        all_facts = {**all_facts, "top": top}
    metadata: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(table.num_rows),
        "execution_time_ms": dg.MetadataValue.float(round(elapsed_ms, 1)),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in table.schema]
        ),
        "preview": dg.MetadataValue.md(markdown_preview(table)),
        FACTS_METADATA_KEY: dg.MetadataValue.json(all_facts),
    }
    if isinstance(request, str):
        metadata["sql"] = dg.MetadataValue.md(f"```sql\n{request.strip()}\n```")
    elif request is not None:
        metadata["search_request"] = dg.MetadataValue.json(request)
    return metadata


def markdown_preview(table: pa.Table, rows: int = PREVIEW_ROWS) -> str:
    """The first rows of a table as a markdown table."""
    if not table.column_names:
        return "(no columns)"
    lines = [
        "| " + " | ".join(table.column_names) + " |",
        "|" + "---|" * len(table.column_names),
    ]
    for row in table.slice(0, rows).to_pylist():
        cells = ["" if value is None else str(value).replace("|", "\\|") for value in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    if table.num_rows > rows:
        lines.append(f"\n{table.num_rows - rows} more rows")
    return "\n".join(lines)


def fail(error: PlaybookError, location: SourceLocation, **where: str) -> dg.Failure:
    """A Dagster failure for a product error, with where it happened."""
    error.at(location=location, **where)
    return step_failure(error)
