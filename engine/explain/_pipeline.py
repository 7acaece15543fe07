"""Map the encoded columns of a scikit-learn Pipeline back to its raw input columns.

Exact explainers (TreeSHAP, linear SHAP) explain the final estimator on the
columns it sees: one-hot indicators, scaled numbers, imputed values.  A person
reads raw columns, so attributions of the encoded columns that come from one raw
column are summed.  That needs, for every encoded column, the single raw column
it derives from; :func:`encoded_view` works it out from the fitted
transformers' own bookkeeping (``ColumnTransformer.output_indices_``,
``OneHotEncoder`` categories, feature selectors' supports, ...).  A transformer
that mixes columns (PCA, polynomial features, a custom function) or whose layout
is unknown raises :class:`~engine.errors.AnalysisError`, so the caller can fall
back to a model-agnostic explainer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnalysisError

__all__ = [
    "EncodedView",
    "encoded_view",
    "split_pipeline",
    "transformer_sources",
    "row_positions",
    "model_output",
    "wrapper_library",
]


def wrapper_library(estimator: Any) -> str | None:
    """``"xgboost"`` or ``"lightgbm"`` for their scikit-learn wrappers (``XGBClassifier``, ``LGBMRegressor`` ...).

    Read from the class's bases, so neither library is imported to ask.
    """
    for cls in type(estimator).__mro__:
        if cls.__module__ == "xgboost.sklearn" and cls.__name__ == "XGBModel":
            return "xgboost"
        if cls.__module__ == "lightgbm.sklearn" and cls.__name__ == "LGBMModel":
            return "lightgbm"
    return None


def split_pipeline(estimator: Any) -> tuple[tuple[tuple[str, Any], ...], Any]:
    """The transformer steps of a Pipeline and its final estimator.

    A bare estimator gives ``((), estimator)``; nested pipelines in the final
    position are flattened.  ``None`` and ``"passthrough"`` steps are kept (they
    are identities).
    """
    steps: list[tuple[str, Any]] = []
    final = estimator
    while hasattr(final, "steps") and isinstance(final.steps, list) and final.steps:
        steps.extend((str(name), step) for name, step in final.steps[:-1])
        final = final.steps[-1][1]
    return tuple(steps), final


@dataclass(frozen=True, eq=False)
class EncodedView:
    """How raw rows become the final estimator's columns, and the way back.

    Attributes
    ----------
    steps: the transformer steps applied before the final estimator, in order.
    final: the final estimator.
    raw_columns: the raw input columns, length ``F``.
    sources: ``(E,)`` int64, the raw column index each encoded column derives from.
    extra: an optional last transform applied to the steps' output (e.g. an
        estimator's own internal preprocessing), or ``None``.
    """

    steps: tuple[tuple[str, Any], ...]
    final: Any
    raw_columns: tuple[str, ...]
    sources: np.ndarray
    extra: Callable[[Any], Any] | None = None

    @property
    def n_encoded(self) -> int:
        return int(self.sources.shape[0])

    @property
    def is_identity(self) -> bool:
        """Whether encoded columns are exactly the raw columns, in order."""
        return self.n_encoded == len(self.raw_columns) and bool(
            np.array_equal(self.sources, np.arange(len(self.raw_columns)))
        )

    def transform(self, X: pd.DataFrame | np.ndarray) -> Any:
        """Run the transformer steps (and ``extra``) on raw rows, keeping their output type."""
        out: Any = X
        with warnings.catch_warnings():
            # Transformers fitted on frames warn when given arrays and vice versa; the
            # columns are in the fitted order either way.
            warnings.simplefilter("ignore", category=UserWarning)
            for _, step in self.steps:
                if step is None or (isinstance(step, str) and step == "passthrough"):
                    continue
                out = step.transform(out)
            if self.extra is not None:
                out = self.extra(out)
        return out

    def encode(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Raw rows ``(n, F)`` to the final estimator's numeric columns ``(n, E)`` float64."""
        out = _to_dense_float(self.transform(X))
        if out.ndim != 2 or out.shape[1] != self.n_encoded:
            raise AnalysisError(
                f"The pipeline produced {out.shape[-1] if out.ndim == 2 else '?'} encoded columns but "
                f"{self.n_encoded} were expected from its fitted transformers."
            )
        return out

    def to_raw(self, values: np.ndarray) -> np.ndarray:
        """Sum ``(n, E)`` encoded-column attributions into ``(n, F)`` raw-column attributions."""
        values = np.asarray(values, dtype=np.float64)
        if self.is_identity:
            return values.copy()
        F = len(self.raw_columns)
        out = np.zeros((values.shape[0], F))
        # One matrix product: (n, E) @ (E, F) one-hot of the sources.
        onehot = np.zeros((self.n_encoded, F))
        onehot[np.arange(self.n_encoded), self.sources] = 1.0
        np.matmul(values, onehot, out=out)
        return out

    def with_extra(self, extra: Callable[[Any], Any], sources: np.ndarray) -> EncodedView:
        """A view that also applies ``extra``, whose output columns derive from
        ``sources`` (indices into this view's encoded columns)."""
        if self.extra is not None:
            first = self.extra

            def chained(X: Any) -> Any:
                return extra(first(X))

            combined: Callable[[Any], Any] = chained
        else:
            combined = extra
        return EncodedView(
            steps=self.steps,
            final=self.final,
            raw_columns=self.raw_columns,
            sources=self.sources[np.asarray(sources, dtype=np.int64)],
            extra=combined,
        )


