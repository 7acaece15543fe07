"""``shap``: choose the exact SHAP algorithm the model allows, and record why.

Tree ensembles (scikit-learn's, and XGBoost, LightGBM and CatBoost models read
from their own files, explained in their margin space) get exact TreeSHAP,
linear models exact linear SHAP, anything else (ONNX, torch, other estimators,
pipelines TreeSHAP cannot map back to raw columns, CatBoost models with counters
over feature combinations) KernelSHAP.  The choice and its reason are written into the result's
provenance parameters (``auto_choice``, ``auto_reason``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from engine.attribution import AttributionResult
from engine.errors import AnalysisError
from engine.explain import kernelshap, linearshap, treeshap
from engine.explain._pipeline import split_pipeline, wrapper_library
from engine.explain._trees import is_tree_estimator
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.params import Param, class_param, device_param, rows_param

__all__ = ["choose", "run", "METHOD"]

# Boosters read from their own files, whose trees TreeSHAP reads (format -> the name the reason gives).
_BOOSTER_FORMATS = {"xgboost": "XGBoost", "lightgbm": "LightGBM", "catboost": "CatBoost"}


def choose(inputs: AuditInputs) -> tuple[str, str]:
    """The SHAP algorithm for this model (``"treeshap"``, ``"linearshap"`` or ``"kernelshap"``) and why."""
    model = inputs.model
    estimator = model.estimator
    if estimator is None:
        if model.format in _BOOSTER_FORMATS:
            refused = treeshap.refusal(model, feature_names=inputs.feature_names)
            if refused is None:
                return "treeshap", f"{_BOOSTER_FORMATS[model.format]} model → exact TreeSHAP in its margin space"
            return "kernelshap", f"{_BOOSTER_FORMATS[model.format]} model, but {refused[:1].lower()}{refused[1:-1]}"
        return "kernelshap", f"{model.format} model: no tree or coefficient structure to read, so KernelSHAP"
    _, final = split_pipeline(estimator)
    name = type(final).__name__
    if is_tree_estimator(final):
        return "treeshap", f"tree ensemble ({name}) → exact TreeSHAP"
    library = wrapper_library(final)
    if library is not None:
        title = _BOOSTER_FORMATS[library]
        return "treeshap", f"{title}'s scikit-learn wrapper ({name}) → exact TreeSHAP in its margin space"
    if linearshap.is_linear_estimator(final):
        return "linearshap", f"linear model ({name}) → exact linear SHAP"
    return "kernelshap", f"{name} is neither a tree ensemble nor linear → KernelSHAP"


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    rows: Sequence[int] | None = None,
    klass: Any | None = None,
    background_size: int = 100,
    n_coalitions: int | str = "auto",
    variant: str = "path_dependent",
    device: str = "auto",
) -> AttributionResult:
    """SHAP values by the exact algorithm the model allows (see :func:`choose`).

    ``variant`` and ``device`` apply to TreeSHAP and ``n_coalitions`` to
    KernelSHAP; the others ignore them.  If TreeSHAP or linear SHAP cannot map a Pipeline's
    encoded columns back to raw input columns, KernelSHAP is used and the
    reason says so.
    """
    choice, reason = choose(inputs)
    result: AttributionResult | None = None
    if choice == "treeshap":
        try:
            result = treeshap.run(
                inputs, ctx=ctx, rows=rows, klass=klass, variant=variant, background_size=background_size, device=device
            )
        except AnalysisError as exc:
            choice, reason = "kernelshap", f"{reason}, but {exc.message[:1].lower()}{exc.message[1:-1]}; so KernelSHAP"
    elif choice == "linearshap":
        try:
            result = linearshap.run(inputs, ctx=ctx, rows=rows, klass=klass, background_size=background_size)
        except AnalysisError as exc:
            choice, reason = "kernelshap", f"{reason}, but {exc.message[:1].lower()}{exc.message[1:-1]}; so KernelSHAP"
    if result is None:
        result = kernelshap.run(
            inputs, ctx=ctx, rows=rows, klass=klass, background_size=background_size, n_coalitions=n_coalitions
        )
    provenance = result.provenance
    parameters = {**provenance.parameters, "auto_choice": choice, "auto_reason": reason}
    return dataclasses.replace(result, provenance=dataclasses.replace(provenance, parameters=parameters))


METHOD = Method(
    name="shap",
    title="SHAP (automatic choice)",
    short_title="SHAP",
    run=run,
    summary=(
        "Exact TreeSHAP for tree ensembles and boosters, exact linear SHAP for linear models, KernelSHAP otherwise."
    ),
    description=(
        "Shapley values by the exact algorithm the model allows: TreeSHAP for tree ensembles, linear SHAP for "
        "linear models and Kernel SHAP for any other model. The algorithm chosen and the reason are recorded "
        "with the values."
    ),
    params=(
        rows_param(),
        class_param(),
        Param(
            "background_size",
            "int",
            100,
            label="Background rows",
            minimum=1,
            unit="rows",
            help="Background rows of KernelSHAP and of interventional TreeSHAP.",
        ),
        Param(
            "n_coalitions",
            "int_or_auto",
            "auto",
            label="Coalitions per row",
            minimum=2,
            auto="2 × features + 2048",
            help="KernelSHAP's coalition budget per row.",
        ),
        Param(
            "variant",
            "choice",
            "path_dependent",
            label="TreeSHAP variant",
            choices=treeshap.VARIANTS,
            help="TreeSHAP's expectation: path_dependent (training covers) or interventional (background rows).",
        ),
        device_param(),
    ),
    result=AttributionResult,
    needs=frozenset({"rows"}),
    rows_default="random:500",
    view="shap",
    samples="n_coalitions",
)
