"""KernelSHAP: model-agnostic Shapley values of the raw input columns.

A feature is one raw input column, whatever its dtype (strings included), so a
one-hot-encoded column inside a Pipeline counts once.  The value of a coalition
``S`` of features for an instance ``x`` is the model output averaged over the
weighted background rows ``b`` with the columns in ``S`` taken from ``x``::

    v(S) = g( sum_b w_b f(x_S, b_notS) / sum_b w_b )

where ``g`` is the link (identity, or logit for log-odds).  The Shapley values
solve the Shapley-kernel weighted least-squares problem over the coalitions,
constrained so that ``sum_j phi_j = v(all) - v(none) = g(f(x)) - g(E[f])``
exactly (Lundberg & Lee 2017).  The constraint is handled with a Lagrange
multiplier; the design and weights are shared by all instances, so one
factorisation of the bordered system solves every instance at once.  Columns
that take a single value over the explained rows and the background cannot
change the output: they get exactly 0 and are left out of the regression
(``M`` counts the others).

Coalitions
----------
When every coalition fits the budget (``2^M - 2 <= n_coalitions``) all are
enumerated and the result is the exact Shapley value.  Otherwise the budget is
spent like shap's KernelExplainer: sizes are visited in complementary pairs
(``s`` with ``M - s``) from the smallest, and a pair of sizes is enumerated
completely, each coalition at its exact kernel weight, while the budget left
would give it at least as many samples as it has coalitions.  The rest of the
budget draws complementary pairs ``{S, notS}`` (the middle size of an even
``M`` included, unlike shap): a size pair with probability proportional to its
kernel mass, then a uniformly random subset of that size.  A coalition's weight
is its number of draws times ``sampled_mass / (2 * n_draws)``, so its expected
weight is its exact kernel weight.  Draws stop when the budget of distinct
coalitions is reached.

Standard errors
---------------
A paired bootstrap over the sampled draws (each draw is a complementary pair):
``_N_BOOTSTRAP`` (64) times the draws are resampled with replacement, the
weights recomputed from the new counts and the constrained problem solved
again; the standard error is the standard deviation of the replicates.
Enumerated sizes have fixed weights and no sampling error, so exact
enumeration gives standard errors of 0.  The bootstrap measures the
coalition-sampling error only; the background is taken as given.

Cost and batching
-----------------
The model sees ``n_rows x n_coalitions x background_size`` rows.  They are
built column by column (each column of the stacked frame is either the
instance's value or the background's, so dtypes are kept; when every column
shares one numpy dtype the frame is one C-ordered block) and scored in calls
of whole instance-coalitions, at most ``chunk_rows`` rows each.  Calls are
paced by :func:`engine.explain._predict.predict_batched`: sized from the
measured model speed to last about a third of a second, so a cancel takes
effect within about one call.  Each average over the background
is a row-wise sum, so results do not depend on how rows were split into calls
(for models whose output for a row does not depend on the other rows of the
call, as for scikit-learn models).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.attribution import AttributionResult, resolve_output
from engine.errors import AnalysisError
from engine.explain._background import Background, single_thread_if_small, summarise_background
from engine.explain._predict import Pacer, predict_batched
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Model, Task
from engine.params import Param, class_param, rows_param
from engine.results import utc_now

__all__ = [
    "CoalitionDesign",
    "KernelShapEstimate",
    "coalition_design",
    "background_for",
    "kernel_shap",
    "run",
    "METHOD",
]

LINKS = ("identity", "logit")
# Coalitions beyond 2 * M when n_coalitions="auto" (shap's default budget).
_AUTO_EXTRA = 2048
_N_BOOTSTRAP = 64
# Probabilities are clipped this far from 0 and 1 before the logit link.
_LOGIT_EPS = 1e-12
# Above this condition number the constrained system is solved by least squares.
_MAX_CONDITION = 1e12
# Pairs are drawn in batches of at most this many (bounded memory), for at most this many rounds.
_MAX_DRAW_BATCH = 200_000
_MAX_DRAW_ROUNDS = 64
# Bootstraps under this many multiply-adds run on one BLAS thread (see single_thread_if_small).
_SMALL_BOOTSTRAP = 500_000_000


# -- coalitions ------------------------------------------------------------------------


@dataclass(frozen=True)
class CoalitionDesign:
    """Coalitions of ``M`` features with their Shapley-kernel weights.

    Attributes
    ----------
    masks: ``(C, M)`` bool, ``True`` where the feature comes from the instance;
        never all ``False`` or all ``True`` (those two are the constraint).
    weights: ``(C,)`` kernel weights, normalised so the full kernel mass is 1.
    n_fixed: the first ``n_fixed`` coalitions enumerate whole sizes (fixed
        weights); the rest are sampled complementary pairs, rows
        ``n_fixed + 2p`` and ``n_fixed + 2p + 1`` forming pair ``p``.
    draws: ``(D,)`` the pair index of every draw, repeats included.
    sampled_mass: kernel mass carried by the sampled pairs (normalised).
    exact: whether every coalition was enumerated.
    """

    masks: np.ndarray
    weights: np.ndarray
    n_fixed: int
    draws: np.ndarray
    sampled_mass: float
    exact: bool

    @property
    def n_coalitions(self) -> int:
        return len(self.masks)

    @property
    def n_pairs(self) -> int:
        return (len(self.masks) - self.n_fixed) // 2

    def sampled_weights(self, draws: np.ndarray) -> np.ndarray:
        """``(C - n_fixed,)`` weights of the sampled coalitions for a list of draws."""
        return _pair_weights(draws, self.n_pairs, self.sampled_mass)


def _pair_weights(draws: np.ndarray, n_pairs: int, mass: float) -> np.ndarray:
    """``(2 n_pairs,)`` weights of pairs drawn ``draws`` times: each draw adds ``mass / (2 D)`` to both sides."""
    counts = np.bincount(draws, minlength=n_pairs).astype(np.float64)
    return np.repeat(counts * (mass / (2.0 * len(draws))), 2)


def _kernel_weight(m: int, s: np.ndarray | int) -> np.ndarray:
    """Shapley-kernel weight of one coalition of size ``s`` among ``m`` features."""
    s = np.asarray(s, dtype=np.float64)
    comb = np.array([math.comb(m, int(k)) for k in np.atleast_1d(s)], dtype=np.float64).reshape(s.shape)
    out: np.ndarray = (m - 1) / (comb * s * (m - s))
    return out


def _all_masks(m: int) -> np.ndarray:
    codes = np.arange(1, 2**m - 1, dtype=np.int64)
    return ((codes[:, None] >> np.arange(m)) & 1).astype(bool)


def _masks_of_size(m: int, s: int) -> np.ndarray:
    """``(C(m, s), m)`` every coalition of size ``s``.

    Small ``m`` filters all bit codes in one vectorised pass; larger ``m`` lists
    :func:`itertools.combinations`, whose length the budget bounds (a size is
    only enumerated when the budget covers it).
    """
    if m <= 16:
        masks = _all_masks(m)
        out: np.ndarray = masks[masks.sum(axis=1) == s]
        return out
    import itertools

    idx = np.array(list(itertools.combinations(range(m), s)), dtype=np.int64).reshape(-1, s)
    out = np.zeros((len(idx), m), dtype=bool)
    np.put_along_axis(out, idx, True, axis=1)
    return out


def coalition_design(m: int, budget: int, rng: np.random.Generator) -> CoalitionDesign:
    """Choose coalitions and kernel weights for ``m`` features within ``budget`` coalitions.

    Parameters
    ----------
    m: number of features (``>= 1``).
    budget: the most coalitions to evaluate, besides the empty and the full one.
    rng: draws the sampled pairs (unused when everything is enumerated).
    """
    empty = np.zeros((0, m), dtype=bool)
    if m < 2:
        return CoalitionDesign(empty, np.zeros(0), 0, np.zeros(0, np.int64), 0.0, True)
    if 2**m - 2 <= budget:
        masks = _all_masks(m)
        w = _kernel_weight(m, masks.sum(axis=1))
        return CoalitionDesign(masks, w / w.sum(), len(masks), np.zeros(0, np.int64), 0.0, True)

    levels = np.arange(1, m // 2 + 1)
    self_paired = 2 * levels == m
    level_mass = (m - 1) / (levels * (m - levels)) * np.where(self_paired, 1.0, 2.0)
    level_count = np.array([math.comb(m, int(s)) for s in levels], dtype=np.float64)
    level_count = np.where(self_paired, level_count, 2 * level_count)
    total_mass = float(level_mass.sum())

    fixed_masks: list[np.ndarray] = []
    fixed_weights: list[np.ndarray] = []
    remaining = float(budget)
    mass_left = total_mass
    n_full = 0
    for s, mass, count, paired in zip(levels, level_mass, level_count, ~self_paired):
        # Enumerate a size pair when the budget would sample it at least as often as it has coalitions.
        if remaining * mass / mass_left < count * (1 - 1e-8) or mass_left <= 0:
            break
        block = _masks_of_size(m, int(s))
        if paired:
            block = np.concatenate([block, ~block])
        fixed_masks.append(block)
        fixed_weights.append(np.full(len(block), float(_kernel_weight(m, int(s)))))
        remaining -= count
        mass_left -= mass
        n_full += 1

    masks = np.concatenate(fixed_masks) if fixed_masks else empty
    weights = np.concatenate(fixed_weights) / total_mass if fixed_weights else np.zeros(0)
    n_fixed = len(masks)
    pairs_budget = int(remaining // 2)
    draws = np.zeros(0, np.int64)
    sampled_mass = 0.0
    if n_full < len(levels) and pairs_budget > 0:
        pair_masks, draws = _draw_pairs(m, levels[n_full:], level_mass[n_full:], pairs_budget, rng)
        sampled_mass = float(level_mass[n_full:].sum())
        interleaved = np.empty((2 * len(pair_masks), m), dtype=bool)
        interleaved[0::2] = pair_masks
        interleaved[1::2] = ~pair_masks
        masks = np.concatenate([masks, interleaved])
        sampled = _pair_weights(draws, len(pair_masks), sampled_mass / total_mass)
        weights = np.concatenate([weights, sampled])
    return CoalitionDesign(masks, weights, n_fixed, draws, sampled_mass / total_mass, False)


def _draw_pairs(
    m: int, levels: np.ndarray, mass: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw complementary pairs until ``n_pairs`` distinct ones are found.

    Returns the distinct pairs ``(P, m)`` (one side of each, in order of first
    draw) and ``(D,)`` the pair index of every draw.
    """
    p = mass / mass.sum()
    batch = min(max(4 * n_pairs, 64), _MAX_DRAW_BATCH)
    sides: list[np.ndarray] = []
    for round_ in range(_MAX_DRAW_ROUNDS):
        sizes = rng.choice(levels, size=batch, p=p)
        order = np.argsort(rng.random((batch, m)), axis=1)
        side = np.zeros((batch, m), dtype=bool)
        # The first s of a random permutation are a uniformly random subset of size s.
        np.put_along_axis(side, order, np.arange(m)[None, :] < sizes[:, None], axis=1)
        sides.append(side)
        drawn = np.concatenate(sides)
        # A pair is identified by its side without feature 0.
        canonical = drawn ^ drawn[:, :1]
        packed = np.packbits(canonical, axis=1)
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        if len(first) >= n_pairs or round_ == _MAX_DRAW_ROUNDS - 1:
            break
    firsts = np.sort(first)[:n_pairs]
    n_draws = int(firsts[-1]) + 1
    # Number the pairs in order of first draw so the result does not depend on key order.
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    pair_of_draw = rank[inverse.ravel()[:n_draws]]
    return drawn[firsts], pair_of_draw


