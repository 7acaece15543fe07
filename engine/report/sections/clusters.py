"""The cluster analysis section, drawn from an :class:`~engine.explain.clusters.ExplanationClustersResult`."""

from __future__ import annotations

import math
from typing import Any

from reportlab.platypus import Flowable, PageBreak

from engine.report import charts
from engine.report.facts import Facts
from engine.report.formats import count, escape, num, pct, sig
from engine.report.layout import caption, markup, para, section_heading, table, warnings
from engine.report.texts import METHOD_TITLES

__all__ = ["cluster_analysis"]


def cluster_analysis(facts: Facts, number: int) -> list[Flowable]:
    cl = facts.clusters
    if cl is None:
        return []
    out = [PageBreak()] + section_heading("clusters", number)
    w = facts.width
    method = METHOD_TITLES.get(cl.attribution_method, cl.attribution_method)
    tried = ", ".join(f"k={int(k)}: {num(s, 2)}" for k, s in zip(cl.k_tried, cl.silhouettes))
    out.append(
        para(
            f"{len(cl.rows):,} rows were grouped into {cl.k} clusters by their {method} attributions "
            f"({'standardised' if cl.standardized else 'in attribution units'}). Mean silhouette per number of "
            f"clusters tried: {tried}."
        )
    )
    names = [f"cluster {p.cluster} (n={p.size:,})" for p in cl.profiles] or [f"cluster {i}" for i in range(cl.k)]
    axis = "PC" if cl.projection_method == "pca" else "t-SNE "
    ev = cl.explained_variance
    xl = f"{axis}1" + (f" ({pct(ev[0], 0)} of variance)" if ev is not None and len(ev) > 0 else "")
    yl = f"{axis}2" + (f" ({pct(ev[1], 0)} of variance)" if ev is not None and len(ev) > 1 else "")
    scatter = charts.scatter_chart(cl.projection, cl.labels, names, xlabel=xl, ylabel=yl, width=w * 0.8, height=230)
    scatter.hAlign = "CENTER"
    out.append(scatter)
    out.append(
        caption(
            f"Rows projected onto two dimensions ({cl.projection_method.upper()}) of their attribution "
            "vectors, coloured by cluster."
        )
    )
    rows: list[list[Any]] = [["Cluster", "Rows", "Share", "Mean output", "K-LIME R²", "What stands out"]]
    for p in cl.profiles:
        r2 = cl.klime.r2[p.cluster] if p.cluster < len(cl.klime.r2) else math.nan
        highlights = "<br/>".join(escape(h) for h in p.highlights) or "—"
        rows.append(
            [
                str(p.cluster),
                count(p.size),
                pct(p.share),
                sig(p.mean_prediction),
                num(r2, 2),
                markup(highlights, "cell"),
            ]
        )
    out.append(table(rows, [w * 0.09, w * 0.09, w * 0.1, w * 0.12, w * 0.11, w * 0.49], right=(1, 2, 3, 4)))
    out.append(
        caption(
            f"Mean output is the mean {cl.output_name} of the cluster's rows. K-LIME fits one ridge "
            f"surrogate per cluster; the global surrogate over all rows has R² "
            f"{num(cl.klime.global_r2, 2)}."
        )
    )
    if cl.warnings:
        out += warnings(cl.warnings)
    return out
