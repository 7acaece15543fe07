"""What every analysis reads: the data, the column roles and the model (:class:`AuditInputs`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnalysisError
from engine.jobs import JobContext
from engine.models.base import Model, Task
from engine.results import Provenance, package_versions, utc_now
from engine.schema import Dataset, Roles

__all__ = ["AuditInputs"]


@dataclass(frozen=True, eq=False)
class AuditInputs:
    """The data, the column roles and the model one analysis runs on.

    ``frame`` is never modified; analyses copy before they perturb.
    """

    frame: pd.DataFrame
    roles: Roles
    model: Model
    dataset: Dataset | None = None

    @classmethod
    def from_dataset(cls, dataset: Dataset, roles: Roles, model: Model) -> AuditInputs:
        """Bind a dataset, roles and model, checking the data has every column the model needs."""
        model.check_input(dataset.frame, source=dataset.name)
        if model.input_columns is None:
            n_expected = getattr(model, "n_features_in", None)
            if n_expected is not None and len(roles.features) != n_expected:
                raise AnalysisError(
                    f"The model {model.name} expects {n_expected} input columns but "
                    f"{len(roles.features)} feature columns are selected in {dataset.name}.",
                    path=dataset.path,
                )
        return cls(frame=dataset.frame, roles=roles, model=model, dataset=dataset)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The raw input columns, in the order the model takes them."""
        if self.model.input_columns is not None:
            return self.model.input_columns
        return self.roles.features

    @property
    def X(self) -> pd.DataFrame:
        return self.frame.loc[:, list(self.feature_names)]

    @property
    def has_target(self) -> bool:
        return self.roles.target is not None

    @property
    def y(self) -> pd.Series:
        if self.roles.target is None:
            raise AnalysisError("This analysis needs a target column; choose one in the dataset's roles.")
        return self.frame[self.roles.target]

    def labelled(self) -> tuple[pd.DataFrame, np.ndarray]:
        """Feature frame and target values for the rows whose target is present.

        For classification the target is matched to the model's class labels:
        numeric-looking strings are compared as numbers, and an unknown label is
        an :class:`~engine.errors.AnalysisError`.
        """
        y = self.y
        keep = y.notna().to_numpy()
        X = self.X.loc[keep]
        values = y.loc[keep].to_numpy()
        if self.model.task is Task.CLASSIFICATION:
            values = _align_labels(values, self.model.classes or (), self.roles.target or "target")
        else:
            try:
                values = values.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise AnalysisError(
                    f"The target column {self.roles.target!r} is not numeric, but the model is a regressor."
                ) from exc
        return X, values

    def provenance(
        self,
        *,
        method: str,
        parameters: Mapping[str, Any],
        ctx: JobContext,
        started_at: str,
        warnings: Sequence[str] = (),
    ) -> Provenance:
        """The provenance record for a result computed on these inputs."""
        ds = self.dataset
        return Provenance(
            method=method,
            parameters=dict(parameters),
            seed=ctx.seed,
            data_sha256=ds.sha256 if ds is not None else None,
            model_sha256=self.model.sha256,
            versions=package_versions(),
            started_at=started_at,
            finished_at=utc_now(),
            data_file=ds.name if ds is not None else None,
            model_file=self.model.path.name if self.model.path is not None else None,
            data_options=ds.options.to_dict() if ds is not None else {},
            model_trust=self.model.trust.to_dict(),
            # A torch model that fell back to the CPU (its GPU out of memory) says so in the next result.
            warnings=(*warnings, *getattr(self.model, "take_device_notes", tuple)()),
        )


def _align_labels(values: np.ndarray, classes: Sequence[Any], target: str) -> np.ndarray:
    """Map target values onto the model's class labels (same objects, same dtype)."""
    lookup: dict[Any, Any] = {}
    for c in classes:
        lookup[c] = c
        lookup[str(c)] = c
        if isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool):
            lookup[float(c)] = c
    out = np.empty(len(values), dtype=object)
    unknown: list[Any] = []
    for i, v in enumerate(values):
        key = v.item() if isinstance(v, np.generic) else v
        if key in lookup:
            out[i] = lookup[key]
            continue
        try:
            as_float = float(key)
        except (TypeError, ValueError):
            as_float = None
        if as_float is not None and as_float in lookup:
            out[i] = lookup[as_float]
        elif as_float is not None and as_float.is_integer() and str(int(as_float)) in lookup:
            # An integer target read from CSV against number-like string classes ("-1", "1").
            out[i] = lookup[str(int(as_float))]
        elif str(key) in lookup:
            out[i] = lookup[str(key)]
        else:
            unknown.append(key)
    if unknown:
        shown = ", ".join(repr(u) for u in sorted(set(map(str, unknown)))[:5])
        known = ", ".join(repr(c) for c in classes)
        raise AnalysisError(
            f"The target column {target!r} holds values the model does not know as classes ({shown}); "
            f"the model's classes are {known}."
        )
    try:
        return out.astype(np.asarray(classes).dtype)
    except (TypeError, ValueError):
        return out


#: What a method can need, as :attr:`Method.needs` names it.
