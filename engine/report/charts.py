"""Vector charts for the report, drawn from result objects with reportlab.graphics.

Every chart is a :class:`reportlab.graphics.shapes.Drawing` built from plain
shapes (lines, rectangles, circles, strings) rather than reportlab's chart
widgets: every string then names a bundled font explicitly (the widgets fall
back to Helvetica in labels, legends and axes), and nothing depends on widget
defaults that change between reportlab versions.

Sizes are in points (1/72 inch).  Colours come from :mod:`engine.report.style`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
from reportlab.pdfbase.pdfmetrics import stringWidth

from engine.report import style as st

__all__ = [
    "Series",
    "nice_ticks",
    "fit_text",
    "bar_chart",
    "signed_bar_chart",
    "waterfall_chart",
    "line_chart",
    "scatter_chart",
    "column_chart",
    "category_code",
    "rate_chart",
]

TICK_SIZE = 6.5
LABEL_SIZE = 7.5
_ROW = 13.0  # height of one bar row


def _string(
    x: float,
    y: float,
    text: str,
    *,
    size: float = TICK_SIZE,
    anchor: str = "start",
    colour: str = st.TEXT,
    bold: bool = False,
) -> String:
    return String(
        x,
        y,
        st.printable(text),
        fontName=st.SANS_BOLD if bold else st.SANS,
        fontSize=size,
        fillColor=st.rgb(colour),
        textAnchor=anchor,
    )


def _drawing(width: float, height: float) -> Drawing:
    d = Drawing(width, height)
    # The renderer starts every drawing by selecting its initial font, Helvetica
    # unless the drawing names one: that would put a non-embedded font in the PDF.
    d.initialFontName = st.SANS
    d.initialFontSize = TICK_SIZE
    return d


def fit_text(text: str, width: float, *, size: float = TICK_SIZE, font: str = st.SANS) -> str:
    """``text`` shortened with an ellipsis so it is at most ``width`` points wide."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]`` (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(n, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = power * min((m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw), default=10.0)
    first = math.floor(lo / step + 1e-9) * step
    ticks = []
    k = 0
    while True:
        value = first + k * step
        if value > hi + step * 1e-9:
            break
        ticks.append(round(value, 12))
        k += 1
    if ticks[-1] < hi - step * 1e-9:
        ticks.append(round(first + k * step, 12))
    return ticks


def _tick_label(value: float, ticks: Sequence[float]) -> str:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    magnitude = max(abs(t) for t in ticks) or 1.0
    if magnitude >= 1e6 or magnitude < 1e-3:
        return f"{value:.2g}".replace("-", "−")
    # As many decimals as the step needs (0.25 -> 2, 0.2 -> 1, 50 -> 0).
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    text = f"{value:,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")  # no "-0.0"
    return text.replace("-", "−")


@dataclass(frozen=True)
class _Plot:
    """The data-to-drawing mapping of one plot area (points)."""

    x0: float
    y0: float
    w: float
    h: float
    xlo: float
    xhi: float
    ylo: float
    yhi: float

    def x(self, v: float | np.ndarray) -> float | np.ndarray:
        return self.x0 + (v - self.xlo) / (self.xhi - self.xlo) * self.w

    def y(self, v: float | np.ndarray) -> float | np.ndarray:
        return self.y0 + (v - self.ylo) / (self.yhi - self.ylo) * self.h


def _x_axis(d: Drawing, p: _Plot, ticks: Sequence[float], label: str, *, grid: bool = True) -> None:
    for t in ticks:
        x = float(p.x(t))
        if grid:
            d.add(Line(x, p.y0, x, p.y0 + p.h, strokeColor=st.rgb(st.GRID), strokeWidth=0.5))
        d.add(Line(x, p.y0, x, p.y0 - 2.5, strokeColor=st.rgb(st.MUTED_TEXT), strokeWidth=0.5))
        d.add(_string(x, p.y0 - 10, _tick_label(t, ticks), anchor="middle", colour=st.MUTED_TEXT))
    d.add(Line(p.x0, p.y0, p.x0 + p.w, p.y0, strokeColor=st.rgb(st.MUTED_TEXT), strokeWidth=0.6))
    if label:
        d.add(
            _string(p.x0 + p.w / 2, p.y0 - 21, fit_text(label, p.w, size=LABEL_SIZE), size=LABEL_SIZE, anchor="middle")
        )


