"""The network views section, drawn from a :class:`~engine.explain.network.NetworkResult`.

Two heatmaps: the first layer's weights (each times its column's standard
deviation) with one row per input column and one column per unit, and the mean
activation of each hidden layer's units, one row per layer, dead ReLU units
crossed out; then a table of the layers and what could not be shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, PageBreak

from engine.explain.network import RELU_KINDS, NetworkResult
from engine.report import charts
from engine.report import style as st
from engine.report.facts import Facts
from engine.report.formats import pct, sig
from engine.report.layout import bullets, caption, para, section_heading, sub, table, warnings

__all__ = ["network", "heatmap"]

# At most this many input columns get a row in the weights heatmap (those with the largest weights).
_MAX_FEATURES = 40
_TICK = charts.TICK_SIZE
_LABEL = charts.LABEL_SIZE


def _text(
    x: float, y: float, text: str, *, size: float = _TICK, anchor: str = "start", colour: str = st.TEXT
) -> String:
    return String(
        x, y, st.printable(text), fontName=st.SANS, fontSize=size, fillColor=st.rgb(colour), textAnchor=anchor
    )


def _mix(a: str, b: str, t: float) -> str:
    ca, cb = (tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in (a, b))
    return "#" + "".join(f"{round(x + (y - x) * t):02X}" for x, y in zip(ca, cb))


def _colour(value: float, lo: float, hi: float, ramp: Sequence[str]) -> str:
    """The colour of ``value`` on ``ramp`` spread evenly over ``[lo, hi]``."""
    t = 0.5 if hi <= lo else min(1.0, max(0.0, (value - lo) / (hi - lo)))
    position = t * (len(ramp) - 1)
    i = min(int(position), len(ramp) - 2)
    return _mix(ramp[i], ramp[i + 1], position - i)


def heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    *,
    xlabel: str,
    scale_label: str,
    width: float,
    signed: bool = True,
    crossed: np.ndarray | None = None,
) -> Drawing:
    """A heatmap of ``values`` ``(rows, columns)``, rows labelled at the left, columns numbered from 0 below.

    ``signed``: a diverging scale symmetric about 0 (blue negative, orange
    positive); otherwise a sequential one from the smallest to the largest value.
    NaN cells are left blank.  ``crossed`` ``(rows, columns)`` marks cells with an ×.
    A colour bar with its end values and ``scale_label`` runs under the chart.
    """
    values = np.asarray(values, dtype=float)
    n_rows, n_cols = values.shape
    finite = values[np.isfinite(values)]
    if signed:
        bound = float(np.abs(finite).max()) if finite.size else 1.0
        lo, hi, ramp = -(bound or 1.0), bound or 1.0, st.DIVERGING
    else:
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        ramp = st.SEQUENTIAL
    label_w = min(max((stringWidth(s, st.SANS, _TICK) for s in row_labels), default=0.0) + 6, width * 0.34)
    cell_w = (width - label_w - 8) / max(n_cols, 1)
    cell_h = max(7.0, min(14.0, 260.0 / max(n_rows, 1)))
    plot_h = n_rows * cell_h
    bar_h = 30.0
    height = plot_h + 24 + bar_h
    d = Drawing(width, height)
    d.initialFontName, d.initialFontSize = st.SANS, _TICK
    x0, y_top = label_w + 4, height
    for i in range(n_rows):
        y = y_top - (i + 1) * cell_h
        label = charts.fit_text(row_labels[i], label_w - 6)
        d.add(_text(x0 - 4, y + cell_h / 2 - 2.2, label, anchor="end"))
        for j in range(n_cols):
            v = values[i, j]
            if not math.isfinite(v):
                continue
            fill = st.rgb(_colour(v, lo, hi, ramp))
            d.add(Rect(x0 + j * cell_w, y, cell_w, cell_h, fillColor=fill, strokeColor=None))
            if crossed is not None and crossed[i, j]:
                ink = st.rgb(st.TEXT)
                cx, cy, r = x0 + (j + 0.5) * cell_w, y + cell_h / 2, min(cell_w, cell_h) * 0.3
                d.add(Line(cx - r, cy - r, cx + r, cy + r, strokeColor=ink, strokeWidth=0.6))
                d.add(Line(cx - r, cy + r, cx + r, cy - r, strokeColor=ink, strokeWidth=0.6))
    frame = Rect(x0, y_top - plot_h, n_cols * cell_w, plot_h, fillColor=None, strokeColor=st.rgb(st.MUTED_TEXT))
    frame.strokeWidth = 0.5
    d.add(frame)
    # Unit numbers under the columns: every one when they fit, else a round step.
    need = stringWidth(str(n_cols), st.SANS, _TICK) + 4
    steps = (m * 10**k for k in range(7) for m in (1, 2, 5))
    step = next(s for s in steps if s * cell_w >= need or s >= n_cols)
    base = y_top - plot_h
    for j in range(0, n_cols, step):
        d.add(_text(x0 + (j + 0.5) * cell_w, base - 8, str(j), anchor="middle", colour=st.MUTED_TEXT))
    d.add(_text(x0 + n_cols * cell_w / 2, base - 18, xlabel, size=_LABEL, anchor="middle"))
    # The colour bar.
    bar_w, bar_y = min(160.0, width * 0.4), 8.0
    bx = width - bar_w - 8
    segments = 40
    for k in range(segments):
        t = lo + (hi - lo) * (k + 0.5) / segments
        fill = st.rgb(_colour(t, lo, hi, ramp))
        d.add(Rect(bx + k * bar_w / segments, bar_y + 8, bar_w / segments + 0.2, 6, fillColor=fill, strokeColor=None))
    for where, v in ((0.0, lo), (0.5, (lo + hi) / 2), (1.0, hi)):
        d.add(_text(bx + where * bar_w, bar_y, sig(v, 3).replace("-", "−"), anchor="middle", colour=st.MUTED_TEXT))
    d.add(_text(bx - 6, bar_y + 8, scale_label, anchor="end"))
    return d


def _weights_rows(net: NetworkResult) -> tuple[np.ndarray, list[str], bool]:
    """The weights heatmap's rows (input columns) and whether some columns were left out."""
    scaled = net.scaled_weights.T  # (F, units)
    names = list(net.feature_names)
    if len(names) <= _MAX_FEATURES:
        return scaled, names, False
    strength = np.nanmax(np.abs(scaled), axis=1)
    keep = np.sort(np.argsort(-strength, kind="stable")[:_MAX_FEATURES])
    return scaled[keep], [names[i] for i in keep], True


