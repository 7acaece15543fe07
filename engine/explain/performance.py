"""How well the model predicts the labelled rows: metrics, confusion, calibration, ROC.

Every figure is computed with :mod:`sklearn.metrics` on the rows whose target
is present, so the numbers agree with what a data scientist gets in a notebook.
A metric that the data cannot define (for example ROC AUC when only one class
is present) is reported as NaN together with a warning sentence, never as a
crash: an audit of a skewed sample should still produce a report.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.errors import AnalysisError
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Model, Task
from engine.params import Param
from engine.results import Result, frozen_array, utc_now

__all__ = [
    "CalibrationBins",
    "RocCurve",
    "PerformanceResult",
    "run",
    "METHOD",
    "class_indices",
    "normalise_probabilities",
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
]

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "pr_auc", "log_loss", "brier")
REGRESSION_METRICS = ("r2", "mae", "rmse")

# Probabilities from ONNX graphs or float32 models can miss 1 by rounding; beyond
# this the model's output is not a distribution and the reader must be told.
_SUM_TOLERANCE = 1e-6


def _frozen(a: Any, dtype: Any = None) -> np.ndarray:
    return frozen_array(a, dtype)


@dataclass(frozen=True)
class CalibrationBins:
    """A reliability diagram in ``B`` equal-width bins of ``[0, 1]``.

    Bins are closed on the right, ``(edges[b], edges[b + 1]]``, and the first
    bin also holds 0, which is :func:`sklearn.calibration.calibration_curve`'s
    convention (so its non-empty bins match these).

    Attributes
    ----------
    predicted: what is binned: ``"P(<positive class>)"`` for binary models,
        ``"top-label confidence"`` for multiclass ones.
    edges: ``(B + 1,)`` bin edges, from 0 to 1.
    mean_predicted: ``(B,)`` mean predicted probability per bin (NaN where empty).
    observed: ``(B,)`` observed frequency per bin: the share of rows of the
        positive class (binary) or of correct top-label predictions
        (multiclass); NaN where empty.
    count: ``(B,)`` rows per bin (integers).
    """

    predicted: str = ""
    edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean_predicted: np.ndarray = field(default_factory=lambda: np.zeros(0))
    observed: np.ndarray = field(default_factory=lambda: np.zeros(0))
    count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        for name in ("edges", "mean_predicted", "observed"):
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64))
        object.__setattr__(self, "count", _frozen(self.count, np.int64))


@dataclass(frozen=True)
class RocCurve:
    """One ROC curve, ``label`` against the rest.

    Attributes
    ----------
    label: the class treated as positive.
    fpr, tpr: ``(m,)`` false and true positive rates, from (0, 0) to (1, 1).
    thresholds: ``(m,)`` decision thresholds on P(label), decreasing; the first
        is ``+inf`` (nothing predicted positive), as in :func:`sklearn.metrics.roc_curve`.
    auc: area under this curve.
    """

    label: Any = None
    fpr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tpr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    auc: float = float("nan")

    def __post_init__(self) -> None:
        thresholds = np.array(self.thresholds, dtype=np.float64)
        # JSON has no infinity, so the first threshold comes back from a round trip
        # as NaN; it can only ever have been +inf.
        if thresholds.size and np.isnan(thresholds[0]):
            thresholds[0] = np.inf
        object.__setattr__(self, "thresholds", _frozen(thresholds))
        for name in ("fpr", "tpr"):
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64))
        object.__setattr__(self, "auc", float("nan") if self.auc is None else float(self.auc))


@dataclass(frozen=True)
class PerformanceResult(Result):
    """Predictive performance of the model on the labelled rows.

    Attributes
    ----------
    task: ``"classification"`` or ``"regression"``.
    metrics: metric name -> value.  Classification: ``accuracy``,
        ``balanced_accuracy``, ``roc_auc``, ``pr_auc``, ``log_loss``, ``brier``;
        regression: ``r2``, ``mae``, ``rmse`` (in the target's units).  NaN
        where the data cannot define the metric (a warning says why).
    class_labels: the model's classes, in its probability column order (``()``
        for regression).
    confusion: ``(k, k)`` counts, rows = true class, columns = predicted class,
        both in ``class_labels`` order; ``None`` for regression.
    calibration: the reliability diagram; ``None`` for regression.
    roc: ROC curves.  Binary: one curve for the positive class (the second
        label).  Multiclass: one one-vs-rest curve per class that has both
        positive and negative rows (classes absent from the data are left out).
        Empty for regression.
    n_rows: rows evaluated (target present).
    n_dropped: rows left out because their target is missing.
    """

    kind: ClassVar[str] = "performance"
    task: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    class_labels: tuple[Any, ...] = ()
    confusion: np.ndarray | None = None
    calibration: CalibrationBins | None = None
    roc: tuple[RocCurve, ...] = ()
    n_rows: int = 0
    n_dropped: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        # A JSON round trip writes NaN as null; a metric is always a float.
        metrics = {str(k): (math.nan if v is None else float(v)) for k, v in self.metrics.items()}
        object.__setattr__(self, "metrics", metrics)


# -- helpers shared with other analyses ----------------------------------------------


def class_indices(y: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Positions of the labels ``y`` (already aligned by ``AuditInputs.labelled``) in ``classes``.

    Returns
    -------
    ``(n,)`` int64 array of column indices into the model's probability output.
    """
    idx: np.ndarray = pd.Index(list(classes), dtype=object).get_indexer(pd.Index(np.asarray(y, dtype=object)))
    if (idx < 0).any():  # labelled() guarantees this never happens; guard against misuse
        raise AnalysisError("The target holds labels that are not among the model's classes.")
    return idx.astype(np.int64)