def _y_axis(d: Drawing, p: _Plot, ticks: Sequence[float], label: str, *, grid: bool = True) -> None:
    for t in ticks:
        y = float(p.y(t))
        if grid:
            d.add(Line(p.x0, y, p.x0 + p.w, y, strokeColor=st.rgb(st.GRID), strokeWidth=0.5))
        d.add(Line(p.x0 - 2.5, y, p.x0, y, strokeColor=st.rgb(st.MUTED_TEXT), strokeWidth=0.5))
        d.add(_string(p.x0 - 4, y - 2.3, _tick_label(t, ticks), anchor="end", colour=st.MUTED_TEXT))
    d.add(Line(p.x0, p.y0, p.x0, p.y0 + p.h, strokeColor=st.rgb(st.MUTED_TEXT), strokeWidth=0.6))
    if label:
        s = _string(0, 0, fit_text(label, p.h, size=LABEL_SIZE), size=LABEL_SIZE, anchor="middle")
        # Rotated axis title: a Group with a transform keeps the string's own font.
        from reportlab.graphics.shapes import Group

        g = Group(s)
        g.transform = (0, 1, -1, 0, p.x0 - 30, p.y0 + p.h / 2)
        d.add(g)


def _legend_positions(entries: Sequence[tuple[str, str, str]], width: float) -> list[tuple[float, int]]:
    """``(x offset, row)`` of each legend entry, wrapping left to right within ``width``."""
    out: list[tuple[float, int]] = []
    cx, row = 0.0, 0
    for label, _, _ in entries:
        w = 16 + stringWidth(label, st.SANS, TICK_SIZE) + 10
        if cx + w > width and cx > 0:
            cx, row = 0.0, row + 1
        out.append((cx, row))
        cx += w
    return out


def _legend_height(entries: Sequence[tuple[str, str, str]], width: float) -> float:
    """Height the legend of ``entries`` takes below a plot (10 points per row plus a gap)."""
    if not entries:
        return 12.0
    return 12.0 + 10.0 * (1 + _legend_positions(entries, width)[-1][1])


def _legend(d: Drawing, entries: Sequence[tuple[str, str, str]], x: float, y: float, width: float) -> None:
    """Legend entries ``(label, colour, mark)`` with mark ``"line"``, ``"dash"``, ``"box"`` or ``"dot"``;
    the first row's baseline is at ``y``."""
    for (label, colour, mark), (dx, row) in zip(entries, _legend_positions(entries, width)):
        cx, cy = x + dx, y - 10 * row
        c = st.rgb(colour)
        if mark == "box":
            d.add(Rect(cx, cy - 1, 9, 6, fillColor=c, strokeColor=None))
        elif mark == "dot":
            d.add(Circle(cx + 4.5, cy + 2, 2.4, fillColor=c, strokeColor=None))
        else:
            d.add(
                Line(
                    cx,
                    cy + 2,
                    cx + 11,
                    cy + 2,
                    strokeColor=c,
                    strokeWidth=1.6,
                    strokeDashArray=[2, 1.5] if mark == "dash" else None,
                )
            )
        d.add(_string(cx + 14, cy, label))


def _label_width(labels: Sequence[str], width: float) -> float:
    widest = max((stringWidth(s, st.SANS, TICK_SIZE) for s in labels), default=0.0)
    return min(widest + 6, width * 0.36)


# -- horizontal bars -----------------------------------------------------------------------------------------


