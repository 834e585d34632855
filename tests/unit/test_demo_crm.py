"""The demo CRM: HubSpot search semantics checked against independent SQL on the same file."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from playbook_assets.connections.crm.demo import DemoCrm
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.spec import SearchConfig
from playbook_assets.demo.generator import write_demo_crm


@pytest.fixture(scope="module")
def crm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo CRM file at scale 0.1 (1,000 companies, 5,000 deals, 3,000 contacts)."""
    path = tmp_path_factory.mktemp("crm") / "crm.duckdb"
    write_demo_crm(path, scale=0.1)
    return path


@pytest.fixture(scope="module")
def crm(crm_file: Path) -> DemoCrm:
    """The resource on that file."""
    return DemoCrm(database=str(crm_file), scale=0.1)


def _search(crm: DemoCrm, **request: Any) -> pa.Table:
    return crm.search(SearchConfig.model_validate(request))


def _ids(table: pa.Table) -> list[int]:
    return table.column("hs_object_id").to_pylist()


def _sql_ids(crm_file: Path, sql: str, params: list[Any] | None = None) -> list[int]:
    """Ids selected by hand-written SQL, ascending (the search's default order)."""
    with duckdb.connect(str(crm_file), read_only=True) as con:
        rows = con.execute(f"SELECT hs_object_id FROM ({sql}) ORDER BY 1", params or []).fetchall()
    return [row[0] for row in rows]


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


# (object, filter, independent SQL WHERE clause)
OPERATOR_CASES: list[tuple[str, dict[str, Any], str]] = [
    # EQ on text ignores case, as HubSpot does.
    (
        "deals",
        {"property": "dealstage", "operator": "EQ", "value": "ClosedWon"},
        "dealstage = 'closedwon'",
    ),
    # Numbers given as strings (HubSpot style) compare as numbers.
    (
        "deals",
        {"property": "hubspot_owner_id", "operator": "EQ", "value": "81000001"},
        "hubspot_owner_id = 81000001",
    ),
    (
        "deals",
        {"property": "hs_is_closed", "operator": "EQ", "value": "true"},
        "hs_is_closed",
    ),
    # NEQ and NOT_IN include records without a value.
    (
        "deals",
        {"property": "dealstage", "operator": "NEQ", "value": "ClosedLost"},
        "dealstage <> 'closedlost'",
    ),
    (
        "contacts",
        {"property": "hs_lead_status", "operator": "NEQ", "value": "new"},
        "hs_lead_status IS NULL OR hs_lead_status <> 'NEW'",
    ),
    ("deals", {"property": "amount", "operator": "LT", "value": "5000"}, "amount < 5000"),
    ("deals", {"property": "amount", "operator": "LTE", "value": 5000.5}, "amount <= 5000.50"),
    ("deals", {"property": "amount", "operator": "GT", "value": 250000}, "amount > 250000"),
    ("deals", {"property": "amount", "operator": "GTE", "value": "250000"}, "amount >= 250000"),
    # Dates as 'YYYY-MM-DD' and epoch milliseconds, against DATE and TIMESTAMP columns.
    (
        "deals",
        {"property": "closedate", "operator": "GTE", "value": "2026-11-01"},
        "closedate >= DATE '2026-11-01'",
    ),
    (
        "deals",
        {"property": "closedate", "operator": "LT", "value": _ms(date(2026, 12, 1))},
        "closedate < DATE '2026-12-01'",
    ),
    (
        "deals",
        {"property": "closedate", "operator": "EQ", "value": str(_ms(date(2026, 12, 15)))},
        "closedate = DATE '2026-12-15'",
    ),
    (
        "contacts",
        {"property": "createdate", "operator": "GTE", "value": "2026-10-01"},
        "createdate >= TIMESTAMP '2026-10-01 00:00:00'",
    ),
    (
        "companies",
        {"property": "createdate", "operator": "LT", "value": _ms(date(2022, 1, 1))},
        "createdate < TIMESTAMP '2022-01-01 00:00:00'",
    ),
    (
        "deals",
        {"property": "hs_lastmodifieddate", "operator": "GT", "value": "2026-10-15T12:00:00Z"},
        "hs_lastmodifieddate > TIMESTAMP '2026-10-15 12:00:00'",
    ),
    (
        "deals",
        {
            "property": "dealstage",
            "operator": "IN",
            "values": ["qualifiedtobuy", "PresentationScheduled", "decisionmakerboughtin"],
        },
        "dealstage IN ('qualifiedtobuy', 'presentationscheduled', 'decisionmakerboughtin')",
    ),
    (
        "contacts",
        {"property": "hs_lead_status", "operator": "NOT_IN", "values": ["NEW", "open"]},
        "hs_lead_status IS NULL OR hs_lead_status NOT IN ('NEW', 'OPEN')",
    ),
    ("deals", {"property": "dealstage", "operator": "IN", "values": []}, "FALSE"),
    ("deals", {"property": "dealstage", "operator": "NOT_IN", "values": []}, "TRUE"),
    (
        "deals",
        {
            "property": "closedate",
            "operator": "BETWEEN",
            "value": "2026-11-01",
            "high_value": "2026-11-30",
        },
        "closedate >= DATE '2026-11-01' AND closedate <= DATE '2026-11-30'",
    ),
    ("deals", {"property": "amount", "operator": "HAS_PROPERTY"}, "amount IS NOT NULL"),
    ("deals", {"property": "amount", "operator": "NOT_HAS_PROPERTY"}, "amount IS NULL"),
    ("contacts", {"property": "jobtitle", "operator": "NOT_HAS_PROPERTY"}, "jobtitle IS NULL"),
    (
        "companies",
        {"property": "annualrevenue", "operator": "HAS_PROPERTY"},
        "annualrevenue IS NOT NULL",
    ),
    # CONTAINS_TOKEN: a whole word, ignoring case, with * as a wildcard.
    (
        "contacts",
        {"property": "email", "operator": "CONTAINS_TOKEN", "value": "*@GMAIL.com"},
        "email LIKE '%@gmail.com'",
    ),
    (
        "deals",
        {"property": "dealname", "operator": "CONTAINS_TOKEN", "value": "renewal"},
        "list_contains(string_split(lower(dealname), ' '), 'renewal')",
    ),
    (
        "deals",
        {"property": "dealname", "operator": "CONTAINS_TOKEN", "value": "north*"},
        "len(list_filter(string_split(lower(dealname), ' '), lambda w: w LIKE 'north%')) > 0",
    ),
    (
        "companies",
        {"property": "name", "operator": "CONTAINS_TOKEN", "value": "labs"},
        "list_contains(string_split(lower(name), ' '), 'labs')",
    ),
    # Not a token on its own: "ren" is only part of the word "renewal".
    ("deals", {"property": "dealname", "operator": "CONTAINS_TOKEN", "value": "ren"}, "FALSE"),
]


