"""A small weighted background sample that stands in for a whole table.

Perturbation explainers (KernelSHAP, interventional SHAP, ...) replace "absent"
features by values from a background distribution and average the model over
it, so their cost grows linearly with the background's size.  Above ``size``
rows the table is summarised by k-means into ``size`` representative rows whose
weights are their cluster sizes, so weighted averages over the summary
approximate averages over the table.

The representative rows are made only of values that occur in the table:

- numeric columns: the observed value nearest to the cluster's (weighted) mean,
  or a missing value when most of the cluster's members miss that column, so
  integer codes, flags and gaps stay valid inputs for the model;
- every other column (strings, categories, booleans, dates): the cluster's most
  frequent value (missing counts as a value), ties going to the value seen first.

Each column keeps its dtype, so the summary feeds the model exactly as the
table does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import AnalysisError

__all__ = ["Background", "summarise_background", "is_numeric_column", "single_thread_if_small"]

# k-means is fitted on at most this many rows (a uniform sample); every row is
# then assigned to its nearest centre, so weights and modes use the whole table.
MAX_FIT_ROWS = 20_000
_KMEANS_MAX_ITER = 100
_KMEANS_TOL = 1e-4
# Below this many (rows x clusters x dimensions), k-means runs on one thread.
_SMALL_WORK = 20_000_000
# Levels kept per string column when a table has no numeric column to cluster on.
_MAX_ONE_HOT_LEVELS = 20


@dataclass(frozen=True, eq=False)
class Background:
    """Background rows with weights.

    Attributes
    ----------
    frame: ``(K, F)`` rows, the same columns and dtypes as the source table,
        index ``0..K-1``.
    weights: ``(K,)`` positive weights; cluster sizes (row counts, or summed
        sample weights) when summarised, the source weights otherwise.
    n_source: rows of the table the background stands for.
    summarised: whether k-means summarised the table.
    """

    frame: pd.DataFrame
    weights: np.ndarray
    n_source: int
    summarised: bool

    def __post_init__(self) -> None:
        w = np.array(self.weights, dtype=np.float64, copy=True)
        w.flags.writeable = False
        object.__setattr__(self, "weights", w)

    @property
    def size(self) -> int:
        return len(self.frame)

    @property
    def probabilities(self) -> np.ndarray:
        """``(K,)`` weights normalised to sum to 1."""
        probabilities: np.ndarray = self.weights / self.weights.sum()
        return probabilities

    def expectation(self, values: np.ndarray) -> np.ndarray:
        """Weighted mean of ``values`` ``(K, ...)`` over the background rows."""
        return np.tensordot(self.probabilities, np.asarray(values, dtype=np.float64), axes=(0, 0))


def is_numeric_column(column: pd.Series) -> bool:
    """Whether a column is averaged (numbers) rather than voted on (everything else)."""
    return bool(pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype))


def summarise_background(
    X: pd.DataFrame,
    *,
    size: int,
    rng: np.random.Generator,
    sample_weight: np.ndarray | None = None,
    source: str = "the data",
    check_cancelled: Callable[[], None] | None = None,
) -> Background:
    """Summarise ``X`` into at most ``size`` weighted rows by k-means.

    Parameters
    ----------
    X: ``(N, F)`` table of raw input columns (any dtypes).
    size: the largest background wanted, ``K``; tables of at most ``size``
        rows are returned as they are.
    rng: seeds the k-means initialisation and the fitting sample.
    sample_weight: ``(N,)`` non-negative row weights (default all 1).
    source: how messages name the table (e.g. its file name).
    check_cancelled: called between k-means steps; raises to stop (e.g.
        :meth:`engine.jobs.JobContext.check_cancelled`).

    Returns
    -------
    Background
        ``K' <= size`` rows (empty clusters are dropped) whose weights sum to
        the total weight of ``X``.

    Notes
    -----
    Numeric columns are standardised (mean 0, unit standard deviation; missing
    values at 0, the mean) before clustering so that no column dominates the
    distances through its unit.  A table without numeric columns is clustered
    on the one-hot codes of its most frequent values.
    """
    if size < 1:
        raise AnalysisError(f"The background size must be at least 1 row, got {size}.")
    n = len(X)
    if n == 0:
        raise AnalysisError(f"{_capital(source)} has no rows to use as a background.")
    weights = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (n,) or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise AnalysisError(f"The background weights for {source} must be {n} non-negative numbers, not all zero.")
    keep = weights > 0
    if not keep.all():
        # Rows of weight 0 stand for nothing; dropping them keeps every cluster's weight positive.
        X, weights = X.loc[keep], weights[keep]
    if len(X) <= size:
        return Background(frame=X.reset_index(drop=True), weights=weights, n_source=n, summarised=False)

    Z = _clustering_matrix(X)
    labels = _kmeans_labels(Z, weights, size, rng, check_cancelled or _never)
    sizes = np.bincount(labels, weights=weights, minlength=size)
    clusters = np.flatnonzero(sizes > 0)
    # Renumber the non-empty clusters 0..K'-1 so per-cluster arrays are dense.
    renumber = np.full(size, -1, dtype=np.int64)
    renumber[clusters] = np.arange(len(clusters))
    labels = renumber[labels]
    k = len(clusters)

    columns: dict[str, object] = {}
    for name in X.columns:
        column = X[name]
        if is_numeric_column(column):
            pick = _numeric_representatives(column.to_numpy(dtype=np.float64, na_value=np.nan), labels, weights, k)
        else:
            pick = _modal_representatives(column, labels, weights, k)
        columns[name] = column.array.take(pick)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(k))
    return Background(frame=frame, weights=sizes[clusters], n_source=n, summarised=True)


def _never() -> None:
    return None


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _clustering_matrix(X: pd.DataFrame) -> np.ndarray:
    """``(N, D)`` float coordinates the clusters are formed in."""
    numeric = [c for c in X.columns if is_numeric_column(X[c])]
    if numeric:
        Z: np.ndarray = X[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        with warnings.catch_warnings():
            # All-missing columns give NaN means; they become 0 below.
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(Z, axis=0)
            std = np.nanstd(Z, axis=0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        Z = (Z - np.nan_to_num(mean)) / std
        finite: np.ndarray = np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0)
        return finite
    blocks = []
    for name in X.columns:
        codes, uniques = pd.factorize(X[name], use_na_sentinel=False)
        counts = np.bincount(codes, minlength=len(uniques))
        top = np.argsort(-counts, kind="stable")[:_MAX_ONE_HOT_LEVELS]
        blocks.append((codes[:, None] == top[None, :]).astype(np.float64))
    return np.hstack(blocks)


def _kmeans_labels(
    Z: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator, check: Callable[[], None]
) -> np.ndarray:
    """Cluster labels ``(N,)`` in ``0..k-1`` from weighted k-means (k-means++ start, Lloyd steps).

    Written here rather than taken from scikit-learn so that it draws from the
    caller's generator and can be cancelled between steps.  Centres are fitted
    on at most :data:`MAX_FIT_ROWS` rows (a uniform sample); every row is then
    assigned to its nearest centre.  Clusters that end up empty (fewer distinct
    rows than ``k``) keep a duplicate centre and no rows.
    """
    n, d = Z.shape
    fit = np.arange(n)
    if n > MAX_FIT_ROWS:
        fit = np.sort(rng.choice(n, size=MAX_FIT_ROWS, replace=False))
    Zf, wf = Z[fit], weights[fit]
    # The shift below which Lloyd steps stop, relative to the data's spread (as scikit-learn does).
    tol = _KMEANS_TOL * float(np.mean(np.var(Zf, axis=0))) if len(Zf) > 1 else 0.0
    with single_thread_if_small(len(Zf) * k * d):
        centres = _kmeans_plus_plus(Zf, wf, k, rng, check)
        for _ in range(_KMEANS_MAX_ITER):
            check()
            labels = _nearest(Zf, centres, check)
            moved = _weighted_means(Zf, wf, labels, centres)
            shift = float(((moved - centres) ** 2).sum())
            centres = moved
            if shift <= tol:
                break
        return _nearest(Z, centres, check)


def _kmeans_plus_plus(
    Z: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator, check: Callable[[], None]
) -> np.ndarray:
    """``(k, D)`` starting centres: each drawn with probability ``w * (distance to the nearest centre)^2``."""
    centres = np.empty((k, Z.shape[1]))
    first = int(rng.choice(len(Z), p=w / w.sum()))
    centres[0] = Z[first]
    closest = ((Z - Z[first]) ** 2).sum(axis=1)
    for j in range(1, k):
        if j % 16 == 0:
            check()
        p = w * closest
        total = p.sum()
        if total <= 0:
            # Every row already sits on a centre: the remaining centres would be duplicates.
            centres[j:] = centres[0]
            break
        pick = int(rng.choice(len(Z), p=p / total))
        centres[j] = Z[pick]
        np.minimum(closest, ((Z - Z[pick]) ** 2).sum(axis=1), out=closest)
    return centres


def _nearest(Z: np.ndarray, centres: np.ndarray, check: Callable[[], None]) -> np.ndarray:
    """``(N,)`` index of each row's nearest centre (ties to the lower index), in row blocks."""
    labels = np.empty(len(Z), dtype=np.int64)
    half_norms = 0.5 * (centres**2).sum(axis=1)
    step = max(1, 4_000_000 // max(len(centres), 1))
    for start in range(0, len(Z), step):
        check()
        block = Z[start : start + step]
        # argmin |z - c|^2 = argmin (|c|^2 / 2 - z.c): one matrix product per block.
        labels[start : start + step] = np.argmin(half_norms[None, :] - block @ centres.T, axis=1)
    return labels


def _weighted_means(Z: np.ndarray, w: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(k, D)`` weighted mean of each cluster's rows; an empty cluster keeps its centre."""
    from scipy import sparse

    k = len(centres)
    membership = sparse.csr_matrix((w, (labels, np.arange(len(Z)))), shape=(k, len(Z)))
    sums = np.asarray(membership @ Z)
    sizes = np.bincount(labels, weights=w, minlength=k)
    out = centres.copy()
    full = sizes > 0
    out[full] = sums[full] / sizes[full, None]
    return out


def single_thread_if_small(work: int, *, threshold: int = _SMALL_WORK) -> AbstractContextManager[object]:
    """Limit BLAS and OpenMP to one thread for computations under ``threshold`` operations.

    Such computations take milliseconds; with threads they spend more on
    start-up and barriers than they save, many times more on a busy machine.
    """
    if work >= threshold:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    limits: AbstractContextManager[object] = threadpool_limits(limits=1)  # threadpoolctl ships no type information
    return limits


def _numeric_representatives(values: np.ndarray, labels: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Row positions ``(k,)`` holding each cluster's representative value of one numeric column."""
    missing = np.isnan(values)
    w_present = np.where(missing, 0.0, weights)
    total = np.bincount(labels, weights=weights, minlength=k)
    present = np.bincount(labels, weights=w_present, minlength=k)
    sums = np.bincount(labels, weights=np.where(missing, 0.0, values) * weights, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / present
    observed = np.flatnonzero(~missing)
    pick = np.zeros(k, dtype=np.int64)
    if observed.size:
        order = observed[np.argsort(values[observed], kind="stable")]
        sorted_values = values[order]
        target = np.nan_to_num(means)  # clusters with no value present are handled below
        right = np.clip(np.searchsorted(sorted_values, target), 0, len(order) - 1)
        left = np.maximum(right - 1, 0)
        nearer_left = np.abs(target - sorted_values[left]) <= np.abs(sorted_values[right] - target)
        pick = order[np.where(nearer_left, left, right)]
    if missing.any():
        # A cluster where at least half the weight misses this column is represented by a missing value.
        mostly_missing = (present <= 0.5 * total) | ~np.isfinite(means)
        pick = np.where(mostly_missing, np.flatnonzero(missing)[0], pick)
    return pick


def _modal_representatives(column: pd.Series, labels: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Row positions ``(k,)`` holding each cluster's most frequent value of one column."""
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    n_levels = max(len(uniques), 1)
    # Sparse (cluster, level) counts: a dense k x levels table could be huge for text columns.
    key = labels * n_levels + codes
    pairs, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse, weights=weights)
    cluster_of = pairs // n_levels
    level_of = pairs % n_levels
    # Highest count first within each cluster; equal counts go to the level seen first.
    order = np.lexsort((level_of, -counts, cluster_of))
    first = np.ones(len(order), dtype=bool)
    first[1:] = cluster_of[order][1:] != cluster_of[order][:-1]
    best = order[first]
    mode_level = np.empty(k, dtype=np.int64)
    mode_level[cluster_of[best]] = level_of[best]
    _, first_row = np.unique(codes, return_index=True)
    return first_row[mode_level]
