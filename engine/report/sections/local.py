"""The local explanations section: a few rows, each explained by every attribution method present."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, KeepTogether, PageBreak

from engine.attribution import AttributionResult
from engine.explain.lime import lime_fidelity
from engine.explain.quality import faithfulness_summary
from engine.plan import SHAP_METHODS
from engine.report import charts
from engine.report.facts import Facts
from engine.report.formats import names, num, sig
from engine.report.layout import caption, para, section_heading, sub, table, warnings
from engine.report.texts import METHOD_TITLES

__all__ = ["local_explanations"]

_MAX_LOCAL_ROWS = 3
_MAX_BARS = 10  # features shown per local chart; the rest are summed into one row


def _local_rows(facts: Facts) -> list[int]:
    local = [a for a in facts.attributions]
    if not local:
        return []
    if facts.report.local_rows is not None:
        explained = set().union(*(set(int(r) for r in a.rows) for a in local))
        return [r for r in facts.report.local_rows if r in explained]
    common = [int(r) for r in local[0].rows]
    for a in local[1:]:
        explained = set(int(r) for r in a.rows)
        common = [r for r in common if r in explained]
    if not common:
        common = [int(r) for r in local[0].rows]
    return common[:_MAX_LOCAL_ROWS]


def _top_with_rest(features: Sequence[str], values: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
    """The ``k`` largest values by size, and the rest summed into one bar."""
    order = np.argsort(-np.abs(values), kind="stable")
    top = order[:k]
    labels = [features[i] for i in top]
    shown = values[top]
    if len(order) > k:
        rest = values[order[k:]]
        labels.append(f"{len(rest)} other features")
        shown = np.concatenate([shown, [rest.sum()]])
    return labels, shown


def local_explanations(facts: Facts, number: int) -> list[Flowable]:
    rows = _local_rows(facts)
    if not rows:
        return []
    out = [PageBreak()] + section_heading("local", number)
    w = facts.width
    methods = names([METHOD_TITLES.get(a.method, a.method) for a in facts.attributions])
    out.append(
        para(
            f"How individual rows were explained by {methods}. Orange bars raise the explained output, blue bars "
            f"lower it; at most {_MAX_BARS} features are shown per row and the rest are summed. Rows are 0-based "
            f"positions in {facts.data_name}."
        )
    )
    out += _faithfulness(facts.attributions, w)
    for row in rows:
        block: list[Flowable] = [sub(f"Row {row}", f"s-local-row-{row}")]
        for a in facts.attributions:
            where = np.flatnonzero(np.asarray(a.rows) == row)
            if where.size == 0:
                continue
            i = int(where[0])
            block += _local_one(a, i, w)
        if len(block) > 1:
            out.append(CondPageBreak(80 * mm))
            out += block
    return out


def _faithfulness(attributions: Sequence[AttributionResult], width: float) -> list[Flowable]:
    """How faithful each explanation is to the model: its deletion and insertion figures, as the GUI shows them."""
    found = [(a, f) for a in attributions if (f := faithfulness_summary(a)) is not None]
    if not found:
        return []
    rows: list[list[Any]] = [
        ["Method", "Rows", "Deletion area", "Gain", "Insertion area", "Gain", "Output"],
    ]
    for a, f in found:
        rows.append(
            [
                METHOD_TITLES.get(a.method, a.method),
                f"{f.n_rows:,}",
                num(f.deletion_auc),
                num(f.deletion_gain),
                num(f.insertion_auc),
                num(f.insertion_gain),
                f.output,
            ]
        )
    first, cell = 34 * mm, 19 * mm
    widths = [first, 13 * mm, cell, cell, cell, cell, width - first - 13 * mm - 4 * cell]
    block: list[Flowable] = [
        sub("Faithfulness of the explanations", "s-local-faithfulness"),
        para(
            "Each explained row's features are removed (deletion) or put back (insertion) in the order the "
            "explanation ranks them, and the model's output is followed; medians over the rows. A faithful "
            "explanation makes the output fall fast (a small deletion area) and rise fast (a large insertion "
            "area). Gain is the improvement over random feature orders: positive means the explanation's order "
            "is better than chance."
        ),
        table(rows, widths, right=(1, 2, 3, 4, 5)),
    ]
    block += warnings([w for _, f in found if (w := f.warning()) is not None])
    return [KeepTogether(block)]


def _local_one(a: AttributionResult, i: int, width: float) -> list[Flowable]:
    title = METHOD_TITLES.get(a.method, a.method)
    values = np.asarray(a.values[i], dtype=float)
    prediction = float(a.predictions[i]) if len(a.predictions) > i else math.nan
    if a.method == "lime":
        labels, shown = _top_with_rest(a.feature_names, values, _MAX_BARS)
        drawing = charts.signed_bar_chart(labels, shown, xlabel=f"LIME weight on {a.output_name}", width=width)
        r2 = a.quality.get("r2")
        jac = a.quality.get("stability_jaccard")
        local = a.quality.get("local_prediction")
        bits = [f"model output {sig(prediction)}"]
        if local is not None:
            bits.append(f"surrogate prediction {sig(local[i])}")
        if r2 is not None:
            bits.append(f"weighted R² {num(r2[i], 2)}")
        if jac is not None:
            k = int(a.summary.get("top_k", 0)) or None
            bits.append(
                f"stability (Jaccard of the top-{k} features over reruns) {num(jac[i], 2)}"
                if k
                else f"stability {num(jac[i], 2)}"
            )
        text = f"Explaining {a.output_name} ({a.output_space}): " + "; ".join(bits) + "."
        # The engine's verdict, the one the GUI's badge shows: R² and the surrogate's miss at the row.
        verdict = lime_fidelity(a, i)
        unfaithful = warnings([verdict.message()]) if not verdict.ok else []
        return [KeepTogether([para(title, "h3"), drawing, caption(text), *unfaithful])]
    labels, shown = _top_with_rest(a.feature_names, values, _MAX_BARS)
    if a.base_values is not None and a.method in SHAP_METHODS + ("ig",):
        base = float(a.base_values[i])
        drawing = charts.waterfall_chart(labels, shown, base=base, xlabel=_output_label(a), width=width)
        gap = prediction - (base + float(values.sum()))
        text = (
            f"Explaining {a.output_name} on the {a.output_space} scale: base value {sig(base)}, "
            f"model output {sig(prediction)}; the contributions add up to within {sig(abs(gap), 2)}."
        )
    else:
        drawing = charts.signed_bar_chart(labels, shown, xlabel=f"{title} attribution", width=width)
        text = f"Explaining {a.output_name} ({a.output_space}); model output {sig(prediction)}."
    return [KeepTogether([para(title, "h3"), drawing, caption(text)])]


def _output_label(a: AttributionResult) -> str:
    """The explained output for an axis, naming its scale unless the name already does."""
    if a.output_space and a.output_space not in a.output_name:
        return f"{a.output_name} ({a.output_space})"
    return a.output_name