def normalise_probabilities(proba: np.ndarray) -> tuple[np.ndarray, bool]:
    """Rows of ``proba`` ``(n, k)`` rescaled to sum to one.

    Returns the rescaled array and whether any row missed one by more than a
    rounding error (the caller then warns the reader).
    """
    sums = proba.sum(axis=1, keepdims=True)
    off = bool(np.any(np.abs(sums - 1.0) > _SUM_TOLERANCE))
    safe = np.where(sums > 0, sums, 1.0)
    return proba / safe, off


def _quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # sklearn warns about the same undefined cases this module reports as sentences.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _source(inputs: AuditInputs) -> str:
    return inputs.dataset.name if inputs.dataset is not None else "the data"


def _target(inputs: AuditInputs) -> str:
    return repr(inputs.roles.target)


def check_classes(model: Model) -> tuple[Any, ...]:
    """The model's classes, refusing a classifier that knows fewer than two."""
    classes = tuple(model.classes or ())
    if len(classes) < 2:
        raise AnalysisError(
            f"The model {model.name} knows {len(classes)} class{'es' if len(classes) != 1 else ''}, "
            "so its performance cannot be measured."
        )
    return classes


# -- the analysis ---------------------------------------------------------------------


def _calibration(confidence: np.ndarray, hit: np.ndarray, *, n_bins: int, predicted: str) -> CalibrationBins:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins as in sklearn.calibration.calibration_curve.
    bins = np.searchsorted(edges[1:-1], confidence)
    count = np.bincount(bins, minlength=n_bins)
    sum_p = np.bincount(bins, weights=confidence, minlength=n_bins)
    sum_hit = np.bincount(bins, weights=hit.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / np.maximum(count, 1), np.nan)
        observed = np.where(count > 0, sum_hit / np.maximum(count, 1), np.nan)
    return CalibrationBins(predicted=predicted, edges=edges, mean_predicted=mean_p, observed=observed, count=count)


def _roc(label: Any, positive: np.ndarray, score: np.ndarray) -> RocCurve:
    from sklearn.metrics import auc, roc_curve

    fpr, tpr, thresholds = _quiet(roc_curve, positive, score)
    return RocCurve(label=label, fpr=fpr, tpr=tpr, thresholds=thresholds, auc=float(auc(fpr, tpr)))


