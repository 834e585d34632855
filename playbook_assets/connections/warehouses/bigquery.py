"""BigQuery as the data warehouse, through the google-cloud-bigquery client."""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
from dagster_gcp import BigQueryResource
from pydantic import Field

from playbook_assets.connections.kit.deadline import limit_text, step_timeout
from playbook_assets.connections.warehouses.base import WarehouseResource
from playbook_assets.core.errors import (
    SourceUnreachableError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.redaction import redact

if TYPE_CHECKING:
    from google.cloud import bigquery

_SCOPES = ("https://www.googleapis.com/auth/bigquery",)
# The server-side job timeout is a backstop for when this process dies before it can cancel:
# the client cancels at the deadline itself, the server stops the job a little later.
_SERVER_GRACE_MS = 2_000
_TRANSIENT_REASONS = frozenset(
    {"backendError", "internalError", "rateLimitExceeded", "jobRateLimitExceeded", "badGateway"}
)
_POSITION = re.compile(r"at \[(\d+):(\d+)\]")
_MISSING_TABLE = re.compile(r"Not found: Table ([\w.:-]+)")
_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HTTP_TIMEOUT_SECONDS = 60.0


class BigQueryWarehouse(WarehouseResource, BigQueryResource):
    """Google BigQuery, queried with the official google-cloud-bigquery client.

    It is dagster-gcp's ``BigQueryResource`` (an asset of the user's own can take it and call
    ``get_client()``), with what that resource lacks: an API endpoint (private endpoints, the
    tests' local stand-in) and credentials from a service-account file or JSON text as well as
    dagster-gcp's base64 ``gcp_credentials``, else application default credentials. Its
    ``get_client()`` gives the same client the playbook's queries use.

    Queries run as jobs (``client.query``) with ``job_timeout_ms`` set from the step's time
    limit; the resource polls the job and, when the deadline passes, calls ``job.cancel()``
    so the query does not keep running (and billing). Results come back as Arrow through
    the REST API (``to_arrow(create_bqstorage_client=False)``: no Storage API needed).

    API requests that fail with 5xx, rate limits or connection errors are retried by the
    client for up to ``request_retry_seconds``; the step's own retries come on top.

    Read-only: BigQuery has no read-only session; the SQL is checked as a single read-only
    statement before it is sent and the credentials should only hold read roles
    (``roles/bigquery.dataViewer`` + ``roles/bigquery.jobUser``).
    """

    dialect: ClassVar[str] = "bigquery"
    kind: ClassVar[str] = "bigquery"

    # Required here (dagster-gcp's is optional): a query job needs a project to run in.
    project: str = Field(  # pyright: ignore[reportIncompatibleVariableOverride]
        description="Google Cloud project that runs the query jobs."
    )
    dataset: str | None = Field(
        default=None, description="Default dataset for unqualified table names."
    )
    location: str | None = Field(
        default=None, description="Location of the datasets and jobs, e.g. 'US' or 'EU'."
    )
    credentials_path: str | None = Field(
        default=None, description="Path of a service-account JSON key file."
    )
    credentials_json: str | None = Field(
        default=None,
        description="Service-account JSON key text (use ${ENV_VAR}); application default "
        "credentials are used when neither this nor credentials_path is set.",
    )
    api_endpoint: str | None = Field(
        default=None,
        description="BigQuery API endpoint instead of https://bigquery.googleapis.com "
        "(private endpoints, or a local test server; anonymous when no credentials are set).",
    )
    request_retry_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long the client retries a failed API request (5xx, throttling, "
        "connection errors) before the step fails.",
    )

    # -- public -----------------------------------------------------------------------------

    def run_query(self, sql: str, *, timeout_seconds: float | None = None) -> pa.Table:
        """Run ``sql`` as a query job and return its result as Arrow.

        With ``timeout_seconds`` the job is cancelled when it runs longer
        (``StepTimeoutError``).
        """
        from google.cloud import bigquery

        client = self._client()
        retry = self._retry()
        config = bigquery.QueryJobConfig(use_legacy_sql=False)
        if self.dataset:
            config.default_dataset = f"{self.project}.{self.dataset}"
        if timeout_seconds:
            config.job_timeout_ms = math.ceil(timeout_seconds * 1000) + _SERVER_GRACE_MS
        started = time.monotonic()
        try:
            job = client.query(
                sql,
                job_config=config,
                location=self.location,
                retry=retry,
                timeout=_HTTP_TIMEOUT_SECONDS,
                job_retry=None,
            )
            self._wait(job, retry, started, timeout_seconds)
            if job.error_result:
                exception = job.exception()
                raise exception if exception is not None else RuntimeError(str(job.error_result))
            rows = job.result(retry=retry, timeout=_HTTP_TIMEOUT_SECONDS)
            return rows.to_arrow(create_bqstorage_client=False, progress_bar_type=None)
        except (TerminalStepError, TransientStepError):
            raise
        except Exception as e:
            raise self._classify(e, sql, timeout_seconds) from e
        finally:
            client.close()

    def load_table(self, name: str, table: pa.Table) -> None:
        """Create or replace the table ``dataset.table`` from Arrow.

        The dataset is created when missing. The rows are uploaded as Parquet in one load
        job with ``WRITE_TRUNCATE``, which BigQuery applies atomically: readers see the old
        table or the new one.
        """
        from google.cloud import bigquery

        parts = name.split(".")
        if len(parts) != 2 or not all(_NAME_PATTERN.match(part) for part in parts):
            raise TerminalStepError(
                f"table name '{name}' must be 'dataset.table' (letters, digits, underscores)",
                hint="e.g. analytics.accounts",
            )
        dataset_id, table_id = parts
        client = self._client()
        retry = self._retry()
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        size = buffer.tell()
        buffer.seek(0)
        try:
            dataset = bigquery.Dataset(f"{self.project}.{dataset_id}")
            if self.location:
                dataset.location = self.location
            client.create_dataset(dataset, exists_ok=True, retry=retry)
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            )
            job = client.load_table_from_file(
                buffer,
                f"{self.project}.{dataset_id}.{table_id}",
                job_config=config,
                size=size,
                location=self.location,
                timeout=_HTTP_TIMEOUT_SECONDS,
            )
            job.result(retry=retry, timeout=self.request_retry_seconds + _HTTP_TIMEOUT_SECONDS)
        except Exception as e:
            raise self._classify(e, f"LOAD {name}", None) from e
        finally:
            client.close()

    # -- internals ----------------------------------------------------------------------------

    def _wait(
        self,
        job: bigquery.QueryJob,
        retry: Any,
        started: float,
        timeout_seconds: float | None,
    ) -> None:
        """Poll the job (jobs.get) until it is done; cancel it when the deadline passes."""
        delay = 0.02
        while not job.done(retry=retry, timeout=_HTTP_TIMEOUT_SECONDS):
            if timeout_seconds is not None:
                remaining = timeout_seconds - (time.monotonic() - started)
                if remaining <= 0:
                    job.cancel(retry=retry, timeout=_HTTP_TIMEOUT_SECONDS)
                    raise step_timeout(
                        f"the query ran longer than {timeout_seconds:g} s; BigQuery job "
                        f"{job.job_id} was cancelled"
                    )
                delay = min(delay, remaining)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def get_object_to_set_on_execution_context(self) -> Any:
        """The resource itself on an op's context (dagster-gcp's puts a client there): the
        playbook's op runs its queries through it."""
        return self

    @contextmanager
    def get_client(self) -> Iterator[bigquery.Client]:
        """A BigQuery client on this connection's project, location, endpoint and
        credentials (dagster-gcp's ``BigQueryResource.get_client``)."""
        client = self._client()
        try:
            yield client
        finally:
            client.close()

    def _client(self) -> bigquery.Client:
        from google.cloud import bigquery

        options: dict[str, Any] = {}
        if self.api_endpoint:
            options["client_options"] = {"api_endpoint": self.api_endpoint}
        return bigquery.Client(
            project=self.project,
            credentials=self._credentials(),
            location=self.location,
            **options,
        )

    def _credentials(self) -> Any:
        import google.auth
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError
        from google.oauth2 import service_account

        given = [
            name
            for name in ("credentials_path", "credentials_json", "gcp_credentials")
            if getattr(self, name)
        ]
        if len(given) > 1:
            raise TerminalStepError(
                f"set only one of {' and '.join(given)} on the BigQuery connection"
            )
        try:
            if self.credentials_path:
                return service_account.Credentials.from_service_account_file(
                    self.credentials_path, scopes=_SCOPES
                )
            text = self.credentials_json or _decoded_credentials(self.gcp_credentials)
            if text:
                info = json.loads(text)
                return service_account.Credentials.from_service_account_info(info, scopes=_SCOPES)
        except FileNotFoundError as e:
            raise TerminalStepError(
                f"BigQuery credentials file not found: {self.credentials_path}",
                hint="check credentials_path on the connection",
            ) from e
        except (ValueError, KeyError) as e:
            # The message of a parse error could quote the key: say only what is wrong.
            raise TerminalStepError(
                "BigQuery credentials are not a valid service-account JSON key",
                hint="check credentials_path / credentials_json / gcp_credentials on the "
                "connection",
            ) from e
        if self.api_endpoint:
            return AnonymousCredentials()
        try:
            credentials, _ = google.auth.default(scopes=_SCOPES)
        except DefaultCredentialsError as e:
            raise TerminalStepError(
                "no BigQuery credentials: application default credentials are not set up",
                hint="set credentials_path or credentials_json on the connection, or run "
                "'gcloud auth application-default login'",
            ) from e
        return credentials

    def _retry(self) -> Any:
        from google.cloud.bigquery import DEFAULT_RETRY

        return DEFAULT_RETRY.with_deadline(self.request_retry_seconds).with_delay(
            initial=0.25, maximum=8.0, multiplier=2.0
        )

    def _classify(self, error: Exception, sql: str, timeout_seconds: float | None) -> Exception:
        import requests
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        if isinstance(error, api.RetryError) and error.cause is not None:
            cause = error.cause
            if isinstance(cause, Exception):
                return self._classify(cause, sql, timeout_seconds)
        where = self.api_endpoint or "https://bigquery.googleapis.com"
        if isinstance(error, requests.ConnectionError | auth.TransportError | ConnectionError):
            return SourceUnreachableError(
                f"cannot reach BigQuery at {where}: {type(error).__name__}",
                hint="check the network (and api_endpoint), then retry",
            )
        if isinstance(error, requests.Timeout):
            return TransientStepError(f"BigQuery did not answer in time: {type(error).__name__}")
        if isinstance(error, auth.RefreshError):
            return TerminalStepError(
                "BigQuery credentials were refused while getting an access token",
                hint="check the service account key and its roles",
            )
        if not isinstance(error, api.GoogleAPICallError):
            return TerminalStepError(redact(f"BigQuery failed: {type(error).__name__}: {error}"))
        reason = _reason(error)
        message = _message(error)
        if reason in {"stopped", "timeout"} or "timed out" in message.lower():
            return step_timeout(
                f"the query ran longer than {limit_text(timeout_seconds)} and was stopped by "
                f"BigQuery: {message}"
            )
        transient_types = (
            api.ServiceUnavailable,
            api.InternalServerError,
            api.TooManyRequests,
            api.BadGateway,
            api.GatewayTimeout,
        )
        if isinstance(error, transient_types) or reason in _TRANSIENT_REASONS:
            return TransientStepError(f"BigQuery failed for a passing reason: {message}")
        return TerminalStepError(f"BigQuery rejected the query: {message}{_where(sql, message)}")


