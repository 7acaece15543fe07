"""LIME for tabular data, batched across instances, with ``lime``'s semantics.

What is reproduced from ``lime`` 0.2.0.1's ``LimeTabularExplainer`` (default
settings, ``sample_around_instance=False``):

* **Training statistics** come from every row of the dataset's feature columns.
  Numeric columns are cut at their quartiles (or deciles); each bin keeps its
  training frequency, bounds (data minimum / cut points / data maximum), mean
  and standard deviation.  Categorical columns (strings, pandas categories,
  booleans, or columns the dataset's schema marks categorical) keep the
  frequency of each value.
* **Sampling.**  A perturbed row draws, per numeric column, a bin with its
  training frequency and then a value from a normal with that bin's mean and
  standard deviation truncated to the bin; per categorical column, a value with
  its training frequency.  With ``discretize_continuous=False`` numeric values
  are ``mean + std * N(0, 1)`` instead.  In both cases the draw does not depend
  on the explained row (lime centres on the training data), which is what makes
  the ``shared`` design exact: one set of perturbed rows serves every instance.
  As in lime, the first of ``num_samples`` rows is the instance itself.
* **Interpretable representation.**  Discretised: 1 where the sample falls in
  the instance's bin (numeric) or has the instance's value (categorical), else
  0.  Continuous: the standardised value ``(x - mean) / std`` for numeric
  columns, the same 0/1 indicator for categorical ones.
* **Kernel.**  ``sqrt(exp(-d**2 / width**2))`` of the euclidean distance ``d``
  between a sample and the instance in that representation, with
  ``width = 0.75 * sqrt(F)`` by default (``F`` = number of feature columns).
* **Surrogate.**  Weighted ridge (``alpha = 1``) with a weighted-mean-centred
  intercept, exactly what scikit-learn's ``Ridge(alpha=1).fit(..., sample_weight=w)``
  solves; the score is the weighted R² on the same samples (lime's ``score``).
  Feature selection follows lime's ``"auto"`` rule (forward selection when
  ``num_features <= 6``, else the largest ``|coef * x0|`` of a ``alpha = 0.01``
  ridge).  By default ``num_features`` is every column, so every original
  feature gets one coefficient and selection changes nothing (lime's own default
  is 10).

Samples are reduced to weighted moments block by block (bounded memory), and
all surrogates are then fitted in one batched solve of stacked normal
equations, ``(Zc' W Zc + alpha I) beta = Zc' W yc``, with ``numpy.linalg.solve``
on an ``(n_instances, F, F)`` stack (split into a few stacks only when that
stack alone would exceed ~400 MB).  The model is called on large chunks of
perturbed rows built column by column.

Deliberate differences from lime, each for a stated reason:

* Missing values (lime fails on them).  A numeric column's cut points and bin
  statistics use its non-missing values; "missing" is one more bin, drawn with
  its training frequency and given to the model as NaN, and it counts as the
  instance's bin when the instance is missing too.  A categorical column treats
  missing as one more value.  In continuous mode numeric values are never
  drawn missing and a missing instance value is placed at the mean (0 in the
  standardised space).  Infinite numeric values count as missing.
* A bin whose lower and upper bound coincide (for example a column whose first
  quartile equals its minimum) yields that value; lime yields 0 there (it
  returns the standardised bound by mistake).
* The truncated normal is drawn by exact rejection from ``N(0, 1)`` rather than
  scipy's ``truncnorm``: same distribution, far cheaper.
* Only the ``"quartile"`` and ``"decile"`` discretisers and the ``"auto"``,
  ``"forward_selection"``, ``"highest_weights"`` and ``"none"`` selections exist
  (no label-driven entropy discretiser, no LARS path).

Fidelity at the explained row: the weighted R² says how well the surrogate
follows the model over the whole neighbourhood, where the explained row is one
sample of thousands, so a surrogate can score a high R² and still miss the
model at the row itself (a step in the model inside the row's bin).  Each row
is therefore also judged by the *prediction gap* ``|surrogate - model|`` at the
row, in the explained output's units (``quality["prediction_gap"]``).  For a
probability the gap is judged as it is (at most
:data:`FIDELITY_MAX_PROBABILITY_GAP`); for a value (regression) it is judged
relative to the standard deviation of the model's output over the row's
perturbed samples (``quality["output_spread"]``, at most
:data:`FIDELITY_MAX_RELATIVE_GAP` of it).  Those samples are drawn from the
training distribution, not around the row, so this spread estimates how much
the model's output varies over the data: a gap is large when it is a large
share of the model's whole range of answers.  A row is faithful when its R² is
at least :data:`FIDELITY_MIN_R2` and its gap is within the limit;
:func:`lime_fidelity` gives that verdict for one row and
:func:`lime_fidelity_warning` the sentence naming the rows that fail.  Results
saved before these keys existed are judged from ``local_prediction`` and
``predictions``; their regression gap is scaled by the spread of the model's
output over the explained rows (not judged when fewer than two rows or no spread).

Stability: ``stability_runs`` extra runs under ``ctx.sub(..., "stability", k)``
measure how much the explanation depends on the random draw: the mean pairwise
Jaccard index of the top-``k`` features by ``|coefficient|`` (``k = min(5, F)``)
and a coefficient spread ``sum_f sd_f / sum_f (|mean_f| + sd_f)`` in ``[0, 1]``.
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
from engine.explain._lime_fit import _Fit, _fit_surrogates, _Moments, _moments
from engine.explain._lime_sampling import (
    _column_kinds,
    _draw_samples,
    _fit_stats,
    _frame,
    _Instances,
    _interpretable,
    _kernel,
    _Samples,
    _Stats,
)
from engine.explain._predict import Pacer, predict_batched
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Model, Task
from engine.parallel import map_chunks
from engine.params import Param, class_param, rows_param
from engine.results import utc_now

__all__ = [
    "run",
    "METHOD",
    "SAMPLING_DESIGNS",
    "DISCRETIZERS",
    "FEATURE_SELECTIONS",
    "FIDELITY_MIN_R2",
    "FIDELITY_MAX_PROBABILITY_GAP",
    "FIDELITY_MAX_RELATIVE_GAP",
    "FidelityVerdict",
    "lime_fidelity",
    "lime_fidelity_warning",
]

SAMPLING_DESIGNS = ("shared", "independent")
DISCRETIZERS: dict[str, tuple[float, ...]] = {
    "quartile": (25.0, 50.0, 75.0),
    "decile": (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0),
}
FEATURE_SELECTIONS = ("auto", "forward_selection", "highest_weights", "none")

_TOP_K = 5
# Elements of one (instances, samples, features) float64 block in the ridge step (~32 MB).
_BLOCK_ELEMENTS = 4_000_000
# Most elements of the (instances, F, F) stack solved in one call (~400 MB); beyond it, a few groups.
_SOLVE_ELEMENTS = 50_000_000
_LOW_R2 = 0.25
# A surrogate is faithful at its row only when all three hold (one source for the engine, the GUI and the PDF).
FIDELITY_MIN_R2 = 0.5  # weighted R² on the row's neighbourhood
FIDELITY_MAX_PROBABILITY_GAP = 0.1  # |surrogate - model| at the row, for probabilities
FIDELITY_MAX_RELATIVE_GAP = 0.25  # the same gap for values, in standard deviations of the model's output
_MAX_NAMED_ROWS = 10  # rows listed by number in the result's warning
_MAX_DETAILED_ROWS = 3  # rows whose predictions the warning spells out


# -- model calls -------------------------------------------------------------------


class _Predictor:
    """The explained output of rows, in model calls of at most ``chunk_rows`` rows.

    Calls are paced by :func:`engine.explain._predict.predict_batched` (sized
    from the measured model speed, cancel checked between calls, the settled
    size sent as even chunks on the free cores); the pace learnt by one call
    carries over to the next.  Chunking only groups rows, it never changes a
    row's prediction, so results do not depend on it.
    """

    def __init__(self, model: Model, class_index: int | None, *, chunk_rows: int) -> None:
        self.model = model
        self.class_index = class_index
        self.pacer = Pacer(chunk_rows)

    @property
    def rows_called(self) -> int:
        return self.pacer.rows

    def __call__(
        self,
        build: Callable[[int, int], pd.DataFrame],
        n_rows: int,
        ctx: JobContext,
        on_rows: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """The explained output ``(n_rows,)`` for the rows ``build(start, stop)`` returns."""

        def call(start: int, stop: int) -> np.ndarray:
            pred = self.model.predict(build(start, stop))
            return pred if self.class_index is None else pred[:, self.class_index]

        out = predict_batched(call, n_rows, pacer=self.pacer, ctx=ctx, on_done=on_rows, dtype=np.float64)
        ctx.check_cancelled()
        return out


# -- one LIME pass over all instances ----------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    num_samples: int
    discretize: bool
    sampling: str
    kernel_width: float
    num_features: int
    feature_selection: str
    chunk_rows: int


def _explain_all(
    stats: _Stats,
    inst: _Instances,
    rows: np.ndarray,
    f_inst: np.ndarray,
    predictor: _Predictor,
    settings: _Settings,
    ctx: JobContext,
) -> _Fit:
    """One LIME pass (one random draw) over every instance.

    Samples are turned into moments block by block (bounded memory), then every
    surrogate is solved in one batched call; only when the ``(n, F, F)`` stack
    itself would be too large are instances solved in a few groups.
    """
    n = rows.size
    f = stats.n_features
    S = settings.num_samples - 1
    N = S + 1
    per_block = max(1, min(n, _BLOCK_ELEMENTS // (N * f)))
    if settings.sampling == "independent":
        per_block = max(1, min(per_block, settings.chunk_rows // S))
    per_group = max(per_block, min(n, _SOLVE_ELEMENTS // (f * f)))
    indicator = np.ones(f, dtype=bool)
    if not settings.discretize:
        indicator[stats.num_idx] = False

    shared_samples: _Samples | None = None
    y_shared = np.zeros(0)
    output_sd = np.empty(n)
    if settings.sampling == "shared":
        drawn = _draw_samples(stats, S, ctx.rng("lime", "shared"), discretize=settings.discretize)
        shared_samples = drawn
        ctx.progress(0.0, "Predicting perturbed rows")
        y_shared = predictor(
            lambda a, b: _frame(stats, drawn, a, b),
            S,
            ctx,
            lambda done: ctx.progress(0.5 * done / S, "Predicting perturbed rows"),
        )
        done_at, span = 0.5, 0.5
    else:
        done_at, span = 0.0, 1.0

    def block_moments(start: int, stop: int) -> _Moments:
        c = stop - start
        if shared_samples is not None:
            samples, y_s = shared_samples, y_shared[None, :]
        else:
            # Fresh draws per instance from a stream keyed by its row, so a row's
            # explanation does not depend on which other rows are explained with it.
            samples = _Samples(
                raw_num=np.empty((stats.num_idx.size, c * S)),
                codes=np.empty((stats.cat_idx.size, c * S), dtype=np.int64),
                rep_num=np.empty((stats.num_idx.size, c * S), dtype=np.int8 if settings.discretize else np.float64),
                n_rows=c * S,
            )

            def draw(i: int) -> None:  # each instance fills its own columns, so instances can run at once
                rng = ctx.rng("lime", "independent", int(rows[start + i]))
                _draw_samples(stats, S, rng, discretize=settings.discretize, out=samples, at=i * S)

            for _ in map_chunks(draw, range(c), ctx=ctx):
                pass

            def report(done: int) -> None:
                ctx.progress((start + c * done / (c * S)) / n, f"Explaining rows {start + 1} to {stop} of {n}")

            y_s = predictor(lambda a, b: _frame(stats, samples, a, b), c * S, ctx, report).reshape(c, S)
        Zt = _interpretable(
            stats, inst, slice(start, stop), samples, shared=shared_samples is not None, discretize=settings.discretize
        )
        y = np.empty((c, N))
        y[:, 0] = f_inst[start:stop]
        y[:, 1:] = y_s
        output_sd[start:stop] = y.std(axis=1)
        return _moments(Zt, _kernel(Zt, settings.kernel_width, indicator=indicator), y, consume=True)

    parts: list[_Fit] = []
    for g_start in range(0, n, per_group):
        g_stop = min(n, g_start + per_group)
        moments = _Moments.empty(g_stop - g_start, f)
        for start in range(g_start, g_stop, per_block):
            ctx.check_cancelled()
            stop = min(g_stop, start + per_block)
            moments.put(start - g_start, block_moments(start, stop))
            ctx.progress(done_at + span * stop / n, f"Weighed the samples of {stop} of {n} rows")
        ctx.check_cancelled()
        parts.append(
            _fit_surrogates(moments, num_features=settings.num_features, feature_selection=settings.feature_selection)
        )
    return _Fit(
        coef=np.concatenate([p.coef for p in parts]),
        intercept=np.concatenate([p.intercept for p in parts]),
        r2=np.concatenate([p.r2 for p in parts]),
        local=np.concatenate([p.local for p in parts]),
        output_sd=output_sd,
    )


# -- stability -----------------------------------------------------------------------


def _stability(coefs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` Jaccard and coefficient spread across runs.

    Parameters
    ----------
    coefs: ``(K, n, F)`` coefficients from ``K >= 2`` runs.
    k: size of the top set (by ``|coef|``, ties to the lower feature index).

    Returns
    -------
    ``(n,)`` mean pairwise Jaccard index, ``(n,)`` spread
    ``sum_f sd_f / sum_f (|mean_f| + sd_f)`` (0 when the runs agree), and the
    ``(n, F)`` standard deviation (ddof 1) across runs.
    """
    K, n, f = coefs.shape
    order = np.argsort(-np.abs(coefs), axis=2, kind="stable")[:, :, :k]
    top = np.zeros(coefs.shape, dtype=bool)
    np.put_along_axis(top, order, True, axis=2)
    inter = np.einsum("anf,bnf->abn", top.astype(np.float64), top.astype(np.float64))
    pairs = np.triu_indices(K, 1)
    shared = inter[pairs[0], pairs[1]]  # (pairs, n)
    jaccard = (shared / (2 * k - shared)).mean(axis=0)
    sd = coefs.std(axis=0, ddof=1)
    denom = (np.abs(coefs.mean(axis=0)) + sd).sum(axis=1)
    spread = np.divide(sd.sum(axis=1), denom, out=np.zeros(n), where=denom > 0)
    return jaccard, spread, sd


