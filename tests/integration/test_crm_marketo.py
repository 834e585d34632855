"""Marketo: MarketoCrm against the local REST stand-in (standins/marketo_standin.py) serving the
demo CRM's contacts as leads; every answer is compared with the demo CRM's answer to the same
search."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from playbook_assets.connections.crm.marketo import MarketoCrm
from playbook_assets.core.errors import (
    SourceUnreachableError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.spec import SearchConfig
from standins.marketo_standin import MarketoStandIn
from tests.conftest import (
    DemoFiles,
    Project,
    check_mql_contacts_playbook,
    connection_config_text,
    demo_contacts_in_whole_seconds,
)

STAGES = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity"]


@pytest.fixture(scope="module")
def standin(demo_files: DemoFiles) -> Iterator[MarketoStandIn]:
    """One stand-in per module (and xdist worker)."""
    with MarketoStandIn(demo_files.crm) as server:
        yield server


@pytest.fixture
def server(standin: MarketoStandIn) -> MarketoStandIn:
    """The stand-in with no recorded calls or pending failures."""
    standin.reset()
    return standin


def _crm(server: MarketoStandIn, **overrides: Any) -> MarketoCrm:
    settings: dict[str, Any] = {
        "base_url": server.base_url,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "backoff_seconds": 0.01,
    }
    return MarketoCrm(**{**settings, **overrides})


def _demo(demo_files: DemoFiles, request: dict[str, Any]) -> pa.Table:
    """The demo CRM's answer, date-times cut to whole seconds as Marketo sends them."""
    return demo_contacts_in_whole_seconds(demo_files, request)


def _search(crm: MarketoCrm, request: dict[str, Any], retry_attempts: int = 2) -> pa.Table:
    config = SearchConfig.model_validate({"object": "leads", **request})
    return crm.search(config, retry_attempts=retry_attempts)


