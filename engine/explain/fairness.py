"""Fairness evidence: group and intersection rates with bootstrap intervals, the summary measures, the
four-fifths rule, significance tests, the NYC Local Law 144 table and the counterfactual flip test.

For every sensitive attribute (and every intersection of two of them) the evaluated rows are split into
groups, as group metrics splits them (values; numeric columns with many values cut into bins, by default
quartiles; missing values the group ``"(missing)"``), and each group gets its count, share, base rate,
selection rate, true and false positive and false negative rates, precision, accuracy and calibration
(mean predicted against observed, and the expected calibration error).  Every figure carries a 95 %
percentile interval from a seeded bootstrap stratified by group: rows are resampled with replacement
within each combination of the sensitive groups, so every group keeps its size and every figure of one
resample comes from the same rows.

The summary measures follow fairlearn's definitions on the same predictions (demographic parity
difference and ratio, equalized odds difference, equal opportunity difference, and the false positive
rate ratio: the smallest over the largest group value), over every group where the figure is defined.
Each group is also compared with a reference group (given per attribute, else the largest group): the
ratio of selection rates against the four-fifths rule, and a two-proportion z-test whose p-values are
Holm-adjusted over the comparisons of the attribute.  The Local Law 144 table gives each category's
selection rate (for a regressor the scoring rate: the share of rows on the favourable side of the median
score) and its impact ratio against the most selected category; rows whose category is unknown are
counted and left out, and categories under 2 % of the rows may be left out of the ratios (stated).

Groups with fewer rows than ``min_group_size`` are reported with their figures but never drive the
headline: the largest gap in selection rate, true positive rate or false positive rate between groups
large enough to judge, with its interval.

The flip test changes only one input of each row (a sensitive attribute the model takes, or a proxy of
one) to each other value and counts, by group, the rows whose decision changes, with example rows.

The figures describe outcomes on the data audited; a difference between groups does not by itself show
that the model treats people unjustly, and a group's figure is only as certain as its interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.attribution import resolve_output
from engine.errors import AnalysisError
from engine.explain.groups import (
    _MAX_NUMERIC_LEVELS,
    HEADLINE_MIN_GROUP_SIZE,
    MISSING_GROUP,
    GroupDifference,
    _first_few,
    _format_numbers,
    _listed,
    _ratio,
    _sensitive_columns,
    group_codes,
)
from engine.explain.performance import class_indices, normalise_probabilities
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Model, Task
from engine.params import Param
from engine.results import Result, plain_scalar, to_jsonable, utc_now

__all__ = [
    "FIGURES",
    "MEASURES",
    "FOUR_FIFTHS",
    "LL144_SMALL_SHARE",
    "MAX_GROUPS",
    "INTERSECTION",
    "FairnessGroup",
    "FairnessMeasure",
    "Disparity",
    "ReferenceComparison",
    "LL144Row",
    "LL144Table",
    "FlipRow",
    "FlipTest",
    "FairnessResult",
    "check_settings",
    "parse_reference",
    "run",
    "METHOD",
]

#: The per-group figures, each with a bootstrap interval (``FairnessGroup.ci``).
FIGURES: tuple[str, ...] = (
    "base_rate",
    "selection_rate",
    "tpr",
    "fpr",
    "fnr",
    "precision",
    "accuracy",
    "mean_score",
    "mean_observed",
    "ece",
    "mae",
)
#: The summary measures per attribute, named as fairlearn and results.json name them.
MEASURES: tuple[str, ...] = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "fpr_ratio",
)
#: A group whose selection rate is under this share of the reference group's is flagged (the EEOC's rule).
FOUR_FIFTHS = 0.8
#: Local Law 144 lets categories under this share of the rows be left out of the impact ratios.
LL144_SMALL_SHARE = 0.02
#: A sensitive column with more groups than this is refused (an identifier, or a number to bin).
MAX_GROUPS = 100
#: How an intersection of two attributes, and of two groups, is named.
INTERSECTION = " × "
#: Level of every interval.
CONFIDENCE = 0.95
#: Significance level of the Holm-adjusted tests.
ALPHA = 0.05
#: The metrics whose gaps the headline compares (equalized odds' two rates and the selection rate).
HEADLINE_METRICS: tuple[str, ...] = ("selection_rate", "tpr", "fpr")
# Equal-width bins of the predicted probability for the expected calibration error.
_CALIBRATION_BINS = 10
# Values a categorical input is flipped to, most frequent first.
_MAX_FLIP_VALUES = 20
# Example rows kept per flip-test cell.
_EXAMPLES = 5
# The bootstrap draws at most this many row indices at once (memory, not results: the draws are the same).
_CHUNK_ENTRIES = 4_000_000
_NAN = float("nan")

# Columns of the per-row matrix whose sums (per group, per resample) every figure is made from.
_Y, _D, _TP, _FP, _FN, _CORRECT, _SCORE, _OBS, _ABSERR = range(9)
_BIN0 = 9  # then, per calibration bin b: rows in it, their summed probability, their summed outcome


# -- the result ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FairnessGroup:
    """The model's outcomes on one group of one attribute (or of an intersection of two).

    Rates are fractions in ``[0, 1]``; NaN where the data does not define them (no target, no
    positive or no negative row in the group).  ``ci`` maps each figure of :data:`FIGURES` to its
    bootstrap interval ``(low, high)``; ``n`` and ``share`` have none (the bootstrap keeps group sizes).

    Attributes
    ----------
    attribute: the sensitive column, or ``"a × b"`` for an intersection.
    group: the group's label (``"x × y"`` for an intersection; ``"(missing)"`` for missing values).
    n: evaluated rows in the group; ``share``: ``n`` over all evaluated rows.
    n_observed: rows whose observed outcome is the favourable one.
    n_selected: rows the model gives the favourable decision.
    base_rate: observed share of favourable outcomes.
    selection_rate: share of favourable decisions (for a regressor the scoring rate: the share on the
        favourable side of the median prediction).
    tpr, fpr, fnr, precision: true positive, false positive and false negative rates and precision of
        the favourable decision against the favourable outcome; ``accuracy``: decisions equal to outcomes.
    mean_score: mean predicted probability of the favourable class (a regressor's mean prediction).
    mean_observed: observed share of the favourable class (a regressor's mean target).
    ece: expected calibration error over ten equal-width probability bins (classifiers).
    mae: mean absolute error (regressors), in the target's units.
    judged: whether ``n`` reaches the minimum size that lets the group drive a headline.
    reference: whether it is its attribute's reference group.
    """

    attribute: str = ""
    group: str = ""
    n: int = 0
    share: float = _NAN
    n_observed: int = 0
    n_selected: int = 0
    base_rate: float = _NAN
    selection_rate: float = _NAN
    tpr: float = _NAN
    fpr: float = _NAN
    fnr: float = _NAN
    precision: float = _NAN
    accuracy: float = _NAN
    mean_score: float = _NAN
    mean_observed: float = _NAN
    ece: float = _NAN
    mae: float = _NAN
    ci: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    judged: bool = False
    reference: bool = False

    @property
    def positive_rate(self) -> float:
        """The selection rate, under the name the group-metrics views read."""
        return self.selection_rate

    @property
    def mean_prediction(self) -> float:
        """The mean score, under the name the group-metrics views read."""
        return self.mean_score

    def interval(self, figure: str) -> tuple[float, float]:
        """The bootstrap interval of ``figure`` (``(nan, nan)`` when none was drawn)."""
        low, high = self.ci.get(figure, (_NAN, _NAN))
        return float(low), float(high)


@dataclass(frozen=True)
class FairnessMeasure:
    """One summary measure of one attribute, by fairlearn's definition, with its bootstrap interval.

    Attributes
    ----------
    attribute: the sensitive column (or intersection).
    measure: one of :data:`MEASURES`.
    metric: the per-group figure it compares (``"selection_rate"``, ``"tpr"``, ``"fpr"``); for the
        equalized odds difference whichever of the two rates gave the larger gap.
    value: the measure over every group where the figure is defined; NaN with fewer than two.
    ci_low, ci_high: its percentile bootstrap interval.
    low_group, high_group: the groups holding the smallest and largest figure.
    n_groups: groups the figure is defined on.
    """

    attribute: str = ""
    measure: str = ""
    metric: str = ""
    value: float = _NAN
    ci_low: float = _NAN
    ci_high: float = _NAN
    low_group: str = ""
    high_group: str = ""
    n_groups: int = 0


@dataclass(frozen=True)
class Disparity:
    """A gap in one figure between two groups large enough to judge, with its bootstrap interval.

    ``difference`` is ``high_value - low_value`` (non-negative), ``ratio`` ``low_value / high_value``.
    """

    attribute: str = ""
    metric: str = ""
    low_group: str = ""
    high_group: str = ""
    low_value: float = _NAN
    high_value: float = _NAN
    low_n: int = 0
    high_n: int = 0
    difference: float = _NAN
    ci_low: float = _NAN
    ci_high: float = _NAN
    ratio: float = _NAN

    def sentence(self) -> str:
        """The gap in words, with both groups' sizes and the interval."""
        what = _METRIC_WORDS.get(self.metric, self.metric)
        return (
            f"In {self.attribute!r} the {what} is {self.high_value:.3f} for {self.high_group!r} "
            f"(n={self.high_n:,}) and {self.low_value:.3f} for {self.low_group!r} (n={self.low_n:,}): "
            f"a gap of {self.difference:.3f} (95% CI {self.ci_low:.3f} to {self.ci_high:.3f})."
        )


_METRIC_WORDS = {
    "selection_rate": "selection rate",
    "tpr": "true positive rate",
    "fpr": "false positive rate",
}


@dataclass(frozen=True)
class ReferenceComparison:
    """One group's selection rate against its attribute's reference group.

    Attributes
    ----------
    ratio: ``selection_rate / reference_rate``, with its bootstrap interval; ``below_four_fifths``
        when under :data:`FOUR_FIFTHS`.
    difference: ``selection_rate - reference_rate``, with its bootstrap interval.
    z, p_value: the pooled two-proportion z-test (two-sided); ``p_holm`` Holm-adjusted over the
        attribute's comparisons; ``significant`` when ``p_holm`` is under :data:`ALPHA`.
    judged: both groups reach the minimum size.
    """

    attribute: str = ""
    group: str = ""
    reference: str = ""
    n: int = 0
    n_reference: int = 0
    selection_rate: float = _NAN
    reference_rate: float = _NAN
    ratio: float = _NAN
    ratio_ci_low: float = _NAN
    ratio_ci_high: float = _NAN
    below_four_fifths: bool = False
    difference: float = _NAN
    difference_ci_low: float = _NAN
    difference_ci_high: float = _NAN
    z: float = _NAN
    p_value: float = _NAN
    p_holm: float = _NAN
    significant: bool = False
    judged: bool = False


@dataclass(frozen=True)
class LL144Row:
    """One category of a Local Law 144 table: its rows, rate and impact ratio (NaN when excluded)."""

    category: str = ""
    n: int = 0
    rate: float = _NAN
    impact_ratio: float = _NAN
    excluded: bool = False


@dataclass(frozen=True)
class LL144Table:
    """The Local Law 144 table of one attribute (or intersection).

    ``rate_kind`` is ``"selection rate"`` or ``"scoring rate"``; ``n_unknown`` counts rows whose
    category is unknown (missing), left out; ``exclude_small`` says whether categories under
    :data:`LL144_SMALL_SHARE` of the known rows were left out of the impact ratios (``excluded``).
    """

    attribute: str = ""
    rate_kind: str = ""
    n_unknown: int = 0
    exclude_small: bool = False
    excluded: tuple[str, ...] = ()
    rows: tuple[LL144Row, ...] = ()


@dataclass(frozen=True)
class FlipRow:
    """Rows of one group whose input ``column`` was set to one other value, and how many decisions changed.

    ``examples`` are 0-based row positions in the data of changed decisions, with the score before and
    after (``example_before``, ``example_after``).
    """

    group: str = ""
    to_value: str = ""
    n: int = 0
    flipped: int = 0
    to_favourable: int = 0
    to_unfavourable: int = 0
    examples: tuple[int, ...] = ()
    example_before: tuple[float, ...] = ()
    example_after: tuple[float, ...] = ()

    @property
    def share(self) -> float:
        return self.flipped / self.n if self.n else _NAN


@dataclass(frozen=True)
class FlipTest:
    """The counterfactual flip test of one input, by the groups of one attribute.

    Attributes
    ----------
    column: the input changed (and nothing else).
    role: ``"sensitive attribute"`` (the attribute itself is a model input) or ``"proxy"``.
    attribute: the sensitive attribute whose groups the rows are counted by.
    values: how the other values were chosen: ``"each other value"`` or ``"each other group's median"``.
    rows: one record per (group, value set).
    n_by_group: rows per group; ``flipped_by_group``: rows whose decision changed for at least one value.
    """

    column: str = ""
    role: str = ""
    attribute: str = ""
    values: str = ""
    rows: tuple[FlipRow, ...] = ()
    n_by_group: Mapping[str, int] = field(default_factory=dict)
    flipped_by_group: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(sum(self.n_by_group.values()))

    @property
    def n_flipped(self) -> int:
        return int(sum(self.flipped_by_group.values()))


@dataclass(frozen=True)
class FairnessResult(Result):
    """Fairness figures per group and intersection, summary measures, tests, LL144 tables and flip tests.

    :meth:`summary` is the ``fairness`` key of ``results.json``; the report and the app draw from the
    same fields.

    Attributes
    ----------
    task: ``"classification"`` or ``"regression"``.
    favourable: the favourable class, or ``"high"``/``"low"`` (the favourable side of a regressor's prediction).
    output_name: the score the decisions come from (``"P(<class>)"`` or ``"prediction"``).
    threshold: a binary classifier decides favourably when the score exceeds it (else the most
        probable class decides); ``median_score`` is the median a regressor's scores are cut at.
    attributes: the sensitive columns; ``intersections`` the pairs, named ``"a × b"``.
    references: attribute (or intersection) -> its reference group; ``reference_given`` the
        attributes whose reference was given (the others: the largest group).
    bin_edges: binned numeric attribute -> the bin edges used (lowest, cut points, highest).
    groups: per attribute, its groups in value order (``"(missing)"`` last); ``intersection_groups``
        likewise per intersection.
    measures: per attribute and intersection, one record per :data:`MEASURES`.
    comparisons: each group against its reference group (four-fifths and z-test).
    ll144: one Local Law 144 table per attribute and intersection.
    headline: the largest gap between judged groups, over the attributes (``None`` when no attribute
        has two); ``largest_gaps`` the largest per attribute.
    flips: the flip tests.
    n_rows, n_dropped: evaluated rows, and rows left out for a missing target.
    min_group_size: groups with fewer rows are reported, never headline.
    n_boot: bootstrap resamples drawn; ``confidence`` the intervals' level.
    ll144_exclude_small: whether categories under 2 % were left out of the impact ratios.
    """

    kind: ClassVar[str] = "fairness"
    task: str = ""
    favourable: Any = None
    output_name: str = ""
    threshold: float = 0.5
    median_score: float = _NAN
    attributes: tuple[str, ...] = ()
    intersections: tuple[str, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict)
    reference_given: tuple[str, ...] = ()
    bin_edges: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    groups: tuple[FairnessGroup, ...] = ()
    intersection_groups: tuple[FairnessGroup, ...] = ()
    measures: tuple[FairnessMeasure, ...] = ()
    comparisons: tuple[ReferenceComparison, ...] = ()
    ll144: tuple[LL144Table, ...] = ()
    headline: Disparity | None = None
    largest_gaps: tuple[Disparity, ...] = ()
    flips: tuple[FlipTest, ...] = ()
    n_rows: int = 0
    n_dropped: int = 0
    min_group_size: int = HEADLINE_MIN_GROUP_SIZE
    n_boot: int = 0
    confidence: float = CONFIDENCE
    ll144_exclude_small: bool = False

    # -- reading ---------------------------------------------------------------------------------------
    def rows(self, attribute: str) -> tuple[FairnessGroup, ...]:
        """The group records of one attribute or intersection, in order."""
        return tuple(g for g in (*self.groups, *self.intersection_groups) if g.attribute == attribute)

    def measure(self, attribute: str, measure: str) -> FairnessMeasure:
        """The ``measure`` record of ``attribute``; ``KeyError`` when absent."""
        for m in self.measures:
            if m.attribute == attribute and m.measure == measure:
                return m
        raise KeyError((attribute, measure))

    def table(self, attribute: str) -> LL144Table:
        """The Local Law 144 table of ``attribute``; ``KeyError`` when absent."""
        for t in self.ll144:
            if t.attribute == attribute:
                return t
        raise KeyError(attribute)

    @property
    def differences(self) -> tuple[GroupDifference, ...]:
        """The attributes' gaps as group metrics states them (for the views that show both)."""
        out: list[GroupDifference] = []
        for attribute in self.attributes:
            dp = self.measure(attribute, "demographic_parity_difference")
            ratio = self.measure(attribute, "demographic_parity_ratio").value
            out.append(
                GroupDifference(
                    attribute, "demographic_parity", dp.metric, dp.value, ratio, dp.low_group, dp.high_group
                )
            )
            eo = self.measure(attribute, "equalized_odds_difference")
            if not math.isnan(eo.value):
                out.append(
                    GroupDifference(attribute, "equalized_odds", eo.metric, eo.value, _NAN, eo.low_group, eo.high_group)
                )
        return tuple(out)

    def summary(self) -> dict[str, Any]:
        """The ``fairness`` key of ``results.json``: every figure, per attribute and intersection.

        Each attribute maps to its settings; each measure of :data:`MEASURES` as a number under its
        own name with ``<name>_ci_low`` and ``<name>_ci_high`` beside it (what scripts read, e.g.
        ``fairness["sex"]["demographic_parity_difference"]``); the same measures in full under
        ``measures`` (``{"value", "ci_low", "ci_high", "metric", "low_group", "high_group",
        "n_groups"}``); its groups, its comparisons with the reference group, its Local Law 144
        table, its largest gap between judged groups and the flip tests counted by its groups.
        """
        out: dict[str, Any] = {}
        gaps = {d.attribute: d for d in self.largest_gaps}
        for attribute in (*self.attributes, *self.intersections):
            entry: dict[str, Any] = {
                "favourable": to_jsonable(self.favourable),
                "reference": self.references.get(attribute),
                "reference_given": attribute in self.reference_given,
                "threshold": self.threshold if self.task == "classification" else None,
                "n_resamples": self.n_boot,
                "confidence": self.confidence,
                "min_group_size": self.min_group_size,
            }
            measures: dict[str, Any] = {}
            for m in self.measures:
                if m.attribute == attribute:
                    entry[m.measure] = to_jsonable(m.value)
                    entry[f"{m.measure}_ci_low"] = to_jsonable(m.ci_low)
                    entry[f"{m.measure}_ci_high"] = to_jsonable(m.ci_high)
                    measures[m.measure] = to_jsonable(
                        {
                            "value": m.value,
                            "ci_low": m.ci_low,
                            "ci_high": m.ci_high,
                            "metric": m.metric,
                            "low_group": m.low_group,
                            "high_group": m.high_group,
                            "n_groups": m.n_groups,
                        }
                    )
            entry["measures"] = measures
            entry["groups"] = [to_jsonable(g) for g in self.rows(attribute)]
            entry["reference_comparisons"] = [to_jsonable(c) for c in self.comparisons if c.attribute == attribute]
            entry["ll144"] = to_jsonable(self.table(attribute))
            gap = gaps.get(attribute)
            entry["largest_gap"] = None if gap is None else to_jsonable(gap)
            entry["flip_tests"] = [to_jsonable(f) for f in self.flips if f.attribute == attribute]
            out[attribute] = entry
        return out


# -- settings ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Grouping:
    """One attribute's groups on the evaluated rows."""

    attribute: str
    codes: np.ndarray  # (n,) int64 into labels
    labels: tuple[str, ...]
    edges: tuple[float, ...] | None  # the bin edges of a binned numeric attribute


@dataclass(frozen=True, eq=False)
class _Settings:
    """Everything checked before any prediction: rows, groups, favourable outcome, references."""

    keep: np.ndarray  # (n_total,) bool: the evaluated rows
    groupings: tuple[_Grouping, ...]
    favourable: Any
    index: int | None  # the favourable class's column (classifiers)
    output_name: str
    references: dict[str, int]  # attribute -> reference group index
    given: tuple[str, ...]
    threshold: float


def parse_reference(text: str | None) -> list[tuple[str | None, str]]:
    """``"ATTR=GROUP; ATTR2=GROUP2"`` as ``[(attr, group), ...]``; a lone ``"GROUP"`` has no attribute.

    Pairs are separated by ``;`` (group labels of binned numbers hold commas) and split at their first ``=``.
    """
    if text is None or not str(text).strip():
        return []
    out: list[tuple[str | None, str]] = []
    for part in str(text).split(";"):
        part = part.strip()
        if not part:
            continue
        attr, eq, group = part.partition("=")
        out.append((attr.strip(), group.strip()) if eq else (None, part))
    return out


def _parse_edges(text: str | None) -> dict[str, list[float]]:
    """``"age=25,40,65; income=30000"`` as ``{"age": [25, 40, 65], ...}``."""
    out: dict[str, list[float]] = {}
    for attr, value in parse_reference(text):
        if attr is None:
            raise AnalysisError(f"The bin edges {text!r} must name their column, as in 'age=25,40,65'.")
        try:
            cuts = [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise AnalysisError(
                f"The bin edges of {attr!r} must be numbers separated by commas, as in 'age=25,40,65', not {value!r}."
            ) from None
        if not cuts or not all(math.isfinite(c) for c in cuts):
            raise AnalysisError(f"The bin edges of {attr!r} must be finite numbers, not {value!r}.")
        out[attr] = sorted(set(cuts))
    return out


def _is_numeric(series: pd.Series) -> bool:
    dtype = series.dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def _binned(
    series: pd.Series, *, bins: int, cuts: list[float] | None
) -> tuple[np.ndarray, list[str], tuple[float, ...]]:
    """Codes and labels of a numeric column cut into bins (right-closed, the first holding its minimum).

    Quantile bins (``bins`` of them) unless ``cuts`` gives the cut points; labels and codes are those of
    :func:`engine.explain.groups.group_codes` for quartiles, so a group selected by its label is the same rows.
    """
    missing = series.isna().to_numpy()
    x = series[~missing].to_numpy(dtype=np.float64)
    if cuts is None:
        full = np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)))
    else:
        inner = [c for c in cuts if x.min() < c < x.max()]
        full = np.unique(np.array([x.min(), *inner, x.max()], dtype=np.float64))
    shown = _format_numbers(full.tolist())
    if len(full) < 2:
        labels = [shown[0]]
        sub = np.zeros(len(x), dtype=np.int64)
    else:
        sub = np.searchsorted(full[1:-1], x, side="left").astype(np.int64)
        labels = [f"[{shown[0]}, {shown[1]}]"] + [f"({shown[i]}, {shown[i + 1]}]" for i in range(1, len(full) - 1)]
    codes = np.full(len(series), len(labels), dtype=np.int64)
    codes[~missing] = sub
    labels = [*labels, MISSING_GROUP]
    used = np.unique(codes)
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[codes], [labels[i] for i in used], tuple(float(e) for e in full)