# -- fidelity at the explained row -------------------------------------------------------


@dataclass(frozen=True)
class _Judgement:
    """The fidelity figures of ``n`` explained rows, all ``(n,)``."""

    r2: np.ndarray
    model: np.ndarray  # the model's output at the row
    local: np.ndarray  # the surrogate's prediction at the row (NaN when not recorded)
    gap: np.ndarray  # |local - model|, output units
    scaled: np.ndarray  # the judged gap: ``gap`` for probabilities, ``gap / spread`` for values; NaN: not judged
    r2_poor: np.ndarray  # bool
    gap_poor: np.ndarray  # bool
    probability: bool

    @property
    def poor(self) -> np.ndarray:
        out: np.ndarray = self.r2_poor | self.gap_poor
        return out

    @property
    def limit(self) -> float:
        return FIDELITY_MAX_PROBABILITY_GAP if self.probability else FIDELITY_MAX_RELATIVE_GAP


def _judge(
    r2: np.ndarray, model: np.ndarray, local: np.ndarray, spread: np.ndarray, *, probability: bool
) -> _Judgement:
    """Judge every row at once; ``spread`` (the model's output spread) scales the gap of value outputs only."""
    r2 = np.asarray(r2, dtype=np.float64)
    model = np.asarray(model, dtype=np.float64)
    local = np.asarray(local, dtype=np.float64)
    gap = np.abs(local - model)
    if probability:
        scaled = gap
    else:
        spread = np.asarray(spread, dtype=np.float64)
        # A model whose output does not vary at all still has a gap of 0 when the surrogate matches it.
        tiny = gap <= 1e-9 * (1.0 + np.abs(model))
        with np.errstate(divide="ignore", invalid="ignore"):
            flat = np.where(tiny, 0.0, np.inf)
            scaled = np.where(spread > 0, gap / spread, np.where(np.isfinite(spread), flat, np.nan))
        scaled = np.where(np.isnan(gap), np.nan, scaled)
    limit = FIDELITY_MAX_PROBABILITY_GAP if probability else FIDELITY_MAX_RELATIVE_GAP
    with np.errstate(invalid="ignore"):
        gap_poor = np.nan_to_num(scaled, nan=0.0, posinf=np.inf) > limit
        r2_poor = ~(r2 >= FIDELITY_MIN_R2)  # an unrecorded (NaN) R² cannot vouch for the surrogate
    return _Judgement(
        r2=r2,
        model=model,
        local=local,
        gap=gap,
        scaled=scaled,
        r2_poor=r2_poor,
        gap_poor=gap_poor,
        probability=probability,
    )


