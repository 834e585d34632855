"""Reading rendered run reports back the way a reader (or a browser) sees them, with the
standard library only, so a test's expectations never come from the code that rendered them:
an HTML page as an element tree, Markdown tables as rows of cells."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser

VOID = frozenset({"meta", "br", "img", "hr", "link", "input", "source", "wbr", "col", "area"})
SVG_NS = "http://www.w3.org/2000/svg"


class _TreeParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.builder = ET.TreeBuilder()
        self.builder.start("document", {})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.builder.start(tag, {name: value or "" for name, value in attrs})
        if tag in VOID:
            self.builder.end(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.builder.start(tag, {name: value or "" for name, value in attrs})
        self.builder.end(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID:
            self.builder.end(tag)

    def handle_data(self, data: str) -> None:
        self.builder.data(data)


def parse_html(text: str) -> ET.Element:
    """An HTML page as an element tree (tag names as written, SVG included)."""
    parser = _TreeParser()
    parser.feed(text)
    parser.close()
    parser.builder.end("document")
    return parser.builder.close()


def text_of(element: ET.Element) -> str:
    """The element's text, whitespace collapsed."""
    return " ".join("".join(element.itertext()).split())


@dataclass(frozen=True)
class HtmlCell:
    """A table cell as shown, with its attributes."""

    text: str
    attributes: dict[str, str]


def html_table(table: ET.Element) -> tuple[list[str], list[list[HtmlCell]]]:
    """A table's headers and rows."""
    headers = [text_of(th) for th in table.iter("th")]
    rows = [
        [HtmlCell(text_of(td), dict(td.attrib)) for td in tr.findall("td")]
        for tr in table.iter("tr")
        if tr.findall("td")
    ]
    return headers, rows


def section(page: ET.Element, section_id: str) -> ET.Element:
    """The ``<section id=...>`` of a page."""
    (found,) = [s for s in page.iter("section") if s.get("id") == section_id]
    return found


def block(page: ET.Element, name: str) -> ET.Element:
    """The part of a page that shows output ``name`` (``data-output``)."""
    (found,) = [e for e in page.iter() if e.get("data-output") == name]
    return found


def figure(page: ET.Element, title: str) -> ET.Element:
    """The chart figure with this caption."""
    found = [
        f for f in page.iter("figure") if any(text_of(c) == title for c in f.iter("figcaption"))
    ]
    assert len(found) == 1, f"no single figure titled {title!r}"
    return found[0]


def bar_titles(svg_text_or_element: str | ET.Element) -> dict[str, str]:
    """Each bar's or point's hover text of a chart, ``label -> value text``."""
    root = (
        ET.fromstring(svg_text_or_element)
        if isinstance(svg_text_or_element, str)
        else svg_text_or_element
    )
    titles: dict[str, str] = {}
    for element in root.iter():
        tag = element.tag.split("}")[-1]
        if tag != "g" or not {"bar", "dots"} & set(element.get("class", "").split()):
            continue
        for child in element:
            if child.tag.split("}")[-1] == "title" and child.text:
                label, _, value = child.text.rpartition(": ")
                titles[label] = value
    return titles


def marks(svg: ET.Element, kind: str = "bar") -> list[ET.Element]:
    """The drawn marks of a chart: each bar's rectangle."""
    return [
        child
        for element in svg.iter()
        if element.tag.split("}")[-1] == "g" and kind in element.get("class", "").split()
        for child in element
        if child.tag.split("}")[-1] == "rect"
    ]


_UNESCAPE = re.compile(r"\\(.)")


def markdown_sections(text: str) -> dict[str, list[str]]:
    """Lines under each ``## `` and ``### `` heading (headings unescaped)."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("## ") or line.startswith("### "):
            current = sections.setdefault(_UNESCAPE.sub(r"\1", line.split(" ", 1)[1]), [])
        else:
            current.append(line)
    return sections


def markdown_table(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """The first GitHub-flavoured table in ``lines``: headers and rows of unescaped cells."""
    table = [line for line in lines if line.startswith("|")]
    assert table, "no table"

    def cells(line: str) -> list[str]:
        parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        return [_UNESCAPE.sub(r"\1", part.strip()) for part in parts]

    return cells(table[0]), [cells(line) for line in table[2:]]


def markdown_images(text: str) -> list[tuple[str, str]]:
    """Each image of a Markdown text: its alt text (unescaped) and its source."""
    found = re.findall(r"!\[((?:[^\]\\]|\\.)*)\]\(([^)]*)\)", text)
    return [(_UNESCAPE.sub(r"\1", alt), source) for alt, source in found]


def svg_of_data_uri(uri: str) -> str:
    """The SVG text of a ``data:image/svg+xml;base64,`` URI."""
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix), uri[:40]
    return base64.b64decode(uri[len(prefix) :]).decode()
