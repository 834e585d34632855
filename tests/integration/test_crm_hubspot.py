"""HubSpot: the real hubspot-api-client against the local stand-in (standins/hubspot_standin.py).

Expected rows come from the stand-in's own records, filtered and sorted here in plain Python;
template runs are compared with the demo CRM's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from playbook_assets.app.cli import main
from playbook_assets.connections.crm.hubspot import HubSpotCrm
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.spec import SearchConfig
from playbook_assets.demo.generator import write_demo_crm
from standins.hubspot_standin import READ_SCOPES, TOKEN, HubSpotStandIn
from tests.conftest import DemoFiles, Project, connection_config_text
from tests.template_results import DuckDBReports, assert_same_results, run_template

FAST = 200  # requests per second for tests that are not about the rate limit
TEMPLATES = ["at_risk_renewals", "churn_risk", "presales_analysis", "segment_analysis"]
ROOT = Path(__file__).resolve().parents[2]
Record = dict[str, Any]


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


@pytest.fixture(autouse=True)
def _own_rate_limit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's shared rate limit lives in its own folder (the default is DAGSTER_HOME)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))


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


def _expected_rows(
    server: HubSpotStandIn,
    keep: Callable[[Record], bool],
    properties: list[str],
    *,
    object_type: str = "deals",
    company: bool = False,
) -> list[Record]:
    """The stand-in's records that ``keep`` accepts, by id, with the values as the search
    returns them (numbers as float, date-times to the millisecond)."""
    links = server.associated(object_type, "companies") if company else {}
    rows = []
    for record in server.records(object_type):
        if not keep(record):
            continue
        row: Record = {"hs_object_id": record["hs_object_id"]}
        for name in properties:
            value = record[name]
            row[name] = float(value) if isinstance(value, Decimal) else value
        if company:
            linked = links.get(record["hs_object_id"])
            row["company_id"] = min(linked) if linked else None
        rows.append(row)
    return rows


def _rows(table: pa.Table) -> list[Record]:
    return table.to_pylist()


def _day(text: str) -> date:
    return date.fromisoformat(text)


OPERATOR_CASES: dict[str, tuple[dict[str, Any], Callable[[Record], bool]]] = {
    "EQ ignores case": (
        {"filters": [{"property": "dealstage", "operator": "EQ", "value": "ClosedWon"}]},
        lambda r: r["dealstage"] == "closedwon",
    ),
    "NEQ keeps records without a value": (
        {"filters": [{"property": "dealstage", "operator": "NEQ", "value": "closedwon"}]},
        lambda r: r["dealstage"] != "closedwon",
    ),
    "LT number": (
        {"filters": [{"property": "amount", "operator": "LT", "value": 5000}]},
        lambda r: r["amount"] is not None and r["amount"] < 5000,
    ),
    "LTE decimal text": (
        {"filters": [{"property": "amount", "operator": "LTE", "value": "5000.5"}]},
        lambda r: r["amount"] is not None and r["amount"] <= Decimal("5000.5"),
    ),
    "GT date": (
        {"filters": [{"property": "closedate", "operator": "GT", "value": "2026-06-30"}]},
        lambda r: r["closedate"] is not None and r["closedate"] > _day("2026-06-30"),
    ),
    "GTE date-time": (
        {
            "filters": [
                {"property": "createdate", "operator": "GTE", "value": datetime(2026, 5, 1, 12)}
            ]
        },
        lambda r: r["createdate"] >= datetime(2026, 5, 1, 12),
    ),
    "IN": (
        {
            "filters": [
                {
                    "property": "dealstage",
                    "operator": "IN",
                    "values": ["closedlost", "contractsent"],
                }
            ]
        },
        lambda r: r["dealstage"] in {"closedlost", "contractsent"},
    ),
    "NOT_IN and GT": (
        {
            "filters": [
                {"property": "dealtype", "operator": "NOT_IN", "values": ["newbusiness"]},
                {"property": "amount", "operator": "GT", "value": 20000},
            ]
        },
        lambda r: r["dealtype"] != "newbusiness" and (r["amount"] or 0) > 20000,
    ),
    "BETWEEN is inclusive": (
        {
            "filters": [
                {
                    "property": "closedate",
                    "operator": "BETWEEN",
                    "value": "2026-03-01",
                    "high_value": "2026-03-31",
                }
            ]
        },
        lambda r: (
            r["closedate"] is not None
            and _day("2026-03-01") <= r["closedate"] <= _day("2026-03-31")
        ),
    ),
    "HAS_PROPERTY": (
        {"filters": [{"property": "amount", "operator": "HAS_PROPERTY"}]},
        lambda r: r["amount"] is not None,
    ),
    "CONTAINS_TOKEN": (
        {"filters": [{"property": "dealname", "operator": "CONTAINS_TOKEN", "value": "renewal"}]},
        lambda r: "renewal" in r["dealname"].lower().split(),
    ),
    "boolean EQ": (
        {"filters": [{"property": "hs_is_closed", "operator": "EQ", "value": False}]},
        lambda r: r["hs_is_closed"] is False,
    ),
    "groups are ORed": (
        {
            "filter_groups": [
                [{"property": "amount", "operator": "GT", "value": 500000}],
                [
                    {"property": "dealstage", "operator": "EQ", "value": "closedlost"},
                    {"property": "closedate", "operator": "LT", "value": "2026-02-01"},
                ],
            ]
        },
        lambda r: (
            (r["amount"] or 0) > 500000
            or (r["dealstage"] == "closedlost" and r["closedate"] < _day("2026-02-01"))
        ),
    ),
    "empty IN matches nothing": (
        {"filters": [{"property": "dealstage", "operator": "IN", "values": []}]},
        lambda r: False,
    ),
}
PROPERTIES = ["dealname", "amount", "closedate", "dealstage", "hs_is_closed"]


@pytest.mark.parametrize("case", list(OPERATOR_CASES))
def test_every_operator_returns_the_matching_records(case: str, fresh: HubSpotStandIn) -> None:
    filters, keep = OPERATOR_CASES[case]
    request = _request(**filters, properties=PROPERTIES, associations=["companies"])
    actual = _crm(fresh).search(request)
    expected = _expected_rows(fresh, keep, PROPERTIES, company=True)
    assert _rows(actual) == expected
    if case != "empty IN matches nothing":
        assert 0 < actual.num_rows < 10_000


def test_values_are_typed(fresh: HubSpotStandIn) -> None:
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
    properties = ["amount", "closedate", "hs_is_closed", "createdate", "dealstage"]
    expected = _expected_rows(
        fresh, lambda r: r["dealtype"] == "existingbusiness", properties, company=True
    )
    assert _rows(actual) == expected
    # number properties whose values are all whole numbers come back as int64
    companies_request = SearchConfig(
        object="companies", properties=["numberofemployees", "annualrevenue"]
    )
    companies = _crm(fresh).search(companies_request)
    assert companies.schema.field("numberofemployees").type == pa.int64()
    assert companies.schema.field("annualrevenue").type == pa.int64()
    assert companies.column("numberofemployees").to_pylist() == [
        r["numberofemployees"] for r in fresh.records("companies")
    ]


def test_an_empty_result_has_the_types_of_a_full_one(fresh: HubSpotStandIn) -> None:
    request = _request(
        properties=["dealname", "closedate", "hs_is_closed", "createdate"],
        filters=[{"property": "dealname", "operator": "EQ", "value": "no such deal"}],
        associations=["companies"],
    )
    empty = _crm(fresh).search(request)
    full = _crm(fresh).search(request.model_copy(update={"filters": [], "limit": 5}))
    assert empty.num_rows == 0 and full.num_rows == 5
    assert empty.schema == full.schema


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
    assert _ids(table) == [r["hs_object_id"] for r in fresh.records("deals")[:5]]
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


def test_a_limit_stops_reading(fresh: HubSpotStandIn) -> None:
    limited = _crm(fresh).search(_request(properties=["amount"], limit=450))
    assert _ids(limited) == [r["hs_object_id"] for r in fresh.records("deals")[:450]]
    assert [c.status for c in fresh.searches()] == [200, 200, 200]  # 200 + 200 + 50


@pytest.fixture(scope="module")
def large_crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo CRM with 15,000 deals, past HubSpot's real 10,000 cap."""
    path = tmp_path_factory.mktemp("hubspot_large") / "crm.duckdb"
    assert write_demo_crm(path, scale=0.3)["deals"] == 15_000
    return path


