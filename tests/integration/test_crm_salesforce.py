"""Salesforce: the real simple-salesforce client against the local TLS stand-in
(standins/salesforce_standin.py): an org with Salesforce's ids and standard picklist values that
parses the SOQL it is sent. Expected rows come from the org's own records, filtered here in
plain Python; template results from plain SQL over those records and the warehouse."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import yaml

from playbook_assets.app.cli import main
from playbook_assets.connections.crm.salesforce import SalesforceCrm, soql_string
from playbook_assets.core.errors import (
    SourceUnreachableError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.spec import SearchConfig
from standins.salesforce_standin import (
    MAX_REQUEST_BYTES,
    SalesforceStandIn,
    parse_soql,
    salesforce_id,
)
from tests.conftest import DemoFiles, Project

BATCH = 700
USER, PASSWORD, TOKEN = "ops@example.com", "s3cret-pass", "TOKEN42"
Record = dict[str, Any]
PRESALES = {
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
}
EXISTING_CUSTOMER = {
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
}


@pytest.fixture(scope="module")
def standin(
    demo_files: DemoFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SalesforceStandIn]:
    folder = tmp_path_factory.mktemp("salesforce")
    with SalesforceStandIn(
        demo_files.crm, folder, batch_size=BATCH, users={USER: PASSWORD + TOKEN}
    ) as server:
        yield server


@pytest.fixture
def org(standin: SalesforceStandIn) -> Iterator[SalesforceStandIn]:
    """The module's stand-in with its request log and pending failures cleared."""
    standin.reset()
    yield standin
    standin.reset()


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


def _ids(table: pa.Table) -> list[str]:
    return table.column("hs_object_id").to_pylist()


def _expected_ids(
    server: SalesforceStandIn, sobject: str, keep: Callable[[Record], bool]
) -> list[str]:
    return [r["Id"] for r in server.records(sobject) if keep(r)]


# Each operator: the filter, the exact SOQL WHERE clause, which records match.
OPERATOR_CASES: list[tuple[dict[str, Any], str, Callable[[Record], bool] | None]] = [
    (
        {"property": "dealstage", "operator": "EQ", "value": "closed won"},
        "StageName = 'closed won'",
        lambda r: r["StageName"] == "Closed Won",
    ),
    (
        {"property": "dealstage", "operator": "EQ", "value": "closedwon"},  # HubSpot's value
        "StageName = 'Closed Won'",
        lambda r: r["StageName"] == "Closed Won",
    ),
    (
        {"property": "dealtype", "operator": "NEQ", "value": "newbusiness"},
        "Type != 'New Customer'",
        lambda r: r["Type"] != "New Customer",
    ),
    (
        {"property": "dealtype", "operator": "EQ", "value": "existingbusiness"},
        "Type IN ('Existing Customer - Upgrade', 'Existing Customer - Replacement', "
        "'Existing Customer - Downgrade')",
        lambda r: r["Type"] in EXISTING_CUSTOMER,
    ),
    ({"property": "amount", "operator": "LT", "value": 5000}, "Amount < 5000", None),
    ({"property": "amount", "operator": "LTE", "value": "5000.50"}, "Amount <= 5000.5", None),
    ({"property": "amount", "operator": "GT", "value": 900000.25}, "Amount > 900000.25", None),
    (
        {
            "property": "closedate",
            "operator": "BETWEEN",
            "value": date(2026, 11, 1),
            "high_value": "2027-04-30",
        },
        "CloseDate >= 2026-11-01 AND CloseDate <= 2027-04-30",
        lambda r: date(2026, 11, 1) <= r["CloseDate"] <= date(2027, 4, 30),
    ),
    (
        {"property": "dealstage", "operator": "IN", "values": ["contractsent", "Prospecting"]},
        "StageName IN ('Proposal/Price Quote', 'Negotiation/Review', 'Prospecting')",
        lambda r: r["StageName"] in {"Proposal/Price Quote", "Negotiation/Review", "Prospecting"},
    ),
    (
        {"property": "dealstage", "operator": "NOT_IN", "values": ["closedwon", "closedlost"]},
        "StageName NOT IN ('Closed Won', 'Closed Lost')",
        lambda r: r["StageName"] not in {"Closed Won", "Closed Lost"},
    ),
    ({"property": "amount", "operator": "HAS_PROPERTY"}, "Amount != null", None),
    ({"property": "amount", "operator": "NOT_HAS_PROPERTY"}, "Amount = null", None),
    (
        {"property": "hs_is_closed", "operator": "EQ", "value": False},
        "IsClosed = false",
        lambda r: r["IsClosed"] is False,
    ),
    (
        {"property": "createdate", "operator": "GT", "value": datetime(2026, 6, 1, 12, 30)},
        "CreatedDate > 2026-06-01T12:30:00Z",
        lambda r: r["CreatedDate"] > datetime(2026, 6, 1, 12, 30),
    ),
    (
        {"property": "createdate", "operator": "LT", "value": date(2026, 1, 1)},
        "CreatedDate < 2026-01-01T00:00:00Z",
        lambda r: r["CreatedDate"] < datetime(2026, 1, 1),
    ),
]
_AMOUNT = {
    "Amount < 5000": lambda r: r["Amount"] is not None and r["Amount"] < 5000,
    "Amount <= 5000.5": lambda r: r["Amount"] is not None and r["Amount"] <= 5000.5,
    "Amount > 900000.25": lambda r: r["Amount"] is not None and r["Amount"] > 900000.25,
    "Amount != null": lambda r: r["Amount"] is not None,
    "Amount = null": lambda r: r["Amount"] is None,
}


