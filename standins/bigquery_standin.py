"""A small local stand-in for the BigQuery REST API (v2), executing on DuckDB.

It implements what google-cloud-bigquery calls for queries and loads, with the documented JSON
shapes: jobs.insert, jobs.get, jobs.cancel, jobs.getQueryResults (maxResults/pageToken paging),
jobs.query, datasets.insert/get, and load jobs uploaded with uploadType=multipart or
uploadType=resumable (Parquet or newline-delimited JSON). SQL is transpiled from BigQuery to
DuckDB with sqlglot. Datasets are DuckDB schemas; the project part of a name is dropped.

Row values use BigQuery's JSON encodings: INTEGER, NUMERIC and FLOAT as strings, BOOLEAN as
"true"/"false", DATE as 'YYYY-MM-DD', DATETIME as ISO text, TIMESTAMP as epoch microseconds
(with ``formatOptions.useInt64Timestamp=true``, which the client always sends) or epoch seconds.
DuckDB's HUGEINT (an integer SUM) is reported as INTEGER, as BigQuery's SUM(INT64) is.

Query jobs run on their own DuckDB cursor in a thread; jobs.cancel interrupts that cursor.
``fail_next`` injects HTTP errors (503 backendError, 429 rateLimitExceeded, ...) for testing
retries.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import email.parser
import email.policy
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import duckdb
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from standins.local_http import LocalHttpServer, QuietHandler

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_REASON_STATUS = {
    "invalidQuery": 400,
    "invalid": 400,
    "notFound": 404,
    "duplicate": 409,
    "accessDenied": 403,
    "rateLimitExceeded": 429,
    "internalError": 500,
    "backendError": 503,
    "stopped": 400,
    "timeout": 400,
}


class ApiError(Exception):
    """An error answered in BigQuery's error body format."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
                "status": _STATUS_NAMES.get(self.status, "UNKNOWN"),
            }
        }


@dataclass
class Job:
    """One job and its outcome."""

    project: str
    job_id: str
    location: str
    kind: str  # "query" or "load"
    configuration: dict[str, Any]
    state: str = "PENDING"
    error: dict[str, str] | None = None
    result: pa.Table | None = None
    cursor: duckdb.DuckDBPyConnection | None = None
    interrupted: bool = False
    created: float = field(default_factory=time.time)
    finished: float | None = None
    done_event: threading.Event = field(default_factory=threading.Event)

    def reference(self) -> dict[str, str]:
        return {"projectId": self.project, "jobId": self.job_id, "location": self.location}

    def resource(self) -> dict[str, Any]:
        status: dict[str, Any] = {"state": self.state}
        if self.error is not None:
            status["errorResult"] = self.error
            status["errors"] = [self.error]
        statistics: dict[str, Any] = {"creationTime": str(int(self.created * 1000))}
        if self.finished is not None:
            statistics["endTime"] = str(int(self.finished * 1000))
        if self.kind == "query":
            statistics["query"] = {"statementType": "SELECT", "totalBytesProcessed": "0"}
        return {
            "kind": "bigquery#job",
            "id": f"{self.project}:{self.location}.{self.job_id}",
            "jobReference": self.reference(),
            "configuration": self.configuration,
            "status": status,
            "statistics": statistics,
        }


def _field_type(data_type: pa.DataType) -> str:
    if pa.types.is_boolean(data_type):
        return "BOOLEAN"
    if pa.types.is_integer(data_type):
        return "INTEGER"
    if pa.types.is_floating(data_type):
        return "FLOAT"
    if pa.types.is_decimal(data_type):
        assert isinstance(data_type, pa.Decimal128Type | pa.Decimal256Type)
        if data_type.scale == 0 and data_type.precision == 38:
            return "INTEGER"  # DuckDB HUGEINT, from SUM over integers
        fits = data_type.scale <= 9 and data_type.precision - data_type.scale <= 29
        return "NUMERIC" if fits else "BIGNUMERIC"
    if pa.types.is_date(data_type):
        return "DATE"
    if pa.types.is_timestamp(data_type):
        assert isinstance(data_type, pa.TimestampType)
        return "TIMESTAMP" if data_type.tz else "DATETIME"
    if pa.types.is_time(data_type):
        return "TIME"
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return "BYTES"
    return "STRING"


def _schema(table: pa.Table) -> dict[str, Any]:
    return {
        "fields": [
            {"name": f.name, "type": _field_type(f.type), "mode": "NULLABLE"} for f in table.schema
        ]
    }