def _judge_result(result: AttributionResult) -> _Judgement:
    """Judge a LIME result's rows from what it holds (results saved before the gap existed included)."""
    n = len(result.rows)
    quality, extras = result.quality, result.extras
    nan = np.full(n, np.nan)
    local = quality.get("local_prediction", extras.get("local_predictions", nan))
    model = np.asarray(result.predictions, dtype=np.float64)
    if model.shape != (n,):
        model = nan
    probability = result.output_space == "probability"
    spread = quality.get("output_spread")
    if spread is None:
        # Saved before the spread was recorded: the spread of the model's output over the explained rows.
        finite = model[np.isfinite(model)]
        spread = np.full(n, float(np.std(finite)) if finite.size >= 2 else np.nan)
    return _judge(quality.get("r2", nan), model, local, spread, probability=probability)


def _fmt(x: float) -> str:
    """A figure for a sentence: three significant digits, thousands separated; "not recorded" for NaN."""
    if not math.isfinite(x):
        return "not recorded"
    x = x + 0.0
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _naming(word: str, output_name: str) -> str:
    """`` for P(1)`` after "predicts"; nothing for a regressor's plain "prediction", which would only repeat it."""
    return "" if output_name in ("", "prediction") else f"{word} {output_name}"


@dataclass(frozen=True)
class FidelityVerdict:
    """Whether LIME's surrogate can be trusted at one explained row, and why not.

    Attributes
    ----------
    row: the explained dataset row (0-based).
    output_name: what is explained, e.g. ``"P(1)"``.
    r2: the surrogate's weighted R² on the row's neighbourhood.
    model_prediction, surrogate_prediction: the model's and the surrogate's output at the row.
    gap: ``|surrogate - model|`` in the output's units (NaN when the surrogate's prediction is unknown).
    scaled_gap: the gap as judged: itself for probabilities, in standard deviations of the model's
        output for values (NaN when that spread is unknown: then the gap is not judged).
    gap_limit: the most ``scaled_gap`` may be.
    probability: whether the output is a probability (gap judged as it is) or a value (judged by spread).
    r2_poor, gap_poor: which check failed.
    problems: one sentence per failed check; empty when the surrogate is faithful at the row.
    """

    row: int
    output_name: str
    r2: float
    model_prediction: float
    surrogate_prediction: float
    gap: float
    scaled_gap: float
    gap_limit: float
    probability: bool
    r2_poor: bool
    gap_poor: bool
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def level(self) -> str:
        """``"good"``, ``"warning"`` (the R² alone is poor) or ``"bad"`` (the surrogate misses the model at the row)."""
        return "bad" if self.gap_poor else ("warning" if self.r2_poor else "good")

    def message(self) -> str:
        """One sentence naming the row, both predictions and every failed check ("" when faithful)."""
        if self.ok:
            return ""
        reasons = []
        if self.gap_poor:
            reasons.append(f"a gap of {_fmt(self.gap)}{_gap_terms(self.probability, self.scaled_gap, self.gap_limit)}")
        if self.r2_poor:
            reasons.append(
                f"a weighted R² of {_fmt(self.r2)}, below {FIDELITY_MIN_R2:g}"
                if math.isfinite(self.r2)
                else "no recorded weighted R²"
            )
        return (
            f"LIME's surrogate is not faithful to the model at row {self.row}: it predicts "
            f"{_fmt(self.surrogate_prediction)}{_naming(' for', self.output_name)} where the model gives "
            f"{_fmt(self.model_prediction)}, with " + " and ".join(reasons) + "; read this row's weights with caution."
        )


