"""The one model interface the rest of the engine uses.

A model takes a DataFrame of raw input columns and returns class
probabilities (classification, shape ``(n_rows, n_classes)``, columns in the
order of ``classes``) or values (regression, shape ``(n_rows,)``).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ModelInputError

if TYPE_CHECKING:  # pandas costs a fifth of a second; inspecting a model file needs none of it
    import pandas as pd

__all__ = ["Task", "TrustDecision", "Model"]


class Task(str, enum.Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class TrustDecision:
    """The per-file decision that allowed (or did not require) loading a model.

    Attributes
    ----------
    required: whether the format needed an explicit decision (pickle, joblib,
        skops files with untrusted types).
    granted_by: who granted it: ``"not required"``, ``"cli --trust-model"``,
        ``"gui confirmation"``, ``"api"``.
    sha256: the exact file the decision is about.
    imports: the globals the file imports (pickle scan) or its untrusted types (skops).
    allow_unreviewed: whether the caller explicitly acknowledged names Probity has not
        reviewed (``allow_unreviewed=True``) and the file had some.
    unreviewed: the names of ``imports`` that needed that acknowledgement.
    """

    required: bool
    granted_by: str
    sha256: str | None
    imports: tuple[str, ...] = ()
    allow_unreviewed: bool = False
    unreviewed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "granted_by": self.granted_by,
            "sha256": self.sha256,
            "imports": list(self.imports),
            "allow_unreviewed": self.allow_unreviewed,
            "unreviewed": list(self.unreviewed),
        }


class Model(abc.ABC):
    """A loaded model, whatever its file format.

    Attributes
    ----------
    task: classification or regression.
    classes: class labels, in the column order of :meth:`predict` (classification only).
    input_columns: raw columns the model expects, or ``None`` when the file does not say
        (then the dataset's feature roles decide, in order).
    format: ``"skops"``, ``"onnx"``, ``"pickle"``, ``"joblib"`` or ``"sklearn"`` (in memory).
    path, sha256, size_bytes: the file it came from (``None`` for in-memory models).
    trust: how loading was allowed.
    """

    task: Task
    classes: tuple[Any, ...] | None
    input_columns: tuple[str, ...] | None
    format: str
    path: Path | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    trust: TrustDecision = TrustDecision(required=False, granted_by="not required", sha256=None)

    @abc.abstractmethod
    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Format-specific prediction on exactly ``self.input_columns`` (or all columns)."""

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else type(self).__name__

    @property
    def output_names(self) -> tuple[str, ...]:
        if self.task is Task.CLASSIFICATION:
            assert self.classes is not None
            return tuple(f"P({c})" for c in self.classes)
        return ("prediction",)

    @property
    def estimator(self) -> Any | None:
        """The underlying scikit-learn estimator when there is one (for exact explainers)."""
        return None

    def check_input(self, X: pd.DataFrame, *, source: str = "the data") -> None:
        """Raise :class:`ModelInputError` listing the input columns ``X`` lacks."""
        if self.input_columns is None:
            return
        missing = [c for c in self.input_columns if c not in X.columns]
        if missing:
            listed = ", ".join(repr(c) for c in missing)
            raise ModelInputError(
                f"{source[:1].upper()}{source[1:]} lacks {len(missing)} column{'s' if len(missing) > 1 else ''} "
                f"the model {self.name} needs: {listed}.",
                path=self.path,
            )

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities ``(n, n_classes)`` for classification, values ``(n,)`` for regression."""
        self.check_input(X)
        if self.input_columns is not None:
            X = X.loc[:, list(self.input_columns)]
        out = np.asarray(self._predict_raw(X), dtype=np.float64)
        return self._validate_output(out, len(X))

    def predict_label(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted class labels (classification) or values (regression)."""
        out = self.predict(X)
        if self.task is Task.REGRESSION:
            return out
        assert self.classes is not None
        labels: np.ndarray = np.asarray(self.classes, dtype=object)[np.argmax(out, axis=1)]
        return labels

    def _validate_output(self, out: np.ndarray, n_rows: int) -> np.ndarray:
        if self.task is Task.CLASSIFICATION:
            assert self.classes is not None
            expected = (n_rows, len(self.classes))
            if out.ndim == 1 and len(self.classes) == 2:
                out = np.column_stack([1.0 - out, out])
            if out.shape != expected:
                raise ModelInputError(
                    f"The model {self.name} returned probabilities of shape {out.shape}, expected {expected}.",
                    path=self.path,
                )
        else:
            if out.ndim == 2 and out.shape[1] == 1:
                out = out[:, 0]
            if out.shape != (n_rows,):
                raise ModelInputError(
                    f"The model {self.name} returned predictions of shape {out.shape}, expected ({n_rows},).",
                    path=self.path,
                )
        if not np.all(np.isfinite(out)):
            raise ModelInputError(
                f"The model {self.name} returned non-finite predictions (NaN or infinity), "
                "so its output is not usable.",
                path=self.path,
            )
        return out