def test_the_standin_answers_400_past_the_cap(large_crm: Path) -> None:
    with HubSpotStandIn(large_crm, search_rate=FAST) as server:
        for after, status in (("9800", 200), ("10000", 400)):
            body = json.dumps({"limit": 200, "after": after}).encode()
            raw = urllib.request.Request(
                f"{server.base_url}/crm/v3/objects/deals/search",
                data=body,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )
            if status == 200:
                with urllib.request.urlopen(raw, timeout=10) as answer:
                    page = json.loads(answer.read())
                # HubSpot still links to the page past the cap
                assert page["paging"]["next"]["after"] == "10000"
                assert page["total"] == 15_000
            else:
                with pytest.raises(urllib.error.HTTPError) as caught:
                    urllib.request.urlopen(raw, timeout=10)
                assert caught.value.code == 400
                assert "10000" in json.loads(caught.value.read())["message"]


@pytest.mark.parametrize("next_link_at_cap", [True, False], ids=["link-at-cap", "no-link-at-cap"])
def test_more_than_10000_results_are_complete(large_crm: Path, next_link_at_cap: bool) -> None:
    with HubSpotStandIn(large_crm, search_rate=FAST, next_link_at_cap=next_link_at_cap) as server:
        crm = _crm(server)
        request = _request(properties=["amount", "dealstage"], associations=["companies"])
        actual = crm.search(request)
        expected = _expected_rows(server, lambda r: True, ["amount", "dealstage"], company=True)
        assert len(expected) == 15_000
        assert _rows(actual) == expected
        # a step's own sort cannot be kept across windows: the rows are sorted here
        server.reset()
        sorted_request = _request(
            properties=["amount", "dealstage"],
            filter_groups=[
                [{"property": "dealstage", "operator": "NEQ", "value": "closedwon"}],
                [{"property": "amount", "operator": "LT", "value": 20000}],
            ],
            sorts=[{"property": "amount", "direction": "DESCENDING"}],
        )
        kept = _expected_rows(
            server,
            lambda r: r["dealstage"] != "closedwon" or (r["amount"] or 0) < 20000,
            ["amount", "dealstage"],
        )
        assert len(kept) > 10_000
        kept.sort(key=lambda r: r["hs_object_id"])
        kept.sort(key=lambda r: -(r["amount"] if r["amount"] is not None else float("-inf")))
        assert _rows(crm.search(sorted_request)) == kept
        statuses = [c.status for c in server.calls]
    assert set(statuses) == {200}  # never a page past the cap


