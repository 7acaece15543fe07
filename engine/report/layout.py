"""The report's building blocks as reportlab flowables: headings, paragraphs, bullets and tables.

Helpers named for plain text (:func:`para`, :func:`bullets`, :func:`caption`,
:func:`warnings`) escape what they are given; :func:`markup` takes trusted
markup whose callers escape every value they insert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from engine.report import style as st
from engine.report.formats import escape
from engine.report.inputs import SECTION_TITLES

__all__ = [
    "Heading",
    "section_heading",
    "sub",
    "para",
    "markup",
    "bullets",
    "cell",
    "table",
    "right_style",
    "kv_table",
    "caption",
    "warnings",
    "tint",
]


class Heading(Paragraph):
    """A heading that becomes an outline (bookmark) entry when it is placed on a page."""

    def __init__(self, text: str, style_name: str, *, level: int, key: str) -> None:
        super().__init__(escape(text), st.styles()[style_name])
        self.outline_title = text
        self.outline_level = level
        self.outline_key = key


def section_heading(key: str, number: int) -> list[Flowable]:
    """The numbered heading of the section ``key`` of :data:`engine.report.SECTIONS`."""
    return [Heading(f"{number}  {SECTION_TITLES[key]}", "h1", level=0, key=f"s-{key}")]


def sub(title: str, key: str) -> Heading:
    """A second-level heading with its bookmark ``key``."""
    return Heading(title, "h2", level=1, key=key)


def para(text: str, style_name: str = "body") -> Paragraph:
    """A paragraph of plain text (escaped)."""
    return Paragraph(escape(text), st.styles()[style_name])


def markup(text: str, style_name: str = "body") -> Paragraph:
    """A paragraph of trusted markup (callers escape every value they insert)."""
    return Paragraph(text, st.styles()[style_name])


def bullets(items: Iterable[str], style_name: str = "bullet", *, is_markup: bool = False) -> list[Flowable]:
    """One bulleted paragraph per item: plain text (escaped), or trusted markup with ``is_markup``."""
    s = st.styles()[style_name]
    return [Paragraph(item if is_markup else escape(item), s, bulletText="•") for item in items]


def cell(value: Any, style_name: str = "cell") -> Flowable:
    """A table cell: a flowable as it is, anything else as a paragraph of its text."""
    if isinstance(value, Flowable):
        return value
    return Paragraph(escape(str(value)), st.styles()[style_name])


def table(
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    *,
    header: bool = True,
    right: Sequence[int] = (),
    shading: Sequence[tuple[int, int, str]] = (),
    mono: Sequence[int] = (),
) -> Table:
    """A ruled table of paragraphs; long tables repeat their header row on each page.

    ``right`` lists right-aligned (numeric) columns, ``mono`` columns set in
    the monospace font, ``shading`` ``(row, col, colour)`` cell backgrounds.
    """
    cells: list[list[Flowable]] = []
    for r, row in enumerate(rows):
        out_row: list[Flowable] = []
        for c, value in enumerate(row):
            if header and r == 0:
                name = "cell_head"
            elif c in mono:
                name = "cell_mono"
            else:
                name = "cell"
            paragraph = cell(value, name)
            if c in right and isinstance(paragraph, Paragraph):
                paragraph.style = right_style(name)
            out_row.append(paragraph)
        cells.append(out_row)
    t = Table(cells, colWidths=list(widths), repeatRows=1 if header else 0, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), st.SANS),
        ("FONTSIZE", (0, 0), (-1, -1), 7.8),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.6),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("LINEBELOW", (0, 0), (-1, -1), 0.35, st.rgb(st.GRID)),
    ]
    if header:
        commands += [
            ("BACKGROUND", (0, 0), (-1, 0), st.rgb(st.PANEL)),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, st.rgb(st.MUTED_TEXT)),
            ("LINEABOVE", (0, 0), (-1, 0), 0.8, st.rgb(st.MUTED_TEXT)),
        ]
    for r, c, colour in shading:
        commands.append(("BACKGROUND", (c, r), (c, r), st.rgb(colour)))
    t.setStyle(TableStyle(commands))
    return t


_RIGHT_STYLES: dict[str, Any] = {}


def right_style(name: str) -> Any:
    """The paragraph style ``name``, right-aligned (for numbers)."""
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.lib.styles import ParagraphStyle

    if name not in _RIGHT_STYLES:
        base = st.styles()[name]
        _RIGHT_STYLES[name] = ParagraphStyle(f"{name}_right", parent=base, alignment=TA_RIGHT)
    return _RIGHT_STYLES[name]


def kv_table(
    pairs: Sequence[tuple[str, Any]], width: float, *, key_width: float = 42 * mm, mono_keys: Sequence[str] = ()
) -> Table:
    """A two-column key/value table without a header."""
    rows: list[list[Any]] = []
    for key, value in pairs:
        rows.append([cell(key, "cell_bold"), cell(value, "cell_mono" if key in mono_keys else "cell")])
    return table(rows, [key_width, width - key_width], header=False)


def caption(text: str) -> Paragraph:
    """A caption under a chart or table (plain text)."""
    return para(text, "caption")


def warnings(items: Iterable[str]) -> list[Flowable]:
    """The sentences ``items`` as warning bullets after a small gap; nothing when there are none."""
    found = bullets(items, "warning")
    return [Spacer(1, 2 * mm), *found] if found else []


def tint(hex_colour: str, amount: float = 0.22) -> str:
    """``hex_colour`` mixed with white (``amount`` of the colour), for cell backgrounds."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(255 - (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02X}" for c in mix)