@pytest.mark.parametrize(
    ("obj", "spec", "where"),
    OPERATOR_CASES,
    ids=[f"{case[1]['operator']}-{case[0]}-{case[1]['property']}" for case in OPERATOR_CASES],
)
def test_operator_matches_independent_sql(
    crm: DemoCrm, crm_file: Path, obj: str, spec: dict[str, Any], where: str
) -> None:
    result = _search(crm, object=obj, filters=[spec], properties=[spec["property"]])
    expected = _sql_ids(crm_file, f"SELECT hs_object_id FROM {obj} WHERE {where}")
    assert _ids(result) == expected
    assert result.num_rows == len(expected)


def test_operator_cases_are_not_trivial(crm_file: Path) -> None:
    # Most cases must select a real subset, or the comparison above proves little.
    with duckdb.connect(str(crm_file), read_only=True) as con:
        for obj, spec, where in OPERATOR_CASES:
            if where in {"TRUE", "FALSE"}:
                continue
            [(matched, total)] = con.sql(
                f"SELECT count(*) FILTER ({where}), count(*) FROM {obj}"
            ).fetchall()
            assert 0 < matched < total, (obj, spec)


def test_between_is_inclusive(crm: DemoCrm, crm_file: Path) -> None:
    with duckdb.connect(str(crm_file), read_only=True) as con:
        [(low_id, low), (high_id, high)] = con.sql(
            "SELECT hs_object_id, amount FROM deals WHERE amount IS NOT NULL "
            "ORDER BY hs_object_id LIMIT 2"
        ).fetchall()
    low, high = min(low, high), max(low, high)
    result = _search(
        crm,
        object="deals",
        filters=[
            {"property": "amount", "operator": "BETWEEN", "value": str(low), "high_value": high}
        ],
    )
    ids = _ids(result)
    assert low_id in ids and high_id in ids
    assert ids == _sql_ids(
        crm_file, "SELECT hs_object_id FROM deals WHERE amount BETWEEN ? AND ?", [low, high]
    )


def test_neq_includes_records_without_the_property(crm: DemoCrm, crm_file: Path) -> None:
    with duckdb.connect(str(crm_file), read_only=True) as con:
        [(amount, without_amount)] = con.sql(
            "SELECT (SELECT amount FROM deals WHERE amount IS NOT NULL ORDER BY hs_object_id "
            "LIMIT 1), count(*) FILTER (amount IS NULL) FROM deals"
        ).fetchall()
    assert without_amount > 0
    result = _search(
        crm, object="deals", filters=[{"property": "amount", "operator": "NEQ", "value": amount}]
    )
    assert _ids(result) == _sql_ids(
        crm_file, "SELECT hs_object_id FROM deals WHERE amount IS NULL OR amount <> ?", [amount]
    )
    assert result.column("amount").null_count == without_amount