def bar_chart(
    labels: Sequence[str],
    values: np.ndarray,
    *,
    xlabel: str,
    width: float,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    colour: str = st.PRIMARY,
) -> Drawing:
    """Horizontal bars, one per label top to bottom, with optional interval whiskers.

    Parameters
    ----------
    labels, values:
        ``(n,)`` names and bar lengths (NaN draws no bar).
    low, high:
        ``(n,)`` whisker ends (e.g. a confidence interval); NaN draws none.
    width:
        Drawing width in points; the height follows from ``n``.
    """
    values = np.asarray(values, dtype=float)
    n = len(labels)
    ends = [values]
    if low is not None and high is not None:
        ends += [np.asarray(low, dtype=float), np.asarray(high, dtype=float)]
    finite = np.concatenate([e[np.isfinite(e)] for e in ends] + [np.zeros(1)])
    ticks = nice_ticks(float(finite.min()), float(finite.max()))
    label_w = _label_width(labels, width)
    height = n * _ROW + 34
    d = _drawing(width, height)
    p = _Plot(label_w + 4, 28, width - label_w - 14, n * _ROW, ticks[0], ticks[-1], 0, n)
    _x_axis(d, p, ticks, xlabel)
    zero = float(p.x(0.0))
    for i, (name, v) in enumerate(zip(labels, values)):
        top = p.y0 + p.h - i * _ROW
        mid = top - _ROW / 2
        d.add(_string(p.x0 - 5, mid - 2.3, fit_text(name, label_w - 6), anchor="end"))
        if np.isfinite(v):
            x1 = float(p.x(v))
            d.add(
                Rect(
                    min(zero, x1),
                    mid - _ROW * 0.32,
                    abs(x1 - zero),
                    _ROW * 0.64,
                    fillColor=st.rgb(colour),
                    strokeColor=None,
                )
            )
        if low is not None and high is not None and np.isfinite(low[i]) and np.isfinite(high[i]):
            xl, xh = float(p.x(low[i])), float(p.x(high[i]))
            ink = st.rgb(st.TEXT)
            d.add(Line(xl, mid, xh, mid, strokeColor=ink, strokeWidth=0.8))
            d.add(Line(xl, mid - 2.6, xl, mid + 2.6, strokeColor=ink, strokeWidth=0.8))
            d.add(Line(xh, mid - 2.6, xh, mid + 2.6, strokeColor=ink, strokeWidth=0.8))
    d.add(Line(zero, p.y0, zero, p.y0 + p.h, strokeColor=st.rgb(st.REFERENCE), strokeWidth=0.7))
    return d


def _signed_label(v: float) -> str:
    return f"+{v:.3g}" if v >= 0 else f"−{abs(v):.3g}"


def signed_bar_chart(labels: Sequence[str], values: np.ndarray, *, xlabel: str, width: float) -> Drawing:
    """Horizontal bars from zero, coloured by sign (diverging palette), each with its value."""
    values = np.asarray(values, dtype=float)
    n = len(labels)
    finite = np.concatenate([values[np.isfinite(values)], np.zeros(1)])
    span = float(finite.max() - finite.min()) or 1.0
    # Room for the value labels beyond the longest bars on either side.
    ticks = nice_ticks(
        float(finite.min()) - 0.12 * span * (finite.min() < 0), float(finite.max()) + 0.12 * span * (finite.max() > 0)
    )
    label_w = _label_width(labels, width)
    d = _drawing(width, n * _ROW + 34)
    p = _Plot(label_w + 4, 28, width - label_w - 14, n * _ROW, ticks[0], ticks[-1], 0, n)
    _x_axis(d, p, ticks, xlabel)
    zero = float(p.x(0.0))
    for i, (name, v) in enumerate(zip(labels, values)):
        mid = p.y0 + p.h - i * _ROW - _ROW / 2
        d.add(_string(p.x0 - 5, mid - 2.3, fit_text(name, label_w - 6), anchor="end"))
        if not np.isfinite(v):
            continue
        x1 = float(p.x(v))
        colour = st.CONTRIBUTION_UP if v >= 0 else st.CONTRIBUTION_DOWN
        d.add(
            Rect(
                min(zero, x1),
                mid - _ROW * 0.32,
                abs(x1 - zero),
                _ROW * 0.64,
                fillColor=st.rgb(colour),
                strokeColor=None,
            )
        )
        if v >= 0:
            d.add(_string(x1 + 3, mid - 2.3, _signed_label(v), colour=st.MUTED_TEXT))
        else:
            d.add(_string(x1 - 3, mid - 2.3, _signed_label(v), anchor="end", colour=st.MUTED_TEXT))
    d.add(Line(zero, p.y0, zero, p.y0 + p.h, strokeColor=st.rgb(st.REFERENCE), strokeWidth=0.7))
    return d


