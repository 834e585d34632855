"""Generic REST and GraphQL sources (steps with ``source: api``).

Records are found at ``records_path`` in each response, every page is fetched (cursor,
offset or ``Link: <...>; rel="next"`` paging), and the records become an Arrow table whose
nested objects are flattened into ``parent_child`` columns. Credentials come from
environment variables named in the playbook, read when the step runs, and are redacted from
any text an error carries from the API. The step's time limit bounds the whole call, pages and
retries included: a body that arrives too slowly stops being read at the limit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import requests
import urllib3
from gql import Client, gql
from gql.transport.exceptions import (
    TransportQueryError,
    TransportServerError,
)
from gql.transport.requests import RequestsHTTPTransport
from graphql import GraphQLError

from playbook_assets.connections.kit.deadline import Deadline, step_timeout
from playbook_assets.connections.kit.retry import Attempt, RetryPolicy, call_with_retries
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.redaction import redact, remember_secret
from playbook_assets.core.references import REFERENCE_PATTERN, ResolutionContext, resolve
from playbook_assets.core.spec import ApiAuth, GraphQLConfig, RequestConfig

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 4
MAX_RETRY_AFTER_SECONDS = 30.0
# Each request is sent up to MAX_ATTEMPTS times; a source that cannot be reached is left to
# the step, which retries the whole call and then falls back on a stored result.
_POLICY = RetryPolicy(
    retries=MAX_ATTEMPTS - 1,
    max_backoff_seconds=MAX_RETRY_AFTER_SECONDS,
    max_retry_after_seconds=MAX_RETRY_AFTER_SECONDS,
    retry_unreachable=False,
)
_READ_CHUNK = 1 << 16
# How much of an error answer a message quotes.
_ERROR_TEXT_CHARS = 300


def auth_headers(auth: ApiAuth | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers carrying the credentials, read from the environment now."""
    if auth is None:
        return {}
    env = os.environ if environ is None else environ
    name = auth.bearer_token_env or auth.value_env or ""
    value = env.get(name)
    if not value:
        raise TerminalStepError(
            f"environment variable {name} is not set", hint=f"set {name} to the API credential"
        )
    remember_secret(value)
    if auth.bearer_token_env:
        return {"Authorization": f"Bearer {value}"}
    return {str(auth.header): value}


def resolve_url(url: str, context: ResolutionContext) -> str:
    """The URL with its ``${...}`` references replaced by URL-encoded values."""
    return REFERENCE_PATTERN.sub(
        lambda match: quote(str(resolve(match.group(0), context)), safe=""), url
    )


def dig(data: Any, path: str | None) -> Any:
    """The value at a dotted path (``data.items``); the whole value without a path."""
    if not path:
        return data
    node = data
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def records_table(records: list[Any]) -> pa.Table:
    """JSON records as an Arrow table, nested objects flattened into ``a_b`` columns."""
    rows = [record if isinstance(record, Mapping) else {"value": record} for record in records]
    if not rows:
        return pa.table({})
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Values of mixed types in one field: keep them as text rather than fail.
        columns = sorted({key for row in rows for key in row})
        table = pa.table(
            {
                column: pa.array(
                    [None if row.get(column) is None else str(row.get(column)) for row in rows],
                    pa.string(),
                )
                for column in columns
            }
        )
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    return table.rename_columns([name.replace(".", "_") for name in table.column_names])


def describe_request(config: RequestConfig, context: ResolutionContext) -> dict[str, Any]:
    """The request as sent, without credentials: for metadata and the cached fallback."""
    return {
        "method": config.method,
        "url": resolve_url(config.url, context),
        "query": resolve(config.query, context),
        "body": resolve(config.body, context),
        "records_path": config.records_path,
        "pagination": config.pagination.model_dump(exclude_defaults=True),
    }


def fetch_rest(
    config: RequestConfig,
    context: ResolutionContext,
    *,
    timeout_seconds: float,
    session: requests.Session | None = None,
) -> pa.Table:
    """Call a REST API, follow its pages and return every record."""
    deadline = _deadline(timeout_seconds)
    url = resolve_url(config.url, context)
    query: dict[str, Any] = dict(resolve(config.query, context))
    body = resolve(config.body, context)
    headers = {**config.headers, **auth_headers(config.auth)}
    paging = config.pagination
    http = session or requests.Session()
    records: list[Any] = []
    offset = 0
    try:
        for _page in range(paging.max_pages):
            if paging.type == "offset":
                query[paging.offset_param] = offset
                query[paging.limit_param] = paging.page_size
            response, data = _send(
                lambda u=url, q=dict(query): http.request(
                    config.method,
                    u,
                    params=q,
                    json=body if config.method == "POST" else None,
                    headers=headers,
                    timeout=deadline.request_timeout(timeout_seconds),
                    stream=True,
                ),
                deadline,
            )
            page = dig(data, config.records_path)
            if page is None:
                raise TerminalStepError(
                    f"the response has no '{config.records_path}'",
                    hint="check records_path against the API's response",
                    field="config.records_path",
                )
            page = page if isinstance(page, list) else [page]
            records.extend(page)
            if paging.type == "cursor":
                cursor = dig(data, paging.cursor_path)
                if not cursor or not page:
                    break
                query[paging.cursor_param] = cursor
            elif paging.type == "offset":
                if len(page) < paging.page_size:
                    break
                offset += paging.page_size
            elif paging.type == "link_header":
                link = response.links.get("next")
                if not link or not link.get("url"):
                    break
                url, query = link["url"], {}  # the next link carries its own query
            else:
                break
    finally:
        if session is None:
            http.close()
    return records_table(records)


