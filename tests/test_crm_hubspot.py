"""HubSpot: the real hubspot-api-client against the local stand-in (tests/hubspot_standin.py),
which answers from the demo CRM; results are compared with the demo CRM (DemoCrm)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from playbook_assets.crm.demo import DemoCrm
from playbook_assets.crm.hubspot import HubSpotCrm
from playbook_assets.demo import write_demo_crm
from playbook_assets.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.spec import SearchConfig
from tests.conftest import DemoFiles, Project, connection_config_text
from tests.hubspot_standin import TOKEN, HubSpotStandIn
from tests.template_results import DuckDBReports, assert_same_results, run_template

FAST = 200  # requests per second for tests that are not about the rate limit
TEMPLATES = ["at_risk_renewals", "churn_risk", "presales_analysis", "segment_analysis"]


@pytest.fixture(scope="module")
def standin(demo_files: DemoFiles) -> Iterator[HubSpotStandIn]:
    """A stand-in over the session's demo CRM (10,000 deals), with a fast search limit."""
    with HubSpotStandIn(demo_files.crm, search_rate=FAST) as server:
        yield server


@pytest.fixture
def fresh(standin: HubSpotStandIn) -> Iterator[HubSpotStandIn]:
    """The module's stand-in with its call log, failures and rate window cleared."""
    standin.reset()
    yield standin
    standin.reset()


def _crm(server: HubSpotStandIn, **overrides: Any) -> HubSpotCrm:
    settings: dict[str, Any] = {
        "access_token": TOKEN,
        "base_url": server.base_url,
        "requests_per_second": FAST,
        "backoff_seconds": 0.01,
    }
    return HubSpotCrm(**{**settings, **overrides})


def _request(**fields: Any) -> SearchConfig:
    return SearchConfig.model_validate({"object": "deals", **fields})


def _ids(table: pa.Table) -> list[int]:
    return table.column("hs_object_id").to_pylist()


def _comparable(table: pa.Table) -> list[dict[str, Any]]:
    """Rows with decimals as floats and timestamps cut to HubSpot's milliseconds."""
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_decimal(column.type):
            column = pc.cast(pc.cast(column, pa.string()), pa.float64())
        if pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.timestamp("ms"), safe=False)
        columns[name] = column
    return pa.table(columns).to_pylist()


OPERATOR_CASES: dict[str, dict[str, Any]] = {
    "EQ": {"filters": [{"property": "dealstage", "operator": "EQ", "value": "ClosedWon"}]},
    "NEQ": {"filters": [{"property": "dealstage", "operator": "NEQ", "value": "closedwon"}]},
    "LT": {"filters": [{"property": "amount", "operator": "LT", "value": 5000}]},
    "LTE": {"filters": [{"property": "amount", "operator": "LTE", "value": "5000.5"}]},
    "GT": {"filters": [{"property": "closedate", "operator": "GT", "value": "2026-06-30"}]},
    "GTE": {
        "filters": [
            {"property": "createdate", "operator": "GTE", "value": datetime(2026, 5, 1, 12)}
        ]
    },
    "IN": {
        "filters": [
            {"property": "dealstage", "operator": "IN", "values": ["closedlost", "contractsent"]}
        ]
    },
    "NOT_IN": {
        "filters": [
            {"property": "dealtype", "operator": "NOT_IN", "values": ["newbusiness"]},
            {"property": "amount", "operator": "GT", "value": 20000},
        ]
    },
    "BETWEEN": {
        "filters": [
            {
                "property": "closedate",
                "operator": "BETWEEN",
                "value": "2026-03-01",
                "high_value": "2026-03-31",
            }
        ]
    },
    "HAS_PROPERTY": {"filters": [{"property": "amount", "operator": "HAS_PROPERTY"}]},
    "NOT_HAS_PROPERTY": {"filters": [{"property": "amount", "operator": "NOT_HAS_PROPERTY"}]},
    "CONTAINS_TOKEN": {
        "filters": [{"property": "dealname", "operator": "CONTAINS_TOKEN", "value": "renewal"}]
    },
    "boolean EQ": {"filters": [{"property": "hs_is_closed", "operator": "EQ", "value": False}]},
    "groups OR": {
        "filter_groups": [
            [{"property": "amount", "operator": "GT", "value": 500000}],
            [
                {"property": "dealstage", "operator": "EQ", "value": "closedlost"},
                {"property": "closedate", "operator": "LT", "value": "2026-02-01"},
            ],
        ]
    },
    "empty IN": {"filters": [{"property": "dealstage", "operator": "IN", "values": []}]},
}


