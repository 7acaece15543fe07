"""LIME's training statistics, perturbation sampling and interpretable representation.

Private kernels of :mod:`engine.explain.lime` (see its docstring for the
semantics reproduced from ``lime``): per-feature bin tables fitted on the
training data, perturbed rows drawn from them, the model-input frame of those
rows, the 0/1 (or standardised) interpretable samples and lime's kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from engine.inputs import AuditInputs
from engine.schema import ColumnKind

_LIME_STD_EPSILON = 1e-11  # lime adds this to every bin's standard deviation


# -- training statistics -----------------------------------------------------------


@dataclass(frozen=True)
class _Stats:
    """Per-feature training statistics, laid out for vectorised sampling.

    ``Fn`` numeric and ``Fc`` categorical features; ``B`` is the widest numeric
    bin table (regular bins, then one "missing" bin, padded with zero mass).
    """

    names: tuple[str, ...]
    num_idx: np.ndarray  # (Fn,) positions among the features
    cat_idx: np.ndarray  # (Fc,)
    cum: np.ndarray  # (Fn, B) cumulative bin probabilities; exactly 1 from the last bin with mass on
    # A value drawn in a bin is loc + spread * z, z ~ N(0, 1) truncated to [za, zb]: the bin's
    # mean and std (+ lime's epsilon) with its bounds standardised; a bin whose bounds
    # coincide has spread 0 and loc = that value; the missing bin has loc NaN.
    loc: np.ndarray  # (Fn, B)
    spread: np.ndarray  # (Fn, B)
    za: np.ndarray  # (Fn, B)
    zb: np.ndarray  # (Fn, B)
    edges: tuple[np.ndarray, ...]  # per numeric feature, its unique cut points
    mu: np.ndarray  # (Fn,) mean of non-missing values (continuous mode)
    scale: np.ndarray  # (Fn,) population std, 1 where constant (scikit-learn's StandardScaler)
    num_missing: np.ndarray  # (Fn,) share of missing values
    cat_values: tuple[Any, ...]  # per categorical feature, an array of its distinct values (original dtype)
    cat_cum: tuple[np.ndarray, ...]  # per categorical feature, cumulative probabilities, last slot = missing

    @property
    def n_features(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class _Instances:
    """The explained rows in the terms the sampler compares against."""

    bins: np.ndarray  # (n, Fn) int8 numeric bin of each instance (missing bin when missing)
    z: np.ndarray  # (n, Fn) standardised numeric value, 0 where missing
    codes: np.ndarray  # (n, Fc) categorical codes, -1 for missing


def _is_categorical(series: pd.Series, kind: ColumnKind | None) -> bool:
    if kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
        return True
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return True
    return not pd.api.types.is_numeric_dtype(dtype)


def _column_kinds(inputs: AuditInputs) -> dict[str, ColumnKind]:
    if inputs.dataset is None:
        return {}
    return {c.name: c.kind for c in inputs.dataset.schema.columns}


def _fit_stats(
    X: pd.DataFrame, rows: np.ndarray, *, kinds: dict[str, ColumnKind], percentiles: tuple[float, ...]
) -> tuple[_Stats, _Instances]:
    """Training statistics of ``X`` (all rows) and the encoding of ``X.iloc[rows]``."""
    names = tuple(str(c) for c in X.columns)
    num_idx: list[int] = []
    cat_idx: list[int] = []
    for j, name in enumerate(X.columns):
        (cat_idx if _is_categorical(X.iloc[:, j], kinds.get(str(name))) else num_idx).append(j)

    n_bins_max = len(percentiles) + 2  # regular bins + the missing bin
    fn = len(num_idx)
    cum = np.ones((fn, n_bins_max))
    lo = np.full((fn, n_bins_max), np.nan)
    hi = np.full((fn, n_bins_max), np.nan)
    mean = np.zeros((fn, n_bins_max))
    sd = np.full((fn, n_bins_max), _LIME_STD_EPSILON)
    edges: list[np.ndarray] = []
    mu = np.zeros(fn)
    scale = np.ones(fn)
    num_missing = np.zeros(fn)
    inst_bins = np.zeros((len(rows), fn), dtype=np.int64)
    inst_z = np.zeros((len(rows), fn))
    for k, j in enumerate(num_idx):
        values = X.iloc[:, j].to_numpy(dtype=np.float64, na_value=np.nan)
        present = np.isfinite(values)
        observed = values[present]
        num_missing[k] = 1.0 - observed.size / max(values.size, 1)
        x_inst = values[rows]
        if observed.size == 0:
            # Nothing to learn: the column is drawn missing, which is what the data holds.
            edges.append(np.zeros(0))
            cum[k, :] = 1.0
            inst_bins[:, k] = 0
            continue
        cuts = np.unique(np.percentile(observed, percentiles))
        edges.append(cuts)
        q = cuts.size
        which = np.searchsorted(cuts, observed, side="left")
        counts = np.bincount(which, minlength=q + 1).astype(np.float64)
        sums = np.bincount(which, weights=observed, minlength=q + 1)
        bin_mean = np.divide(sums, counts, out=np.zeros(q + 1), where=counts > 0)
        sq = np.bincount(which, weights=(observed - bin_mean[which]) ** 2, minlength=q + 1)
        bin_sd = np.sqrt(np.divide(sq, counts, out=np.zeros(q + 1), where=counts > 0))
        probs = np.zeros(n_bins_max)
        probs[: q + 1] = counts / values.size
        probs[q + 1] = (values.size - observed.size) / values.size
        c = np.cumsum(probs)
        # Float round-off must never let a draw land in a bin with no mass.
        c[int(np.flatnonzero(probs > 0)[-1]) :] = 1.0
        cum[k] = c
        lo[k, : q + 1] = np.concatenate(([observed.min()], cuts))
        hi[k, : q + 1] = np.concatenate((cuts, [observed.max()]))
        mean[k, : q + 1] = bin_mean
        sd[k, : q + 1] = bin_sd + _LIME_STD_EPSILON
        mu[k] = observed.mean()
        std = observed.std()
        scale[k] = std if std > 0 else 1.0
        inst_present = np.isfinite(x_inst)
        inst_bins[:, k] = np.where(inst_present, np.searchsorted(cuts, np.nan_to_num(x_inst), side="left"), q + 1)
        inst_z[:, k] = np.where(inst_present, (np.nan_to_num(x_inst) - mu[k]) / scale[k], 0.0)

    cat_values: list[Any] = []
    cat_cum: list[np.ndarray] = []
    inst_codes = np.zeros((len(rows), len(cat_idx)), dtype=np.int64)
    for k, j in enumerate(cat_idx):
        column = X.iloc[:, j]
        try:
            codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=True)
        except TypeError:
            # Mixed types (e.g. strings and numbers) cannot be ordered; order only sets the draw table.
            codes, uniques = pd.factorize(column, sort=False, use_na_sentinel=True)
        n_values = len(uniques)
        counts = np.bincount(np.where(codes < 0, n_values, codes), minlength=n_values + 1).astype(np.float64)
        c = np.cumsum(counts / counts.sum())
        c[int(np.flatnonzero(counts > 0)[-1]) :] = 1.0
        cat_values.append(uniques.array if isinstance(uniques, pd.Index) else uniques)
        cat_cum.append(c)
        inst_codes[:, k] = codes[rows]

    spread_ok = np.isfinite(lo) & (lo < hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        za = np.where(spread_ok, (lo - mean) / sd, -np.inf)
        zb = np.where(spread_ok, (hi - mean) / sd, np.inf)
    stats = _Stats(
        names=names,
        num_idx=np.asarray(num_idx, dtype=np.int64),
        cat_idx=np.asarray(cat_idx, dtype=np.int64),
        cum=cum,
        loc=np.where(spread_ok, mean, lo),
        spread=np.where(spread_ok, sd, 0.0),
        za=za,
        zb=zb,
        edges=tuple(edges),
        mu=mu,
        scale=scale,
        num_missing=num_missing,
        cat_values=tuple(cat_values),
        cat_cum=tuple(cat_cum),
    )
    return stats, _Instances(bins=inst_bins.astype(np.int8), z=inst_z, codes=inst_codes)


# -- sampling ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Samples:
    """Perturbed rows (``S`` of them) in raw and interpretable terms, feature-major.

    Feature-major arrays make every model-input column and every row of the
    interpretable matrix ``Zt`` contiguous.
    """

    raw_num: np.ndarray  # (Fn, S) numeric values for the model (NaN = missing)
    codes: np.ndarray  # (Fc, S) categorical codes, -1 = missing
    rep_num: np.ndarray  # (Fn, S) bins (int8, discretised) or standardised values (continuous)
    n_rows: int


def _draw_truncated_normal(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Standard normal draws truncated to ``[a, b]`` (arrays of one shape, ``a <= b``).

    Exact rejection from ``N(0, 1)``: every bin built from data holds its own
    mean and spans at least two of its standard deviations, so a draw is
    accepted with probability above 0.47 and the loop ends after a few rounds.
    """
    z = rng.standard_normal(a.shape)
    flat_z, flat_a, flat_b = z.reshape(-1), a.reshape(-1), b.reshape(-1)
    todo = np.flatnonzero((flat_z < flat_a) | (flat_z > flat_b))
    for _ in range(64):
        if todo.size == 0:
            return z
        fresh = rng.standard_normal(todo.size)
        ok = (fresh >= flat_a[todo]) & (fresh <= flat_b[todo])
        flat_z[todo[ok]] = fresh[ok]
        todo = todo[~ok]
    if todo.size:
        # Only reachable for a bin far from its own mean; the inverse CDF is exact there too.
        fa, fb = ndtr(flat_a[todo]), ndtr(flat_b[todo])
        flat_z[todo] = np.clip(ndtri(fa + rng.random(todo.size) * (fb - fa)), flat_a[todo], flat_b[todo])
    return z