# -- the weighted, constrained least squares ------------------------------------------


def _solve_constrained(A: np.ndarray, G: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, bool]:
    """Minimise the weighted squared error subject to ``sum(phi) = delta`` for every instance.

    Parameters
    ----------
    A: ``(M, M)`` ``Z' W Z``.
    G: ``(n, M)`` rows ``Z' W y_i``.
    delta: ``(n,)`` the sum each row of ``phi`` must have.

    Returns
    -------
    phi: ``(n, M)``.
    well_posed: ``False`` when the system was singular and a least-norm solution was used.
    """
    m = A.shape[0]
    kkt = np.zeros((m + 1, m + 1))
    kkt[:m, :m] = A
    kkt[:m, m] = 1.0
    kkt[m, :m] = 1.0
    rhs = np.vstack([G.T, delta[None, :]])
    well_posed = bool(np.linalg.cond(kkt) < _MAX_CONDITION)
    if well_posed:
        sol = np.linalg.solve(kkt, rhs)
    else:
        sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
    phi = sol[:m].T
    # Put any rounding left in the sum back evenly, so additivity holds to machine precision.
    phi += ((delta - phi.sum(axis=1)) / m)[:, None]
    return phi, well_posed


# -- model evaluation ------------------------------------------------------------------


def _link(values: np.ndarray, link: str) -> np.ndarray:
    if link == "logit":
        p = np.clip(values, _LOGIT_EPS, 1.0 - _LOGIT_EPS)
        out: np.ndarray = np.log(p) - np.log1p(-p)
        return out
    return values