def _gap_terms(probability: bool, scaled: float, limit: float) -> str:
    """What follows "a gap of G" in a sentence about a gap judged poor."""
    if probability:
        return f", above the {limit:g} allowed"
    if math.isinf(scaled):
        return ", where the model's output does not vary at all over the data"
    return f" ({_fmt(scaled)} standard deviations of the model's output), above the {limit:g} allowed"


def _verdict(j: _Judgement, i: int, row: int, output_name: str) -> FidelityVerdict:
    r2, model, local, gap = float(j.r2[i]), float(j.model[i]), float(j.local[i]), float(j.gap[i])
    scaled = float(j.scaled[i])
    r2_poor, gap_poor = bool(j.r2_poor[i]), bool(j.gap_poor[i])
    problems: list[str] = []
    if gap_poor:
        problems.append(
            f"At row {row} the surrogate predicts {_fmt(local)}{_naming(' for', output_name)} where the model gives "
            f"{_fmt(model)}: a gap of {_fmt(gap)}{_gap_terms(j.probability, scaled, j.limit)}."
        )
    if r2_poor:
        problems.append(
            f"At row {row} the surrogate's weighted R² is {_fmt(r2)}, below {FIDELITY_MIN_R2:g}: it follows the "
            "model poorly around the row."
            if math.isfinite(r2)
            else f"At row {row} the surrogate's weighted R² is not recorded, so its fit around the row is unknown."
        )
    return FidelityVerdict(
        row=row,
        output_name=output_name,
        r2=r2,
        model_prediction=model,
        surrogate_prediction=local,
        gap=gap,
        scaled_gap=scaled,
        gap_limit=j.limit,
        probability=j.probability,
        r2_poor=r2_poor,
        gap_poor=gap_poor,
        problems=tuple(problems),
    )