def _grouping(series: pd.Series, attribute: str, *, bins: int, cuts: list[float] | None, source: str) -> _Grouping:
    present = series.dropna()
    if present.empty:
        raise AnalysisError(
            f"The sensitive column {attribute!r} has no value on any evaluated row of {source}, so its groups "
            "cannot be compared."
        )
    numeric = _is_numeric(series)
    if cuts is not None and not numeric:
        raise AnalysisError(f"Bin edges were given for {attribute!r}, which is not a numeric column.")
    n_values = int(present.nunique())
    if numeric and (cuts is not None or n_values > _MAX_NUMERIC_LEVELS):
        codes, labels, edges = _binned(series, bins=bins, cuts=cuts)
        grouping = _Grouping(attribute, codes, tuple(labels), edges)
    else:
        if n_values > MAX_GROUPS:
            raise AnalysisError(
                f"The sensitive column {attribute!r} has {n_values:,} different values in {source}; an attribute "
                f"is compared over at most {MAX_GROUPS} groups (is it an identifier, or a number to bin?)."
            )
        codes, labels, _ = group_codes(series)
        grouping = _Grouping(attribute, codes, tuple(labels), None)
    known = [g for g in grouping.labels if g != MISSING_GROUP]
    if len(known) < 2:
        raise AnalysisError(
            f"The sensitive column {attribute!r} has a single group ({known[0]!r}) on the evaluated rows of "
            f"{source}, so there is nothing to compare it with."
        )
    return grouping


