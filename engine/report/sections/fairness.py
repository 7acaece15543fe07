"""The fairness section: group outcomes with their intervals, the summary measures, the four-fifths and
Local Law 144 tables, the intersections, the proxy-risk table and the counterfactual flip test.

Drawn from the fairness analysis (:class:`~engine.explain.fairness.FairnessResult`) and the proxy table
(:class:`~engine.explain.proxies.ProxyResult`); either alone is enough.  Every group is shown with its
n, and a group with fewer rows than the analysis's minimum size is marked as one that never drives a
headline.  :func:`fairness_findings` gives the executive summary's sentences and
:func:`definitions` the methodology's definitions of every measure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, KeepTogether, PageBreak, Paragraph, Spacer

from engine.explain.fairness import (
    FOUR_FIFTHS,
    LL144_SMALL_SHARE,
    MEASURES,
    Disparity,
    FairnessGroup,
    FairnessResult,
    FlipTest,
)
from engine.explain.proxies import HIGH_RISK, MEDIUM_RISK, ProxyResult
from engine.report import charts
from engine.report import style as st
from engine.report.facts import Facts
from engine.report.formats import count, escape, names, num
from engine.report.layout import caption, markup, para, right_style, section_heading, sub, table, tint, warnings

__all__ = ["fairness", "fairness_findings", "definitions", "FIGURE_TEXT", "MEASURE_TEXT"]

#: Figure of :data:`engine.explain.fairness.FIGURES` -> (column label, definition).
FIGURE_TEXT: dict[str, tuple[str, str]] = {
    "base_rate": ("Base rate", "Share of the group's rows whose observed outcome is the favourable one."),
    "selection_rate": (
        "Selection rate",
        "Share of the group's rows given the favourable decision; for a regressor the scoring rate, the share "
        "of rows on the favourable side of the median prediction.",
    ),
    "tpr": (
        "TPR",
        "True positive rate: of the rows whose observed outcome is favourable, the share given the favourable "
        "decision.",
    ),
    "fpr": (
        "FPR",
        "False positive rate: of the rows whose observed outcome is unfavourable, the share given the "
        "favourable decision.",
    ),
    "fnr": (
        "FNR",
        "False negative rate: of the rows whose observed outcome is favourable, the share denied the "
        "favourable decision (1 − TPR).",
    ),
    "precision": (
        "Precision",
        "Of the rows given the favourable decision, the share whose observed outcome is favourable.",
    ),
    "accuracy": ("Accuracy", "Share of the group's rows whose decision equals the observed outcome."),
    "mean_score": (
        "Mean score",
        "Mean predicted probability of the favourable class (a regressor's mean prediction).",
    ),
    "mean_observed": (
        "Observed",
        "Observed share of the favourable class (a regressor's mean target); set against the mean score it "
        "shows whether the scores are calibrated for the group.",
    ),
    "ece": (
        "ECE",
        "Expected calibration error: over ten equal-width bins of the predicted probability, the mean of "
        "|mean predicted − observed share| weighted by the bin's rows.",
    ),
    "mae": ("MAE", "Mean absolute error of a regressor, in the target's units."),
}

#: Summary measure of :data:`engine.explain.fairness.MEASURES` -> (name, definition), as fairlearn defines it.
MEASURE_TEXT: dict[str, tuple[str, str]] = {
    "demographic_parity_difference": (
        "Demographic parity difference",
        "Largest minus smallest selection rate over the groups (0 = equal rates).",
    ),
    "demographic_parity_ratio": (
        "Demographic parity ratio",
        "Smallest over largest selection rate over the groups (1 = equal rates).",
    ),
    "equalized_odds_difference": (
        "Equalized odds difference",
        "The larger of the two gaps, largest minus smallest true positive rate and largest minus smallest "
        "false positive rate (0 = equal error rates).",
    ),
    "equal_opportunity_difference": (
        "Equal opportunity difference",
        "Largest minus smallest true positive rate over the groups.",
    ),
    "fpr_ratio": ("False positive rate ratio", "Smallest over largest false positive rate over the groups."),
}

# The other terms the section uses, defined in the methodology after the figures and measures.
_TERMS: tuple[tuple[str, str], ...] = (
    (
        "Four-fifths ratio",
        f"A group's selection rate over its reference group's; under {FOUR_FIFTHS:g} (four fifths) it is "
        "flagged, as the US EEOC's four-fifths rule of thumb does.",
    ),
    (
        "Two-proportion test",
        "A pooled two-sided z-test of a group's selection rate against the reference group's; its p-values are "
        "adjusted by Holm's method over the comparisons of one attribute, and a difference is called "
        "significant when the adjusted p-value is under 0.05.",
    ),
    (
        "Impact ratio (Local Law 144)",
        "A category's selection (or scoring) rate over the rate of the most selected category. Rows whose "
        f"category is unknown are counted and left out; categories under {LL144_SMALL_SHARE:.0%} of the rows with a "
        "known category may be left out of the ratios, which the table states when done.",
    ),
    (
        "Largest gap",
        "The largest difference in selection rate, true or false positive rate between two groups of an "
        "attribute that both reach the minimum size, with its bootstrap interval; the headline is the largest "
        "over the attributes. A gap is never negative, so near zero its interval reads as an upper bound.",
    ),
    (
        "Interval",
        "A percentile interval from bootstrap resamples drawn within each combination of groups, so each "
        "group keeps its size; every figure of one resample comes from the same rows.",
    ),
    (
        "Proxy risk",
        "How well an input alone predicts the attribute (2·AUC − 1 of a small cross-validated tree, or its R²) "
        f"when the model uses the input (its permutation importance interval lies above zero), else 0; from "
        f"{MEDIUM_RISK:g} medium, from {HIGH_RISK:g} high.",
    ),
    (
        "Flip",
        "A row whose decision changes when only one input (the attribute or its proxy) is set to another value.",
    ),
)

_SMALL_MARK = "†"
_MAX_GROUPS_CHARTED = 30  # bars in one chart (a taller chart would not fit a page)
_EXAMPLES_PER_GROUP = 3  # flip-test example rows shown per group
_SMALL_GROUPS_NAMED = 5


# -- formatting ------------------------------------------------------------------------------------------


def _interval(low: float, high: float) -> str:
    """``"0.412 to 0.455"``, or ``"—"`` without an interval."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"{num(low)} to {num(high)}"


