"""Adapter for scikit-learn estimators and Pipelines (however they were loaded)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ModelError, ModelInputError
from engine.models.base import Model, Task, TrustDecision
from engine.models.native_checks import validate_native_structures

if TYPE_CHECKING:  # imported where used: inspecting a model file needs no pandas
    import pandas as pd

__all__ = ["SklearnModel"]


def _final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


class SklearnModel(Model):
    """A fitted scikit-learn estimator or Pipeline, used exactly as it was trained.

    Raw DataFrame columns go in (a Pipeline with a ColumnTransformer encodes
    strings itself); probabilities or values come out.  Every structure that
    scikit-learn's compiled code follows is checked first
    (:func:`engine.models.native_checks.validate_native_structures`): a malformed
    one raises :class:`ModelError` before any prediction.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        path: Path | None = None,
        sha256: str | None = None,
        size_bytes: int | None = None,
        format: str = "sklearn",
        trust: TrustDecision | None = None,
    ) -> None:
        from sklearn.base import is_classifier, is_regressor

        if not hasattr(estimator, "predict"):
            where = f" in {path.name}" if path is not None else ""
            raise ModelError(
                f"The object{where} is a {type(estimator).__name__}, not a fitted model with a predict method.",
                path=path,
            )
        # Before anything can predict: the arrays compiled code follows must be sound.
        validate_native_structures(estimator, path=path)
        self._estimator = estimator
        self.path = path
        self.sha256 = sha256
        self.size_bytes = size_bytes
        self.format = format
        if trust is not None:
            self.trust = trust
        if is_classifier(estimator) or (not is_regressor(estimator) and hasattr(estimator, "predict_proba")):
            if not hasattr(estimator, "predict_proba"):
                raise ModelError(
                    f"The classifier {self.name} has no predict_proba, so probabilities cannot be audited.",
                    path=path,
                )
            classes = getattr(estimator, "classes_", None)
            if classes is None:
                raise ModelError(f"The classifier {self.name} is not fitted (it has no classes_).", path=path)
            self.task = Task.CLASSIFICATION
            self.classes = tuple(c.item() if isinstance(c, np.generic) else c for c in classes)
        else:
            self.task = Task.REGRESSION
            self.classes = None
        names = getattr(estimator, "feature_names_in_", None)
        self.input_columns = tuple(str(n) for n in names) if names is not None else None
        self.n_features_in = getattr(estimator, "n_features_in_", None)

    @property
    def estimator(self) -> Any:
        return self._estimator

    @property
    def final_estimator(self) -> Any:
        """The last step of a Pipeline, or the estimator itself."""
        return _final_step(self._estimator)

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        data: Any = X if self.input_columns is not None else X.to_numpy()
        if self.input_columns is None and self.n_features_in is not None and X.shape[1] != self.n_features_in:
            raise ModelInputError(
                f"The model {self.name} expects {self.n_features_in} input columns but was given {X.shape[1]}.",
                path=self.path,
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                out: np.ndarray  # scikit-learn ships no type information
                if self.task is Task.CLASSIFICATION:
                    out = self._estimator.predict_proba(data)
                else:
                    out = self._estimator.predict(data)
                return out
        except (ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelInputError(
                f"The model {self.name} could not predict on the given data: {first.rstrip('.')}.",
                path=self.path,
            ) from exc