class _Stacker:
    """Builds the stacked frame of (instance, coalition, background row) combinations.

    Column ``j`` of the row for unit ``u = i * C + c`` and background row ``b``
    is ``x_i[j]`` when feature ``j`` is in coalition ``c``, else ``b[j]``.  Each
    column keeps its dtype; when every column shares one numpy dtype the frame
    is a single C-ordered block, so the model's own conversion to an array does
    not copy it again.
    """

    def __init__(self, X: pd.DataFrame, background: pd.DataFrame, masks: np.ndarray, active: np.ndarray) -> None:
        self.columns = list(X.columns)
        self.n = len(X)
        self.k = len(background)
        # Constant columns are never "in" a coalition: their value is the same either way.
        use_x = np.zeros((len(masks), len(self.columns)), dtype=bool)
        use_x[:, active] = masks
        self.use_x = use_x
        self.n_coalitions = max(len(masks), 1)
        dtypes = {X[c].dtype for c in self.columns} | {background[c].dtype for c in self.columns}
        dtype = next(iter(dtypes))
        self.block = len(dtypes) == 1 and isinstance(dtype, np.dtype) and dtype.kind in "biuf"
        if self.block:
            self.x_block = X.to_numpy(dtype=dtype)
            self.bg_block = background.to_numpy(dtype=dtype)
        else:
            # Extension dtypes (str, category, nullable ints) are gathered with take to keep the dtype.
            self.pools = [pd.concat([X[c], background[c]], ignore_index=True).array for c in self.columns]

    def frame(self, u0: int, u1: int) -> pd.DataFrame:
        units = np.arange(u0, u1)
        inst = units // self.n_coalitions
        use_x = self.use_x[units % self.n_coalitions]  # (U, F)
        if self.block:
            # Written into a preallocated C-ordered array: np.where on broadcast inputs picks its own layout.
            stacked = np.empty((len(units), self.k, len(self.columns)), dtype=self.bg_block.dtype)
            stacked[...] = self.bg_block[None, :, :]
            np.copyto(stacked, self.x_block[inst][:, None, :], where=use_x[:, None, :])
            return pd.DataFrame(stacked.reshape(-1, len(self.columns)), columns=self.columns, copy=False)
        background_rows = self.n + np.arange(self.k)[None, :]
        data = {
            name: pool.take(np.where(use_x[:, j, None], inst[:, None], background_rows).ravel())
            for j, (name, pool) in enumerate(zip(self.columns, self.pools))
        }
        return pd.DataFrame(data, copy=False)