def _sensitive(inputs: AuditInputs, sensitive: str | Sequence[str] | None) -> tuple[str, ...]:
    return _sensitive_columns(inputs, sensitive, purpose="the fairness analysis")


def _favourable(model: Model, favourable: Any) -> tuple[Any, int | None, str]:
    """The favourable outcome as the result records it, its class column, and the score's name."""
    if model.task is Task.REGRESSION:
        side = "high" if favourable is None else favourable
        if not isinstance(side, str) or side.strip().lower() not in ("high", "low"):
            raise AnalysisError(
                f"The model {model.name} is a regressor, so the favourable outcome is a side of its prediction, "
                f"'high' or 'low', not the class {favourable!r}."
            )
        return side.strip().lower(), None, "prediction"
    classes = tuple(model.classes or ())
    if len(classes) < 2:
        raise AnalysisError(
            f"The model {model.name} knows {len(classes)} class{'es' if len(classes) != 1 else ''}, "
            "so no outcome can be compared between groups."
        )
    index, name = resolve_output(model, favourable)
    assert index is not None
    return plain_scalar(classes[index]), index, name


def _settings(
    inputs: AuditInputs,
    *,
    sensitive: str | Sequence[str] | None,
    favourable: Any,
    reference: str | None,
    threshold: float,
    bins: int,
    edges: str | None,
) -> _Settings:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.integer, np.floating))
        or not 0.0 < float(threshold) < 1.0
    ):
        raise AnalysisError(f"The decision threshold must be a number strictly between 0 and 1, not {threshold!r}.")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise AnalysisError(f"The number of bins must be a whole number of at least 2, not {bins!r}.")
    attributes = _sensitive(inputs, sensitive)
    fav, index, output_name = _favourable(inputs.model, favourable)
    cuts = _parse_edges(edges)
    unknown = [a for a in cuts if a not in attributes]
    if unknown:
        raise AnalysisError(
            f"Bin edges were given for {_listed(unknown)}, which {'is' if len(unknown) == 1 else 'are'} not among "
            f"the sensitive attributes ({_listed(list(attributes))})."
        )
    source = inputs.dataset.name if inputs.dataset is not None else "the data"
    if inputs.has_target:
        keep = inputs.y.notna().to_numpy()
        if not keep.any():
            raise AnalysisError(
                f"No row in {source} has a value in the target column {inputs.roles.target!r}, so the fairness "
                "figures cannot be computed."
            )
    else:
        keep = np.ones(len(inputs.frame), dtype=bool)
    frame = inputs.frame.loc[keep]
    groupings = tuple(_grouping(frame[a], a, bins=int(bins), cuts=cuts.get(a), source=source) for a in attributes)
    references: dict[str, int] = {}
    given: list[str] = []
    pairs = parse_reference(reference)
    for attr, group in pairs:
        if attr is None:
            if len(attributes) != 1:
                raise AnalysisError(
                    f"The reference group {group!r} must name its attribute, as in "
                    f"'{attributes[0]}={group}', when there are several sensitive attributes."
                )
            attr = attributes[0]
        if attr not in attributes:
            raise AnalysisError(
                f"The reference {attr}={group} names {attr!r}, which is not a sensitive attribute here "
                f"({_listed(list(attributes))})."
            )
        grouping = groupings[attributes.index(attr)]
        if group not in grouping.labels or group == MISSING_GROUP:
            known = [g for g in grouping.labels if g != MISSING_GROUP]
            raise AnalysisError(
                f"The reference group {group!r} does not exist in {attr!r}; its groups are {_listed(known)}."
            )
        references[attr] = grouping.labels.index(group)
        given.append(attr)
    for grouping in groupings:
        if grouping.attribute not in references:
            references[grouping.attribute] = _largest(grouping.codes, grouping.labels)
    return _Settings(
        keep=keep,
        groupings=groupings,
        favourable=fav,
        index=index,
        output_name=output_name,
        references=references,
        given=tuple(dict.fromkeys(given)),
        threshold=float(threshold),
    )


