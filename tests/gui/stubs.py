"""Tiny, real engine results built straight from arrays: no model fitted, no analysis run.

Each factory returns the engine's own frozen result type (so a view reads
exactly what an analysis would hand it) with a handful of rows and features,
and takes the arguments a test needs for its edge cases: one feature, NaN
values, very long names, many classes.  :func:`stub_session` gives a real
:class:`gui.session.Session` holding a small in-memory dataset and
:class:`StubModel`, a fixed formula standing in for a trained model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.attribution import AttributionResult
from engine.explain.clusters import ClusterProfile, ExplanationClustersResult, KLimeFit
from engine.explain.groups import GroupDifference, GroupMetricsResult, GroupRow
from engine.explain.native import NativeImportanceResult
from engine.explain.pdp import FeatureDependence, PartialDependenceResult
from engine.explain.performance import CalibrationBins, PerformanceResult, RocCurve
from engine.explain.permutation import PermutationImportanceResult
from engine.explain.surrogate import LinearSurrogate, SurrogateResult, SurrogateRule, TreeSurrogate
from engine.models.base import Model, Task
from engine.results import Provenance

__all__ = [
    "FEATURES",
    "LONG_NAME",
    "provenance",
    "shap_result",
    "lime_result",
    "permutation_result",
    "native_result",
    "performance_result",
    "regression_performance_result",
    "dependence_result",
    "surrogate_result",
    "clusters_result",
    "group_metrics_result",
    "stub_frame",
    "StubModel",
    "open_stub_inputs",
    "stub_session",
]

#: The stub frame's model inputs (numeric), in the model's order.
FEATURES: tuple[str, ...] = ("age", "income", "debt")
#: A 2,500-character column name, as a hostile or careless file may carry.
LONG_NAME = "very_long_feature_" + "x" * (2500 - len("very_long_feature_"))


def provenance(
    method: str, *, parameters: Mapping[str, Any] | None = None, warnings: Sequence[str] = (), seed: int = 0
) -> Provenance:
    """A provenance with no inputs recorded (the result was never computed)."""
    return Provenance(
        method=method,
        parameters=dict(parameters or {}),
        seed=seed,
        data_sha256=None,
        model_sha256=None,
        versions={},
        started_at=None,
        finished_at=None,
        warnings=tuple(warnings),
    )


def _grid(n: int, f: int, low: float = -0.3, high: float = 0.4) -> np.ndarray:
    """``(n, f)`` distinct values of mixed sign, largest magnitude in the last column."""
    if n * f == 0:
        return np.zeros((n, f))
    base = np.linspace(low, high, n * f).reshape(n, f)
    return base * (1.0 + np.arange(f))[None, :] / f


# -- attributions ------------------------------------------------------------------------------------


def shap_result(
    *,
    method: str = "treeshap",
    features: Sequence[str] = FEATURES,
    rows: Sequence[int] = (0, 1, 2, 3),
    values: Any = None,
    base_value: float = 0.3,
    output_name: str = "P(1)",
    output_space: str = "probability",
    quality_error: float = 0.0,
    warnings: Sequence[str] = (),
) -> AttributionResult:
    """An additive attribution (SHAP, or IG with ``method="ig"``): predictions = base + row sums.

    ``quality_error`` is the additivity (SHAP) or completeness (IG) error recorded for every row.
    """
    n, f = len(rows), len(features)
    v = _grid(n, f) if values is None else np.asarray(values, dtype=np.float64).reshape(n, f)
    base = np.full(n, base_value)
    key = "completeness_error" if method == "ig" else "additivity_error"
    params = {} if method == "ig" else {"auto_choice": method, "auto_reason": "the model is a tree ensemble"}
    return AttributionResult(
        provenance=provenance(method, parameters=params, warnings=warnings),
        method=method,
        feature_names=tuple(features),
        rows=np.asarray(rows, dtype=np.int64),
        values=v,
        base_values=base,
        predictions=base + np.nansum(v, axis=1),
        output_name=output_name,
        output_space=output_space,
        class_index=1 if output_space == "probability" else None,
        quality={key: np.full(n, quality_error)},
    )


def lime_result(
    *,
    features: Sequence[str] = FEATURES,
    rows: Sequence[int] = (0, 1, 2),
    values: Any = None,
    r2: Sequence[float] | None = None,
    model: Sequence[float] | None = None,
    local: Sequence[float] | None = None,
    stability: Sequence[float] | None = None,
    stability_runs: int = 3,
    warnings: Sequence[str] = (),
) -> AttributionResult:
    """A LIME result: coefficients, the surrogate's R² and prediction at each row, and (optionally) stability."""
    n, f = len(rows), len(features)
    v = _grid(n, f) if values is None else np.asarray(values, dtype=np.float64).reshape(n, f)
    model_p = np.linspace(0.2, 0.6, n) if model is None else np.asarray(model, dtype=np.float64)
    local_p = model_p.copy() if local is None else np.asarray(local, dtype=np.float64)
    quality: dict[str, np.ndarray] = {
        "r2": np.full(n, 0.9) if r2 is None else np.asarray(r2, dtype=np.float64),
        "local_prediction": local_p,
        "prediction_gap": np.abs(local_p - model_p),
        "output_spread": np.full(n, 0.3),
    }
    params: dict[str, Any] = {"stability_runs": 0}
    if stability is not None:
        quality["stability_jaccard"] = np.asarray(stability, dtype=np.float64)
        params["stability_runs"] = stability_runs
    return AttributionResult(
        provenance=provenance("lime", parameters=params, warnings=warnings),
        method="lime",
        feature_names=tuple(features),
        rows=np.asarray(rows, dtype=np.int64),
        values=v,
        predictions=model_p,
        output_name="P(1)",
        output_space="probability",
        class_index=1,
        quality=quality,
        summary={"top_k": float(min(f, 5))},
        extras={"local_predictions": local_p, "intercepts": np.full(n, 0.1)},
    )