@pytest.mark.parametrize("case", list(OPERATOR_CASES))
def test_every_operator_matches_the_demo_crm(
    case: str, fresh: HubSpotStandIn, demo_files: DemoFiles
) -> None:
    request = _request(
        **OPERATOR_CASES[case],
        properties=["dealname", "amount", "closedate", "dealstage", "hs_is_closed"],
        associations=["companies"],
    )
    expected = DemoCrm(database=str(demo_files.crm)).search(request)
    actual = _crm(fresh).search(request)
    assert _ids(actual) == _ids(expected)
    assert _comparable(actual) == _comparable(expected)
    if case != "empty IN":
        assert 0 < actual.num_rows < 10_000


def test_values_are_typed(fresh: HubSpotStandIn, demo_files: DemoFiles) -> None:
    request = _request(
        properties=["amount", "closedate", "hs_is_closed", "createdate", "dealstage"],
        filters=[{"property": "dealtype", "operator": "EQ", "value": "existingbusiness"}],
        associations=["companies"],
    )
    actual = _crm(fresh).search(request)
    assert actual.schema == pa.schema(
        [
            ("hs_object_id", pa.int64()),
            ("amount", pa.float64()),
            ("closedate", pa.date32()),
            ("hs_is_closed", pa.bool_()),
            ("createdate", pa.timestamp("us")),
            ("dealstage", pa.string()),
            ("company_id", pa.int64()),
        ]
    )
    expected = DemoCrm(database=str(demo_files.crm)).search(request)
    assert _comparable(actual) == _comparable(expected)
    # number properties whose values are all whole numbers come back as int64
    companies_request = SearchConfig(
        object="companies", properties=["numberofemployees", "annualrevenue"]
    )
    companies = _crm(fresh).search(companies_request)
    assert companies.schema.field("numberofemployees").type == pa.int64()
    assert companies.schema.field("annualrevenue").type == pa.int64()
    assert _comparable(companies) == _comparable(
        DemoCrm(database=str(demo_files.crm)).search(companies_request)
    )


def test_default_properties_and_describe_request(fresh: HubSpotStandIn) -> None:
    crm = _crm(fresh)
    table = crm.search(_request(limit=5))
    assert table.column_names == [
        "hs_object_id",
        "dealname",
        "amount",
        "closedate",
        "pipeline",
        "dealstage",
        "createdate",
        "hs_lastmodifieddate",
    ]
    assert _ids(table) == list(range(9000000001, 9000000006))
    body = crm.describe_request(
        _request(
            filters=[{"property": "amount", "operator": "GT", "value": 10}],
            properties=["amount"],
            sorts=[{"property": "amount", "direction": "DESCENDING"}],
            limit=3,
        )
    )
    assert body["filterGroups"] == [
        {"filters": [{"propertyName": "amount", "operator": "GT", "value": 10}]}
    ]
    assert body["sorts"] == [{"propertyName": "amount", "direction": "DESCENDING"}]
    assert body["properties"] == ["amount"] and body["limit"] == 200
    assert TOKEN not in json.dumps(body)


def test_paging_past_a_lowered_cap_is_complete(demo_files: DemoFiles) -> None:
    demo = DemoCrm(database=str(demo_files.crm))
    with HubSpotStandIn(demo_files.crm, search_rate=FAST, result_cap=1000) as server:
        crm = _crm(server)
        every = _request(properties=["amount"])
        actual = crm.search(every)
        assert actual.num_rows == 10_000
        assert len(set(_ids(actual))) == 10_000
        assert _ids(actual) == _ids(demo.search(every))
        # a user sort cannot be kept across windows: sorted on the client, same as the demo
        sorted_request = _request(
            properties=["amount", "dealstage"],
            filter_groups=[
                [{"property": "dealstage", "operator": "NEQ", "value": "closedwon"}],
                [{"property": "amount", "operator": "LT", "value": 3000}],
            ],
            sorts=[{"property": "amount", "direction": "DESCENDING"}],
        )
        expected = demo.search(sorted_request)
        assert expected.num_rows > 3000
        assert _comparable(crm.search(sorted_request)) == _comparable(expected)
        # limit: stop reading once the rows are collected
        server.reset()
        limited = crm.search(_request(properties=["amount"], limit=450))
        assert _ids(limited) == _ids(demo.search(_request(properties=["amount"], limit=450)))
        searches = [c for c in server.calls if c.path.endswith("/search")]
        assert len(searches) == 3  # 200 + 200 + 50
        assert all(c.status == 200 for c in server.calls)


@pytest.fixture(scope="module")
def large_crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo CRM with 15,000 deals, past HubSpot's real 10,000 cap."""
    path = tmp_path_factory.mktemp("hubspot_large") / "crm.duckdb"
    assert write_demo_crm(path, scale=0.3)["deals"] == 15_000
    return path


