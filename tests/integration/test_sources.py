"""Generic REST and GraphQL sources and file sources, against local HTTP servers."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar, cast
from urllib.parse import parse_qs, urlparse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    graphql_sync,
)

from playbook_assets.app.cli import EXIT_INVALID, EXIT_OK, EXIT_STEP_FAILED, main
from playbook_assets.connections.sources.api import fetch_rest, records_table
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.references import ResolutionContext
from playbook_assets.core.spec import RequestConfig
from standins.local_http import LocalHttpServer, QuietHandler
from tests.conftest import Project

ITEMS = [
    {"id": i, "name": f"item {i}", "owner": {"email": f"o{i % 3}@example.com"}, "score": i * 1.5}
    for i in range(1, 26)
]
TOKEN = "s3cret-token"


def _graphql_schema() -> GraphQLSchema:
    owner = GraphQLObjectType("Owner", {"email": GraphQLField(GraphQLString)})
    item = GraphQLObjectType(
        "Item",
        {
            "id": GraphQLField(GraphQLInt),
            "name": GraphQLField(GraphQLString),
            "owner": GraphQLField(owner),
        },
    )
    page_info = GraphQLObjectType(
        "PageInfo",
        {"hasNextPage": GraphQLField(GraphQLBoolean), "endCursor": GraphQLField(GraphQLString)},
    )
    connection = GraphQLObjectType(
        "ItemConnection",
        {"nodes": GraphQLField(GraphQLList(item)), "pageInfo": GraphQLField(page_info)},
    )

    def resolve_items(_root: Any, _info: Any, first: int, after: str | None = None) -> Any:
        start = int(after) if after else 0
        nodes = ITEMS[start : start + first]
        end = start + len(nodes)
        more = end < len(ITEMS)
        return {
            "nodes": nodes,
            "pageInfo": {"hasNextPage": more, "endCursor": str(end) if more else None},
        }

    query = GraphQLObjectType(
        "Query",
        {
            "items": GraphQLField(
                connection,
                args={
                    "first": GraphQLArgument(GraphQLNonNull(GraphQLInt)),
                    "after": GraphQLArgument(GraphQLString),
                },
                resolve=resolve_items,
            )
        },
    )
    return GraphQLSchema(query)


class Handler(QuietHandler):
    """REST endpoints with cursor, offset and Link paging, auth, and injected failures."""

    schema: ClassVar[GraphQLSchema] = _graphql_schema()
    failures: ClassVar[dict[str, int]] = {}
    requests: ClassVar[list[str]] = []

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        Handler.requests.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._json(401, {"error": "invalid token"})
            return
        remaining = Handler.failures.get(url.path, 0)
        if remaining:
            Handler.failures[url.path] = remaining - 1
            self._json(429, {"error": "slow down"}, {"Retry-After": "0"})
            return
        if url.path == "/cursor":
            start = int(query.get("cursor", "0"))
            page = ITEMS[start : start + 10]
            nxt = start + 10 if start + 10 < len(ITEMS) else None
            self._json(200, {"data": {"items": page}, "meta": {"next": nxt}})
        elif url.path == "/offset":
            offset, limit = int(query["offset"]), int(query["limit"])
            self._json(200, {"results": ITEMS[offset : offset + limit]})
        elif url.path == "/link":
            page = int(query.get("page", "1"))
            items = ITEMS[(page - 1) * 10 : page * 10]
            headers = {}
            if page * 10 < len(ITEMS):
                port = cast(ThreadingHTTPServer, self.server).server_port
                headers["Link"] = f'<http://127.0.0.1:{port}/link?page={page + 1}>; rel="next"'
            self._json(200, items, headers)
        elif url.path.startswith("/items/"):
            wanted = url.path.rsplit("/", 1)[1]
            self._json(200, {"item": [i for i in ITEMS if str(i["id"]) == wanted]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length) or b"{}")
        result = graphql_sync(
            Handler.schema, payload["query"], variable_values=payload.get("variables")
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [{"message": error.message} for error in result.errors]
        self._json(200, body)


@pytest.fixture
def api() -> Iterator[str]:
    Handler.failures = {}
    Handler.requests = []
    with LocalHttpServer(Handler) as server:
        yield server.base_url


def fetch(config: dict[str, Any], parameters: dict[str, Any] | None = None) -> pa.Table:
    context = ResolutionContext(parameters=parameters or {}, steps={})
    return fetch_rest(RequestConfig.model_validate(config), context, timeout_seconds=30)


AUTH = {"bearer_token_env": "ITEMS_TOKEN"}


@pytest.mark.parametrize(
    ("path", "records_path", "pagination"),
    [
        ("/cursor", "data.items", {"type": "cursor", "cursor_path": "meta.next"}),
        ("/offset", "results", {"type": "offset", "page_size": 7}),
        ("/link", None, {"type": "link_header"}),
    ],
)
def test_every_page_is_fetched(
    api: str,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    records_path: str | None,
    pagination: dict[str, Any],
) -> None:
    monkeypatch.setenv("ITEMS_TOKEN", TOKEN)
    config = {"url": api + path, "auth": AUTH, "records_path": records_path}
    table = fetch({**config, "pagination": pagination})
    assert table.column("id").to_pylist() == [item["id"] for item in ITEMS]
    assert table.column_names == ["id", "name", "owner_email", "score"]
    assert table.column("owner_email").to_pylist()[:3] == [
        "o1@example.com",
        "o2@example.com",
        "o0@example.com",
    ]


def test_rate_limited_requests_are_retried(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITEMS_TOKEN", TOKEN)
    Handler.failures["/cursor"] = 2
    table = fetch(
        {
            "url": api + "/cursor",
            "auth": AUTH,
            "records_path": "data.items",
            "pagination": {"type": "cursor", "cursor_path": "meta.next"},
        }
    )
    assert table.num_rows == len(ITEMS)
    assert len(Handler.requests) == 3 + 2


def test_bad_token_is_terminal(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITEMS_TOKEN", "wrong")
    with pytest.raises(TerminalStepError) as info:
        fetch({"url": api + "/cursor", "auth": AUTH, "records_path": "data.items"})
    assert "the API answered 401" in str(info.value)
    assert "wrong" not in str(info.value)


def test_url_references_are_encoded(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITEMS_TOKEN", TOKEN)
    table = fetch(
        {"url": api + "/items/${parameters.item}", "auth": AUTH, "records_path": "item"},
        {"item": "7"},
    )
    assert table.column("id").to_pylist() == [7]
    fetch(
        {"url": api + "/items/${parameters.item}", "auth": AUTH, "records_path": "item"},
        {"item": "../cursor?x=1"},
    )
    assert Handler.requests[-1] == "/items/..%2Fcursor%3Fx%3D1"


def test_records_with_mixed_types_become_text() -> None:
    table = records_table([{"a": 1}, {"a": "two"}, {"b": None}])
    assert table.to_pylist() == [
        {"a": "1", "b": None},
        {"a": "two", "b": None},
        {"a": None, "b": None},
    ]


PLAYBOOK = """
playbook:
  id: sources
  name: Sources
  steps:
    - id: rest_items
      type: request
      config:
        url: "{api}/cursor"
        auth: {{bearer_token_env: ITEMS_TOKEN}}
        records_path: data.items
        pagination: {{type: cursor, cursor_path: meta.next}}
    - id: graph_items
      type: graphql
      config:
        url: "{api}/graphql"
        query: |
          query Items($after: String) {{
            items(first: 10, after: $after) {{
              nodes {{ id name owner {{ email }} }}
              pageInfo {{ hasNextPage endCursor }}
            }}
          }}
        records_path: items.nodes
        pagination: {{type: cursor, cursor_param: after, cursor_path: items.pageInfo.endCursor}}
    - id: targets
      type: read
      config: {{path: "files/targets_*.csv", include_filename: true}}
    - id: weights
      type: read
      config: {{path: "files/weights.parquet"}}
    - id: joined
      type: join
      config:
        left: "${{steps.rest_items}}"
        right: "${{steps.targets}}"
        on: "id = item_id"
        type: inner
  outputs:
    - name: summary
      type: aggregate
      source: "${{steps.joined}}"
      metrics:
        - {{name: rows, expression: "COUNT(*)"}}
        - {{name: target_total, expression: "SUM(target)"}}