def network(facts: Facts, number: int) -> list[Flowable]:
    net = facts.network
    if net is None:
        return []
    out = [PageBreak()] + section_heading("network", number)
    w = facts.width
    out.append(
        para(
            f"The network computes {net.architecture or 'layers that could not be observed'}. Its first layer's "
            f"weights and the activity of its hidden units were read on {net.n_rows:,} rows. {net.input_mapping}"
        )
    )
    if net.weights.size:
        out.append(sub("First-layer weights", "s-network-weights"))
        values, names, trimmed = _weights_rows(net)
        shown = values.shape[1]
        out.append(
            heatmap(
                values,
                names,
                xlabel=f"First-layer unit ({net.first_layer})",
                scale_label="weight × standard deviation",
                width=w,
            )
        )
        text = (
            f"Each cell: a first-layer unit's weight on an input column times the column's standard deviation, "
            f"the change in the unit's input when the column moves by one standard deviation (orange raises it, "
            f"blue lowers it). Units 0 to {shown - 1} of {net.n_first_units}."
        )
        if trimmed:
            text += f" The {_MAX_FEATURES} columns with the largest weights of the {len(net.feature_names)} are shown."
        out.append(caption(text))
    if net.layers:
        out.append(sub("Mean activation per layer and unit", "s-network-activations"))
        grid = net.activation_grid()
        dead = np.zeros(grid.shape, dtype=bool)
        for i, layer in enumerate(net.layers):
            idx = layer.dead_units
            idx = idx[idx < grid.shape[1]]
            dead[i, idx] = True
        labels = [f"{layer.name} · {layer.activation}" for layer in net.layers]
        out.append(heatmap(grid, labels, xlabel="Unit", scale_label="mean activation", width=w, crossed=dead))
        out.append(
            caption(
                f"Each cell: a hidden unit's mean output over the {net.n_rows:,} rows (orange above zero, blue "
                f"below). ×: a ReLU unit that outputs zero on every row (dead). At most {net.max_units} units of a "
                "layer are drawn; the table counts every unit."
            )
        )
        rows = [["Layer", "Modules", "Units", "Mean activation (lowest to highest unit)", "Dead units", "Inactive"]]
        for layer in net.layers:
            mean = np.asarray(layer.mean, dtype=float)
            span = f"{sig(float(mean.min()), 3)} to {sig(float(mean.max()), 3)}" if mean.size else "—"
            relu = layer.activation in RELU_KINDS and layer.inactive_share is not None
            share = pct(float(np.mean(layer.inactive_share))) if relu and layer.inactive_share is not None else "—"
            dead_text = f"{layer.dead_units.size} ({pct(layer.dead_units.size / layer.n_units)})" if relu else "—"
            rows.append([layer.name, layer.modules, f"{layer.n_units:,}", span, dead_text, share])
        out.append(table(rows, [w * 0.1, w * 0.28, w * 0.08, w * 0.26, w * 0.14, w * 0.14], right=(2, 4, 5)))
        out.append(
            caption(
                "Inactive: the mean share of rows on which a ReLU unit outputs zero; dead units output zero on "
                "every row and pass nothing on. Other activations have no such state (—)."
            )
        )
    notes = [n for n in net.notes if n not in net.warnings]
    if notes:
        out += bullets(notes)
    if net.warnings:
        out += warnings(net.warnings)
    return out