def _with_interval(value: float, low: float, high: float) -> Paragraph:
    """A right-aligned cell: the value, and its interval on a second, smaller line."""
    text = num(value)
    if math.isfinite(value) and math.isfinite(low) and math.isfinite(high):
        between = " to " if low < 0 or high < 0 else "–"  # "−0.2–−0.1" would read as a subtraction
        text += f'<br/><font size="6.4" color="{st.MUTED_TEXT}">{num(low)}{between}{num(high)}</font>'
    return Paragraph(text, right_style("cell"))


def _p_value(p: float) -> str:
    if not math.isfinite(p):
        return "—"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _level(result: FairnessResult) -> str:
    return f"{round(result.confidence * 100):g} %"


def _favourable(result: FairnessResult) -> str:
    """The favourable outcome as the report states it."""
    if result.task == "regression":
        side = "above" if str(result.favourable) == "high" else "below"
        return f"a prediction {side} the median prediction ({num(result.median_score)})"
    return f"class {result.favourable}"


def _decision_rule(result: FairnessResult, facts: Facts) -> str:
    """How a row gets the favourable decision."""
    if result.task == "regression":
        return "A group's scoring rate is the share of its rows with such a prediction."
    classes = facts.header.model.classes if facts.header.model else None
    if classes is not None and len(classes) == 2:
        return f"A row gets the favourable decision when {result.output_name} exceeds {result.threshold:g}."
    if classes is not None:
        return f"A row gets the favourable decision when {result.favourable} is its most probable class."
    return (
        f"A row gets the favourable decision when {result.output_name} exceeds {result.threshold:g} (a binary "
        f"model), or when {result.favourable} is its most probable class."
    )


def _gap_markup(d: Disparity, result: FairnessResult) -> str:
    """A gap between two judged groups in words, with both groups' n and the interval (markup)."""
    what = _rate_name(d.metric, result)
    return (
        f"the {escape(what)} is {num(d.high_value)} for <b>{escape(d.high_group)}</b> (n = {count(d.high_n)}) and "
        f"{num(d.low_value)} for <b>{escape(d.low_group)}</b> (n = {count(d.low_n)}), a gap of "
        f"{num(d.difference)} ({_level(result)} CI {num(d.ci_low)} to {num(d.ci_high)})"
    )