def _draw_samples(
    stats: _Stats,
    n_rows: int,
    rng: np.random.Generator,
    *,
    discretize: bool,
    out: _Samples | None = None,
    at: int = 0,
) -> _Samples:
    """Draw ``n_rows`` perturbed rows from lime's sampling distribution.

    With ``out``, the rows are written into its columns ``[at, at + n_rows)``
    (so a block of instances needs no concatenation) and ``out`` is returned.
    """
    fn, fc = stats.num_idx.size, stats.cat_idx.size
    if out is None:
        out = _Samples(
            raw_num=np.empty((fn, n_rows)),
            codes=np.empty((fc, n_rows), dtype=np.int64),
            rep_num=np.empty((fn, n_rows), dtype=np.int8 if discretize else np.float64),
            n_rows=n_rows,
        )
        at = 0
    cols = slice(at, at + n_rows)
    if discretize:
        # Inverse CDF on the bin table, every numeric feature at once (bins fit in int8).
        u_num = rng.random((fn, n_rows))
        bins = np.zeros((fn, n_rows), dtype=np.int8)
        for edge in range(stats.cum.shape[1] - 1):
            bins += u_num >= stats.cum[:, edge : edge + 1]
        flat = bins + (np.arange(fn) * stats.cum.shape[1])[:, None]
        z = _draw_truncated_normal(np.take(stats.za, flat), np.take(stats.zb, flat), rng)
        z *= np.take(stats.spread, flat)
        z += np.take(stats.loc, flat)
        out.raw_num[:, cols] = z
        out.rep_num[:, cols] = bins
    else:
        z = rng.standard_normal((fn, n_rows))
        out.raw_num[:, cols] = stats.mu[:, None] + stats.scale[:, None] * z
        out.rep_num[:, cols] = z
    u_cat = rng.random((fc, n_rows))
    for k in range(fc):
        cum = stats.cat_cum[k]
        drawn = np.searchsorted(cum[:-1], u_cat[k], side="right")
        out.codes[k, cols] = np.where(drawn == cum.size - 1, -1, drawn)
    return out


