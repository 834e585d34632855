"""Databricks: rendering for its dialect and the message when the optional connector is
missing. No connector-level test: the connector speaks Thrift over HTTP to a SQL warehouse,
and no local stand-in for that protocol is practical."""

from __future__ import annotations

import sys

import pytest
import sqlglot

from playbook_assets.connections.warehouses.databricks import DatabricksWarehouse
from playbook_assets.core.errors import TerminalStepError
from playbook_assets.core.sql import (
    SqlIdentifier,
    SqlValue,
    render_sql,
    sql_identifier,
    sql_literal,
)


def _warehouse() -> DatabricksWarehouse:
    return DatabricksWarehouse(
        server_hostname="dbc-1.cloud.databricks.com", http_path="/sql/1.0/x", access_token="t"
    )


def test_class_attributes() -> None:
    assert DatabricksWarehouse.dialect == "databricks"
    assert DatabricksWarehouse.kind == "databricks"
    assert _warehouse().schema is None


def test_literals_render_for_databricks() -> None:
    text = sql_literal("it's a \\ test", "databricks")
    assert text == "'it\\'s a \\\\ test'"
    parsed = sqlglot.parse_one(f"SELECT {text}", read="databricks")
    assert parsed.expressions[0].name == "it's a \\ test"  # the value survives a round trip


def test_identifier_renders_with_backticks_when_needed() -> None:
    assert sql_identifier("analytics.accounts", "databricks") == "analytics.accounts"
    assert sql_identifier('"My Schema".select', "databricks") == "`My Schema`.`select`"


def test_empty_list_matches_nothing() -> None:
    sql = render_sql(
        "SELECT * FROM t WHERE id IN ({{ids}})",
        {"ids": SqlValue([], element_type="BIGINT")},
        "databricks",
    )
    where = sqlglot.parse_one(sql, read="databricks")
    assert "LIMIT 0" in sql.upper() and where is not None


def test_template_renders_values_and_identifiers() -> None:
    sql = render_sql(
        "SELECT * FROM {{table}} WHERE segment IN ({{segments}})",
        {"table": SqlIdentifier("analytics.accounts"), "segments": SqlValue(["a", "b'c"])},
        "databricks",
    )
    assert sql == "SELECT * FROM analytics.accounts WHERE segment IN ('a', 'b\\'c')"


def test_missing_connector_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "databricks.sql", None)  # makes the import fail
    with pytest.raises(TerminalStepError) as caught:
        _warehouse().run_query("SELECT 1")
    assert 'pip install "playbook-executor[databricks]"' in str(caught.value)
    assert "databricks-sql-connector" in str(caught.value)