def _rate_name(metric: str, result: FairnessResult) -> str:
    """A figure's name in a sentence: ``"false positive rate"``; a regressor's selection rate is its scoring rate."""
    if metric == "selection_rate" and result.task == "regression":
        return "scoring rate"
    label = FIGURE_TEXT.get(metric, (metric, ""))[0]
    return {"TPR": "true positive rate", "FPR": "false positive rate", "FNR": "false negative rate"}.get(
        label, label.lower()
    )


def _group_label(g: FairnessGroup) -> str:
    return g.group + (" (reference)" if g.reference else "") + ("" if g.judged else f" {_SMALL_MARK}")


# -- the executive summary --------------------------------------------------------------------------------


def fairness_findings(facts: Facts) -> list[str]:
    """The executive summary's fairness sentences (markup): the largest disparity between groups large
    enough to judge, with its interval and both groups' n; the other attributes' largest gaps; groups
    below four-fifths of their reference; and each attribute's strongest proxy."""
    result, proxies = facts.fairness, facts.proxies
    out: list[str] = []
    if result is not None:
        out += _gap_sentences(result)
        out += _four_fifths_sentences(result)
    if proxies is not None:
        out += _proxy_sentences(proxies, facts)
    return out


def _gap_sentences(result: FairnessResult) -> list[str]:
    out: list[str] = []
    size = result.min_group_size
    headline = result.headline
    if headline is not None:
        out.append(
            f"The largest disparity between groups with at least {size} rows is in "
            f"<b>{escape(headline.attribute)}</b>: {_gap_markup(headline, result)}."
        )
    gaps = {d.attribute: d for d in result.largest_gaps}
    for attribute in result.attributes:
        groups = result.rows(attribute)
        gap = gaps.get(attribute)
        if gap is not None and (headline is None or gap.attribute != headline.attribute):
            sentence = f"The largest gap in <b>{escape(attribute)}</b>: {_gap_markup(gap, result)}."
        elif gap is None and len(groups) >= 2:
            sentence = (
                f"The groups of <b>{escape(attribute)}</b> are not compared in a headline: fewer than two have "
                f"at least {size} rows."
            )
        else:
            sentence = ""
        small = [g for g in groups if not g.judged]
        if small:
            listed = [f"{escape(g.group)} (n = {count(g.n)})" for g in small[:_SMALL_GROUPS_NAMED]]
            if len(small) > _SMALL_GROUPS_NAMED:
                listed.append(f"{len(small) - _SMALL_GROUPS_NAMED} more")
            aside = (
                f"In <b>{escape(attribute)}</b>, {names(listed)} {'are' if len(small) > 1 else 'is'} too small to "
                f"drive a headline (fewer than {size} rows); the fairness section reports "
                f"{'them' if len(small) > 1 else 'it'}."
            )
            sentence = f"{sentence} {aside}" if sentence else aside
        if sentence:
            out.append(sentence)
    return out


def _four_fifths_sentences(result: FairnessResult) -> list[str]:
    out: list[str] = []
    for attribute in result.attributes:
        flagged = [c for c in result.comparisons if c.attribute == attribute and c.judged and c.below_four_fifths]
        if not flagged:
            continue
        parts = [
            f"<b>{escape(c.group)}</b> (n = {count(c.n)}; ratio {num(c.ratio)}, {_level(result)} CI "
            f"{num(c.ratio_ci_low)} to {num(c.ratio_ci_high)}{'' if c.significant else '; not significant'})"
            for c in flagged
        ]
        rate = "scoring rate" if result.task == "regression" else "selection rate"
        subject = f"the {rate} of {parts[0]} is" if len(parts) == 1 else f"the {rate}s of {names(parts)} are"
        out.append(
            f"In <b>{escape(attribute)}</b>, {subject} under four fifths of that of the reference group "
            f"<b>{escape(flagged[0].reference)}</b>."
        )
    return out


