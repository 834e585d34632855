"""Run reports for people: the HTML page and the Markdown of the ``run_report`` asset hold the
report JSON's values and the run's data (each expected value computed here from the JSON, the
stored Parquet files or DuckDB directly), the page is self-contained, a stored run renders on
its own, and charts are validated with file:line errors."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playbook_assets.app.cli import EXIT_INVALID, EXIT_OK, EXIT_STEP_FAILED, main
from playbook_assets.core.catalog import load_playbook_file
from playbook_assets.core.config import load_config_file
from playbook_assets.core.errors import PlaybookValidationError
from playbook_assets.core.report_render.charts import Chart
from playbook_assets.core.report_render.content import report_view
from playbook_assets.core.report_render.data import chart_data
from playbook_assets.core.report_render.formatting import cell
from playbook_assets.core.report_render.html import html_report
from playbook_assets.core.report_render.stored import stored_playbook, stored_tables
from playbook_assets.core.run_records import load_run
from tests.conftest import DemoFiles, Project
from tests.report_pages import (
    SVG_NS,
    bar_titles,
    block,
    figure,
    html_table,
    markdown_images,
    markdown_sections,
    markdown_table,
    marks,
    parse_html,
    section,
    svg_of_data_uri,
    text_of,
)

D = decimal.Decimal


def run(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["run", *args, "--json", "--config", str(project.config_path)])
    captured = capsys.readouterr()
    assert code in (EXIT_OK, EXIT_STEP_FAILED), captured.err
    return json.loads(captured.out)


def report_command(
    project: Project, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    code = main(["report", *args, "--config", str(project.config_path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def html_of(project: Project, report: Mapping[str, Any]) -> str:
    return (project.artifacts_dir / f"{report['run_id']}.html").read_text(encoding="utf-8")


def money(value: Any) -> str:
    """A money amount in full, as a person writes it: $1,234 or $1,234.50."""
    number = D(str(value))
    places = D(1) if number == number.to_integral_value() else D("0.01")
    text = f"{abs(number).quantize(places, decimal.ROUND_HALF_UP):,}"
    return f"{'-' if number < 0 else ''}${text}"


def short_money(value: Any) -> str:
    """$3.2M, $156K, $950."""
    number = float(value)
    if abs(number) >= 1_000_000_000:
        return f"${number / 1_000_000_000:.1f}B"
    if abs(number) >= 1_000_000:
        return f"${number / 1_000_000:.1f}M"
    if abs(number) >= 1_000:
        return f"${number / 1_000:.0f}K"
    return f"${number:,.0f}"


def exact(value: Any) -> D:
    return D(str(value))


def warehouse(demo: DemoFiles, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(demo.warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


# ---------------------------------------------------------------------------------------------
# The HTML page and the Markdown hold the run's values


@pytest.fixture
def dashboard(project: Project, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """A run of health_dashboard (its report)."""
    report = run(project, capsys, "health_dashboard")
    assert report["status"] == "success"
    return report


def test_the_html_report_holds_the_report_json_values(
    project: Project, dashboard: dict[str, Any]
) -> None:
    report = dashboard
    text = html_of(project, report)
    page = parse_html(text)
    manifest = load_run(project.artifacts_dir, report["run_id"]).manifest
    assert manifest["report_html"] == {
        "path": f"{report['run_id']}.html",
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }

    assert text_of(next(page.iter("h1"))) == "Health Score Dashboard"
    # Steps: status, rows and time of each, as the JSON has them.
    headers, rows = html_table(next(section(page, "steps").iter("table")))
    assert headers[:5] == ["Step", "Type", "Status", "Rows", "Time"]
    assert len(rows) == len(report["steps"])
    for row, step in zip(rows, report["steps"], strict=True):
        assert row[0].text == f"{step['name']} ({step['step_id']})"
        assert row[2].text == step["status"] == "success"
        assert row[3].text == f"{step['row_count']:,}"
        assert row[3].attributes["data-value"] == str(step["row_count"])
        assert exact(row[4].attributes["data-value"]) == exact(step["execution_time_ms"])
        assert row[5].text == "no"

    # The aggregate output: a short value, its exact digits beside, the exact value underneath.
    values = report["outputs"]["summary"]["values"]
    headers, rows = html_table(next(block(page, "summary").iter("table")))
    assert headers == ["Metric", "Value", "Exact"]
    shown = {row[0].text: row for row in rows}
    assert list(shown) == list(values)
    for name, value in values.items():
        assert exact(shown[name][1].attributes["data-value"]) == exact(value)
        assert shown[name][2].text == f"{exact(value):,}"
    assert shown["total_accounts"][1].text == f"{values['total_accounts']:,}"
    assert "title" not in shown["total_accounts"][1].attributes  # shown in full
    assert shown["total_arr"][1].text == short_money(values["total_arr"])
    assert shown["total_arr"][1].attributes["title"] == str(exact(values["total_arr"]))
    rounded = exact(values["avg_health_score"]).quantize(D("0.01"), decimal.ROUND_HALF_UP)
    assert shown["avg_health_score"][1].text == str(rounded)

    headers, rows = html_table(next(section(page, "parameters").iter("table")))
    assert [[c.text for c in row] for row in rows] == [["min_arr", "$50,000"]]
    insights = [text_of(li) for li in section(page, "insights").iter("li")]
    assert insights == report["insights"]


def test_the_html_report_shows_the_first_rows_of_each_data_output_as_stored(
    project: Project, dashboard: dict[str, Any]
) -> None:
    report = dashboard
    page = parse_html(html_of(project, report))
    manifest = load_run(project.artifacts_dir, report["run_id"]).manifest
    (artifact,) = [
        a for a in manifest["artifacts"] if a["asset"] == "health_dashboard/accounts_to_review"
    ]
    stored = pq.read_table(artifact["path"])
    assert stored.num_rows > 10
    expected = stored.slice(0, 10).to_pylist()

    part = block(page, "accounts_to_review")
    assert f"the first 10 of {stored.num_rows:,} rows" in text_of(part)
    headers, rows = html_table(next(part.iter("table")))
    assert headers == stored.column_names
    assert len(rows) == 10
    for row, record in zip(rows, expected, strict=True):
        cells = dict(zip(headers, row, strict=True))
        assert cells["account_id"].text == str(record["account_id"])  # an id: no separators
        assert cells["account_name"].text == record["account_name"]
        assert cells["health_score"].text == f"{record['health_score']:,}"
        assert cells["arr"].text == money(record["arr"])
        assert exact(cells["arr"].attributes["data-value"]) == exact(record["arr"])
        assert cells["high_value"].text == ("yes" if record["high_value"] else "no")


def test_the_charts_show_the_data_computed_on_duckdb(
    project: Project, demo_files: DemoFiles, dashboard: dict[str, Any]
) -> None:
    page = parse_html(html_of(project, dashboard))
    counts = dict(
        warehouse(demo_files, "SELECT health_status, COUNT(*) FROM analytics.accounts GROUP BY 1")
    )
    chart = figure(page, "Accounts by health status")
    (svg,) = chart.iter("svg")
    assert len(marks(svg)) == len(counts) == 4
    titles = bar_titles(svg)
    assert {label: int(value.replace(",", "")) for label, value in titles.items()} == counts
    # Largest first (sort: y_desc).
    assert list(titles) == sorted(counts, key=lambda status: -counts[status])

    at_risk = dict(
        warehouse(
            demo_files,
            "SELECT segment, SUM(arr) FROM analytics.accounts"
            " WHERE health_status = 'At-Risk' GROUP BY 1",
        )
    )
    titles = bar_titles(next(figure(page, "At-risk ARR by segment").iter("svg")))
    assert titles == {segment: money(total) for segment, total in at_risk.items()}


def test_the_run_report_asset_shows_the_markdown_report(
    project: Project, capsys: pytest.CaptureFixture[str], demo_files: DemoFiles
) -> None:
    report = run(project, capsys, "health_dashboard")
    instance = dg.DagsterInstance.get()
    event = instance.get_latest_materialization_event(
        dg.AssetKey(["health_dashboard", "run_report"])
    )
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["run_id"].value == report["run_id"]
    assert metadata["status"].value == "success"
    assert metadata["parameters"].value == {"min_arr": 50000}
    markdown = metadata["report"]
    assert isinstance(markdown, dg.MarkdownMetadataValue)
    text = str(markdown.value)
    # Data outputs keep Dagster's table metadata.
    output = instance.get_latest_materialization_event(
        dg.AssetKey(["health_dashboard", "accounts_to_review"])
    )
    assert output is not None and output.asset_materialization is not None
    output_metadata = output.asset_materialization.metadata
    assert "dagster/column_schema" in output_metadata
    assert (
        output_metadata["dagster/row_count"].value
        == report["outputs"]["accounts_to_review"]["row_count"]
    )

    # The same Markdown renders again from the stored run alone.
    code, out, _ = report_command(project, capsys, report["run_id"], "--format", "md")
    assert code == EXIT_OK
    assert out == text

    sections = markdown_sections(text)
    headers, rows = markdown_table(sections["Steps"])
    assert headers[:4] == ["Step", "Type", "Status", "Rows"]
    for row, step in zip(rows, report["steps"], strict=True):
        assert row[2] == step["status"]
        assert row[3] == f"{step['row_count']:,}"
    headers, rows = markdown_table(sections["summary"])
    values = report["outputs"]["summary"]["values"]
    assert {row[0]: row[2] for row in rows} == {k: f"{exact(v):,}" for k, v in values.items()}
    assert markdown_table(sections["Parameters"])[1] == [["min_arr", "$50,000"]]

    images = dict(markdown_images(text))
    counts = dict(
        warehouse(demo_files, "SELECT health_status, COUNT(*) FROM analytics.accounts GROUP BY 1")
    )
    svg = svg_of_data_uri(images["Accounts by health status"])
    assert bar_titles(svg) == {status: f"{n:,}" for status, n in counts.items()}
    assert len(marks(ET.fromstring(svg))) == 4


# ---------------------------------------------------------------------------------------------
# Self-contained, and from the stored run alone

_URL_ATTRIBUTES = {"src", "href", "xlink:href", "action", "poster", "srcset", "data", "formaction"}


def test_the_html_report_is_self_contained(project: Project, dashboard: dict[str, Any]) -> None:
    text = html_of(project, dashboard)
    page = parse_html(text)
    tags = {element.tag.split("}")[-1].lower() for element in page.iter()}
    assert not tags & {"script", "link", "iframe", "object", "embed", "base", "frame"}
    for element in page.iter():
        for name, value in element.attrib.items():
            if name.lower() in _URL_ATTRIBUTES:
                assert value.startswith(("#", "data:")), (element.tag, name, value)
            assert not name.lower().startswith("on"), (element.tag, name)
    for style in page.iter("style"):
        css = "".join(style.itertext())
        assert "@import" not in css and "url(" not in css
    # No address anywhere in the page beyond the SVG namespace names.
    namespaces = ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink")
    remainder = text
    for name in namespaces:
        remainder = remainder.replace(name, "")
    assert "http:" not in remainder and "https:" not in remainder and "//" not in remainder


def test_a_stored_run_renders_from_its_record_alone(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run(project, capsys, "presales_analysis")
    run_id = report["run_id"]
    written = html_of(project, report)
    # Nothing but the artifacts folder: no Dagster instance, no playbook file.
    shutil.rmtree(project.dagster_home)
    record = load_run(project.artifacts_dir, run_id)
    spec = stored_playbook(record)
    again = html_report(
        report_view(report, spec, stored_tables(spec, record.manifest).data(report)), run_id
    )
    assert again == written

    code, out, _ = report_command(project, capsys, run_id)
    assert code == EXIT_OK and out == written
    code, out, _ = report_command(project, capsys, run_id, "--format", "json")
    assert code == EXIT_OK
    assert out == (project.artifacts_dir / f"{run_id}.json").read_text(encoding="utf-8")
    target = project.root / "out" / "report.md"
    code, _, err = report_command(
        project, capsys, run_id, "--format", "md", "--output", str(target)
    )
    assert code == EXIT_OK and str(target) in err
    markdown = target.read_text(encoding="utf-8")
    assert markdown.startswith("# Presales Opportunity Analysis\n")
    images = markdown_images(markdown)
    assert [alt for alt, _ in images] == [
        "Open pipeline by deal stage",
        "Open pipeline by account health",
    ]
    assert all(source.startswith("data:image/svg+xml;base64,") for _, source in images)


def test_a_report_is_never_drawn_from_a_changed_result_file(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run(project, capsys, "presales_analysis")
    manifest = load_run(project.artifacts_dir, report["run_id"]).manifest
    (artifact,) = [a for a in manifest["artifacts"] if a["asset"] == "presales_analysis/open_deals"]
    with open(artifact["path"], "ab") as handle:
        handle.write(b"\0")

    code, out, err = report_command(project, capsys, report["run_id"], "--format", "md")

    assert code == EXIT_INVALID and out == ""
    assert f"{artifact['path']} changed since the run" in err
    assert f"playbook artifacts verify {report['run_id']}" in err


def test_an_unknown_run_id_is_an_error_naming_the_latest_runs(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run(project, capsys, "expansion_candidates")
    code, _, err = report_command(project, capsys, "run_20000101_000000_abcdef")
    assert code == EXIT_INVALID
    assert "no stored run 'run_20000101_000000_abcdef'" in err and report["run_id"] in err


FAILING = """
playbook:
  id: failing
  name: Failing
  steps:
    - id: accounts
      type: query
      config:
        template: "SELECT segment, arr FROM analytics.accounts"
    - id: missing
      type: query
      config:
        template: "SELECT segment, arr FROM analytics.no_such_table"
  outputs:
    - name: all_accounts
      source: "${steps.accounts}"
  charts:
    - {type: bar, title: ARR by segment, data: "${steps.accounts}", x: segment, y: arr,
       aggregate: sum}
    - {type: bar, title: Missing by segment, data: "${steps.missing}", x: segment, y: arr,
       aggregate: sum}