# -- global importance ------------------------------------------------------------------------------------


def permutation_result(
    *,
    features: Sequence[str] = FEATURES,
    mean: Sequence[float] | None = None,
    n_repeats: int = 4,
    scoring: str = "accuracy",
    baseline_score: float = 0.82,
    warnings: Sequence[str] = (),
) -> PermutationImportanceResult:
    """Permutation importances whose repeats spread ±0.01 around ``mean`` (a NaN mean: a NaN row)."""
    f = len(features)
    m = np.linspace(0.12, 0.01, f) if mean is None else np.asarray(mean, dtype=np.float64)
    spread = np.linspace(-0.01, 0.01, n_repeats) if n_repeats > 1 else np.zeros(1)
    importances = m[:, None] + spread[None, :]
    std = importances.std(axis=1, ddof=1) if n_repeats > 1 else np.full(f, np.nan)
    half = 2.0 * std / math.sqrt(n_repeats)  # a stand-in for Student's t: the view draws what it is given
    return PermutationImportanceResult(
        provenance=provenance("permutation", warnings=warnings),
        feature_names=tuple(features),
        importances=importances,
        mean=m,
        std=std,
        ci_low=m - half,
        ci_high=m + half,
        scoring=scoring,
        baseline_score=baseline_score,
        n_rows=40,
        n_repeats=n_repeats,
        confidence=0.95,
    )


def native_result(
    *,
    features: Sequence[str] = FEATURES,
    importance: Sequence[float] | None = None,
    basis: str = "impurity",
) -> NativeImportanceResult:
    """A model's own importance: impurity (with its caveat) or ``coefficient×std`` (signed)."""
    from engine.explain.native import IMPURITY_CAVEAT

    f = len(features)
    imp = np.linspace(0.5, 0.1, f) if importance is None else np.asarray(importance, dtype=np.float64)
    linear = basis != "impurity"
    return NativeImportanceResult(
        provenance=provenance("native"),
        feature_names=tuple(features),
        importance=imp,
        signed=-imp if linear else None,
        basis=basis,
        caveat=None if linear else IMPURITY_CAVEAT,
        estimator="LogisticRegression" if linear else "RandomForestClassifier",
        output_name="decision function of P(1)" if linear else "",
        encoded_names=tuple(features),
        encoded_importance=imp,
        encoded_to_raw=tuple((name,) for name in features),
        n_rows=40 if linear else 0,
    )