def test_filter_groups_are_ored_and_filters_anded(crm: DemoCrm, crm_file: Path) -> None:
    result = _search(
        crm,
        object="deals",
        filter_groups=[
            [
                {"property": "dealstage", "operator": "EQ", "value": "closedwon"},
                {"property": "amount", "operator": "GT", "value": 100000},
            ],
            [
                {"property": "dealtype", "operator": "EQ", "value": "newbusiness"},
                {"property": "dealstage", "operator": "EQ", "value": "qualifiedtobuy"},
            ],
        ],
        properties=["dealstage", "amount", "dealtype"],
    )
    expected = _sql_ids(
        crm_file,
        "SELECT hs_object_id FROM deals WHERE (dealstage = 'closedwon' AND amount > 100000) "
        "OR (dealtype = 'newbusiness' AND dealstage = 'qualifiedtobuy')",
    )
    assert _ids(result) == expected
    first_only = _sql_ids(
        crm_file,
        "SELECT hs_object_id FROM deals WHERE dealstage = 'closedwon' AND amount > 100000",
    )
    assert 0 < len(first_only) < len(expected)


def test_sorts_nulls_last_then_id(crm: DemoCrm, crm_file: Path) -> None:
    result = _search(
        crm,
        object="deals",
        filters=[{"property": "dealstage", "operator": "EQ", "value": "appointmentscheduled"}],
        properties=["amount", "closedate"],
        sorts=[
            {"property": "amount", "direction": "DESCENDING"},
            {"property": "closedate", "direction": "ASCENDING"},
        ],
    )
    with duckdb.connect(str(crm_file), read_only=True) as con:
        expected = [
            row[0]
            for row in con.sql(
                "SELECT hs_object_id FROM deals WHERE dealstage = 'appointmentscheduled' "
                "ORDER BY amount DESC NULLS LAST, closedate ASC, hs_object_id"
            ).fetchall()
        ]
    assert _ids(result) == expected
    amounts = result.column("amount").to_pylist()
    assert amounts[-1] is None and amounts[0] is not None  # NULLs last even when descending


def test_limit_and_default_order(crm: DemoCrm, crm_file: Path) -> None:
    everything = _search(crm, object="companies")
    assert _ids(everything) == _sql_ids(crm_file, "SELECT hs_object_id FROM companies")
    limited = _search(crm, object="companies", limit=7)
    assert _ids(limited) == _ids(everything)[:7]
    # Default properties are HubSpot's defaults for the object.
    assert everything.column_names == [
        "hs_object_id",
        "name",
        "domain",
        "createdate",
        "hs_lastmodifieddate",
    ]
    assert _search(crm, object="deals", limit=1).column_names == [
        "hs_object_id",
        "dealname",
        "amount",
        "closedate",
        "pipeline",
        "dealstage",
        "createdate",
        "hs_lastmodifieddate",
    ]


def test_properties_are_typed_and_in_request_order(crm: DemoCrm) -> None:
    result = _search(
        crm,
        object="deals",
        properties=["hs_is_closed", "amount", "closedate", "createdate", "hubspot_owner_id"],
        associations=["companies"],
        limit=5,
    )
    assert result.schema == pa.schema(
        [
            ("hs_object_id", pa.int64()),
            ("hs_is_closed", pa.bool_()),
            ("amount", pa.decimal128(12, 2)),
            ("closedate", pa.date32()),
            ("createdate", pa.timestamp("us")),
            ("hubspot_owner_id", pa.int64()),
            ("company_id", pa.int64()),
        ]
    )
    first = result.slice(0, 1).to_pylist()[0]
    assert isinstance(first["amount"], Decimal | None)
    assert isinstance(first["closedate"], date)


def test_associations_add_company_id(crm: DemoCrm, crm_file: Path) -> None:
    deals = _search(crm, object="deals", properties=["dealname"], associations=["companies"])
    with duckdb.connect(str(crm_file), read_only=True) as con:
        expected = dict(con.sql("SELECT deal_id, company_id FROM deal_company").fetchall())
        linked = dict(con.sql("SELECT contact_id, company_id FROM contact_company").fetchall())
    assert dict(zip(_ids(deals), deals.column("company_id").to_pylist(), strict=True)) == expected

    contacts = _search(crm, object="contacts", properties=["email"], associations=["company"])
    companies = dict(zip(_ids(contacts), contacts.column("company_id").to_pylist(), strict=True))
    assert {k: v for k, v in companies.items() if v is not None} == linked
    assert sum(v is None for v in companies.values()) == contacts.num_rows - len(linked) > 0


