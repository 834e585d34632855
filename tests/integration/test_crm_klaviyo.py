"""Klaviyo: KlaviyoCrm (the official klaviyo-api SDK) against the local stand-in
(standins/klaviyo_standin.py) serving the demo CRM's contacts as profiles; every answer is compared
with the demo CRM's answer to the same search."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from playbook_assets.connections.crm.klaviyo import KlaviyoCrm
from playbook_assets.core.errors import TerminalStepError, TransientStepError
from playbook_assets.core.spec import SearchConfig
from standins.klaviyo_standin import KlaviyoStandIn
from tests.conftest import (
    DemoFiles,
    Project,
    check_mql_contacts_playbook,
    connection_config_text,
    demo_contacts_in_whole_seconds,
)


@pytest.fixture(scope="module")
def standin(demo_files: DemoFiles) -> Iterator[KlaviyoStandIn]:
    """One stand-in per module (and xdist worker)."""
    with KlaviyoStandIn(demo_files.crm) as server:
        yield server


@pytest.fixture
def server(standin: KlaviyoStandIn) -> KlaviyoStandIn:
    """The stand-in with no recorded calls or pending failures."""
    standin.reset()
    return standin


def _crm(server: KlaviyoStandIn, **overrides: Any) -> KlaviyoCrm:
    settings: dict[str, Any] = {
        "base_url": server.base_url,
        "api_key": server.api_key,
        "max_retry_delay_seconds": 1,
    }
    return KlaviyoCrm(**{**settings, **overrides})


def _demo(demo_files: DemoFiles, request: dict[str, Any]) -> pa.Table:
    """The demo CRM's answer as Klaviyo gives it: profile ids, date-times in whole seconds."""
    table = demo_contacts_in_whole_seconds(demo_files, request)
    ids = [f"01{i:024d}" for i in table.column("hs_object_id").to_pylist()]
    return table.set_column(0, "hs_object_id", pa.array(ids, pa.string()))


def _search(
    crm: KlaviyoCrm, request: dict[str, Any], object: str = "profiles", retry_attempts: int = 2
) -> pa.Table:
    config = SearchConfig.model_validate({"object": object, **request})
    return crm.search(config, retry_attempts=retry_attempts)


def test_profiles_typed_and_paged(server: KlaviyoStandIn, demo_files: DemoFiles) -> None:
    request = {"properties": ["email", "firstname", "createdate", "lifecyclestage"]}
    actual = _search(_crm(server), request)  # no filter: every profile
    expected = _demo(demo_files, request)
    ids = actual.column("hs_object_id").to_pylist()
    assert actual.num_rows == expected.num_rows == 6000
    assert len(set(ids)) == len(ids)
    assert len(server.calls) == 6000 // 100
    assert {p["page[size]"] for _, p in server.calls} == {"100"}
    assert actual.schema.field("createdate").type == pa.timestamp("us")
    assert actual.to_pylist() == expected.to_pylist()


def test_in_list_is_sent_in_chunks_of_100(server: KlaviyoStandIn, demo_files: DemoFiles) -> None:
    with duckdb.connect(str(demo_files.crm), read_only=True) as con:
        rows = con.sql("SELECT email FROM contacts ORDER BY hs_object_id LIMIT 250").fetchall()
    emails = [row[0].upper() if i % 5 == 0 else row[0] for i, row in enumerate(rows)]
    request = {
        "filters": [
            {"property": "email", "operator": "IN", "values": emails},
            {"property": "createdate", "operator": "GTE", "value": "2023-01-01"},
        ]
    }
    actual = _search(_crm(server), request)
    filters = [p["filter"] for _, p in server.calls]
    assert len(filters) == 3
    assert all(
        f.startswith("and(greater-than(created,2022-12-31T23:59:59Z),any(email,[") for f in filters
    )
    expected = _demo(demo_files, request)
    assert 0 < actual.num_rows == expected.num_rows < 250
    assert actual.to_pylist() == expected.to_pylist()


PUSHED = [
    ("EQ email", {"property": "email", "operator": "EQ", "value": "PLACEHOLDER"}),
    ("GT created", {"property": "createdate", "operator": "GT", "value": "2025-06-01T10:00:00Z"}),
    ("GTE created", {"property": "createdate", "operator": "GTE", "value": "2025-06-01"}),
    ("LT updated", {"property": "lastmodifieddate", "operator": "LT", "value": "2024-01-01"}),
    ("LTE updated", {"property": "lastmodifieddate", "operator": "LTE", "value": "2024-01-01"}),
    (
        "BETWEEN created",
        {
            "property": "createdate",
            "operator": "BETWEEN",
            "value": "2024-01-01",
            "high_value": "2024-03-31T23:59:59",
        },
    ),
]
LOCAL = [
    ("EQ custom", {"property": "lifecyclestage", "operator": "EQ", "value": "Customer"}),
    ("IN", {"property": "jobtitle", "operator": "IN", "values": ["CEO", "cto"]}),
    ("NEQ", {"property": "hs_lead_status", "operator": "NEQ", "value": "new"}),
    ("NOT_IN", {"property": "jobtitle", "operator": "NOT_IN", "values": ["CEO", "CTO"]}),
    ("LTE text", {"property": "lastname", "operator": "LTE", "value": "johnson"}),
    ("HAS_PROPERTY", {"property": "jobtitle", "operator": "HAS_PROPERTY"}),
    ("NOT_HAS_PROPERTY", {"property": "hs_lead_status", "operator": "NOT_HAS_PROPERTY"}),
    ("CONTAINS_TOKEN", {"property": "email", "operator": "CONTAINS_TOKEN", "value": "*@gmail.com"}),
]