def _largest(codes: np.ndarray, labels: Sequence[str]) -> int:
    """The largest group that is not ``"(missing)"`` (the first of equals)."""
    counts = np.bincount(codes, minlength=len(labels))
    order = [i for i in np.argsort(-counts, kind="stable") if labels[int(i)] != MISSING_GROUP]
    return int(order[0])


def check_settings(
    inputs: AuditInputs,
    *,
    sensitive: str | Sequence[str] | None = None,
    favourable: Any = None,
    reference: str | None = None,
    threshold: float = 0.5,
    bins: int = 4,
    edges: str | None = None,
) -> None:
    """Refuse settings the fairness analysis cannot run with, before anything is computed.

    The audit calls this right after loading, so that a bad ``--sensitive``, ``--favourable``,
    ``--reference`` or ``--threshold`` is one sentence at once rather than after minutes of work.

    Raises
    ------
    AnalysisError
        A sensitive column that is missing, all-missing, holds one group or hundreds; a favourable
        outcome the model cannot have; a reference group that does not exist; a threshold outside (0, 1).
    """
    _settings(
        inputs,
        sensitive=sensitive,
        favourable=favourable,
        reference=reference,
        threshold=threshold,
        bins=bins,
        edges=edges,
    )


# -- per-row quantities and the bootstrap ---------------------------------------------------------------


def _decide(model: Model, settings: _Settings, out: np.ndarray, median: float) -> tuple[np.ndarray, np.ndarray]:
    """The favourable decision ``(n,)`` bool and the score ``(n,)`` the model's output gives."""
    if model.task is Task.REGRESSION:
        score = np.asarray(out, dtype=np.float64)
        high = settings.favourable == "high"
        return (score > median) if high else (score < median), score
    proba, _ = normalise_probabilities(np.asarray(out, dtype=np.float64))
    assert settings.index is not None
    score = proba[:, settings.index]
    if proba.shape[1] == 2:
        return score > settings.threshold, score
    return np.argmax(proba, axis=1) == settings.index, score


def _row_matrix(
    *, task: Task, decision: np.ndarray, score: np.ndarray, observed: np.ndarray | None, target: np.ndarray | None
) -> np.ndarray:
    """The per-row matrix ``(n, k)`` whose column sums over a group make every figure (see ``_Y`` ...)."""
    n = len(decision)
    k = _BIN0 + (3 * _CALIBRATION_BINS if task is Task.CLASSIFICATION else 0)
    V = np.zeros((n, k), dtype=np.float64)
    d = decision.astype(np.float64)
    V[:, _D] = d
    V[:, _SCORE] = score
    if observed is not None:
        y = observed.astype(np.float64)
        V[:, _Y] = y
        V[:, _TP] = d * y
        V[:, _FP] = d * (1.0 - y)
        V[:, _FN] = (1.0 - d) * y
        V[:, _CORRECT] = (d == y).astype(np.float64)
        if task is Task.CLASSIFICATION:
            V[:, _OBS] = y
            b = np.clip((score * _CALIBRATION_BINS).astype(np.int64), 0, _CALIBRATION_BINS - 1)
            for j in range(_CALIBRATION_BINS):
                inside = (b == j).astype(np.float64)
                V[:, _BIN0 + 3 * j] = inside
                V[:, _BIN0 + 3 * j + 1] = inside * score
                V[:, _BIN0 + 3 * j + 2] = inside * y
    if target is not None:
        V[:, _OBS] = target
        V[:, _ABSERR] = np.abs(target - score)
    return V


