"""Permutation feature importance on the raw input columns.

A feature's importance is how much the model's score drops when that column's
values are shuffled across rows, breaking its link with the target while
keeping its distribution.  Columns are permuted as the user sees them (before
any encoding inside a Pipeline), so a one-hot-encoded string column counts as
one feature.

Each feature's ``n_repeats`` shuffled copies are stacked into one frame and
scored with one model call per chunk of at most :data:`MAX_CELLS` cells, which
is what makes this fast for Pipelines whose per-call overhead dominates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.errors import AnalysisError
from engine.explain._predict import CELLS_PER_CALL, Pacer, predict_batched, rows_per_call
from engine.explain.performance import check_classes, class_indices, normalise_probabilities
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Task
from engine.params import Param
from engine.results import Result, utc_now

__all__ = ["PermutationImportanceResult", "SCORINGS", "MAX_CELLS", "run", "METHOD"]

# Upper bound on rows x input columns handed to the model in one call (the one
# bound of engine.explain._predict): large enough that per-call overhead
# vanishes, small enough to keep memory bounded.
MAX_CELLS = CELLS_PER_CALL


@dataclass(frozen=True)
class PermutationImportanceResult(Result):
    """Permutation importance of every raw input column.

    Attributes
    ----------
    feature_names: the raw input columns, length ``F``.
    importances: ``(F, R)`` baseline score minus the score with the column
        permuted, one column per repeat; positive means the feature helps.
    mean: ``(F,)`` mean importance over repeats.
    std: ``(F,)`` sample standard deviation over repeats (``ddof=1``); NaN when
        ``R == 1``.  (:func:`sklearn.inspection.permutation_importance` reports
        the population ``ddof=0`` value.)
    ci_low, ci_high: ``(F,)`` Student-t confidence interval of the mean at
        ``confidence`` (``mean ± t_{R-1} · std / sqrt(R)``); NaN when ``R == 1``.
    scoring: the score used, oriented so that higher is better.
    baseline_score: the score on the unpermuted rows.
    n_rows: rows scored (target present, after any subsampling).
    n_repeats: permutations per feature, ``R``.
    confidence: level of the interval, in (0, 1).
    """

    kind: ClassVar[str] = "permutation_importance"
    feature_names: tuple[str, ...] = ()
    importances: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ci_low: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ci_high: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scoring: str = ""
    baseline_score: float = math.nan
    n_rows: int = 0
    n_repeats: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.baseline_score is None:  # NaN written as null by a JSON round trip
            object.__setattr__(self, "baseline_score", math.nan)

    def ranking(self) -> tuple[str, ...]:
        """Feature names from most to least important (by mean)."""
        order = np.argsort(-self.mean, kind="stable")
        return tuple(self.feature_names[i] for i in order)


# -- scores ---------------------------------------------------------------------------
# Each scorer takes the targets ``y`` (class indices or float values) and a stack
# of model outputs ``(r, n, k)`` or ``(r, n)`` and returns ``(r,)`` scores, higher
# is better.

_Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _each(fn: Callable[[np.ndarray, np.ndarray], float]) -> _Scorer:
    # Metrics without a cheap closed form are computed by sklearn once per repeat
    # (never per row); the model call, not this loop, dominates the cost.
    def scorer(y: np.ndarray, outs: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.array([fn(y, out) for out in outs], dtype=np.float64)

    return scorer


def _accuracy(y: np.ndarray, outs: np.ndarray) -> np.ndarray:
    out: np.ndarray = (np.argmax(outs, axis=2) == y).mean(axis=1)
    return out


def _balanced_accuracy(y: np.ndarray, out: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(y, np.argmax(out, axis=1)))


def _roc_auc(y: np.ndarray, out: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if out.shape[1] == 2:
        return float(roc_auc_score(y == 1, out[:, 1]))
    return float(roc_auc_score(y, out, multi_class="ovr", average="macro", labels=np.arange(out.shape[1])))


def _neg_log_loss(y: np.ndarray, out: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    return -float(log_loss(y, out, labels=np.arange(out.shape[1])))


def _neg_brier(y: np.ndarray, out: np.ndarray) -> float:
    from sklearn.metrics import brier_score_loss

    if out.shape[1] == 2:
        return -float(brier_score_loss(y == 1, out[:, 1]))
    return -float(brier_score_loss(y, out, labels=np.arange(out.shape[1])))


def _r2(y: np.ndarray, outs: np.ndarray) -> np.ndarray:
    sse = ((outs - y) ** 2).sum(axis=1)
    sst = ((y - y.mean()) ** 2).sum()
    out: np.ndarray = 1.0 - sse / sst
    return out


def _neg_mae(y: np.ndarray, outs: np.ndarray) -> np.ndarray:
    out: np.ndarray = -np.abs(outs - y).mean(axis=1)
    return out


def _neg_mse(y: np.ndarray, outs: np.ndarray) -> np.ndarray:
    out: np.ndarray = -((outs - y) ** 2).mean(axis=1)
    return out


def _neg_rmse(y: np.ndarray, outs: np.ndarray) -> np.ndarray:
    out: np.ndarray = -np.sqrt(((outs - y) ** 2).mean(axis=1))
    return out


#: scoring name -> (task it applies to, scorer)
SCORINGS: dict[str, tuple[Task, _Scorer]] = {
    "accuracy": (Task.CLASSIFICATION, _accuracy),
    "balanced_accuracy": (Task.CLASSIFICATION, _each(_balanced_accuracy)),
    "roc_auc": (Task.CLASSIFICATION, _each(_roc_auc)),
    "neg_log_loss": (Task.CLASSIFICATION, _each(_neg_log_loss)),
    "neg_brier": (Task.CLASSIFICATION, _each(_neg_brier)),
    "r2": (Task.REGRESSION, _r2),
    "neg_mean_absolute_error": (Task.REGRESSION, _neg_mae),
    "neg_mean_squared_error": (Task.REGRESSION, _neg_mse),
    "neg_root_mean_squared_error": (Task.REGRESSION, _neg_rmse),
}


def _resolve_scoring(scoring: str | None, task: Task) -> tuple[str, _Scorer]:
    if scoring is None:
        scoring = "accuracy" if task is Task.CLASSIFICATION else "r2"
    valid = [name for name, (t, _) in SCORINGS.items() if t is task]
    if scoring not in SCORINGS:
        raise AnalysisError(
            f"Unknown scoring {scoring!r} for permutation importance; choose one of {', '.join(valid)}."
        )
    wanted, scorer = SCORINGS[scoring]
    if wanted is not task:
        raise AnalysisError(
            f"The scoring {scoring!r} needs a {wanted.value} model but the model is a {task.value} model; "
            f"choose one of {', '.join(valid)}."
        )
    return scoring, scorer


def _check_defined(scoring: str, y: np.ndarray, k: int, source: str) -> None:
    """Refuse a score the evaluated rows cannot define (it would be NaN for every feature)."""
    if scoring == "roc_auc" and np.unique(y).size < k:
        raise AnalysisError(
            f"ROC AUC cannot score permutation importance because the rows of {source} do not hold every "
            "class; choose another scoring."
        )
    if scoring == "r2" and (len(y) < 2 or np.ptp(y) == 0):
        raise AnalysisError(
            f"R² cannot score permutation importance because the target is constant on the rows of {source}; "
            "choose another scoring."
        )


def _t_interval(importances: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from scipy import stats

    n_features, r = importances.shape
    mean = importances.mean(axis=1)
    if r < 2:
        nan = np.full(n_features, np.nan)
        return mean, nan, nan.copy(), nan.copy()
    std = importances.std(axis=1, ddof=1)
    half = stats.t.ppf(0.5 + confidence / 2.0, df=r - 1) * std / math.sqrt(r)
    return mean, std, mean - half, mean + half


def _is_whole(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    n_repeats: int = 10,
    scoring: str | None = None,
    max_rows: int | None = None,
    confidence: float = 0.95,
) -> PermutationImportanceResult:
    """Permutation importance of each raw input column.

    Parameters
    ----------
    inputs:
        Data, roles (a target is required) and model.  Rows with a missing
        target are left out (a warning counts them).
    ctx:
        Job context.  Feature ``j``'s permutations come from
        ``ctx.rng("permutation", j)`` and a subsample from ``ctx.rng("rows")``,
        so each feature's numbers do not depend on which other features ran.
    n_repeats:
        Permutations per feature, ``R >= 1``.
    scoring:
        ``None`` for the model's default score, as :meth:`estimator.score` in
        scikit-learn: ``"accuracy"`` for classifiers, ``"r2"`` for regressors.
        Classification: ``"accuracy"``, ``"balanced_accuracy"``, ``"roc_auc"``
        (binary: positive class; multiclass: one-vs-rest macro),
        ``"neg_log_loss"``, ``"neg_brier"``.  Regression: ``"r2"``,
        ``"neg_mean_absolute_error"``, ``"neg_mean_squared_error"``,
        ``"neg_root_mean_squared_error"``.  All are oriented so higher is better.
        For a linear model ``f = b + Σ β_j x_j`` fitted by least squares on
        the evaluated rows, the expected importance under
        ``"neg_mean_squared_error"`` is exactly ``2 β_j² Var(x_j)`` (population
        variance over the rows), and ``"r2"`` gives that divided by Var(y).
    max_rows:
        Score on a random subset of this many labelled rows (``None``: all).
    confidence:
        Level of the t-interval on each mean, in (0, 1).

    Returns
    -------
    PermutationImportanceResult
        ``importances`` is ``(F, R)``; ``std`` uses ``ddof=1``.
    """
    started = utc_now()
    if not _is_whole(n_repeats) or n_repeats < 1:
        raise AnalysisError(f"The number of repeats must be a positive whole number, not {n_repeats!r}.")
    if max_rows is not None and (not _is_whole(max_rows) or max_rows < 1):
        raise AnalysisError(f"The row limit must be a positive whole number or none, not {max_rows!r}.")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise AnalysisError(f"The confidence level must lie strictly between 0 and 1, not {confidence!r}.")
    n_repeats = int(n_repeats)
    model = inputs.model
    name, scorer = _resolve_scoring(scoring, model.task)
    source = inputs.dataset.name if inputs.dataset is not None else "the data"
    ctx.check_cancelled()
    ctx.progress(0.0, "Scoring the unpermuted rows")

    X, y = inputs.labelled()
    warn: list[str] = []
    n_total = len(inputs.frame)
    if len(X) < n_total:
        warn.append(
            f"{n_total - len(X)} of {n_total} rows in {source} have no value in the target column "
            f"{inputs.roles.target!r} and were left out."
        )
    if len(X) < 2:
        raise AnalysisError(
            f"Permutation importance needs at least two rows with a target value in {source}, found {len(X)}."
        )
    if max_rows is not None and max_rows < len(X):
        keep = np.sort(ctx.rng("rows").choice(len(X), size=int(max_rows), replace=False))
        warn.append(f"Importances were computed on a random sample of {max_rows} of the {len(X)} labelled rows.")
        X = X.iloc[keep]
        y = y[keep]
    X = X.reset_index(drop=True)
    n = len(X)

    if model.task is Task.CLASSIFICATION:
        classes = check_classes(model)
        target = class_indices(y, classes)
        k = len(classes)
    else:
        target = np.asarray(y, dtype=np.float64)
        k = 1
    _check_defined(name, target, k, source)

    rescaled = False

    def predict(frame: pd.DataFrame) -> np.ndarray:
        nonlocal rescaled
        out = model.predict(frame)
        if model.task is Task.CLASSIFICATION:
            out, off = normalise_probabilities(out)
            if off and not rescaled:
                rescaled = True
                warn.append(
                    f"The probabilities of model {model.name} do not sum to one on every row; they were "
                    "rescaled before scoring."
                )
        return out

    per_call = rows_per_call(X.shape[1], MAX_CELLS)
    # Fixed calls of `per_call` rows, cancel checked before each (engine.explain._predict).
    baseline_out = predict_batched(lambda a, b: predict(X.iloc[a:b]), n, pacer=Pacer.fixed(per_call), ctx=ctx)
    baseline = float(scorer(target, baseline_out[None])[0])
    if n_repeats == 1:
        warn.append("With a single repeat there is no spread, so standard deviations and intervals are empty.")

    features = inputs.feature_names
    n_features = len(features)
    reps_per_group = max(1, min(n_repeats, per_call // n))
    # One tiled copy of the rows, reused for every feature: only the permuted column changes.
    base = X if reps_per_group == 1 else X.iloc[np.tile(np.arange(n), reps_per_group)].reset_index(drop=True)

    importances = np.empty((n_features, n_repeats), dtype=np.float64)
    for j, column in enumerate(features):
        ctx.check_cancelled()
        ctx.progress(j / n_features, f"Permuting {column} ({j + 1} of {n_features})")
        perms = ctx.rng("permutation", j).permuted(np.tile(np.arange(n), (n_repeats, 1)), axis=1)
        # Taking from the column's own array keeps its dtype (strings, categories, nullable ints).
        values = X[column].array
        scores = np.empty(n_repeats, dtype=np.float64)
        for g0 in range(0, n_repeats, reps_per_group):
            g = min(reps_per_group, n_repeats - g0)
            order = perms[g0 : g0 + g].ravel()

            def permuted(
                a: int, b: int, order: np.ndarray = order, column: str = column, values: Any = values
            ) -> np.ndarray:
                frame = base.iloc[a:b]
                frame[column] = values.take(order[a:b])
                return predict(frame)

            out = predict_batched(permuted, g * n, pacer=Pacer.fixed(per_call), ctx=ctx)
            scores[g0 : g0 + g] = scorer(target, out.reshape((g, n) + out.shape[1:]))
            ctx.progress((j + (g0 + g) / n_repeats) / n_features, f"Permuting {column} ({j + 1} of {n_features})")
        importances[j] = baseline - scores

    mean, std, ci_low, ci_high = _t_interval(importances, float(confidence))
    parameters = {"n_repeats": n_repeats, "scoring": name, "max_rows": max_rows, "confidence": float(confidence)}
    result = PermutationImportanceResult(
        provenance=inputs.provenance(
            method=METHOD.name, parameters=parameters, ctx=ctx, started_at=started, warnings=warn
        ),
        feature_names=tuple(features),
        importances=importances,
        mean=mean,
        std=std,
        ci_low=ci_low,
        ci_high=ci_high,
        scoring=name,
        baseline_score=baseline,
        n_rows=n,
        n_repeats=n_repeats,
        confidence=float(confidence),
    )
    ctx.progress(1.0, "Done")
    return result


METHOD = Method(
    name="permutation",
    title="Permutation importance",
    run=run,
    summary=(
        "How much the model's score drops when each raw input column is shuffled, with the spread over "
        "repeats and a confidence interval on the mean."
    ),
    description=(
        "Each feature column is shuffled across rows, which breaks its link with the target but keeps its "
        "distribution, and the resulting drop in the score is recorded. Repeating the shuffle gives a mean "
        "drop and a Student-t confidence interval for it."
    ),
    params=(
        Param(
            "n_repeats",
            "int",
            10,
            label="Shuffles per column",
            minimum=1,
            basic=True,
            unit="shuffles",
            help="How many times each column is shuffled; the spread over them gives the interval.",
        ),
        Param(
            "scoring",
            "choice",
            None,
            label="Score",
            basic=True,
            task_choices={task.value: tuple(n for n, (t, _) in SCORINGS.items() if t is task) for task in Task},
            none="accuracy for a classifier, r2 for a regressor",
            help="The score whose drop is measured (higher is better for every one).",
        ),
        Param(
            "max_rows",
            "int",
            None,
            label="Rows used",
            minimum=1,
            none="every labelled row",
            unit="rows",
            help="Score on a random sample of this many labelled rows.",
        ),
        Param(
            "confidence",
            "float",
            0.95,
            label="Confidence level",
            minimum=0.0,
            maximum=1.0,
            exclusive=True,
            help="Level of the Student-t interval on each mean drop.",
        ),
    ),
    result=PermutationImportanceResult,
    needs=frozenset({"target"}),
    view="permutation",
    samples="n_repeats",
)
