"""Run reports in a real browser: the standalone HTML page and the ``run_report`` asset page of
the Dagster UI (``dagster dev`` on loopback), each in headless Chromium, checked for the chart
(its marks in the DOM, and drawn pixels where it stands on the screenshot) and a table value.

Playwright drives the system Chromium (``/usr/bin/chromium``, see tests/e2e/test_ui.py).
"""

from __future__ import annotations

import decimal
import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import duckdb
import pytest
from PIL import Image

from playbook_assets.app.cli import EXIT_OK, main
from tests.conftest import DemoFiles, Project
from tests.e2e.test_ui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    INSTANCE_SETTINGS,
    REPO_ROOT,
    _dev_env,
    dagster_dev,
)
from tests.report_pages import bar_titles, svg_of_data_uri

PLAYBOOK = "health_dashboard"
CHART = "Accounts by health status"
RGB = tuple[int, int, int]
BAR_COLOR: RGB = (0x4C, 0x78, 0xA8)  # the first series' color


def _run(project: Project, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(["run", PLAYBOOK, "--json", "--config", str(project.config_path)])
    report = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK, report
    return report


def _status_counts(demo: DemoFiles) -> dict[str, int]:
    with duckdb.connect(str(demo.warehouse), read_only=True) as connection:
        rows = connection.execute(
            "SELECT health_status, COUNT(*) FROM analytics.accounts GROUP BY 1"
        ).fetchall()
    return dict(rows)


def _drawn(png: bytes) -> tuple[float, int]:
    """The share of pixels that are not the white background, and how many have the bars'
    color, in a screenshot."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    # An RGB image's colors are (r, g, b) tuples.
    colors = cast(Sequence[tuple[int, RGB]], image.getcolors(image.width * image.height) or [])
    inked = sum(count for count, pixel in colors if min(pixel) < 235)
    bars = sum(
        count
        for count, pixel in colors
        if all(abs(a - b) <= 12 for a, b in zip(pixel, BAR_COLOR, strict=True))
    )
    return inked / (image.width * image.height), bars


def _browser(playwright: Any, profile: Path) -> Any:
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: run scripts/install-test-services"
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 1000},
    )


def test_the_html_report_renders_in_chromium(
    project: Project, capsys: pytest.CaptureFixture[str], demo_files: DemoFiles, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    report = _run(project, capsys)
    page_path = project.artifacts_dir / f"{report['run_id']}.html"
    counts = _status_counts(demo_files)
    accounts = next(step for step in report["steps"] if step["step_id"] == "accounts")
    total_arr = report["outputs"]["summary"]["values"]["total_arr"]
    screenshot = tmp_path / "html-report.png"

    with sync_playwright() as playwright:
        browser = _browser(playwright, tmp_path / "profile")
        try:
            page = browser.new_page()
            # Offline: any request beyond the file itself would fail the test.
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.as_uri(), wait_until="load")
            chart = page.locator("figure.chart").filter(
                has=page.locator("figcaption", has_text=CHART)
            )
            expect(chart.locator("svg g.bar rect")).to_have_count(len(counts))
            for status, count in counts.items():
                expect(chart.locator("svg title", has_text=f"{status}: {count:,}")).to_have_count(1)
            # Table values: the step's rows and the exact total beside the short one.
            steps = page.locator("#steps table")
            expect(
                steps.get_by_role("cell", name=f"{accounts['row_count']:,}", exact=True)
            ).to_be_visible()
            summary = page.locator('[data-output="summary"] table')
            exact = f"{decimal.Decimal(str(total_arr)):,}"
            expect(summary.get_by_role("cell", name=exact, exact=True)).to_be_visible()

            chart_png = chart.locator("svg").screenshot()
            page.screenshot(path=str(screenshot), full_page=True)
            pdf = page.pdf()  # printable
        finally:
            browser.close()

    assert requests == [page_path.as_uri()]
    share, bar_pixels = _drawn(chart_png)
    assert share > 0.05, f"the chart area is blank ({share:.1%} drawn)"
    assert bar_pixels > 2000, f"only {bar_pixels} pixels of the bars' color"
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    print(f"HTML report screenshot: {screenshot}")  # noqa: T201


def test_the_run_report_asset_page_shows_the_report_with_its_charts(
    project: Project, capsys: pytest.CaptureFixture[str], demo_files: DemoFiles, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    shutil.copyfile(INSTANCE_SETTINGS, project.dagster_home / "dagster.yaml")
    report = _run(project, capsys)
    counts = _status_counts(demo_files)
    total_arr = report["outputs"]["summary"]["values"]["total_arr"]
    screenshot = tmp_path / "run-report-asset.png"

    with (
        dagster_dev(
            project.dagster_home, REPO_ROOT, _dev_env(project), tmp_path / "dagster-dev.log"
        ) as dev,
        sync_playwright() as playwright,
    ):
        browser = _browser(playwright, tmp_path / "profile")
        try:
            page = browser.new_page()
            page.goto(f"{dev.url}/assets/{PLAYBOOK}/run_report", wait_until="domcontentloaded")
            row = page.get_by_role("row").filter(has=page.get_by_text("report", exact=True))
            row.get_by_text("[Show Markdown]").click(timeout=60_000)
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_role("heading", name="Health Score Dashboard")).to_be_visible()
            images = dialog.locator('img[src^="data:image/svg+xml"]')
            expect(images).to_have_count(2)
            image = dialog.get_by_role("img", name=CHART)
            image.scroll_into_view_if_needed()
            expect(image).to_be_visible()
            assert image.evaluate("img => img.complete && img.naturalWidth") > 0
            exact = f"{decimal.Decimal(str(total_arr)):,}"
            expect(dialog.get_by_role("cell", name=exact, exact=True)).to_be_visible()
            chart_png = image.screenshot()
            page.screenshot(path=str(screenshot))
            source = str(image.get_attribute("src"))
        finally:
            browser.close()

    assert bar_titles(svg_of_data_uri(source)) == {k: f"{v:,}" for k, v in counts.items()}
    share, bar_pixels = _drawn(chart_png)
    assert share > 0.05, f"the chart area is blank ({share:.1%} drawn)"
    assert bar_pixels > 2000, f"only {bar_pixels} pixels of the bars' color"
    print(f"run_report asset screenshot: {screenshot}")  # noqa: T201