def _to_dense_float(out: Any) -> np.ndarray:
    if hasattr(out, "toarray"):
        out = out.toarray()
    elif isinstance(out, pd.DataFrame):
        out = out.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        return np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(
            "Some columns reaching the model's final step are not numeric, so its inputs cannot be explained exactly."
        ) from exc


def encoded_view(estimator: Any, raw_columns: Sequence[str], *, explainer: str = "TreeSHAP") -> EncodedView:
    """Work out how ``estimator``'s final step sees the raw columns.

    Parameters
    ----------
    estimator: a fitted estimator or Pipeline (transformer steps + final estimator).
    raw_columns: the raw input columns, in the order the estimator takes them.
    explainer: the explainer's name for error messages.

    Raises
    ------
    AnalysisError
        When a transformer's encoded columns cannot each be traced to one raw column.
    """
    steps, final = split_pipeline(estimator)
    n = len(raw_columns)
    sources = np.arange(n, dtype=np.int64)
    for name, step in steps:
        sub = transformer_sources(step, int(sources.shape[0]), name=name, explainer=explainer)
        sources = sources[sub]
    n_final = getattr(final, "n_features_in_", None)
    if n_final is not None and int(n_final) != sources.shape[0]:
        raise AnalysisError(
            f"{explainer} traced {sources.shape[0]} encoded columns through the pipeline but its final "
            f"{type(final).__name__} takes {int(n_final)}, so it cannot map them back to raw input columns."
        )
    return EncodedView(steps=steps, final=final, raw_columns=tuple(raw_columns), sources=sources)


def _refuse(step: Any, name: str, explainer: str, why: str = "") -> AnalysisError:
    detail = f" ({why})" if why else ""
    return AnalysisError(
        f"{explainer} cannot map the encoded columns of the pipeline step {name!r} "
        f"({type(step).__name__}) back to raw input columns{detail}."
    )


