"""``playbook test``: a passing test, a failing one with its row diff, fixtures from CSV and
Parquet, the built-in templates' own tests, and test files that are wrong (file:line)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from playbook_assets.app.cli import main
from tests.conftest import Project

PLAYBOOK = """
playbook:
  id: regions
  name: Regions
  parameters:
    - {name: min_arr, type: number, default: 100}
  steps:
    - id: accounts
      type: query
      config:
        template: "SELECT account_id, region, arr FROM analytics.accounts"
    - id: big
      type: filter
      config:
        input: "${steps.accounts}"
        condition: "arr >= 100"
    - id: by_region
      type: aggregate
      config:
        input: "${steps.big}"
        group_by: [region]
        metrics:
          - {name: accounts, expression: "COUNT(*)"}
          - {name: arr, expression: "SUM(arr)"}
    - id: deals
      type: search
      config: {object: deals, properties: [amount]}
  outputs:
    - {name: regions, source: "${steps.by_region}"}
    - name: totals
      type: aggregate
      source: "${steps.big}"
      metrics: [{name: arr, expression: "SUM(arr)"}, {name: average, expression: "AVG(arr)"}]
"""

# Expected by hand: arr >= 100 keeps a1 (150, EU), a2 (100, EU) and a4 (300, US).
PASSING = """
tests:
  - name: big accounts by region
    given:
      accounts:
        rows:
          - {account_id: a1, region: EU, arr: 150}
          - {account_id: a2, region: EU, arr: 100}
          - {account_id: a3, region: US, arr: 99.5}
          - {account_id: a4, region: US, arr: 300}
    expect:
      regions:
        rows:
          - {region: US, accounts: 1, arr: 300}
          - {region: EU, accounts: 2, arr: 250}
      totals:
        values: {arr: 550, average: 183.3333333333}
        tolerance: 0.0000001
      big:
        row_count: 3