"""


def test_a_failed_run_gets_its_html_report_with_the_error_and_what_it_could_draw(
    project: Project, capsys: pytest.CaptureFixture[str], demo_files: DemoFiles
) -> None:
    project.add_playbook("failing.yaml", FAILING)
    report = run(project, capsys, "failing")
    assert report["status"] == "failed"
    page = parse_html(html_of(project, report))

    assert text_of(next(e for e in page.iter("span") if "status" in e.get("class", ""))) == (
        "failed"
    )
    _, rows = html_table(next(section(page, "steps").iter("table")))
    by_step = {row[0].text: row for row in rows}
    (error,) = [s["error"] for s in report["steps"] if s["step_id"] == "missing"]
    assert by_step["missing"][2].text == "error"
    assert by_step["missing"][6].text == " ".join(error.split())
    assert "no_such_table" in error
    drawn = figure(page, "ARR by segment")
    totals = dict(
        warehouse(demo_files, "SELECT segment, SUM(arr) FROM analytics.accounts GROUP BY 1")
    )
    assert bar_titles(next(drawn.iter("svg"))) == {k: money(v) for k, v in totals.items()}
    missing = figure(page, "Missing by segment")
    assert not list(missing.iter("svg"))
    assert "Not drawn: step 'missing' failed" in text_of(missing)


DEFAULT_CHART = """
playbook:
  id: by_segment
  name: ARR by segment
  steps:
    - id: accounts
      type: query
      config:
        template: "SELECT segment, health_status, arr FROM analytics.accounts"
    - id: segments
      name: Accounts by Segment
      type: aggregate
      config:
        input: "${steps.accounts}"
        group_by: [segment]
        metrics:
          - {name: total_arr, expression: "SUM(arr)"}
          - {name: accounts, expression: "COUNT(*)"}
    - id: overall
      type: aggregate
      config:
        input: "${steps.accounts}"
        metrics:
          - {name: total_arr, expression: "SUM(arr)"}