def _rates(S: np.ndarray, n: np.ndarray, *, task: Task, has_target: bool) -> dict[str, np.ndarray]:
    """Every figure of :data:`FIGURES` from group sums ``S`` ``(..., k)`` and group sizes ``n`` ``(...)``."""
    nan = np.full(S.shape[:-1], np.nan)
    out = {name: nan for name in FIGURES}
    out["selection_rate"] = _ratio(S[..., _D], n)
    out["mean_score"] = _ratio(S[..., _SCORE], n)
    if not has_target:
        return out
    pos = S[..., _Y]
    neg = n - pos
    out["base_rate"] = _ratio(pos, n)
    out["tpr"] = _ratio(S[..., _TP], pos)
    out["fpr"] = _ratio(S[..., _FP], neg)
    out["fnr"] = _ratio(S[..., _FN], pos)
    out["precision"] = _ratio(S[..., _TP], S[..., _D])
    out["accuracy"] = _ratio(S[..., _CORRECT], n)
    out["mean_observed"] = _ratio(S[..., _OBS], n)
    if task is Task.CLASSIFICATION:
        gaps = np.zeros(S.shape[:-1])
        for j in range(_CALIBRATION_BINS):
            gaps = gaps + np.abs(S[..., _BIN0 + 3 * j + 1] - S[..., _BIN0 + 3 * j + 2])
        out["ece"] = _ratio(gaps, n)
    else:
        out["mae"] = _ratio(S[..., _ABSERR], n)
    return out


