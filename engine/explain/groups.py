"""Outcomes and errors of the model per group of a sensitive attribute (a fairness probe).

For every sensitive column the evaluated rows are split into groups (its
values; numeric columns with many values are cut at their quartiles; missing
values form the group ``"(missing)"``) and each group gets its share of rows,
its observed positive rate, the model's selection rate, accuracy and error
rates.  The largest gaps between groups are then summarised per attribute with
the definitions of fairlearn (demographic parity difference and ratio,
equalised odds difference), naming the groups at either end, so the reader
sees both the size of a gap and whom it concerns.

The figures describe outcomes on the data audited; they do not by themselves
establish that a difference is unjustified, and small groups carry large
sampling error (a warning names them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.attribution import resolve_output
from engine.errors import AnalysisError
from engine.explain.performance import class_indices, normalise_probabilities
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Task
from engine.params import Param, class_param
from engine.results import Result, to_jsonable, utc_now

__all__ = [
    "HEADLINE_MIN_GROUP_SIZE",
    "MISSING_GROUP",
    "GroupRow",
    "GroupDifference",
    "GroupMetricsResult",
    "group_codes",
    "run",
    "METHOD",
]

MISSING_GROUP = "(missing)"

#: Headline gaps (the report's summary sentences) compare only groups with at
#: least this many evaluated rows: a rate measured on a handful of rows moves
#: by tens of percentage points with one row, so a gap to it is mostly noise.
#: Smaller groups are named as not compared, with their size.
HEADLINE_MIN_GROUP_SIZE = 30

# A numeric column with more distinct values than this is cut into quartiles:
# one group per value would leave most groups too small to compare.
_MAX_NUMERIC_LEVELS = 10
# How many group names a warning sentence lists before it says "and N more".
_NAMES_SHOWN = 5

_NAN = float("nan")


@dataclass(frozen=True)
class GroupRow:
    """The model's outcomes on one group of one sensitive attribute.

    Rates are fractions in ``[0, 1]``; NaN where the task or the data does not
    define them (a warning says why when it affects a difference).

    Attributes
    ----------
    attribute: the sensitive column.
    group: the group's label: the value, a range such as ``"(41, 52]"`` for a
        binned numeric column, or ``"(missing)"``.
    n: evaluated rows in the group.
    share: ``n`` divided by all evaluated rows.
    base_rate: observed share of the explained (positive) class (classification
        with a target).
    positive_rate: the selection rate, the share of rows predicted as the
        explained class (classification).  Named as the report reads it.
    accuracy: share of rows whose predicted class equals the target.
    tpr, fpr, ppv: true positive rate (recall), false positive rate and
        positive predictive value (precision) for the explained class against
        all others.
    mean_probability: mean predicted probability of the explained class.
    mean_target: mean observed target (regression), in the target's units.
    mean_prediction: mean prediction (regression), in the target's units; the
        regression counterpart of the selection rate.
    mae: mean absolute error (regression), in the target's units.
    """

    attribute: str = ""
    group: str = ""
    n: int = 0
    share: float = _NAN
    base_rate: float = _NAN
    positive_rate: float = _NAN
    accuracy: float = _NAN
    tpr: float = _NAN
    fpr: float = _NAN
    ppv: float = _NAN
    mean_probability: float = _NAN
    mean_target: float = _NAN
    mean_prediction: float = _NAN
    mae: float = _NAN

    @property
    def selection_rate(self) -> float:
        """Share predicted positive (classification) or mean prediction (regression)."""
        return self.mean_prediction if math.isnan(self.positive_rate) else self.positive_rate


@dataclass(frozen=True)
class GroupDifference:
    """The largest gap between the groups of one attribute on one measure.

    Attributes
    ----------
    attribute: the sensitive column.
    measure: ``"demographic_parity"`` (selection rate; mean prediction for
        regression), ``"equalized_odds"`` (the larger of the TPR and FPR gaps),
        ``"accuracy"`` or ``"mae"`` (regression).
    metric: the per-group field compared: ``"positive_rate"``,
        ``"mean_prediction"``, ``"tpr"``, ``"fpr"``, ``"accuracy"`` or ``"mae"``;
        for equalised odds, whichever of TPR and FPR gave the larger gap.
    difference: largest minus smallest value over the groups where it is
        defined; NaN when fewer than two groups define it.
    ratio: smallest divided by largest (demographic parity only, and only when
        the values are non-negative); NaN otherwise.
    low_group, high_group: the groups holding the smallest and largest value
        (``""`` when the difference is NaN).
    """

    attribute: str = ""
    measure: str = ""
    metric: str = ""
    difference: float = _NAN
    ratio: float = _NAN
    low_group: str = ""
    high_group: str = ""


@dataclass(frozen=True)
class GroupMetricsResult(Result):
    """Per-group outcomes and the largest gaps between groups, per sensitive attribute.

    ``to_dict()["groups"]`` is the list of flat per-group records (``attribute``,
    ``group``, ``n``, ``positive_rate``, ``accuracy``, …) that the report's
    summary reads.

    Attributes
    ----------
    task: ``"classification"`` or ``"regression"``.
    explained_class: the class counted as positive (``None`` for regression).
    output_name: ``"P(<class>)"`` or ``"prediction"``.
    threshold: a binary model's row counts as positive when P(explained class)
        exceeds it; multiclass models use the most probable class instead.
    attributes: the sensitive columns, in the order analysed.
    binned: the attributes whose numeric values were cut into quartiles.
    groups: one record per (attribute, group), attributes in order, groups in
        value order with ``"(missing)"`` last.
    differences: per attribute, one record per measure the task defines.
    n_rows: evaluated rows (target present, or all rows without a target).
    n_dropped: rows left out because their target is missing.
    min_group_size: groups with fewer rows are named in a warning.
    """

    kind: ClassVar[str] = "group_metrics"
    task: str = ""
    explained_class: Any = None
    output_name: str = ""
    threshold: float = 0.5
    attributes: tuple[str, ...] = ()
    binned: tuple[str, ...] = ()
    groups: tuple[GroupRow, ...] = ()
    differences: tuple[GroupDifference, ...] = ()
    n_rows: int = 0
    n_dropped: int = 0
    min_group_size: int = 20

    def rows(self, attribute: str) -> tuple[GroupRow, ...]:
        """The group records of one attribute, in order."""
        return tuple(r for r in self.groups if r.attribute == attribute)

    def difference(self, attribute: str, measure: str) -> GroupDifference:
        """The gap record of ``attribute`` on ``measure``; ``KeyError`` when absent."""
        for d in self.differences:
            if d.attribute == attribute and d.measure == measure:
                return d
        raise KeyError((attribute, measure))


# -- grouping ----------------------------------------------------------------------


def _format_numbers(values: Sequence[float]) -> list[str]:
    """Shortest ``g`` formatting (4 to 12 significant digits) that keeps distinct values distinct."""
    values = [float(v) for v in values]
    if all(v.is_integer() and abs(v) < 1e15 for v in values):
        return [str(int(v)) for v in values]
    n_distinct = len(set(values))
    for digits in range(4, 13):
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == n_distinct:
            return labels
    return [repr(v) for v in values]


def _value_labels(uniques: Sequence[Any]) -> list[str]:
    items = [u.item() if isinstance(u, np.generic) else u for u in uniques]
    numeric = [isinstance(u, (int, float)) and not isinstance(u, bool) for u in items]
    if items and all(numeric):
        return _format_numbers(items)
    return [str(u) for u in items]


def group_codes(series: pd.Series) -> tuple[np.ndarray, list[str], bool]:
    """Integer group codes ``(n,)`` into the returned labels, and whether the column was binned.

    Missing values get the last code, labelled ``"(missing)"``; groups with no
    row are left out.
    """
    missing = series.isna().to_numpy()
    present = series[~missing]
    binned = False
    dtype = series.dtype
    is_numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if is_numeric and present.nunique() > _MAX_NUMERIC_LEVELS:
        x = present.to_numpy(dtype=np.float64)
        edges = np.unique(np.quantile(x, [0.0, 0.25, 0.5, 0.75, 1.0]))
        # Right-closed bins, the first also holding the minimum, as pandas.qcut draws them.
        sub = np.searchsorted(edges[1:-1], x, side="left").astype(np.int64)
        shown = _format_numbers(edges.tolist())
        labels = [f"[{shown[0]}, {shown[1]}]"] + [f"({shown[i]}, {shown[i + 1]}]" for i in range(1, len(edges) - 1)]
        binned = True
    else:
        try:
            sub, uniques = pd.factorize(present, sort=True)
        except TypeError:  # mixed types in an object column cannot be ordered
            sub, uniques = pd.factorize(present, sort=False)
        labels = _value_labels(list(uniques))
        # Values that print the same (1 and "1" in an object column) are one group to a reader.
        merged, label_index = pd.factorize(np.asarray(labels, dtype=object), sort=False)
        sub = merged[sub] if len(sub) else sub.astype(np.int64)
        labels = [str(v) for v in label_index]
    codes = np.full(len(series), len(labels), dtype=np.int64)
    codes[~missing] = sub
    labels = [*labels, MISSING_GROUP]
    used = np.unique(codes)
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[codes], [labels[i] for i in used], binned


# -- per-group figures -----------------------------------------------------------------


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _sums(codes: np.ndarray, n_groups: int, weights: np.ndarray) -> np.ndarray:
    return np.bincount(codes, weights=np.asarray(weights, dtype=np.float64), minlength=n_groups)


def _spread(values: np.ndarray, labels: Sequence[str], *, with_ratio: bool = False) -> tuple[float, float, str, str]:
    """Max minus min over the finite values, min/max, and the groups at either end."""
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size < 2:
        return _NAN, _NAN, "", ""
    lo = int(finite[np.argmin(values[finite])])
    hi = int(finite[np.argmax(values[finite])])
    difference = float(values[hi] - values[lo])
    ratio = _NAN
    if with_ratio and values[lo] >= 0 and values[hi] > 0:
        ratio = float(values[lo] / values[hi])
    return difference, ratio, labels[lo], labels[hi]


def _first_few(items: Sequence[str]) -> str:
    """The first few of ``items`` joined for a sentence, then "and N more" for the rest."""
    more = len(items) - _NAMES_SHOWN
    return ", ".join(items[:_NAMES_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _listed(names: Sequence[str]) -> str:
    return _first_few([repr(n) for n in names])


def _validate(threshold: Any, min_group_size: Any) -> tuple[float, int]:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.integer, np.floating))
        or not (0.0 <= float(threshold) <= 1.0)
    ):
        raise AnalysisError(f"The decision threshold must be a probability between 0 and 1, not {threshold!r}.")
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, (int, np.integer)) or min_group_size < 0:
        raise AnalysisError(
            f"The minimum group size must be a non-negative whole number of rows, not {min_group_size!r}."
        )
    return float(threshold), int(min_group_size)


def _sensitive_columns(
    inputs: AuditInputs, sensitive: str | Sequence[str] | None, *, purpose: str = "group metrics"
) -> tuple[str, ...]:
    """The sensitive columns asked for (default: the roles'), each once, each in the data; else one sentence.

    ``purpose`` names the analysis in the sentence for an empty choice (the fairness analysis uses this too).
    """
    if sensitive is None:
        names: tuple[str, ...] = tuple(inputs.roles.sensitive)
    elif isinstance(sensitive, str):
        names = (sensitive,)
    else:
        names = tuple(str(s) for s in sensitive)
    names = tuple(dict.fromkeys(names))
    if not names:
        raise AnalysisError(f"Choose at least one sensitive attribute column for {purpose}.")
    absent = [s for s in names if s not in inputs.frame.columns]
    if absent:
        where = f"The data file {inputs.dataset.name}" if inputs.dataset is not None else "The data"
        plural = "s" if len(absent) > 1 else ""
        raise AnalysisError(f"{where} has no column{plural} {_listed(absent)} to group rows by.")
    return names


# -- the analysis ---------------------------------------------------------------------


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    sensitive: str | Sequence[str] | None = None,
    klass: Any | None = None,
    threshold: float = 0.5,
    min_group_size: int = 20,
) -> GroupMetricsResult:
    """Compare the model's outcomes and errors between the groups of each sensitive attribute.

    Parameters
    ----------
    inputs:
        Data, roles and model.  Sensitive columns need not be model inputs.
        Rows whose target is missing are left out; without a target every row
        is used and only predicted outcomes are compared.
    ctx:
        Job context; progress is reported per attribute.
    sensitive:
        Column name or names to group by; ``None`` means the roles' sensitive
        attributes.
    klass:
        The class counted as positive: by default the second class of a binary
        model and the first class of a multiclass one.  Must be ``None`` for
        regression.
    threshold:
        Binary models: a row is predicted positive when P(explained class)
        exceeds this (strictly, so 0.5 reproduces the model's own argmax
        decision).  Multiclass models predict the most probable class and
        ignore it.
    min_group_size:
        Groups with fewer evaluated rows are named in a warning (and kept).

    Returns
    -------
    GroupMetricsResult
        Per group: ``n``, ``share``, ``base_rate``, ``positive_rate``
        (selection rate), ``accuracy``, ``tpr``, ``fpr``, ``ppv`` and
        ``mean_probability`` for classification; ``mean_target``,
        ``mean_prediction`` and ``mae`` for regression.  Per attribute, with
        fairlearn's definitions: demographic parity difference (max − min
        selection rate) and ratio (min / max), equalised odds difference (the
        larger of the max − min TPR and FPR gaps), accuracy difference; for
        regression the mean prediction and MAE gaps.
    """
    started = utc_now()
    threshold, min_group_size = _validate(threshold, min_group_size)
    attributes = _sensitive_columns(inputs, sensitive)
    model = inputs.model
    index, output_name = resolve_output(model, klass)
    ctx.check_cancelled()
    ctx.progress(0.0, "Preparing rows")

    warn: list[str] = []
    source = inputs.dataset.name if inputs.dataset is not None else "the data"
    n_total = len(inputs.frame)
    has_target = inputs.has_target
    if has_target:
        keep = inputs.y.notna().to_numpy()
        X, y = inputs.labelled()
    else:
        keep = np.ones(n_total, dtype=bool)
        X, y = inputs.X, None
        warn.append(
            "No target column is chosen, so only the model's predictions are compared between groups; base rates, "
            "accuracy and error rates need one."
        )
    n_rows = len(X)
    n_dropped = n_total - n_rows
    if n_dropped:
        warn.append(
            f"{n_dropped} of {n_total} rows in {source} have no value in the target column "
            f"{inputs.roles.target!r} and were left out."
        )
    if n_rows == 0:
        raise AnalysisError(
            f"No row in {source} has a value in the target column {inputs.roles.target!r}, "
            "so group metrics cannot be computed."
        )

    ctx.check_cancelled()
    ctx.progress(0.05, "Predicting")
    out = model.predict(X)
    ctx.progress(0.5, "Comparing groups")

    # Per-row quantities every attribute aggregates the same way: (n,) float arrays, NaN = not defined.
    per_row: dict[str, np.ndarray] = {}
    explained: Any = None
    if model.task is Task.CLASSIFICATION:
        classes = tuple(model.classes or ())
        if len(classes) < 2:
            raise AnalysisError(
                f"The model {model.name} knows {len(classes)} class{'es' if len(classes) != 1 else ''}, "
                "so group metrics cannot be computed."
            )
        assert index is not None
        explained = classes[index]
        proba, off = normalise_probabilities(out)
        if off:
            warn.append(
                f"The probabilities of model {model.name} do not sum to one on every row; they were rescaled first."
            )
        p = proba[:, index]
        if len(classes) == 2:
            predicted_positive = p > threshold
            predicted = np.where(predicted_positive, index, 1 - index)
        else:
            predicted = np.argmax(proba, axis=1)
            predicted_positive = predicted == index
            if threshold != 0.5:
                warn.append(
                    f"The threshold {threshold:g} applies to binary models only; for the multiclass model "
                    f"{model.name} a row counts as predicted {explained!r} when that class is the most probable."
                )
        per_row["positive_rate"] = predicted_positive.astype(np.float64)
        per_row["mean_probability"] = p
        if y is not None:
            y_idx = class_indices(y, classes)
            actual = y_idx == index
            per_row["base_rate"] = actual.astype(np.float64)
            per_row["accuracy"] = (predicted == y_idx).astype(np.float64)
            per_row["_tp"] = (predicted_positive & actual).astype(np.float64)
            per_row["_fp"] = (predicted_positive & ~actual).astype(np.float64)
            per_row["_neg"] = (~actual).astype(np.float64)
    else:
        per_row["mean_prediction"] = out
        if y is not None:
            target = np.asarray(y, dtype=np.float64)
            per_row["mean_target"] = target
            per_row["mae"] = np.abs(target - out)

    frame = inputs.frame.loc[keep] if n_dropped else inputs.frame
    rows: list[GroupRow] = []
    differences: list[GroupDifference] = []
    binned: list[str] = []
    for a, attribute in enumerate(attributes):
        ctx.check_cancelled()
        ctx.progress(0.5 + 0.5 * a / len(attributes), f"Grouping by {attribute}")
        codes, labels, was_binned = group_codes(frame[attribute])
        if was_binned:
            binned.append(attribute)
        g = len(labels)
        n = np.bincount(codes, minlength=g).astype(np.float64)
        means = {k: _sums(codes, g, v) / n for k, v in per_row.items() if not k.startswith("_")}
        if "_tp" in per_row:
            tp, fp = _sums(codes, g, per_row["_tp"]), _sums(codes, g, per_row["_fp"])
            positives = _sums(codes, g, per_row["base_rate"])
            negatives = _sums(codes, g, per_row["_neg"])
            means["tpr"] = _ratio(tp, positives)
            means["fpr"] = _ratio(fp, negatives)
            means["ppv"] = _ratio(tp, tp + fp)
            undefined = [labels[i] for i in range(g) if positives[i] == 0 or negatives[i] == 0]
            if undefined:
                warn.append(
                    f"In {attribute!r} the group{'s' if len(undefined) > 1 else ''} {_listed(undefined)} "
                    f"hold{'s' if len(undefined) == 1 else ''} only one class, so the true or false positive "
                    "rate is not defined there and the equalised odds difference leaves "
                    f"{'it' if len(undefined) == 1 else 'them'} out."
                )
        for i in range(g):
            rows.append(
                GroupRow(
                    attribute=attribute,
                    group=labels[i],
                    n=int(n[i]),
                    share=float(n[i] / n_rows),
                    **{k: float(v[i]) for k, v in means.items()},
                )
            )
        small = [f"{labels[i]!r} ({int(n[i])} rows)" for i in range(g) if n[i] < min_group_size]
        if small:
            shown = _first_few(small)
            warn.append(
                f"In {attribute!r} {len(small)} group{'s have' if len(small) > 1 else ' has'} fewer than "
                f"{min_group_size} rows ({shown}); {'their' if len(small) > 1 else 'its'} rates are uncertain."
            )
        if g < 2:
            warn.append(
                f"The sensitive attribute {attribute!r} has a single group on the evaluated rows, so no "
                "difference between groups can be measured."
            )
        differences += _differences(attribute, means, labels, regression=model.task is Task.REGRESSION)

    provenance = inputs.provenance(
        method=METHOD.name,
        parameters={
            "sensitive": list(attributes),
            "klass": to_jsonable(klass),
            "threshold": threshold,
            "min_group_size": min_group_size,
        },
        ctx=ctx,
        started_at=started,
        warnings=warn,
    )
    result = GroupMetricsResult(
        provenance=provenance,
        task=model.task.value,
        explained_class=explained.item() if isinstance(explained, np.generic) else explained,
        output_name=output_name,
        threshold=threshold,
        attributes=attributes,
        binned=tuple(binned),
        groups=tuple(rows),
        differences=tuple(differences),
        n_rows=n_rows,
        n_dropped=n_dropped,
        min_group_size=min_group_size,
    )
    ctx.progress(1.0, "Done")
    return result


def _differences(
    attribute: str, means: dict[str, np.ndarray], labels: Sequence[str], *, regression: bool
) -> list[GroupDifference]:
    """The gap records the task and the available figures define, in a fixed order."""
    out: list[GroupDifference] = []
    selection = "mean_prediction" if regression else "positive_rate"
    diff, ratio, lo, hi = _spread(means[selection], labels, with_ratio=True)
    out.append(GroupDifference(attribute, "demographic_parity", selection, diff, ratio, lo, hi))
    if "tpr" in means:
        tpr = _spread(means["tpr"], labels)
        fpr = _spread(means["fpr"], labels)
        # fairlearn's worst case: the larger gap; a gap undefined on one side yields to the other.
        use_fpr = math.isnan(tpr[0]) or (not math.isnan(fpr[0]) and fpr[0] > tpr[0])
        d, _, lo, hi = fpr if use_fpr else tpr
        out.append(GroupDifference(attribute, "equalized_odds", "fpr" if use_fpr else "tpr", d, _NAN, lo, hi))
    for metric in ("accuracy", "mae"):
        if metric in means:
            d, _, lo, hi = _spread(means[metric], labels)
            out.append(GroupDifference(attribute, metric, metric, d, _NAN, lo, hi))
    return out


METHOD = Method(
    name="groups",
    title="Outcomes by sensitive group",
    short_title="Group metrics",
    run=run,
    summary=(
        "Per group of each sensitive attribute: share of rows, base rate, selection rate, accuracy, true and false "
        "positive rates, precision (or mean prediction and MAE for regressors), with the demographic parity, "
        "equalised odds and accuracy gaps between groups."
    ),
    description=(
        "Rows are split by the values of each sensitive attribute and the model's outcomes and errors are "
        "measured in each group. The gaps the executive summary names compare only groups with at least "
        f"{HEADLINE_MIN_GROUP_SIZE} rows, because a rate measured on fewer rows is dominated by chance; smaller "
        "groups are named there as not compared, with their size."
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
        class_param(
            help="The class counted as positive (classifiers; null for a regressor).",
            none="the second class of a binary model, else the first",
        ),
        Param(
            "threshold",
            "float",
            0.5,
            label="Decision threshold",
            minimum=0.0,
            maximum=1.0,
            basic=True,
            help="A binary model predicts positive when P(class) exceeds it (multiclass models ignore it).",
        ),
        Param(
            "min_group_size",
            "int",
            20,
            label="Smallest group reported",
            minimum=0,
            unit="rows",
            help="Groups with fewer evaluated rows are named in a warning (and kept).",
        ),
    ),
    result=GroupMetricsResult,
    needs=frozenset({"sensitive"}),
    view="groups",
    random=False,
)