def _deadline(limit: float) -> Deadline:
    return Deadline(
        limit,
        lambda: step_timeout(f"the API did not answer within the step's time limit of {limit:g} s"),
    )


def _read_body(response: requests.Response, deadline: Deadline) -> bytes:
    """The whole body of a streamed response, read as it arrives, and stopped at the
    deadline: requests' timeout bounds each read, so a server that sends a byte a second
    would otherwise hold the step for as long as it likes."""
    chunks: list[bytes] = []
    try:
        while chunk := response.raw.read1(_READ_CHUNK, decode_content=True):
            chunks.append(chunk)
            deadline.check()
    except urllib3.exceptions.ReadTimeoutError as e:
        raise deadline.error() from e
    except urllib3.exceptions.HTTPError as e:
        raise TransientStepError(f"the connection to the API dropped: {_reason(e)}") from e
    finally:
        response.close()
    return b"".join(chunks)


def _send(
    call: Callable[[], requests.Response], deadline: Deadline
) -> tuple[requests.Response, Any]:
    """One request, retried on 429 and 5xx by the connections' policy (honouring
    Retry-After); the response and its JSON body."""
    return call_with_retries(lambda attempt: _send_once(call, deadline, attempt), _POLICY, deadline)


def _send_once(
    call: Callable[[], requests.Response], deadline: Deadline, attempt: Attempt
) -> tuple[requests.Response, Any]:
    try:
        response = call()
    except requests.ConnectionError as e:
        raise SourceUnreachableError(redact(f"cannot reach the API: {_reason(e)}")) from e
    except requests.Timeout as e:
        raise deadline.error() from e
    body = _read_body(response, deadline)
    if response.status_code < 400:
        try:
            return response, json.loads(body)
        except ValueError as e:
            shown = redact(body[:_ERROR_TEXT_CHARS].decode("utf-8", "replace").strip())
            raise TerminalStepError(f"the API answered with something not JSON: {shown}") from e
    text = redact(body.decode(response.encoding or "utf-8", "replace"))
    text = text[:_ERROR_TEXT_CHARS].strip()
    if response.status_code in RETRY_STATUSES:
        attempt.retry_after = _retry_after(response)
        raise TransientStepError(f"the API answered {response.status_code}: {text}")
    hint = (
        "check the credential in the environment variable named by auth"
        if response.status_code in (401, 403)
        else None
    )
    raise TerminalStepError(f"the API answered {response.status_code}: {text}", hint=hint)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _reason(error: Exception) -> str:
    text = str(error)
    return text.split(": ", 1)[-1][:200]


def describe_graphql(config: GraphQLConfig, context: ResolutionContext) -> dict[str, Any]:
    """The GraphQL request as sent, without credentials."""
    return {
        "url": resolve_url(config.url, context),
        "query": config.query,
        "variables": resolve(config.variables, context),
        "records_path": config.records_path,
        "pagination": config.pagination.model_dump(exclude_defaults=True),
    }


def fetch_graphql(
    config: GraphQLConfig, context: ResolutionContext, *, timeout_seconds: float
) -> pa.Table:
    """Run a GraphQL query with ``gql``, following cursor pages, and return the records."""
    deadline = _deadline(timeout_seconds)
    transport = RequestsHTTPTransport(
        url=resolve_url(config.url, context),
        headers={**config.headers, **auth_headers(config.auth)},
        timeout=max(1, int(timeout_seconds)),
        retries=0,
    )
    try:
        document = gql(config.query)
    except GraphQLError as e:
        raise TerminalStepError(f"the GraphQL query does not parse: {e.message}") from e
    variables = dict(resolve(config.variables, context))
    paging = config.pagination
    records: list[Any] = []
    with Client(transport=transport, fetch_schema_from_transport=False) as client:
        for _page in range(paging.max_pages):
            deadline.check()
            data = call_with_retries(
                lambda _: _execute_graphql(client, document, variables, timeout_seconds),
                _POLICY,
                deadline,
            )
            page = dig(data, config.records_path)
            if page is None:
                raise TerminalStepError(
                    f"the response has no '{config.records_path}'",
                    hint="check records_path against the query",
                    field="config.records_path",
                )
            records.extend(page if isinstance(page, list) else [page])
            if paging.type != "cursor":
                break
            cursor = dig(data, paging.cursor_path)
            if not cursor:
                break
            variables[paging.cursor_param] = cursor
    return records_table(records)


def _execute_graphql(client: Any, document: Any, variables: dict[str, Any], limit: float) -> Any:
    try:
        return client.execute(document, variable_values=variables)
    except TransportQueryError as e:
        errors = redact(str(e.errors or e))
        raise TerminalStepError(f"the GraphQL API returned errors: {errors}") from e
    except TransportServerError as e:
        code = e.code or 0
        if code in RETRY_STATUSES:
            raise TransientStepError(f"the GraphQL API answered {code}") from e
        raise TerminalStepError(redact(f"the GraphQL API answered {code}: {e}")) from e
    except requests.ConnectionError as e:
        raise SourceUnreachableError(redact(f"cannot reach the GraphQL API: {_reason(e)}")) from e
    except requests.Timeout as e:
        raise StepTimeoutError(
            f"the GraphQL API did not answer within the step's time limit of {limit:g} s"
        ) from e