def test_injection_looking_values_are_matched_literally(crm: DemoCrm, crm_file: Path) -> None:
    hostile = "' OR 1=1 --"
    for spec in (
        {"property": "dealname", "operator": "EQ", "value": hostile},
        {"property": "dealname", "operator": "IN", "values": [hostile, "x'); DROP TABLE deals;--"]},
        {"property": "dealname", "operator": "CONTAINS_TOKEN", "value": hostile},
        {"property": "dealname", "operator": "GT", "value": "zzzz' OR '1'='1"},
    ):
        assert _search(crm, object="deals", filters=[spec]).num_rows == 0
    assert len(_sql_ids(crm_file, "SELECT hs_object_id FROM deals")) == 5_000


@pytest.mark.parametrize(
    ("request_", "message", "hint_parts"),
    [
        (
            {"object": "deals", "properties": ["dealstag"]},
            "unknown deals property 'dealstag'",
            ["did you mean 'dealstage'?", "properties of deals:", "closedate"],
        ),
        (
            {"object": "deals", "filters": [{"property": "amont", "operator": "HAS_PROPERTY"}]},
            "unknown deals property 'amont'",
            ["did you mean 'amount'?"],
        ),
        (
            {"object": "contacts", "sorts": [{"property": "created"}]},
            "unknown contacts property 'created'",
            ["did you mean 'createdate'?"],
        ),
        (
            {"object": "deals", "properties": ["associated_company"]},
            "unknown deals property 'associated_company'",
            ["associations: [companies]"],
        ),
        (
            {"object": "deal"},
            "unknown CRM object 'deal'",
            ["did you mean 'deals'?", "companies, contacts, deals"],
        ),
        (
            {"object": "tickets"},
            "unknown CRM object 'tickets'",
            ["objects of the demo CRM: companies, contacts, deals"],
        ),
        (
            {"object": "companies", "associations": ["companies"]},
            "companies have no 'companies' association",
            ["associations of companies: none"],
        ),
        (
            {
                "object": "deals",
                "filters": [{"property": "amount", "operator": "GT", "value": "lots"}],
            },
            "property 'amount' takes a number; got 'lots'",
            [],
        ),
        (
            {
                "object": "deals",
                "filters": [{"property": "dealstage", "operator": "EQ", "value": ["a"]}],
            },
            "operator EQ on 'dealstage' takes one value",
            ["use IN / NOT_IN"],
        ),
        (
            {
                "object": "deals",
                "filters": [{"property": "closedate", "operator": "GT", "value": "next week"}],
            },
            "property 'closedate' takes a date",
            [],
        ),
    ],
)
def test_errors_say_what_is_wrong(
    crm: DemoCrm, request_: dict[str, Any], message: str, hint_parts: list[str]
) -> None:
    with pytest.raises(TerminalStepError) as raised:
        crm.search(SearchConfig.model_validate(request_))
    assert message in raised.value.message
    for part in hint_parts:
        assert part in (raised.value.hint or "")


def test_describe_request_is_the_hubspot_body(crm: DemoCrm) -> None:
    request = SearchConfig.model_validate(
        {
            "object": "deals",
            "filter_groups": [
                [{"property": "dealstage", "operator": "IN", "values": ["qualifiedtobuy"]}],
                [
                    {
                        "property": "closedate",
                        "operator": "BETWEEN",
                        "value": date(2026, 11, 1),
                        "high_value": "2026-12-31",
                    }
                ],
            ],
            "sorts": [{"property": "amount", "direction": "DESCENDING"}],
            "limit": 10,
        }
    )
    assert crm.describe_request(request) == {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "dealstage", "operator": "IN", "values": ["qualifiedtobuy"]}
                ]
            },
            {
                "filters": [
                    {
                        "propertyName": "closedate",
                        "operator": "BETWEEN",
                        "value": "2026-11-01",
                        "highValue": "2026-12-31",
                    }
                ]
            },
        ],
        "properties": [
            "dealname",
            "amount",
            "closedate",
            "pipeline",
            "dealstage",
            "createdate",
            "hs_lastmodifieddate",
        ],
        "sorts": [{"propertyName": "amount", "direction": "DESCENDING"}],
        "limit": 10,
    }
    assert DemoCrm.kind == "demo crm"


def test_search_creates_the_file_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "new" / "crm.duckdb"
    crm = DemoCrm(database=str(path), scale=0.02)
    result = _search(crm, object="companies", properties=["name"])
    assert path.exists() and result.num_rows == 200