def _proxy_sentences(proxies: ProxyResult, facts: Facts) -> list[str]:
    out: list[str] = []
    for a in proxies.attributes:
        if a.direct_input:
            continue  # the summary says it is a model input; the flip test measures its direct use
        together = _predictiveness_text(a.kind, a.all_inputs_auc, a.all_inputs_r2)
        if not a.strongest:
            out.append(
                f"No input the model uses is a medium or high proxy risk for <b>{escape(a.attribute)}</b>"
                + (f" (all inputs together predict it with {together})." if together else ".")
            )
            continue
        row = next((r for r in proxies.table(a.attribute) if r.feature == a.strongest), None)
        alone = "" if row is None else _predictiveness_text(a.kind, row.auc, row.r2)
        effect = facts.importance_of(a.strongest)
        out.append(
            f"The strongest proxy of <b>{escape(a.attribute)}</b> is <b>{escape(a.strongest)}</b>"
            + (f": on its own it predicts the attribute with {alone}" if alone else "")
            + (f", and the model uses it ({escape(effect)})" if effect else "")
            + "."
        )
    return out


def _predictiveness_text(kind: str, auc: float, r2: float) -> str:
    if kind == "r2":
        return f"R² {num(r2)}" if math.isfinite(r2) else ""
    return f"AUC {num(auc)}" if math.isfinite(auc) else ""


# -- the section ------------------------------------------------------------------------------------------


def fairness(facts: Facts, number: int) -> list[Flowable]:
    result, proxies = facts.fairness, facts.proxies
    if result is None and proxies is None:
        return []
    out: list[Flowable] = [PageBreak()] + section_heading("fairness", number)
    w = facts.width
    if result is not None:
        out += _introduction(result, facts)
        for i, attribute in enumerate(result.attributes):
            out += _attribute(result, attribute, w, f"s-fairness-{i}")
        for i, intersection in enumerate(result.intersections):
            out += _intersection(result, intersection, w, f"s-fairness-x{i}")
    if proxies is not None:
        out += _proxies(proxies, facts, w)
    if result is not None and result.flips:
        out += _flips(result, w)
    return out


def _introduction(result: FairnessResult, facts: Facts) -> list[Flowable]:
    references = [
        f"{result.references[a]} for {a} ("
        + ("given" if a in result.reference_given else "its largest group; none was given")
        + ")"
        for a in result.attributes
        if a in result.references
    ]
    text = (
        f"The favourable outcome is {_favourable(result)}. {_decision_rule(result, facts)} "
        f"{result.n_rows:,} rows were evaluated"
        + (f" ({result.n_dropped:,} left out for a missing target)" if result.n_dropped else "")
        + ". "
        + (f"Each group is compared with a reference group: {names(references)}. " if references else "")
        + f"Every figure carries its {_level(result)} interval from {result.n_boot:,} bootstrap resamples drawn "
        f"within the groups, so each group keeps its size. Groups with fewer than {result.min_group_size} rows "
        f"are shown with their n and marked {_SMALL_MARK}: they are reported, never used for a headline."
    )
    out: list[Flowable] = [para(text)]
    for attribute, edges in result.bin_edges.items():
        out.append(
            para(
                f"{attribute} is a number with many values, cut into bins at "
                f"{', '.join(num(e, 4) for e in edges)}; each bin is a group.",
                "small",
            )
        )
    return out


def _attribute(result: FairnessResult, attribute: str, width: float, key: str) -> list[Flowable]:
    groups = result.rows(attribute)
    out: list[Flowable] = [CondPageBreak(70 * mm), sub(f"Groups of {attribute}", key)]
    gap = next((d for d in result.largest_gaps if d.attribute == attribute), None)
    if gap is not None:
        out.append(
            markup(
                f"Largest gap between groups with at least {result.min_group_size} rows: {_gap_markup(gap, result)}."
            )
        )
    out += _rate_chart(result, attribute, groups, width)
    out += _rates_tables(result, groups, width)
    out += _measures_table(result, attribute, width)
    out += _four_fifths_table(result, attribute, width)
    out += _ll144_table(result, attribute, width)
    return out


def _intersection(result: FairnessResult, name: str, width: float, key: str) -> list[Flowable]:
    groups = result.rows(name)
    out: list[Flowable] = [
        CondPageBreak(60 * mm),
        sub(f"Intersection {name}", key),
        para(
            "Each group is one combination of the two attributes' groups; combinations without rows are left out. "
            f"Small intersections are common: those under {result.min_group_size} rows are marked {_SMALL_MARK}."
        ),
    ]
    out += _rates_tables(result, groups, width, calibration=False)
    out += _measures_table(result, name, width)
    out += _ll144_table(result, name, width)
    return out