def _reason(error: Any) -> str | None:
    errors = getattr(error, "errors", None) or []
    first = errors[0] if errors else None
    return first.get("reason") if isinstance(first, dict) else None


def _message(error: Any) -> str:
    """The server's message, without the client's job-id footer."""
    text = str(getattr(error, "message", None) or error)
    # Job errors come as "<message>; reason: ..., message: ..." and end with a job-id footer.
    text = text.split("\n\nLocation:")[0].split("; reason: ")[0]
    return redact(" ".join(text.split()))


def _where(sql: str, message: str) -> str:
    """Where in ``sql`` the error points: BigQuery's ``at [line:column]``, or the line naming
    the missing table."""
    lines = sql.splitlines()
    found = _POSITION.search(message)
    if found is not None:
        line, column = int(found.group(1)), int(found.group(2))
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        return f" (line {line}, column {column} of the query: {text})"
    missing = _MISSING_TABLE.search(message)
    if missing is not None:
        name = re.split(r"[.:]", missing.group(1))[-1]
        word = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])", re.IGNORECASE)
        for number, text in enumerate(lines, start=1):
            if word.search(text):
                return f" (line {number} of the query: {text.strip()})"
    return ""


def _decoded_credentials(encoded: str | None) -> str | None:
    """dagster-gcp's ``gcp_credentials``: a service-account JSON key, base64-encoded."""
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as e:
        # Say only what is wrong: the text is a secret.
        raise TerminalStepError(
            "gcp_credentials of the BigQuery connection is not base64 text",
            hint="encode the service-account JSON key: base64 -w0 key.json",
        ) from e