# -- performance ------------------------------------------------------------------------------------------


def performance_result(
    *, classes: Sequence[Any] = (0, 1), metrics: Mapping[str, float] | None = None, n_dropped: int = 0
) -> PerformanceResult:
    """A classifier's performance: a diagonal-heavy confusion matrix, one ROC curve per class (one if binary)."""
    k = len(classes)
    confusion = np.full((k, k), 1, dtype=np.int64) + np.diag(np.arange(8, 8 + k))
    fpr = np.array([0.0, 0.1, 0.3, 1.0])
    tpr = np.array([0.0, 0.6, 0.9, 1.0])
    positives = [classes[1]] if k == 2 else list(classes)
    roc = tuple(
        RocCurve(label=c, fpr=fpr, tpr=tpr, thresholds=np.array([np.inf, 0.8, 0.4, 0.0]), auc=0.85) for c in positives
    )
    calibration = CalibrationBins(
        predicted=f"P({classes[-1]})" if k == 2 else "top-label confidence",
        edges=np.linspace(0.0, 1.0, 6),
        mean_predicted=np.array([0.1, 0.3, np.nan, 0.7, 0.9]),
        observed=np.array([0.05, 0.35, np.nan, 0.6, 0.95]),
        count=np.array([10, 8, 0, 9, 13]),
    )
    default = {
        "accuracy": 0.8,
        "balanced_accuracy": 0.78,
        "roc_auc": 0.85,
        "pr_auc": 0.8,
        "log_loss": 0.45,
        "brier": math.nan,
    }
    return PerformanceResult(
        provenance=provenance("performance"),
        task="classification",
        metrics=dict(default if metrics is None else metrics),
        class_labels=tuple(classes),
        confusion=confusion,
        calibration=calibration,
        roc=roc,
        n_rows=int(confusion.sum()),
        n_dropped=n_dropped,
    )


def regression_performance_result() -> PerformanceResult:
    """A regressor's performance: metrics only, no confusion, ROC or calibration."""
    return PerformanceResult(
        provenance=provenance("performance"),
        task="regression",
        metrics={"r2": 0.7, "mae": 1.5, "rmse": 2.25},
        n_rows=30,
    )


# -- dependence ---------------------------------------------------------------------------------------------


def dependence_result(
    *,
    numeric: Sequence[str] = ("age", "income"),
    categorical: Mapping[str, Sequence[Any]] | None = None,
    rows: Sequence[int] = (0, 1, 2, 3, 4),
    grid_size: int = 5,
    ice: Mapping[str, Any] | None = None,
) -> PartialDependenceResult:
    """Curves for each numeric feature (slope growing with its position) and each categorical one.

    ``ice`` may replace a feature's ``(n, G)`` ICE values (NaN included); its PDP is their mean over rows.
    """
    n = len(rows)
    deps: list[FeatureDependence] = []
    for j, name in enumerate(numeric):
        grid = np.linspace(0.0, 10.0, grid_size)
        values = (0.01 * (j + 1)) * grid[None, :] + np.linspace(0.1, 0.5, n)[:, None]
        if ice is not None and name in ice:
            values = np.asarray(ice[name], dtype=np.float64)
        deps.append(_dependence(name, "numeric", tuple(grid.tolist()), values))
    for name, categories in (categorical or {}).items():
        values = np.linspace(0.2, 0.4, len(categories))[None, :] + np.linspace(0.0, 0.1, n)[:, None]
        if ice is not None and name in ice:
            values = np.asarray(ice[name], dtype=np.float64)
        deps.append(_dependence(name, "categorical", tuple(categories), values))
    return PartialDependenceResult(
        provenance=provenance("pdp"),
        feature_names=tuple(d.feature for d in deps),
        features=tuple(deps),
        rows=np.asarray(rows, dtype=np.int64),
        output_name="P(1)",
        output_space="probability",
        class_index=1,
        grid_resolution=grid_size,
        percentiles=(0.05, 0.95),
        n_rows=n,
    )