def transformer_sources(step: Any, n_in: int, *, name: str = "step", explainer: str = "TreeSHAP") -> np.ndarray:
    """For each output column of a fitted transformer, the input column it derives from.

    Parameters
    ----------
    step: a fitted transformer (or ``None`` / ``"passthrough"``).
    n_in: number of input columns it receives.
    name, explainer: for error messages.

    Returns
    -------
    ndarray
        ``(n_out,)`` int64 indices in ``[0, n_in)``.

    Raises
    ------
    AnalysisError
        When an output column depends on several inputs or the layout is unknown.
    """
    from sklearn.base import OneToOneFeatureMixin
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_selection import SelectorMixin
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        KBinsDiscretizer,
        Normalizer,
        OneHotEncoder,
        SplineTransformer,
        TargetEncoder,
    )

    identity = np.arange(n_in, dtype=np.int64)
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return identity
    if isinstance(step, str) and step == "drop":
        return np.zeros(0, dtype=np.int64)
    fitted_in = getattr(step, "n_features_in_", None)
    if fitted_in is not None and int(fitted_in) != n_in:
        raise _refuse(step, name, explainer, f"it was fitted on {int(fitted_in)} columns, not {n_in}")

    if isinstance(step, Pipeline):
        sources = identity
        for sub_name, sub in step.steps:
            inner = transformer_sources(sub, sources.shape[0], name=f"{name}/{sub_name}", explainer=explainer)
            sources = sources[inner]
        return sources
    if isinstance(step, ColumnTransformer):
        return _column_transformer_sources(step, n_in, name=name, explainer=explainer)
    if isinstance(step, FeatureUnion):
        parts = []
        for sub_name, sub in step.transformer_list:
            if isinstance(sub, str) and sub == "drop":
                continue
            parts.append(transformer_sources(sub, n_in, name=f"{name}/{sub_name}", explainer=explainer))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if isinstance(step, Normalizer):
        # Each output is divided by the row's norm over all inputs: it mixes columns.
        raise _refuse(step, name, explainer, "each output depends on every input column")
    if isinstance(step, TargetEncoder):
        if getattr(step, "target_type_", None) == "multiclass":
            return np.repeat(identity, len(step.classes_))
        return identity
    if isinstance(step, OneToOneFeatureMixin):
        return identity
    if isinstance(step, OneHotEncoder):
        counts = getattr(step, "_n_features_outs", None)
        if counts is None:
            raise _refuse(step, name, explainer, "its output layout is unknown")
        return np.repeat(identity, np.asarray(counts, dtype=np.int64))
    if isinstance(step, SimpleImputer):
        stats = np.asarray(step.statistics_)
        if stats.dtype.kind == "f":
            kept = ~np.isnan(stats)
        else:
            kept = ~pd.isna(pd.Series(stats, dtype=object)).to_numpy()
        if getattr(step, "keep_empty_features", False):
            kept = np.ones(n_in, dtype=bool)
        out: np.ndarray = identity[kept]
        indicator = getattr(step, "indicator_", None)
        if getattr(step, "add_indicator", False) and indicator is not None:
            out = np.concatenate([out, np.asarray(indicator.features_, dtype=np.int64)])
        return out
    if isinstance(step, MissingIndicator):
        return np.asarray(step.features_, dtype=np.int64)
    if isinstance(step, SelectorMixin):
        return np.asarray(step.get_support(indices=True), dtype=np.int64)
    if isinstance(step, KBinsDiscretizer):
        if step.encode == "ordinal":
            return identity
        encoder = getattr(step, "_encoder", None)
        if encoder is None:
            raise _refuse(step, name, explainer, "its output layout is unknown")
        return transformer_sources(encoder, n_in, name=name, explainer=explainer)
    if isinstance(step, SplineTransformer):
        n_out = int(step.n_features_out_)
        if n_out % max(n_in, 1):
            raise _refuse(step, name, explainer, "its output layout is unknown")
        return np.repeat(identity, n_out // max(n_in, 1))
    if isinstance(step, FunctionTransformer):
        if step.func is None or step.feature_names_out == "one-to-one":
            return identity
        raise _refuse(step, name, explainer, "a custom function may mix columns")
    raise _refuse(step, name, explainer)


def _column_transformer_sources(step: Any, n_in: int, *, name: str, explainer: str) -> np.ndarray:
    to_inputs = getattr(step, "_transformer_to_input_indices", None)
    out_slices = getattr(step, "output_indices_", None)
    if to_inputs is None or out_slices is None:
        raise _refuse(step, name, explainer, "its column bookkeeping is missing")
    n_out = max((s.stop for s in out_slices.values()), default=0)
    sources = np.full(n_out, -1, dtype=np.int64)
    for sub_name, sub, _ in step.transformers_:
        cols = np.asarray(to_inputs.get(sub_name, []), dtype=np.int64)
        sl = out_slices.get(sub_name, slice(0, 0))
        width = sl.stop - sl.start
        if width == 0:
            continue
        if isinstance(sub, str) and sub == "drop":
            continue
        sub_sources = transformer_sources(sub, cols.shape[0], name=f"{name}/{sub_name}", explainer=explainer)
        if sub_sources.shape[0] != width:
            raise _refuse(
                sub, f"{name}/{sub_name}", explainer, f"it outputs {width} columns, not {sub_sources.shape[0]}"
            )
        sources[sl] = cols[sub_sources]
    if (sources < 0).any():
        raise _refuse(step, name, explainer, "some output columns have no known source")
    return sources


def row_positions(rows: Sequence[int] | None, n_frame: int, *, explainer: str = "The explainer") -> np.ndarray:
    """Validated 0-based row positions, ``(n,)`` int64; ``None`` means every row."""
    if rows is None:
        positions = np.arange(n_frame, dtype=np.int64)
    else:
        try:
            positions = np.asarray(list(rows), dtype=np.int64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise AnalysisError("The rows to explain must be whole-number row positions.") from exc
        bad = positions[(positions < 0) | (positions >= n_frame)]
        if bad.size:
            raise AnalysisError(f"Row position {int(bad[0])} is outside the data, which has {n_frame} rows.")
    if positions.size == 0:
        raise AnalysisError(f"{explainer} needs at least one row to explain.")
    return positions


def model_output(estimator: Any, data: Any, *, space: str, class_index: int | None) -> np.ndarray:
    """The estimator's own output for raw rows in an explained space, from scikit-learn's public API.

    Parameters
    ----------
    estimator: the fitted estimator or Pipeline, as loaded.
    data: raw rows as the estimator takes them.
    space: ``"probability"`` (column ``class_index`` of ``predict_proba``),
        ``"log-odds"`` (``decision_function``; a binary model's single margin is
        negated for class 0), ``"margin"`` (log of ``predict``: log-link
        regressors) or ``"value"`` (``predict``).  For XGBoost's and LightGBM's
        wrappers, ``"log-odds"`` and ``"margin"`` are the booster's raw margin
        (``predict(output_margin=True)`` / ``predict(raw_score=True)``).
    class_index: the explained class (classifiers).

    Returns
    -------
    ndarray
        ``(n,)`` float64.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            if space == "probability":
                return np.asarray(estimator.predict_proba(data), dtype=np.float64)[:, class_index]
            library = wrapper_library(split_pipeline(estimator)[1]) if space in ("log-odds", "margin") else None
            if library is not None:
                flag = {"output_margin": True} if library == "xgboost" else {"raw_score": True}
                margin = np.asarray(estimator.predict(data, **flag), dtype=np.float64)
                if margin.ndim == 2:
                    return margin[:, 0 if class_index is None else class_index]
                return -margin if class_index == 0 else margin
            if space == "log-odds" or (space == "margin" and class_index is not None):
                raw = np.asarray(estimator.decision_function(data), dtype=np.float64)
                if raw.ndim == 2:
                    return raw[:, class_index]
                return raw if class_index != 0 else -raw
            pred = np.asarray(estimator.predict(data), dtype=np.float64).reshape(-1)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
        raise AnalysisError(f"The model could not predict on the rows to explain: {first}.") from exc
    if space == "margin":
        with np.errstate(divide="ignore"):
            return np.log(pred)
    return pred