"""


def write_tests(project: Project, text: str, name: str = "regions.tests.yaml") -> Path:
    path = project.playbooks_dir / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def run(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["test", *args, "--config", str(project.config_path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_passing_test(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.add_playbook("regions.yaml", PLAYBOOK)
    write_tests(project, PASSING)
    code, out, err = run(project, capsys, "regions")
    assert code == 0, out + err
    assert out.splitlines() == ["PASS  regions: big accounts by region", "1 passed, 0 failed"]


def test_a_failing_test_shows_each_difference(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("regions.yaml", PLAYBOOK)
    wrong = PASSING.replace(
        "{region: EU, accounts: 2, arr: 250}", "{region: EU, accounts: 2, arr: 260}"
    )
    wrong = wrong.replace("row_count: 3", "row_count: 4").replace("arr: 550", "arr: 551")
    path = write_tests(project, wrong)
    code, out, _ = run(project, capsys, "regions")
    assert code == 1
    shown = str(path.relative_to(project.root))
    assert out.splitlines() == [
        "FAIL  regions: big accounts by region",
        f"      {shown}:11: regions: rows differ (compared on region, accounts, arr): 1 "
        "expected row(s) not in the result, 1 row(s) of the result not expected (2 "
        "expected, 2 in the result)",
        "        - {region: 'EU', accounts: 2, arr: 260}",
        "        + {region: 'EU', accounts: 2, arr: 250.0}",
        f"      {shown}:15: totals: values differ: arr: expected 551, got 550.0",
        "        - {arr: 551}",
        "        + {arr: 550.0}",
        f"      {shown}:18: big: expected 4 rows, the result has 3",
        "0 passed, 1 failed",
    ]
    code = main(["test", "--json", "--config", str(project.config_path)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    (outcome,) = [t for t in report["tests"] if t["playbook_id"] == "regions"]
    assert outcome["status"] == "fail"
    first = outcome["failures"][0]
    assert (first["target"], first["missing"], first["unexpected"]) == (
        "regions",
        [{"region": "EU", "accounts": 2, "arr": 260}],
        [{"region": "EU", "accounts": 2, "arr": 250.0}],
    )
    # The templates' own tests pass beside it.
    assert report["summary"] == {"passed": 7, "failed": 1}


def test_rows_in_order(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.add_playbook("regions.yaml", PLAYBOOK)
    write_tests(
        project,
        """
        tests:
          - name: the rows in order
            given:
              accounts:
                rows:
                  - {account_id: a1, region: EU, arr: 150}
                  - {account_id: a2, region: EU, arr: 100}
                  - {account_id: a4, region: US, arr: 300}
            expect:
              big:
                ordered: true
                rows: [{account_id: a4}, {account_id: a1}]
        """,
    )
    code, out, _ = run(project, capsys, "regions")
    assert code == 1
    assert "rows differ (in this order, compared on account_id)" in out
    assert "        - {#: 1, account_id: 'a4'}" in out
    assert "        + {#: 1, account_id: 'a1'}" in out


def test_fixtures_from_csv_and_parquet(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("regions.yaml", PLAYBOOK)
    fixtures = project.playbooks_dir / "fixtures"
    fixtures.mkdir()
    (fixtures / "accounts.csv").write_text("account_id,region,arr\na1,EU,150\na2,US,50\n")
    pq.write_table(
        pa.table({"account_id": ["b1", "b2"], "region": ["EU", "EU"], "arr": [200.0, 300.0]}),
        fixtures / "accounts.parquet",
    )
    write_tests(
        project,
        """
        tests:
          - name: from a CSV file
            given: {accounts: {file: fixtures/accounts.csv, columns: {arr: number}}}
            expect: {regions: {rows: [{region: EU, accounts: 1, arr: 150}]}}
          - name: from a Parquet file
            given: {accounts: {file: fixtures/accounts.parquet}}
            expect: {totals: {values: {arr: 500, average: 250}}}
          - name: no rows at all
            given:
              accounts: {rows: [], columns: {account_id: string, region: string, arr: number}}
            expect: {regions: {row_count: 0}, totals: {values: {arr: null}}}
        """,
    )
    code, out, err = run(project, capsys, "regions")
    assert code == 0, out + err
    assert out.splitlines()[-1] == "3 passed, 0 failed"


def test_the_templates_tests_pass(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(project, capsys)
    assert code == 0, out + err
    assert out.splitlines()[-1] == "7 passed, 0 failed"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            PASSING.replace("    given:", "    givne:"),
            3,
            "unknown key 'givne'; did you mean 'given'?",
        ),
        (
            PASSING.replace("      accounts:\n        rows:", "      acounts:\n        rows:"),
            4,
            "given names unknown step 'acounts' of playbook 'regions'; did you mean 'accounts'?",
        ),
        (
            PASSING.replace(
                "      big:\n        row_count: 3", "      deals:\n        row_count: 3"
            ),
            2,
            "step 'deals' reads a source (crm, search) and a test runs offline",
        ),
        (
            PASSING.replace(
                "        rows:\n          - {account_id: a1",
                "        file: nothere.csv\n        rows:\n          - {account_id: a1",
            ),
            4,
            "give either 'rows' or 'file'",
        ),
        (
            PASSING.replace("row_count: 3", "rowcount: 3"),
            19,
            "unknown key 'rowcount'; did you mean 'row_count'?",
        ),
        (
            PASSING.replace("    given:", "    parameters: {min_ar: 5}\n    given:"),
            3,
            "has no parameter 'min_ar'",
        ),
        (
            PASSING.replace("arr: 99.5}", "arr: lots}"),
            4,
            "the rows given for step 'accounts' cannot be read",
        ),
        ("playbook: regoins\n" + PASSING, 1, "unknown playbook 'regoins'; did you mean 'regions'?"),
    ],
    ids=[
        "unknown-key",
        "unknown-step",
        "source-not-given",
        "rows-and-file",
        "unknown-expect-key",
        "unknown-parameter",
        "mixed-types",
        "unknown-playbook",
    ],
)
def test_bad_test_files_name_file_and_line(
    project: Project, capsys: pytest.CaptureFixture[str], text: str, line: int, message: str
) -> None:
    project.add_playbook("regions.yaml", PLAYBOOK)
    path = write_tests(project, text)
    code, out, err = run(project, capsys, "regions")
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {path.relative_to(project.root)}:{line}: "), err
    assert message in err


def test_tests_in_the_config_tests_folder(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("regions.yaml", PLAYBOOK)
    folder = project.config_path.parent / "tests"
    folder.mkdir()
    (folder / "anything.yaml").write_text("playbook: regions\n" + textwrap.dedent(PASSING).lstrip())
    code, out, _ = run(project, capsys, "regions")
    assert code == 0
    assert out.splitlines() == ["PASS  regions: big accounts by region", "1 passed, 0 failed"]


def test_a_playbook_without_tests_is_said(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.add_playbook("regions.yaml", PLAYBOOK)
    code, _, err = run(project, capsys, "regions")
    assert code == 2
    assert "no playbook tests found" in err