def _predict_rows(
    predict: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, pacer: Pacer, ctx: JobContext
) -> np.ndarray:
    """``(N,)`` model output on the rows of ``frame``, in paced calls."""

    def call(start: int, stop: int) -> np.ndarray:
        return np.asarray(predict(frame.iloc[start:stop]), dtype=np.float64).reshape(stop - start)

    return predict_batched(call, len(frame), pacer=pacer, ctx=ctx, dtype=np.float64)


def _evaluate(
    X: pd.DataFrame,
    background: Background,
    predict: Callable[[pd.DataFrame], np.ndarray],
    masks: np.ndarray,
    active: np.ndarray,
    *,
    ctx: JobContext,
    pacer: Pacer,
) -> np.ndarray:
    """Background-averaged model output ``(n, C)`` for every instance and coalition.

    A call holds whole instance-coalitions (``K`` background rows each), so it
    has at least ``K`` rows even when ``chunk_rows`` is smaller.
    """
    n, c, k = len(X), len(masks), background.size
    total = n * c
    if total == 0:
        return np.empty((n, c))
    stacker = _Stacker(X, background.frame, masks, active)
    p = background.probabilities

    def average(u0: int, u1: int) -> np.ndarray:
        f = np.asarray(predict(stacker.frame(u0, u1)), dtype=np.float64).reshape(u1 - u0, k)
        # A row-wise sum (not a BLAS product) so each average is bitwise the same whatever the chunking.
        out: np.ndarray = (f * p[None, :]).sum(axis=1)
        return out

    def report(done: int) -> None:
        ctx.progress(done / total, f"KernelSHAP: {done:,} of {total:,} instance-coalitions evaluated")

    # Paced calls one at a time until their size settles, then even chunks on the free cores.
    out = predict_batched(average, total, pacer=pacer, ctx=ctx, unit_rows=k, on_done=report, dtype=np.float64)
    return out.reshape(n, c)


# -- the estimator ---------------------------------------------------------------------