def _stages(demo_files: DemoFiles) -> list[str]:
    with duckdb.connect(str(demo_files.crm), read_only=True) as con:
        rows = con.sql("SELECT DISTINCT lifecyclestage FROM contacts ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def test_token_fetch_and_typed_rows(server: MarketoStandIn, demo_files: DemoFiles) -> None:
    request = {
        "filters": [{"property": "lifecyclestage", "operator": "EQ", "value": "Customer"}],
        "properties": ["email", "firstname", "createdate", "hs_lead_status"],
        "associations": ["companies"],
    }
    actual = _search(_crm(server), request)
    expected = _demo(demo_files, request)
    assert server.token_requests == 1
    assert actual.num_rows == expected.num_rows > 100
    assert actual.column_names == [
        "hs_object_id",
        "email",
        "firstname",
        "createdate",
        "hs_lead_status",
        "company_id",
    ]
    assert actual.schema.field("hs_object_id").type == pa.int64()
    assert actual.schema.field("company_id").type == pa.int64()
    assert actual.schema.field("createdate").type == pa.timestamp("us")
    assert actual.to_pylist() == expected.to_pylist()
    # the filter was pushed down: one describe call, then leads calls with filterType
    leads_calls = [p for _, path, p in server.calls if path == "/rest/v1/leads.json"]
    assert {p["filterType"] for p in leads_calls} == {"lifecycleStage"}
    assert all(server.tokens)  # every call carried a token the server issued


def test_expired_token_is_refreshed_once(server: MarketoStandIn, demo_files: DemoFiles) -> None:
    request = {"filters": [{"property": "lifecyclestage", "operator": "EQ", "value": "lead"}]}
    server.fail_next("602")  # the describe call meets an expired token
    actual = _search(_crm(server), request)
    assert server.errors_sent == ["602"]
    assert server.token_requests == 2
    assert actual.to_pylist() == _demo(demo_files, request).to_pylist()


def test_token_expiring_on_the_server_is_renewed(
    server: MarketoStandIn, demo_files: DemoFiles
) -> None:
    crm = _crm(server, batch_size=100)
    request = {"filters": [{"property": "lifecyclestage", "operator": "EQ", "value": "lead"}]}
    _search(crm, request)
    server.expire_tokens()  # tokens of the finished search are dead; a new search gets its own
    before = server.token_requests
    actual = _search(crm, request)
    assert server.token_requests == before + 1
    assert "602" not in server.errors_sent
    assert actual.num_rows == _demo(demo_files, request).num_rows


def test_rejected_fresh_token_is_terminal(server: MarketoStandIn) -> None:
    server.fail_next("601", times=2)
    with pytest.raises(TerminalStepError, match="fresh access token"):
        _search(_crm(server), {"filters": [{"property": "email", "operator": "EQ", "value": "x"}]})
    assert server.token_requests == 2


def test_paging_is_complete_without_duplicates(
    server: MarketoStandIn, demo_files: DemoFiles
) -> None:
    request = {
        "filters": [{"property": "lifecyclestage", "operator": "IN", "values": _stages(demo_files)}]
    }
    actual = _search(_crm(server, batch_size=200), request)
    expected = _demo(demo_files, request)
    pages = [p for _, path, p in server.calls if path == "/rest/v1/leads.json"]
    ids = actual.column("hs_object_id").to_pylist()
    assert actual.num_rows == expected.num_rows == 6000
    assert len(ids) == len(set(ids))
    assert len(pages) == 6000 // 200
    assert {p["batchSize"] for p in pages} == {"200"}
    assert sum("nextPageToken" in p for p in pages) == len(pages) - 1
    assert actual.to_pylist() == expected.to_pylist()


def test_in_lists_over_300_values_are_batched(
    server: MarketoStandIn, demo_files: DemoFiles
) -> None:
    with duckdb.connect(str(demo_files.crm), read_only=True) as con:
        rows = con.sql("SELECT email FROM contacts ORDER BY hs_object_id LIMIT 700").fetchall()
    emails = [row[0] for row in rows]
    # upper case on some: Marketo (like HubSpot) matches email without regard to case
    emails = [e.upper() if i % 7 == 0 else e for i, e in enumerate(emails)]
    request = {
        "filters": [{"property": "email", "operator": "IN", "values": [*emails, "nobody@x.io"]}],
        "properties": ["email", "lastname"],
    }
    actual = _search(_crm(server), request)
    expected = _demo(demo_files, request)
    calls = [(m, p) for m, path, p in server.calls if path == "/rest/v1/leads.json"]
    assert [len(p["filterValues"].split(",")) for _, p in calls] == [300, 300, 101]
    # over 8 KB of URL: POST with _method=GET
    assert [m for m, _ in calls] == ["POST", "POST", "GET"]
    assert actual.num_rows == expected.num_rows == 700
    assert actual.to_pylist() == expected.to_pylist()


# (filters on top of a pushed-down lifecycle stage filter, or filter groups)
OPERATOR_CASES: list[tuple[str, list[dict[str, Any]]]] = [
    ("EQ server", [{"property": "lifecyclestage", "operator": "EQ", "value": "LEAD"}]),
    (
        "IN server",
        [{"property": "lifecyclestage", "operator": "IN", "values": ["lead", "customer"]}],
    ),
    ("EQ id server", [{"property": "hs_object_id", "operator": "EQ", "value": "5000000007"}]),
    ("EQ client", [{"property": "hs_lead_status", "operator": "EQ", "value": "Open"}]),
    ("IN client", [{"property": "jobtitle", "operator": "IN", "values": ["CEO", "cto"]}]),
    ("NEQ", [{"property": "hs_lead_status", "operator": "NEQ", "value": "new"}]),
    ("NOT_IN", [{"property": "jobtitle", "operator": "NOT_IN", "values": ["CEO", "CTO"]}]),
    ("LT", [{"property": "createdate", "operator": "LT", "value": "2024-06-01"}]),
    ("LTE", [{"property": "lastname", "operator": "LTE", "value": "johnson"}]),
    ("GT", [{"property": "createdate", "operator": "GT", "value": "2025-01-01T12:00:00Z"}]),
    ("GTE", [{"property": "hs_object_id", "operator": "GTE", "value": 5000003000}]),
    (
        "BETWEEN",
        [
            {
                "property": "lastmodifieddate",
                "operator": "BETWEEN",
                "value": "2025-01-01",
                "high_value": 1767225600000,
            }
        ],
    ),
    ("HAS_PROPERTY", [{"property": "jobtitle", "operator": "HAS_PROPERTY"}]),
    ("NOT_HAS_PROPERTY", [{"property": "hs_lead_status", "operator": "NOT_HAS_PROPERTY"}]),
    (
        "CONTAINS_TOKEN",
        [{"property": "email", "operator": "CONTAINS_TOKEN", "value": "*@gmail.com"}],
    ),
]


@pytest.mark.parametrize(("name", "filters"), OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_operator_matches_demo_crm(
    name: str, filters: list[dict[str, Any]], server: MarketoStandIn, demo_files: DemoFiles
) -> None:
    pushed = {"property": "lifecyclestage", "operator": "IN", "values": STAGES}
    request = {
        "filters": filters if "server" in name else [pushed, *filters],
        "properties": ["email", "jobtitle", "hs_lead_status", "createdate", "lastname"],
        "sorts": [{"property": "createdate", "direction": "DESCENDING"}],
    }
    actual = _search(_crm(server), request)
    expected = _demo(demo_files, request)
    assert expected.num_rows > 0, name
    assert actual.to_pylist() == expected.to_pylist(), name


def test_filter_groups_push_the_union(server: MarketoStandIn, demo_files: DemoFiles) -> None:
    request = {
        "filter_groups": [
            [
                {"property": "lifecyclestage", "operator": "EQ", "value": "lead"},
                {"property": "jobtitle", "operator": "EQ", "value": "CEO"},
            ],
            [{"property": "lifecyclestage", "operator": "IN", "values": ["customer", "lead"]}],
        ],
        "limit": 250,
    }
    actual = _search(_crm(server), request)
    calls = [p for _, path, p in server.calls if path == "/rest/v1/leads.json"]
    assert {p["filterValues"] for p in calls} == {"lead,customer"}
    assert actual.to_pylist() == _demo(demo_files, request).to_pylist()
    assert actual.num_rows == 250


def test_search_without_a_pushable_filter_says_how_to_fix(server: MarketoStandIn) -> None:
    request = {"filters": [{"property": "jobtitle", "operator": "EQ", "value": "CEO"}]}
    with pytest.raises(TerminalStepError, match="EQ or IN filter on a searchable field") as e:
        _search(_crm(server), request)
    assert "email" in str(e.value) and "lifecycleStage" in str(e.value)


def test_rate_limit_then_success(server: MarketoStandIn, demo_files: DemoFiles) -> None:
    request = {"filters": [{"property": "lifecyclestage", "operator": "EQ", "value": "lead"}]}
    server.fail_next("606")
    server.fail_next("615")
    actual = _search(_crm(server, batch_size=100), request)
    assert server.errors_sent == ["606", "615"]
    assert actual.to_pylist() == _demo(demo_files, request).to_pylist()


def test_retries_stay_within_the_budget(server: MarketoStandIn) -> None:
    server.fail_next("606", times=10)
    with pytest.raises(TransientStepError, match="after 3 retries"):
        _search(
            _crm(server),
            {"filters": [{"property": "email", "operator": "EQ", "value": "x"}]},
            retry_attempts=3,
        )
    assert server.errors_sent == ["606"] * 4  # the first call and 3 retries, no more


def test_daily_quota_fails_at_once_naming_it(server: MarketoStandIn) -> None:
    server.fail_next("607")
    with pytest.raises(TerminalStepError, match="daily API quota is used up") as caught:
        _search(_crm(server), {"filters": [{"property": "email", "operator": "EQ", "value": "x"}]})
    assert "607 Daily quota reached" in str(caught.value)
    assert not isinstance(caught.value, TransientStepError)
    assert server.errors_sent == ["607"]


def test_bad_credentials(server: MarketoStandIn) -> None:
    crm = _crm(server, client_secret="not-the-secret")
    with pytest.raises(TerminalStepError, match="refused the client credentials") as e:
        _search(crm, {"filters": [{"property": "email", "operator": "EQ", "value": "x"}]})
    assert "not-the-secret" not in str(e.value)
    assert "client_secret" in str(e.value)


def test_unknown_property_suggests_the_closest(server: MarketoStandIn) -> None:
    request = {
        "filters": [{"property": "email", "operator": "EQ", "value": "x"}],
        "properties": ["firstnme"],
    }
    with pytest.raises(TerminalStepError, match="did you mean 'firstname'"):
        _search(_crm(server), request)


def test_bad_field_from_marketo_suggests_the_closest(server: MarketoStandIn) -> None:
    # Marketo's own 1006 (a field the describe call still listed, since deleted)
    server.fail_next("1006", message="Field 'emial' not found", path="/rest/v1/leads.json")
    with pytest.raises(TerminalStepError, match="did you mean 'email'"):
        _search(_crm(server), {"filters": [{"property": "email", "operator": "EQ", "value": "x"}]})


def test_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    crm = MarketoCrm(base_url=f"http://127.0.0.1:{port}", client_id="a", client_secret="s3cret")
    with pytest.raises(SourceUnreachableError) as e:
        _search(crm, {"filters": [{"property": "email", "operator": "EQ", "value": "x"}]})
    assert "s3cret" not in str(e.value)


def test_playbook_searches_contacts(
    project: Project,
    server: MarketoStandIn,
    demo_files: DemoFiles,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARKETO_SECRET", server.client_secret)
    config = project.config_path.parent / "marketo.yaml"
    settings = {
        "type": "marketo",
        "base_url": server.base_url,
        "client_id": server.client_id,
        "client_secret": "${MARKETO_SECRET}",
    }
    config.write_text(
        connection_config_text(demo_files, "mkto", settings, role="crm"), encoding="utf-8"
    )
    check_mql_contacts_playbook(
        project,
        config,
        capsys,
        datetime(2024, 1, 1),
        lambda request: _demo(demo_files, request).num_rows,
    )