@pytest.mark.parametrize(("spec", "where", "keep"), OPERATOR_CASES)
def test_operator_soql_and_results(
    spec: dict[str, Any],
    where: str,
    keep: Callable[[Record], bool] | None,
    org: SalesforceStandIn,
) -> None:
    request = _request(filters=[spec], properties=["dealname", "amount"])
    crm = _crm(org)
    assert crm.compile(request).soql == (
        f"SELECT Id, Name, Amount FROM Opportunity WHERE {where} ORDER BY Id ASC"
    )
    actual = crm.search(request)
    expected = _expected_ids(org, "Opportunity", keep or _AMOUNT[where])
    assert _ids(actual) == expected and len(expected) > 0
    assert actual.column_names == ["hs_object_id", "dealname", "amount"]


def test_field_names_take_the_orgs_spelling(org: SalesforceStandIn) -> None:
    request = _request(
        properties=["dealname", "pipeline__c", "last_activity_at__C"],
        filters=[{"property": "PIPELINE__C", "operator": "EQ", "value": "default"}],
        limit=50,
    )
    actual = _crm(org).search(request)
    records = org.records("Opportunity")[:50]
    assert actual.column_names == ["hs_object_id", "dealname", "pipeline__c", "last_activity_at__C"]
    assert actual.column("pipeline__c").to_pylist() == [r["Pipeline__c"] for r in records]
    assert actual.column("last_activity_at__C").to_pylist() == [
        r["Last_Activity_At__c"] for r in records
    ]
    assert None not in actual.column("pipeline__c").to_pylist()
    (soql,) = org.queries
    assert soql.startswith("SELECT Id, Name, Pipeline__c, Last_Activity_At__c FROM Opportunity")


def test_bad_field_names_the_field(org: SalesforceStandIn) -> None:
    with pytest.raises(TerminalStepError) as caught:
        _crm(org).search(_request(properties=["Pipline__c"]))
    assert "the Salesforce org has no field 'Pipline__c' on Opportunity" in str(caught.value)
    assert "did you mean 'Pipeline__c'" in str(caught.value)
    with pytest.raises(TerminalStepError, match="did you mean 'dealname'"):
        _crm(org).search(_request(filters=[{"property": "dealnme", "operator": "HAS_PROPERTY"}]))
    assert org.queries == []  # found from the describe call, before any query


