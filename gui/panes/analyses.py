"""The Analyses area: one panel per registered analysis, each run through the job runner.

A panel's parameter form is built from the analysis function's keyword-only
parameters and defaults (``Method.defaults``), so adding an analysis to the
engine's registry needs only a line in :data:`ANALYSES` here.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gui.resources import icon
from gui.runner import JobError, JobRunner, JobSpec
from gui.session import Session
from gui.text import plain_label
from gui.widgets import InlineMessage, ProgressRow, hint_label, pane_title

if TYPE_CHECKING:
    from engine.explain.base import Method
    from engine.models.base import Model

__all__ = ["AnalysisDef", "ANALYSES", "AnalysisPanel", "AnalysesPane", "ParamForm"]


def _permutation_scorings(model: Model | None) -> list[str]:
    from engine.explain.permutation import SCORINGS

    return [name for name, (task, _) in SCORINGS.items() if model is None or task is model.task]


def _performance_view() -> QWidget:
    from gui.plots.performance import PerformanceView

    return PerformanceView()


def _importance_view() -> QWidget:
    from gui.plots.importance import ImportanceView

    return ImportanceView()


@dataclass(frozen=True)
class AnalysisDef:
    """How the GUI presents one registered analysis.

    Attributes
    ----------
    name: the registry name (``engine.explain.registry.get_method``).
    title: the list entry.
    view: builds the result widget (imports pyqtgraph lazily); it has
        ``set_result(result)`` and ``clear()``.
    uses_seed: show a seed box (the analysis draws random numbers).
    labels: parameter -> label shown in the form.
    choices: parameter -> function of the model giving the allowed strings
        (the form adds "default" for a parameter whose default is ``None``).
    """

    name: str
    title: str
    view: Callable[[], QWidget]
    uses_seed: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    choices: Mapping[str, Callable[[Any], Sequence[str]]] = field(default_factory=dict)


ANALYSES: tuple[AnalysisDef, ...] = (
    AnalysisDef(
        name="performance",
        title="Performance",
        view=_performance_view,
        labels={"n_bins": "Calibration bins"},
    ),
    AnalysisDef(
        name="permutation",
        title="Permutation importance",
        view=_importance_view,
        uses_seed=True,
        labels={
            "n_repeats": "Shuffles per column",
            "scoring": "Score",
            "max_rows": "Rows used (0 = all)",
            "confidence": "Confidence level",
        },
        choices={"scoring": _permutation_scorings},
    ),
)


def _param_types(method: Method) -> dict[str, Any]:
    try:
        return typing.get_type_hints(method.run)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        return {}


def _optional_of(hint: Any) -> Any:
    """``X`` for ``X | None``, else ``None``."""
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return None


class NumberBox(QDoubleSpinBox):
    """A float box that shows numbers as people write them (0.15, 1e-05, 250) and keeps nine decimals.

    Qt's own box shows a fixed number of decimals, so a small value either
    reads as 0.000 or is rounded away; this one takes any value the engine may
    accept (it checks ranges itself and says so inline).
    """

    def __init__(self, value: float = 0.0, *, minimum: float = -1e12, maximum: float = 1e12) -> None:
        super().__init__()
        self.setDecimals(9)
        self.setRange(minimum, maximum)
        magnitude = abs(value)
        self.setSingleStep(10.0 ** math.floor(math.log10(magnitude)) if magnitude > 0 else 0.1)
        self.setValue(value)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt's name)
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        t = text.strip().lower()
        try:
            value = float(t)
        except ValueError:
            # Half-typed numbers ("-", "1e", "2.5e-") may still become one.
            partial = t in ("", "-", "+", ".", "-.", "+.") or t.endswith(("e", "e-", "e+"))
            return QValidator.State.Intermediate if partial else QValidator.State.Invalid
        if not self.minimum() <= value <= self.maximum():
            return QValidator.State.Intermediate
        return QValidator.State.Acceptable


class ParamForm(QWidget):
    """Widgets for an analysis's keyword-only parameters, typed by annotation and default."""

    def __init__(self, definition: AnalysisDef, method: Method, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._definition = definition
        self._getters: dict[str, Callable[[], Any]] = {}
        self._setters: dict[str, Callable[[Any], None]] = {}
        self._choice_boxes: dict[str, tuple[QComboBox, bool]] = {}
        hints = _param_types(method)
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        for name, default in method.defaults.items():
            label = definition.labels.get(name, name.replace("_", " ").capitalize())
            widget = self._make_widget(name, default, hints.get(name))
            if widget is not None:
                layout.addRow(f"{label}:", widget)
        self.seed_box: QSpinBox | None = None
        if definition.uses_seed:
            self.seed_box = QSpinBox()
            self.seed_box.setRange(0, 2_147_483_647)
            self.seed_box.setToolTip("Every random choice follows from this number; the report records it.")
            layout.addRow("Seed:", self.seed_box)

    def _make_widget(self, name: str, default: Any, hint: Any) -> QWidget | None:
        inner = _optional_of(hint)
        if name in self._definition.choices:
            box = QComboBox()
            nullable = default is None
            self._choice_boxes[name] = (box, nullable)
            self.update_choices(None)
            if not nullable:
                box.setCurrentText(str(default))

            def get_choice(b: QComboBox = box, n: bool = nullable) -> Any:
                return None if n and b.currentIndex() == 0 else b.currentText()

            def set_choice(value: Any, b: QComboBox = box, n: bool = nullable) -> None:
                b.setCurrentIndex(0 if n and value is None else max(b.findText(str(value)), 0))

            self._getters[name] = get_choice
            self._setters[name] = set_choice
            return box
        if isinstance(default, bool) or hint is bool:
            check = QCheckBox()
            check.setChecked(bool(default))
            self._getters[name] = check.isChecked
            self._setters[name] = lambda v, c=check: c.setChecked(bool(v))
            return check
        if isinstance(default, int) or hint is int or inner is int:
            spin = QSpinBox()
            # 0 is a real value for some counts (no stability re-runs); the engine refuses it where it is not.
            spin.setRange(0, 1_000_000_000)
            spin.setGroupSeparatorShown(True)
            if default is None:
                # 0 stands for None ("all", "no limit"): spin boxes cannot be empty.
                spin.setSpecialValueText("all")
                spin.setValue(0)
                self._getters[name] = lambda s=spin: None if s.value() == 0 else s.value()
            else:
                spin.setValue(int(default))
                self._getters[name] = spin.value
            self._setters[name] = lambda v, s=spin: s.setValue(0 if v is None else int(v))
            return spin
        if isinstance(default, float) or hint is float or inner is float:
            spin_f = NumberBox(float(default or 0.0))
            self._getters[name] = spin_f.value
            self._setters[name] = lambda v, s=spin_f: s.setValue(float(v))
            return spin_f
        if isinstance(default, str) or hint is str or inner is str:
            edit = QLineEdit("" if default is None else str(default))
            if default is None:
                edit.setPlaceholderText("default")
            self._getters[name] = lambda e=edit, d=default: (e.text().strip() or None) if d is None else e.text()
            self._setters[name] = lambda v, e=edit: e.setText("" if v is None else str(v))
            return edit
        # A parameter the form cannot represent keeps its default.
        return None

    def update_choices(self, model: Any) -> None:
        """Refill choice boxes for ``model`` (e.g. scorings that fit its task)."""
        for name, (box, nullable) in self._choice_boxes.items():
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            if nullable:
                box.addItem("default")
            box.addItems(list(self._definition.choices[name](model)))
            index = box.findText(current)
            box.setCurrentIndex(max(index, 0))
            box.blockSignals(False)

    def values(self) -> dict[str, Any]:
        return {name: get() for name, get in self._getters.items()}

    def set_values(self, values: Mapping[str, Any], *, seed: int | None = None) -> None:
        """Fill the form (scripts and tests); unknown names raise ``KeyError``."""
        for name, value in values.items():
            self._setters[name](value)
        if seed is not None and self.seed_box is not None:
            self.seed_box.setValue(seed)

    @property
    def seed(self) -> int:
        return self.seed_box.value() if self.seed_box is not None else 0


class AnalysisPanel(QWidget):
    """Parameters, Run/Cancel with progress, inline errors and the result view of one analysis."""

    sig_result_shown = Signal(str)  # analysis name

    def __init__(
        self, definition: AnalysisDef, session: Session, runner: JobRunner, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.definition = definition
        self._session = session
        self._runner = runner
        self._job: int | None = None
        self.method: Method | None = None
        self.form: ParamForm | None = None
        self.view: QWidget | None = None
        self.result: Any | None = None

        self.title = pane_title(definition.title)
        self.description = hint_label("")
        self.readiness = hint_label("")
        self.run_button = QPushButton(icon("run"), "Run")
        self.run_button.setObjectName("primary")
        self.run_button.clicked.connect(self._on_run_clicked)
        self.progress = ProgressRow()
        self.progress.sig_cancel_clicked.connect(self._on_progress_cancel_clicked)
        self.status = plain_label()
        self.status.setObjectName("hint")
        self.error = InlineMessage()
        self.warnings = InlineMessage()
        self.placeholder = QLabel("No results yet. Set the parameters and press Run.")
        self.placeholder.setObjectName("dropHint")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self._form_slot = QVBoxLayout()
        controls = QHBoxLayout()
        controls.addLayout(self._form_slot)
        controls.addStretch(1)
        run_column = QVBoxLayout()
        run_column.addWidget(self.run_button)
        run_column.addStretch(1)
        controls.addLayout(run_column)

        self._content = QVBoxLayout()
        self._content.addWidget(self.placeholder, 1)
        content_widget = QWidget()
        content_widget.setLayout(self._content)
        self._content.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content_widget)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.description)
        layout.addLayout(controls)
        layout.addWidget(self.readiness)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addWidget(self.warnings)
        layout.addWidget(scroll, 1)

        session.sig_dataset_changed.connect(self._on_session_inputs_changed)
        session.sig_roles_changed.connect(self._on_session_inputs_changed)
        session.sig_model_changed.connect(self._on_session_inputs_changed)
        runner.sig_job_progress.connect(self._on_runner_job_progress)
        runner.sig_job_finished.connect(self._on_runner_job_finished)
        runner.sig_job_failed.connect(self._on_runner_job_failed)
        runner.sig_job_cancelled.connect(self._on_runner_job_cancelled)
        self._refresh_readiness()

    # -- public API -----------------------------------------------------------------------
    def ensure_ready(self) -> None:
        """Import the analysis and build its form (deferred so start-up skips the import)."""
        if self.method is not None:
            return
        from engine.explain.registry import get_method

        self.method = get_method(self.definition.name)
        self.description.setText(self.method.summary)
        self.form = ParamForm(self.definition, self.method)
        self.form.update_choices(self._session.model)
        self._form_slot.addWidget(self.form)

    def run(self) -> int | None:
        """Start the analysis on the session's inputs; returns the job id or ``None`` (error shown)."""
        from engine.errors import ProbityError

        self.ensure_ready()
        assert self.method is not None and self.form is not None
        self.error.clear_message()
        try:
            inputs = self._session.audit_inputs()
        except ProbityError as exc:
            self.error.show_error(str(exc))
            return None
        dataset = self._session.dataset
        self._job = self._runner.submit(
            JobSpec(
                kind=self.definition.name,
                fn=self.method,
                args=(inputs,),
                params=self.form.values(),
                key=f"analysis:{self.definition.name}",
                title=f"{self.definition.title} · {dataset.name if dataset else ''}",
                seed=self.form.seed,
            )
        )
        self.run_button.setEnabled(False)
        self.progress.start(f"Running {self.definition.title.lower()}…")
        self.status.setText("")
        return self._job

    def cancel(self) -> None:
        if self._job is not None:
            self._runner.cancel(self._job)
            self.progress.cancelling()

    @property
    def job_id(self) -> int | None:
        return self._job

    # -- slots --------------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.ensure_ready()
        super().showEvent(event)

    def _on_run_clicked(self) -> None:
        self.run()

    def _on_progress_cancel_clicked(self) -> None:
        self.cancel()

    def _on_session_inputs_changed(self, _value: object) -> None:
        if self.form is not None:
            self.form.update_choices(self._session.model)
        if self._job is not None:
            # The running job's inputs are no longer what the user sees.
            self.cancel()
        if self.result is not None:
            self.result = None
            if self.view is not None:
                self.view.clear()  # type: ignore[attr-defined]
                self.view.hide()
            self.placeholder.setText("The inputs changed; press Run for new results.")
            self.placeholder.show()
            self.warnings.clear_message()
            self.status.setText("")
        self._refresh_readiness()

    def _on_runner_job_progress(self, job_id: int, fraction: float, message: str) -> None:
        if job_id == self._job:
            self.progress.update_progress(fraction, message)

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        if job_id != self._job:
            return
        record = self._runner.record(job_id)
        self._job = None
        self._stop()
        self.show_result(result)
        if record is not None and record.finished_at is not None:
            self.status.setText(f"Finished in {record.finished_at - record.submitted_at:.1f} s.")

    def _on_runner_job_failed(self, job_id: int, error: object) -> None:
        if job_id != self._job:
            return
        assert isinstance(error, JobError)
        self._job = None
        self._stop()
        if error.is_user_error:
            self.error.show_error(error.message)
        else:
            self.error.show_error("This analysis stopped because of an internal error; the details are in the log.")

    def _on_runner_job_cancelled(self, job_id: int) -> None:
        if job_id != self._job:
            return
        self._job = None
        self._stop()
        self.status.setText("Cancelled.")

    # -- helpers ---------------------------------------------------------------------------------
    def show_result(self, result: Any) -> None:
        if self.view is None:
            self.view = self.definition.view()
            self._content.addWidget(self.view, 1)
        self.result = result
        self.placeholder.hide()
        self.view.show()
        self.view.set_result(result)  # type: ignore[attr-defined]
        warnings = tuple(getattr(result, "warnings", ()) or ())
        if warnings:
            self.warnings.show_warning("\n".join(warnings))
        else:
            self.warnings.clear_message()
        self.sig_result_shown.emit(self.definition.name)

    def _stop(self) -> None:
        self.progress.stop()
        self._refresh_readiness()

    def _refresh_readiness(self) -> None:
        missing = self._session.missing_inputs()
        self.run_button.setEnabled(not missing and self._job is None)
        if missing:
            self.readiness.setText(f"To run this analysis, {' and '.join(missing)}.")
            self.readiness.show()
        else:
            self.readiness.hide()


class AnalysesPane(QWidget):
    """A list of analyses on the left and the chosen one's panel on the right."""

    def __init__(self, session: Session, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setObjectName("analysisList")
        self.list.setFixedWidth(210)
        self.stack = QStackedWidget()
        self.panels: dict[str, AnalysisPanel] = {}
        for definition in ANALYSES:
            panel = AnalysisPanel(definition, session, runner)
            self.panels[definition.name] = panel
            self.stack.addWidget(panel)
            self.list.addItem(definition.title)
        self.list.currentRowChanged.connect(self._on_list_current_row_changed)
        self.list.setCurrentRow(0)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.list)
        layout.addWidget(self.stack, 1)

    def show_panel(self, name: str) -> AnalysisPanel:
        panel = self.panels[name]
        self.list.setCurrentRow(list(self.panels).index(name))
        return panel

    def _on_list_current_row_changed(self, row: int) -> None:
        if row >= 0:
            self.stack.setCurrentIndex(row)
