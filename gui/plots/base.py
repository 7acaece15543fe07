"""pyqtgraph set up for print-like figures: white page, dark ink, readable type.

Importing this module configures pyqtgraph once.  Plot modules import it, so
the (slow) pyqtgraph import happens when the first result view is built, not
while the window is starting.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QSizePolicy

from gui.plots import palette
from gui.text import escape

__all__ = ["configure_pyqtgraph", "make_plot", "pen", "abbreviate_labels", "TICK_POINT_SIZE", "LABEL_STYLE"]

TICK_POINT_SIZE = 9
LABEL_STYLE = {"color": palette.TEXT, "font-size": "10pt"}


def configure_pyqtgraph() -> None:
    """White background, black foreground, antialiased lines (idempotent)."""
    pg.setConfigOptions(background="w", foreground="k", antialias=True)


configure_pyqtgraph()


def pen(colour: str, width: float = 2.0, *, dashed: bool = False) -> object:
    style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
    return pg.mkPen(QColor(colour), width=width, style=style)


def set_title(item: pg.PlotItem, text: str) -> None:
    """Set a plot's title, shown as written: pyqtgraph draws titles as HTML, so ``text`` is escaped."""
    item.setTitle(escape(text), color=palette.TEXT, size="11pt", bold=True)


def set_axis_label(item: pg.PlotItem, axis: str, text: str, **style: str) -> None:
    """Label an axis, shown as written (axis labels are HTML too); ``style`` defaults to :data:`LABEL_STYLE`."""
    item.setLabel(axis, escape(text), **(style or LABEL_STYLE))


def make_plot(title: str, *, bottom: str = "", left: str = "", interactive: bool = False) -> pg.PlotWidget:
    """A white plot with dark axes, a faint grid and the given axis labels.

    Figures are for reading, not exploring, so mouse pan/zoom and the context
    menu are off unless ``interactive``.
    """
    widget = pg.PlotWidget(background="w")
    item = widget.getPlotItem()
    set_title(item, title)
    tick_font = QFont()
    tick_font.setPointSize(TICK_POINT_SIZE)
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(palette.MUTED_TEXT))
        axis.setTextPen(pg.mkPen(palette.TEXT))
        axis.setTickFont(tick_font)
    if bottom:
        set_axis_label(item, "bottom", bottom)
    if left:
        set_axis_label(item, "left", left)
    item.showGrid(x=True, y=True, alpha=0.18)
    item.hideButtons()
    item.setMenuEnabled(interactive)
    widget.setMouseEnabled(x=interactive, y=interactive)
    widget.setMinimumSize(320, 260)
    # pyqtgraph's preferred height (480 px) would otherwise force a scroll bar in
    # scroll areas that size their content by height-for-width; the minimum
    # size is what a plot needs, the layout gives it whatever room is left.
    widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
    return widget


def method_word(result: Any) -> str:
    """How plots name an additive attribution: "IG" for Integrated Gradients, else "SHAP"."""
    return "IG" if getattr(result, "method", "") == "ig" else "SHAP"


def abbreviate_labels(labels: list[str], limit: int = 12) -> tuple[list[str], list[tuple[str, str]]]:
    """Axis labels no longer than ``limit`` characters, each distinct, and the key of the shortened ones.

    A label that fits is kept; a longer one is cut to ``limit - 1`` characters
    plus "…", with a number added when two cuts would read alike.  Returns the
    labels and ``[(short, full), ...]`` for every label that was shortened, so a
    key or tooltip can name each category in full.
    """
    short: list[str] = []
    key: list[tuple[str, str]] = []
    seen: set[str] = set(label for label in labels if len(label) <= limit)
    for label in labels:
        if len(label) <= limit:
            short.append(label)
            continue
        cut = label[: max(1, limit - 1)].rstrip() + "…"
        n = 2
        candidate = cut
        while candidate in seen:
            suffix = f"…{n}"
            candidate = label[: max(1, limit - len(suffix))].rstrip() + suffix
            n += 1
        seen.add(candidate)
        short.append(candidate)
        key.append((candidate, label))
    return short, key
