"""Exact SHAP values of linear models (independent features), in raw input columns.

For ``f(x) = b + sum_j beta_j x_j`` on the encoded columns and features treated
as independent (the interventional game), the Shapley value of column ``j`` is
``beta_j (x_j - mean_j)`` with the mean over the background rows, and the base
value is ``f(mean)``.  A raw column that becomes several encoded columns (a
one-hot encoding) gets the sum of theirs, which is again exact: the model is
additive in the raw columns, so its raw-column game splits the same way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.attribution import AttributionResult, resolve_output
from engine.errors import AnalysisError
from engine.explain._pipeline import encoded_view, model_output, row_positions
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.params import Param, class_param, rows_param
from engine.results import utc_now

__all__ = ["METHOD", "run", "linear_shap_values", "linear_terms", "is_linear_estimator"]

# Generalised linear models whose prediction is exp(linear predictor).
_LOG_LINK = ("PoissonRegressor", "GammaRegressor", "TweedieRegressor")


def is_linear_estimator(estimator: Any) -> bool:
    """Whether ``estimator`` is a fitted scikit-learn linear model with ``coef_`` and ``intercept_``."""
    module = type(estimator).__module__
    return (
        (module.startswith("sklearn.linear_model") or module.startswith("sklearn.svm"))
        and hasattr(estimator, "coef_")
        and hasattr(estimator, "intercept_")
        and type(estimator).__name__ not in ("SVC", "SVR", "NuSVC", "NuSVR", "OneClassSVM")
    )


def linear_terms(estimator: Any, *, class_index: int | None) -> tuple[np.ndarray, float, str]:
    """Coefficients, intercept and output space of the explained linear output.

    Parameters
    ----------
    estimator: a fitted linear model (not a Pipeline).
    class_index: the explained class for classifiers (``None`` for regressors).

    Returns
    -------
    beta: ``(E,)`` coefficients on the encoded columns.
    intercept: the constant term.
    space: ``"log-odds"`` (logistic models), ``"margin"`` (other classifiers'
        decision function, log-link regressors) or ``"value"``.
    """
    from sklearn.base import is_classifier

    if not is_linear_estimator(estimator):
        raise AnalysisError(f"Linear SHAP explains scikit-learn linear models, not a {type(estimator).__name__}.")
    coef = estimator.coef_
    if hasattr(coef, "toarray"):
        coef = coef.toarray()
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
    name = type(estimator).__name__
    if is_classifier(estimator):
        if class_index is None:
            class_index = 1 if len(estimator.classes_) == 2 else 0
        if coef.shape[0] == 1:
            # A binary model keeps one margin, that of the positive class; class 0's is its negative.
            sign = -1.0 if class_index == 0 else 1.0
            beta, b0 = sign * coef[0], sign * float(intercept[0])
        else:
            beta, b0 = coef[class_index], float(intercept[class_index])
        logistic = name.startswith("LogisticRegression") or getattr(estimator, "loss", None) == "log_loss"
        return beta, b0, "log-odds" if logistic else "margin"
    if coef.shape[0] != 1:
        raise AnalysisError(f"Linear SHAP does not explain multi-output models, and this {name} has several outputs.")
    return coef[0], float(intercept[0]), "margin" if name in _LOG_LINK else "value"


def linear_shap_values(
    beta: np.ndarray, intercept: float, X: np.ndarray, background_mean: np.ndarray
) -> tuple[np.ndarray, float]:
    """``phi = beta * (X - mean)`` and ``base = intercept + beta . mean``.

    Parameters
    ----------
    beta: ``(E,)`` coefficients.
    intercept: constant term.
    X: ``(n, E)`` encoded rows.
    background_mean: ``(E,)`` mean of the encoded background rows.

    Returns
    -------
    values: ``(n, E)`` attributions.
    base: the expected value ``f(mean)``.
    """
    values = (np.asarray(X, dtype=np.float64) - background_mean) * beta
    return values, float(intercept + beta @ background_mean)


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    rows: Sequence[int] | None = None,
    background_size: int | None = None,
    klass: Any | None = None,
) -> AttributionResult:
    """Exact linear SHAP attributions in raw input columns.

    Parameters
    ----------
    inputs: data, roles and a model whose estimator (or Pipeline's last step) is linear.
    ctx: job context (progress, cancel, random streams).
    rows: 0-based row positions to explain; ``None`` explains every row.
    background_size: rows whose encoded mean is the reference, drawn without
        replacement with ``ctx.rng("linearshap", "background")``; ``None`` uses
        every row of the data (the mean is cheap, so nothing is gained by sampling).
    klass: class to explain (classifiers); ``None``: the positive class of a binary
        model, else the first class.

    Returns
    -------
    AttributionResult
        ``values`` ``(n, F)``, ``base_values`` ``(n,)`` = f(mean), the model's own
        ``predictions`` in the explained space and per-row additivity errors.
    """
    started = utc_now()
    t0 = time.perf_counter()
    model = inputs.model
    estimator = model.estimator
    if estimator is None:
        raise AnalysisError(
            f"Linear SHAP needs a scikit-learn linear model, but {model.name} is a {model.format} model."
        )
    class_index, output_name = resolve_output(model, klass)
    view = encoded_view(estimator, inputs.feature_names, explainer="Linear SHAP")
    if not is_linear_estimator(view.final):
        raise AnalysisError(
            f"Linear SHAP explains scikit-learn linear models, but the model {model.name} ends in a "
            f"{type(view.final).__name__}."
        )
    beta, intercept, space = linear_terms(view.final, class_index=class_index)
    positions = row_positions(rows, len(inputs.frame), explainer="Linear SHAP")
    X_all = inputs.X
    X_raw = X_all.iloc[positions]
    if background_size is None:
        pick = np.arange(len(X_all))
    else:
        if int(background_size) < 1:
            raise AnalysisError("Linear SHAP needs a background of at least one row.")
        size = min(int(background_size), len(X_all))
        pick = np.sort(ctx.rng("linearshap", "background").choice(len(X_all), size=size, replace=False))
    ctx.progress(0.1, "Encoding rows")
    X_enc = view.encode(X_raw)
    ctx.check_cancelled()
    B_enc = X_enc if (background_size is None and rows is None) else view.encode(X_all.iloc[pick])
    if np.isnan(X_enc).any() or np.isnan(B_enc).any():
        raise AnalysisError(
            "Linear SHAP cannot explain rows with missing values that the model's pipeline does not impute."
        )
    if beta.shape[0] != X_enc.shape[1]:
        raise AnalysisError(
            f"The linear model has {beta.shape[0]} coefficients but its pipeline produces "
            f"{X_enc.shape[1]} encoded columns."
        )
    ctx.progress(0.5, "Computing attributions")
    mean = B_enc.mean(axis=0)
    encoded_values, base = linear_shap_values(beta, intercept, X_enc, mean)
    values = view.to_raw(encoded_values)
    data = X_raw if model.input_columns is not None else X_raw.to_numpy()
    predictions = model_output(estimator, data, space=space, class_index=class_index)
    base_values = np.full(len(positions), base)
    additivity = np.abs(values.sum(axis=1) + base_values - predictions)
    ctx.progress(1.0, "Linear SHAP done")
    label = output_name
    if model.classes is not None and class_index is not None and space in ("log-odds", "margin"):
        label = f"{space}({model.classes[class_index]})"
    elif space == "margin":
        label = "log(prediction)"
    parameters = {
        "background_size": int(pick.shape[0]),
        "background": "all rows" if background_size is None else "sampled",
        "class": None if class_index is None else model.classes[class_index],  # type: ignore[index]
        "class_index": class_index,
        "output_space": space,
        "estimator": type(view.final).__name__,
        "encoded_columns": view.n_encoded,
        "n_rows": len(positions),
        "reason": "linear model → exact linear SHAP (independent features)",
    }
    return AttributionResult(
        provenance=inputs.provenance(method="linearshap", parameters=parameters, ctx=ctx, started_at=started),
        method="linearshap",
        feature_names=tuple(inputs.feature_names),
        rows=positions,
        values=values,
        base_values=base_values,
        predictions=predictions,
        output_name=label,
        output_space=space,
        class_index=class_index,
        quality={"additivity_error": additivity},
        summary={
            "max_additivity_error": float(additivity.max()),
            "mean_additivity_error": float(additivity.mean()),
            "expected_value": float(base),
        },
        extras={"encoded_coefficients": beta},
        compute_seconds=time.perf_counter() - t0,
    )


METHOD = Method(
    name="linearshap",
    title="Linear SHAP (exact, linear models)",
    short_title="Linear SHAP",
    run=run,
    summary=(
        "Exact Shapley values of scikit-learn linear models with independent features: "
        "coefficient times the distance from the background mean, summed into raw input columns."
    ),
    description=(
        "For a linear model the Shapley value of a feature is its coefficient times the feature's deviation "
        "from the background mean. The values are exact and add up, with the base value, to the model's output."
    ),
    params=(
        rows_param(),
        Param(
            "background_size",
            "int",
            None,
            label="Background rows",
            minimum=1,
            none="every row",
            unit="rows",
            help="Rows whose mean is the reference, drawn from the data.",
        ),
        class_param(),
    ),
    result=AttributionResult,
    needs=frozenset({"rows", "linear model"}),
    rows_default="random:500",
    view="shap",
    samples="background_size",
)
