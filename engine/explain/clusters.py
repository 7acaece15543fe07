"""Explanation clusters: rows grouped by *why* the model scored them, with K-LIME.

Rows whose attribution vectors (SHAP or LIME values, one per raw feature) are
alike are explained alike.  This analysis clusters those vectors with k-means,
picks the number of clusters by the mean silhouette, draws them in 2-D, and
describes each cluster in the data's own terms.

* **Clustering**: k-means written here in numpy (greedy k-means++ starts,
  ``n_init`` runs, Lloyd iterations, the run with the least inertia kept),
  run ``r`` drawing from ``ctx.rng("kmeans", k, r)``, on the raw
  attribution vectors (they share the output's units, so no scaling is needed)
  or, with ``standardize=True``, on vectors with each feature scaled to unit
  variance.  Clusters are numbered by decreasing size (ties: the cluster of the
  earliest row first), so labels do not depend on k-means' internal numbering.
* **Choice of k**: the largest mean silhouette over ``k_range`` (both ends
  included).  Above ``silhouette_rows`` rows the silhouette is computed on a
  seeded sample of that many rows, as its cost grows with the square of the rows.
* **Projection**: the first two principal components (SVD of the centred
  vectors, signs fixed so each component's largest loading is positive), or a
  seeded t-SNE.
* **Profiles**: per cluster its size, mean explained output, mean attribution
  and how its rows differ from the rest: for numeric raw features the
  standardised mean difference ``(mean_in - mean_out) / sqrt((var_in + var_out) / 2)``
  (population variances, missing values skipped); for categorical ones the
  category whose share in the cluster most exceeds its share in the rest.
* **K-LIME**: a ridge regression per cluster (and one over all rows) from the
  raw features (numeric standardised, categories one-hot, as in
  :func:`engine.explain.surrogate.encode_raw`) to the explained model output of
  the rows, with an unpenalised intercept and penalty ``alpha * n_c`` on the
  standardised coefficients; its in-sample R² says how linear the model is
  inside the cluster.  All clusters are solved in one batched linear solve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.attribution import AttributionResult
from engine.errors import AnalysisError
from engine.explain.pdp import column_kinds, explained_output, is_categorical_column, source_name
from engine.explain.surrogate import encode_raw, format_number
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.params import Param
from engine.results import Result, frozen_array, plain_scalar, utc_now

__all__ = ["ClusterProfile", "KLimeFit", "ExplanationClustersResult", "PROJECTIONS", "run", "METHOD"]

PROJECTIONS = ("pca", "tsne")

# A highlight names a numeric feature from this |standardised mean difference| up ...
_SMD_HIGHLIGHT = 0.5
# ... and a category whose share in the cluster exceeds that in the rest by this much.
_SHARE_HIGHLIGHT = 0.15
_MAX_HIGHLIGHTS = 3
_TSNE_SINGLE_THREAD_ROWS = 2_000
_KMEANS_TOL = 1e-4
_KMEANS_MAX_ITER = 300


def _frozen(a: Any, dtype: Any = np.float64) -> np.ndarray:
    return frozen_array(a, dtype)


@dataclass(frozen=True)
class ClusterProfile:
    """What the rows of one cluster share.

    Attributes
    ----------
    cluster: the cluster's label (0 is the largest).
    size: rows in the cluster; ``share`` is ``size / n``.
    mean_prediction: mean explained output of its rows.
    mean_attribution: ``(F,)`` mean attribution per feature.
    numeric_features: the ``Fn`` numeric raw features.
    smd: ``(Fn,)`` standardised mean difference, cluster vs the other rows
        (NaN where undefined, e.g. a feature constant everywhere).
    cluster_mean, rest_mean: ``(Fn,)`` means of each numeric feature in and out
        of the cluster (missing values skipped).
    categorical_features: the ``Fc`` categorical raw features.
    top_category: the most over-represented category of each (``None`` when
        the cluster has none of the feature's values).
    category_share, rest_share: ``(Fc,)`` that category's share of the
        cluster's rows and of the other rows.
    highlights: up to three sentences naming the strongest differences.
    """

    cluster: int = 0
    size: int = 0
    share: float = math.nan
    mean_prediction: float = math.nan
    mean_attribution: np.ndarray = field(default_factory=lambda: np.zeros(0))
    numeric_features: tuple[str, ...] = ()
    smd: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cluster_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rest_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    categorical_features: tuple[str, ...] = ()
    top_category: tuple[Any, ...] = ()
    category_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rest_share: np.ndarray = field(default_factory=lambda: np.zeros(0))
    highlights: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("mean_attribution", "smd", "cluster_mean", "rest_mean", "category_share", "rest_share"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        for name in ("numeric_features", "categorical_features", "highlights"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "top_category", tuple(plain_scalar(v) for v in self.top_category))
        for name in ("share", "mean_prediction"):
            value = getattr(self, name)
            object.__setattr__(self, name, math.nan if value is None else float(value))


@dataclass(frozen=True)
class KLimeFit:
    """K-LIME: one ridge surrogate per cluster and one over all rows.

    Attributes
    ----------
    design_names: the ``P`` readable design columns (``"income"``,
        ``"employment = retired"``, ``"income is missing"``).
    design_raw: the raw column of each.
    coefficients: ``(k, P)`` change in the output per raw unit of each design
        column (per 1 of an indicator), one row per cluster; 0 for a column
        constant over all rows.
    standardised: ``(k, P)`` the same per standard deviation (over all rows).
    intercepts: ``(k,)`` output when every design column is 0.
    r2: ``(k,)`` in-sample R² of each cluster's surrogate (NaN when the
        cluster has fewer than two rows or a constant output).
    global_coefficients, global_standardised: ``(P,)`` the all-rows surrogate.
    global_intercept, global_r2: likewise.
    alpha: the ridge penalty per row on standardised coefficients.
    """

    design_names: tuple[str, ...] = ()
    design_raw: tuple[str, ...] = ()
    coefficients: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    standardised: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    intercepts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    r2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    global_coefficients: np.ndarray = field(default_factory=lambda: np.zeros(0))
    global_standardised: np.ndarray = field(default_factory=lambda: np.zeros(0))
    global_intercept: float = math.nan
    global_r2: float = math.nan
    alpha: float = math.nan

    def __post_init__(self) -> None:
        for name in ("coefficients", "standardised", "intercepts", "r2", "global_coefficients", "global_standardised"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        for name in ("global_intercept", "global_r2", "alpha"):
            value = getattr(self, name)
            object.__setattr__(self, name, math.nan if value is None else float(value))
        object.__setattr__(self, "design_names", tuple(self.design_names))
        object.__setattr__(self, "design_raw", tuple(self.design_raw))


@dataclass(frozen=True)
class ExplanationClustersResult(Result):
    """Rows clustered by their attributions, projected, profiled, with K-LIME.

    Attributes
    ----------
    attribution_method: the method that made the attributions (``"treeshap"``, ``"lime"``, ...).
    output_name, output_space: what the attributions (and K-LIME) explain.
    feature_names: the ``F`` raw features of the attribution vectors.
    rows: ``(n,)`` 0-based positions in the dataset's frame.
    labels: ``(n,)`` cluster of each row, ``0 .. k-1`` by decreasing size.
    k: the number of clusters chosen (or given).
    k_tried: ``(m,)`` the numbers of clusters tried.
    silhouettes: ``(m,)`` mean silhouette of each (NaN where undefined).
    silhouette_rows: rows the silhouettes were computed on.
    standardized: whether features were scaled to unit variance before clustering.
    centroids: ``(k, F)`` cluster centres in the clustering space
        (attribution units unless ``standardized``).
    projection: ``(n, 2)`` the rows' 2-D coordinates.
    projection_method: ``"pca"`` or ``"tsne"``.
    explained_variance: ``(2,)`` share of the attributions' variance on each
        principal component (PCA only, else ``None``).
    profiles: one :class:`ClusterProfile` per cluster, in label order.
    klime: the K-LIME surrogates.
    """

    kind: ClassVar[str] = "explanation_clusters"
    attribution_method: str = ""
    output_name: str = ""
    output_space: str = ""
    feature_names: tuple[str, ...] = ()
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    k: int = 0
    k_tried: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    silhouettes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    silhouette_rows: int = 0
    standardized: bool = False
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    projection: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    projection_method: str = "pca"
    explained_variance: np.ndarray | None = None
    profiles: tuple[ClusterProfile, ...] = ()
    klime: KLimeFit = field(default_factory=KLimeFit)


# -- clustering ------------------------------------------------------------------------------------------


def _canonical(labels: np.ndarray, k: int) -> np.ndarray:
    """``(k,)`` new label of each old one: by decreasing size, ties by earliest row."""
    sizes = np.bincount(labels, minlength=k)
    first = np.full(k, labels.size)
    np.minimum.at(first, labels, np.arange(labels.size))
    order = np.lexsort((first, -sizes))
    new = np.empty(k, dtype=np.int64)
    new[order] = np.arange(k)
    return new


def _sq_distances(Z: np.ndarray, centres: np.ndarray, z_sq: np.ndarray) -> np.ndarray:
    """``(n, k)`` squared euclidean distances (expanded form, clipped at 0 against round-off)."""
    d2 = z_sq[:, None] - 2.0 * (Z @ centres.T) + (centres * centres).sum(axis=1)[None, :]
    clipped: np.ndarray = np.maximum(d2, 0.0)
    return clipped


def _kmeans_plus_plus(Z: np.ndarray, z_sq: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``(k, F)`` greedy k-means++ starting centres (``2 + ln k`` candidates per centre)."""
    n = Z.shape[0]
    n_candidates = 2 + int(math.log(k))
    centres = np.empty((k, Z.shape[1]))
    first = int(rng.integers(n))
    centres[0] = Z[first]
    closest = _sq_distances(Z, Z[first : first + 1], z_sq)[:, 0]
    for c in range(1, k):
        total = float(closest.sum())
        if total <= 0.0:
            # Every row sits on a centre already (fewer distinct rows than k): any row will do.
            pick = int(rng.integers(n))
            centres[c] = Z[pick]
            continue
        # Draw candidates with probability proportional to their squared distance, keep the one
        # that lowers the total the most (scikit-learn's greedy variant).
        cumulative = np.cumsum(closest)
        candidates = np.minimum(np.searchsorted(cumulative, rng.random(n_candidates) * total), n - 1)
        trial = np.minimum(closest[:, None], _sq_distances(Z, Z[candidates], z_sq))
        best = int(np.argmin(trial.sum(axis=0)))
        centres[c] = Z[candidates[best]]
        closest = trial[:, best]
    return centres