def test_filter_values_take_the_fields_type(org: SalesforceStandIn) -> None:
    since = date(2026, 6, 1)  # a date parameter against a custom date-time field
    request = _request(
        properties=["dealname", "Last_Activity_At__c"],
        filters=[
            {"property": "Last_Activity_At__c", "operator": "GTE", "value": since},
            {"property": "amount", "operator": "GT", "value": "5000"},
            {"property": "dealname", "operator": "NEQ", "value": 12345},
        ],
    )
    actual = _crm(org).search(request)
    expected = _expected_ids(
        org,
        "Opportunity",
        lambda r: (
            r["Last_Activity_At__c"] >= datetime(2026, 6, 1)
            and r["Amount"] is not None
            and r["Amount"] > 5000
        ),
    )
    assert _ids(actual) == expected and len(expected) > 0
    (soql,) = org.queries
    assert (
        "WHERE Last_Activity_At__c >= 2026-06-01T00:00:00Z AND Amount > 5000 "
        "AND Name != '12345'" in soql
    )


def test_a_value_outside_the_picklist_is_an_error(org: SalesforceStandIn) -> None:
    request = _request(filters=[{"property": "dealstage", "operator": "EQ", "value": "Closd Won"}])
    with pytest.raises(TerminalStepError) as caught:
        _crm(org).search(request)
    message = str(caught.value)
    assert "'Closd Won' is not a value of the picklist Opportunity.StageName" in message
    assert "did you mean 'Closed Won'" in message and "value_mapping" in message
    assert org.queries == []


def test_value_mapping_can_be_changed_per_connection(org: SalesforceStandIn) -> None:
    request = _request(
        filters=[{"property": "dealstage", "operator": "IN", "values": ["qualifiedtobuy"]}]
    )
    default = _crm(org).search(request)
    assert _ids(default) == _expected_ids(
        org, "Opportunity", lambda r: r["StageName"] in {"Qualification", "Needs Analysis"}
    )
    narrow = _crm(
        org, value_mapping={"deals": {"dealstage": {"qualifiedtobuy": ["Qualification"]}}}
    )
    assert _ids(narrow.search(request)) == _expected_ids(
        org, "Opportunity", lambda r: r["StageName"] == "Qualification"
    )


def test_typed_output_and_empty_results(org: SalesforceStandIn) -> None:
    properties = ["dealname", "amount", "closedate", "hs_is_closed", "createdate", "Pipeline__c"]
    request = _request(
        filters=[{"property": "dealstage", "operator": "EQ", "value": "Proposal/Price Quote"}],
        properties=properties,
        associations=["companies"],
    )
    actual = _crm(org).search(request)
    schema = pa.schema(
        [
            ("hs_object_id", pa.string()),
            ("dealname", pa.string()),
            ("amount", pa.float64()),
            ("closedate", pa.date32()),
            ("hs_is_closed", pa.bool_()),
            ("createdate", pa.timestamp("us")),
            ("Pipeline__c", pa.string()),
            ("company_id", pa.string()),
        ]
    )
    assert actual.schema == schema
    fields = ["Id", "Name", "Amount", "CloseDate", "IsClosed", "CreatedDate", "Pipeline__c"]
    assert actual.to_pylist() == [
        dict(zip(schema.names, [*(r[f] for f in fields), r["AccountId"]], strict=True))
        for r in org.records("Opportunity")
        if r["StageName"] == "Proposal/Price Quote"
    ]
    nothing = _request(
        filters=[{"property": "dealname", "operator": "EQ", "value": "no such deal"}],
        properties=properties,
        associations=["companies"],
    )
    assert (table := _crm(org).search(nothing)).num_rows == 0 and table.schema == schema
    empty_in = _request(
        filters=[{"property": "dealstage", "operator": "IN", "values": []}],
        properties=properties,
        associations=["companies"],
    )
    before = len(org.requests)
    assert (table := _crm(org).search(empty_in)).num_rows == 0 and table.schema == schema
    assert [path for _, path in org.requests[before:] if "/query" in path] == []