"""


def test_sources_in_a_playbook(
    project: Project,
    api: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ITEMS_TOKEN", TOKEN)
    files = project.playbooks_dir / "files"
    files.mkdir()
    (files / "targets_a.csv").write_text("item_id,target\n1,10\n2,20\n")
    (files / "targets_b.csv").write_text("item_id,target\n3,30\n99,990\n")
    pq.write_table(pa.table({"item_id": [1, 2], "weight": [0.5, 0.25]}), files / "weights.parquet")
    project.add_playbook("sources.yaml", PLAYBOOK.format(api=api))
    code = main(["run", "sources", "--config", str(project.config_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK, report
    rows = {step["step_id"]: (step["source"], step["row_count"]) for step in report["steps"]}
    assert rows == {
        "rest_items": ("api", 25),
        "graph_items": ("api", 25),
        "targets": ("file", 4),
        "weights": ("file", 2),
        "joined": ("transform", 3),
    }
    assert report["outputs"]["summary"]["values"] == {"rows": 3, "target_total": 60}
    assert TOKEN not in json.dumps(report)


def test_unreachable_api_without_a_stored_result_fails_clearly(
    project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ITEMS_TOKEN", TOKEN)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    project.add_playbook(
        "down.yaml",
        f"""
        playbook:
          id: down
          name: Down
          steps:
            - id: items
              type: request
              config:
                url: "http://127.0.0.1:{closed}/cursor"
                auth: {{bearer_token_env: ITEMS_TOKEN}}
        """,
    )
    code = main(["run", "down", "--config", str(project.config_path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_STEP_FAILED
    error = report["steps"][0]["error"]
    assert "cannot reach the API" in error
    assert "no stored result of this step for the same request to fall back on" in error


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            '{path: "${parameters.where}.csv"}',
            "field 'config.path': a file path cannot contain ${...} references",
        ),
        ("{path: data.json}", "cannot tell the format of 'data.json' from its extension"),
    ],
)
def test_file_paths_are_checked(
    project: Project, capsys: pytest.CaptureFixture[str], config: str, message: str
) -> None:
    path = project.add_playbook(
        "files.yaml",
        f"""
        playbook:
          id: files
          name: Files
          parameters:
            - {{name: where, type: string, default: x}}
          steps:
            - id: read_it
              type: read
              config: {config}
        """,
    )
    assert main(["validate", str(path), "--config", str(project.config_path)]) == EXIT_INVALID
    assert message in capsys.readouterr().err


def test_non_http_url_is_rejected(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    path = project.add_playbook(
        "ftp.yaml",
        """
        playbook:
          id: ftp
          name: Ftp
          steps:
            - id: get
              type: request
              config: {url: "file:///etc/passwd"}
        """,
    )
    assert main(["validate", str(path), "--config", str(project.config_path)]) == EXIT_INVALID
    assert "'file:///etc/passwd' is not an http(s) URL" in capsys.readouterr().err
