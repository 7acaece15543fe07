"""The result every local explainer returns, and how the explained output is chosen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engine.errors import AnalysisError
from engine.models.base import Model, Task
from engine.results import Result

__all__ = ["AttributionResult", "resolve_output"]


@dataclass(frozen=True)
class AttributionResult(Result):
    """Per-row feature attributions in raw input columns.

    Attributes
    ----------
    method: ``"treeshap"``, ``"linearshap"``, ``"kernelshap"``, ``"lime"``, ``"ig"``, ...
    feature_names: the raw input columns, length ``F``.
    rows: ``(n,)`` 0-based row positions in the dataset's frame.
    values: ``(n, F)`` attributions.
    base_values: ``(n,)`` the value attributions start from (E[f] for SHAP), or ``None``.
    predictions: ``(n,)`` the explained model output for each row, in ``output_space``.
    output_name: what is explained, e.g. ``"P(approved=1)"``.
    output_space: ``"probability"``, ``"log-odds"``, ``"logit"``, ``"margin"`` or ``"value"``.
    class_index: column of the model's probability output explained (``None`` for regression).
    quality: per-row quality figures, each ``(n,)`` (e.g. ``"r2"``, ``"additivity_error"``).
    summary: global quality figures (e.g. ``"median_r2"``, ``"max_additivity_error"``).
    extras: method-specific arrays (e.g. ``"standard_errors"`` ``(n, F)``, ``"intercepts"`` ``(n,)``).
    compute_seconds: time spent explaining, excluding loading.
    """

    kind: ClassVar[str] = "attribution"
    method: str = ""
    feature_names: tuple[str, ...] = ()
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    base_values: np.ndarray | None = None
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    output_name: str = ""
    output_space: str = "probability"
    class_index: int | None = None
    quality: Mapping[str, np.ndarray] = field(default_factory=dict)
    summary: Mapping[str, float] = field(default_factory=dict)
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    compute_seconds: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("quality", "extras"):
            frozen = {}
            for key, arr in getattr(self, name).items():
                a = np.array(arr, copy=True)
                a.flags.writeable = False
                frozen[key] = a
            object.__setattr__(self, name, frozen)


def resolve_output(model: Model, klass: Any | None) -> tuple[int | None, str]:
    """The probability column to explain and its display name.

    ``klass=None`` means the positive class (the second label) for binary
    classifiers and the first class for multiclass ones; regression has no
    class and returns ``(None, "prediction")``.
    """
    if model.task is Task.REGRESSION:
        if klass is not None:
            raise AnalysisError("The model is a regressor, so no class can be chosen to explain.")
        return None, "prediction"
    classes = tuple(model.classes or ())
    if klass is None:
        index = 1 if len(classes) == 2 else 0
    else:
        matches = [i for i, c in enumerate(classes) if c == klass or str(c) == str(klass)]
        if not matches:
            known = ", ".join(repr(c) for c in classes)
            raise AnalysisError(f"The model has no class {klass!r}; its classes are {known}.")
        index = matches[0]
    return index, f"P({classes[index]})"
