"""The predictive-performance section, drawn from a :class:`~engine.explain.performance.PerformanceResult`."""

from __future__ import annotations

from typing import Any

import numpy as np
from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, PageBreak, Paragraph, Table, TableStyle

from engine.explain.performance import PerformanceResult
from engine.report import charts
from engine.report import style as st
from engine.report.facts import Facts
from engine.report.formats import escape, num
from engine.report.layout import caption, para, right_style, section_heading, sub, table, warnings
from engine.report.texts import METRIC_TEXT

__all__ = ["performance"]


def performance(facts: Facts, number: int) -> list[Flowable]:
    perf = facts.performance
    if perf is None:
        return []
    has_charts = bool(perf.roc) or perf.calibration is not None or perf.confusion is not None
    out = [PageBreak() if has_charts else CondPageBreak(80 * mm)] + section_heading("performance", number)
    dropped = f" ({perf.n_dropped:,} rows without a target were left out)" if perf.n_dropped else ""
    out.append(para(f"Measured on {perf.n_rows:,} rows of {facts.data_name}{dropped}."))
    rows: list[list[Any]] = [["Metric", "Value", "Meaning"]]
    for key, value in perf.metrics.items():
        label, meaning = METRIC_TEXT.get(key, (key, ""))
        rows.append([label, num(value), meaning])
    w = facts.width
    out.append(table(rows, [w * 0.2, w * 0.12, w * 0.68], right=(1,)))
    if perf.confusion is not None and len(perf.class_labels):
        out.append(sub("Confusion matrix", "s-performance-confusion"))
        out += _confusion(perf, w)
    charts_row: list[Flowable] = []
    half = (w - 8) / 2
    if perf.roc:
        series = [
            charts.Series(c.fpr, c.tpr, st.categorical(i), f"class {c.label} (AUC {num(c.auc)})", width=1.5)
            for i, c in enumerate(perf.roc)
        ]
        charts_row.append(
            charts.line_chart(
                series,
                xlabel="False positive rate",
                ylabel="True positive rate",
                width=half,
                height=190,
                xlim=(0, 1),
                ylim=(0, 1),
                diagonal=True,
            )
        )
    cal = perf.calibration
    if cal is not None and cal.count.size:
        mids = np.asarray(cal.mean_predicted, dtype=float)
        series = [
            charts.Series(mids, np.asarray(cal.observed, dtype=float), st.PRIMARY, "model", markers=True, width=1.3)
        ]
        charts_row.append(
            charts.line_chart(
                series,
                xlabel=f"Mean predicted {cal.predicted}",
                ylabel="Observed frequency",
                width=half,
                height=190,
                xlim=(0, 1),
                ylim=(0, 1),
                diagonal=True,
            )
        )
    if charts_row:
        out.append(sub("ROC and calibration", "s-performance-curves"))
        grid = Table([charts_row], colWidths=[half + 4] * len(charts_row), hAlign="LEFT")
        grid.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), st.SANS),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 4),
                ]
            )
        )
        out.append(grid)
        text = []
        if perf.roc:
            text.append(
                "Left: ROC curve"
                + ("s (one class against the rest)" if len(perf.roc) > 1 else "")
                + "; the dashed diagonal is a model that guesses."
            )
        if cal is not None:
            counts = ", ".join(str(int(c)) for c in cal.count)
            text.append(
                f"Right: reliability diagram in {len(cal.count)} equal-width bins (rows per bin: "
                f"{counts}); points on the diagonal are perfectly calibrated."
            )
        out.append(caption(" ".join(text)))
    if perf.warnings:
        out += warnings(perf.warnings)
    return out


def _confusion(perf: PerformanceResult, width: float) -> list[Flowable]:
    conf = np.asarray(perf.confusion, dtype=float)
    labels = [str(c) for c in perf.class_labels]
    k = len(labels)
    totals = conf.sum(axis=1, keepdims=True)
    share = np.divide(conf, totals, out=np.zeros_like(conf), where=totals > 0)
    rows: list[list[Any]] = [["True \\ predicted", *labels, "Rows"]]
    shading: list[tuple[int, int, str]] = []
    for i in range(k):
        row: list[Any] = [labels[i]]
        for j in range(k):
            level = int(round(share[i, j] * (len(st.SEQUENTIAL) - 1)))
            colour = st.SEQUENTIAL[level]
            # Beyond five classes the cells are too narrow for the percentage; the shading carries it.
            text = f"{int(conf[i, j]):,}" + (f" ({share[i, j] * 100:.1f} %)" if k <= 5 else "")
            if level >= 5:  # dark cells take white text
                row.append(Paragraph(f'<font color="#FFFFFF">{escape(text)}</font>', right_style("cell")))
            else:
                row.append(text)
            shading.append((i + 1, j + 1, colour))
        row.append(f"{int(totals[i, 0]):,}")
        rows.append(row)
    cell_w = min(32 * mm, (width - 36 * mm - 18 * mm) / k)
    out: list[Flowable] = [
        table(rows, [36 * mm] + [cell_w] * k + [18 * mm], right=tuple(range(1, k + 2)), shading=shading),
        caption(
            "Rows are true classes, columns predicted classes (the most probable class); shading and "
            "percentages show shares of each true class."
        ),
    ]
    return out
