"""Values reach the report, the insights and the Dagster metadata with every digit, whatever
the column types; results with two columns of one name are refused. Expected values come
from DuckDB itself, computed on the same data."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import dagster as dg
import duckdb
import pytest

from playbook_assets.app.cli import EXIT_OK, EXIT_STEP_FAILED, main
from tests.conftest import Project

BIG = "9223372036854775807"  # the largest BIGINT: sums of it overflow 64 bits
VALUES = f"""
    SELECT * FROM (VALUES
        ({BIG}::BIGINT, 123456789012.1234567891::DECIMAL(38, 10), 1, 'Acme'),
        ({BIG}::BIGINT, 0.0000000001::DECIMAL(38, 10), 2, 'Globex'),
        (7::BIGINT, 1.5::DECIMAL(38, 10), 3, 'Initech')
    ) AS t(big, amount, account_id, account_name)
"""


def exact_playbook() -> str:
    template = " ".join(VALUES.split())
    return f"""
    playbook:
      id: exact
      name: Exact
      steps:
        - id: rows
          type: query
          config:
            template: "{template}"
      outputs:
        - name: rows_out
          source: "${{steps.rows}}"
        - name: totals
          type: aggregate
          metrics:
            - {{name: big_total, expression: "SUM(big)"}}
            - {{name: amount_total, expression: "SUM(amount)"}}
            - {{name: amount_max, expression: "MAX(amount)"}}
      insights:
        - "Total of big: {{{{totals.big_total | int}}}}"
        - "Amounts: {{{{totals.amount_total | number}}}}"
    """


def run(project: Project, capsys: pytest.CaptureFixture[str], playbook_id: str) -> Any:
    code = main(["run", playbook_id, "--config", str(project.config_path), "--json"])
    out = capsys.readouterr().out
    return code, out, json.loads(out)


def test_integer_and_decimal_results_keep_every_digit(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("exact.yaml", exact_playbook())
    code, out, report = run(project, capsys, "exact")
    assert code == EXIT_OK, report
    expected = duckdb.execute(
        f"SELECT sum(big), sum(amount), max(amount), sum(account_id) FROM ({VALUES})"
    ).fetchone()
    assert expected is not None
    big_total, amount_total, amount_max, _ = expected
    assert big_total == 2 * int(BIG) + 7 and isinstance(amount_total, Decimal)
    values = report["outputs"]["totals"]["values"]
    # JSON integers with every digit; a decimal a float cannot hold is its exact text.
    assert values["big_total"] == big_total
    assert f'"big_total": {big_total}' in out
    assert Decimal(values["amount_total"]) == amount_total
    assert values["amount_max"] == str(amount_max) and Decimal(values["amount_max"]) == amount_max
    assert report["insights"] == [
        f"Total of big: {big_total:,}",
        f"Amounts: {amount_total.quantize(Decimal('0.1')):,}",
    ]
    # The same exact values in Dagster's metadata; ids are not summed.
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    facts = latest_metadata(instance, ["exact", "rows"])["facts"].value
    assert facts["sum"]["big"] == big_total
    assert Decimal(str(facts["sum"]["amount"])) == amount_total
    assert "account_id" not in facts["sum"] and "account_id" not in facts["avg"]
    assert facts["top"] == {"column": "amount", "label": "Acme", "value": values["amount_max"]}
    # The report file on disk holds the same digits.
    stored = json.loads((project.artifacts_dir / f"{report['run_id']}.json").read_text())
    assert stored["outputs"]["totals"]["values"]["big_total"] == big_total


def latest_metadata(instance: dg.DagsterInstance, key: list[str]) -> Any:
    records = instance.fetch_materializations(dg.AssetKey(key), limit=1).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return materialization.metadata


TYPES = (
    "SELECT INTERVAL 14 MONTH + INTERVAL 3 DAY AS span, {'a': 1, 'b': [1, 2]} AS nested, "
    "[1, 2, 3] AS list, MAP {'k': 1} AS map, 'abc'::BLOB AS blob, "
    "170141183460469231731687303715884105727::HUGEINT AS huge, "
    "'00000000-0000-0000-0000-000000000001'::UUID AS id, TIME '12:30:00' AS at, "
    "'{\\\"a\\\": 1}'::JSON AS doc, union_value(num := 2) AS choice"
)


def test_no_column_type_breaks_metadata_facts_preview_or_storage(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook(
        "types.yaml",
        f"""
        playbook:
          id: types
          name: Types
          steps:
            - id: every_type
              type: query
              config: {{template: "{TYPES}"}}
        """,
    )
    code, _, report = run(project, capsys, "types")
    assert code == EXIT_OK, report["steps"][0].get("error")
    assert report["steps"][0]["row_count"] == 1
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    metadata = latest_metadata(instance, ["types", "every_type"])
    expected = duckdb.execute(TYPES.replace('\\"', '"')).fetchone()
    assert expected is not None
    first = metadata["facts"].value["first"]
    assert first["huge"] == expected[5] == 2**127 - 1
    assert first["nested"] == {"a": 1, "b": [1, 2]} and first["list"] == [1, 2, 3]
    assert first["blob"] == b"abc".hex() and first["at"] == "12:30:00"
    assert first["id"] == "00000000-0000-0000-0000-000000000001"
    # Parquet cannot store intervals or unions: they are stored as DuckDB's text, and said so.
    text = duckdb.execute("SELECT CAST(INTERVAL 14 MONTH + INTERVAL 3 DAY AS VARCHAR)").fetchone()
    assert text is not None and first["span"] == text[0] == "1 year 2 months 3 days"
    assert metadata["columns_as_text"].value == {
        "span": "month_day_nano_interval stored as text",
        "choice": "sparse_union<num: int32=0> stored as text",
    }
    assert "| 1 year 2 months 3 days |" in str(metadata["preview"].value)
    path = str(metadata["artifact_path"].value)
    assert duckdb.execute(f"SELECT huge, span FROM '{path}'").fetchone() == (2**127 - 1, text[0])


def test_two_columns_of_one_name_are_an_error_naming_the_step(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook(
        "dup.yaml",
        """
        playbook:
          id: dup
          name: Dup
          steps:
            - id: both
              type: query
              config:
                template: "SELECT a.*, b.* FROM (SELECT 1 AS id, 2 AS x) a, (SELECT 1 AS id) b"
        """,
    )
    code, _, report = run(project, capsys, "dup")
    assert code == EXIT_STEP_FAILED
    (step,) = report["steps"]
    assert step["status"] == "error"
    assert "step 'both'" in step["error"]
    assert "more than one column named 'id'" in step["error"]
    assert "AS" in step["error"]


def test_wide_decimals_keep_every_digit_as_128_bit_decimals_or_text() -> None:
    import pyarrow as pa

    from playbook_assets.core.result_tables import checked_result

    fits = [Decimal("1.5"), Decimal("-123.25"), None]
    too_wide = [Decimal("1" * 40), None, None]
    table = pa.table(
        {
            "fits": pa.array(fits, pa.decimal256(76, 38)),
            "too_wide": pa.array(too_wide, pa.decimal256(76, 0)),
        }
    )
    checked = checked_result(table)
    assert pa.types.is_decimal128(checked.table.schema.field("fits").type)
    assert checked.table.column("fits").to_pylist() == fits
    assert checked.table.column("too_wide").to_pylist() == ["1" * 40, None, None]
    assert checked.as_text == {"too_wide": "decimal256(76, 0) stored as text"}
    # DuckDB (transforms, checks, facts) reads the result.
    connection = duckdb.connect()
    connection.register("t", checked.table)
    assert connection.execute("SELECT sum(fits) FROM t").fetchone() == (Decimal("-121.75"),)