def lime_fidelity(result: AttributionResult, index: int) -> FidelityVerdict:
    """The fidelity verdict of LIME's surrogate at the ``index``-th explained row.

    ``index`` is a position in ``result.rows`` (``0 <= index < len(result.rows)``),
    not a dataset row; the verdict names the dataset row.  The same verdict
    colours the GUI's badge and writes the PDF's warnings.
    """
    n = len(result.rows)
    if not 0 <= index < n:
        raise IndexError(f"explained row index {index} is outside the {n} rows of this result")
    return _verdict(_judge_result(result), index, int(result.rows[index]), result.output_name)


def _names_rows(rows: Sequence[int]) -> str:
    shown = [str(r) for r in rows[:_MAX_NAMED_ROWS]]
    if len(rows) > _MAX_NAMED_ROWS:
        return ", ".join(shown) + f" and {len(rows) - _MAX_NAMED_ROWS:,} more"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _warning_of(j: _Judgement, rows: np.ndarray, output_name: str) -> str | None:
    poor = np.flatnonzero(j.poor)
    if poor.size == 0:
        return None
    # Worst first: rows where the surrogate misses the model (largest judged gap), then the lowest R².
    severity = np.where(j.gap_poor[poor], np.nan_to_num(j.scaled[poor], posinf=np.inf), -np.inf)
    worst = poor[np.lexsort((np.nan_to_num(j.r2[poor], nan=-np.inf), -severity))][:_MAX_DETAILED_ROWS]
    limit = f"{j.limit:g}" if j.probability else f"{j.limit:g} standard deviations of the model's output"
    details = "; ".join(
        f"at row {int(rows[i])} it predicts {_fmt(float(j.local[i]))} where the model gives "
        f"{_fmt(float(j.model[i]))} (weighted R² {_fmt(float(j.r2[i]))})"
        for i in worst
    )
    which = "row" if len(rows) == 1 else "rows"
    return (
        f"LIME's surrogate is not faithful to the model at {poor.size:,} of {len(rows):,} explained {which} "
        f"({_names_rows([int(rows[i]) for i in poor])}): at each, its prediction{_naming(' of', output_name)} "
        f"is more than {limit} away from the model's, or its weighted R² is below {FIDELITY_MIN_R2:g}. "
        f"{details[:1].upper()}{details[1:]}. Read the weights of those rows with caution."
    )