def _encode(value: Any, field_type: str, int64_timestamp: bool) -> str | None:
    if value is None:
        return None
    if field_type == "BOOLEAN":
        return "true" if value else "false"
    if field_type == "INTEGER":
        return str(int(value))
    if field_type == "FLOAT":
        return repr(float(value))
    if field_type in ("NUMERIC", "BIGNUMERIC"):
        return format(decimal.Decimal(value).normalize(), "f")
    if field_type == "TIMESTAMP":
        assert isinstance(value, datetime.datetime)
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        micros = (value - epoch) // datetime.timedelta(microseconds=1)
        return str(micros) if int64_timestamp else f"{micros / 1_000_000:.6f}"
    if field_type == "DATETIME":
        return value.isoformat(timespec="microseconds")
    if field_type == "DATE" or field_type == "TIME":
        return value.isoformat()
    if field_type == "BYTES":
        return base64.b64encode(value).decode()
    return str(value)


class BigQueryStandIn(LocalHttpServer):
    """The stand-in server: ``with BigQueryStandIn() as bq: bq.base_url``."""

    def __init__(self, project: str = "standin-project", page_rows: int = 500) -> None:
        self.project = project
        self.page_rows = page_rows
        self.db = duckdb.connect()
        self.jobs: dict[str, Job] = {}
        self.requests: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self._failures: list[tuple[str, int, str]] = []
        self._uploads: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        super().__init__(self._handler_class())

    def close(self) -> None:
        for job in list(self.jobs.values()):
            if job.cursor is not None:
                job.cursor.interrupt()
            job.done_event.wait(5)
        self.db.close()

    # -- test controls --------------------------------------------------------------------

    def fail_next(self, path_contains: str, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` requests whose path contains ``path_contains`` with an
        HTTP error (503 backendError, 429 rateLimitExceeded, 500 internalError...)."""
        reason = {429: "rateLimitExceeded", 500: "internalError"}.get(status, "backendError")
        with self._lock:
            self._failures.extend([(path_contains, status, reason)] * times)

    def running_queries(self) -> list[str]:
        """Ids of query jobs still executing in DuckDB."""
        return [j.job_id for j in self.jobs.values() if j.kind == "query" and j.state != "DONE"]

    # -- HTTP plumbing --------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                standin._dispatch(self, "GET")

            def do_POST(self) -> None:
                standin._dispatch(self, "POST")

            def do_PUT(self) -> None:
                standin._dispatch(self, "PUT")

        return Handler

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(handler.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        self.requests.append((method, url.path))
        headers: dict[str, str] = {}
        try:
            with self._lock:
                failure = next(
                    (f for f in self._failures if f[0] in url.path and method != "PUT"), None
                )
                if failure is not None:
                    self._failures.remove(failure)
            if failure is not None:
                raise ApiError(failure[1], failure[2], f"Injected {failure[1]} ({failure[2]})")
            status, payload = self._route(method, url.path, query, body, handler, headers)
        except ApiError as e:
            status, payload = e.status, e.body()
        data = json.dumps(payload).encode() if payload is not None else b""
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=UTF-8")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        handler: BaseHTTPRequestHandler,
        headers: dict[str, str],
    ) -> tuple[int, Any]:
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("POST", r"/upload/bigquery/v2/projects/([^/]+)/jobs", self._upload),
            ("PUT", r"/upload/bigquery/v2/projects/([^/]+)/jobs", self._upload_chunk),
            ("POST", r"/bigquery/v2/projects/([^/]+)/jobs", self._jobs_insert),
            ("GET", r"/bigquery/v2/projects/([^/]+)/jobs/([^/]+)", self._jobs_get),
            ("POST", r"/bigquery/v2/projects/([^/]+)/jobs/([^/]+)/cancel", self._jobs_cancel),
            ("GET", r"/bigquery/v2/projects/([^/]+)/queries/([^/]+)", self._get_query_results),
            ("POST", r"/bigquery/v2/projects/([^/]+)/queries", self._jobs_query),
            ("POST", r"/bigquery/v2/projects/([^/]+)/datasets", self._datasets_insert),
            ("GET", r"/bigquery/v2/projects/([^/]+)/datasets/([^/]+)", self._datasets_get),
        ]
        for route_method, pattern, action in routes:
            found = re.fullmatch(pattern, path)
            if route_method == method and found:
                return action(
                    *found.groups(),
                    query=query,
                    body=body,
                    headers_in=handler.headers,
                    headers=headers,
                )
        raise ApiError(404, "notFound", f"Not found: {method} {path}")

    # -- datasets -------------------------------------------------------------------------

    def _dataset_exists(self, dataset: str) -> bool:
        with self.db.cursor() as cur:
            rows = cur.execute(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [dataset]
            ).fetchall()
        return bool(rows)

    def _dataset_resource(self, project: str, dataset: str) -> dict[str, Any]:
        return {
            "kind": "bigquery#dataset",
            "id": f"{project}:{dataset}",
            "datasetReference": {"projectId": project, "datasetId": dataset},
            "location": "US",
        }

    def _datasets_insert(self, project: str, *, body: bytes, **_: Any) -> tuple[int, Any]:
        dataset = json.loads(body)["datasetReference"]["datasetId"]
        if self._dataset_exists(dataset):
            raise ApiError(409, "duplicate", f"Already Exists: Dataset {project}:{dataset}")
        with self.db.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{dataset}"')
        return 200, self._dataset_resource(project, dataset)

    def _datasets_get(self, project: str, dataset: str, **_: Any) -> tuple[int, Any]:
        if not self._dataset_exists(dataset):
            raise ApiError(404, "notFound", f"Not found: Dataset {project}:{dataset}")
        return 200, self._dataset_resource(project, dataset)

    # -- jobs -----------------------------------------------------------------------------

    def _new_job(self, project: str, resource: dict[str, Any], kind: str) -> Job:
        reference = resource.get("jobReference") or {}
        job_id = reference.get("jobId") or f"job_{uuid.uuid4().hex}"
        with self._lock:
            if job_id in self.jobs:
                raise ApiError(409, "duplicate", f"Already Exists: Job {project}:US.{job_id}")
            job = Job(
                project=project,
                job_id=job_id,
                location=reference.get("location") or "US",
                kind=kind,
                configuration=resource.get("configuration") or {},
            )
            self.jobs[job_id] = job
        return job

    def _job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "notFound", f"Not found: Job {self.project}:US.{job_id}")
        return job

    def _jobs_insert(self, project: str, *, body: bytes, **_: Any) -> tuple[int, Any]:
        resource = json.loads(body)
        configuration = resource.get("configuration") or {}
        if "query" not in configuration:
            raise ApiError(400, "invalid", "Only query jobs can be inserted without an upload")
        job = self._new_job(project, resource, "query")
        self._start_query(job)
        return 200, job.resource()

    def _jobs_get(self, project: str, job_id: str, **_: Any) -> tuple[int, Any]:
        return 200, self._job(job_id).resource()

    def _jobs_cancel(self, project: str, job_id: str, **_: Any) -> tuple[int, Any]:
        job = self._job(job_id)
        with self._lock:
            self.cancelled.append(job_id)
            if job.state != "DONE" and job.cursor is not None:
                job.cursor.interrupt()
        job.done_event.wait(5)
        return 200, {"kind": "bigquery#jobCancelResponse", "job": job.resource()}

    def _start_query(self, job: Job) -> None:
        config = job.configuration["query"]
        default = (config.get("defaultDataset") or {}).get("datasetId")
        try:
            sql = self._transpile(config["query"], default)
        except ParseError as e:
            first = e.errors[0] if e.errors else {}
            message = f"Syntax error: {first.get('description', str(e))}"
            if first.get("line"):
                message += f" at [{first['line']}:{first.get('col', 1)}]"
            self._finish(job, error={"reason": "invalidQuery", "message": message})
            return
        job.state = "RUNNING"
        job.cursor = self.db.cursor()
        timeout_ms = job.configuration.get("jobTimeoutMs")
        if timeout_ms:
            timer = threading.Timer(int(timeout_ms) / 1000, self._job_timeout, [job])
            timer.daemon = True
            timer.start()
        threading.Thread(target=self._execute, args=(job, sql), daemon=True).start()

    def _job_timeout(self, job: Job) -> None:
        with self._lock:
            if job.state != "DONE" and job.cursor is not None:
                job.error = {"reason": "timeout", "message": "Job timed out (jobTimeoutMs)"}
                job.cursor.interrupt()

    def _execute(self, job: Job, sql: str) -> None:
        cursor = job.cursor
        assert cursor is not None
        try:
            relation = cursor.sql(sql)
            table = relation.to_arrow_table() if relation is not None else None
            self._finish(job, result=table)
        except duckdb.InterruptException:
            job.interrupted = True
            if job.error is None:
                job.error = {
                    "reason": "stopped",
                    "message": "Job execution was cancelled: User requested cancellation",
                }
            self._finish(job, error=job.error)
        except duckdb.CatalogException as e:
            name = re.search(r'name "?([\w.]+)"? does not exist', str(e))
            default = (job.configuration["query"].get("defaultDataset") or {}).get("datasetId")
            table = name.group(1) if name else "?"
            table = f"{default}.{table}" if default and "." not in table else table
            message = f"Not found: Table {job.project}:{table} was not found in location US"
            self._finish(job, error={"reason": "notFound", "message": message})
        except duckdb.BinderException as e:
            self._finish(job, error={"reason": "invalidQuery", "message": self._binder(job, e)})
        except duckdb.Error as e:
            text = str(e).splitlines()[0]
            self._finish(job, error={"reason": "invalidQuery", "message": text})
        finally:
            cursor.close()

    @staticmethod
    def _binder(job: Job, error: duckdb.Error) -> str:
        """BigQuery's wording for an unknown column, with its position in the original SQL."""
        found = re.search(r'Referenced column "([^"]+)" not found', str(error))
        if found is None:
            return str(error).splitlines()[0]
        name = found.group(1)
        for number, text in enumerate(job.configuration["query"]["query"].splitlines(), 1):
            column = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE)
            if column:
                return f"Unrecognized name: {name} at [{number}:{column.start() + 1}]"
        return f"Unrecognized name: {name}"

    def _finish(
        self, job: Job, *, result: pa.Table | None = None, error: dict[str, str] | None = None
    ) -> None:
        with self._lock:
            job.result = result
            if error is not None:
                job.error = {**error, "location": "query" if job.kind == "query" else "load"}
            job.state = "DONE"
            job.finished = time.time()
            job.cursor = None
        job.done_event.set()

    def _transpile(self, sql: str, default_dataset: str | None) -> str:
        statements = sqlglot.parse(sql, read="bigquery")
        if len(statements) != 1 or statements[0] is None:
            raise ParseError("expected exactly one statement")
        tree = statements[0]
        for table in tree.find_all(exp.Table):
            if table.args.get("catalog") is not None:
                table.set("catalog", None)
            if not table.db and default_dataset and isinstance(table.this, exp.Identifier):
                ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
                if table.name not in ctes:
                    table.set("db", exp.to_identifier(default_dataset))
        return tree.sql(dialect="duckdb")

    def _query_results(self, job: Job, query: dict[str, str], wait_ms: int) -> dict[str, Any]:
        job.done_event.wait(max(wait_ms, 0) / 1000)
        response: dict[str, Any] = {
            "kind": "bigquery#getQueryResultsResponse",
            "jobReference": job.reference(),
            "jobComplete": job.state == "DONE",
        }
        if job.state != "DONE":
            return response
        if job.error is not None:
            raise ApiError(
                _REASON_STATUS.get(job.error["reason"], 400),
                job.error["reason"],
                job.error["message"],
            )
        if job.result is None:
            return {**response, "schema": {"fields": []}}
        table = job.result
        schema = _schema(table)
        start = int(query.get("pageToken") or query.get("startIndex") or 0)
        max_results = query.get("maxResults")
        size = self.page_rows if max_results is None else min(int(max_results), self.page_rows)
        response |= {"schema": schema, "totalRows": str(table.num_rows), "cacheHit": False}
        if max_results is not None and int(max_results) == 0:
            return self._only_fields(response, query)
        int64_timestamp = query.get("formatOptions.useInt64Timestamp", "").lower() == "true"
        types = [f["type"] for f in schema["fields"]]
        page = table.slice(start, size).to_pylist()
        response["rows"] = [
            {
                "f": [
                    {"v": _encode(v, t, int64_timestamp)}
                    for v, t in zip(row.values(), types, strict=True)
                ]
            }
            for row in page
        ]
        if start + size < table.num_rows:
            response["pageToken"] = str(start + size)
        return self._only_fields(response, query)

    @staticmethod
    def _only_fields(response: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        wanted = query.get("fields")
        if not wanted:
            return response
        keep = {name.strip() for name in wanted.split(",")}
        return {key: value for key, value in response.items() if key in keep}

    def _get_query_results(
        self, project: str, job_id: str, *, query: dict[str, str], **_: Any
    ) -> tuple[int, Any]:
        job = self._job(job_id)
        wait_ms = int(query.get("timeoutMs") or 10_000)
        return 200, self._query_results(job, query, wait_ms)

    def _jobs_query(self, project: str, *, body: bytes, **_: Any) -> tuple[int, Any]:
        request = json.loads(body)
        configuration: dict[str, Any] = {
            "query": {
                "query": request["query"],
                "useLegacySql": request.get("useLegacySql", False),
                "defaultDataset": request.get("defaultDataset") or {},
            }
        }
        if request.get("jobTimeoutMs"):
            configuration["jobTimeoutMs"] = request["jobTimeoutMs"]
        job = self._new_job(
            project,
            {"jobReference": {"location": request.get("location")}, "configuration": configuration},
            "query",
        )
        self._start_query(job)
        options = request.get("formatOptions") or {}
        query = {"formatOptions.useInt64Timestamp": str(options.get("useInt64Timestamp", False))}
        if request.get("maxResults") is not None:
            query["maxResults"] = str(request["maxResults"])
        response = self._query_results(job, query, int(request.get("timeoutMs") or 10_000))
        response["kind"] = "bigquery#queryResponse"
        return 200, response

    # -- load jobs ------------------------------------------------------------------------

    def _upload(
        self,
        project: str,
        *,
        query: dict[str, str],
        body: bytes,
        headers_in: Any,
        headers: dict[str, str],
        **_: Any,
    ) -> tuple[int, Any]:
        upload_type = query.get("uploadType")
        if upload_type == "multipart":
            content_type = headers_in.get("Content-Type", "")
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
            )
            parts = list(message.iter_parts())  # type: ignore[attr-defined]
            metadata = json.loads(bytes(parts[0].get_payload(decode=True)))
            data = bytes(parts[1].get_payload(decode=True))
            return 200, self._load(project, metadata, data)
        if upload_type == "resumable":
            upload_id = uuid.uuid4().hex
            self._uploads[upload_id] = {"metadata": json.loads(body), "data": bytearray()}
            headers["Location"] = (
                f"{self.base_url}/upload/bigquery/v2/projects/{project}/jobs"
                f"?uploadType=resumable&upload_id={upload_id}"
            )
            return 200, None
        raise ApiError(400, "invalid", f"unsupported uploadType {upload_type}")

    def _upload_chunk(
        self,
        project: str,
        *,
        query: dict[str, str],
        body: bytes,
        headers_in: Any,
        headers: dict[str, str],
        **_: Any,
    ) -> tuple[int, Any]:
        upload = self._uploads.get(query.get("upload_id", ""))
        if upload is None:
            raise ApiError(404, "notFound", "unknown upload session")
        upload["data"].extend(body)
        found = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", headers_in.get("Content-Range", ""))
        total = found.group(3) if found else str(len(upload["data"]))
        if total != "*" and len(upload["data"]) >= int(total):
            del self._uploads[query["upload_id"]]
            return 200, self._load(project, upload["metadata"], bytes(upload["data"]))
        headers["Range"] = f"bytes=0-{len(upload['data']) - 1}"
        return 308, None

    def _load(self, project: str, metadata: dict[str, Any], data: bytes) -> dict[str, Any]:
        job = self._new_job(project, metadata, "load")
        config = job.configuration["load"]
        destination = config["destinationTable"]
        dataset, name = destination["datasetId"], destination["tableId"]
        try:
            if not self._dataset_exists(dataset):
                raise ApiError(404, "notFound", f"Not found: Dataset {project}:{dataset}")
            source_format = config.get("sourceFormat", "CSV")
            if source_format == "PARQUET":
                table = pq.read_table(io.BytesIO(data))
            elif source_format == "NEWLINE_DELIMITED_JSON":
                table = pa_json.read_json(io.BytesIO(data))
            else:
                raise ApiError(400, "invalid", f"unsupported sourceFormat {source_format}")
            qualified = f'"{dataset}"."{name}"'
            disposition = config.get("writeDisposition", "WRITE_APPEND")
            with self.db.cursor() as cur:
                cur.register("incoming", table)
                if disposition == "WRITE_TRUNCATE":
                    cur.execute(f"CREATE OR REPLACE TABLE {qualified} AS FROM incoming")
                elif disposition == "WRITE_EMPTY":
                    cur.execute(f"CREATE TABLE {qualified} AS FROM incoming")
                else:
                    cur.execute(f"CREATE TABLE IF NOT EXISTS {qualified} AS FROM incoming LIMIT 0")
                    cur.execute(f"INSERT INTO {qualified} FROM incoming")
            self._finish(job)
        except ApiError as e:
            self._finish(job, error={"reason": e.reason, "message": e.message})
        except duckdb.Error as e:
            self._finish(job, error={"reason": "invalid", "message": str(e).splitlines()[0]})
        return job.resource()