"""


def test_a_grouped_aggregate_without_a_chart_gets_a_bar_chart_of_its_first_metric(
    project: Project, capsys: pytest.CaptureFixture[str], demo_files: DemoFiles
) -> None:
    project.add_playbook("by_segment.yaml", DEFAULT_CHART)
    report = run(project, capsys, "by_segment")
    page = parse_html(html_of(project, report))
    figures = [text_of(next(f.iter("figcaption"))) for f in page.iter("figure")]
    assert figures == ["Accounts by Segment"]  # not the ungrouped one
    totals = dict(
        warehouse(demo_files, "SELECT segment, SUM(arr) FROM analytics.accounts GROUP BY 1")
    )
    titles = bar_titles(next(figure(page, "Accounts by Segment").iter("svg")))
    assert titles == {segment: money(total) for segment, total in totals.items()}
    assert list(titles) == sorted(totals, key=lambda segment: -totals[segment])


# ---------------------------------------------------------------------------------------------
# Chart points, exact


def _deals() -> pa.Table:
    return pa.table(
        {
            "stage": ["won", "open", "won", "lost", None, "open", "open"],
            "amount": pa.array(
                [D("10.10"), D("0.20"), D("5.05"), None, D("7.00"), D("1.10"), D("2.25")],
                pa.decimal128(12, 2),
            ),
            "owner": ["ann", "bob", "bob", "ann", "ann", "ann", "bob"],
            "closed": [
                dt.date(2026, 1, 3),
                dt.date(2026, 1, 30),
                dt.date(2026, 2, 2),
                None,
                dt.date(2026, 3, 9),
                dt.date(2026, 3, 31),
                dt.date(2026, 3, 1),
            ],
        }
    )


def _sums(rows: list[dict[str, Any]], key: str) -> dict[Any, D | None]:
    totals: dict[Any, D | None] = {}
    for row in rows:
        amount = row["amount"]
        seen = totals.get(row[key])
        totals[row[key]] = amount if seen is None else seen + (amount or D(0))
    return totals


def test_an_aggregated_bar_chart_sums_exactly_largest_first_with_empty_groups_shown() -> None:
    table = _deals()
    data = chart_data(
        Chart("bar", "deals", "t", x="stage", y=("amount",), aggregate="sum", sort="y_desc"),
        table,
    )
    expected = _sums(table.to_pylist(), "stage")
    assert data.error is None
    by_stage = dict(zip(data.categories, data.series[0].values, strict=True))
    assert {k: None if v is None else exact(v) for k, v in by_stage.items()} == expected
    assert data.categories == ("won", None, "open", "lost")  # NULL sums last
    assert data.total == 4 and data.notes == ()


def test_a_limited_chart_says_how_many_it_left_out() -> None:
    data = chart_data(
        Chart("bar", "deals", "t", x="stage", aggregate="count", sort="y_desc", limit=2), _deals()
    )
    assert data.categories == ("open", "won") and data.series[0].values == (3, 2)
    assert data.notes == ("The largest 2 of 4 bars.",)


def test_a_series_chart_has_a_value_per_category_and_series() -> None:
    table = _deals()
    data = chart_data(
        Chart(
            "bar", "deals", "t", x="owner", y=("amount",), series="stage", aggregate="sum", sort="x"
        ),
        table,
    )
    assert data.categories == ("ann", "bob")
    found = {
        (owner, series.name): value
        for series in data.series
        for owner, value in zip(data.categories, series.values, strict=True)
        if value is not None
    }
    expected: dict[tuple[str, str], D] = {}
    for row in table.to_pylist():
        if row["amount"] is not None:
            key = (row["owner"], row["stage"] or "(empty)")
            expected[key] = expected.get(key, D(0)) + row["amount"]
    assert {key: exact(value) for key, value in found.items()} == expected


def test_a_monthly_line_leaves_out_rows_without_a_date_and_says_so() -> None:
    table = _deals()
    data = chart_data(
        Chart(
            "line",
            "deals",
            "t",
            x="closed",
            y=("amount",),
            aggregate="sum",
            time_unit="month",
            sort="x",
        ),
        table,
    )
    monthly: dict[str, D] = {}
    for row in table.to_pylist():
        if row["closed"] is not None and row["amount"] is not None:
            month = row["closed"].replace(day=1).isoformat()
            monthly[month] = monthly.get(month, D(0)) + row["amount"]
    assert dict(zip(data.categories, map(exact, data.series[0].values), strict=True)) == monthly
    assert data.notes == ("1 row without closed left out.",)


def test_a_chart_the_result_cannot_give_says_why() -> None:
    table = _deals()
    not_numeric = chart_data(Chart("bar", "deals", "t", x="stage", y=("owner",)), table)
    assert (
        not_numeric.error is not None and "'owner' holds string, not numbers" in not_numeric.error
    )
    unknown = chart_data(Chart("bar", "deals", "t", x="stag", y=("amount",)), table)
    assert unknown.error is not None and "did you mean 'stage'" in unknown.error
    repeated = chart_data(
        Chart("bar", "deals", "t", x="owner", y=("amount",), series="stage"), table
    )
    assert repeated.error is not None and "add 'aggregate: sum'" in repeated.error


@pytest.mark.parametrize(
    ("value", "name", "kind", "text", "rounded"),
    [
        (1234.5, "amount", "float", "$1,234.50", False),
        (156000, "arr", "integer", "$156,000", False),
        (
            "12345678901234567890.123",
            "total_arr",
            "decimal",
            "$12,345,678,901,234,567,890.12",
            True,
        ),
        (0.9523, "seat_utilization", "float", "95.2%", True),
        (-0.2, "usage_change", "float", "-20%", True),
        (1861, "accounts", "integer", "1,861", False),
        (68.44645390070922, "avg_health_score", "float", "68.45", True),
        (0.004217, "ratio", "float", "0.00422", True),
    ],
)
def test_numbers_read_for_people_and_keep_their_exact_value(
    value: Any, name: str, kind: Any, text: str, rounded: bool
) -> None:
    shown = cell(value, name, kind)
    assert (shown.text, shown.rounded, shown.numeric) == (text, rounded, True)
    assert shown.exact is not None and D(shown.exact) == D(str(value))


def test_identifiers_and_missing_values_read_as_they_are() -> None:
    assert cell(1001061, "account_id", "integer") == cell(1001061, "AccountId", "integer")
    assert cell(1001061, "account_id", "integer").text == "1001061"
    assert cell(None, "arr", "float").text == "—"
    assert cell(True, "needs_attention", "boolean").text == "yes"


# ---------------------------------------------------------------------------------------------
# Validation: charts are checked like the rest of the playbook

CHARTS = """
playbook:
  id: charted
  name: Charted
  steps:
    - id: accounts
      type: query
      config:
        template: "SELECT * FROM analytics.accounts"
    - id: by_segment
      type: aggregate
      config:
        input: "${steps.accounts}"
        group_by: [segment]
        metrics:
          - {name: accounts, expression: "COUNT(*)"}
          - {name: total_arr, expression: "SUM(arr)"}
  charts:
    - type: bar
      title: ARR by segment
      data: "${steps.by_segment}"
      x: segment
      y: [total_arr, accounts]