def _classification(
    y_idx: np.ndarray, proba: np.ndarray, classes: tuple[Any, ...], *, n_bins: int, warn: list[str]
) -> tuple[dict[str, float], np.ndarray, CalibrationBins, tuple[RocCurve, ...]]:
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        balanced_accuracy_score,
        brier_score_loss,
        confusion_matrix,
        log_loss,
        roc_auc_score,
    )

    k = len(classes)
    labels = np.arange(k)
    pred = np.argmax(proba, axis=1)
    present = np.bincount(y_idx, minlength=k) > 0
    metrics: dict[str, float] = {
        "accuracy": float(accuracy_score(y_idx, pred)),
        "balanced_accuracy": float(_quiet(balanced_accuracy_score, y_idx, pred)),
    }
    missing_txt = ", ".join(repr(classes[i]) for i in range(k) if not present[i])
    if k == 2:
        positive = y_idx == 1
        if present.all():
            metrics["roc_auc"] = float(roc_auc_score(positive, proba[:, 1]))
        else:
            metrics["roc_auc"] = math.nan
            warn.append(
                f"ROC AUC is not defined because the evaluated rows hold only class {classes[int(present[1])]!r}."
            )
        if present[1]:
            metrics["pr_auc"] = float(average_precision_score(positive, proba[:, 1]))
        else:
            metrics["pr_auc"] = math.nan
            warn.append(
                f"PR AUC (average precision) is not defined because no evaluated row is of the positive "
                f"class {classes[1]!r}."
            )
        metrics["brier"] = float(brier_score_loss(positive, proba[:, 1]))
        calibration = _calibration(proba[:, 1], positive, n_bins=n_bins, predicted=f"P({classes[1]})")
        roc: tuple[RocCurve, ...] = (_roc(classes[1], positive, proba[:, 1]),) if present.all() else ()
    else:
        onehot = np.eye(k, dtype=np.int64)[y_idx]
        if present.all():
            metrics["roc_auc"] = float(roc_auc_score(y_idx, proba, multi_class="ovr", average="macro", labels=labels))
            metrics["pr_auc"] = float(average_precision_score(onehot, proba, average="macro"))
        else:
            metrics["roc_auc"] = math.nan
            metrics["pr_auc"] = math.nan
            warn.append(
                f"The evaluated rows hold no example of class {missing_txt}, so ROC AUC and PR AUC "
                "(one-vs-rest macro averages) are not defined and balanced accuracy averages the other classes."
            )
        # sklearn's multiclass Brier score: mean over rows of the summed squared error over classes.
        metrics["brier"] = float(brier_score_loss(y_idx, proba, labels=labels))
        confidence = proba.max(axis=1)
        calibration = _calibration(confidence, pred == y_idx, n_bins=n_bins, predicted="top-label confidence")
        n_classes_present = int(present.sum())
        roc = tuple(_roc(classes[i], y_idx == i, proba[:, i]) for i in range(k) if present[i] and n_classes_present > 1)
    metrics["log_loss"] = float(_quiet(log_loss, y_idx, proba, labels=labels))
    confusion = confusion_matrix(y_idx, pred, labels=labels)
    ordered = {name: metrics[name] for name in CLASSIFICATION_METRICS}
    return ordered, confusion, calibration, roc


def _regression(y: np.ndarray, pred: np.ndarray, warn: list[str]) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    metrics: dict[str, float] = {}
    if len(y) < 2:
        metrics["r2"] = math.nan
        warn.append("R² is not defined with fewer than two evaluated rows.")
    elif np.ptp(y) == 0:
        metrics["r2"] = math.nan
        warn.append("R² is not defined because the target is constant on the evaluated rows.")
    else:
        metrics["r2"] = float(r2_score(y, pred))
    metrics["mae"] = float(mean_absolute_error(y, pred))
    metrics["rmse"] = float(root_mean_squared_error(y, pred))
    return metrics


