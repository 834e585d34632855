"""Salesforce: the real simple-salesforce client against the local TLS stand-in
(tests/salesforce_standin.py), which parses the SOQL and answers from the demo CRM."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from playbook_assets.crm.demo import DemoCrm
from playbook_assets.crm.salesforce import SalesforceCrm, soql_string
from playbook_assets.errors import (
    SourceUnreachableError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.spec import SearchConfig
from tests.conftest import DemoFiles, Project, connection_config_text
from tests.salesforce_standin import SalesforceStandIn, parse_soql
from tests.template_results import DuckDBReports, assert_same_results, run_template

BATCH = 700
USER, PASSWORD, TOKEN = "ops@example.com", "s3cret-pass", "TOKEN42"
TEMPLATES = ["presales_analysis", "at_risk_renewals", "churn_risk", "segment_analysis"]


@pytest.fixture(scope="module")
def standin(
    demo_files: DemoFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SalesforceStandIn]:
    folder = tmp_path_factory.mktemp("salesforce")
    with SalesforceStandIn(
        demo_files.crm, folder, batch_size=BATCH, users={USER: PASSWORD + TOKEN}
    ) as server:
        yield server


def _crm(server: SalesforceStandIn, **overrides: Any) -> SalesforceCrm:
    settings: dict[str, Any] = {
        "instance_url": server.instance_url,
        "session_id": server.new_session(),
        "verify": str(server.ca_path),
        "backoff_seconds": 0.01,
    }
    return SalesforceCrm(**{**settings, **overrides})


def _login_crm(server: SalesforceStandIn, **overrides: Any) -> SalesforceCrm:
    settings: dict[str, Any] = {
        "username": USER,
        "password": PASSWORD,
        "security_token": TOKEN,
        "login_url": server.instance_url,
        "verify": str(server.ca_path),
        "backoff_seconds": 0.01,
    }
    return SalesforceCrm(**{**settings, **overrides})


def _request(**fields: Any) -> SearchConfig:
    return SearchConfig.model_validate({"object": "deals", **fields})


def _ids(table: pa.Table) -> list[int]:
    return table.column("hs_object_id").to_pylist()


# Each operator: the filter, the exact SOQL WHERE clause.
OPERATOR_CASES: list[tuple[dict[str, Any], str]] = [
    ({"property": "dealstage", "operator": "EQ", "value": "ClosedWon"}, "StageName = 'ClosedWon'"),
    (
        {"property": "dealtype", "operator": "NEQ", "value": "newbusiness"},
        "Type != 'newbusiness'",
    ),
    ({"property": "amount", "operator": "LT", "value": 5000}, "Amount < 5000"),
    ({"property": "amount", "operator": "LTE", "value": "5000.50"}, "Amount <= 5000.5"),
    ({"property": "amount", "operator": "GT", "value": 900000.25}, "Amount > 900000.25"),
    ({"property": "amount", "operator": "GTE", "value": 900000}, "Amount >= 900000"),
    (
        {
            "property": "closedate",
            "operator": "BETWEEN",
            "value": date(2026, 11, 1),
            "high_value": "2027-04-30",
        },
        "CloseDate >= 2026-11-01 AND CloseDate <= 2027-04-30",
    ),
    (
        {"property": "dealstage", "operator": "IN", "values": ["contractsent", "qualifiedtobuy"]},
        "StageName IN ('contractsent', 'qualifiedtobuy')",
    ),
    (
        {"property": "dealstage", "operator": "NOT_IN", "values": ["closedwon", "closedlost"]},
        "StageName NOT IN ('closedwon', 'closedlost')",
    ),
    ({"property": "amount", "operator": "HAS_PROPERTY"}, "Amount != null"),
    ({"property": "amount", "operator": "NOT_HAS_PROPERTY"}, "Amount = null"),
    ({"property": "hs_is_closed", "operator": "EQ", "value": False}, "IsClosed = false"),
    (
        {"property": "createdate", "operator": "GT", "value": datetime(2026, 6, 1, 12, 30)},
        "CreatedDate > 2026-06-01T12:30:00Z",
    ),
    (
        {"property": "createdate", "operator": "LT", "value": date(2024, 1, 1)},
        "CreatedDate < 2024-01-01T00:00:00Z",
    ),
]


@pytest.mark.parametrize(("spec", "where"), OPERATOR_CASES)
def test_operator_soql_and_results_match_demo_crm(
    spec: dict[str, Any], where: str, standin: SalesforceStandIn, demo_files: DemoFiles
) -> None:
    request = _request(filters=[spec], properties=["dealname", "amount"])
    crm = _crm(standin)
    assert crm.compile(request).soql == (
        f"SELECT Id, Name, Amount FROM Opportunity WHERE {where} ORDER BY Id ASC"
    )
    expected = DemoCrm(database=str(demo_files.crm)).search(request)
    actual = crm.search(request)
    assert sorted(_ids(actual)) == sorted(_ids(expected))
    assert actual.num_rows == expected.num_rows
    assert actual.column_names == ["hs_object_id", "dealname", "amount"]


def test_contains_token_is_an_escaped_like(
    standin: SalesforceStandIn, demo_files: DemoFiles
) -> None:
    request = SearchConfig.model_validate(
        {
            "object": "companies",
            "filters": [{"property": "name", "operator": "CONTAINS_TOKEN", "value": "Tech 5%_x"}],
            "properties": ["name"],
        }
    )
    assert _crm(standin).compile(request).soql == (
        "SELECT Id, Name FROM Account WHERE Name LIKE '%Tech%' AND Name LIKE '%5\\%\\_x%' "
        "ORDER BY Id ASC"
    )
    single = request.model_copy(
        update={
            "filters": [
                request.filters[0].model_copy(update={"value": "Tech"}),
            ]
        }
    )
    with duckdb.connect(str(demo_files.crm), read_only=True) as con:
        rows = con.sql("SELECT hs_object_id FROM companies WHERE name ILIKE '%tech%'").fetchall()
    assert sorted(_ids(_crm(standin).search(single))) == sorted(r[0] for r in rows)
    assert len(rows) > 0
    assert _crm(standin).search(request).num_rows == 0


def test_filter_groups_sorts_and_limit(standin: SalesforceStandIn, demo_files: DemoFiles) -> None:
    request = _request(
        filter_groups=[
            [
                {"property": "dealstage", "operator": "EQ", "value": "closedwon"},
                {"property": "amount", "operator": "GT", "value": 500000},
            ],
            [{"property": "dealtype", "operator": "EQ", "value": "newbusiness"}],
        ],
        properties=["dealname", "amount", "closedate"],
        sorts=[{"property": "amount", "direction": "DESCENDING"}],
        limit=25,
        associations=["companies"],
    )
    crm = _crm(standin)
    assert crm.compile(request).soql == (
        "SELECT Id, Name, Amount, CloseDate, AccountId FROM Opportunity "
        "WHERE (StageName = 'closedwon' AND Amount > 500000) OR (Type = 'newbusiness') "
        "ORDER BY Amount DESC NULLS LAST, Id ASC LIMIT 25"
    )
    actual = crm.search(request)
    expected = DemoCrm(database=str(demo_files.crm)).search(request)
    assert actual.to_pylist() == [
        {**row, "amount": float(row["amount"])} for row in expected.to_pylist()
    ]


def test_typed_output_matches_demo_types(standin: SalesforceStandIn, demo_files: DemoFiles) -> None:
    request = _request(
        filters=[{"property": "dealstage", "operator": "EQ", "value": "contractsent"}],
        properties=["dealname", "amount", "closedate", "hs_is_closed", "createdate"],
        associations=["companies"],
    )
    actual = _crm(standin).search(request)
    assert actual.schema == pa.schema(
        [
            ("hs_object_id", pa.int64()),
            ("dealname", pa.string()),
            ("amount", pa.float64()),
            ("closedate", pa.date32()),
            ("hs_is_closed", pa.bool_()),
            ("createdate", pa.timestamp("us")),
            ("company_id", pa.int64()),
        ]
    )
    expected = DemoCrm(database=str(demo_files.crm)).search(request)
    by_id = {row["hs_object_id"]: row for row in expected.to_pylist()}
    for row in actual.to_pylist():
        demo = by_id[row["hs_object_id"]]
        assert row == {**demo, "amount": float(demo["amount"])}


def test_empty_in_list_sends_nothing_and_returns_typed_empty(standin: SalesforceStandIn) -> None:
    request = _request(
        filters=[{"property": "dealstage", "operator": "IN", "values": []}],
        associations=["companies"],
    )
    before = len(standin.requests)
    table = _crm(standin).search(request)
    assert len(standin.requests) == before
    assert table.num_rows == 0
    assert table.schema.field("hs_object_id").type == pa.int64()
    assert table.schema.field("company_id").type == pa.int64()


INJECTION_CORPUS = [
    "' OR Name != '",
    "x' OR Id != null OR Name = 'x",
    "\\' OR 1=1 --",
    "trailing backslash \\",
    "\\\\' OR Name LIKE '%",
    'double "quotes"',
    "new\nline\rand\ttab\b\f",
    "control \x00\x01\x1f\x7f",
    "unicode é ü 中文 😀",
    "\\u0027 OR Name != \\u0027",
    "%_wildcards_%",
    "') OR (Name != '",
    "'; DELETE FROM Opportunity --",
]


@pytest.mark.parametrize("payload", INJECTION_CORPUS)
def test_injection_payloads_stay_values(payload: str, standin: SalesforceStandIn) -> None:
    request = _request(
        filters=[
            {"property": "dealname", "operator": "EQ", "value": payload},
            {"property": "dealstage", "operator": "IN", "values": [payload, "closedwon"]},
        ],
        properties=["dealname"],
    )
    soql = _crm(standin).compile(request).soql
    assert soql is not None
    _, params, fields, sobject = parse_soql(soql)
    # The stand-in reads back exactly the values sent (lower-cased: SOQL ignores case).
    assert list(params.values()) == [payload.lower(), payload.lower(), "closedwon"]
    assert (fields, sobject) == (["Id", "Name"], "Opportunity")
    assert _crm(standin).search(request).num_rows == 0

    like = SearchConfig.model_validate(
        {
            "object": "companies",
            "filters": [{"property": "name", "operator": "CONTAINS_TOKEN", "value": payload}],
        }
    )
    like_soql = _crm(standin).compile(like).soql
    assert like_soql is not None
    _, like_params, _, _ = parse_soql(like_soql)
    words = payload.split()
    assert len(like_params) == len(words)
    assert _crm(standin).search(like).num_rows == 0


def test_soql_string_escapes() -> None:
    assert soql_string("O'Brien\\") == "'O\\'Brien\\\\'"
    assert soql_string('a"b\nc\x00') == "'a\\\"b\\nc\\u0000'"


def test_paging_through_several_batches(standin: SalesforceStandIn, demo_files: DemoFiles) -> None:
    with duckdb.connect(str(demo_files.crm), read_only=True) as con:
        expected = sorted(r[0] for r in con.sql("SELECT hs_object_id FROM deals").fetchall())
    before = len(standin.requests)
    table = _crm(standin).search(_request(properties=["dealname"]))
    pages = [path for _, path in standin.requests[before:] if "/query/01g" in path]
    assert sorted(_ids(table)) == expected
    assert len(set(_ids(table))) == len(expected) == 10000
    assert len(pages) == -(-len(expected) // BATCH) - 1


def test_request_limit_exceeded_is_retried_then_succeeds(standin: SalesforceStandIn) -> None:
    request = _request(filters=[{"property": "amount", "operator": "GT", "value": 900000}])
    expected = _crm(standin).search(request)
    standin.limit_exceeded(times=2)
    assert _ids(_crm(standin).search(request)) == _ids(expected)


def test_request_limit_exceeded_past_retries_is_transient(standin: SalesforceStandIn) -> None:
    standin.limit_exceeded(times=3)
    with pytest.raises(TransientStepError, match="REQUEST_LIMIT_EXCEEDED"):
        _crm(standin, max_retries=2).search(_request())


def test_login_and_session_expiry_mid_paging_logs_in_again(
    standin: SalesforceStandIn, demo_files: DemoFiles
) -> None:
    logins = standin.logins
    standin.expire_after(3)  # the session dies after the first pages
    table = _login_crm(standin).search(_request(properties=["dealname"]))
    assert standin.logins == logins + 2
    assert table.num_rows == len(set(_ids(table))) == 10000


def test_expired_session_without_credentials_is_terminal(standin: SalesforceStandIn) -> None:
    crm = _crm(standin)
    standin.expire_sessions()
    with pytest.raises(TerminalStepError, match="session is invalid or expired") as caught:
        crm.search(_request())
    assert crm.session_id is not None and crm.session_id not in str(caught.value)


def test_second_invalid_session_after_login_is_terminal(standin: SalesforceStandIn) -> None:
    logins = standin.logins
    standin.fail_next(401, "INVALID_SESSION_ID", "Session expired or invalid", times=2)
    with pytest.raises(TerminalStepError, match="INVALID_SESSION_ID"):
        _login_crm(standin).search(_request())
    assert standin.logins == logins + 2


def test_bad_password_is_terminal_without_the_secret(standin: SalesforceStandIn) -> None:
    with pytest.raises(TerminalStepError, match="INVALID_LOGIN") as caught:
        _login_crm(standin, password="wrong-secret").search(_request())
    assert "wrong-secret" not in str(caught.value) and TOKEN not in str(caught.value)


def test_bad_field_suggests_the_mapped_property(standin: SalesforceStandIn) -> None:
    with pytest.raises(TerminalStepError, match="did you mean 'dealname'") as caught:
        _crm(standin).search(_request(properties=["dealnme"]))
    assert "no field 'dealnme' on Opportunity" in str(caught.value)


def test_wrong_value_type_is_terminal(standin: SalesforceStandIn) -> None:
    request = _request(
        filters=[{"property": "closedate", "operator": "GT", "value": "soon"}],
    )
    with pytest.raises(TerminalStepError, match="closedate"):
        _crm(standin).search(request)


def test_unknown_object_and_mapping_overrides(standin: SalesforceStandIn) -> None:
    with pytest.raises(TerminalStepError, match="did you mean 'deals'"):
        _crm(standin).compile(SearchConfig(object="deal"))
    crm = _crm(
        standin,
        object_mapping={"renewals": "Opportunity"},
        field_mapping={"renewals": {"title": "Name", "value": "Amount"}},
    )
    request = SearchConfig.model_validate(
        {
            "object": "renewals",
            "filters": [{"property": "value", "operator": "GT", "value": 1000000}],
            "properties": ["title", "value"],
        }
    )
    assert crm.compile(request).soql == (
        "SELECT Id, Name, Amount FROM Opportunity WHERE Amount > 1000000 ORDER BY Id ASC"
    )
    assert crm.search(request).column_names == ["hs_object_id", "title", "value"]
    assert crm.describe_request(request)["sobject"] == "Opportunity"


def test_unreachable_instance_is_source_unreachable(standin: SalesforceStandIn) -> None:
    crm = _crm(standin, instance_url="https://127.0.0.1:9")
    with pytest.raises(SourceUnreachableError):
        crm.search(_request())


def _config_text(server: SalesforceStandIn, demo: DemoFiles) -> str:
    settings = {
        "type": "salesforce",
        "instance_url": server.instance_url,
        "session_id": "${SF_TEST_SESSION}",
        "verify": str(server.ca_path),
    }
    return connection_config_text(demo, "sf", settings, role="crm")


@pytest.mark.parametrize("playbook_id", TEMPLATES)
def test_template_matches_demo_crm(
    playbook_id: str,
    project: Project,
    demo_files: DemoFiles,
    standin: SalesforceStandIn,
    capsys: pytest.CaptureFixture[str],
    duckdb_reports: DuckDBReports,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SF_TEST_SESSION", standin.new_session())
    config: Path = project.config_path.parent / "salesforce.yaml"
    config.write_text(_config_text(standin, demo_files), encoding="utf-8")
    assert_same_results(run_template(config, playbook_id, capsys), duckdb_reports[playbook_id])