def _frame(stats: _Stats, samples: _Samples, start: int, stop: int) -> pd.DataFrame:
    """Raw model input for sample rows ``[start, stop)``, built column by column."""
    columns: dict[str, Any] = {}
    num_pos = {int(j): k for k, j in enumerate(stats.num_idx)}
    cat_pos = {int(j): k for k, j in enumerate(stats.cat_idx)}
    for j, name in enumerate(stats.names):
        if j in num_pos:
            columns[name] = samples.raw_num[num_pos[j], start:stop]
        else:
            k = cat_pos[j]
            columns[name] = stats.cat_values[k].take(samples.codes[k, start:stop], allow_fill=True)
    return pd.DataFrame(columns, columns=list(stats.names))


# -- interpretable representation and kernel ---------------------------------------


def _slot(idx: np.ndarray) -> slice | np.ndarray:
    """``idx`` as a slice when it is a run of consecutive features, so writes into it are views."""
    if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        return slice(int(idx[0]), int(idx[0]) + idx.size)
    return idx


def _put_equal(Zt: np.ndarray, idx: np.ndarray, drawn: np.ndarray, own: np.ndarray) -> None:
    """``Zt[:, idx, 1:] = (drawn == own)`` as 0/1, written in place when ``idx`` is a run."""
    slot = _slot(idx)
    if isinstance(slot, slice):
        np.equal(drawn, own, out=Zt[:, slot, 1:], casting="unsafe")
    else:
        Zt[:, slot, 1:] = drawn == own


