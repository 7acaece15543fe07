"""Importances a model carries itself, summed back to the raw input columns.

* **Linear models** (``coef_``, also as the last step of a Pipeline): the
  importance of an encoded column ``e`` is ``|beta_e| * sd_e``, its coefficient
  times its population standard deviation (``ddof=0``) over the table's rows
  *after* the Pipeline's preprocessing, i.e. the change in the model's linear
  predictor (log-odds for logistic regression, the prediction for a
  regressor) for a one-standard-deviation move.  A raw column's importance is
  the sum over the encoded columns made from it (one-hot columns add up into
  their string column); ``signed`` sums ``beta_e * sd_e`` the same way.
* **Trees and tree ensembles** (``feature_importances_``): impurity
  importance, summed the same way; it sums to 1 over the raw columns.  It is
  biased toward high-cardinality and continuous features, which the result
  says in ``caveat`` and in its warnings.
* **XGBoost and LightGBM boosters** read from their own files
  (:class:`~engine.models.booster_adapter.BoosterModel`): the library's own
  importance, ``importance_type="gain"`` (the total gain of the splits on each
  feature: XGBoost's ``total_gain``, LightGBM's ``gain``) or ``"split"`` (how
  many splits use it: XGBoost's ``weight``, LightGBM's ``split``), as shares
  that sum to 1 over the booster's features, with the same kind of caveat.

Which raw column each encoded column comes from is read from the fitted
transformers' own bookkeeping by :func:`engine.explain._pipeline.encoded_view`
(the mapping TreeSHAP and linear SHAP use), so the three agree.  Where that
refuses (a transformer that mixes columns, such as PCA or polynomial features,
or one whose layout it does not know), the dependence is measured instead: the
preprocessing is applied to a sample of rows and again with one raw column's
values rotated by one row; the encoded columns that change depend on that raw
column.  Rotating by one changes every encoded column that is a non-constant
function of the raw column over the sample (a one-hot column of category ``c``
changes wherever a ``c`` row meets a non-``c`` row), and the sample holds every
category and each numeric column's extremes.  An encoded column that depends on
several raw columns has its importance shared equally among them, with a
warning.

:func:`mean_abs_attribution` gives the "mean |SHAP|" global view of an
:class:`~engine.attribution.AttributionResult`.
"""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from engine.attribution import AttributionResult, resolve_output
from engine.errors import AnalysisError
from engine.explain._pipeline import EncodedView, encoded_view, split_pipeline
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Model, Task
from engine.models.booster_adapter import BOOSTER_CAVEAT, BoosterModel
from engine.params import Param, class_param
from engine.results import Result, utc_now

__all__ = [
    "NativeImportanceResult",
    "IMPURITY_CAVEAT",
    "BOOSTER_CAVEAT",
    "BOOSTER_BASES",
    "mean_abs_attribution",
    "refusal",
    "run",
    "METHOD",
]

IMPURITY_CAVEAT = "Impurity importance is biased toward high-cardinality and continuous features."

#: ``importance_type`` -> the ``basis`` a booster's result names.
BOOSTER_BASES = {"gain": "total gain", "split": "split count"}

# Rows of the evenly spaced part of the sample used to trace encoded columns.
_MAPPING_ROWS = 4_000
# At most this many first-occurrence rows per categorical column join that sample.
_MAPPING_CATEGORIES = 1_000


@dataclass(frozen=True)
class NativeImportanceResult(Result):
    """A model's own importances, per raw input column.

    Attributes
    ----------
    feature_names: the raw input columns, length ``F``.
    importance: ``(F,)`` non-negative importances (coefficient x std summed per
        raw column, or impurity importance, or a booster's share of gain or splits,
        summing to 1).
    signed: ``(F,)`` raw-column sums of ``coefficient x std`` (signed, same
        units as ``importance``); ``None`` for trees.
    basis: ``"coefficient×std"``, ``"impurity"``, ``"total gain"`` or ``"split count"``.
    caveat: the bias sentence for trees and boosters, ``None`` for linear models.
    estimator: type name of the model (the Pipeline's last step).
    output_name: what a linear model's coefficients act on, e.g. ``"decision
        function of P(1)"`` or ``"prediction"``; ``""`` for trees.
    encoded_names: the ``P`` columns the final estimator sees.
    encoded_importance: ``(P,)`` importance of each encoded column.
    encoded_coefficients: ``(P,)`` coefficients (linear models), else ``None``.
    encoded_std: ``(P,)`` population standard deviations of the encoded
        columns over the rows (linear models), else ``None``.
    encoded_to_raw: for each encoded column, the raw columns it is made from
        (empty when it could not be traced; see the warnings).
    n_rows: rows the standard deviations were computed over (0 for trees).
    """

    kind: ClassVar[str] = "native_importance"
    feature_names: tuple[str, ...] = ()
    importance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    signed: np.ndarray | None = None
    basis: str = ""
    caveat: str | None = None
    estimator: str = ""
    output_name: str = ""
    encoded_names: tuple[str, ...] = ()
    encoded_importance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    encoded_coefficients: np.ndarray | None = None
    encoded_std: np.ndarray | None = None
    encoded_to_raw: tuple[tuple[str, ...], ...] = ()
    n_rows: int = 0

    def ranking(self) -> tuple[str, ...]:
        """Raw feature names from most to least important."""
        order = np.argsort(-self.importance, kind="stable")
        return tuple(self.feature_names[i] for i in order)