@dataclass(frozen=True)
class KernelShapEstimate:
    """What :func:`kernel_shap` computes.

    Attributes
    ----------
    values: ``(n, F)`` Shapley values in link space; constant columns get 0.
    standard_errors: ``(n, F)`` bootstrap standard errors (0 when exact).
    base_value: ``g(E[f])`` over the weighted background.
    predictions: ``(n,)`` ``g(f(x))``.
    n_coalitions: coalitions evaluated per instance (besides empty and full).
    exact: whether every coalition was enumerated.
    n_varying: features that vary between the instances and the background, ``M``.
    n_model_rows, n_model_calls: the work the model did.
    well_posed: ``False`` when the budget was too small for a unique solution.
    """

    values: np.ndarray
    standard_errors: np.ndarray
    base_value: float
    predictions: np.ndarray
    n_coalitions: int
    exact: bool
    n_varying: int
    n_model_rows: int
    n_model_calls: int
    well_posed: bool


def _varying_columns(X: pd.DataFrame, background: pd.DataFrame) -> np.ndarray:
    """Positions of the columns that take more than one value over instances and background."""
    keep = []
    for j, name in enumerate(X.columns):
        both = pd.concat([X[name], background[name]], ignore_index=True)
        if both.nunique(dropna=False) > 1:
            keep.append(j)
    return np.asarray(keep, dtype=np.int64)


