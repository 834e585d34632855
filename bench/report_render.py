"""Benchmark: what rendering a run report costs next to the run (demo data, scale 1).

One fresh worker process (temporary DAGSTER_HOME with the project's settings) runs each
built-in template through ``playbook_assets.app.runner.run_playbook`` (what ``playbook run`` does)
once to warm up, then N times. After each run it renders that run's report again, timed,
exactly as the playbook's op does at the end of a run: the report's tables taken from the
step results (read back from the run's Parquet files beforehand, untimed), the charts drawn,
the Markdown and the HTML page written. The baseline is the run itself, measured in the same
loop (its time includes the op's own rendering, so the ratio is the share of the run).

A second figure is the first render in a fresh process (the product's modules imported
beforehand, as the op has them): it pays for pygal's import and the page template, once per
run process.

``python -m bench.report_render --libraries`` also times the charting libraries that were
considered, when they are installed (``uv pip install --python .venv/bin/python altair
vl-convert-python matplotlib``; not project dependencies): the first bar chart in a fresh
process, then the median of later ones.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    Options,
    Row,
    dagster_home,
    demo_data_dir,
    median,
    run_child,
    write_config,
    write_result,
)
from bench.runs import template_ids

TARGET_SHARE = 0.10
BENCHMARK = "report rendering"


def _render(spec: Any, report: dict[str, Any], tables: dict[str, Any]) -> tuple[str, str]:
    """The op's rendering of a run's report: Markdown and HTML."""
    from playbook_assets.core.report_render.content import report_view
    from playbook_assets.core.report_render.data import ReportTables
    from playbook_assets.core.report_render.html import html_report
    from playbook_assets.core.report_render.markdown import markdown_report

    collected = ReportTables(spec)
    for name, table in tables.items():
        collected.add(name, table)
    view = report_view(report, spec, collected.data(report))
    return markdown_report(view), html_report(view, report["run_id"])


def _tables(spec: Any, artifacts_dir: Path, run_id: str) -> dict[str, Any]:
    """The results of a stored run that its report reads."""
    import pyarrow.parquet as pq

    from playbook_assets.core.report_render.data import ReportTables
    from playbook_assets.core.run_records import load_run

    needed = ReportTables(spec).steps
    manifest = load_run(artifacts_dir, run_id).manifest
    tables = {}
    for artifact in manifest["artifacts"]:
        name = str(artifact["asset"]).split("/", 1)[1]
        if name in needed:
            tables[name] = pq.read_table(artifact["path"])
    return tables


def _worker(config_path: str, repeats: int) -> dict[str, Any]:
    import dagster as dg

    from playbook_assets.app.runner import RunRequest, run_playbook
    from playbook_assets.core.catalog import load_catalog
    from playbook_assets.core.config import load_config
    from playbook_defs import TEMPLATES_DIR

    config = load_config(config_path)
    catalog = load_catalog(config, [TEMPLATES_DIR])
    instance = dg.DagsterInstance.get()
    results: dict[str, Any] = {}
    for playbook_id in template_ids():
        loaded = catalog.get(playbook_id)
        request = RunRequest(loaded=loaded, config=config)
        run_s: list[float] = []
        render_s: list[float] = []
        html_bytes = 0
        charts = 0
        for index in range(repeats + 1):
            started = time.perf_counter()
            report = run_playbook(request, instance)
            elapsed = time.perf_counter() - started
            if report["status"] != "success":
                raise RuntimeError(f"{playbook_id} failed: {report}")
            tables = _tables(loaded.spec, config.artifacts_dir, report["run_id"])
            started = time.perf_counter()
            markdown, html = _render(loaded.spec, report, tables)
            rendered = time.perf_counter() - started
            stored = (config.artifacts_dir / f"{report['run_id']}.html").read_text()
            if html != stored:
                raise RuntimeError(f"{playbook_id}: the render differs from the run's own page")
            if index == 0:
                continue  # warm-up
            run_s.append(elapsed)
            render_s.append(rendered)
            html_bytes = len(html.encode())
            charts = markdown.count("](data:image/svg+xml")
        results[playbook_id] = {
            "run_s": run_s,
            "render_s": render_s,
            "html_bytes": html_bytes,
            "charts": charts,
        }
    return results


_COLD = """
import sys, time, json
from pathlib import Path
from bench.report_render import _render, _tables
from playbook_assets.core.report_render.stored import stored_playbook
from playbook_assets.core.run_records import load_run
artifacts, run_id = Path(sys.argv[1]), sys.argv[2]
spec = stored_playbook(load_run(artifacts, run_id))
report = json.loads((artifacts / f"{run_id}.json").read_text())
tables = _tables(spec, artifacts, run_id)
started = time.perf_counter()
_render(spec, report, tables)
from bench.common import write_result
write_result(time.perf_counter() - started)
"""


def _cold_first_render(config: Path, home: Path, repeats: int) -> tuple[float, str]:
    """The first render in a fresh process, of a stored health_dashboard run."""
    import json

    out = config.parent / "report.json"
    run_child(
        [
            str(Path(PYTHON).parent / "playbook"),
            "run",
            "health_dashboard",
            "--config",
            str(config),
            "--json",
        ],
        env={"DAGSTER_HOME": str(home)},
        stdout_path=out,
    )
    run_id = json.loads(out.read_text())["run_id"]
    artifacts = config.parent / "artifacts"
    seconds = [
        float(run_child([PYTHON, "-c", _COLD, str(artifacts), run_id]).output)
        for _ in range(repeats)
    ]
    return median(seconds), run_id


def run(options: Options) -> list[Row]:
    """One row per template (warm render against the run), and the first render in a fresh
    process."""
    repeats = options.repeats(5, 3)
    data = demo_data_dir(1)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        config = write_config(Path(tmp) / "config", data)
        home = dagster_home(Path(tmp) / "home")
        child = run_child(
            [PYTHON, "-m", "bench.report_render", str(config), str(repeats)],
            env={"DAGSTER_HOME": str(home)},
        )
        cold, _ = _cold_first_render(config, home, repeats)
    rows: list[Row] = []
    run_medians: list[float] = []
    for playbook_id, out in child.output.items():
        render = median(out["render_s"])
        whole = median(out["run_s"])
        run_medians.append(whole)
        rows.append(
            Row(
                BENCHMARK,
                playbook_id,
                render,
                "the run (run_playbook, in process)",
                whole,
                f"<= {TARGET_SHARE:.0%} of the run",
                render <= TARGET_SHARE * whole,
                runs=len(out["render_s"]),
                note=f"charts drawn: {out['charts']}, HTML {out['html_bytes'] / 1024:.0f} KiB",
            )
        )
    health = child.output["health_dashboard"]
    rows.append(
        Row(
            BENCHMARK,
            "first render in a fresh process (health_dashboard)",
            cold,
            "the run (run_playbook, in process)",
            median(health["run_s"]),
            "reported",
            None,
            runs=repeats,
            note="includes importing pygal and compiling the page template",
        )
    )
    return rows


# ---------------------------------------------------------------------------------------------
# The charting libraries considered

_LIBRARIES = {
    "pygal": (
        "import pygal",
        "c = pygal.Bar(js=[]); c.x_labels = LABELS; c.add('y', VALUES); c.render()",
    ),
    "vl-convert (Vega-Lite)": (
        "import vl_convert as vlc",
        "vlc.vegalite_to_svg({'data': {'values': [{'x': l, 'y': v} for l, v in"
        " zip(LABELS, VALUES)]}, 'mark': 'bar', 'encoding': {'x': {'field': 'x', 'type':"
        " 'nominal'}, 'y': {'field': 'y', 'type': 'quantitative'}}})",
    ),
    "matplotlib (svg)": (
        "import io, matplotlib; matplotlib.use('svg'); from matplotlib.figure import Figure",
        "f = Figure(figsize=(7.6, 3.6)); a = f.subplots(); a.bar(LABELS, VALUES);"
        " f.savefig(io.StringIO(), format='svg')",
    ),
}
_LIBRARY_CODE = """
import statistics, time
LABELS = ['qualifiedtobuy', 'presentationscheduled', 'decisionmakerboughtin', 'contractsent']
VALUES = [98765432.1, 45678901.2, 23456789.0, 34567890.3]
started = time.perf_counter()
{setup}
{draw}
first = time.perf_counter() - started
later = []
for _ in range(10):
    started = time.perf_counter()
    {draw}
    later.append(time.perf_counter() - started)
from bench.common import write_result
write_result([first, statistics.median(later)])
"""


def compare_libraries(repeats: int = 5) -> None:
    """Print the first chart in a fresh process and later charts, per installed library."""
    for name, (setup, draw) in _LIBRARIES.items():
        code = _LIBRARY_CODE.format(setup=setup, draw=draw)
        try:
            found = [run_child([PYTHON, "-c", code]).output for _ in range(repeats)]
        except RuntimeError:
            sys.stdout.write(f"{name}: not installed\n")
            continue
        first = median([f for f, _ in found])
        later = median([later for _, later in found])
        sys.stdout.write(
            f"{name}: first chart in a fresh process {first * 1000:.0f} ms, "
            f"later charts {later * 1000:.1f} ms\n"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--libraries"]:
        compare_libraries()
    else:
        os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="bench-home-"))
        write_result(_worker(sys.argv[1], int(sys.argv[2])))