def _interpretable(
    stats: _Stats, inst: _Instances, block: slice, samples: _Samples, *, shared: bool, discretize: bool
) -> np.ndarray:
    """The ``(c, F, N)`` feature-major interpretable samples; sample 0 is the instance.

    ``samples`` holds ``S`` rows serving every instance of ``block``
    (``shared``) or ``c * S`` rows, instance after instance.
    """
    c = len(range(*block.indices(inst.bins.shape[0])))
    S = samples.n_rows if shared else samples.n_rows // c
    Zt = np.empty((c, stats.n_features, S + 1))
    # Discretised and categorical features are indicators: the instance is in its own bin.
    Zt[:, :, 0] = 1.0
    if stats.num_idx.size:
        rep = samples.rep_num.reshape(-1, 1 if shared else c, S).transpose(1, 0, 2)  # (1 or c, Fn, S)
        if discretize:
            _put_equal(Zt, stats.num_idx, rep, inst.bins[block][:, :, None])
        else:
            Zt[:, stats.num_idx, 1:] = rep
            Zt[:, stats.num_idx, 0] = inst.z[block]
    if stats.cat_idx.size:
        codes = samples.codes.reshape(-1, 1 if shared else c, S).transpose(1, 0, 2)
        _put_equal(Zt, stats.cat_idx, codes, inst.codes[block][:, :, None])
    return Zt


def _kernel(Zt: np.ndarray, width: float, *, indicator: np.ndarray) -> np.ndarray:
    """lime's kernel ``sqrt(exp(-d**2 / width**2))`` of the euclidean distance to sample 0; ``(c, N)``.

    ``indicator`` ``(F,)`` marks 0/1 features, whose value at sample 0 is 1,
    so their squared difference is ``1 - z``: a plain sum, no temporaries.
    """
    n_ind = int(indicator.sum())
    if n_ind == Zt.shape[1]:
        d2 = n_ind - Zt.sum(axis=1)
    else:
        d2 = n_ind - Zt[:, indicator].sum(axis=1)
        cont = Zt[:, ~indicator]
        d2 += ((cont - cont[:, :, :1]) ** 2).sum(axis=1)
    out: np.ndarray = np.exp(-d2 / (2.0 * width**2))
    return out