def test_filter_groups_beyond_the_limits_are_split(fresh: HubSpotStandIn) -> None:
    stages = ["closedwon", "closedlost", "contractsent", "qualifiedtobuy", "presentationscheduled"]
    groups = [
        [
            {"property": "dealstage", "operator": "EQ", "value": stage},
            {"property": "amount", "operator": "GT", "value": 1000},
            {"property": "amount", "operator": "LT", "value": 900000},
            {"property": "closedate", "operator": "GT", "value": "2025-01-01"},
        ]
        for stage in stages
    ]  # 20 filters: over HubSpot's 18, so searched one group at a time
    actual = _crm(fresh).search(_request(filter_groups=groups, properties=["dealstage"]))
    expected = _expected_rows(
        fresh,
        lambda r: (
            r["dealstage"] in stages
            and 1000 < (r["amount"] or 0) < 900000
            and r["closedate"] > _day("2025-01-01")
        ),
        ["dealstage"],
    )
    assert _rows(actual) == expected
    assert {c.status for c in fresh.searches()} == {200}  # each search within the limits


def _max_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_429_storm_loses_no_rows_and_the_rate_is_never_exceeded(demo_files: DemoFiles) -> None:
    with HubSpotStandIn(demo_files.crm, search_rate=5, retry_after=1) as server:
        request = _request(
            properties=["amount"],
            filters=[{"property": "dealstage", "operator": "EQ", "value": "qualifiedtobuy"}],
            associations=["companies"],
        )
        expected = _expected_rows(
            server, lambda r: r["dealstage"] == "qualifiedtobuy", ["amount"], company=True
        )
        assert 300 < len(expected) < 1000
        server.inject(429, count=2)
        crm = HubSpotCrm(access_token=TOKEN, base_url=server.base_url, page_size=100)
        actual = crm.search(request)
    assert _rows(actual) == expected
    statuses = [c.status for c in server.calls]
    assert statuses.count(429) == 2  # only the injected storm: the limiter itself never hit
    assert _max_in_one_second([c.at for c in server.calls if c.path.endswith("/search")]) <= 5