"""


def chart_error(project: Project, text: str) -> tuple[str, list[str]]:
    path = project.add_playbook("charted.yaml", text)
    with pytest.raises(PlaybookValidationError) as info:
        load_playbook_file(path, load_config_file(project.config_path))
    return str(info.value), textwrap.dedent(text).lstrip().splitlines()


def line_of(lines: list[str], needle: str) -> int:
    (index,) = [i for i, line in enumerate(lines) if needle in line]
    return index + 1


def test_valid_charts_load(project: Project) -> None:
    path = project.add_playbook("charted.yaml", CHARTS)
    loaded = load_playbook_file(path, load_config_file(project.config_path))
    (chart,) = loaded.spec.charts
    assert chart.y_columns == ["total_arr", "accounts"]


def test_a_chart_of_an_unknown_step_names_file_line_and_the_closest_step(project: Project) -> None:
    message, lines = chart_error(
        project, CHARTS.replace("${steps.by_segment}", "${steps.by_segment_}")
    )
    line = line_of(lines, "data:")
    assert message.startswith(f"config/playbooks/charted.yaml:{line}: field 'charts.data'")
    assert "unknown step 'by_segment_'" in message and "did you mean 'by_segment'?" in message


def test_a_chart_naming_an_unknown_column_names_its_line(project: Project) -> None:
    message, lines = chart_error(project, CHARTS.replace("x: segment", "x: segmnt"))
    assert message.startswith(f"config/playbooks/charted.yaml:{line_of(lines, 'x: segmnt')}:")
    assert "unknown column 'segmnt' of step 'by_segment'" in message
    assert "did you mean 'segment'?" in message
    message, lines = chart_error(
        project,
        CHARTS.replace("y: [total_arr, accounts]", "y:\n        - total_arr\n        - acounts"),
    )
    assert message.startswith(f"config/playbooks/charted.yaml:{line_of(lines, '- acounts')}:")
    assert "did you mean 'accounts'?" in message


@pytest.mark.parametrize(
    ("change", "needle", "expected"),
    [
        (("type: bar", "type: pie"), "type: pie", "'pie' is not allowed here"),
        (("      title: ARR", "      titel: ARR"), "titel:", "did you mean 'title'?"),
        (
            ("x: segment", "x: segment\n      columns: [segment]"),
            "- type: bar",
            "'columns' is for table charts",
        ),
        (("type: bar", "type: table"), "- type: table", "a table chart takes 'columns', not x, y"),
        (
            ("x: segment", "x: segment\n      time_unit: month"),
            "- type: bar",
            "time_unit groups rows",
        ),
        (
            ("y: [total_arr, accounts]", "y: total_arr\n      aggregate: sum\n      sort: none"),
            "- type: bar",
            "aggregated groups have no row order",
        ),
        (("${steps.by_segment}", "${steps.by_segment.segment}"), "data:", "a whole step result"),
        (
            ("y: [total_arr, accounts]", "series: segment"),
            "- type: bar",
            "needs 'y' (or aggregate: count)",
        ),
    ],
)
def test_a_malformed_chart_is_an_error_at_its_line(
    project: Project, change: tuple[str, str], needle: str, expected: str
) -> None:
    message, lines = chart_error(project, CHARTS.replace(*change))
    assert message.startswith(f"config/playbooks/charted.yaml:{line_of(lines, needle)}:"), message
    assert expected in message


def test_a_single_run_backfill_writes_each_partitions_own_page(project: Project) -> None:
    from playbook_assets.app.runner import execute_playbook
    from playbook_assets.core.catalog import load_catalog
    from playbook_assets.core.run_records import iter_runs
    from playbook_assets.dagster_adapter.factory import build_definitions
    from tests.integration.test_operations import BACKFILLED, BACKFILLED_OUTPUTS, MONTHS, playbook

    partitions = (
        "partitions: {type: monthly, start: 2026-01-01, end_offset: 12, backfill: single_run}"
    )
    project.add_playbook(
        "ranged.yaml", playbook("ranged", partitions, BACKFILLED, BACKFILLED_OUTPUTS)
    )
    config = load_config_file(project.config_path)
    defs = build_definitions(load_catalog(config, []), config)
    instance = dg.DagsterInstance.from_config(str(project.dagster_home))
    result = execute_playbook(
        defs,
        "ranged",
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": MONTHS[0],
            "dagster/asset_partition_range_end": MONTHS[-1],
        },
    )
    assert result.success
    records = {r.manifest["partition"]: r for r in iter_runs(config.artifacts_dir)}
    assert sorted(records) == list(MONTHS)
    markdown = {
        str(event.partition): str(event.materialization.metadata["report"].value)
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(["ranged", "run_report"])
    }
    assert sorted(markdown) == list(MONTHS)
    for month, record in records.items():
        page = parse_html((config.artifacts_dir / f"{record.run_id}.html").read_text())
        facts = dict(
            zip(
                (text_of(e) for e in page.iter("dt")),
                (text_of(e) for e in page.iter("dd")),
                strict=True,
            )
        )
        assert facts["Partition"] == month
        # The default chart of by_segment, from this partition's rows alone.
        (artifact,) = [a for a in record.manifest["artifacts"] if a["asset"] == "ranged/joined"]
        rows = pq.read_table(artifact["path"]).to_pylist()
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["segment"]] = counts.get(row["segment"], 0) + 1
        titles = bar_titles(next(figure(page, "by_segment").iter("svg")))
        assert titles == {segment: f"{n:,}" for segment, n in counts.items()}
        svg = svg_of_data_uri(dict(markdown_images(markdown[month]))["by_segment"])
        assert bar_titles(svg) == titles


def test_each_series_reads_in_its_own_columns_format() -> None:
    from playbook_assets.core.report_render.svg import chart_svg

    table = pa.table(
        {
            "segment": ["smb", "enterprise"],
            "total_arr": pa.array([D("1250.50"), D("980000")], pa.decimal128(12, 2)),
            "accounts": [3, 12],
        }
    )
    data = chart_data(
        Chart("bar", "s", "Two measures", x="segment", y=("total_arr", "accounts")), table
    )
    svg = ET.fromstring(chart_svg(data, "c"))
    titles: dict[str, list[str]] = {}
    for group in svg.iter(f"{{{SVG_NS}}}g"):
        classes = group.get("class", "").split()
        serie = next((c for c in classes if c.startswith("serie-")), None)
        if serie is not None and "series" in classes:
            titles.setdefault(serie, []).extend(
                str(title.text) for title in group.iter(f"{{{SVG_NS}}}title") if title.text
            )
    assert titles == {
        "serie-0": ["smb: $1,250.50", "enterprise: $980,000"],
        "serie-1": ["smb: 3", "enterprise: 12"],
    }