def _rate_chart(
    result: FairnessResult, attribute: str, groups: Sequence[FairnessGroup], width: float
) -> list[Flowable]:
    shown = list(groups[:_MAX_GROUPS_CHARTED])
    if not shown or not any(math.isfinite(g.selection_rate) for g in shown):
        return []
    reference = next((g for g in groups if g.reference), None)
    line = FOUR_FIFTHS * reference.selection_rate if reference is not None else None
    flagged = {c.group for c in result.comparisons if c.attribute == attribute and c.below_four_fifths}
    muted = tint(st.REFERENCE, 0.45)
    colours = [muted if not g.judged else st.NEGATIVE if g.group in flagged else st.PRIMARY for g in shown]
    rate = FIGURE_TEXT["selection_rate"][0] if result.task != "regression" else "Scoring rate"
    legend: list[tuple[str, str, str]] = [(f"groups of at least {result.min_group_size} rows", st.PRIMARY, "box")]
    if any(g.judged and g.group in flagged for g in shown):
        legend.append(("below four fifths of the reference", st.NEGATIVE, "box"))
    if any(not g.judged for g in shown):
        legend.append((f"fewer than {result.min_group_size} rows: not judged", muted, "box"))
    if line is not None and math.isfinite(line):
        legend.append(("four fifths of the reference group's rate", st.WARNING, "dash"))
    chart = charts.rate_chart(
        [f"{g.group}{' (ref.)' if g.reference else ''}, n = {g.n:,}" for g in shown],
        np.array([g.selection_rate for g in shown]),
        low=np.array([g.interval("selection_rate")[0] for g in shown]),
        high=np.array([g.interval("selection_rate")[1] for g in shown]),
        colours=colours,
        xlabel=f"{rate} (whiskers: {_level(result)} interval)",
        width=width,
        line=line,
        line_label=f"4/5 of {reference.group}" if reference is not None else "",
        legend=legend,
    )
    out: list[Flowable] = [chart]
    if len(groups) > len(shown):
        out.append(
            caption(f"The chart shows the first {len(shown)} of {len(groups)} groups; the tables list them all.")
        )
    return out


def _columns(groups: Sequence[FairnessGroup], figures: Sequence[str]) -> list[str]:
    """The figures of ``figures`` that some group has a value for."""
    return [f for f in figures if any(math.isfinite(getattr(g, f)) for g in groups)]


def _rates_tables(
    result: FairnessResult, groups: Sequence[FairnessGroup], width: float, *, calibration: bool = True
) -> list[Flowable]:
    """The group table: n, share and the rates with their intervals; then precision, accuracy and calibration."""
    out: list[Flowable] = []
    blocks: list[tuple[str, ...]] = [("base_rate", "selection_rate", "tpr", "fpr", "fnr")]
    if calibration:
        blocks.append(("precision", "accuracy", "mean_score", "mean_observed", "ece", "mae"))
    for b, figures in enumerate(blocks):
        columns = _columns(groups, figures)
        if not columns:
            continue
        head: list[Any] = ["Group", "n"] + (["Share"] if b == 0 else [])
        rows: list[list[Any]] = [
            head
            + [
                "Scoring rate" if f == "selection_rate" and result.task == "regression" else FIGURE_TEXT[f][0]
                for f in columns
            ]
        ]
        shading: list[tuple[int, int, str]] = []
        for r, g in enumerate(groups, start=1):
            row: list[Any] = [_group_label(g), f"{g.n:,}"] + ([f"{100 * g.share:.1f} %"] if b == 0 else [])
            row += [_with_interval(getattr(g, f), *g.interval(f)) for f in columns]
            rows.append(row)
            if not g.judged:
                shading += [(r, c, tint(st.REFERENCE, 0.15)) for c in range(len(row))]
        fixed = [width * 0.2, width * 0.09] + ([width * 0.08] if b == 0 else [])
        rest = (width - sum(fixed)) / len(columns)
        numbers = tuple(range(1, len(fixed) + len(columns)))
        out += [Spacer(1, 2 * mm), table(rows, fixed + [rest] * len(columns), right=numbers, shading=shading)]
    if out:
        small = any(not g.judged for g in groups)
        out.append(
            caption(
                f"Each rate with its {_level(result)} interval below it"
                + (
                    f"; {_SMALL_MARK} and grey: fewer than {result.min_group_size} rows, reported but never "
                    "used for a headline."
                    if small
                    else "."
                )
            )
        )
    return out