def test_more_than_10000_results_are_complete(large_crm: Path) -> None:
    with HubSpotStandIn(large_crm, search_rate=FAST) as server:
        # the stand-in enforces HubSpot's cap: no `after` past 10,000, a 400 at 10,000
        body = json.dumps({"limit": 200, "after": "10000"}).encode()
        raw = urllib.request.Request(
            f"{server.base_url}/crm/v3/objects/deals/search",
            data=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(raw, timeout=10)
        assert caught.value.code == 400
        assert "10000" in json.loads(caught.value.read())["message"]

        request = _request(properties=["amount", "dealstage"], associations=["companies"])
        actual = _crm(server).search(request)
    expected = DemoCrm(database=str(large_crm)).search(request)
    assert actual.num_rows == expected.num_rows == 15_000
    assert len(set(_ids(actual))) == 15_000
    assert _comparable(actual) == _comparable(expected)
    assert sorted({c.status for c in server.calls}) == [200, 400]  # the one 400: ours above
    assert [c.status for c in server.calls].count(400) == 1


def _max_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_429_storm_loses_no_rows_and_the_rate_is_never_exceeded(
    demo_files: DemoFiles,
) -> None:
    request = _request(
        properties=["amount"],
        filters=[{"property": "dealstage", "operator": "EQ", "value": "qualifiedtobuy"}],
        associations=["companies"],
    )
    expected = DemoCrm(database=str(demo_files.crm)).search(request)
    assert 300 < expected.num_rows < 1000
    with HubSpotStandIn(demo_files.crm, search_rate=5, retry_after=1) as server:
        server.inject(429, count=3)
        crm = HubSpotCrm(access_token=TOKEN, base_url=server.base_url, page_size=100)
        actual = crm.search(request)
    assert _comparable(actual) == _comparable(expected)
    statuses = [c.status for c in server.calls]
    assert statuses.count(429) == 3  # only the injected storm: the limiter itself never hit
    assert _max_in_one_second([c.at for c in server.calls]) <= 5
    assert len(server.calls) >= 3 + expected.num_rows // 100 + 1


def test_5xx_are_retried_then_reported_as_transient(fresh: HubSpotStandIn) -> None:
    request = _request(properties=["amount"], limit=10)
    fresh.inject(503, count=2)
    fresh.inject(500, count=1)
    assert _ids(_crm(fresh).search(request)) == list(range(9000000001, 9000000011))
    fresh.inject(503, count=5)
    with pytest.raises(TransientStepError, match="503"):
        _crm(fresh, max_retries=2).search(request)


def test_bad_token_is_a_clear_terminal_error(fresh: HubSpotStandIn) -> None:
    with pytest.raises(TerminalStepError) as caught:
        _crm(fresh, access_token="pat-na1-wrong-secret").search(_request(limit=1))
    message = str(caught.value)
    assert "the HubSpot access token was rejected" in message
    assert "access_token" in message
    assert "pat-na1-wrong-secret" not in message
    assert not isinstance(caught.value, TransientStepError)


def test_unknown_names_suggest_the_closest(fresh: HubSpotStandIn) -> None:
    with pytest.raises(TerminalStepError, match="did you mean 'dealstage'"):
        _crm(fresh).search(
            _request(filters=[{"property": "dealstag", "operator": "EQ", "value": "x"}])
        )
    with pytest.raises(TerminalStepError, match="did you mean 'deals'"):
        _crm(fresh).search(SearchConfig(object="dealz"))


def test_unreachable_and_timeout(fresh: HubSpotStandIn) -> None:
    with pytest.raises(SourceUnreachableError):
        _crm(fresh, base_url="http://127.0.0.1:9", max_retries=1).search(_request(limit=1))
    crm = _crm(fresh)
    crm.search(_request(limit=1))  # properties are cached: the next call is a search
    fresh.latency_seconds = 0.5
    with pytest.raises(StepTimeoutError):
        crm.search(_request(limit=1), timeout_seconds=0.2)


def _config_text(server: HubSpotStandIn, demo: DemoFiles) -> str:
    settings = {
        "type": "hubspot",
        "access_token": "${HUBSPOT_TOKEN}",
        "base_url": server.base_url,
        "requests_per_second": FAST,
    }
    return connection_config_text(demo, "hubspot", settings, role="crm")


@pytest.mark.parametrize("playbook_id", TEMPLATES)
def test_template_matches_the_demo_crm(
    playbook_id: str,
    project: Project,
    demo_files: DemoFiles,
    standin: HubSpotStandIn,
    capsys: pytest.CaptureFixture[str],
    duckdb_reports: DuckDBReports,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", TOKEN)
    config = project.config_path.parent / "hubspot.yaml"
    config.write_text(_config_text(standin, demo_files), encoding="utf-8")
    report = run_template(config, playbook_id, capsys)
    assert_same_results(report, duckdb_reports[playbook_id])
    assert TOKEN not in json.dumps(report)