def waterfall_chart(
    labels: Sequence[str],
    contributions: np.ndarray,
    *,
    base: float,
    xlabel: str,
    width: float,
) -> Drawing:
    """A waterfall from ``base`` through each contribution (top row first) to the explained output.

    Each bar spans the running total before and after its contribution; dashed
    lines mark the base value and the final output.
    """
    contributions = np.asarray(contributions, dtype=float)
    n = len(labels)
    running = base + np.concatenate([[0.0], np.cumsum(contributions)])
    final = float(running[-1])
    lo, hi = float(np.min(running)), float(np.max(running))
    span = (hi - lo) or abs(base) or 1.0
    ticks = nice_ticks(lo - 0.14 * span, hi + 0.14 * span)
    label_w = _label_width(labels, width)
    d = _drawing(width, n * _ROW + 48)
    p = _Plot(label_w + 4, 28, width - label_w - 14, n * _ROW, ticks[0], ticks[-1], 0, n)
    _x_axis(d, p, ticks, xlabel)
    # Reference lines first, so the bars and their labels sit on top of them.
    ref = st.rgb(st.REFERENCE)
    xb0, xf = float(p.x(base)), float(p.x(final))
    d.add(Line(xb0, p.y0, xb0, p.y0 + p.h + 3, strokeColor=ref, strokeWidth=0.6, strokeDashArray=[2, 2]))
    d.add(Line(xf, p.y0, xf, p.y0 + p.h + 13, strokeColor=ref, strokeWidth=0.6, strokeDashArray=[2, 2]))
    d.add(
        _string(xb0, p.y0 + p.h + 5, f"base {_signed_label(base).lstrip('+')}", anchor="middle", colour=st.MUTED_TEXT)
    )
    d.add(_string(xf, p.y0 + p.h + 15, f"output {_signed_label(final).lstrip('+')}", anchor="middle", bold=True))
    for i, (name, v) in enumerate(zip(labels, contributions)):
        mid = p.y0 + p.h - i * _ROW - _ROW / 2
        d.add(_string(p.x0 - 5, mid - 2.3, fit_text(name, label_w - 6), anchor="end"))
        xa, xb = float(p.x(running[i])), float(p.x(running[i + 1]))
        colour = st.CONTRIBUTION_UP if v >= 0 else st.CONTRIBUTION_DOWN
        d.add(
            Rect(
                min(xa, xb),
                mid - _ROW * 0.32,
                max(abs(xb - xa), 0.4),
                _ROW * 0.64,
                fillColor=st.rgb(colour),
                strokeColor=None,
            )
        )
        if i + 1 < n:  # connector to the next bar's start
            d.add(Line(xb, mid - _ROW * 0.32, xb, mid - _ROW * 0.68, strokeColor=st.rgb(st.REFERENCE), strokeWidth=0.5))
        if v >= 0:
            d.add(_string(max(xa, xb) + 3, mid - 2.3, _signed_label(v), colour=st.MUTED_TEXT))
        else:
            d.add(_string(min(xa, xb) - 3, mid - 2.3, _signed_label(v), anchor="end", colour=st.MUTED_TEXT))
    return d