def _measures_table(result: FairnessResult, attribute: str, width: float) -> list[Flowable]:
    rows: list[list[Any]] = [["Measure", "Value", f"{_level(result)} CI", "Lowest group", "Highest group", "Groups"]]
    for measure in MEASURES:
        try:
            m = result.measure(attribute, measure)
        except KeyError:
            continue
        if not math.isfinite(m.value):
            continue
        rows.append(
            [
                MEASURE_TEXT[measure][0],
                num(m.value),
                _interval(m.ci_low, m.ci_high),
                m.low_group or "—",
                m.high_group or "—",
                str(m.n_groups),
            ]
        )
    if len(rows) == 1:
        return []
    return [
        KeepTogether(
            [
                Spacer(1, 1 * mm),
                para("Summary measures", "h3"),
                table(rows, [width * w for w in (0.27, 0.09, 0.17, 0.185, 0.185, 0.09)], right=(1, 2, 5)),
                caption(
                    "As fairlearn defines them, over every group where the figure is defined, small groups "
                    "included: a measure driven by a small group says little; the largest gap above compares only "
                    "groups large enough to judge."
                ),
            ]
        )
    ]


def _four_fifths_table(result: FairnessResult, attribute: str, width: float) -> list[Flowable]:
    comparisons = [c for c in result.comparisons if c.attribute == attribute]
    if not comparisons:
        return []
    reference = comparisons[0].reference
    rate = "Scoring rate" if result.task == "regression" else "Selection rate"
    rows: list[list[Any]] = [["Group", "n", rate, "Ratio to reference", "Difference", "p (Holm)", "Finding"]]
    shading: list[tuple[int, int, str]] = []
    for r, c in enumerate(comparisons, start=1):
        if not c.judged:
            finding = f"{_SMALL_MARK} not judged (fewer than {result.min_group_size} rows)"
        else:
            finding = "below four fifths" if c.below_four_fifths else "at least four fifths"
            finding += "; significant" if c.significant else "; not significant"
        rows.append(
            [
                c.group,
                f"{c.n:,}",
                num(c.selection_rate),
                _with_interval(c.ratio, c.ratio_ci_low, c.ratio_ci_high),
                _with_interval(c.difference, c.difference_ci_low, c.difference_ci_high),
                _p_value(c.p_holm),
                finding,
            ]
        )
        if c.below_four_fifths and c.judged:
            shading += [(r, col, tint(st.NEGATIVE, 0.18)) for col in range(7)]
        elif not c.judged:
            shading += [(r, col, tint(st.REFERENCE, 0.15)) for col in range(7)]
    ref_group = next((g for g in result.rows(attribute) if g.reference), None)
    ref_text = (
        f"{reference} (n = {ref_group.n:,}, {rate.lower()} {num(ref_group.selection_rate)})"
        if ref_group is not None
        else reference
    )
    return [
        CondPageBreak(40 * mm),
        para(f"Four-fifths rule and significance against {ref_text}", "h3"),
        table(
            rows,
            [width * w for w in (0.17, 0.09, 0.11, 0.14, 0.14, 0.11, 0.24)],
            right=(1, 2, 3, 4, 5),
            shading=shading,
        ),
        caption(
            f"Ratio: the group's rate over the reference group's, flagged under {FOUR_FIFTHS:g}; difference: the "
            f"group's rate minus the reference's, each with its {_level(result)} interval below. p: two-proportion "
            "z-test, Holm-adjusted over this attribute's comparisons; significant under 0.05."
        ),
    ]