def _lloyd(
    Z: np.ndarray, z_sq: np.ndarray, centres: np.ndarray, *, tol: float, max_iter: int, ctx: JobContext
) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd iterations from ``centres``: labels ``(n,)``, centres ``(k, F)`` and inertia."""
    k = centres.shape[0]
    for _ in range(max_iter):
        ctx.check_cancelled()
        d2 = _sq_distances(Z, centres, z_sq)
        labels = np.argmin(d2, axis=1)
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, Z)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1.0)[:, None], centres)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            # An empty cluster restarts at the rows farthest from their centres, as scikit-learn does.
            far = np.argsort(-d2[np.arange(Z.shape[0]), labels], kind="stable")[: empty.size]
            moved[empty] = Z[far]
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        if shift <= tol:
            break
    d2 = _sq_distances(Z, centres, z_sq)
    labels = np.argmin(d2, axis=1)
    return labels.astype(np.int64), centres, float(d2[np.arange(Z.shape[0]), labels].sum())


def _kmeans(Z: np.ndarray, k: int, *, n_init: int, ctx: JobContext) -> tuple[np.ndarray, np.ndarray]:
    """Best of ``n_init`` k-means runs (k-means++ start, Lloyd): canonical labels and centres.

    Run ``r`` draws from ``ctx.rng("kmeans", k, r)``.  Written here rather than
    taken from scikit-learn so that it draws from the job's generators, can be
    cancelled between iterations and avoids thread start-up on small inputs.
    """
    z_sq = (Z * Z).sum(axis=1)
    # Lloyd stops when the centres move less than this, relative to the data's spread (scikit-learn's rule).
    tol = _KMEANS_TOL * float(np.mean(np.var(Z, axis=0)))
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for r in range(n_init):
        start = _kmeans_plus_plus(Z, z_sq, k, ctx.rng("kmeans", k, r))
        fit = _lloyd(Z, z_sq, start, tol=tol, max_iter=_KMEANS_MAX_ITER, ctx=ctx)
        if best is None or fit[2] < best[2]:
            best = fit
    assert best is not None
    labels, centres, _ = best
    new = _canonical(labels, k)
    ordered = np.empty_like(centres)
    ordered[new] = centres
    return new[labels], ordered


def _silhouette(Z: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean silhouette of ``labels`` on ``Z`` (euclidean), as :func:`sklearn.metrics.silhouette_score`.

    A row alone in its cluster scores 0; fewer than two non-empty clusters, or
    as many clusters as rows, leave it undefined (NaN).
    """
    n = labels.size
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    present = counts > 0
    if present.sum() < 2 or present.sum() >= n:
        return math.nan
    z_sq = (Z * Z).sum(axis=1)
    distances = np.sqrt(_sq_distances(Z, Z, z_sq))
    np.fill_diagonal(distances, 0.0)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    sums = distances @ onehot  # (n, k) summed distance from each row to each cluster
    own = counts[labels]
    a = sums[np.arange(n), labels] / np.maximum(own - 1.0, 1.0)
    mean_to = np.where(present[None, :], sums / np.maximum(counts, 1.0)[None, :], np.inf)
    mean_to[np.arange(n), labels] = np.inf
    b = mean_to.min(axis=1)
    denom = np.maximum(a, b)
    s = np.where((own > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(s.mean())


# -- projection -----------------------------------------------------------------------------------------


def _pca(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 2)`` principal component scores and ``(2,)`` explained variance shares."""
    centred = Z - Z.mean(axis=0)
    U, S, Vt = np.linalg.svd(centred, full_matrices=False)
    # SVD signs are arbitrary; fixing each component's largest loading positive makes runs comparable.
    signs = np.sign(Vt[np.arange(Vt.shape[0]), np.argmax(np.abs(Vt), axis=1)])
    signs[signs == 0] = 1.0
    scores = U * S * signs
    total = float((S**2).sum())
    share = (S**2) / total if total > 0 else np.zeros_like(S)
    out = np.zeros((Z.shape[0], 2))
    ratio = np.zeros(2)
    m = min(2, scores.shape[1])
    out[:, :m] = scores[:, :m]
    ratio[:m] = share[:m]
    return out, ratio


def _tsne(Z: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = Z.shape[0]
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    # On a few thousand rows OpenMP's thread start-up and spinning cost more than they
    # save (5x slower measured on a loaded two-core machine); larger inputs get every thread.
    with threadpool_limits(limits=1) if n <= _TSNE_SINGLE_THREAD_ROWS else nullcontext():
        embedding: np.ndarray = tsne.fit_transform(Z)  # scikit-learn ships no type information
    return embedding


# -- profiles --------------------------------------------------------------------------------------------


def _numeric_contrasts(values: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(k, Fn)`` SMD, cluster means and rest means of numeric columns ``values`` ``(n, Fn)``."""
    present = np.isfinite(values)
    v = np.where(present, values, 0.0)
    p = present.astype(np.float64)
    count_in = onehot.T @ p
    sum_in = onehot.T @ v
    sq_in = onehot.T @ (v * v)
    count_out = p.sum(axis=0) - count_in
    sum_out = v.sum(axis=0) - sum_in
    sq_out = (v * v).sum(axis=0) - sq_in
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = sum_in / count_in
        mean_out = sum_out / count_out
        var_in = np.maximum(sq_in / count_in - mean_in**2, 0.0)
        var_out = np.maximum(sq_out / count_out - mean_out**2, 0.0)
        pooled = np.sqrt((var_in + var_out) / 2.0)
        smd = np.where(pooled > 0, (mean_in - mean_out) / pooled, np.nan)
    return smd, mean_in, mean_out


def _categorical_contrast(column: pd.Series, labels: np.ndarray, k: int) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Per cluster, the most over-represented category and its shares in and out of the cluster."""
    codes, uniques = pd.factorize(column, sort=False, use_na_sentinel=True)
    m = len(uniques)
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    n = labels.size
    if m == 0:
        return [None] * k, np.full(k, np.nan), np.full(k, np.nan)
    known = codes >= 0
    table = np.bincount(labels[known] * m + codes[known], minlength=k * m).reshape(k, m).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_in = table / sizes[:, None]
        share_out = (table.sum(axis=0)[None, :] - table) / (n - sizes)[:, None]
    lift = np.where(np.isfinite(share_out), share_in - share_out, share_in)
    best = np.argmax(lift, axis=1)
    rows = np.arange(k)
    top = [plain_scalar(uniques[b]) if table[c, b] > 0 else None for c, b in zip(rows, best)]
    return top, share_in[rows, best], share_out[rows, best]


def _highlights(
    numeric: Sequence[str],
    smd: np.ndarray,
    categorical: Sequence[str],
    top: Sequence[Any],
    share_in: np.ndarray,
    share_out: np.ndarray,
) -> tuple[str, ...]:
    found: list[tuple[float, str]] = []
    for name, d in zip(numeric, smd):
        if np.isfinite(d) and abs(d) >= _SMD_HIGHLIGHT:
            found.append(
                (
                    abs(d) / 2.0,
                    f"{name} is {'higher' if d > 0 else 'lower'} than in other rows (standardised difference {d:+.2f})",
                )
            )
    for name, cat, a, b in zip(categorical, top, share_in, share_out):
        if cat is not None and np.isfinite(a) and np.isfinite(b) and a - b >= _SHARE_HIGHLIGHT:
            found.append((a - b, f"{name} = {cat} in {a:.0%} of rows (other rows: {b:.0%})"))
    found.sort(key=lambda t: -t[0])
    return tuple(text for _, text in found[:_MAX_HIGHLIGHTS])


# -- K-LIME ----------------------------------------------------------------------------------------------


def _r2(y: np.ndarray, fitted: np.ndarray) -> float:
    if y.size < 2:
        return math.nan
    sst = float(((y - y.mean()) ** 2).sum())
    if sst <= 1e-12 * max(1.0, float((y**2).sum())):
        return math.nan
    return 1.0 - float(((y - fitted) ** 2).sum()) / sst


def _klime(D: np.ndarray, y: np.ndarray, labels: np.ndarray, k: int, alpha: float) -> tuple[np.ndarray, ...]:
    """Ridge fits of ``y`` on standardised ``D`` for each cluster and for all rows, in one solve.

    Returns standardised coefficients ``(k + 1, P)``, raw coefficients, intercepts
    ``(k + 1,)`` and R² ``(k + 1,)``; the last row is the all-rows fit.
    """
    n, p = D.shape
    mean = D.mean(axis=0)
    std = D.std(axis=0)
    usable = std > 1e-12 * np.maximum(1.0, np.abs(mean))
    Xs = np.where(usable, (D - mean) / np.where(usable, std, 1.0), 0.0)
    groups = np.zeros((n, k + 1))
    groups[np.arange(n), labels] = 1.0
    groups[:, k] = 1.0
    counts = groups.sum(axis=0)
    safe = np.maximum(counts, 1.0)
    mu_x = (groups.T @ Xs) / safe[:, None]  # (k+1, P)
    mu_y = (groups.T @ y) / safe  # (k+1,)
    # Each cluster's rows once through BLAS (n p² in all), then the all-rows Gram as their sum.
    raw_gram = np.empty((k + 1, p, p))
    for c in range(k):
        member = Xs[labels == c]
        raw_gram[c] = member.T @ member
    raw_gram[k] = raw_gram[:k].sum(axis=0)
    gram = raw_gram - counts[:, None, None] * mu_x[:, :, None] * mu_x[:, None, :]
    cross = groups.T @ (Xs * y[:, None]) - counts[:, None] * mu_x * mu_y[:, None]
    # The penalty grows with the cluster's rows so alpha means the same for small and large clusters;
    # a unit ridge on unusable (constant) columns keeps their coefficient at exactly 0.
    ridge = alpha * safe[:, None] * usable[None, :] + (~usable)[None, :]
    system = gram + ridge[:, :, None] * np.eye(p)[None]
    beta_std = np.linalg.solve(system, cross[:, :, None])[:, :, 0] if p else np.zeros((k + 1, 0))
    beta_std[:, ~usable] = 0.0
    intercept_std = mu_y - np.einsum("gp,gp->g", beta_std, mu_x)
    fitted = intercept_std[None, :] + Xs @ beta_std.T  # (n, k+1)
    r2 = np.array([_r2(y[labels == c], fitted[labels == c, c]) for c in range(k)] + [_r2(y, fitted[:, k])])
    beta_raw = np.where(usable, beta_std / np.where(usable, std, 1.0), 0.0)
    intercept = intercept_std - beta_raw @ mean
    return beta_std, beta_raw, intercept, r2


# -- entry point -----------------------------------------------------------------------------------------


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AnalysisError(f"The {what} must be a whole number of at least {minimum}, not {value!r}.")
    return int(value)


def _check_attributions(attributions: Any, inputs: AuditInputs, source: str) -> tuple[np.ndarray, np.ndarray]:
    if attributions is None:
        raise AnalysisError("Explanation clusters need attributions of the rows; compute SHAP or LIME values first.")
    if not isinstance(attributions, AttributionResult):
        raise AnalysisError(
            f"Explanation clusters need an attribution result (SHAP or LIME values), not a "
            f"{type(attributions).__name__}."
        )
    values = np.asarray(attributions.values, dtype=np.float64)
    rows = np.asarray(attributions.rows, dtype=np.int64)
    if values.ndim != 2 or values.shape[0] != rows.size or values.shape[1] != len(attributions.feature_names):
        raise AnalysisError(
            f"The {attributions.method or 'attribution'} values do not have one row per explained row and one "
            "column per feature, so they cannot be clustered."
        )
    missing = [f for f in attributions.feature_names if f not in inputs.frame.columns]
    if missing:
        listed = ", ".join(repr(m) for m in missing[:5])
        raise AnalysisError(f"The attributions name features that {source} lacks: {listed}.")
    n_total = len(inputs.frame)
    if rows.size and (rows.min() < 0 or rows.max() >= n_total):
        raise AnalysisError(
            f"The attributions refer to rows outside {source}, which has {n_total} rows; they were computed on "
            "other data."
        )
    bad = int((~np.isfinite(values)).any(axis=1).sum())
    if bad:
        raise AnalysisError(
            f"{bad} rows of the {attributions.method or 'attribution'} values are missing or infinite, so the rows "
            "cannot be clustered."
        )
    return values, rows


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    attributions: AttributionResult | None = None,
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    standardize: bool = False,
    projection: str = "pca",
    n_init: int = 4,
    silhouette_rows: int = 2000,
    klime_alpha: float = 1e-3,
    max_categories: int = 20,
) -> ExplanationClustersResult:
    """Cluster rows by their attribution vectors, project, profile and fit K-LIME.

    Parameters
    ----------
    inputs:
        Data, roles and model the attributions were computed on.
    ctx:
        Seed, progress and cancel.  k-means run ``r`` draws from
        ``ctx.rng("kmeans", k, r)``, the silhouette sample from
        ``ctx.rng("silhouette", k)``, and t-SNE is seeded with
        ``ctx.int_seed("tsne")`` (32 bits, scikit-learn's range).
    attributions:
        The :class:`AttributionResult` (SHAP, LIME, ...) whose ``(n, F)``
        values are clustered; required (the CLI and GUI compute it first).
    k:
        The number of clusters; ``None`` chooses it by silhouette over ``k_range``.
    k_range:
        ``(smallest, largest)`` numbers of clusters tried, both included
        (the largest is capped at ``n - 1``).
    standardize:
        Scale each feature's attributions to unit variance before clustering.
    projection:
        ``"pca"`` or ``"tsne"``.
    n_init:
        k-means runs per ``k`` (the best inertia is kept).
    silhouette_rows:
        Largest number of rows the silhouette is computed on.
    klime_alpha:
        Ridge penalty per row of the K-LIME surrogates, on standardised
        features (positive: one-hot columns are collinear with the intercept).
    max_categories:
        Most indicator columns per categorical feature in K-LIME.

    Returns
    -------
    ExplanationClustersResult
    """
    started = utc_now()
    source = source_name(inputs)
    values, rows = _check_attributions(attributions, inputs, source)
    assert attributions is not None
    n, f = values.shape
    n_init = _whole(n_init, "number of k-means runs", 1)
    silhouette_cap = _whole(silhouette_rows, "number of rows for the silhouette", 10)
    max_cats = _whole(max_categories, "number of categories per column", 1)
    if projection not in PROJECTIONS:
        raise AnalysisError(f"The projection must be one of {', '.join(map(repr, PROJECTIONS))}, not {projection!r}.")
    try:
        alpha = float(klime_alpha)
    except (TypeError, ValueError):
        alpha = math.nan
    if not (math.isfinite(alpha) and alpha > 0):
        raise AnalysisError(f"The K-LIME penalty must be a positive number, not {klime_alpha!r}.")
    if n < 3:
        raise AnalysisError(f"Explanation clusters need at least three explained rows of {source}, found {n}.")
    if k is not None:
        k = _whole(k, "number of clusters", 2)
        if k >= n:
            raise AnalysisError(f"{k} clusters cannot be formed from {n} explained rows; choose fewer.")
        candidates = [k]
    else:
        try:
            lo, hi = (int(v) for v in k_range)
        except (TypeError, ValueError):
            lo, hi = 0, -1
        if lo < 2 or hi < lo:
            raise AnalysisError(
                f"The range of cluster numbers must be two whole numbers with 2 <= smallest <= largest, "
                f"not {k_range!r}."
            )
        candidates = list(range(lo, min(hi, n - 1) + 1))
        if not candidates:
            raise AnalysisError(f"{lo} clusters cannot be formed from {n} explained rows; choose fewer.")

    Z = values
    if standardize:
        scale = values.std(axis=0)
        Z = (values - values.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    warn: list[str] = []

    ctx.check_cancelled()
    ctx.progress(0.0, "Clustering the attributions")
    fits: list[tuple[np.ndarray, np.ndarray]] = []
    silhouettes = np.full(len(candidates), np.nan)
    use_rows = min(n, silhouette_cap)
    for i, kk in enumerate(candidates):
        ctx.check_cancelled()
        ctx.progress(0.6 * i / len(candidates), f"k-means with {kk} clusters")
        labels_k, centroids_k = _kmeans(Z, kk, n_init=n_init, ctx=ctx)
        sample: slice | np.ndarray = slice(None)
        if n > silhouette_cap:
            sample = np.sort(ctx.rng("silhouette", kk).choice(n, size=silhouette_cap, replace=False))
        silhouettes[i] = _silhouette(Z[sample], labels_k[sample], kk)
        fits.append((labels_k, centroids_k))
    if np.all(np.isnan(silhouettes)):
        best = 0
        if k is None:
            warn.append(
                f"The silhouette is undefined for every number of clusters tried, so {candidates[0]} clusters "
                "were used; the attributions may hold too few distinct vectors."
            )
    else:
        best = int(np.nanargmax(silhouettes))
    labels, centroids = fits[best]
    k_chosen = candidates[best]
    if n > silhouette_cap:
        warn.append(f"Silhouettes were computed on a random sample of {silhouette_cap} of the {n} rows.")

    ctx.check_cancelled()
    ctx.progress(0.6, "Projecting the attributions to two dimensions")
    explained: np.ndarray | None = None
    if projection == "pca":
        coords, explained = _pca(Z)
    else:
        coords = _tsne(Z, ctx.int_seed("tsne"))

    ctx.check_cancelled()
    ctx.progress(0.8, "Profiling the clusters")
    X = inputs.frame.iloc[rows].loc[:, list(attributions.feature_names)].reset_index(drop=True)
    predictions = np.asarray(attributions.predictions, dtype=np.float64)
    if predictions.shape != (n,):
        predictions = explained_output(
            inputs.model,
            lambda a, b: inputs.X.iloc[rows[a:b]],
            n,
            attributions.class_index,
            ctx=ctx,
            n_columns=len(inputs.feature_names),
        )
        warn.append("The attributions carry no model outputs, so the model was called for the cluster profiles.")
    onehot = np.zeros((n, k_chosen))
    onehot[np.arange(n), labels] = 1.0
    sizes = onehot.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # A cluster left empty (fewer distinct vectors than k) has NaN means, not a warning.
        mean_pred = (onehot.T @ predictions) / sizes
        mean_attr = (onehot.T @ values) / sizes[:, None]

    kinds = column_kinds(inputs)
    names = tuple(str(c) for c in X.columns)
    numeric = [c for c in names if not is_categorical_column(X[c], kinds.get(c))]
    categorical = [c for c in names if c not in numeric]
    num_values = (
        np.column_stack([X[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in numeric])
        if numeric
        else np.zeros((n, 0))
    )
    smd, mean_in, mean_out = _numeric_contrasts(num_values, onehot)
    cat_top: list[list[Any]] = []
    cat_in = np.zeros((k_chosen, len(categorical)))
    cat_out = np.zeros((k_chosen, len(categorical)))
    for j, c in enumerate(categorical):
        top, a, b = _categorical_contrast(X[c], labels, k_chosen)
        cat_top.append(top)
        cat_in[:, j], cat_out[:, j] = a, b

    ctx.check_cancelled()
    ctx.progress(0.9, "Fitting K-LIME surrogates")
    design = encode_raw(X, kinds=kinds, max_categories=max_cats, warn=warn)
    beta_std, beta_raw, intercepts, r2 = _klime(design.matrix, predictions, labels, k_chosen, alpha)
    klime = KLimeFit(
        design_names=design.names,
        design_raw=design.raw,
        coefficients=beta_raw[:k_chosen],
        standardised=beta_std[:k_chosen],
        intercepts=intercepts[:k_chosen],
        r2=r2[:k_chosen],
        global_coefficients=beta_raw[k_chosen],
        global_standardised=beta_std[k_chosen],
        global_intercept=float(intercepts[k_chosen]),
        global_r2=float(r2[k_chosen]),
        alpha=alpha,
    )
    low = [c for c in range(k_chosen) if np.isfinite(r2[c]) and r2[c] < 0.5]
    if low:
        listed = ", ".join(f"{c} (R² {format_number(float(r2[c]), 2)})" for c in low)
        warn.append(
            f"The K-LIME surrogates of clusters {listed} explain less than half of the model's variation "
            "there; read their coefficients with caution."
        )

    profiles = tuple(
        ClusterProfile(
            cluster=c,
            size=int(sizes[c]),
            share=float(sizes[c] / n),
            mean_prediction=float(mean_pred[c]),
            mean_attribution=mean_attr[c],
            numeric_features=tuple(numeric),
            smd=smd[c],
            cluster_mean=mean_in[c],
            rest_mean=mean_out[c],
            categorical_features=tuple(categorical),
            top_category=tuple(t[c] for t in cat_top),
            category_share=cat_in[c],
            rest_share=cat_out[c],
            highlights=_highlights(numeric, smd[c], categorical, [t[c] for t in cat_top], cat_in[c], cat_out[c]),
        )
        for c in range(k_chosen)
    )

    parameters = {
        "attributions": {"method": attributions.method, "rows": int(n), "output_name": attributions.output_name},
        "k": k,
        "k_range": [int(v) for v in k_range] if k is None else None,
        "standardize": bool(standardize),
        "projection": projection,
        "n_init": n_init,
        "silhouette_rows": silhouette_cap,
        "klime_alpha": alpha,
        "max_categories": max_cats,
    }
    result = ExplanationClustersResult(
        provenance=inputs.provenance(
            method=METHOD.name, parameters=parameters, ctx=ctx, started_at=started, warnings=warn
        ),
        attribution_method=attributions.method,
        output_name=attributions.output_name,
        output_space=attributions.output_space,
        feature_names=tuple(attributions.feature_names),
        rows=rows,
        labels=labels,
        k=k_chosen,
        k_tried=np.asarray(candidates, dtype=np.int64),
        silhouettes=silhouettes,
        silhouette_rows=use_rows,
        standardized=bool(standardize),
        centroids=centroids,
        projection=coords,
        projection_method=projection,
        explained_variance=explained,
        profiles=profiles,
        klime=klime,
    )
    ctx.progress(1.0, "Done")
    return result


METHOD = Method(
    name="clusters",
    title="Explanation clusters (SHAP + K-LIME)",
    short_title="Explanation clusters and K-LIME",
    run=run,
    summary=(
        "Rows grouped by why the model scored them (k-means on SHAP or LIME values, k by silhouette), drawn "
        "in 2-D, profiled in the data's terms, with a local linear surrogate (K-LIME) per cluster."
    ),
    description=(
        "Rows are clustered with k-means on their attribution vectors, so rows that are explained alike fall "
        "together, and the number of clusters is chosen by silhouette. K-LIME then fits one ridge surrogate "
        "per cluster and reports its R²."
    ),
    params=(
        Param(
            "attributions",
            "result",
            None,
            label="Attributions",
            help="The attributions clustered: the SHAP values of the chosen rows, computed first.",
        ),
        Param(
            "k",
            "int",
            None,
            label="Clusters",
            minimum=2,
            none="chosen by silhouette",
            basic=True,
            help="The number of clusters.",
        ),
        Param(
            "k_range",
            "pair",
            (2, 8),
            label="Cluster numbers tried",
            item="int",
            minimum=2,
            help="Smallest and largest number of clusters tried when k is chosen by silhouette.",
        ),
        Param(
            "standardize",
            "bool",
            False,
            label="Standardise attributions",
            help="Scale each feature's attributions to unit variance before clustering.",
        ),
        Param(
            "projection",
            "choice",
            "pca",
            label="Projection",
            choices=PROJECTIONS,
            basic=True,
            help="How rows are drawn in two dimensions.",
        ),
        Param("n_init", "int", 4, label="k-means runs", minimum=1, help="k-means runs per k (the best is kept)."),
        Param(
            "silhouette_rows",
            "int",
            2000,
            label="Rows for the silhouette",
            minimum=10,
            unit="rows",
            help="Most rows the silhouette is computed on.",
        ),
        Param(
            "klime_alpha",
            "float",
            1e-3,
            label="K-LIME ridge penalty",
            minimum=0.0,
            exclusive=True,
            help="Ridge penalty per row of the K-LIME surrogates, on standardised features.",
        ),
        Param(
            "max_categories",
            "int",
            20,
            label="Most categories per column",
            minimum=1,
            help="Most indicator columns per categorical column in K-LIME.",
        ),
    ),
    result=ExplanationClustersResult,
    needs=frozenset({"rows"}),
    builds_on={"attributions": "shap"},
    rows_default="random:500",
    view="clusters",
)