def run(inputs: AuditInputs, *, ctx: JobContext, n_bins: int = 10) -> PerformanceResult:
    """Measure the model's predictive performance on the rows whose target is present.

    Parameters
    ----------
    inputs:
        Data, roles (a target is required) and model.
    ctx:
        Job context; progress is reported at start, after predicting and at the end.
    n_bins:
        Number of equal-width calibration bins on ``[0, 1]`` (classification).

    Returns
    -------
    PerformanceResult
        Metrics agree with :mod:`sklearn.metrics`.  ``brier`` is
        :func:`sklearn.metrics.brier_score_loss`: for binary models the mean
        squared error of P(positive class) against the 0/1 outcome (range
        [0, 1]); for multiclass models the mean over rows of the summed squared
        error over all classes' probabilities (range [0, 2]).  ``roc_auc`` and
        ``pr_auc`` (average precision) use the positive class for binary
        models and a macro average of one-vs-rest scores for multiclass ones.
        ``log_loss`` is in nats.  Probabilities are rescaled to sum to one
        per row first (a warning says so when that changes more than rounding).
    """
    started = utc_now()
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise AnalysisError(f"The number of calibration bins must be a positive whole number, not {n_bins!r}.")
    n_bins = int(n_bins)
    ctx.check_cancelled()
    ctx.progress(0.0, "Preparing labelled rows")
    model = inputs.model
    X, y = inputs.labelled()
    n_total = len(inputs.frame)
    n_rows = len(X)
    warn: list[str] = []
    n_dropped = n_total - n_rows
    if n_dropped:
        warn.append(
            f"{n_dropped} of {n_total} rows in {_source(inputs)} have no value in the target column "
            f"{_target(inputs)} and were left out."
        )
    if n_rows == 0:
        raise AnalysisError(
            f"No row in {_source(inputs)} has a value in the target column {_target(inputs)}, "
            "so performance cannot be measured."
        )

    ctx.check_cancelled()
    ctx.progress(0.1, "Predicting")
    out = model.predict(X)
    ctx.check_cancelled()
    ctx.progress(0.8, "Computing metrics")

    confusion: np.ndarray | None = None
    calibration: CalibrationBins | None = None
    roc: tuple[RocCurve, ...] = ()
    if model.task is Task.CLASSIFICATION:
        classes = check_classes(model)
        proba, off = normalise_probabilities(out)
        if off:
            warn.append(
                f"The probabilities of model {model.name} do not sum to one on every row; they were rescaled "
                "before scoring."
            )
        y_idx = class_indices(y, classes)
        metrics, confusion, calibration, roc = _classification(y_idx, proba, classes, n_bins=n_bins, warn=warn)
        labels: tuple[Any, ...] = classes
    else:
        metrics = _regression(np.asarray(y, dtype=np.float64), out, warn)
        labels = ()

    provenance = inputs.provenance(
        method=METHOD.name, parameters={"n_bins": n_bins}, ctx=ctx, started_at=started, warnings=warn
    )
    result = PerformanceResult(
        provenance=provenance,
        task=model.task.value,
        metrics=metrics,
        class_labels=labels,
        confusion=confusion,
        calibration=calibration,
        roc=roc,
        n_rows=n_rows,
        n_dropped=n_dropped,
    )
    ctx.progress(1.0, "Done")
    return result


METHOD = Method(
    name="performance",
    title="Performance",
    short_title="Predictive performance",
    run=run,
    summary=(
        "Accuracy, balanced accuracy, ROC and PR AUC, log loss, Brier score, confusion matrix, calibration "
        "and ROC curves for classifiers; R², MAE and RMSE for regressors; computed on rows with a target."
    ),
    description=(
        "Metrics are computed with scikit-learn on every row whose target is present, comparing the model's "
        "predictions with the recorded labels. Calibration groups rows by predicted probability and compares "
        "the mean prediction in each bin with the observed frequency."
    ),
    params=(
        Param(
            "n_bins",
            "int",
            10,
            label="Calibration bins",
            minimum=1,
            basic=True,
            help="Equal-width bins on [0, 1] of the calibration curve (classifiers).",
        ),
    ),
    result=PerformanceResult,
    needs=frozenset({"target"}),
    view="performance",
    random=False,
)