def _ll144_table(result: FairnessResult, attribute: str, width: float) -> list[Flowable]:
    try:
        t = result.table(attribute)
    except KeyError:
        return []
    rate = t.rate_kind.capitalize() if t.rate_kind else "Selection rate"
    rows: list[list[Any]] = [["Category", "n", rate, "Impact ratio", "Note"]]
    for row in t.rows:
        note = f"under {LL144_SMALL_SHARE:.0%} of the known rows: left out of the impact ratios" if row.excluded else ""
        if not row.excluded and row.impact_ratio == 1.0:
            note = "most selected category"
        rows.append([row.category, f"{row.n:,}", num(row.rate), num(row.impact_ratio), note])
    notes = [
        f"{t.n_unknown:,} rows with an unknown category are counted and left out of the table."
        if t.n_unknown
        else "No row has an unknown category."
    ]
    if t.exclude_small:
        notes.append(
            f"Categories under {LL144_SMALL_SHARE:.0%} of the rows with a known category are left out of the "
            "impact ratios" + (f": {names(list(t.excluded))}." if t.excluded else "; none is that small.")
        )
    else:
        notes.append(
            f"No category is left out of the impact ratios (the {LL144_SMALL_SHARE:.0%} exclusion was not used)."
        )
    return [
        KeepTogether(
            [
                Spacer(1, 1 * mm),
                para(f"NYC Local Law 144: {t.rate_kind or 'selection rate'} and impact ratio", "h3"),
                table(rows, [width * w for w in (0.28, 0.1, 0.14, 0.14, 0.34)], right=(1, 2, 3)),
                caption(
                    f"Impact ratio: the category's {t.rate_kind or 'selection rate'} over the most selected "
                    "category's. " + " ".join(notes)
                ),
            ]
        )
    ]


def _proxies(proxies: ProxyResult, facts: Facts, width: float) -> list[Flowable]:
    scoring = facts.permutation.scoring if facts.permutation is not None else "the score"
    out: list[Flowable] = [
        CondPageBreak(60 * mm),
        sub("Proxy risk", "s-fairness-proxies"),
        para(
            "Which model inputs carry a sensitive attribute into the model: how well each input alone predicts the "
            f"attribute (a depth-{proxies.max_depth} tree, {proxies.n_folds}-fold cross-validated, and the mutual "
            "information), crossed with how much the model uses the input (its permutation importance, the drop "
            f"in {scoring} when it is shuffled). Risk is the input's predictiveness (2·AUC − 1, or R²) when the "
            f"model uses it, else 0; medium from {MEDIUM_RISK:g}, high from {HIGH_RISK:g}. A proxy is evidence to "
            "examine, not proof: an input may predict an attribute and matter for reasons a reviewer accepts."
        ),
    ]
    for a in proxies.attributes:
        rows_of = proxies.table(a.attribute)
        kind = "R² alone" if a.kind == "r2" else "AUC alone"
        rows: list[list[Any]] = [["Input", "Risk", "Level", kind, "MI (bits)", "Importance", "Used"]]
        shading: list[tuple[int, int, str]] = []
        for r, row in enumerate(rows_of, start=1):
            rows.append(
                [
                    row.feature,
                    num(row.risk),
                    row.level,
                    num(row.r2 if a.kind == "r2" else row.auc),
                    num(row.mutual_information),
                    _with_interval(row.importance, row.importance_ci_low, row.importance_ci_high),
                    "yes" if row.used else "no",
                ]
            )
            if row.level in ("high", "medium"):
                colour = st.NEGATIVE if row.level == "high" else st.SECONDARY
                shading += [(r, c, tint(colour, 0.18)) for c in range(7)]
        together = _predictiveness_text(a.kind, a.all_inputs_auc, a.all_inputs_r2)
        notes = []
        if together:
            notes.append(f"All inputs together predict {a.attribute} with {together}.")
        if a.direct_input:
            notes.append(
                f"{a.attribute} is itself a model input, left out of its own table; the flip test measures its "
                "direct use."
            )
        notes.append(f"Strongest proxy: {a.strongest}." if a.strongest else "No used input reaches medium risk.")
        block: list[Flowable] = [para(f"Proxies of {a.attribute}", "h3")]
        if len(rows) > 1:
            block.append(
                table(
                    rows,
                    [width * w for w in (0.26, 0.1, 0.1, 0.12, 0.12, 0.18, 0.12)],
                    right=(1, 3, 4, 5),
                    shading=shading,
                )
            )
        block.append(caption(" ".join(notes)))
        out += [CondPageBreak(40 * mm), *block]
    if proxies.warnings:
        out += warnings(proxies.warnings)
    return out