# -- lines, points and columns ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One polyline (and/or markers) of a line chart.

    ``x`` and ``y`` are ``(m,)`` in data units; NaN points are skipped.  A
    ``label`` of ``""`` keeps the series out of the legend.
    """

    x: np.ndarray
    y: np.ndarray
    colour: str
    label: str = ""
    width: float = 1.4
    dashed: bool = False
    markers: bool = False
    line: bool = True


def line_chart(
    series: Sequence[Series],
    *,
    xlabel: str,
    ylabel: str,
    width: float,
    height: float,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    diagonal: bool = False,
) -> Drawing:
    """Lines and markers on shared axes, with a legend under the plot."""
    xs = np.concatenate([np.asarray(s.x, dtype=float) for s in series] or [np.zeros(1)])
    ys = np.concatenate([np.asarray(s.y, dtype=float) for s in series] or [np.zeros(1)])
    xs, ys = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    if xs.size == 0:
        xs = np.array([0.0, 1.0])
    if ys.size == 0:
        ys = np.array([0.0, 1.0])
    xticks = nice_ticks(*(xlim if xlim else (float(xs.min()), float(xs.max()))))
    yticks = nice_ticks(*(ylim if ylim else (float(ys.min()), float(ys.max()))))
    if xlim:
        xticks = [t for t in xticks if xlim[0] - 1e-9 <= t <= xlim[1] + 1e-9]
    if ylim:
        yticks = [t for t in yticks if ylim[0] - 1e-9 <= t <= ylim[1] + 1e-9]
    legend = [(s.label, s.colour, "dash" if s.dashed else ("dot" if not s.line else "line")) for s in series if s.label]
    x0 = 44
    legend_h = _legend_height(legend, width - x0 - 8)
    d = _drawing(width, height)
    p = _Plot(
        x0,
        28 + legend_h,
        width - x0 - 8,
        height - 34 - legend_h,
        xlim[0] if xlim else xticks[0],
        xlim[1] if xlim else xticks[-1],
        ylim[0] if ylim else yticks[0],
        ylim[1] if ylim else yticks[-1],
    )
    _x_axis(d, p, xticks, xlabel)
    _y_axis(d, p, yticks, ylabel)
    if diagonal:
        lo = max(p.xlo, p.ylo)
        hi = min(p.xhi, p.yhi)
        d.add(
            Line(
                float(p.x(lo)),
                float(p.y(lo)),
                float(p.x(hi)),
                float(p.y(hi)),
                strokeColor=st.rgb(st.REFERENCE),
                strokeWidth=0.8,
                strokeDashArray=[3, 2],
            )
        )
    for s in series:
        x = np.asarray(s.x, dtype=float)
        y = np.asarray(s.y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        px, py = np.asarray(p.x(x[ok])), np.asarray(p.y(y[ok]))
        colour = st.rgb(s.colour)
        if s.line and ok.sum() >= 2:
            points = np.column_stack([px, py]).ravel().tolist()
            d.add(
                PolyLine(
                    points,
                    strokeColor=colour,
                    strokeWidth=s.width,
                    strokeDashArray=[3, 2] if s.dashed else None,
                    strokeLineJoin=1,
                )
            )
        if s.markers:
            for a, b in zip(px.tolist(), py.tolist()):
                d.add(Circle(a, b, 2.1, fillColor=colour, strokeColor=st.rgb(st.BACKGROUND), strokeWidth=0.4))
    if legend:
        _legend(d, legend, p.x0, legend_h - 8, p.w)
    return d


def scatter_chart(
    xy: np.ndarray,
    groups: np.ndarray,
    group_labels: Sequence[str],
    *,
    xlabel: str,
    ylabel: str,
    width: float,
    height: float,
    max_points: int = 1500,
) -> Drawing:
    """Points coloured by group (categorical palette).

    ``xy`` is ``(n, 2)``; ``groups`` ``(n,)`` integer codes into ``group_labels``.
    Beyond ``max_points`` an evenly spaced subset of rows is drawn, so the
    chart is the same for the same result.
    """
    xy = np.asarray(xy, dtype=float)
    groups = np.asarray(groups)
    if len(xy) > max_points:
        keep = np.linspace(0, len(xy) - 1, max_points).round().astype(int)
        xy, groups = xy[keep], groups[keep]
    finite = np.isfinite(xy).all(axis=1)
    xy, groups = xy[finite], groups[finite]
    if len(xy) == 0:
        xy = np.zeros((1, 2))
        groups = np.full(1, -1)
    xticks = nice_ticks(float(xy[:, 0].min()), float(xy[:, 0].max()))
    yticks = nice_ticks(float(xy[:, 1].min()), float(xy[:, 1].max()))
    legend = [(label, st.categorical(i), "dot") for i, label in enumerate(group_labels)]
    legend_h = _legend_height(legend, width - 52)
    d = _drawing(width, height)
    p = _Plot(44, 28 + legend_h, width - 52, height - 34 - legend_h, xticks[0], xticks[-1], yticks[0], yticks[-1])
    _x_axis(d, p, xticks, xlabel)
    _y_axis(d, p, yticks, ylabel)
    px, py = np.asarray(p.x(xy[:, 0])), np.asarray(p.y(xy[:, 1]))
    for a, b, g in zip(px.tolist(), py.tolist(), groups.tolist()):
        if g < 0:
            continue
        d.add(Circle(a, b, 1.5, fillColor=st.rgb(st.categorical(int(g))), strokeColor=None))
    _legend(d, legend, p.x0, legend_h - 8, p.w)
    return d


def _wrap(text: str, width: float, *, max_lines: int, size: float = TICK_SIZE) -> list[str] | None:
    """``text`` broken after spaces, hyphens, underscores or slashes into at most ``max_lines`` lines no wider
    than ``width``; ``None`` when it does not fit so."""
    lines: list[str] = []
    line = ""
    for piece in re.split(r"(?<=[\s\-_/])", text):
        if not piece:
            continue
        if stringWidth((line + piece).rstrip(), st.SANS, size) <= width:
            line += piece
            continue
        if line:
            lines.append(line.rstrip())
        line = piece
        if stringWidth(line.rstrip(), st.SANS, size) > width:
            return None
    if line.strip():
        lines.append(line.rstrip())
    return lines if len(lines) <= max_lines else None


def category_code(i: int) -> str:
    """The ``i``-th short code of a category key: A, B, …, Z, AA, AB, …"""
    code = ""
    i += 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        code = chr(ord("A") + r) + code
    return code


@dataclass(frozen=True)
class _CategoryLabels:
    """How category names sit under their columns: whole, wrapped, or as codes explained by a key."""

    lines: tuple[tuple[str, ...], ...]  # per category, its label lines (a code in key mode)
    key: tuple[str, ...]  # "A = full name" entries; empty when every name is shown whole
    staggered: bool  # codes alternate between two rows because the slots are too narrow for one

    @property
    def rows(self) -> int:
        return 2 if self.staggered else max((len(x) for x in self.lines), default=1)


def _category_labels(names: Sequence[str], slot: float) -> _CategoryLabels:
    """Whole names when they fit the slot, else wrapped onto two lines, else codes with a key.

    A name is never cut: a reader must be able to tell every category apart.
    """
    room = slot - 2
    for max_lines in (1, 2):
        wrapped = [_wrap(n, room, max_lines=max_lines) for n in names]
        if all(w is not None for w in wrapped):
            return _CategoryLabels(tuple(tuple(w or ()) for w in wrapped), (), False)
    codes = [category_code(i) for i in range(len(names))]
    staggered = max(stringWidth(c, st.SANS, TICK_SIZE) for c in codes) > room
    return _CategoryLabels(tuple((c,) for c in codes), tuple(f"{c} = {n}" for c, n in zip(codes, names)), staggered)


def _key_lines(entries: Sequence[str], width: float) -> list[list[str]]:
    """Key entries packed left to right into rows no wider than ``width``; an entry wider than a row is split."""
    rows: list[list[str]] = [[]]
    used = 0.0
    gap = 10.0
    for entry in entries:
        pieces = _wrap(entry, width, max_lines=10**6) or _hard_wrap(entry, width)
        for k, piece in enumerate(pieces):
            w = stringWidth(piece, st.SANS, TICK_SIZE)
            if rows[-1] and (k > 0 or used + gap + w > width):
                rows.append([])
                used = 0.0
            used += (gap if rows[-1] else 0.0) + w
            rows[-1].append(piece)
    return [r for r in rows if r]


def _hard_wrap(text: str, width: float) -> list[str]:
    """``text`` split between characters into lines no wider than ``width`` (for names without breaks)."""
    out, line = [], ""
    for ch in text:
        if line and stringWidth(line + ch, st.SANS, TICK_SIZE) > width:
            out.append(line)
            line = ""
        line += ch
    return out + ([line] if line else [])


def column_chart(
    categories: Sequence[str],
    values: np.ndarray,
    *,
    xlabel: str,
    ylabel: str,
    width: float,
    height: float,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    colour: str = st.PRIMARY,
) -> Drawing:
    """Vertical columns per category, with optional whiskers (e.g. the ICE 5–95 % range).

    Categories are unordered, so nothing joins one column to the next.  Their
    names are shown whole, wrapped onto two lines when needed, or replaced by
    short codes (A, B, …) with a key under the chart mapping each code to the
    full name; a name is never cut.  The key adds to ``height``.
    """
    values = np.asarray(values, dtype=float)
    ends = [values] + (
        [np.asarray(low, float), np.asarray(high, float)] if low is not None and high is not None else []
    )
    finite = np.concatenate([e[np.isfinite(e)] for e in ends] + [np.zeros(1)])
    yticks = nice_ticks(float(finite.min()), float(finite.max()))
    x0, plot_w = 44.0, width - 52
    slot = plot_w / max(len(categories), 1)
    labels = _category_labels([str(c) for c in categories], slot)
    key_rows = _key_lines(labels.key, width - 8) if labels.key else []
    key_h = 9.0 * len(key_rows) + (4.0 if key_rows else 0.0)
    label_h = 8.0 * labels.rows
    bottom = 24.0 + label_h  # tick labels, then the axis title
    d = _drawing(width, height + key_h)
    p = _Plot(x0, bottom + key_h, plot_w, height - bottom - 6, 0, len(categories), yticks[0], yticks[-1])
    _y_axis(d, p, yticks, ylabel)
    d.add(Line(p.x0, float(p.y(0.0)), p.x0 + p.w, float(p.y(0.0)), strokeColor=st.rgb(st.MUTED_TEXT), strokeWidth=0.6))
    for i, v in enumerate(values):
        cx = p.x0 + (i + 0.5) * slot
        if np.isfinite(v):
            y0, y1 = float(p.y(0.0)), float(p.y(v))
            d.add(
                Rect(cx - slot * 0.3, min(y0, y1), slot * 0.6, abs(y1 - y0), fillColor=st.rgb(colour), strokeColor=None)
            )
        if low is not None and high is not None and np.isfinite(low[i]) and np.isfinite(high[i]):
            yl, yh = float(p.y(low[i])), float(p.y(high[i]))
            ink = st.rgb(st.TEXT)
            cap = min(2.6, slot * 0.3)
            d.add(Line(cx, yl, cx, yh, strokeColor=ink, strokeWidth=0.8))
            d.add(Line(cx - cap, yl, cx + cap, yl, strokeColor=ink, strokeWidth=0.8))
            d.add(Line(cx - cap, yh, cx + cap, yh, strokeColor=ink, strokeWidth=0.8))
        first = 1 if labels.staggered and i % 2 else 0
        for k, line in enumerate(labels.lines[i] if i < len(labels.lines) else ()):
            d.add(_string(cx, p.y0 - 10 - 8 * (first + k), line, anchor="middle", colour=st.MUTED_TEXT))
    if xlabel:
        d.add(
            _string(
                p.x0 + p.w / 2,
                p.y0 - 14 - label_h,
                fit_text(xlabel, p.w, size=LABEL_SIZE),
                size=LABEL_SIZE,
                anchor="middle",
            )
        )
    for r, row in enumerate(key_rows):
        x = 4.0
        for entry in row:
            d.add(_string(x, key_h - 9.0 * (r + 1), entry, colour=st.MUTED_TEXT))
            x += stringWidth(entry, st.SANS, TICK_SIZE) + 10.0
    return d


# -- group rates ---------------------------------------------------------------------------------------------


def rate_chart(
    labels: Sequence[str],
    values: np.ndarray,
    *,
    low: np.ndarray,
    high: np.ndarray,
    colours: Sequence[str],
    xlabel: str,
    width: float,
    line: float | None = None,
    line_label: str = "",
    legend: Sequence[tuple[str, str, str]] = (),
) -> Drawing:
    """Horizontal bars of rates in ``[0, 1]``, one per group, with interval whiskers and a marked level.

    Parameters
    ----------
    labels, values, low, high:
        ``(n,)`` group names, rates and their interval ends (NaN draws no bar or whisker).
    colours:
        ``(n,)`` fill of each bar (e.g. muted for groups too small to judge).
    line:
        A rate drawn as a dashed vertical line across the bars (e.g. four-fifths of the
        reference group's rate), ``line_label`` written above it; ``None`` draws none.
    legend:
        Entries ``(label, colour, mark)`` under the axis (marks as for line charts: ``"box"``,
        ``"dash"``, ``"line"``, ``"dot"``).
    """
    values = np.asarray(values, dtype=float)
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    n = len(labels)
    finite = np.concatenate([e[np.isfinite(e)] for e in (values, low, high)] + [np.zeros(1)])
    top = max(float(finite.max()), line if line is not None and math.isfinite(line) else 0.0, 0.05)
    ticks = nice_ticks(0.0, min(top, 1.0) if top <= 1.0 else top)
    label_w = _label_width(labels, width)
    legend_h = _legend_height(legend, width - 8) if legend else 0.0
    bottom = 28 + legend_h
    d = _drawing(width, n * _ROW + bottom + (14 if line_label else 6))
    p = _Plot(label_w + 4, bottom, width - label_w - 14, n * _ROW, ticks[0], ticks[-1], 0, n)
    _x_axis(d, p, ticks, xlabel)
    zero = float(p.x(0.0))
    ink = st.rgb(st.TEXT)
    for i, name in enumerate(labels):
        mid = p.y0 + p.h - i * _ROW - _ROW / 2
        # The label column is as wide as the widest label (plus 6); the slack keeps rounding from cutting it.
        d.add(_string(p.x0 - 5, mid - 2.3, fit_text(name, label_w - 6 + 1e-6), anchor="end"))
        v = values[i]
        if np.isfinite(v):
            x1 = float(p.x(v))
            d.add(
                Rect(
                    zero,
                    mid - _ROW * 0.32,
                    max(x1 - zero, 0.0),
                    _ROW * 0.64,
                    fillColor=st.rgb(colours[i]),
                    strokeColor=None,
                )
            )
        if np.isfinite(low[i]) and np.isfinite(high[i]):
            xl, xh = float(p.x(low[i])), float(p.x(high[i]))
            d.add(Line(xl, mid, xh, mid, strokeColor=ink, strokeWidth=0.8))
            d.add(Line(xl, mid - 2.6, xl, mid + 2.6, strokeColor=ink, strokeWidth=0.8))
            d.add(Line(xh, mid - 2.6, xh, mid + 2.6, strokeColor=ink, strokeWidth=0.8))
    if line is not None and math.isfinite(line):
        x = float(p.x(line))
        d.add(Line(x, p.y0, x, p.y0 + p.h + 3, strokeColor=st.rgb(st.WARNING), strokeWidth=1.0, strokeDashArray=[3, 2]))
        if line_label:
            d.add(_string(x, p.y0 + p.h + 5, line_label, anchor="middle", colour=st.WARNING))
    d.add(Line(zero, p.y0, zero, p.y0 + p.h, strokeColor=st.rgb(st.REFERENCE), strokeWidth=0.7))
    if legend:
        _legend(d, legend, 4.0, legend_h - 12.0, width - 8)
    return d
