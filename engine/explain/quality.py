"""How far an explanation can be trusted: faithfulness curves and agreement between methods.

Faithfulness (deletion and insertion)
-------------------------------------
An attribution claims which features move the explained output.  The claim is
tested on the model itself: each explained row's features are ordered by their
attribution and replaced, one at a time, by a reference value.

- **Deletion** starts from the row ``x`` and replaces its features, most
  important first, by the reference; after all ``F`` steps the row *is* the
  reference.  If the attribution is faithful the output falls quickly, so the
  area under the curve is small: **lower is better**.
- **Insertion** starts from the reference and puts ``x``'s values back, most
  important first, ending at ``x``.  A faithful attribution makes the output
  rise quickly, so **higher is better**.

*Order.*  ``order="signed"`` (the default) ranks features by their signed
attribution, largest first: the features that push the explained output *up*
are removed (deletion) or inserted (insertion) first.  For a model that is
additive in its features, with attributions ``phi_j = f(x) - f(x with feature j
at its reference)``, this order gives the lowest deletion curve and the highest
insertion curve at every step, so the figure has a clear optimum.
``order="absolute"`` ranks by ``|phi_j|`` instead, which asks whether the
explanation found the features that *matter*, in either direction; the curve
then need not be monotone.  Ties keep the features' column order.

*Reference.*  One reference row for the whole table: the median of each
numeric column and the most frequent value of every other column (strings,
categories, booleans, dates; ties go to the value seen first), over every row
of the data, missing values ignored.  An integer column takes its lower median,
a value that occurs in it, so codes stay valid.  A single row rather than an
average over a background sample keeps the curves cheap (one model row per
step) and their end point a real input; it is a different reference from the
background some explainers use, so a curve need not end at their base value.

*Output.*  The curves are drawn in the explanation's own output space where
the model exposes it: probabilities and values from :meth:`Model.predict`;
``"log-odds"`` and ``"margin"`` from the scikit-learn estimator's own
``decision_function`` / log-prediction (KernelSHAP's logit link: the logit of
the class probability); a torch model's ``"logit"`` from its forward pass.
Where the space cannot be computed, the class probability is used instead and
a warning says so; ``output_space`` records what the curves are in.

*Area.*  The horizontal axis is the fraction of features replaced, ``k / F``
for ``k = 0..F``, so the trapezoid-rule area is the average output along the
path, in the output's units, and comparable between models with different
numbers of features.  Curves start exactly at ``f(x)`` (deletion) or
``f(reference)`` (insertion) and end at the other.

*Random reference.*  The same curves for ``n_random`` random feature orders
per row (drawn from ``ctx.rng("faithfulness", "random")``), averaged, tell how
much of an area any order would give.  The *gain* is ``random - deletion`` and
``insertion - random``: positive when the explanation beats a random order.

*Cost.*  The model sees ``n x (1 + n_random) x 2 x (F - 1) + n + 1`` rows,
stacked into calls of at most :data:`MAX_CELLS` cells; frames are built column
by column from the rows and the reference, so every column keeps its dtype.

Agreement between methods
-------------------------
:func:`method_agreement` compares global feature rankings (for example mean
``|SHAP|``, mean ``|LIME|`` and permutation importance) by pairwise Spearman
rank correlation over their common features (ties get averaged ranks, as in
:func:`scipy.stats.spearmanr`) and by the Jaccard overlap of their top-``k``
feature sets.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.attribution import AttributionResult
from engine.errors import AnalysisError
from engine.explain._background import is_numeric_column
from engine.explain._predict import CELLS_PER_CALL
from engine.explain._predict import rows_per_call as _rows_per_call
from engine.explain.permutation import PermutationImportanceResult
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.base import Model, Task
from engine.results import Provenance, Result, package_versions, to_jsonable, utc_now  # noqa: F401

__all__ = [
    "ORDERS",
    "MAX_CELLS",
    "FaithfulnessResult",
    "AgreementResult",
    "faithfulness",
    "reference_row",
    "method_agreement",
    "spearman",
    "average_ranks",
    "top_k_jaccard",
    "attribution_ranking",
    "permutation_ranking",
    "global_ranking",
    "attach_quality",
    "with_faithfulness",
    "FaithfulnessSummary",
    "faithfulness_summary",
]

ORDERS = ("signed", "absolute")
# Upper bound on rows x input columns handed to the model in one call.
MAX_CELLS = CELLS_PER_CALL  # the batched-prediction primitive's bound on one call (engine.explain._predict)
# Probabilities are clipped this far from 0 and 1 before a logit (as KernelSHAP's logit link).
_LOGIT_EPS = 1e-12
# The start of a deletion curve is f(x); a larger relative gap to the explanation's own
# predictions means the explanation was computed on other data or another model.
_PREDICTION_TOLERANCE = 1e-5


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaithfulnessResult(Result):
    """Deletion and insertion curves of one attribution result, with a random-order reference.

    Attributes
    ----------
    attribution_method: the ``method`` of the explained :class:`AttributionResult`.
    feature_names: the raw input columns, length ``F``.
    rows: ``(n,)`` 0-based row positions in the dataset's frame.
    result_index: ``(n,)`` positions of those rows within the attribution result's rows.
    n_explained: rows of the attribution result (``n`` may be fewer, see ``max_rows``).
    order: ``"signed"`` or ``"absolute"`` (see the module docstring).
    output_name: what the curves measure, e.g. ``"P(approved=1)"``.
    output_space: the space of the curves (may differ from the explanation's, see ``warnings``).
    explained_space: the attribution result's ``output_space``.
    reference: ``(F,)`` the reference value of each feature, as text.
    fractions: ``(F + 1,)`` fraction of features replaced, ``k / F``.
    deletion, insertion: ``(n, F + 1)`` model output after ``k`` features were
        replaced by the reference (deletion) or taken from the row (insertion).
    random_deletion, random_insertion: ``(n, F + 1)`` the same, averaged over
        ``n_random`` random orders.
    deletion_auc, insertion_auc: ``(n,)`` trapezoid areas over ``fractions``
        (output units); deletion lower is better, insertion higher is better.
    random_deletion_auc, random_insertion_auc: ``(n,)`` areas of the random
        orders' curves, averaged over the orders.
    n_random: random orders per row.
    summary: medians over rows (``median_deletion_auc``, ``median_deletion_gain``, ...)
        and the share of rows whose explanation beats a random order.
    """

    kind: ClassVar[str] = "faithfulness"
    attribution_method: str = ""
    feature_names: tuple[str, ...] = ()
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    result_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_explained: int = 0
    order: str = "signed"
    output_name: str = ""
    output_space: str = "probability"
    explained_space: str = "probability"
    reference: tuple[str, ...] = ()
    fractions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    deletion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    insertion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    random_deletion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    random_insertion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    deletion_auc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    insertion_auc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    random_deletion_auc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    random_insertion_auc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_random: int = 0
    summary: Mapping[str, float] = field(default_factory=dict)

    @property
    def deletion_gain(self) -> np.ndarray:
        """``(n,)`` random minus explained deletion area; positive beats a random order."""
        out: np.ndarray = self.random_deletion_auc - self.deletion_auc
        return out

    @property
    def insertion_gain(self) -> np.ndarray:
        """``(n,)`` explained minus random insertion area; positive beats a random order."""
        out: np.ndarray = self.insertion_auc - self.random_insertion_auc
        return out

    def figures(self) -> dict[str, Any]:
        """Per-row arrays and summary numbers for :func:`attach_quality`.

        Per-row arrays are ``(n_explained,)``, aligned with the attribution
        result's rows; rows left out by ``max_rows`` hold NaN.
        """
        per_row = {
            "deletion_auc": self.deletion_auc,
            "insertion_auc": self.insertion_auc,
            "deletion_gain": self.deletion_gain,
            "insertion_gain": self.insertion_gain,
        }
        out: dict[str, Any] = {}
        for name, values in per_row.items():
            full = np.full(self.n_explained, np.nan)
            full[self.result_index] = values
            out[name] = full
        for name in ("median_deletion_auc", "median_insertion_auc", "median_deletion_gain", "median_insertion_gain"):
            out[name] = float(self.summary.get(name, math.nan))
        return out


@dataclass(frozen=True)
class AgreementResult(Result):
    """Agreement between the global feature rankings of several methods.

    Attributes
    ----------
    methods: the ``M`` compared rankings' names.
    feature_names: the ``C`` features every ranking has, in the first ranking's order.
    importances: ``(M, C)`` each method's global importance of those features.
    spearman: ``(M, M)`` Spearman rank correlations (ties averaged); NaN where a
        ranking is constant or holds NaN.
    top_k: the size of the compared top sets (at most ``C``).
    top_k_jaccard: ``(M, M)`` Jaccard overlap of the top-``top_k`` feature sets.
    summary: ``mean_spearman`` / ``min_spearman`` and ``mean_top_k_jaccard`` /
        ``min_top_k_jaccard`` over the distinct pairs.
    """

    kind: ClassVar[str] = "method_agreement"
    methods: tuple[str, ...] = ()
    feature_names: tuple[str, ...] = ()
    importances: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    spearman: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    top_k: int = 0
    top_k_jaccard: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    summary: Mapping[str, float] = field(default_factory=dict)


# -- reference row ------------------------------------------------------------------------------


def _most_frequent_position(column: pd.Series) -> int | None:
    """Position of the first occurrence of the most frequent non-missing value (``None`` if all missing)."""
    codes, _ = pd.factorize(column, use_na_sentinel=True)
    present = codes >= 0
    if not present.any():
        return None
    counts = np.bincount(codes[present])
    # factorize numbers values in order of appearance, so argmax's first maximum is the value seen first.
    return int(np.flatnonzero(codes == int(np.argmax(counts)))[0])


def reference_row(X: pd.DataFrame) -> pd.DataFrame:
    """One row of reference values, same columns and dtypes as ``X``.

    Numeric columns take their median (integer columns the lower median, a
    value that occurs), every other column its most frequent value; missing
    values are ignored, and a column with no value at all stays missing.

    Parameters
    ----------
    X: ``(N, F)`` raw input columns.

    Returns
    -------
    DataFrame
        ``(1, F)``, index ``[0]``.
    """
    columns: dict[str, Any] = {}
    for name in X.columns:
        column = X[name]
        if is_numeric_column(column):
            if pd.api.types.is_integer_dtype(column.dtype):
                present = column.dropna()
                value = present.quantile(0.5, interpolation="lower") if len(present) else None
            else:
                value = column.median(skipna=True)
            columns[name] = pd.array([value], dtype=column.dtype)
        else:
            position = _most_frequent_position(column)
            if position is None:
                columns[name] = column.iloc[:1].array.copy()
            else:
                columns[name] = column.iloc[position : position + 1].array
    return pd.DataFrame(columns, index=pd.RangeIndex(1))


# -- the explained output ----------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _LOGIT_EPS, 1.0 - _LOGIT_EPS)
    out: np.ndarray = np.log(q) - np.log1p(-q)
    return out


def _output_function(
    model: Model, result: AttributionResult
) -> tuple[Callable[[pd.DataFrame], np.ndarray], str, str, list[str]]:
    """The function ``frame -> (m,)`` drawn by the curves, its space, its name and warnings."""
    space = result.output_space
    k = result.class_index
    classification = model.task is Task.CLASSIFICATION
    if classification and (k is None or not 0 <= k < len(model.classes or ())):
        raise AnalysisError(
            f"The explanation by {result.method or 'an unknown method'} names no class of the classifier "
            f"{model.name}, so its faithfulness cannot be measured."
        )
    if not classification and k is not None:
        raise AnalysisError(
            f"The explanation by {result.method or 'an unknown method'} explains a class, but the model "
            f"{model.name} is a regressor."
        )

    def predicted(frame: pd.DataFrame) -> np.ndarray:
        out = model.predict(frame)
        return out[:, k] if classification else out

    if space in ("probability", "value"):
        return predicted, space, result.output_name, []
    estimator = model.estimator
    link = (result.provenance.parameters or {}).get("link") if result.provenance is not None else None
    if space == "log-odds" and (link == "logit" or estimator is None and len(model.classes or ()) == 2):
        # KernelSHAP's logit link, and any binary model's log-odds, are the logit of the class probability.
        return (lambda frame: _logit(predicted(frame))), space, result.output_name, []
    if space in ("log-odds", "margin") and estimator is not None:
        from engine.explain._pipeline import model_output

        def raw(frame: pd.DataFrame) -> np.ndarray:
            data = frame if model.input_columns is not None else frame.to_numpy()
            return model_output(estimator, data, space=space, class_index=k)

        return raw, space, result.output_name, []
    if space == "logit" and hasattr(model, "forward_tensor") and hasattr(model, "frame_to_array"):
        torch_model: Any = model  # a TorchModel, by the attributes checked above

        def logits(frame: pd.DataFrame) -> np.ndarray:
            import torch

            x = torch.as_tensor(torch_model.frame_to_array(frame), dtype=torch_model.dtype, device=torch_model.device)
            with torch.inference_mode():
                out = torch_model.forward_tensor(x)
            out = out if k is None else out[:, k]
            values: np.ndarray = out.to(device="cpu", dtype=torch.float64).numpy()
            return values

        return logits, space, result.output_name, []
    fallback = "probability" if classification else "value"
    name = model.output_names[k] if classification and k is not None else "prediction"
    note = (
        f"The explanation is in {space} space, which the model {model.name} does not expose, so the "
        f"faithfulness curves use its {'probability' if classification else 'prediction'} {name} instead."
    )
    return predicted, fallback, name, [note]


# -- faithfulness ---------------------------------------------------------------------------------


def _is_whole(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _source(inputs: AuditInputs) -> str:
    return inputs.dataset.name if inputs.dataset is not None else "the data"


def _aligned_values(inputs: AuditInputs, result: AttributionResult) -> np.ndarray:
    """The result's ``(n, F)`` values with columns in the model's input order."""
    features = tuple(inputs.feature_names)
    names = tuple(result.feature_names)
    values = np.asarray(result.values, dtype=np.float64)
    if values.ndim != 2 or values.shape != (len(result.rows), len(names)):
        raise AnalysisError(
            f"The explanation by {result.method or 'an unknown method'} has values of shape {values.shape}, "
            f"which do not match its {len(result.rows)} rows and {len(names)} features."
        )
    if set(names) != set(features) or len(names) != len(features):
        missing = [c for c in features if c not in names]
        extra = [c for c in names if c not in features]
        listed = ", ".join(repr(c) for c in (missing or extra)[:5])
        raise AnalysisError(
            f"The explanation by {result.method or 'an unknown method'} does not cover the model's input "
            f"columns of {_source(inputs)} ({'lacks' if missing else 'adds'} {listed})."
        )
    position = {name: j for j, name in enumerate(names)}
    return values[:, [position[c] for c in features]]


def _ranks(attributions: np.ndarray, order: str) -> np.ndarray:
    """``(..., F)`` rank of each feature (0 = replaced first); NaN attributions go last."""
    score = attributions if order == "signed" else np.abs(attributions)
    ordering = np.argsort(-score, axis=-1, kind="stable")
    return np.argsort(ordering, axis=-1, kind="stable")


def _stacked_frame(source: pd.DataFrame, block: np.ndarray | None, take: np.ndarray) -> pd.DataFrame:
    """Rows of the stacked design: column ``j`` of row ``r`` is ``source`` row ``take[r, j]``."""
    if block is not None:
        # One numpy dtype: a single fancy-indexing pass gives one C-ordered block.
        values = block[take, np.arange(take.shape[1])]
        return pd.DataFrame(values, columns=source.columns, copy=False)
    return pd.DataFrame(
        {name: source[name].array.take(take[:, j]) for j, name in enumerate(source.columns)},
        index=pd.RangeIndex(len(take)),
    )


def faithfulness(
    inputs: AuditInputs,
    result: AttributionResult,
    *,
    ctx: JobContext,
    n_random: int = 5,
    max_rows: int | None = None,
    order: str = "signed",
) -> FaithfulnessResult:
    """Deletion and insertion curves of an attribution result on its own rows.

    Parameters
    ----------
    inputs:
        The data, roles and model the attributions were computed for; the
        result's ``rows`` are positions in ``inputs.frame``.
    result:
        The attributions to test, ``values`` ``(n, F)`` over the model's raw
        input columns.
    ctx:
        Job context: progress, cancel (checked between model calls), and the
        random streams ``ctx.rng("faithfulness", "random")`` (random orders)
        and ``ctx.rng("faithfulness", "rows")`` (the ``max_rows`` sample).
    n_random:
        Random orders per row for the reference areas, ``>= 1``.
    max_rows:
        Measure a random sample of this many of the result's rows (``None``: all).
    order:
        ``"signed"`` (largest attribution first, toward the explained output)
        or ``"absolute"`` (largest ``|attribution|`` first).

    Returns
    -------
    FaithfulnessResult
        Curves ``(n, F + 1)`` and areas ``(n,)`` in ``output_space`` units.
    """
    started = utc_now()
    if not _is_whole(n_random) or n_random < 1:
        raise AnalysisError(f"The number of random orders must be a positive whole number, not {n_random!r}.")
    if max_rows is not None and (not _is_whole(max_rows) or max_rows < 1):
        raise AnalysisError(f"The row limit must be a positive whole number or none, not {max_rows!r}.")
    if order not in ORDERS:
        raise AnalysisError(f"The feature order must be one of {', '.join(ORDERS)}, not {order!r}.")
    n_random = int(n_random)
    model = inputs.model
    source_name = _source(inputs)
    values = _aligned_values(inputs, result)
    features = tuple(inputs.feature_names)
    n_features = len(features)
    if n_features == 0:
        raise AnalysisError(f"The explanation of {source_name} has no features to replace.")
    positions = np.asarray(result.rows, dtype=np.int64).reshape(-1)
    if positions.size == 0:
        raise AnalysisError(f"The explanation by {result.method or 'an unknown method'} holds no rows.")
    n_total = len(inputs.frame)
    bad = positions[(positions < 0) | (positions >= n_total)]
    if bad.size:
        raise AnalysisError(
            f"The explanation's row position {int(bad[0])} is outside {source_name}, which has {n_total} rows."
        )
    fn, space, output_name, warn = _output_function(model, result)
    ctx.check_cancelled()
    ctx.progress(0.0, "Faithfulness: preparing the reference row")

    index = np.arange(positions.size, dtype=np.int64)
    if max_rows is not None and max_rows < positions.size:
        index = np.sort(ctx.rng("faithfulness", "rows").choice(positions.size, size=int(max_rows), replace=False))
        warn.append(
            f"Faithfulness was measured on a random sample of {max_rows} of the {positions.size} explained rows."
        )
    rows = positions[index]
    phi = values[index]
    n = rows.size

    X = inputs.X
    reference = reference_row(X)
    # Rows 0..n-1 are the explained rows, row n the reference: every design row picks from these.
    source = pd.concat([X.iloc[rows].reset_index(drop=True), reference], ignore_index=True)
    dtypes = set(source.dtypes)
    block = None
    if len(dtypes) == 1 and isinstance(next(iter(dtypes)), np.dtype):
        block = source.to_numpy()

    # ranks[i, o, j]: when feature j is replaced in order o of row i (o = 0: the explanation's order).
    random_orders = ctx.rng("faithfulness", "random").permuted(
        np.tile(np.arange(n_features, dtype=np.int64), (n, n_random, 1)), axis=-1
    )
    ranks = np.concatenate([_ranks(phi, order)[:, None, :], np.argsort(random_orders, axis=-1)], axis=1)
    n_orders = 1 + n_random
    inner = n_features - 1  # steps strictly between the row and the reference
    per_row = n_orders * 2 * inner
    total = n * per_row + n + 1
    rows_per_call = _rows_per_call(n_features, MAX_CELLS)

    outputs: np.ndarray = np.empty(total, dtype=np.float64)
    done = 0
    # The end points, f(x) for every row and f(reference), come from the source frame itself.
    ends = np.asarray(fn(source), dtype=np.float64).reshape(-1)
    outputs[: n + 1] = ends
    done = n + 1
    ctx.progress((n + 1) / total, "Faithfulness: replacing features")
    flat_total = n * per_row
    for a in range(0, flat_total, rows_per_call):
        ctx.check_cancelled()
        b = min(a + rows_per_call, flat_total)
        flat = np.arange(a, b, dtype=np.int64)
        i, rest = np.divmod(flat, per_row)
        o, rest = np.divmod(rest, 2 * inner)
        insertion, step = np.divmod(rest, inner)
        k = step + 1  # features replaced (deletion) or inserted (insertion)
        r = ranks[i, o]  # (m, F)
        from_row = np.where(insertion[:, None] == 1, r < k[:, None], r >= k[:, None])
        take = np.where(from_row, i[:, None], n)
        out = np.asarray(fn(_stacked_frame(source, block, take)), dtype=np.float64).reshape(-1)
        outputs[done + a : done + b] = out
        ctx.progress((done + b) / total, "Faithfulness: replacing features")
    ctx.check_cancelled()

    f_x = outputs[:n]
    f_ref = outputs[n]
    grid = outputs[n + 1 :].reshape(n, n_orders, 2, inner)
    curves = np.empty((n, n_orders, 2, n_features + 1))
    curves[..., 1:-1] = grid
    curves[:, :, 0, 0] = f_x[:, None]
    curves[:, :, 0, -1] = f_ref
    curves[:, :, 1, 0] = f_ref
    curves[:, :, 1, -1] = f_x[:, None]
    fractions = np.arange(n_features + 1, dtype=np.float64) / n_features
    areas = np.asarray(np.trapezoid(curves, fractions, axis=-1))  # (n, O, 2)

    deletion_auc, insertion_auc = areas[:, 0, 0], areas[:, 0, 1]
    random_deletion_auc = areas[:, 1:, 0].mean(axis=1)
    random_insertion_auc = areas[:, 1:, 1].mean(axis=1)

    explained = np.asarray(result.predictions, dtype=np.float64).reshape(-1)
    if space == result.output_space and explained.size == positions.size:
        gap = np.abs(explained[index] - f_x)
        scale = 1.0 + np.nanmax(np.abs(f_x)) if np.isfinite(f_x).any() else 1.0
        worst = float(np.nanmax(gap)) if np.isfinite(gap).any() else 0.0
        if worst > _PREDICTION_TOLERANCE * scale:
            warn.append(
                f"The model's output on the explained rows of {source_name} differs from the explanation's "
                f"predictions by up to {worst:.3g}, so the explanation may come from other data or another model."
            )

    deletion_gain = random_deletion_auc - deletion_auc
    insertion_gain = insertion_auc - random_insertion_auc
    summary = {
        "median_deletion_auc": float(np.median(deletion_auc)),
        "median_insertion_auc": float(np.median(insertion_auc)),
        "median_random_deletion_auc": float(np.median(random_deletion_auc)),
        "median_random_insertion_auc": float(np.median(random_insertion_auc)),
        "median_deletion_gain": float(np.median(deletion_gain)),
        "median_insertion_gain": float(np.median(insertion_gain)),
        "share_deletion_beats_random": float(np.mean(deletion_gain > 0)),
        "share_insertion_beats_random": float(np.mean(insertion_gain > 0)),
        "reference_output": float(f_ref),
        "model_rows": float(total),
    }
    parameters = {
        "attribution_method": result.method,
        "n_random": n_random,
        "max_rows": max_rows,
        "order": order,
        "n_rows": int(n),
        "output_space": space,
        "reference": "median (numeric) / most frequent value (other columns) over all rows",
    }
    faith = FaithfulnessResult(
        provenance=inputs.provenance(
            method="faithfulness", parameters=parameters, ctx=ctx, started_at=started, warnings=warn
        ),
        attribution_method=result.method,
        feature_names=features,
        rows=rows,
        result_index=index,
        n_explained=int(positions.size),
        order=order,
        output_name=output_name,
        output_space=space,
        explained_space=result.output_space,
        reference=tuple(str(v) for v in reference.iloc[0].tolist()),
        fractions=fractions,
        deletion=curves[:, 0, 0],
        insertion=curves[:, 0, 1],
        random_deletion=curves[:, 1:, 0].mean(axis=1),
        random_insertion=curves[:, 1:, 1].mean(axis=1),
        deletion_auc=deletion_auc,
        insertion_auc=insertion_auc,
        random_deletion_auc=random_deletion_auc,
        random_insertion_auc=random_insertion_auc,
        n_random=n_random,
        summary=summary,
    )
    ctx.progress(1.0, "Faithfulness done")
    return faith


# -- agreement between methods -----------------------------------------------------------------


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks ``1..n`` of ``values`` ``(n,)``, tied values sharing the mean of their ranks."""
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(a, kind="stable")
    sorted_a = a[order]
    # A new group starts wherever the sorted value changes; each group's ranks are averaged.
    starts = np.r_[True, sorted_a[1:] != sorted_a[:-1]] if a.size else np.zeros(0, dtype=bool)
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], a.size] - 1
    mean_rank = (first + last) / 2.0 + 1.0
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two ``(n,)`` vectors, ties averaged.

    Equals :func:`scipy.stats.spearmanr`'s statistic; NaN when either vector is
    constant, holds NaN, or has fewer than two values.
    """
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"spearman needs two vectors of the same length, got {x.size} and {y.size}")
    if x.size < 2 or np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    rx = average_ranks(x) - (x.size + 1) / 2.0
    ry = average_ranks(y) - (y.size + 1) / 2.0
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom == 0.0:
        return math.nan
    return float(np.clip((rx @ ry) / denom, -1.0, 1.0))


def _top_set(importance: np.ndarray, k: int) -> set[int]:
    # Ties keep the common features' order; NaN importances rank last.
    key = np.where(np.isnan(importance), -np.inf, importance)
    return set(np.argsort(-key, kind="stable")[:k].tolist())


def top_k_jaccard(a: np.ndarray, b: np.ndarray, k: int = 5) -> float:
    """Jaccard overlap ``|A ∩ B| / |A ∪ B|`` of the ``k`` largest entries of ``(n,)`` vectors."""
    k = min(int(k), len(a))
    if k < 1:
        return math.nan
    sa, sb = _top_set(np.asarray(a, dtype=np.float64), k), _top_set(np.asarray(b, dtype=np.float64), k)
    return len(sa & sb) / len(sa | sb)


def attribution_ranking(result: AttributionResult) -> tuple[tuple[str, ...], np.ndarray]:
    """Global importance from local attributions: the mean ``|value|`` per feature ``(F,)``."""
    values = np.asarray(result.values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise AnalysisError(
            f"The explanation by {result.method or 'an unknown method'} holds no rows to rank features by."
        )
    return tuple(result.feature_names), np.abs(values).mean(axis=0)


def permutation_ranking(result: PermutationImportanceResult) -> tuple[tuple[str, ...], np.ndarray]:
    """Global importance from permutation importance: the mean drop in score per feature ``(F,)``."""
    return tuple(result.feature_names), np.asarray(result.mean, dtype=np.float64)


def global_ranking(result: Result) -> tuple[tuple[str, ...], np.ndarray]:
    """Feature names and global importance ``(F,)`` of an attribution or permutation-importance result."""
    if isinstance(result, AttributionResult):
        return attribution_ranking(result)
    if isinstance(result, PermutationImportanceResult):
        return permutation_ranking(result)
    raise TypeError(f"no global ranking for a {type(result).__name__}")


def method_agreement(
    rankings: Mapping[str, tuple[Sequence[str], np.ndarray]],
    *,
    top_k: int = 5,
) -> AgreementResult:
    """Pairwise agreement of global feature rankings.

    Parameters
    ----------
    rankings:
        Method name -> (feature names, global importance ``(F_m,)``), larger
        meaning more important, e.g. from :func:`global_ranking`.
    top_k:
        Size of the top sets whose Jaccard overlap is reported (capped at the
        number of common features).

    Returns
    -------
    AgreementResult
        ``spearman`` and ``top_k_jaccard`` ``(M, M)`` over the common features.
    """
    started = utc_now()
    if not _is_whole(top_k) or top_k < 1:
        raise AnalysisError(f"The top-k size must be a positive whole number, not {top_k!r}.")
    if len(rankings) < 2:
        raise AnalysisError(f"Comparing methods needs at least two rankings, but {len(rankings)} were given.")
    methods = tuple(str(m) for m in rankings)
    lookups: list[dict[str, float]] = []
    for method, (names, importance) in rankings.items():
        names = tuple(str(c) for c in names)
        imp = np.asarray(importance, dtype=np.float64).reshape(-1)
        if imp.size != len(names):
            raise AnalysisError(f"The ranking of {method} has {len(names)} feature names but {imp.size} importances.")
        lookups.append(dict(zip(names, imp.tolist())))
    first_names = [str(c) for c in rankings[next(iter(rankings))][0]]
    common = tuple(c for c in first_names if all(c in lk for lk in lookups))
    if len(common) < 2:
        raise AnalysisError(
            f"The rankings of {', '.join(methods)} share {len(common)} feature{'s' if len(common) != 1 else ''}; "
            "at least two are needed to compare them."
        )
    warn: list[str] = []
    every = set().union(*(lk.keys() for lk in lookups))
    if len(every) > len(common):
        warn.append(
            f"{len(every) - len(common)} features appear in only some of the rankings and were left out of "
            "the comparison."
        )
    importances = np.array([[lk[c] for c in common] for lk in lookups], dtype=np.float64)
    m = len(methods)
    k = min(int(top_k), len(common))
    rho = np.eye(m)
    jac = np.eye(m)
    for p in range(m):
        for q in range(p + 1, m):
            rho[p, q] = rho[q, p] = spearman(importances[p], importances[q])
            jac[p, q] = jac[q, p] = top_k_jaccard(importances[p], importances[q], k)
    for p in range(m):
        # A constant or NaN ranking has no rank correlation, not even with itself.
        if not math.isfinite(spearman(importances[p], importances[p])):
            rho[p, p] = math.nan
    pairs = np.triu_indices(m, 1)
    pair_rho, pair_jac = rho[pairs], jac[pairs]
    with np.errstate(all="ignore"):
        summary = {
            "mean_spearman": float(np.nanmean(pair_rho)) if np.isfinite(pair_rho).any() else math.nan,
            "min_spearman": float(np.nanmin(pair_rho)) if np.isfinite(pair_rho).any() else math.nan,
            "mean_top_k_jaccard": float(np.mean(pair_jac)),
            "min_top_k_jaccard": float(np.min(pair_jac)),
            "n_common_features": float(len(common)),
        }
    provenance = Provenance(
        method="method_agreement",
        parameters={"methods": list(methods), "top_k": k},
        seed=None,
        data_sha256=None,
        model_sha256=None,
        versions=package_versions(),
        started_at=started,
        finished_at=utc_now(),
        warnings=tuple(warn),
    )
    return AgreementResult(
        provenance=provenance,
        methods=methods,
        feature_names=common,
        importances=importances,
        spearman=rho,
        top_k=k,
        top_k_jaccard=jac,
        summary=summary,
    )


# -- attaching figures ------------------------------------------------------------------------------


def attach_quality(result: AttributionResult, **figures: Any) -> AttributionResult:
    """A copy of ``result`` with extra quality figures merged in.

    Parameters
    ----------
    result:
        The explanation; it is not modified.
    **figures:
        ``name=array`` of shape ``(n,)`` (one value per explained row) goes to
        ``quality``; ``name=number`` goes to ``summary``.  A name already there
        is replaced.

    Returns
    -------
    AttributionResult
        Built with :func:`dataclasses.replace`, so its arrays are frozen anew.
    """
    n = len(result.rows)
    quality = dict(result.quality)
    summary = dict(result.summary)
    for name, value in figures.items():
        if isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_)):
            summary[name] = float(value)
            continue
        arr = np.asarray(value)
        if arr.ndim == 0 and arr.dtype.kind in "iuf":
            summary[name] = float(arr)
        elif arr.shape == (n,) and arr.dtype.kind in "iufb":
            quality[name] = arr.astype(np.float64)
        else:
            raise ValueError(
                f"quality figure {name!r} must be a number or one number per explained row ({n}), "
                f"got shape {arr.shape} of dtype {arr.dtype}"
            )
    return dataclasses.replace(result, quality=quality, summary=summary)


def with_faithfulness(
    inputs: AuditInputs,
    result: AttributionResult,
    *,
    ctx: JobContext,
    n_random: int = 5,
    max_rows: int | None = None,
    order: str = "signed",
) -> AttributionResult:
    """``result`` with its deletion and insertion figures attached, and that step recorded in its call.

    The figures are :func:`faithfulness`'s (per row and their medians, see
    :meth:`FaithfulnessResult.figures`) under ``ctx``; when the result records
    its call, the call gains ``"faithfulness": {"stream", "n_random", "max_rows",
    "order"}`` so that a re-run attaches exactly the same figures.
    """
    figures = faithfulness(inputs, result, ctx=ctx, n_random=n_random, max_rows=max_rows, order=order).figures()
    out = attach_quality(result, **figures)
    call = out.provenance.call
    if call is None:
        return out
    step = {"stream": to_jsonable(list(ctx.path)), "n_random": n_random, "max_rows": max_rows, "order": order}
    return dataclasses.replace(out, provenance=dataclasses.replace(out.provenance, call={**call, "faithfulness": step}))


@dataclass(frozen=True)
class FaithfulnessSummary:
    """What the deletion and insertion figures attached to an attribution result say, in one place.

    The GUI's line under an explanation and the report's table both read this.
    Medians are over the measured rows; a *gain* is how much better than a
    random feature order the explanation's order did (positive: better).

    Attributes
    ----------
    method: the attribution method.
    n_rows: rows measured (rows left out by ``max_rows`` do not count).
    deletion_auc, insertion_auc: median areas (deletion: lower is better; insertion: higher).
    deletion_gain, insertion_gain: median gains over random orders.
    output: the explained output and its scale, for the sentence.
    """

    method: str
    n_rows: int
    deletion_auc: float
    insertion_auc: float
    deletion_gain: float
    insertion_gain: float
    output: str

    @property
    def ok(self) -> bool:
        """Whether the explanation's order beats random orders on both curves (medians)."""
        return self.deletion_gain > 0 and self.insertion_gain > 0

    def line(self) -> str:
        """One sentence with the figures: what the person reads under the explanation."""
        return (
            f"Faithfulness over {self.n_rows:,} row{'s' if self.n_rows != 1 else ''} (median): removing the features "
            f"in the explanation's order gives a deletion area of {_fmt(self.deletion_auc)} "
            f"({_signed(self.deletion_gain)} better than random orders) and an insertion area of "
            f"{_fmt(self.insertion_auc)} ({_signed(self.insertion_gain)} better) in {self.output}."
        )

    def warning(self) -> str | None:
        """The sentence shown as a warning when the order does not beat random orders; ``None`` when it does."""
        if self.ok:
            return None
        failed = [
            name
            for name, gain in (("deletion", self.deletion_gain), ("insertion", self.insertion_gain))
            if not gain > 0
        ]
        return (
            f"The {self.method} attributions order the features no better than random orders on "
            f"{' and '.join(failed)} (median gain {', '.join(_signed(g) for g in self._gains(failed))}): "
            "do not rely on their ranking of features for these rows."
        )

    def _gains(self, names: Sequence[str]) -> list[float]:
        return [self.deletion_gain if n == "deletion" else self.insertion_gain for n in names]


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3g}"


def _signed(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:+.3g}"


def faithfulness_summary(result: AttributionResult) -> FaithfulnessSummary | None:
    """The faithfulness figures attached to ``result`` (:func:`with_faithfulness`), or ``None`` without them."""
    summary = result.summary
    names = ("median_deletion_auc", "median_insertion_auc", "median_deletion_gain", "median_insertion_gain")
    if not all(name in summary for name in names):
        return None
    measured = np.asarray(result.quality.get("deletion_auc", np.zeros(0)), dtype=float)
    space = result.output_space
    output = f"{result.output_name} ({space})" if space and space not in result.output_name else result.output_name
    return FaithfulnessSummary(
        method=result.method,
        n_rows=int(np.isfinite(measured).sum()),
        deletion_auc=float(summary["median_deletion_auc"]),
        insertion_auc=float(summary["median_insertion_auc"]),
        deletion_gain=float(summary["median_deletion_gain"]),
        insertion_gain=float(summary["median_insertion_gain"]),
        output=output,
    )