def test_long_in_lists_are_split_and_united(org: SalesforceStandIn) -> None:
    accounts = org.records("Account")
    wanted = [r["Id"] for r in accounts[::2]][:900]  # ~19 KB of ids: over the limit at once
    request = SearchConfig.model_validate(
        {
            "object": "companies",
            "filter_groups": [
                [{"property": "hs_object_id", "operator": "IN", "values": wanted}],
                [{"property": "annualrevenue", "operator": "GT", "value": 400_000_000}],
            ],
            "properties": ["name", "annualrevenue"],
            "sorts": [{"property": "annualrevenue", "direction": "DESCENDING"}],
            "limit": 700,
        }
    )
    actual = _crm(org).search(request)
    chosen = set(wanted)
    kept = [r for r in accounts if r["Id"] in chosen or (r["AnnualRevenue"] or 0) > 400_000_000]
    kept.sort(key=lambda r: r["Id"])
    kept.sort(key=lambda r: -(r["AnnualRevenue"] or 0))
    assert _ids(actual) == [r["Id"] for r in kept[:700]]
    queries = [path for _, path in org.requests if "/query" in path]
    assert len(queries) >= 2 and set(org.statuses) == {200}


@pytest.mark.parametrize("too_long_status", [414, 431])
def test_too_long_a_query_is_a_clear_error(
    demo_files: DemoFiles, tmp_path: Path, too_long_status: int
) -> None:
    with SalesforceStandIn(demo_files.crm, tmp_path, too_long_status=too_long_status) as server:
        ids = [r["Id"] for r in server.records("Account")[:900]]
        crm = _crm(server, max_request_bytes=60_000)  # a limit larger than the org's
        request = SearchConfig.model_validate(
            {
                "object": "companies",
                "filters": [{"property": "hs_object_id", "operator": "IN", "values": ids}],
            }
        )
        with pytest.raises(TerminalStepError) as caught:
            crm.search(request)
        assert f"refused the request as too long (HTTP {too_long_status})" in str(caught.value)
        assert server.statuses[-1] == too_long_status
        # a NOT_IN list cannot be split: the error comes before anything is sent
        exclude = request.model_copy(
            update={"filters": [request.filters[0].model_copy(update={"operator": "NOT_IN"})]}
        )
        server.reset()
        with pytest.raises(TerminalStepError, match="too long for one Salesforce request"):
            _crm(server).search(exclude)
        assert [path for _, path in server.requests if "/query" in path] == []
        assert MAX_REQUEST_BYTES == 16_384


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
def test_injection_payloads_stay_values(payload: str, org: SalesforceStandIn) -> None:
    request = _request(
        filters=[
            {"property": "dealname", "operator": "EQ", "value": payload},
            {"property": "Pipeline__c", "operator": "IN", "values": [payload, "default"]},
        ],
        properties=["dealname"],
    )
    soql = _crm(org).compile(request).soql
    assert soql is not None
    _, params, fields, sobject = parse_soql(soql)
    # The stand-in reads back exactly the values sent (lower-cased: SOQL ignores case).
    assert list(params.values()) == [payload.lower(), payload.lower(), "default"]
    assert (fields, sobject) == (["Id", "Name"], "Opportunity")
    assert _crm(org).search(request).num_rows == 0

    like = SearchConfig.model_validate(
        {
            "object": "companies",
            "filters": [{"property": "name", "operator": "CONTAINS_TOKEN", "value": payload}],
        }
    )
    like_soql = _crm(org).compile(like).soql
    assert like_soql is not None
    _, like_params, _, _ = parse_soql(like_soql)
    assert len(like_params) == len(payload.split())
    assert _crm(org).search(like).num_rows == 0