def lime_fidelity_warning(result: AttributionResult) -> str | None:
    """The sentence naming the explained rows where LIME's surrogate is not faithful, or ``None``."""
    return _warning_of(_judge_result(result), np.asarray(result.rows), result.output_name)


# -- entry point -------------------------------------------------------------------------


def _source(inputs: AuditInputs) -> str:
    return inputs.dataset.name if inputs.dataset is not None else "the data"


def _whole(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AnalysisError(f"LIME's {name} must be a whole number of at least {minimum}, not {value!r}.")
    return int(value)


def _choice(value: Any, name: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise AnalysisError(f"LIME's {name} must be one of {listed}, not {value!r}.")
    return str(value)


def _check_rows(rows: Sequence[int] | np.ndarray | None, n_total: int, source: str) -> np.ndarray:
    if rows is None:
        return np.arange(n_total, dtype=np.int64)
    arr = np.asarray(rows)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise AnalysisError(f"The rows to explain in {source} must be a list of whole row positions.")
    if arr.size == 0:
        raise AnalysisError(f"No rows of {source} were chosen to explain.")
    bad = arr[(arr < 0) | (arr >= n_total)]
    if bad.size:
        raise AnalysisError(
            f"Row position {int(bad[0])} is outside {source}, which has {n_total} rows (positions 0 to {n_total - 1})."
        )
    return arr.astype(np.int64)


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    rows: Sequence[int] | None = None,
    num_samples: int = 5000,
    discretize_continuous: bool = True,
    discretizer: str = "quartile",
    sampling: str = "shared",
    kernel_width: float | None = None,
    num_features: int | None = None,
    feature_selection: str = "auto",
    klass: Any | None = None,
    stability_runs: int = 5,
    chunk_rows: int = 200_000,
) -> AttributionResult:
    """Explain rows with LIME (tabular), all instances at once.

    Parameters
    ----------
    inputs:
        Data, roles and model; statistics come from every row of ``inputs.X``.
    ctx:
        Seed, progress and cancel.  The main draw uses ``ctx.rng("lime", ...)``;
        stability run ``k`` runs under ``ctx.sub(..., "stability", k)``.
    rows:
        0-based positions of the rows to explain; ``None`` explains every row.
    num_samples:
        Rows per neighbourhood, the instance itself included (lime's meaning).
    discretize_continuous, discretizer:
        Quartile/decile bins for numeric features (lime's default), or
        Gaussian perturbation with a standardised representation when ``False``.
    sampling:
        ``"shared"``: one perturbation design for every instance (the model
        sees ``num_samples - 1`` perturbed rows in all); ``"independent"``:
        fresh draws per instance, as a loop over lime would make.
    kernel_width:
        Width of the exponential kernel; ``None`` means ``0.75 * sqrt(F)``.
    num_features, feature_selection:
        How many features each surrogate may use (``None``: all ``F``) and
        lime's rule for choosing them.  Unchosen features get coefficient 0.
    klass:
        Class whose probability is explained (``None``: the positive class of
        a binary model, the first class otherwise); must be ``None`` for regressors.
    stability_runs:
        Extra independent runs for the stability figures; 0 disables them,
        otherwise at least 2.
    chunk_rows:
        Most rows in one model call.

    Returns
    -------
    AttributionResult
        ``values`` ``(n, F)`` surrogate coefficients (change in the explained
        output per unit of the interpretable feature: being in the instance's
        bin/category, or one standard deviation in continuous mode);
        ``predictions`` ``(n,)`` the model's output; ``quality`` holds ``r2``,
        ``local_prediction``, ``prediction_gap`` (``|local_prediction - predictions|``),
        ``output_spread`` (standard deviation of the model's output over the
        row's samples) and, with stability runs, ``stability_jaccard`` and
        ``coef_spread``; ``summary`` adds ``max_prediction_gap`` and
        ``n_poor_fidelity`` (rows :func:`lime_fidelity` judges not faithful);
        ``extras`` holds ``intercepts``, ``local_predictions`` and (with
        stability runs) ``coef_std`` ``(n, F)``.
    """
    started = utc_now()
    t_start = time.perf_counter()
    source = _source(inputs)
    model = inputs.model

    num_samples = _whole(num_samples, "number of samples", 2)
    chunk_rows = _whole(chunk_rows, "chunk size", 1)
    stability_runs = _whole(stability_runs, "number of stability runs", 0)
    if stability_runs == 1:
        raise AnalysisError("LIME's number of stability runs must be 0 (off) or at least 2, not 1.")
    sampling = _choice(sampling, "sampling design", SAMPLING_DESIGNS)
    feature_selection = _choice(feature_selection, "feature selection", FEATURE_SELECTIONS)
    discretize = bool(discretize_continuous)
    if discretize:
        discretizer = _choice(discretizer, "discretizer", tuple(DISCRETIZERS))

    X = inputs.X
    names = tuple(str(c) for c in X.columns)
    f = len(names)
    if f == 0:
        raise AnalysisError(f"LIME needs at least one feature column, and none is selected in {source}.")
    if len(X) == 0:
        raise AnalysisError(f"{source[:1].upper()}{source[1:]} has no rows, so LIME has nothing to explain.")
    rows_arr = _check_rows(rows, len(X), source)
    if num_features is None:
        n_feat = f
    else:
        n_feat = _whole(num_features, "number of features", 1)
        n_feat = min(n_feat, f)
    if kernel_width is None:
        width = 0.75 * math.sqrt(f)
    else:
        try:
            width = float(kernel_width)
        except (TypeError, ValueError):
            width = float("nan")
        if not (math.isfinite(width) and width > 0):
            raise AnalysisError(f"LIME's kernel width must be a positive number, not {kernel_width!r}.")
    class_index, output_name = resolve_output(model, klass)

    ctx.check_cancelled()
    ctx.progress(0.0, "Learning training statistics")
    stats, inst = _fit_stats(
        X,
        rows_arr,
        kinds=_column_kinds(inputs),
        percentiles=DISCRETIZERS[discretizer] if discretize else DISCRETIZERS["quartile"],
    )
    settings = _Settings(
        num_samples=num_samples,
        discretize=discretize,
        sampling=sampling,
        kernel_width=width,
        num_features=n_feat,
        feature_selection=feature_selection,
        chunk_rows=chunk_rows,
    )
    predictor = _Predictor(model, class_index, chunk_rows=chunk_rows)
    instances = X.iloc[rows_arr]
    f_inst = predictor(lambda a, b: instances.iloc[a:b], rows_arr.size, ctx)

    n_runs = 1 + stability_runs
    main = _explain_all(stats, inst, rows_arr, f_inst, predictor, settings, ctx.sub(0.0, 1.0 / n_runs))
    runs = []
    for k in range(stability_runs):
        sub = ctx.sub((k + 1) / n_runs, (k + 2) / n_runs, "stability", k)
        runs.append(_explain_all(stats, inst, rows_arr, f_inst, predictor, settings, sub).coef)

    assert main.output_sd is not None
    judged = _judge(main.r2, f_inst, main.local, main.output_sd, probability=model.task is not Task.REGRESSION)
    quality: dict[str, np.ndarray] = {
        "r2": main.r2,
        "local_prediction": main.local,
        "prediction_gap": judged.gap,
        "output_spread": main.output_sd,
    }
    extras: dict[str, np.ndarray] = {"intercepts": main.intercept, "local_predictions": main.local}
    summary: dict[str, float] = {
        "median_r2": float(np.median(main.r2)),
        "min_r2": float(np.min(main.r2)),
        "kernel_width": width,
        "num_samples": float(num_samples),
        "model_rows": float(predictor.rows_called),
        "max_prediction_gap": float(np.max(judged.gap)),
        "n_poor_fidelity": float(np.count_nonzero(judged.poor)),
    }
    if stability_runs:
        k_top = min(_TOP_K, f, n_feat)
        jaccard, spread, sd = _stability(np.stack(runs), k_top)
        quality["stability_jaccard"] = jaccard
        quality["coef_spread"] = spread
        extras["coef_std"] = sd
        summary["median_jaccard"] = float(np.median(jaccard))
        summary["median_coef_spread"] = float(np.median(spread))
        summary["top_k"] = float(k_top)

    warnings: list[str] = []
    if summary["median_r2"] < _LOW_R2:
        warnings.append(
            f"The median weighted R² of the LIME surrogates is {summary['median_r2']:.2f}, so the linear "
            "surrogates describe the model poorly near these rows; read the coefficients with caution."
        )
    unfaithful = _warning_of(judged, rows_arr, output_name)
    if unfaithful is not None:
        warnings.append(unfaithful)
    missing_num = [stats.names[j] for k, j in enumerate(stats.num_idx) if stats.num_missing[k] > 0]
    if missing_num:
        listed = ", ".join(repr(m) for m in missing_num[:5]) + (" and others" if len(missing_num) > 5 else "")
        how = (
            "missing is drawn as its own bin at its share of the data"
            if discretize
            else "perturbed values are never missing and a missing instance value is placed at the mean"
        )
        what = "column" if len(missing_num) == 1 else "columns"
        have = "has" if len(missing_num) == 1 else "have"
        warnings.append(f"Numeric feature {what} {listed} in {source} {have} missing values; {how}.")
    if stability_runs and min(_TOP_K, n_feat) >= f:
        warnings.append(
            f"With {f} features every top-{f} set holds all of them, so the Jaccard stability is 1 by construction."
        )

    parameters = {
        "rows": None if rows is None else [int(r) for r in rows_arr],
        "num_samples": num_samples,
        "discretize_continuous": discretize,
        "discretizer": discretizer,
        "sampling": sampling,
        "kernel_width": kernel_width,
        "num_features": num_features,
        "feature_selection": feature_selection,
        "klass": klass,
        "stability_runs": stability_runs,
        "chunk_rows": chunk_rows,
    }
    provenance = inputs.provenance(
        method=METHOD.name, parameters=parameters, ctx=ctx, started_at=started, warnings=warnings
    )
    result = AttributionResult(
        provenance=provenance,
        method="lime",
        feature_names=names,
        rows=rows_arr,
        values=main.coef,
        base_values=None,
        predictions=f_inst,
        output_name=output_name,
        output_space="value" if model.task is Task.REGRESSION else "probability",
        class_index=class_index,
        quality=quality,
        summary=summary,
        extras=extras,
        compute_seconds=time.perf_counter() - t_start,
    )
    ctx.progress(1.0, "Done")
    return result


METHOD = Method(
    name="lime",
    title="LIME (local surrogates)",
    short_title="LIME",
    run=run,
    summary=(
        "Local surrogate explanations with lime's tabular semantics (quartile bins, exponential kernel, "
        "weighted ridge), fitted for every row at once, with seed-to-seed stability figures."
    ),
    description=(
        "LIME fits a weighted linear surrogate to the model's output on perturbed samples around each row, "
        "weighting samples by their closeness to it. The weighted R² says how well that local surrogate fits, "
        "and reruns with fresh samples measure how stable its top features are."
    ),
    params=(
        rows_param(),
        Param(
            "num_samples",
            "int",
            5000,
            label="Samples per row",
            minimum=2,
            basic=True,
            unit="samples",
            help="Perturbed samples in each row's neighbourhood, the row itself included.",
        ),
        Param(
            "discretize_continuous",
            "bool",
            True,
            label="Discretise numeric columns",
            help="Bin numeric columns (lime's default); off: Gaussian perturbation in standardised units.",
        ),
        Param(
            "discretizer",
            "choice",
            "quartile",
            label="Bins",
            choices=tuple(DISCRETIZERS),
            help="The bins of numeric columns when they are discretised.",
        ),
        Param(
            "sampling",
            "choice",
            "shared",
            label="Sampling design",
            choices=SAMPLING_DESIGNS,
            help="shared: one perturbation design for every row; independent: fresh draws per row.",
        ),
        Param(
            "kernel_width",
            "float",
            None,
            label="Kernel width",
            minimum=0.0,
            exclusive=True,
            none="0.75 × √(number of features)",
            help="Width of the exponential kernel that weights samples by their closeness to the row.",
        ),
        Param(
            "num_features",
            "int",
            None,
            label="Features per surrogate",
            minimum=1,
            none="every feature",
            help="Most features each local surrogate may use; the others get coefficient 0.",
        ),
        Param(
            "feature_selection",
            "choice",
            "auto",
            label="Feature selection",
            choices=FEATURE_SELECTIONS,
            help="lime's rule for choosing the features a surrogate uses.",
        ),
        class_param(help="The class whose probability is explained (classifiers; null for a regressor)."),
        Param(
            "stability_runs",
            "int",
            5,
            label="Stability re-runs",
            minimum=0,
            basic=True,
            help="Extra runs with fresh samples that measure how stable each row's top features are; "
            "0 turns them off, otherwise at least 2.",
        ),
        Param(
            "chunk_rows",
            "int",
            200_000,
            label="Rows per model call",
            minimum=1,
            unit="rows",
            help="Most rows in one model call.",
        ),
    ),
    result=AttributionResult,
    needs=frozenset({"rows"}),
    rows_default="first:10",
    view="lime",
    samples="num_samples",
)