def _bootstrap_sums(
    V: np.ndarray, cells: np.ndarray, n_cells: int, n_boot: int, ctx: JobContext, *, start: float, end: float
) -> np.ndarray:
    """Column sums of ``V`` per cell ``(n_boot, n_cells, k)`` for resamples drawn within each cell.

    Resample ``b`` draws each cell's rows with replacement, as many as the cell holds; the counts of
    each row times its values give the sums with one matrix product per chunk of resamples.
    """
    k = V.shape[1]
    out = np.zeros((n_boot, n_cells, k), dtype=np.float64)
    if n_boot == 0:
        return out
    rng = ctx.rng("bootstrap")
    order = np.argsort(cells, kind="stable")
    bounds = np.searchsorted(cells[order], np.arange(n_cells + 1))
    for c in range(n_cells):
        ctx.check_cancelled()
        ctx.progress(start + (end - start) * c / n_cells, "Bootstrap resamples")
        rows = order[bounds[c] : bounds[c + 1]]
        size = len(rows)
        Vc = V[rows]
        if size == 1:
            out[:, c, :] = Vc[0]
            continue
        step = max(1, _CHUNK_ENTRIES // size)
        for first in range(0, n_boot, step):
            b = min(step, n_boot - first)
            draws = rng.integers(0, size, size=(b, size))
            flat = (draws + (np.arange(b, dtype=np.int64) * size)[:, None]).ravel()
            counts = np.bincount(flat, minlength=b * size).reshape(b, size).astype(np.float64)
            out[first : first + b, c, :] = counts @ Vc
    return out


def _interval(boot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval at :data:`CONFIDENCE` over axis 0, NaN resamples left out (NaN when all are)."""
    tail = (1.0 - CONFIDENCE) / 2.0
    shape = boot.shape[1:]
    low = np.full(shape, np.nan)
    high = np.full(shape, np.nan)
    if boot.shape[0] == 0:
        return low, high
    finite = np.isfinite(boot)
    whole = finite.all(axis=0)  # np.quantile where no resample is NaN: the same numbers, many times faster
    if whole.any():
        q = np.quantile(boot[:, whole], [tail, 1.0 - tail], axis=0)
        low[whole], high[whole] = q[0], q[1]
    partial = finite.any(axis=0) & ~whole
    if partial.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanquantile(boot[:, partial], [tail, 1.0 - tail], axis=0)
        low[partial], high[partial] = q[0], q[1]
    return low, high


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Max minus min, min over max, and the arg-min and arg-max over the last axis, among finite values.

    NaN where fewer than two values are finite (``-1`` for the positions); the ratio also where the
    largest value is not positive.
    """
    finite = np.isfinite(values)
    count = finite.sum(axis=-1)
    low = np.where(finite, values, np.inf)
    high = np.where(finite, values, -np.inf)
    lo_at = np.argmin(low, axis=-1)
    hi_at = np.argmax(high, axis=-1)
    lo = np.take_along_axis(values, lo_at[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(values, hi_at[..., None], axis=-1)[..., 0]
    ok = count >= 2
    diff = np.where(ok, hi - lo, np.nan)
    ratio = np.where(ok & (hi > 0) & (lo >= 0), _ratio(lo, hi), np.nan)
    return diff, ratio, np.where(ok, lo_at, -1), np.where(ok, hi_at, -1)


# -- the tests ----------------------------------------------------------------------------------------------


def _z_test(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float]:
    """The pooled two-proportion z statistic and its two-sided p-value."""
    if n1 <= 0 or n2 <= 0:
        return _NAN, _NAN
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return (0.0, 1.0) if p1 == p2 else (_NAN, _NAN)
    z = (p1 - p2) / se
    return z, math.erfc(abs(z) / math.sqrt(2.0))


def _holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p`` (NaN values are left out of the family and stay NaN)."""
    idx = [i for i, v in enumerate(p) if not math.isnan(v)]
    m = len(idx)
    out = [_NAN] * len(p)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: p[j])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


# -- the flip test ------------------------------------------------------------------------------------------


def _flip_values(column: pd.Series, grouping: _Grouping) -> tuple[str, list[tuple[str, Any, np.ndarray | None]]]:
    """How ``column`` is changed: ``(description, [(label, value, group index or None), ...])``.

    A categorical input (or a number with few values) takes each other value, most frequent first; a
    numeric one takes the median of each group of ``grouping`` (applied to the rows of the other groups).
    """
    present = column.dropna()
    if _is_numeric(column) and present.nunique() > _MAX_NUMERIC_LEVELS:
        out: list[tuple[str, Any, np.ndarray | None]] = []
        x = column.to_numpy(dtype=np.float64)
        for g, label in enumerate(grouping.labels):
            if label == MISSING_GROUP:
                continue
            inside = grouping.codes == g
            values = x[inside & np.isfinite(x)]
            if values.size == 0:
                continue
            median = float(np.median(values))
            shown = _format_numbers([median])[0]
            out.append((f"median of {grouping.attribute}={label} ({shown})", median, np.array([g])))
        return "each other group's median", out
    counts = present.value_counts(sort=True)
    values = [plain_scalar(v) for v in counts.index[:_MAX_FLIP_VALUES]]
    labels = _format_numbers(values) if values and all(isinstance(v, (int, float)) for v in values) else values
    return "each other value", [(str(label), v, None) for label, v in zip(labels, values)]


def _flip_test(
    model: Model,
    X: pd.DataFrame,
    positions: np.ndarray,
    settings: _Settings,
    column: str,
    role: str,
    grouping: _Grouping,
    decide: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    decision: np.ndarray,
    score: np.ndarray,
    ctx: JobContext,
) -> FlipTest:
    """Set ``column`` of every row to each other value and count changed decisions by ``grouping``'s groups."""
    how, values = _flip_values(X[column], grouping)
    codes, labels = grouping.codes, grouping.labels
    n_groups = len(labels)
    current = X[column]
    changed_any = np.zeros(len(X), dtype=bool)
    rows: list[FlipRow] = []
    for v, (label, value, own) in enumerate(values):
        ctx.check_cancelled()
        ctx.progress(v / max(1, len(values)), f"Flipping {column}")
        if own is None:
            same = (current == value).fillna(False).to_numpy(dtype=bool)
            target = ~same
        else:
            target = ~np.isin(codes, own)
        if not target.any():
            continue
        where = np.flatnonzero(target)
        changed = X.iloc[where].copy()
        try:  # the column keeps its type where the value fits it (a median of whole numbers may not)
            changed[column] = pd.Series([value] * len(where), index=changed.index, dtype=current.dtype)
        except (TypeError, ValueError):
            changed[column] = value
        new_decision, new_score = decide(model.predict(changed))
        flipped = new_decision != decision[where]
        changed_any[where[flipped]] = True
        for g in range(n_groups):
            in_group = codes[where] == g
            n = int(in_group.sum())
            if n == 0:
                continue
            hits = np.flatnonzero(in_group & flipped)
            up = int(np.sum(new_decision[hits] & ~decision[where[hits]]))
            shown = hits[:_EXAMPLES]
            rows.append(
                FlipRow(
                    group=labels[g],
                    to_value=label,
                    n=n,
                    flipped=int(hits.size),
                    to_favourable=up,
                    to_unfavourable=int(hits.size) - up,
                    examples=tuple(int(positions[where[i]]) for i in shown),
                    example_before=tuple(float(score[where[i]]) for i in shown),
                    example_after=tuple(float(new_score[i]) for i in shown),
                )
            )
    order = {label: i for i, label in enumerate(labels)}
    rows.sort(key=lambda r: order[r.group])  # stable: by group, then value order
    n_by = {labels[g]: int(np.sum(codes == g)) for g in range(n_groups)}
    flipped_by = {labels[g]: int(np.sum(changed_any & (codes == g))) for g in range(n_groups)}
    return FlipTest(
        column=column,
        role=role,
        attribute=grouping.attribute,
        values=how,
        rows=tuple(rows),
        n_by_group=n_by,
        flipped_by_group=flipped_by,
    )


# -- the analysis ----------------------------------------------------------------------------------------


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    sensitive: str | Sequence[str] | None = None,
    favourable: Any | None = None,
    reference: str | None = None,
    threshold: float = 0.5,
    bins: int = 4,
    edges: str | None = None,
    min_group_size: int = HEADLINE_MIN_GROUP_SIZE,
    n_boot: int = 1000,
    ll144_exclude_small: bool = False,
    flip_inputs: str | Sequence[str] | None = None,
) -> FairnessResult:
    """Fairness figures per group and intersection, with intervals, tests, LL144 tables and flip tests.

    Parameters
    ----------
    inputs:
        Data, roles and model.  Sensitive columns need not be model inputs.  Rows whose target is
        missing are left out; without a target only decisions are compared (selection rates).
    ctx:
        Seed, progress and cancel; the bootstrap draws from ``ctx.rng("bootstrap")``.
    sensitive:
        Column name or names; ``None``: the roles' sensitive attributes.  Every pair of them is
        also analysed as an intersection.
    favourable:
        The outcome that is good for the person: a class of a classifier (default: the second class
        of a binary model, else the first), or ``"high"``/``"low"`` for a regressor (default ``"high"``).
    reference:
        ``"ATTR=GROUP"`` pairs separated by ``;`` (a lone ``"GROUP"`` with one attribute); attributes
        not named compare with their largest group.
    threshold:
        A binary classifier decides favourably when P(favourable) exceeds it, in (0, 1).  Multiclass
        models decide by the most probable class; regressors by the side of the median prediction.
    bins:
        Numeric attributes with more than ten values are cut into this many quantile bins (4: quartiles).
    edges:
        Cut points instead, per attribute: ``"age=25,40,65; income=30000,60000"``.
    min_group_size:
        Groups with fewer rows are reported but never drive the headline.
    n_boot:
        Bootstrap resamples for the intervals.
    ll144_exclude_small:
        Leave categories under 2 % of the rows out of the Local Law 144 impact ratios.
    flip_inputs:
        Model inputs flipped besides the sensitive attributes the model takes (the audit gives the
        strongest proxy), counted by the groups of every sensitive attribute.

    Returns
    -------
    FairnessResult
    """
    started = utc_now()
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, (int, np.integer)) or min_group_size < 0:
        raise AnalysisError(
            f"The minimum group size must be a non-negative whole number of rows, not {min_group_size!r}."
        )
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise AnalysisError(f"The number of bootstrap resamples must be a non-negative whole number, not {n_boot!r}.")
    settings = _settings(
        inputs,
        sensitive=sensitive,
        favourable=favourable,
        reference=reference,
        threshold=threshold,
        bins=bins,
        edges=edges,
    )
    model = inputs.model
    feature_names = tuple(inputs.feature_names)
    flips = [] if flip_inputs is None else [flip_inputs] if isinstance(flip_inputs, str) else list(flip_inputs)
    not_inputs = [c for c in flips if c not in feature_names]
    if not_inputs:
        raise AnalysisError(
            f"The flip test changes model inputs only; {_listed(not_inputs)} "
            f"{'is' if len(not_inputs) == 1 else 'are'} not among the inputs of {model.name}."
        )
    task = model.task
    warn: list[str] = []
    source = inputs.dataset.name if inputs.dataset is not None else "the data"
    n_total = len(inputs.frame)
    keep = settings.keep
    positions = np.flatnonzero(keep)
    n_rows = int(keep.sum())
    n_dropped = n_total - n_rows
    if n_dropped:
        warn.append(
            f"{n_dropped} of {n_total} rows in {source} have no value in the target column "
            f"{inputs.roles.target!r} and were left out."
        )
    has_target = inputs.has_target
    if has_target:
        X, y = inputs.labelled()
    else:
        X, y = inputs.X, None
        warn.append(
            "No target column is chosen, so only the model's decisions are compared between groups; base rates, "
            "error rates and calibration need one."
        )

    ctx.check_cancelled()
    ctx.progress(0.0, "Predicting")
    out = model.predict(X)
    median = float(np.median(np.asarray(out, dtype=np.float64))) if task is Task.REGRESSION else _NAN
    if task is Task.CLASSIFICATION:
        _, off = normalise_probabilities(np.asarray(out, dtype=np.float64))
        if off:
            warn.append(
                f"The probabilities of model {model.name} do not sum to one on every row; they were rescaled first."
            )
        classes = tuple(model.classes or ())
        if len(classes) > 2 and settings.threshold != 0.5:
            warn.append(
                f"The threshold {settings.threshold:g} applies to binary models only; the multiclass model "
                f"{model.name} decides favourably when {settings.favourable!r} is the most probable class."
            )
    elif settings.threshold != 0.5:
        warn.append(
            f"The threshold {settings.threshold:g} applies to classifiers only; the regressor {model.name} is "
            "judged by the side of its median prediction."
        )

    def decide(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _decide(model, settings, raw, median)

    decision, score = decide(out)
    observed: np.ndarray | None = None
    target: np.ndarray | None = None
    if y is not None:
        if task is Task.CLASSIFICATION:
            assert settings.index is not None
            observed = class_indices(y, tuple(model.classes or ())) == settings.index
        else:
            target = np.asarray(y, dtype=np.float64)
            target_median = float(np.median(target))
            observed = target > target_median if settings.favourable == "high" else target < target_median
    V = _row_matrix(task=task, decision=decision, score=score, observed=observed, target=target)

    # The cells: every combination of the attributes' groups; resamples keep each cell's size.
    groupings = settings.groupings
    stacked = np.stack([g.codes for g in groupings], axis=1)
    combos, cells = np.unique(stacked, axis=0, return_inverse=True)
    cells = cells.reshape(-1).astype(np.int64)
    n_cells = len(combos)
    full = np.stack([np.bincount(cells, weights=V[:, j], minlength=n_cells) for j in range(V.shape[1])], axis=1)
    boot = _bootstrap_sums(V, cells, n_cells, int(n_boot), ctx, start=0.1, end=0.7)
    cell_n = np.bincount(cells, minlength=n_cells).astype(np.float64)

    # Attributes, then intersections of two: each a map from cells to its groups.
    keyed: list[tuple[str, np.ndarray, tuple[str, ...], int]] = []
    for a, grouping in enumerate(groupings):
        keyed.append((grouping.attribute, combos[:, a], grouping.labels, settings.references[grouping.attribute]))
    intersections: list[str] = []
    for a in range(len(groupings)):
        for b in range(a + 1, len(groupings)):
            ga, gb = groupings[a], groupings[b]
            name = f"{ga.attribute}{INTERSECTION}{gb.attribute}"
            pair = combos[:, a] * len(gb.labels) + combos[:, b]
            used, inverse = np.unique(pair, return_inverse=True)
            labels = tuple(
                f"{ga.labels[int(u) // len(gb.labels)]}{INTERSECTION}{gb.labels[int(u) % len(gb.labels)]}" for u in used
            )
            ref_pair = settings.references[ga.attribute] * len(gb.labels) + settings.references[gb.attribute]
            if ref_pair in used:
                ref = int(np.flatnonzero(used == ref_pair)[0])
            else:
                sizes = np.bincount(inverse.reshape(-1), weights=cell_n, minlength=len(used))
                ref = _largest_known(sizes, labels)
            keyed.append((name, inverse.reshape(-1).astype(np.int64), labels, ref))
            intersections.append(name)

    ctx.progress(0.7, "Comparing groups")
    all_groups: list[FairnessGroup] = []
    measures: list[FairnessMeasure] = []
    comparisons: list[ReferenceComparison] = []
    tables: list[LL144Table] = []
    gaps: list[Disparity] = []
    references: dict[str, str] = {}
    min_size = int(min_group_size)
    for name, cell_group, labels, ref in keyed:
        ctx.check_cancelled()
        G = len(labels)
        # Plain sums over each group's cells (no matrix product): the same order, so the same bits, everywhere.
        members = [np.flatnonzero(cell_group == g) for g in range(G)]
        n = np.array([cell_n[m].sum() for m in members])
        S = np.stack([full[m].sum(axis=0) for m in members])  # (G, k)
        S_boot = np.stack([boot[:, m, :].sum(axis=1) for m in members], axis=1)  # (B, G, k)
        point = _rates(S, n, task=task, has_target=has_target)
        resampled = _rates(S_boot, n[None, :], task=task, has_target=has_target)
        intervals = {f: _interval(resampled[f]) for f in FIGURES}
        judged = n >= min_size
        references[name] = labels[ref]
        for g in range(G):
            all_groups.append(
                FairnessGroup(
                    attribute=name,
                    group=labels[g],
                    n=int(n[g]),
                    share=float(n[g] / n_rows),
                    n_observed=int(round(S[g, _Y])) if has_target else 0,
                    n_selected=int(round(S[g, _D])),
                    ci={f: (float(intervals[f][0][g]), float(intervals[f][1][g])) for f in FIGURES},
                    judged=bool(judged[g]),
                    reference=g == ref,
                    **{f: float(point[f][g]) for f in FIGURES},
                )
            )
        measures += _measures(name, labels, point, resampled)
        comparisons += _comparisons(name, labels, ref, n, S, point, resampled, judged)
        tables.append(_ll144(name, labels, n, point["selection_rate"], task, bool(ll144_exclude_small)))
        if name not in intersections:
            gap = _largest_gap(name, labels, n, point, resampled, judged)
            if gap is not None:
                gaps.append(gap)
        small = [f"{labels[g]!r} ({int(n[g])} rows)" for g in range(G) if not judged[g]]
        if small and name not in intersections:
            shown = _first_few(small)
            warn.append(
                f"In {name!r} {len(small)} group{'s have' if len(small) > 1 else ' has'} fewer than {min_size} "
                f"rows ({shown}); {'they are' if len(small) > 1 else 'it is'} reported but not used for the headline."
            )
    headline = max(gaps, key=lambda d: d.difference) if gaps else None
    if headline is None:
        warn.append(
            f"No attribute has two groups of at least {min_size} rows, so no gap is large enough to judge "
            "as a headline."
        )

    flip_tests: list[FlipTest] = []
    to_flip = [(g.attribute, "sensitive attribute", [g]) for g in groupings if g.attribute in feature_names]
    to_flip += [(c, "proxy", list(groupings)) for c in flips if c not in {g.attribute for g in groupings}]
    for i, (column, role, by) in enumerate(to_flip):
        for grouping in by:
            sub = ctx.sub(0.8 + 0.2 * i / len(to_flip), 0.8 + 0.2 * (i + 1) / len(to_flip))
            flip_tests.append(
                _flip_test(model, X, positions, settings, column, role, grouping, decide, decision, score, sub)
            )

    provenance = inputs.provenance(
        method=METHOD.name,
        parameters={
            "sensitive": [g.attribute for g in groupings],
            "favourable": to_jsonable(settings.favourable),
            "reference": dict(references),
            "threshold": settings.threshold,
            "bins": int(bins),
            "bin_edges": {g.attribute: list(g.edges) for g in groupings if g.edges is not None},
            "min_group_size": min_size,
            "n_boot": int(n_boot),
            "ll144_exclude_small": bool(ll144_exclude_small),
            "flipped": [c for c, _, _ in to_flip],
        },
        ctx=ctx,
        started_at=started,
        warnings=warn,
    )
    singles = {g.attribute for g in groupings}
    result = FairnessResult(
        provenance=provenance,
        task=task.value,
        favourable=settings.favourable,
        output_name=settings.output_name,
        threshold=settings.threshold,
        median_score=median,
        attributes=tuple(g.attribute for g in groupings),
        intersections=tuple(intersections),
        references=references,
        reference_given=settings.given,
        bin_edges={g.attribute: g.edges for g in groupings if g.edges is not None},
        groups=tuple(g for g in all_groups if g.attribute in singles),
        intersection_groups=tuple(g for g in all_groups if g.attribute not in singles),
        measures=tuple(measures),
        comparisons=tuple(comparisons),
        ll144=tuple(tables),
        headline=headline,
        largest_gaps=tuple(gaps),
        flips=tuple(flip_tests),
        n_rows=n_rows,
        n_dropped=n_dropped,
        min_group_size=min_size,
        n_boot=int(n_boot),
        confidence=CONFIDENCE,
        ll144_exclude_small=bool(ll144_exclude_small),
    )
    ctx.progress(1.0, "Done")
    return result


def _largest_known(sizes: np.ndarray, labels: Sequence[str]) -> int:
    order = [int(i) for i in np.argsort(-sizes, kind="stable") if MISSING_GROUP not in labels[int(i)]]
    return order[0] if order else 0


def _measures(
    name: str, labels: Sequence[str], point: Mapping[str, np.ndarray], boot: Mapping[str, np.ndarray]
) -> list[FairnessMeasure]:
    """The measures of :data:`MEASURES` for one attribute, with fairlearn's definitions, and their intervals."""

    def record(measure: str, metric: str, value: Any, resampled: np.ndarray, lo: Any, hi: Any) -> FairnessMeasure:
        low, high = _interval(resampled[:, None])
        defined = int(np.isfinite(point[metric]).sum())
        return FairnessMeasure(
            attribute=name,
            measure=measure,
            metric=metric,
            value=float(value),
            ci_low=float(low[0]),
            ci_high=float(high[0]),
            low_group=labels[int(lo)] if int(lo) >= 0 else "",
            high_group=labels[int(hi)] if int(hi) >= 0 else "",
            n_groups=defined,
        )

    sel_d, sel_r, sel_lo, sel_hi = _spread(point["selection_rate"])
    bsel_d, bsel_r, _, _ = _spread(boot["selection_rate"])
    tpr_d, _, tpr_lo, tpr_hi = _spread(point["tpr"])
    btpr_d, _, _, _ = _spread(boot["tpr"])
    fpr_d, fpr_r, fpr_lo, fpr_hi = _spread(point["fpr"])
    bfpr_d, bfpr_r, _, _ = _spread(boot["fpr"])
    # fairlearn's worst case: the larger of the two gaps; one that is not defined yields to the other.
    use_fpr = bool(np.isnan(tpr_d)) or (not np.isnan(fpr_d) and fpr_d > tpr_d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        beo = np.fmax(btpr_d, bfpr_d)
    eo_value = fpr_d if use_fpr else tpr_d
    eo_lo, eo_hi = (fpr_lo, fpr_hi) if use_fpr else (tpr_lo, tpr_hi)
    return [
        record("demographic_parity_difference", "selection_rate", sel_d, bsel_d, sel_lo, sel_hi),
        record("demographic_parity_ratio", "selection_rate", sel_r, bsel_r, sel_lo, sel_hi),
        record("equalized_odds_difference", "fpr" if use_fpr else "tpr", eo_value, beo, eo_lo, eo_hi),
        record("equal_opportunity_difference", "tpr", tpr_d, btpr_d, tpr_lo, tpr_hi),
        record("fpr_ratio", "fpr", fpr_r, bfpr_r, fpr_lo, fpr_hi),
    ]


def _comparisons(
    name: str,
    labels: Sequence[str],
    ref: int,
    n: np.ndarray,
    S: np.ndarray,
    point: Mapping[str, np.ndarray],
    boot: Mapping[str, np.ndarray],
    judged: np.ndarray,
) -> list[ReferenceComparison]:
    """Each group's selection rate against the reference group's: ratio, difference, z-test, Holm."""
    sel, bsel = point["selection_rate"], boot["selection_rate"]
    others = [g for g in range(len(labels)) if g != ref]
    tests = [_z_test(float(S[g, _D]), float(n[g]), float(S[ref, _D]), float(n[ref])) for g in others]
    adjusted = _holm([p for _, p in tests])
    out: list[ReferenceComparison] = []
    for g, (z, p), p_holm in zip(others, tests, adjusted):
        ratio = float(_ratio(np.array(sel[g]), np.array(sel[ref])))
        r_low, r_high = _interval(_ratio(bsel[:, g], bsel[:, ref])[:, None])
        d_low, d_high = _interval((bsel[:, g] - bsel[:, ref])[:, None])
        out.append(
            ReferenceComparison(
                attribute=name,
                group=labels[g],
                reference=labels[ref],
                n=int(n[g]),
                n_reference=int(n[ref]),
                selection_rate=float(sel[g]),
                reference_rate=float(sel[ref]),
                ratio=ratio,
                ratio_ci_low=float(r_low[0]),
                ratio_ci_high=float(r_high[0]),
                below_four_fifths=bool(ratio < FOUR_FIFTHS),
                difference=float(sel[g] - sel[ref]),
                difference_ci_low=float(d_low[0]),
                difference_ci_high=float(d_high[0]),
                z=z,
                p_value=p,
                p_holm=p_holm,
                significant=bool(p_holm < ALPHA),
                judged=bool(judged[g] and judged[ref]),
            )
        )
    return out


def _ll144(
    name: str, labels: Sequence[str], n: np.ndarray, rate: np.ndarray, task: Task, exclude_small: bool
) -> LL144Table:
    """Local Law 144's table: rates and impact ratios against the most selected known category."""
    known = [g for g in range(len(labels)) if MISSING_GROUP not in labels[g]]
    n_unknown = int(sum(n[g] for g in range(len(labels)) if g not in known))
    n_known = float(sum(n[g] for g in known))
    excluded = [g for g in known if exclude_small and n_known > 0 and n[g] / n_known < LL144_SMALL_SHARE]
    included = [g for g in known if g not in excluded]
    top = max((float(rate[g]) for g in included if np.isfinite(rate[g])), default=_NAN)
    rows = tuple(
        LL144Row(
            category=labels[g],
            n=int(n[g]),
            rate=float(rate[g]),
            impact_ratio=float(rate[g] / top) if g in included and top > 0 else _NAN,
            excluded=g in excluded,
        )
        for g in known
    )
    return LL144Table(
        attribute=name,
        rate_kind="selection rate" if task is Task.CLASSIFICATION else "scoring rate",
        n_unknown=n_unknown,
        exclude_small=exclude_small,
        excluded=tuple(labels[g] for g in excluded),
        rows=rows,
    )


def _largest_gap(
    name: str,
    labels: Sequence[str],
    n: np.ndarray,
    point: Mapping[str, np.ndarray],
    boot: Mapping[str, np.ndarray],
    judged: np.ndarray,
) -> Disparity | None:
    """The largest gap in :data:`HEADLINE_METRICS` between judged groups (not ``"(missing)"``), or ``None``."""
    eligible = np.array([bool(judged[g]) and labels[g] != MISSING_GROUP for g in range(len(labels))])
    best: Disparity | None = None
    for metric in HEADLINE_METRICS:
        values = np.where(eligible, point[metric], np.nan)
        diff, ratio, lo, hi = _spread(values)
        if np.isnan(diff) or (best is not None and not diff > best.difference):
            continue
        low, high = _interval((boot[metric][:, hi] - boot[metric][:, lo])[:, None])
        best = Disparity(
            attribute=name,
            metric=metric,
            low_group=labels[int(lo)],
            high_group=labels[int(hi)],
            low_value=float(values[lo]),
            high_value=float(values[hi]),
            low_n=int(n[lo]),
            high_n=int(n[hi]),
            difference=float(diff),
            ci_low=float(low[0]),
            ci_high=float(high[0]),
            ratio=float(ratio),
        )
    return best


METHOD = Method(
    name="fairness",
    title="Fairness: groups, intersections and flip test",
    short_title="Fairness",
    run=run,
    summary=(
        "Per group and per intersection of two sensitive attributes: selection, base, error and calibration "
        "rates with bootstrap intervals; demographic parity, equalized odds and equal opportunity; the "
        "four-fifths rule and significance tests against a reference group; the NYC Local Law 144 table; "
        "and a counterfactual flip test of the attribute or its proxy."
    ),
    description=(
        "Rows are split by each sensitive attribute (numeric ones cut into bins, by default quartiles) and by "
        "each pair of attributes. Per group: count, share, base rate, selection rate (the share of favourable "
        "decisions; for a regressor the share on the favourable side of the median prediction), true and false "
        "positive and false negative rates, precision and calibration (mean predicted against observed, and "
        "the expected calibration error over ten probability bins), each with a 95% percentile interval from "
        "a seeded bootstrap that resamples rows within each combination of groups, so group sizes stay fixed. "
        "Summary measures use fairlearn's definitions over every group: demographic parity difference (largest "
        "minus smallest selection rate) and ratio (smallest over largest), equalized odds difference (the larger "
        "of the true and false positive rate gaps), equal opportunity difference (the true positive rate gap) "
        "and the false positive rate ratio. Each group is compared with a reference group (given, else the "
        "largest): selection-rate ratios under four-fifths are flagged, and a two-proportion z-test gives "
        "p-values adjusted for multiple comparisons by Holm's method within each attribute. The Local Law 144 "
        "table gives each category's rate and impact ratio against the most selected category, counts rows "
        "with an unknown category, and states whether categories under 2% were excluded. The headline is the "
        f"largest gap in selection rate, true or false positive rate between groups of at least "
        f"{HEADLINE_MIN_GROUP_SIZE} rows (by default); smaller groups are reported, never headline. The flip "
        "test changes only one input, a sensitive attribute the model takes or a proxy of one, to each other "
        "value and counts the decisions that change, by group. A gap is never negative, so near zero its "
        "interval lies above zero and reads as an upper bound on the gap rather than evidence of one."
    ),
    params=(
        Param(
            "sensitive",
            "columns",
            None,
            label="Sensitive columns",
            basic=True,
            none="the sensitive columns chosen in the roles",
            help="The columns whose groups are compared (they need not be model inputs).",
        ),
        Param(
            "favourable",
            "class",
            None,
            label="Favourable outcome",
            basic=True,
            none="the second class of a binary model, else the first; 'high' for a regressor",
            help="The outcome that is good for the person: a class, or 'high' or 'low' for a regressor.",
            task_choices={"regression": ("high", "low")},
        ),
        Param(
            "reference",
            "text",
            None,
            label="Reference groups",
            basic=True,
            none="each attribute's largest group",
            help="The group each attribute is compared with, as ATTR=GROUP pairs separated by ';'.",
        ),
        Param(
            "threshold",
            "float",
            0.5,
            label="Decision threshold",
            minimum=0.0,
            maximum=1.0,
            exclusive=True,
            basic=True,
            help="A binary classifier decides favourably when P(favourable) exceeds it.",
        ),
        Param(
            "bins",
            "int",
            4,
            label="Bins of numeric attributes",
            minimum=2,
            maximum=20,
            help="Numeric attributes with more than ten values are cut into this many quantile bins.",
        ),
        Param(
            "edges",
            "text",
            None,
            label="Bin edges",
            none="quantile bins",
            help="Cut points per numeric attribute instead of quantiles, as 'age=25,40,65' (pairs separated by ';').",
        ),
        Param(
            "min_group_size",
            "int",
            HEADLINE_MIN_GROUP_SIZE,
            label="Smallest group judged",
            minimum=0,
            unit="rows",
            help="Groups with fewer rows are reported but never drive the headline.",
        ),
        Param(
            "n_boot",
            "int",
            1000,
            label="Bootstrap resamples",
            minimum=10,
            unit="resamples",
            help="Resamples drawn for the 95% intervals (stratified by group).",
        ),
        Param(
            "ll144_exclude_small",
            "bool",
            False,
            label="LL144: leave out categories under 2%",
            help="Leave categories under 2% of the rows out of the Local Law 144 impact ratios (stated).",
        ),
        Param(
            "flip_inputs",
            "columns",
            None,
            label="Inputs to flip",
            none="only the sensitive attributes the model takes",
            help="Model inputs also flipped, such as the strongest proxy (the audit gives it).",
        ),
    ),
    result=FairnessResult,
    needs=frozenset({"sensitive"}),
    view="fairness",
    samples="n_boot",
)