def test_soql_string_escapes() -> None:
    assert soql_string("O'Brien\\") == "'O\\'Brien\\\\'"
    assert soql_string('a"b\nc\x00') == "'a\\\"b\\nc\\u0000'"


def test_paging_through_several_batches(org: SalesforceStandIn) -> None:
    table = _crm(org).search(_request(properties=["dealname"]))
    pages = [path for _, path in org.requests if "/query/01g" in path]
    expected = [r["Id"] for r in org.records("Opportunity")]
    assert _ids(table) == expected and len(expected) == 10_000
    assert len(pages) == -(-len(expected) // BATCH) - 1


def test_daily_request_limit_fails_at_once(org: SalesforceStandIn) -> None:
    crm = _crm(org)
    crm.search(_request(limit=1))  # the describe call is made and kept
    org.reset()
    org.limit_exceeded(times=5)
    with pytest.raises(TerminalStepError) as caught:
        crm.search(_request(limit=1), retry_attempts=3)
    message = str(caught.value)
    assert "daily API request limit is used up" in message and "TotalRequests" in message
    assert not isinstance(caught.value, TransientStepError)
    assert org.statuses == [403]  # not retried


def test_concurrent_limit_is_retried_within_the_budget(org: SalesforceStandIn) -> None:
    crm = _crm(org)
    expected = crm.search(_request(limit=3))
    org.reset()
    org.concurrent_limit_exceeded(times=2)
    assert _ids(crm.search(_request(limit=3), retry_attempts=2)) == _ids(expected)
    assert org.statuses == [403, 403, 200]
    org.reset()
    org.concurrent_limit_exceeded(times=10)
    with pytest.raises(TransientStepError, match="ConcurrentPerOrgLongTxn"):
        crm.search(_request(limit=3), retry_attempts=2)
    assert org.statuses == [403, 403, 403]


def test_login_and_session_expiry_mid_paging_logs_in_again(org: SalesforceStandIn) -> None:
    logins = org.logins
    org.expire_after(3)  # the session dies after the first pages
    table = _login_crm(org).search(_request(properties=["dealname"]))
    assert org.logins == logins + 2
    assert table.num_rows == len(set(_ids(table))) == 10000


def test_expired_session_without_credentials_is_terminal(org: SalesforceStandIn) -> None:
    crm = _crm(org)
    org.expire_sessions()
    with pytest.raises(TerminalStepError, match="session is invalid or expired") as caught:
        crm.search(_request())
    assert crm.session_id is not None and crm.session_id not in str(caught.value)


def test_second_invalid_session_after_login_is_terminal(org: SalesforceStandIn) -> None:
    logins = org.logins
    org.fail_next(401, "INVALID_SESSION_ID", "Session expired or invalid", times=2)
    with pytest.raises(TerminalStepError, match="INVALID_SESSION_ID"):
        _login_crm(org).search(_request())
    assert org.logins == logins + 2


def test_bad_password_is_terminal_without_the_secret(org: SalesforceStandIn) -> None:
    with pytest.raises(TerminalStepError, match="INVALID_LOGIN") as caught:
        _login_crm(org, password="wrong-secret").search(_request())
    assert "wrong-secret" not in str(caught.value) and TOKEN not in str(caught.value)


def test_unknown_object_and_mapping_overrides(org: SalesforceStandIn) -> None:
    with pytest.raises(TerminalStepError, match="did you mean 'deals'"):
        _crm(org).search(SearchConfig(object="deal"))
    with pytest.raises(TerminalStepError, match="the Salesforce org has no object 'Renewal__c'"):
        _crm(org, object_mapping={"renewals": "Renewal__c"}).search(SearchConfig(object="renewals"))
    crm = _crm(
        org,
        object_mapping={"renewals": "Opportunity"},
        field_mapping={"renewals": {"title": "name", "value": "AMOUNT"}},
    )
    request = SearchConfig.model_validate(
        {
            "object": "renewals",
            "filters": [{"property": "value", "operator": "GT", "value": 1000000}],
            "properties": ["title", "value"],
        }
    )
    actual = crm.search(request)
    assert actual.column_names == ["hs_object_id", "title", "value"]
    assert actual.column("title").to_pylist() == [
        r["Name"] for r in org.records("Opportunity") if (r["Amount"] or 0) > 1000000
    ]
    assert crm.describe_request(request)["sobject"] == "Opportunity"


def test_unreachable_instance_is_source_unreachable(org: SalesforceStandIn) -> None:
    crm = _crm(org, instance_url="https://127.0.0.1:9")
    with pytest.raises(SourceUnreachableError):
        crm.search(_request())


# ---------------------------------------------------------------------------------------------
# The templates on an org with Salesforce's standard values
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def salesforce_warehouse(demo_files: DemoFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo warehouse keyed by the org's Account ids, as a warehouse fed from Salesforce
    is: account_id is the 18-character Account Id."""
    path = tmp_path_factory.mktemp("sf_warehouse") / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("ATTACH $p AS demo (READ_ONLY)", {"p": str(demo_files.warehouse)})
        con.execute("CREATE SCHEMA analytics")
        for table in ("accounts", "product_usage", "support_tickets"):
            con.execute(
                f"CREATE TABLE analytics.{table} AS SELECT * REPLACE "
                f"(printf('001%012dAAA', account_id) AS account_id) FROM demo.analytics.{table}"
            )
        sample = con.sql("SELECT min(account_id) FROM analytics.accounts").fetchall()
    assert sample == [(salesforce_id("Account", 1000001),)]
    return path


def _template_config(
    project: Project, standin: SalesforceStandIn, warehouse: Path, demo: DemoFiles
) -> Path:
    body = {
        "defaults": {"data_warehouse": "duckdb", "crm": "demo"},
        "connections": {
            "duckdb": {"type": "duckdb", "database": str(warehouse)},
            "demo": {"type": "demo", "database": str(demo.crm)},
            "sf": {
                "type": "salesforce",
                "instance_url": standin.instance_url,
                "session_id": "${SF_TEST_SESSION}",
                "verify": str(standin.ca_path),
            },
        },
        "artifacts": {"directory": "../artifacts"},
        "execution": {"retry_attempts": 1},
    }
    path = project.config_path.parent / "salesforce.yaml"
    path.write_text(yaml.safe_dump({"playbook_executor": body}), encoding="utf-8")
    return path


def _run(config: Path, playbook_id: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(["run", playbook_id, "--config", str(config), "--crm", "sf", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["status"] == "success", report
    return report


def _sql(warehouse: Path, standin: SalesforceStandIn, query: str) -> tuple[Any, ...]:
    """One row of plain SQL over the warehouse and the org's records (tables opportunity and
    account)."""
    with duckdb.connect() as con:
        con.execute("ATTACH $p AS wh (READ_ONLY)", {"p": str(warehouse)})
        for name in ("Opportunity", "Account"):
            records = pa.Table.from_pylist(standin.records(name))  # noqa: F841
            con.execute(f"CREATE TABLE {name.lower()} AS SELECT * FROM records")
        (row,) = con.sql(query).fetchall()
    return row


def _steps(report: dict[str, Any]) -> dict[str, int]:
    return {step["step_id"]: step["row_count"] for step in report["steps"]}


def test_presales_analysis_on_salesforce(
    project: Project,
    standin: SalesforceStandIn,
    salesforce_warehouse: Path,
    demo_files: DemoFiles,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SF_TEST_SESSION", standin.new_session())
    config = _template_config(project, standin, salesforce_warehouse, demo_files)
    report = _run(config, "presales_analysis", capsys)
    stages = ", ".join(f"'{s}'" for s in sorted(PRESALES))
    deals, pipeline, health, at_risk = _sql(
        salesforce_warehouse,
        standin,
        f"""SELECT count(*), sum(o."Amount"), avg(a.health_score),
                   count(*) FILTER (WHERE a.health_status = 'At-Risk')
            FROM opportunity o LEFT JOIN wh.analytics.accounts a ON a.account_id = o."AccountId"
            WHERE o."StageName" IN ({stages})""",
    )
    assert deals > 1000
    summary = report["outputs"]["summary"]["values"]
    assert summary["open_deals"] == deals
    assert summary["total_pipeline"] == pytest.approx(pipeline)
    assert summary["avg_health_score"] == pytest.approx(health)
    assert summary["at_risk_deals"] == at_risk > 0
    assert _steps(report)["open_deals"] == deals


def test_at_risk_renewals_on_salesforce(
    project: Project,
    standin: SalesforceStandIn,
    salesforce_warehouse: Path,
    demo_files: DemoFiles,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SF_TEST_SESSION", standin.new_session())
    config = _template_config(project, standin, salesforce_warehouse, demo_files)
    report = _run(config, "at_risk_renewals", capsys)
    types = ", ".join(f"'{t}'" for t in sorted(EXISTING_CUSTOMER))
    deals, amount = _sql(
        salesforce_warehouse,
        standin,
        f"""SELECT count(*), sum("Amount") FROM opportunity
            WHERE "Type" IN ({types}) AND NOT "IsClosed"
              AND "CloseDate" BETWEEN DATE '2026-11-01' AND DATE '2027-04-30'""",
    )
    assert deals > 100
    values = report["outputs"]["pipeline"]["values"]
    assert values["renewal_deals"] == deals
    assert values["renewal_amount"] == pytest.approx(amount)


def test_churn_risk_on_salesforce(
    project: Project,
    standin: SalesforceStandIn,
    salesforce_warehouse: Path,
    demo_files: DemoFiles,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SF_TEST_SESSION", standin.new_session())
    config = _template_config(project, standin, salesforce_warehouse, demo_files)
    standin.reset()
    report = _run(config, "churn_risk", capsys)
    (declining,) = _sql(
        salesforce_warehouse,
        standin,
        """SELECT count(*) FROM wh.analytics.accounts a
           JOIN wh.analytics.product_usage r ON r.account_id = a.account_id
                AND r.month = DATE '2026-10-01'
           JOIN wh.analytics.product_usage e ON e.account_id = a.account_id
                AND e.month = DATE '2026-07-01'
           JOIN account c ON c."Id" = a.account_id
           WHERE a.health_status <> 'Churned' AND e.active_users > 0
             AND (r.active_users - e.active_users) * 1.0 / e.active_users <= -0.2""",
    )
    assert declining > 0
    assert _steps(report)["crm_companies"] == declining == _steps(report)["usage_decline"]
    assert all(status == 200 for status in standin.statuses)


def test_segment_analysis_on_salesforce(
    project: Project,
    standin: SalesforceStandIn,
    salesforce_warehouse: Path,
    demo_files: DemoFiles,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SF_TEST_SESSION", standin.new_session())
    config = _template_config(project, standin, salesforce_warehouse, demo_files)
    report = _run(config, "segment_analysis", capsys)
    open_deals, deals, pipeline = _sql(
        salesforce_warehouse,
        standin,
        """SELECT (SELECT count(*) FROM opportunity WHERE NOT "IsClosed"),
                  count(o."Id"), sum(o."Amount")
           FROM wh.analytics.accounts a
           LEFT JOIN opportunity o ON o."AccountId" = a.account_id AND NOT o."IsClosed"
           WHERE a.segment = 'enterprise' AND a.arr >= 100000""",
    )
    assert deals > 0
    assert _steps(report)["open_deals"] == open_deals
    values = report["outputs"]["pipeline_summary"]["values"]
    assert values["open_deals"] == deals
    assert values["open_pipeline"] == pytest.approx(pipeline)