def mean_abs_attribution(result: AttributionResult) -> tuple[tuple[str, ...], np.ndarray]:
    """The "mean |SHAP|" global view: mean absolute attribution per feature.

    Parameters
    ----------
    result:
        Any attribution result (SHAP, LIME, ...), ``values`` of shape ``(n, F)``.

    Returns
    -------
    (feature_names, values)
        ``F`` names and ``(F,)`` means of ``|values|`` over rows, in the
        attribution's units; rows where a value is NaN are skipped for that
        feature.
    """
    values = np.asarray(result.values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise AnalysisError("The attributions hold no rows, so there is no mean absolute attribution to show.")
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column is NaN, said by the value itself
        means = np.nanmean(np.abs(values), axis=0)
    return tuple(result.feature_names), means


# -- the Pipeline's column mapping ------------------------------------------------------------------


def _steps_transform(steps: tuple[tuple[str, Any], ...], final: Any, raw: tuple[str, ...]) -> Any:
    """A callable applying the transformer ``steps`` to raw model input (output type kept)."""
    return EncodedView(steps=steps, final=final, raw_columns=raw, sources=np.zeros(0, dtype=np.int64)).transform


def _model_input(X: pd.DataFrame, by_name: bool) -> Any:
    return X if by_name else X.to_numpy()


def _mapping_rows(X: pd.DataFrame) -> np.ndarray:
    """Row positions that show every category and each numeric column's extremes."""
    n = len(X)
    picks = [np.unique(np.linspace(0, n - 1, min(n, _MAPPING_ROWS)).round().astype(np.int64))]
    for name in X.columns:
        column = X[name]
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            finite = np.isfinite(values)
            if finite.any():
                where = np.flatnonzero(finite)
                picks.append(where[[np.argmin(values[finite]), np.argmax(values[finite])]])
            if (~finite).any():
                picks.append(np.flatnonzero(~finite)[:1])
        else:
            picks.append(np.flatnonzero(~column.duplicated().to_numpy())[:_MAPPING_CATEGORIES])
    return np.unique(np.concatenate(picks))


def _changed_columns(before: Any, after: Any) -> np.ndarray:
    """``(P,)`` whether each encoded column differs anywhere (NaN equals NaN)."""
    import scipy.sparse as sp

    if sp.issparse(before) or sp.issparse(after):
        diff = sp.csr_matrix(before) - sp.csr_matrix(after)
        changed: np.ndarray = np.asarray(abs(diff).max(axis=0).todense()).ravel() > 0
        return changed
    a = np.asarray(before, dtype=np.float64)
    b = np.asarray(after, dtype=np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    changed = ~same.all(axis=0)
    return changed


def _traced_sources(transform: Any, X: pd.DataFrame, by_name: bool, ctx: JobContext) -> np.ndarray:
    """``(F, P)`` bool: which raw columns each encoded column depends on, measured by rotation."""
    sample = X.iloc[_mapping_rows(X)].reset_index(drop=True)
    m = len(sample)
    base = transform(_model_input(sample, by_name))
    depends = np.zeros((X.shape[1], base.shape[1]), dtype=bool)
    if m < 2:
        return depends
    rotate = np.roll(np.arange(m), 1)
    for j, name in enumerate(X.columns):
        ctx.check_cancelled()
        ctx.progress(0.1 + 0.8 * j / X.shape[1], f"Tracing encoded columns of {name}")
        shifted = sample.copy()
        shifted[name] = sample[name].array.take(rotate)
        depends[j] = _changed_columns(base, transform(_model_input(shifted, by_name)))
    ctx.check_cancelled()
    return depends


def _column_std(Z: Any) -> np.ndarray:
    """Population standard deviation of each column of a dense or sparse matrix."""
    import scipy.sparse as sp

    if sp.issparse(Z):
        Z = sp.csr_matrix(Z, dtype=np.float64)
        mean = np.asarray(Z.mean(axis=0)).ravel()
        mean_sq = np.asarray(Z.multiply(Z).mean(axis=0)).ravel()
        std: np.ndarray = np.sqrt(np.maximum(mean_sq - mean**2, 0.0))
        return std
    Z = np.asarray(Z, dtype=np.float64)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(Z, axis=0)
    return std


def _encoded_names(steps: tuple[tuple[str, Any], ...], n_encoded: int) -> tuple[str, ...]:
    names: Any = None
    try:
        for _, step in steps:
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            names = step.get_feature_names_out(names)
        result = tuple(str(s) for s in names) if names is not None else ()
    except Exception:  # noqa: BLE001 - many transformers cannot name their outputs; positions will do
        result = ()
    return result if len(result) == n_encoded else tuple(f"x{e}" for e in range(n_encoded))


def _linear_coefficients(final: Any, task: Task, class_index: int | None, model_name: str) -> np.ndarray:
    coef = np.asarray(final.coef_, dtype=np.float64)
    if coef.ndim == 1:
        return coef
    if coef.shape[0] == 1:
        row: np.ndarray = coef[0]
        # A binary linear classifier's single row scores the second class; the first is its mirror.
        scored: np.ndarray = -row if task is Task.CLASSIFICATION and class_index == 0 else row
        return scored
    if task is Task.CLASSIFICATION and class_index is not None and coef.shape[0] > class_index:
        chosen: np.ndarray = coef[class_index]
        return chosen
    raise AnalysisError(
        f"The model {model_name} has {coef.shape[0]} rows of coefficients, so no single output can be explained "
        "by them."
    )


# -- entry point --------------------------------------------------------------------------------------


def _own_importance_steps(model: Model) -> tuple[tuple[tuple[str, Any], ...], Any]:
    """The pipeline's steps and final estimator; raises :class:`AnalysisError` when it has no own importances.

    A booster read from its own file has its library's importances instead (no steps, no estimator).
    """
    if isinstance(model, BoosterModel):
        return (), None
    estimator = model.estimator
    if estimator is None:
        raise AnalysisError(
            f"The model {model.name} ({model.format} format) exposes neither coefficients nor impurity "
            "importances; use permutation importance or mean |SHAP| instead.",
            path=model.path,
        )
    steps, final = split_pipeline(estimator)
    if getattr(final, "coef_", None) is None and getattr(final, "feature_importances_", None) is None:
        raise AnalysisError(
            f"The model {model.name} is a {type(final).__name__}, which has neither coefficients nor impurity "
            "importances; use permutation importance or mean |SHAP| instead.",
            path=model.path,
        )
    return steps, final


def refusal(model: Model, *, feature_names: Sequence[str] = ()) -> str | None:
    """Why the model's own importance cannot be shown (the sentence :func:`run` would raise), or ``None``."""
    try:
        _own_importance_steps(model)
    except AnalysisError as exc:
        return exc.message
    return None


def _booster_run(
    inputs: AuditInputs, model: BoosterModel, *, ctx: JobContext, klass: Any, importance_type: str
) -> NativeImportanceResult:
    """A booster's own gain or split importance, per raw input column."""
    started = utc_now()
    if importance_type not in BOOSTER_BASES:
        raise AnalysisError(
            f"The importance type {importance_type!r} is not one the boosters give; choose gain or split."
        )
    ctx.check_cancelled()
    ctx.progress(0.0, "Reading the booster's own importances")
    X = inputs.X
    raw = tuple(str(c) for c in X.columns)
    booster_names = model.info.column_names()
    if model.input_columns is not None:
        sources = [raw.index(name) if name in raw else -1 for name in booster_names]
    elif len(raw) == model.info.n_features:
        sources = list(range(len(raw)))  # the file names no features: the data's columns, in order
    else:
        raise AnalysisError(
            f"The booster {model.name} has {model.info.n_features} unnamed features but the data has {len(raw)} "
            "feature columns, so its importances cannot be matched to them."
        )
    totals = np.asarray(model.native_importance(importance_type), dtype=np.float64)
    if totals.shape != (len(booster_names),) or not np.all(np.isfinite(totals)) or np.any(totals < 0):
        raise AnalysisError(f"The booster {model.name} reported importances Probity cannot use.")
    total = totals.sum()
    encoded_importance = totals / total if total > 0 else np.zeros_like(totals)
    depends = np.zeros((len(raw), len(booster_names)), dtype=bool)
    for e, j in enumerate(sources):
        if j >= 0:
            depends[j, e] = True
    importance = depends.astype(np.float64) @ encoded_importance
    # CatBoost's one importance of its own is PredictionValuesChange, with its own caveat.
    catboost = model.format == "catboost"
    if catboost:
        from engine.models.catboost_adapter import CATBOOST_CAVEAT

        caveat, basis = CATBOOST_CAVEAT, "PredictionValuesChange"
    else:
        caveat, basis = BOOSTER_CAVEAT, BOOSTER_BASES[importance_type]
    warn = [caveat]
    if total == 0:
        warn.append(f"The booster {model.name} makes no splits, so every importance is zero.")
    parameters = {
        "klass": klass.item() if isinstance(klass, np.generic) else klass,
        "importance_type": importance_type,
    }
    result = NativeImportanceResult(
        provenance=inputs.provenance(
            method=METHOD.name, parameters=parameters, ctx=ctx, started_at=started, warnings=warn
        ),
        feature_names=raw,
        importance=importance,
        signed=None,
        basis=basis,
        caveat=caveat,
        estimator=f"{model.info.title} booster" if not catboost else "CatBoost model",
        output_name="",
        encoded_names=tuple(booster_names),
        encoded_importance=encoded_importance,
        encoded_coefficients=None,
        encoded_std=None,
        encoded_to_raw=tuple(tuple(raw[j] for j in np.flatnonzero(depends[:, e])) for e in range(len(booster_names))),
        n_rows=0,
    )
    ctx.progress(1.0, "Done")
    return result


def run(
    inputs: AuditInputs, *, ctx: JobContext, klass: Any | None = None, importance_type: str = "gain"
) -> NativeImportanceResult:
    """The model's own importance of each raw input column.

    Parameters
    ----------
    inputs:
        Data, roles and model (a scikit-learn estimator or Pipeline).
        Standard deviations use every row of ``inputs.X``.
    ctx:
        Progress and cancel (nothing here is random).
    klass:
        For a multiclass linear model, the class whose coefficients are used
        (``None``: the first class); for a binary one, the first class's
        coefficients are the mirror of the second's.  Ignored by trees, whose
        impurity importance has no class, and by boosters.
    importance_type:
        For XGBoost and LightGBM boosters: ``"gain"`` (total gain of the splits
        on each feature) or ``"split"`` (number of splits); other models ignore it.

    Returns
    -------
    NativeImportanceResult
        Linear: ``importance_f = sum_{e from f} |beta_e| sd_e`` and ``signed_f =
        sum_{e from f} beta_e sd_e``.  Trees: impurity importance summed per raw
        column, with the impurity caveat.

    Raises
    ------
    AnalysisError
        When the model has neither ``coef_`` nor ``feature_importances_``
        (the message names the model's type).
    """
    started = utc_now()
    model = inputs.model
    class_index, output = resolve_output(model, klass)
    if isinstance(model, BoosterModel):
        return _booster_run(inputs, model, ctx=ctx, klass=klass, importance_type=importance_type)
    steps, final = _own_importance_steps(model)
    estimator = model.estimator
    type_name = type(final).__name__
    linear = getattr(final, "coef_", None) is not None

    X = inputs.X
    raw = tuple(str(c) for c in X.columns)
    by_name = model.input_columns is not None
    ctx.check_cancelled()
    ctx.progress(0.0, "Reading the model's own importances")
    warn: list[str] = []

    transform = _steps_transform(steps, final, raw)
    if not steps:
        depends = np.eye(len(raw), dtype=bool)
    else:
        try:
            view = encoded_view(estimator, raw, explainer="Native importance")
            depends = np.zeros((len(raw), view.n_encoded), dtype=bool)
            depends[view.sources, np.arange(view.n_encoded)] = True
        except AnalysisError:
            # A transformer that mixes columns or has no known layout: measure the dependence instead.
            depends = _traced_sources(transform, X, by_name, ctx)
    encoded_names = raw if not steps else _encoded_names(steps, depends.shape[1])
    n_encoded = depends.shape[1]

    coefficients: np.ndarray | None = None
    std: np.ndarray | None = None
    n_rows = 0
    if linear:
        coefficients = _linear_coefficients(final, model.task, class_index, model.name)
        if coefficients.shape[0] != n_encoded:
            raise AnalysisError(
                f"The model {model.name} has {coefficients.shape[0]} coefficients but its inputs have "
                f"{n_encoded} columns, so they cannot be matched."
            )
        ctx.progress(0.9, "Measuring the spread of each encoded column")
        ctx.check_cancelled()
        if not steps:
            try:
                Z = X.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise AnalysisError(
                    f"The feature columns of {inputs.dataset.name if inputs.dataset else 'the data'} are not all "
                    f"numeric, so the coefficients of {model.name} cannot be scaled by their spread."
                ) from exc
        else:
            Z = transform(_model_input(X, by_name))
        std = _column_std(Z)
        n_rows = len(X)
        encoded_importance = np.abs(coefficients) * std
        encoded_signed = coefficients * std
        basis = "coefficient×std"
        caveat = None
        output_name = output if model.task is Task.REGRESSION else f"decision function of {output}"
    else:
        encoded_importance = np.asarray(final.feature_importances_, dtype=np.float64)
        if encoded_importance.shape[0] != n_encoded:
            raise AnalysisError(
                f"The model {model.name} reports {encoded_importance.shape[0]} importances but its inputs have "
                f"{n_encoded} columns, so they cannot be matched."
            )
        encoded_signed = None
        basis = "impurity"
        caveat = IMPURITY_CAVEAT
        output_name = ""
        warn.append(IMPURITY_CAVEAT)

    # Each encoded column's share goes in equal parts to the raw columns it is made from.
    n_sources = depends.sum(axis=0)
    share = np.divide(depends, n_sources, out=np.zeros(depends.shape), where=n_sources > 0)
    importance = share @ encoded_importance
    signed = None if encoded_signed is None else share @ encoded_signed

    mixed = [encoded_names[e] for e in np.flatnonzero(n_sources > 1)]
    if mixed:
        listed = ", ".join(repr(m) for m in mixed[:5]) + (" and others" if len(mixed) > 5 else "")
        warn.append(
            f"The encoded columns {listed} are made from several raw columns; their importance is shared "
            "equally among those columns."
        )
    lost = (n_sources == 0) & (encoded_importance > 0)
    if lost.any():
        listed = ", ".join(repr(encoded_names[e]) for e in np.flatnonzero(lost)[:5])
        fraction = encoded_importance[lost].sum() / max(encoded_importance.sum(), np.finfo(float).tiny)
        warn.append(
            f"The encoded columns {listed} could not be traced to a raw column, so their importance "
            f"({fraction:.0%} of the total) is left out."
        )

    parameters = {"klass": klass.item() if isinstance(klass, np.generic) else klass}
    result = NativeImportanceResult(
        provenance=inputs.provenance(
            method=METHOD.name, parameters=parameters, ctx=ctx, started_at=started, warnings=warn
        ),
        feature_names=raw,
        importance=importance,
        signed=signed,
        basis=basis,
        caveat=caveat,
        estimator=type_name,
        output_name=output_name,
        encoded_names=tuple(encoded_names),
        encoded_importance=encoded_importance,
        encoded_coefficients=coefficients,
        encoded_std=std,
        encoded_to_raw=tuple(tuple(raw[j] for j in np.flatnonzero(depends[:, e])) for e in range(n_encoded)),
        n_rows=n_rows,
    )
    ctx.progress(1.0, "Done")
    return result


METHOD = Method(
    name="native",
    title="Model's own importance",
    short_title="Native importance",
    run=run,
    summary=(
        "The importance a model carries itself: coefficient times standard deviation for linear models, "
        "impurity importance for trees and ensembles, gain or split counts for XGBoost and LightGBM boosters, "
        "summed back to the raw input columns."
    ),
    # The report's methodology text: reports of this version rebuild byte for byte from it (probity verify,
    # tests/fixtures/before_calls), so it changes only with the version.  Boosters' basis is in their caveat.
    description=(
        "The model's own importance: the impurity decrease for tree ensembles, or coefficient times feature "
        "standard deviation for linear models. It costs nothing to compute but is not comparable across model "
        "types."
    ),
    params=(
        class_param(
            help="For a multiclass linear model, the class whose coefficients are used; trees ignore it.",
            none="the first class",
        ),
        Param(
            "importance_type",
            "choice",
            "gain",
            label="Booster importance",
            choices=tuple(BOOSTER_BASES),
            help="For XGBoost and LightGBM models: the total gain of the splits on each feature, or the number "
            "of splits; other models ignore it.",
        ),
    ),
    result=NativeImportanceResult,
    needs=frozenset({"estimator"}),
    view="importance",
    random=False,
)
