"""The global feature importance section: one block per result, in a fixed order.

Permutation importance first, then the mean absolute attribution of each
attribution method other than LIME (whose weights are local only), the
model's native importance, and the agreement between the methods' rankings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, PageBreak, Spacer

from engine.attribution import AttributionResult
from engine.explain.native import NativeImportanceResult
from engine.explain.permutation import PermutationImportanceResult
from engine.explain.quality import AgreementResult
from engine.plan import SHAP_METHODS
from engine.report import charts
from engine.report import style as st
from engine.report.facts import Facts
from engine.report.formats import num, pct
from engine.report.layout import caption, para, section_heading, sub, table, warnings
from engine.report.texts import METHOD_TITLES

__all__ = ["importance"]

_MAX_GLOBAL_BARS = 30  # features shown in a global importance chart (a taller chart would not fit a page)


def importance(facts: Facts, number: int) -> list[Flowable]:
    perm, native = facts.permutation, facts.native
    attributions = [a for a in facts.attributions if a.method != "lime"]
    if perm is None and native is None and not attributions:
        return []
    out = [PageBreak()] + section_heading("importance", number)
    w = facts.width
    if perm is not None:
        out += _permutation(perm, w)
    for a in attributions:
        out += _mean_attribution(a, w)
    if native is not None:
        out += _native(native, w)
    if facts.agreement is not None:
        out += _agreement(facts.agreement, w)
    return out


def _permutation(perm: PermutationImportanceResult, width: float) -> list[Flowable]:
    """The permutation importance chart (the most important features) and table (all of them)."""
    w = width
    out: list[Flowable] = [sub("Permutation importance", "s-importance-permutation")]
    order = np.argsort(-perm.mean, kind="stable")
    names = [perm.feature_names[i] for i in order]
    level = f"{round(perm.confidence * 100):g} %"
    out.append(
        para(
            f"Score: {perm.scoring}, {num(perm.baseline_score)} on {perm.n_rows:,} unshuffled rows; "
            f"{perm.n_repeats} shuffles per feature. Bars show the mean drop in the score when the feature "
            f"is shuffled; whiskers its {level} confidence interval."
        )
    )
    shown = order[:_MAX_GLOBAL_BARS]
    out.append(
        charts.bar_chart(
            names[:_MAX_GLOBAL_BARS],
            perm.mean[shown],
            low=perm.ci_low[shown],
            high=perm.ci_high[shown],
            xlabel=f"Drop in {perm.scoring} when shuffled",
            width=w,
        )
    )
    if len(order) > _MAX_GLOBAL_BARS:
        out.append(
            caption(
                f"The chart shows the {_MAX_GLOBAL_BARS} most important of {len(order)} features; "
                "the table lists them all."
            )
        )
    rows: list[list[Any]] = [["Rank", "Feature", "Mean drop", "Std. dev.", f"{level} CI low", f"{level} CI high"]]
    for rank, i in enumerate(order, start=1):
        rows.append(
            [
                str(rank),
                perm.feature_names[i],
                num(perm.mean[i], 4),
                num(perm.std[i], 4),
                num(perm.ci_low[i], 4),
                num(perm.ci_high[i], 4),
            ]
        )
    out.append(Spacer(1, 2 * mm))
    out.append(table(rows, [w * 0.08, w * 0.36, w * 0.14, w * 0.14, w * 0.14, w * 0.14], right=(0, 2, 3, 4, 5)))
    if perm.warnings:
        out += warnings(perm.warnings)
    return out


def _mean_attribution(a: AttributionResult, width: float) -> list[Flowable]:
    """Mean |attribution| of each feature over the explained rows (mean |SHAP| for the SHAP methods)."""
    title = METHOD_TITLES.get(a.method, a.method)
    label = "SHAP" if a.method in SHAP_METHODS else "attribution"
    mean_abs = np.nanmean(np.abs(np.asarray(a.values, dtype=float)), axis=0)
    order = np.argsort(-mean_abs, kind="stable")[:_MAX_GLOBAL_BARS]
    block: list[Flowable] = [
        sub(f"Mean |{label}|: {title}", f"s-importance-{a.method}"),
        para(
            f"Mean absolute {title} value of each feature over {len(a.rows):,} rows, explaining "
            f"{a.output_name} on the {a.output_space} scale. Larger means the feature moves this output more, "
            "in either direction."
            + (
                f" The {_MAX_GLOBAL_BARS} largest of {len(mean_abs)} features are shown."
                if len(mean_abs) > _MAX_GLOBAL_BARS
                else ""
            )
        ),
        charts.bar_chart(
            [a.feature_names[i] for i in order],
            mean_abs[order],
            xlabel=f"Mean |{label} value| ({a.output_space})",
            width=width,
        ),
    ]
    out: list[Flowable] = [KeepTogether(block)]
    if a.warnings:
        out += warnings(a.warnings)
    return out


def _native(native: NativeImportanceResult, width: float) -> list[Flowable]:
    """The model's own importance, summed over the encoded columns of each raw feature."""
    order = np.argsort(-native.importance, kind="stable")[:_MAX_GLOBAL_BARS]
    basis = {"impurity": "mean impurity decrease", "coefficient×std": "|coefficient| × standard deviation"}
    block: list[Flowable] = [
        sub(f"Native importance: {native.estimator or 'model'}", "s-importance-native"),
        para(
            f"The model's own importance ({basis.get(native.basis, native.basis)}), summed over the "
            "encoded columns each raw feature becomes."
        ),
        charts.bar_chart(
            [native.feature_names[i] for i in order],
            native.importance[order],
            xlabel=f"Importance ({native.basis})",
            width=width,
            colour=st.SECONDARY,
        ),
    ]
    if native.caveat:
        block += warnings([native.caveat])
    return [KeepTogether(block)]


def _agreement(agreement: AgreementResult, width: float) -> list[Flowable]:
    """Spearman rank correlation (and top-k overlap) between the methods' global rankings."""
    methods = list(agreement.methods)
    rows: list[list[Any]] = [["", *methods]]
    for i, name in enumerate(methods):
        rows.append([name, *(num(agreement.spearman[i, j], 2) for j in range(len(methods)))])
    first = 42 * mm
    block: list[Flowable] = [
        sub("Agreement between methods", "s-importance-agreement"),
        para(
            f"Spearman rank correlation between the global feature rankings over the "
            f"{len(agreement.feature_names)} features they share (1 = the same order, 0 = unrelated, "
            f"−1 = reversed). The top {agreement.top_k} features overlap by "
            f"{pct(agreement.summary.get('mean_top_k_jaccard'))} on average (Jaccard)."
        ),
        table(
            rows,
            [first] + [(width - first) / max(1, len(methods))] * len(methods),
            right=tuple(range(1, len(methods) + 1)),
        ),
    ]
    return [KeepTogether(block)]