def _flips(result: FairnessResult, width: float) -> list[Flowable]:
    out: list[Flowable] = [
        CondPageBreak(60 * mm),
        sub("Counterfactual flip test", "s-fairness-flips"),
        para(
            "Each row is given the model again with only one input changed, a sensitive attribute the model takes "
            "or the strongest proxy of one, set to each other value; every other input stays as it is. A flip is a "
            "row whose decision changes. Rows are counted by the groups of the attribute; example rows are 0-based "
            "rows of the data."
        ),
    ]
    for flip in result.flips:
        out += _flip(result, flip, width)
    return out


def _flip(result: FairnessResult, flip: FlipTest, width: float) -> list[Flowable]:
    role = "the sensitive attribute" if flip.role == "sensitive attribute" else f"proxy of {flip.attribute}"
    rows: list[list[Any]] = [["Group", "Rows", "Flipped for some value", "Share"]]
    for group, n in flip.n_by_group.items():
        flipped = flip.flipped_by_group.get(group, 0)
        rows.append([group, f"{n:,}", f"{flipped:,}", f"{100 * flipped / n:.1f} %" if n else "—"])
    out: list[Flowable] = [
        CondPageBreak(45 * mm),
        para(f"{flip.column} ({role}), by the groups of {flip.attribute}", "h3"),
        para(f"Set to {flip.values}; {flip.n_flipped:,} of {flip.n_rows:,} rows flip for at least one value."),
        table(rows, [width * w for w in (0.34, 0.2, 0.26, 0.2)], right=(1, 2, 3)),
    ]
    detail: list[list[Any]] = [["Group", "Set to", "Rows changed", "Flipped", "To favourable", "To unfavourable"]]
    for r in flip.rows:
        detail.append(
            [r.group, r.to_value, f"{r.n:,}", f"{r.flipped:,}", f"{r.to_favourable:,}", f"{r.to_unfavourable:,}"]
        )
    if len(detail) > 1:
        out += [
            Spacer(1, 2 * mm),
            table(detail, [width * w for w in (0.2, 0.22, 0.14, 0.14, 0.15, 0.15)], right=(2, 3, 4, 5)),
            caption(
                "Rows changed: the group's rows whose value differed from the one set. To favourable: decisions "
                "that became favourable; to unfavourable: the reverse."
            ),
        ]
    examples: list[list[Any]] = [
        ["Row", "Group", "Set to", f"{result.output_name} before", f"{result.output_name} after"]
    ]
    for group in flip.n_by_group:
        taken = 0
        for r in sorted((r for r in flip.rows if r.group == group), key=lambda r: -r.flipped):
            for row, before, after in zip(r.examples, r.example_before, r.example_after):
                if taken >= _EXAMPLES_PER_GROUP:
                    break
                examples.append([str(row), group, r.to_value, num(before), num(after)])
                taken += 1
    if len(examples) > 1:
        out += [
            Spacer(1, 2 * mm),
            table(examples, [width * w for w in (0.12, 0.22, 0.22, 0.22, 0.22)], right=(0, 3, 4)),
            caption(
                f"Example rows whose decision flips (up to {_EXAMPLES_PER_GROUP} per group, from the values that "
                "flip the most), with the score before and after the change."
            ),
        ]
    return out


# -- the methodology --------------------------------------------------------------------------------------


def definitions(result: FairnessResult, facts: Facts) -> list[Flowable]:
    """The methodology's statement of the favourable outcome and reference groups, and every measure defined."""
    w = facts.width
    references = [
        f"{result.references[a]} for {a}" + (" (given)" if a in result.reference_given else " (the largest group)")
        for a in (*result.attributes, *result.intersections)
        if a in result.references
    ]
    out: list[Flowable] = [
        para("Fairness: settings and definitions", "h3"),
        para(
            f"Favourable outcome: {_favourable(result)}. {_decision_rule(result, facts)} Reference groups: "
            f"{names(references, limit=20) or 'none'}. Minimum group size for a headline: {result.min_group_size} "
            f"rows. Intervals: {_level(result)}, from {result.n_boot:,} bootstrap resamples."
        ),
    ]
    rows: list[list[Any]] = [["Measure", "Definition"]]
    rows += [[label, text] for label, text in FIGURE_TEXT.values()]
    rows += [[label, text] for label, text in MEASURE_TEXT.values()]
    rows += [[label, text] for label, text in _TERMS]
    out.append(table(rows, [w * 0.26, w * 0.74]))
    return out