def _is_whole(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _budget(n_coalitions: int | str, m: int) -> int:
    if isinstance(n_coalitions, str):
        if n_coalitions != "auto":
            raise AnalysisError(
                f"KernelSHAP's n_coalitions must be 'auto' or a whole number of at least 2, not {n_coalitions!r}."
            )
        return 2 * m + _AUTO_EXTRA
    if not _is_whole(n_coalitions) or n_coalitions < 2:
        raise AnalysisError(
            f"KernelSHAP's n_coalitions must be 'auto' or a whole number of at least 2, not {n_coalitions!r}."
        )
    return int(n_coalitions)


def kernel_shap(
    X: pd.DataFrame,
    background: Background,
    predict: Callable[[pd.DataFrame], np.ndarray],
    *,
    ctx: JobContext,
    n_coalitions: int | str = "auto",
    link: str = "identity",
    chunk_rows: int = 1_000_000,
) -> KernelShapEstimate:
    """KernelSHAP values of every row of ``X`` against a weighted background.

    Parameters
    ----------
    X: ``(n, F)`` rows to explain, raw input columns.
    background: ``K`` weighted rows with the same columns.
    predict: maps a frame of ``N`` rows to the explained output ``(N,)``
        (a probability or a value).
    ctx: progress, cancel and the random streams ``"coalitions"`` and ``"bootstrap"``.
    n_coalitions: coalition budget per instance, or ``"auto"`` for ``2 M + 2048``.
    link: ``"identity"`` or ``"logit"`` (explain log-odds of a probability).
    chunk_rows: most rows per model call (at least one instance-coalition, ``K`` rows).
    """
    if link not in LINKS:
        raise AnalysisError(f"KernelSHAP's link must be one of {', '.join(LINKS)}, not {link!r}.")
    if not _is_whole(chunk_rows) or chunk_rows < 1:
        raise AnalysisError(f"KernelSHAP's chunk_rows must be a positive whole number, not {chunk_rows!r}.")
    n, n_features = X.shape
    bg = background.frame.loc[:, list(X.columns)]
    active = _varying_columns(X, bg)
    m = len(active)
    budget = _budget(n_coalitions, m)

    ctx.progress(0.0, "KernelSHAP: evaluating the model on the instances and the background")
    pacer = Pacer(chunk_rows)
    # Background and instances in one call: fewer calls, and a less overhead-bound first timing.
    f_plain = _predict_rows(predict, pd.concat([bg, X], ignore_index=True), pacer, ctx)
    f_bg, f_x = f_plain[: background.size], f_plain[background.size :]
    plain_rows = n + background.size
    base = float(_link(np.asarray(background.expectation(f_bg)), link))
    predictions = _link(f_x, link)
    delta = predictions - base
    values = np.zeros((n, n_features))
    errors = np.zeros((n, n_features))
    if m == 0 or n == 0:
        ctx.progress(1.0, "KernelSHAP: done")
        return KernelShapEstimate(values, errors, base, predictions, 0, True, m, plain_rows, pacer.calls, True)

    design = coalition_design(m, budget, ctx.rng("coalitions"))
    v = _evaluate(X, background, predict, design.masks, active, ctx=ctx.sub(0.0, 0.95), pacer=pacer)
    ctx.check_cancelled()
    ctx.progress(0.95, "KernelSHAP: solving the weighted least squares")
    Y = _link(v, link) - base  # (n, C)
    Z = design.masks.astype(np.float64)
    Zw = Z * design.weights[:, None]
    phi, well_posed = _solve_constrained(Z.T @ Zw, Y @ Zw, delta)
    values[:, active] = phi
    if not design.exact and len(design.draws) > 0:
        work = _N_BOOTSTRAP * design.n_pairs * m * (m + n)
        with single_thread_if_small(work, threshold=_SMALL_BOOTSTRAP):
            errors[:, active] = _bootstrap_errors(design, Z, Y, delta, ctx=ctx)
    ctx.progress(1.0, "KernelSHAP: done")
    return KernelShapEstimate(
        values=values,
        standard_errors=errors,
        base_value=base,
        predictions=predictions,
        n_coalitions=design.n_coalitions,
        exact=design.exact,
        n_varying=m,
        n_model_rows=plain_rows + v.size * background.size,
        n_model_calls=pacer.calls,
        well_posed=well_posed,
    )


def _bootstrap_errors(
    design: CoalitionDesign, Z: np.ndarray, Y: np.ndarray, delta: np.ndarray, *, ctx: JobContext
) -> np.ndarray:
    """``(n, M)`` standard deviation of ``phi`` over paired-bootstrap replicates of the draws.

    Both sides of a pair share one weight, so a replicate's normal equations
    are sums over pairs of ``z z'`` (and its complement, ``1 1' - 1 z' - z 1' + z z'``)
    and of ``y_S z + y_notS (1 - z)``: a few large matrix products over all
    replicates at once, then one stacked solve.  Instances go in blocks to bound memory.
    """
    rng = ctx.rng("bootstrap")
    R = _N_BOOTSTRAP
    fixed, n_pairs, n_draws = design.n_fixed, design.n_pairs, len(design.draws)
    n, m = Y.shape[0], Z.shape[1]
    Zf, Zfw = Z[:fixed], Z[:fixed] * design.weights[:fixed, None]
    Zp = Z[fixed::2]  # (P, M) one side of each pair; the other side is 1 - Zp
    picks = design.draws[rng.integers(0, n_draws, size=(R, n_draws))]
    counts = np.bincount((picks + (np.arange(R) * n_pairs)[:, None]).ravel(), minlength=R * n_pairs)
    w = counts.reshape(R, n_pairs) * (design.sampled_mass / (2.0 * n_draws))  # (R, P) weight of each side

    # sum_p w_rp (z z' + (1-z)(1-z)') = 2 sum w z z' - 1 s' - s 1' + (sum w) 1 1', upper triangle only.
    iu, ju = np.triu_indices(m)
    outer = np.zeros((R, len(iu)))
    step = max(1, 4_000_000 // len(iu))
    for p0 in range(0, n_pairs, step):
        block = Zp[p0 : p0 + step]
        outer += w[:, p0 : p0 + step] @ (block[:, iu] * block[:, ju])
    A = np.zeros((R, m, m))
    A[:, iu, ju] = 2.0 * outer
    A[:, ju, iu] = 2.0 * outer
    s = w @ Zp  # (R, M)
    A += w.sum(axis=1)[:, None, None] - s[:, :, None] - s[:, None, :]
    kkt = np.zeros((R, m + 1, m + 1))
    kkt[:, :m, :m] = A + Zf.T @ Zfw
    kkt[:, :m, m] = 1.0
    kkt[:, m, :m] = 1.0

    y_side, y_other = Y[:, fixed::2], Y[:, fixed + 1 :: 2]  # (n, P) each
    Zpw = (w.T[:, :, None] * Zp[:, None, :]).reshape(n_pairs, R * m)
    errors = np.empty((n, m))
    rows_per_block = max(1, 4_000_000 // (R * m))
    for i0 in range(0, n, rows_per_block):
        ctx.check_cancelled()
        sl = slice(i0, min(n, i0 + rows_per_block))
        b = sl.stop - sl.start
        # sum_p w_rp (y_S z + y_notS (1 - z)) = sum_p w_rp (y_S - y_notS) z + (sum_p w_rp y_notS) 1
        G = ((y_side[sl] - y_other[sl]) @ Zpw).reshape(b, R, m) + (y_other[sl] @ w.T)[:, :, None]
        G += (Y[sl, :fixed] @ Zfw)[:, None, :]
        rhs = np.empty((R, m + 1, b))
        rhs[:, :m, :] = G.transpose(1, 2, 0)
        rhs[:, m, :] = delta[sl]
        try:
            sol = np.linalg.solve(kkt, rhs)
        except np.linalg.LinAlgError:
            # A replicate can miss so many pairs that its system is singular: least norm for those.
            sol = np.stack([np.linalg.lstsq(k, r, rcond=None)[0] for k, r in zip(kkt, rhs)])
        errors[sl] = sol[:, :m, :].std(axis=0, ddof=1).T
        ctx.progress(0.95 + 0.05 * sl.stop / n, "KernelSHAP: bootstrapping standard errors")
    return errors


# -- the analysis ----------------------------------------------------------------------


def background_for(inputs: AuditInputs, *, ctx: JobContext, background_size: int = 100) -> Background:
    """The weighted background :func:`run` uses: ``inputs.X`` summarised to ``background_size`` rows."""
    if not _is_whole(background_size) or background_size < 1:
        raise AnalysisError(
            f"KernelSHAP's background_size must be a whole number of at least 1, not {background_size!r}."
        )
    return summarise_background(
        inputs.X,
        size=int(background_size),
        rng=ctx.rng("background"),
        source=_source(inputs),
        check_cancelled=ctx.check_cancelled,
    )


def _source(inputs: AuditInputs) -> str:
    return inputs.dataset.name if inputs.dataset is not None else "the data"


def _positions(rows: Sequence[int] | np.ndarray | None, n_rows: int, source: str) -> np.ndarray:
    if rows is None:
        return np.arange(n_rows, dtype=np.int64)
    positions = np.asarray(rows)
    if positions.ndim != 1 or (positions.size and not np.issubdtype(positions.dtype, np.integer)):
        raise AnalysisError(f"The rows to explain in {source} must be a list of whole row numbers.")
    positions = positions.astype(np.int64)
    if positions.size == 0:
        raise AnalysisError(f"No rows of {source} were chosen to explain.")
    bad = positions[(positions < 0) | (positions >= n_rows)]
    if bad.size:
        raise AnalysisError(f"Row {int(bad[0])} is outside {source}, which has {n_rows} rows (numbered from 0).")
    return positions


def _output_fn(model: Model, class_index: int | None) -> Callable[[pd.DataFrame], np.ndarray]:
    if class_index is None:
        return model.predict

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return model.predict(frame)[:, class_index]

    return predict


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    rows: Sequence[int] | None = None,
    n_coalitions: int | str = "auto",
    background_size: int = 100,
    klass: Any | None = None,
    l1_reg: bool | str = False,
    link: str = "identity",
    chunk_rows: int = 1_000_000,
) -> AttributionResult:
    """Explain rows of the data with KernelSHAP over the raw input columns.

    Parameters
    ----------
    inputs: data, roles and model.
    ctx: seed, progress and cancel.
    rows: 0-based row positions to explain; ``None`` explains every row (the
        model then sees ``n_rows x n_coalitions x background_size`` rows, so
        choose rows for large tables).
    n_coalitions: coalition budget per row; ``"auto"`` is ``2 M + 2048``.
        Every coalition is enumerated (exact Shapley values) when ``2^M - 2``
        fit the budget.
    background_size: the background is every row of the data, summarised by
        weighted k-means to this many rows when larger.
    klass: class whose probability is explained (default: the positive class
        of a binary model, the first of a multiclass one).
    l1_reg: only ``False`` (no feature selection) is supported.
    link: ``"identity"`` (probabilities or values) or ``"logit"`` (log-odds;
        classification only).
    chunk_rows: most rows per model call.

    Returns
    -------
    AttributionResult
        ``values`` ``(n, F)``, ``base_values`` ``(n,)`` (``g(E[f])``),
        ``predictions`` ``(n,)``; ``quality["additivity_error"]`` and
        ``quality["max_standard_error"]`` per row; ``extras["standard_errors"]``
        ``(n, F)``.
    """
    started_at = utc_now()
    started = time.perf_counter()
    source = _source(inputs)
    model = inputs.model
    if l1_reg is not False:
        raise AnalysisError(f"KernelSHAP supports l1_reg=False only (no feature selection), not {l1_reg!r}.")
    if link not in LINKS:
        raise AnalysisError(f"KernelSHAP's link must be one of {', '.join(LINKS)}, not {link!r}.")
    if link == "logit" and model.task is Task.REGRESSION:
        raise AnalysisError(f"The logit link needs a classifier, but the model {model.name} is a regressor.")
    class_index, output_name = resolve_output(model, klass)
    X = inputs.X
    positions = _positions(rows, len(X), source)
    ctx.progress(0.0, "KernelSHAP: summarising the background")
    background = background_for(inputs, ctx=ctx, background_size=background_size)
    ctx.check_cancelled()
    estimate = kernel_shap(
        X.iloc[positions].reset_index(drop=True),
        background,
        _output_fn(model, class_index),
        ctx=ctx.sub(0.02, 1.0),
        n_coalitions=n_coalitions,
        link=link,
        chunk_rows=chunk_rows,
    )

    n = len(positions)
    base_values = np.full(n, estimate.base_value)
    additivity = np.abs(base_values + estimate.values.sum(axis=1) - estimate.predictions)
    max_se = estimate.standard_errors.max(axis=1) if estimate.values.shape[1] else np.zeros(n)
    warnings: list[str] = []
    if not estimate.well_posed:
        warnings.append(
            f"KernelSHAP's {estimate.n_coalitions} coalitions do not determine the values of "
            f"{estimate.n_varying} features uniquely; raise n_coalitions."
        )
    if link == "logit":
        output_name = f"log-odds of {output_name}"
        space = "log-odds"
    else:
        space = "value" if model.task is Task.REGRESSION else "probability"
    parameters = {
        "rows": None if rows is None else positions.tolist(),
        "n_coalitions": n_coalitions,
        "background_size": background_size,
        "klass": klass,
        "l1_reg": l1_reg,
        "link": link,
        "chunk_rows": chunk_rows,
    }
    return AttributionResult(
        provenance=inputs.provenance(
            method="kernelshap", parameters=parameters, ctx=ctx, started_at=started_at, warnings=warnings
        ),
        method="kernelshap",
        feature_names=tuple(X.columns),
        rows=positions,
        values=estimate.values,
        base_values=base_values,
        predictions=estimate.predictions,
        output_name=output_name,
        output_space=space,
        class_index=class_index,
        quality={"additivity_error": additivity, "max_standard_error": max_se},
        summary={
            "max_additivity_error": float(additivity.max(initial=0.0)),
            "max_standard_error": float(max_se.max(initial=0.0)),
            "n_coalitions": float(estimate.n_coalitions),
            "exact": float(estimate.exact),
            "n_varying_features": float(estimate.n_varying),
            "background_rows": float(background.size),
            "model_rows": float(estimate.n_model_rows),
        },
        extras={"standard_errors": estimate.standard_errors},
        compute_seconds=time.perf_counter() - started,
    )


METHOD = Method(
    name="kernelshap",
    title="KernelSHAP (any model)",
    short_title="Kernel SHAP",
    run=run,
    summary=(
        "Model-agnostic Shapley values of each raw input column: the model is averaged over a weighted "
        "background with coalitions of columns taken from the explained row, and a Shapley-kernel "
        "weighted regression (exact when all coalitions fit the budget) splits the prediction's "
        "difference from the average exactly among the columns, with bootstrap standard errors."
    ),
    description=(
        "Kernel SHAP estimates Shapley values by evaluating the model on coalitions of features, filling "
        "absent features from background rows, and solving a weighted least-squares problem. Its standard "
        "errors measure the sampling uncertainty of each value."
    ),
    params=(
        rows_param(),
        Param(
            "n_coalitions",
            "int_or_auto",
            "auto",
            label="Coalitions per row",
            minimum=2,
            basic=True,
            auto="2 × features + 2048",
            help="Coalition budget per row; every coalition is enumerated when they all fit.",
        ),
        Param(
            "background_size",
            "int",
            100,
            label="Background rows",
            minimum=1,
            basic=True,
            unit="rows",
            help="The data summarised by weighted k-means to this many background rows.",
        ),
        class_param(),
        Param(
            "l1_reg",
            "bool",
            False,
            label="L1 feature selection",
            hidden=True,
            help="Only false is supported (no feature selection).",
        ),
        Param(
            "link",
            "choice",
            "identity",
            label="Link",
            choices=LINKS,
            help="identity (probabilities or values) or logit (log-odds; classifiers only).",
        ),
        Param(
            "chunk_rows",
            "int",
            1_000_000,
            label="Rows per model call",
            minimum=1,
            unit="rows",
            help="Most rows in one model call.",
        ),
    ),
    result=AttributionResult,
    needs=frozenset({"rows", "background"}),
    rows_default="first:20",
    view="shap",
    samples="n_coalitions",
)