def test_retries_stay_within_the_budget(fresh: HubSpotStandIn) -> None:
    request = _request(properties=["amount"], limit=10)
    fresh.inject(503, count=1)
    fresh.inject(500, count=1)
    table = _crm(fresh).search(request, retry_attempts=2)
    assert _ids(table) == [r["hs_object_id"] for r in fresh.records("deals")[:10]]
    assert [c.status for c in fresh.searches()] == [503, 500, 200]
    fresh.reset()
    fresh.inject(503, count=50)
    with pytest.raises(TransientStepError, match="503"):
        _crm(fresh).search(request, retry_attempts=3)
    assert len(fresh.searches()) == 4  # the first attempt and 3 retries, no more


def test_a_failing_step_makes_one_attempt_plus_the_retry_budget(
    project: Project,
    demo_files: DemoFiles,
    standin: HubSpotStandIn,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", TOKEN)
    config = project.config_path.parent / "hubspot.yaml"
    config.write_text(
        _config_text(standin, demo_files).replace("retry_attempts: 1", "retry_attempts: 2"),
        encoding="utf-8",
    )
    project.add_playbook(
        "deals.yaml",
        """
        playbook:
          id: deals
          name: Deals
          data_sources: [{type: crm}]
          steps:
            - id: deals
              name: Deals
              source: crm
              type: search
              config: {object: deals, properties: [amount], limit: 10}
        """,
    )
    standin.reset()
    standin.inject(503, count=100)
    code = main(["run", "deals", "--config", str(config), "--json"])
    report = json.loads(capsys.readouterr().out)
    searches = len(standin.searches())
    standin.reset()
    assert code == 1 and report["steps"][0]["status"] == "error"
    assert "503" in report["steps"][0]["error"]
    assert searches == 3  # execution.retry_attempts: 2 -> 3 attempts in all, not 3 x 7


def test_bad_token_is_a_clear_terminal_error(fresh: HubSpotStandIn) -> None:
    with pytest.raises(TerminalStepError) as caught:
        _crm(fresh, access_token="pat-na1-wrong-secret").search(_request(limit=1))
    message = str(caught.value)
    assert "the HubSpot access token was rejected" in message
    assert "access_token" in message
    assert "pat-na1-wrong-secret" not in message
    assert not isinstance(caught.value, TransientStepError)


@pytest.mark.parametrize(
    ("missing", "request_fields"),
    [
        ("crm.schemas.deals.read", {"object": "deals"}),
        ("crm.objects.companies.read", {"object": "companies"}),
    ],
)
def test_missing_scope_names_the_scope(
    demo_files: DemoFiles, missing: str, request_fields: dict[str, Any]
) -> None:
    with HubSpotStandIn(demo_files.crm, search_rate=FAST, scopes=READ_SCOPES - {missing}) as server:
        with pytest.raises(TerminalStepError) as caught:
            _crm(server).search(SearchConfig.model_validate({**request_fields, "limit": 1}))
    message = str(caught.value)
    assert f"grant the private app the {missing} scope" in message
    assert "did you mean" not in message


def test_unknown_names_suggest_the_closest_but_never_the_same(fresh: HubSpotStandIn) -> None:
    with pytest.raises(TerminalStepError, match="did you mean 'dealstage'"):
        _crm(fresh).search(
            _request(filters=[{"property": "dealstag", "operator": "EQ", "value": "x"}])
        )
    with pytest.raises(TerminalStepError, match="did you mean 'deals'"):
        _crm(fresh).search(SearchConfig(object="dealz"))
    # a standard object the account does not serve: say what to set up, not "did you mean"
    with pytest.raises(TerminalStepError) as caught:
        _crm(fresh).search(SearchConfig(object="tickets"))
    message = str(caught.value)
    assert "does not serve the standard object 'tickets'" in message
    assert "tickets scope" in message and "did you mean" not in message


def test_unreachable_and_timeout(fresh: HubSpotStandIn) -> None:
    with pytest.raises(SourceUnreachableError):
        _crm(fresh, base_url="http://127.0.0.1:9").search(_request(limit=1), retry_attempts=1)
    crm = _crm(fresh)
    crm.search(_request(limit=1))  # properties are cached: the next call is a search
    fresh.latency_seconds = 0.5
    with pytest.raises(StepTimeoutError):
        crm.search(_request(limit=1), timeout_seconds=0.2)


_WORKER = textwrap.dedent(
    """
    import sys, time
    from playbook_assets.connections.crm.hubspot import HubSpotCrm
    from playbook_assets.core.spec import SearchConfig

    base_url, token, limit_file, object_type, start = sys.argv[1:6]
    crm = HubSpotCrm(access_token=token, base_url=base_url, requests_per_second=4,
                     rate_limit_file=limit_file, page_size=20)
    request = SearchConfig(object=object_type, properties=["createdate"], limit=160)
    time.sleep(max(0.0, float(start) - time.time()))
    started = time.time()
    table = crm.search(request, retry_attempts=0)
    assert table.num_rows == 160, table.num_rows
    print(started, time.time())
    """
)


def test_rate_limit_holds_across_processes(demo_files: DemoFiles, tmp_path: Path) -> None:
    """Three processes share one account's limit of 4 requests a second (1 below HubSpot's,
    room for the scheduling delays of a loaded machine): together they never pass HubSpot's 5
    searches a second, where each on its own would send 4."""
    limit_file = tmp_path / "limits" / "rate.sqlite"
    with HubSpotStandIn(demo_files.crm, search_rate=5) as server:
        start = time.time() + 8  # every worker has imported its libraries by then
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _WORKER,
                    server.base_url,
                    TOKEN,
                    str(limit_file),
                    name,
                    str(start),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("deals", "companies", "contacts")
        ]
        outputs = [worker.communicate(timeout=120) for worker in workers]
        calls = list(server.calls)
    assert [w.returncode for w in workers] == [0, 0, 0], [err for _, err in outputs]
    searches = [c for c in calls if c.path.endswith("/search")]
    assert len(searches) == 3 * 8 and all(c.status == 200 for c in calls)
    assert _max_in_one_second([c.at for c in searches]) <= 5
    # the three searched at the same time: each had started before any had finished
    spans = [tuple(map(float, out.split())) for out, _ in outputs]
    assert max(started for started, _ in spans) < min(finished for _, finished in spans)


def _config_text(server: HubSpotStandIn, demo: DemoFiles) -> str:
    settings = {
        "type": "hubspot",
        "access_token": "${HUBSPOT_TOKEN}",
        "base_url": server.base_url,
        "requests_per_second": FAST,
        "backoff_seconds": 0.01,
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
