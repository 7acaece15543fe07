"""The partial dependence and ICE section, drawn from a :class:`~engine.explain.pdp.PartialDependenceResult`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak, Spacer, Table, TableStyle

from engine.explain.pdp import PartialDependenceResult
from engine.report import charts
from engine.report import style as st
from engine.report.facts import Facts
from engine.report.formats import pct, sig
from engine.report.layout import caption, para, section_heading, sub, table, warnings

__all__ = ["dependence"]

_MAX_DEPENDENCE = 6
_MAX_ICE = 40


def dependence(facts: Facts, number: int) -> list[Flowable]:
    dep = facts.dependence
    if dep is None or not dep.features:
        return []
    out = [PageBreak()] + section_heading("dependence", number)
    w = facts.width
    rank = {name: i for i, name in enumerate(facts.ranking())}
    ordered = sorted(dep.features, key=lambda f: rank.get(f.feature, len(rank)))[:_MAX_DEPENDENCE]
    lo, hi = (dep.percentiles + (math.nan, math.nan))[:2]
    out.append(
        para(
            f"Partial dependence (thick line) and individual conditional expectation curves (thin lines, at most "
            f"{_MAX_ICE} of the {dep.n_rows:,} rows drawn) of {dep.output_name} for the "
            f"{len(ordered)} most important features with curves. Numeric grids span the "
            f"{pct(lo, 0)} to {pct(hi, 0)} quantiles. Categorical features have no order, so they show one column "
            "per category (never a line joining categories): the mean, with the 5–95 % range of the rows as "
            "whiskers; category names too long for their column are replaced by letters that a key under the "
            "chart spells out."
        )
    )
    half = (w - 8) / 2
    cells: list[Flowable] = []
    for f in ordered:
        ice = np.asarray(f.ice, dtype=float)
        if _is_numeric_grid(f):
            grid = np.asarray(f.grid, dtype=float)
            step = max(1, math.ceil(ice.shape[0] / _MAX_ICE)) if ice.size else 1
            series = [charts.Series(grid, curve, "#B7D5EA", width=0.5) for curve in ice[::step]]
            series.append(
                charts.Series(grid, np.asarray(f.pdp, dtype=float), st.PRIMARY, "partial dependence", width=2.0)
            )
            if ice.size:
                series[0] = charts.Series(grid, ice[0], "#B7D5EA", "ICE (rows)", width=0.5)
            drawing = charts.line_chart(series, xlabel=f.feature, ylabel=dep.output_name, width=half, height=180)
        else:
            cats = [str(g) for g in f.grid]
            low = np.nanpercentile(ice, 5, axis=0) if ice.size else None
            high = np.nanpercentile(ice, 95, axis=0) if ice.size else None
            drawing = charts.column_chart(
                cats,
                np.asarray(f.pdp, dtype=float),
                low=low,
                high=high,
                xlabel=f.feature,
                ylabel=dep.output_name,
                width=half,
                height=180,
            )
        cells.append(drawing)
    grid_rows = [cells[i : i + 2] for i in range(0, len(cells), 2)]
    if len(grid_rows[-1]) == 1:
        grid_rows[-1].append(Spacer(1, 1))
    t = Table(grid_rows, colWidths=[half + 4, half + 4], hAlign="LEFT")
    # A key under a categorical chart makes it taller than its neighbour; both start at the top.
    t.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.SANS),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    out.append(t)
    if dep.pair is not None:
        out += _pair_table(dep, w)
    if dep.warnings:
        out += warnings(dep.warnings)
    return out


def _is_numeric_grid(f: Any) -> bool:
    """Whether a feature's curves may be drawn as lines: a numeric grid; categories never are."""
    if f.kind != "numeric":
        return False
    try:
        np.asarray(f.grid, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def _pair_table(dep: PartialDependenceResult, width: float) -> list[Flowable]:
    pair = dep.pair
    assert pair is not None
    values = np.asarray(pair.values, dtype=float)
    a, b = pair.features
    # Thin the grid to at most 8 × 8 cells so the table fits the page.
    ia = np.unique(np.linspace(0, len(pair.grid_a) - 1, min(8, len(pair.grid_a))).round().astype(int))
    ib = np.unique(np.linspace(0, len(pair.grid_b) - 1, min(8, len(pair.grid_b))).round().astype(int))
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    rows: list[list[Any]] = [[f"{a} \\ {b}", *[_short(pair.grid_b[j]) for j in ib]]]
    shading = []
    for r, i in enumerate(ia, start=1):
        row: list[Any] = [_short(pair.grid_a[i])]
        for c, j in enumerate(ib, start=1):
            v = values[i, j]
            level = 0 if vmax == vmin or not np.isfinite(v) else int(round((v - vmin) / (vmax - vmin) * 5))
            shading.append((r, c, st.SEQUENTIAL[level]))
            row.append(sig(v))
        rows.append(row)
    col = (width - 34 * mm) / len(ib)
    return [
        sub(f"Two-way partial dependence: {a} and {b}", "s-dependence-pair"),
        table(rows, [34 * mm] + [col] * len(ib), right=tuple(range(1, len(ib) + 1)), shading=shading),
        caption(f"Mean {dep.output_name} with {a} set to each row value and {b} to each column value."),
    ]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return sig(value, 4)
    return str(value)