def _dependence(name: str, kind: str, grid: tuple[Any, ...], ice: np.ndarray) -> FeatureDependence:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column has a NaN mean, as the engine's
        pdp = np.nanmean(ice, axis=0) if ice.size else np.zeros(ice.shape[1])
    return FeatureDependence(feature=name, kind=kind, grid=grid, pdp=pdp, ice=ice)


# -- surrogates ---------------------------------------------------------------------------------------------


def surrogate_result(*, classification: bool = True, r2_holdout: float = 0.71) -> SurrogateResult:
    """A depth-1 tree (two rules) and a two-term linear model."""
    agreement = 0.9 if classification else None
    rules = (
        SurrogateRule(("income <= 41,150",), 0.2, 30, "If income <= 41,150, then 0.2 (30 rows)."),
        SurrogateRule(("income > 41,150",), 0.7, 10, "If income > 41,150, then 0.7 (10 rows)."),
    )
    tree = TreeSurrogate(
        max_depth=1,
        rules=rules,
        children_left=np.array([1, -1, -1]),
        children_right=np.array([2, -1, -1]),
        feature=np.array([1, -1, -1]),
        threshold=np.array([41150.0, np.nan, np.nan]),
        value=np.array([0.325, 0.2, 0.7]),
        n_train=np.array([40, 30, 10]),
        r2_train=0.8,
        r2_holdout=r2_holdout,
        agreement_holdout=agreement,
    )
    linear = LinearSurrogate(
        terms=("income", "debt"),
        raw_columns=("income", "debt"),
        coefficients=np.array([1e-5, -0.02]),
        standardised=np.array([0.12, -0.05]),
        intercept=0.1,
        alpha=0.001,
        r2_train=0.6,
        r2_holdout=math.nan,
        agreement_holdout=agreement,
        equation="0.1 + 1e-05 × income − 0.02 × debt",
    )
    return SurrogateResult(
        provenance=provenance("surrogate"),
        output_name="P(1)" if classification else "prediction",
        output_space="probability" if classification else "value",
        class_index=1 if classification else None,
        design_names=FEATURES,
        design_raw=FEATURES,
        tree=tree,
        linear=linear,
        n_train=40,
        n_holdout=13,
    )


# -- clusters ---------------------------------------------------------------------------------------------


def clusters_result(
    *,
    k: int = 3,
    per_cluster: int = 4,
    features: Sequence[str] = FEATURES,
    projection_method: str = "pca",
    r2: Sequence[float] | None = None,
    global_r2: float = 0.8,
) -> ExplanationClustersResult:
    """``k`` clusters of ``per_cluster`` rows each, cluster ``c`` around ``(10c, -5c)`` in the projection."""
    n, f = k * per_cluster, len(features)
    labels = np.repeat(np.arange(k), per_cluster)
    jitter = np.tile(np.linspace(-1.0, 1.0, per_cluster), k)
    projection = np.column_stack([10.0 * labels + jitter, -5.0 * labels + jitter])
    r2_values = np.linspace(0.9, 0.3, k) if r2 is None else np.asarray(r2, dtype=np.float64)
    profiles = tuple(
        ClusterProfile(
            cluster=c,
            size=per_cluster,
            share=1.0 / k,
            mean_prediction=0.1 * (c + 1),
            mean_attribution=np.linspace(0.2, -0.1, f) * (c + 1),
            numeric_features=tuple(features),
            smd=np.zeros(f),
            cluster_mean=np.zeros(f),
            rest_mean=np.zeros(f),
            highlights=(f"{features[0]} is higher in cluster {c}",),
        )
        for c in range(k)
    )
    klime = KLimeFit(
        design_names=tuple(features),
        design_raw=tuple(features),
        coefficients=np.zeros((k, f)),
        standardised=np.zeros((k, f)),
        intercepts=np.zeros(k),
        r2=r2_values,
        global_coefficients=np.zeros(f),
        global_standardised=np.zeros(f),
        global_intercept=0.0,
        global_r2=global_r2,
        alpha=0.001,
    )
    tried = np.arange(2, max(k, 2) + 2)
    return ExplanationClustersResult(
        provenance=provenance("clusters"),
        attribution_method="treeshap",
        output_name="P(1)",
        output_space="probability",
        feature_names=tuple(features),
        rows=np.arange(n, dtype=np.int64),
        labels=labels,
        k=k,
        k_tried=tried,
        silhouettes=np.linspace(0.5, 0.2, tried.size),
        silhouette_rows=n,
        centroids=np.zeros((k, f)),
        projection=projection,
        projection_method=projection_method,
        explained_variance=np.array([0.6, 0.25]) if projection_method == "pca" else None,
        profiles=profiles,
        klime=klime,
    )


