"""What the user has open: one dataset with its column roles, and one model.

Panes read and change this state only through :class:`Session`, whose signals
tell the others; no pane reaches into another pane.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from engine.inputs import AuditInputs
    from engine.models.base import Model
    from engine.schema import Dataset, Roles

__all__ = ["Session", "InputsIdentity", "ROLE_NAMES", "role_map", "roles_from_map"]

ROLE_NAMES = ("target", "feature", "sensitive", "ignored")


def role_map(roles: Roles, columns: Iterable[str]) -> dict[str, str]:
    """Column -> one of :data:`ROLE_NAMES` (a sensitive column shows as sensitive even if also a feature)."""
    features = set(roles.features)
    sensitive = set(roles.sensitive)
    out: dict[str, str] = {}
    for column in columns:
        if column == roles.target:
            out[column] = "target"
        elif column in sensitive:
            out[column] = "sensitive"
        elif column in features:
            out[column] = "feature"
        else:
            out[column] = "ignored"
    return out


def roles_from_map(dataset: Dataset, mapping: Mapping[str, str]) -> Roles:
    """Validated :class:`Roles` from a column -> role mapping (raises ``RoleError``)."""
    from engine.schema import assign_roles

    targets = [c for c, r in mapping.items() if r == "target"]
    return assign_roles(
        dataset,
        target=targets[0] if targets else None,
        features=[c for c, r in mapping.items() if r == "feature"],
        sensitive=[c for c, r in mapping.items() if r == "sensitive"],
        ignored=[c for c, r in mapping.items() if r == "ignored"],
    )


@dataclass(frozen=True)
class InputsIdentity:
    """Which data and model something was made for: their file names (for people) and SHA-256 (to compare)."""

    data_name: str | None = None
    data_sha256: str | None = None
    model_name: str | None = None
    model_sha256: str | None = None

    def same_inputs(self, other: InputsIdentity) -> bool:
        """Whether both name the same data and model (by hash, or by name where a hash is unknown)."""

        def same(a_sha: str | None, b_sha: str | None, a_name: str | None, b_name: str | None) -> bool:
            return a_sha == b_sha if a_sha is not None and b_sha is not None else a_name == b_name

        return same(self.data_sha256, other.data_sha256, self.data_name, other.data_name) and same(
            self.model_sha256, other.model_sha256, self.model_name, other.model_name
        )

    def describe(self) -> str:
        """``credit.csv and credit_model.skops`` (or what of them is known)."""
        names = [n for n in (self.data_name, self.model_name) if n]
        return " and ".join(names) if names else "no data or model"


class Session(QObject):
    """The open dataset, its roles and the open model.

    Signals carry the new value (or ``None`` when closed).
    ``sig_results_restored`` carries ``{analysis name: Result}`` reopened from a
    saved session: panes show them as if their own job had just finished.
    """

    sig_dataset_changed = Signal(object)
    sig_roles_changed = Signal(object)
    sig_model_changed = Signal(object)
    sig_results_restored = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dataset: Dataset | None = None
        self.roles: Roles | None = None
        self.model: Model | None = None
        self.model_inspection: Any | None = None

    def set_dataset(self, dataset: Dataset | None, roles: Roles | None) -> None:
        self.dataset = dataset
        self.roles = roles
        self.sig_dataset_changed.emit(dataset)
        self.sig_roles_changed.emit(roles)

    def set_roles(self, roles: Roles | None) -> None:
        self.roles = roles
        self.sig_roles_changed.emit(roles)

    def set_model(self, model: Model | None, inspection: Any | None = None) -> None:
        self.model = model
        self.model_inspection = inspection
        self.sig_model_changed.emit(model)

    def restore_results(self, results: Mapping[str, Any]) -> None:
        """Hand saved results to the panes that show them (no job runs; see ``gui.sessionfile``)."""
        self.sig_results_restored.emit(dict(results))

    def identity(self) -> InputsIdentity:
        """The open data and model, as :class:`InputsIdentity`."""
        from pathlib import Path

        dataset, model = self.dataset, self.model
        return InputsIdentity(
            data_name=None if dataset is None else str(dataset.name),
            data_sha256=None if dataset is None else dataset.sha256,
            model_name=None if model is None else (Path(model.path).name if model.path is not None else model.name),
            model_sha256=None if model is None else model.sha256,
        )

    def missing_inputs(self) -> list[str]:
        """What still has to be chosen before an analysis can run, as short phrases."""
        missing = []
        if self.dataset is None:
            missing.append("open a dataset")
        elif self.roles is None or self.roles.target is None:
            missing.append("choose a target column")
        if self.model is None:
            missing.append("open a model")
        return missing

    def audit_inputs(self) -> AuditInputs:
        """The analysis inputs; raises a ``ProbityError`` naming what is missing or wrong."""
        from engine.errors import AnalysisError
        from engine.inputs import AuditInputs

        missing = self.missing_inputs()
        if missing:
            raise AnalysisError(f"To run an analysis, {' and '.join(missing)}.")
        assert self.dataset is not None and self.roles is not None and self.model is not None
        return AuditInputs.from_dataset(self.dataset, self.roles, self.model)

    def inputs_or_say(self, message: Any) -> AuditInputs | None:
        """The analysis inputs, or ``None`` after showing why not in ``message`` (an ``InlineMessage``).

        What every Run button does first: the previous message is cleared, and a
        missing or refused input is one sentence under the button, not a job.
        """
        from engine.errors import ProbityError

        message.clear_message()
        try:
            return self.audit_inputs()
        except ProbityError as exc:
            message.show_error(str(exc))
            return None