@pytest.mark.parametrize(("name", "spec"), PUSHED + LOCAL, ids=[c[0] for c in PUSHED + LOCAL])
def test_operator_matches_demo_crm(
    name: str, spec: dict[str, Any], server: KlaviyoStandIn, demo_files: DemoFiles
) -> None:
    if spec.get("value") == "PLACEHOLDER":
        with duckdb.connect(str(demo_files.crm), read_only=True) as con:
            (email,) = con.sql("SELECT email FROM contacts LIMIT 1 OFFSET 17").fetchall()[0]
        spec = {**spec, "value": email.upper()}
    narrow = {"property": "createdate", "operator": "GT", "value": "2025-09-01"}
    request = {
        "filters": [spec] if (name, spec) in PUSHED or name == "EQ email" else [narrow, spec],
        "properties": ["email", "jobtitle", "hs_lead_status", "createdate", "lastname"],
        "sorts": [{"property": "createdate", "direction": "DESCENDING"}],
    }
    actual = _search(_crm(server), request)
    expected = _demo(demo_files, request)
    assert expected.num_rows > 0, name
    assert actual.to_pylist() == expected.to_pylist(), name
    # the server narrowed the profiles; the operator under test ran locally unless pushed
    sent = {p.get("filter") for _, p in server.calls}
    assert len(server.calls) < 6000 // 100
    if name in {"EQ custom", "IN", "NEQ", "NOT_IN", "LTE text", "HAS_PROPERTY"} or (
        name in {"NOT_HAS_PROPERTY", "CONTAINS_TOKEN"}
    ):
        assert sent == {"greater-than(created,2025-09-01T00:00:00Z)"}, name


def test_filter_groups_are_evaluated_locally(server: KlaviyoStandIn, demo_files: DemoFiles) -> None:
    request = {
        "filter_groups": [
            [{"property": "lifecyclestage", "operator": "EQ", "value": "evangelist"}],
            [
                {"property": "jobtitle", "operator": "EQ", "value": "CFO"},
                {"property": "createdate", "operator": "GT", "value": "2025-01-01"},
            ],
        ],
        "limit": 40,
    }
    actual = _search(_crm(server), request)
    assert actual.num_rows == 40
    assert actual.to_pylist() == _demo(demo_files, request).to_pylist()


def test_segment_members(server: KlaviyoStandIn, demo_files: DemoFiles) -> None:
    request = {"filters": [{"property": "jobtitle", "operator": "HAS_PROPERTY"}]}
    actual = _search(_crm(server), request, object="segments/SEGcustomer")
    expected = _demo(
        demo_files,
        {
            "filters": [
                *request["filters"],
                {"property": "lifecyclestage", "operator": "EQ", "value": "customer"},
            ]
        },
    )
    assert {path for path, _ in server.calls} == {"/api/segments/SEGcustomer/profiles"}
    assert actual.num_rows == expected.num_rows > 0
    assert actual.to_pylist() == expected.to_pylist()


def test_unknown_segment(server: KlaviyoStandIn) -> None:
    with pytest.raises(TerminalStepError, match="no segment 'nope'"):
        _search(_crm(server), {}, object="segments/nope")


def test_rate_limit_then_success(server: KlaviyoStandIn, demo_files: DemoFiles) -> None:
    request = {"filters": [{"property": "createdate", "operator": "GT", "value": "2026-06-01"}]}
    server.fail_next(429)
    actual = _search(_crm(server), request)
    assert server.statuses[:2] == [429, 200]
    assert actual.to_pylist() == _demo(demo_files, request).to_pylist()


def test_retries_stay_within_the_budget(server: KlaviyoStandIn) -> None:
    # urllib3 under the SDK would also retry a 429 that has a Retry-After, the SDK again
    server.retry_after = 0
    server.fail_next(429, times=10)
    with pytest.raises(TransientStepError, match="HTTP 429"):
        _search(_crm(server), {}, retry_attempts=2)
    assert server.statuses == [429, 429, 429]  # the first call and 2 retries, no more


def test_bad_key(server: KlaviyoStandIn) -> None:
    with pytest.raises(TerminalStepError, match="rejected the API key") as e:
        _search(_crm(server, api_key="pk_wrong"), {})
    assert "pk_wrong" not in str(e.value)


def test_unknown_property_suggests_the_closest(server: KlaviyoStandIn) -> None:
    with pytest.raises(TerminalStepError, match="did you mean 'first_name'"):
        _search(_crm(server), {"properties": ["first_nam"]})
    assert server.calls == []


def test_playbook_searches_contacts(
    project: Project,
    server: KlaviyoStandIn,
    demo_files: DemoFiles,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KLAVIYO_KEY", server.api_key)
    config = project.config_path.parent / "klaviyo.yaml"
    settings = {
        "type": "klaviyo",
        "base_url": server.base_url,
        "api_key": "${KLAVIYO_KEY}",
    }
    config.write_text(
        connection_config_text(demo_files, "kl", settings, role="crm"), encoding="utf-8"
    )
    check_mql_contacts_playbook(
        project,
        config,
        capsys,
        datetime(2025, 6, 1),
        lambda request: _demo(demo_files, request).num_rows,
    )