# -- groups -------------------------------------------------------------------------------------------------


def group_metrics_result(
    *, groups: Sequence[str] = ("a", "b"), attribute: str = "group", defined_gap: bool = True
) -> GroupMetricsResult:
    """A classifier's outcomes by group; with ``defined_gap`` off, every gap is NaN (one group defines it)."""
    n_groups = len(groups)
    rows = tuple(
        GroupRow(
            attribute=attribute,
            group=g,
            n=10 + 5 * i,
            share=(10 + 5 * i) / sum(10 + 5 * j for j in range(n_groups)),
            base_rate=0.4,
            positive_rate=0.3 + 0.1 * i,
            accuracy=0.8 - 0.05 * i,
            tpr=0.7,
            fpr=0.1 + 0.05 * i,
        )
        for i, g in enumerate(groups)
    )
    gap = 0.1 * (n_groups - 1) if defined_gap else math.nan
    differences = (
        GroupDifference(
            attribute=attribute,
            measure="demographic_parity",
            metric="positive_rate",
            difference=gap,
            ratio=0.3 / (0.3 + gap) if defined_gap else math.nan,
            low_group=groups[0] if defined_gap else "",
            high_group=groups[-1] if defined_gap else "",
        ),
    )
    return GroupMetricsResult(
        provenance=provenance("groups"),
        task="classification",
        explained_class=1,
        output_name="P(1)",
        attributes=(attribute,),
        groups=rows,
        differences=differences,
        n_rows=sum(r.n for r in rows),
    )


# -- inputs: a small dataset and a model that is a formula --------------------------------------------------


def stub_frame(n_rows: int = 12) -> pd.DataFrame:
    """Three numeric inputs, a text column, a 0/1 target and a sensitive group."""
    i = np.arange(n_rows)
    return pd.DataFrame(
        {
            "age": 20 + 3 * i,
            "income": 20_000.0 + 2_500.0 * ((i * 7) % n_rows),
            "debt": np.round(np.linspace(0.0, 9.0, n_rows), 2),
            "employment": np.where(i % 3 == 0, "retired", "employed"),
            "approved": (i % 2).astype(np.int64),
            "group": np.where(i < n_rows // 2, "a", "b"),
        }
    )


class StubModel(Model):
    """A fixed logistic formula of ``age``, ``income`` and ``debt``: a classifier that was never trained."""

    def __init__(self) -> None:
        self.task = Task.CLASSIFICATION
        self.classes = (0, 1)
        self.input_columns = FEATURES
        self.format = "sklearn"

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        x = X.to_numpy(dtype=np.float64)
        z = 0.03 * (x[:, 0] - 40.0) + 4e-5 * (x[:, 1] - 35_000.0) - 0.2 * (x[:, 2] - 4.5)
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1.0 - p, p])


def open_stub_inputs(session: Any, n_rows: int = 12, *, with_model: bool = True) -> None:
    """Open :func:`stub_frame` (target ``approved``, sensitive ``group``) and :class:`StubModel` in ``session``."""
    from engine.data import infer_schema
    from engine.schema import Dataset, ReadOptions, Roles

    frame = stub_frame(n_rows)
    dataset = Dataset(
        frame=frame,
        path=Path("stub.csv"),
        sha256="0" * 64,
        format="csv",
        options=ReadOptions(),
        schema=infer_schema(frame),
    )
    session.set_dataset(dataset, Roles(target="approved", features=FEATURES, sensitive=("group",)))
    if with_model:
        session.set_model(StubModel())


def stub_session(n_rows: int = 12, *, with_model: bool = True) -> Any:
    """A new :class:`gui.session.Session` with the stub inputs open (see :func:`open_stub_inputs`)."""
    from gui.session import Session

    session = Session()
    open_stub_inputs(session, n_rows, with_model=with_model)
    return session
