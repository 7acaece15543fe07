"""Settings: seed, compute threads and device, and default sample counts for new jobs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.settings import DEVICE_CHOICES, AppSettings, method_default
from gui.widgets import hint_label

__all__ = ["SettingsDialog"]


def _spin(low: int, high: int, value: int, *, special: str | None = None) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setGroupSeparatorShown(True)
    if special is not None:
        box.setSpecialValueText(special)  # shown at the minimum, which means "decide for me"
    box.setValue(value)
    return box


class SettingsDialog(QDialog):
    """Edits an :class:`AppSettings`; :meth:`value` is the result once accepted."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(460)

        self.seed_box = _spin(0, 2_147_483_647, settings.seed)
        self.seed_box.setToolTip("Every random choice of a new analysis follows from this number.")
        self.threads_box = _spin(0, 1024, settings.threads, special="automatic")
        self.threads_box.setToolTip(
            "Threads for model calls run in parallel and for torch; automatic lets the "
            "engine use the cores that are free when a job starts."
        )
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICE_CHOICES))
        self.device_combo.setCurrentText(settings.device)
        self.device_combo.setToolTip(
            "Where gradient methods and TreeSHAP run: auto picks a CUDA GPU when torch sees one."
        )
        compute = QFormLayout()
        compute.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        compute.addRow("Seed:", self.seed_box)
        compute.addRow("Threads:", self.threads_box)
        compute.addRow("Device:", self.device_combo)
        compute_box = QGroupBox("Computation")
        compute_box.setLayout(compute)

        # At 0 each count is the method's own default, which its descriptor states.
        lime = method_default("lime", "num_samples")
        repeats = method_default("permutation", "n_repeats")
        self.lime_box = _spin(0, 10_000_000, settings.lime_samples, special=f"LIME's default ({lime:,})")
        self.kernelshap_box = _spin(0, 10_000_000, settings.kernelshap_coalitions, special="automatic")
        self.permutation_box = _spin(0, 100_000, settings.permutation_repeats, special=f"default ({repeats:,})")
        samples = QFormLayout()
        samples.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        samples.addRow("LIME samples:", self.lime_box)
        samples.addRow("KernelSHAP coalitions:", self.kernelshap_box)
        samples.addRow("Permutation repeats:", self.permutation_box)
        samples_box = QGroupBox("Default sample counts")
        samples_box.setLayout(samples)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        restore = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.clicked.connect(self._on_restore_clicked)

        layout = QVBoxLayout(self)
        layout.addWidget(compute_box)
        layout.addWidget(samples_box)
        layout.addWidget(
            hint_label(
                "New analyses and reports start from these values; "
                "results already computed keep the values they were run with."
            )
        )
        layout.addWidget(buttons)

    def value(self) -> AppSettings:
        return AppSettings(
            seed=self.seed_box.value(),
            threads=self.threads_box.value(),
            device=self.device_combo.currentText(),
            # A count typed below a method's smallest sensible one is raised to it (0 stays "default").
            lime_samples=0 if self.lime_box.value() == 0 else max(self.lime_box.value(), 10),
            kernelshap_coalitions=self.kernelshap_box.value(),
            permutation_repeats=0 if self.permutation_box.value() == 0 else max(self.permutation_box.value(), 2),
        )

    def set_value(self, settings: AppSettings) -> None:
        self.seed_box.setValue(settings.seed)
        self.threads_box.setValue(settings.threads)
        self.device_combo.setCurrentText(settings.device)
        self.lime_box.setValue(settings.lime_samples)
        self.kernelshap_box.setValue(settings.kernelshap_coalitions)
        self.permutation_box.setValue(settings.permutation_repeats)

    def _on_restore_clicked(self) -> None:
        self.set_value(AppSettings())
