"""The run report as one self-contained HTML page: inline CSS and SVG, no script and no
external URL, so it reads the same offline, attached to a mail, or printed.

Every number cell carries its exact value (``data-value``), and a rounded one shows it on
hover (``title``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from playbook_assets.core.report_render.content import ReportView
from playbook_assets.core.report_render.formatting import Cell

if TYPE_CHECKING:
    import jinja2


def html_report(view: ReportView, run_id: str) -> str:
    """The whole report as an HTML page."""
    return _template().render(view=view, run_id=run_id, cell_attributes=_cell_attributes)


@functools.cache
def _template() -> jinja2.Template:
    import jinja2  # only where a page is written: 50 ms to import

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("playbook_assets.core.report_render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("report.html")


def _cell_attributes(cell: Cell, column: str) -> Markup:
    classes = []
    if cell.numeric:
        classes.append("num")
    elif cell.nowrap:
        classes.append("nowrap")
    if column in {"Status", "Result"}:
        classes.append(f"state-{cell.text}")
    parts = [f' class="{" ".join(classes)}"'] if classes else []
    if cell.exact is not None:
        parts.append(f' data-value="{escape(cell.exact)}"')
        if cell.rounded:
            parts.append(f' title="{escape(cell.exact)}"')
    return Markup("".join(parts))
