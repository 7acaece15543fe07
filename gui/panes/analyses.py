"""The Analyses area: one panel per analysis of the model as a whole, each run through the job runner.

Which analyses appear here, their titles, texts and parameter forms come from
the method descriptors (``engine.method.Method``): a registered method
whose view belongs to this area (:data:`gui.views.VIEWS`) gets a panel, built the first time the area
is shown (the registry loads pandas, which start-up does not).  A form is
built from the method's typed parameters (:class:`ParamForm`), so a new
analysis needs no line here; a new view is one line in :mod:`gui.views`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
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
from gui.runner import JobError, JobSpec, RunnerLike
from gui.session import Session
from gui.text import plain_label
from gui.widgets import InlineMessage, ProgressRow, hint_label, pane_title

if TYPE_CHECKING:
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.method import Method
    from engine.params import Param
    from engine.results import Result

__all__ = ["analysis_methods", "run_analysis", "AnalysisPanel", "AnalysesPane", "ParamForm", "NumberBox"]


def analysis_methods() -> tuple[Method, ...]:
    """The registered methods this area shows (their view is one of its own in :data:`gui.views.VIEWS`)."""
    from gui.views import methods_in

    return tuple(methods_in("analyses").values())


def run_analysis(inputs: AuditInputs, *, method: str, params: Mapping[str, Any], ctx: JobContext) -> Result:
    """Run one registered analysis through the engine's job layer, as ``probity explain`` does (on a worker)."""
    from engine.plan import JobSpec as EngineJob
    from engine.plan import run_job

    return run_job(EngineJob(method, params), inputs, ctx).result


class NumberBox(QDoubleSpinBox):
    """A float box that shows numbers as people write them (0.15, 1e-05, 250) and keeps nine decimals.

    Qt's own box shows a fixed number of decimals, so a small value either
    reads as 0.000 or is rounded away; this one takes any value the engine may
    accept.  Given the parameter it stands for, the parameter's own check
    (:meth:`Param.check`, which knows whether a bound is excluded) judges each
    number as it is typed: a refused one is never taken (Enter or leaving the
    box puts back the last accepted number) and, while it is in the box,
    :attr:`refusal` holds the sentence the engine would give for it.
    """

    sig_refusal_changed = Signal(str)  # the sentence refusing what the box holds, "" once it is accepted

    def __init__(
        self,
        value: float = 0.0,
        *,
        minimum: float = -1e12,
        maximum: float = 1e12,
        param: Param | None = None,
        owner: str = "",
    ) -> None:
        super().__init__()
        self._param = param
        self._owner = owner
        self.refusal = ""
        self.setDecimals(9)
        self.setRange(minimum, maximum)
        magnitude = abs(value)
        self.setSingleStep(10.0 ** math.floor(math.log10(magnitude)) if magnitude > 0 else 0.1)
        self.setValue(value)
        # Qt sizes a spin box by its range's end points, which for [0, 1] ("0", "1") leaves no room for 0.95.
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("-0.000001e-05") + 32)
        # Qt rewrites the text without a signal when Enter puts a number back; editingFinished follows it.
        self.lineEdit().textChanged.connect(self._on_edit_text_changed)
        self.editingFinished.connect(self._on_self_editing_finished)
        self.valueChanged.connect(self._on_self_value_changed)

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
        # A refused number may still be the start of an accepted one ("1" of "1e-05"), so it stays typeable.
        return QValidator.State.Intermediate if self.refusal_of(value) else QValidator.State.Acceptable

    def refusal_of(self, value: float) -> str:
        """Why ``value`` is refused (the engine's sentence when the box has a parameter), or ``""``."""
        from engine.errors import AnalysisError

        if self._param is not None:
            try:
                self._param.check(value, owner=self._owner)
            except AnalysisError as exc:
                return str(exc)
        if not self.minimum() <= value <= self.maximum():
            low, high = self.textFromValue(self.minimum()), self.textFromValue(self.maximum())
            return f"This box takes numbers from {low} to {high}, not {self.textFromValue(value)}."
        return ""

    def setValue(self, value: float) -> None:  # noqa: N802 (Qt's name)
        super().setValue(value)
        self._refresh_refusal()  # the text may change without a signal (the same value, typed differently)

    def _refresh_refusal(self) -> None:
        text = self.lineEdit().text()
        try:
            # The text shows six digits of what the box holds (0.9999999 reads "1"): judge what it holds.
            value = self.value() if text == self.textFromValue(self.value()) else float(text.strip())
        except ValueError:
            refusal = ""  # half-typed: nothing to say yet, and Enter puts the last number back
        else:
            refusal = self.refusal_of(value)
        if refusal != self.refusal:
            self.refusal = refusal
            self.sig_refusal_changed.emit(refusal)

    def _on_edit_text_changed(self, _text: str) -> None:
        self._refresh_refusal()

    def _on_self_editing_finished(self) -> None:
        self._refresh_refusal()

    def _on_self_value_changed(self, _value: float) -> None:
        self._refresh_refusal()


def _none_word(param: Param) -> str:
    """The short word a box shows for ``None`` (the tooltip says in full what it means)."""
    meaning = param.none.lower()
    if meaning.startswith(("every", "all")):
        return "all"
    if "chosen" in meaning or "auto" in meaning:
        return "auto"
    return "default"


_INT_MAX = 1_000_000_000


def _owner_of(param: Param) -> str:
    """The title the engine's refusals give the method ``param`` belongs to (:meth:`Method.validate`'s owner)."""
    from engine.registry import METHODS

    owners = {m.report_title for m in METHODS.values() if any(p is param for p in m.params)}
    return owners.pop() if len(owners) == 1 else "This method"


class ParamForm(QWidget):
    """Widgets for a method's typed parameters (:class:`engine.params.Param`).

    Each parameter the user may set gets the widget its kind calls for, its
    label, its help as tooltip and its descriptor's default; those the front end
    supplies (rows, an earlier result) and hidden ones get none.  ``values()``
    gives what the form holds, ``None`` where a box stands at "all", "auto" or
    "default"; the method's own check (:meth:`Method.validate`) judges them.
    A number box judges its number as it is typed: while one holds a number its
    parameter refuses (an excluded bound, a number past a bound), the form shows
    the engine's sentence under its fields and :attr:`problem` holds it, so a
    pane can keep Run disabled until it is mended.
    """

    sig_problem_changed = Signal(str)  # the first refusal in the form, "" once every field is accepted

    def __init__(self, params: Sequence[Param], *, uses_seed: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.params = {p.name: p for p in params}
        self._getters: dict[str, Callable[[], Any]] = {}
        self._setters: dict[str, Callable[[Any], None]] = {}
        self._choice_boxes: dict[str, tuple[QComboBox, Param]] = {}
        self._refusals: dict[str, str] = {}
        self.problem = ""
        self.message = InlineMessage()
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        for param in params:
            if param.provided or param.hidden:
                continue
            widget = self._make_widget(param)
            tip = param.help + (f" Left at {_none_word(param)}: {param.none}." if param.none else "")
            widget.setToolTip(tip)
            layout.addRow(f"{param.title}:", widget)
        self.seed_box: QSpinBox | None = None
        if uses_seed:
            self.seed_box = QSpinBox()
            self.seed_box.setRange(0, 2_147_483_647)
            self.seed_box.setToolTip("Every random choice follows from this number; the report records it.")
            layout.addRow("Seed:", self.seed_box)
        layout.addRow(self.message)  # a row of its own under the fields, hidden while all is well

    def _make_widget(self, param: Param) -> QWidget:
        kind, default = param.kind, param.default
        if kind in ("choice", "class", "baseline"):
            return self._choice(param)
        if kind == "bool":
            check = QCheckBox()
            check.setChecked(bool(default))
            self._getters[param.name] = check.isChecked
            self._setters[param.name] = lambda v, c=check: c.setChecked(bool(v))
            return check
        if kind in ("int", "int_or_auto"):
            return self._whole(param)
        if kind == "float":
            return self._number(param)
        return self._text(param)

    def _choice(self, param: Param) -> QComboBox:
        box = QComboBox()
        self._choice_boxes[param.name] = (box, param)
        self._fill(box, param, None)
        if param.default is not None:
            box.setCurrentText(str(param.default))
        nullable = param.allows_none

        def get_choice(b: QComboBox = box, n: bool = nullable) -> Any:
            return None if n and b.currentIndex() == 0 else b.currentText()

        def set_choice(value: Any, b: QComboBox = box, n: bool = nullable) -> None:
            b.setCurrentIndex(0 if n and value is None else max(b.findText(str(value)), 0))

        self._getters[param.name] = get_choice
        self._setters[param.name] = set_choice
        return box

    def _whole(self, param: Param) -> QSpinBox:
        spin = QSpinBox()
        spin.setGroupSeparatorShown(True)
        low = int(param.minimum) if param.minimum is not None else 0
        high = int(min(param.maximum, _INT_MAX)) if param.maximum is not None else _INT_MAX
        special: Any = None
        if param.kind == "int_or_auto":
            special = "auto"
        elif param.allows_none:
            special = None
        if param.kind == "int_or_auto" or param.allows_none:
            # One below the smallest value stands for "auto" / None: spin boxes cannot be empty.
            low -= 1
            spin.setSpecialValueText("auto" if param.kind == "int_or_auto" else _none_word(param))
        spin.setRange(low, high)
        at_special = param.kind == "int_or_auto" or param.allows_none
        start = param.default
        spin.setValue(low if at_special and start in (None, "auto") else int(start))

        def get(s: QSpinBox = spin, lo: int = low, sp: bool = at_special, value: Any = special) -> Any:
            return value if sp and s.value() == lo else s.value()

        def put(v: Any, s: QSpinBox = spin, lo: int = low) -> None:
            s.setValue(lo if v in (None, "auto") else int(v))

        self._getters[param.name] = get
        self._setters[param.name] = put
        return spin

    def _number(self, param: Param) -> QDoubleSpinBox:
        if param.allows_none:
            # 0 (at the bottom) stands for None, as lime's default kernel width.
            spin = QDoubleSpinBox()
            spin.setRange(param.minimum if param.minimum is not None else 0.0, 1e6)
            spin.setDecimals(3)
            spin.setSpecialValueText(_none_word(param))
            spin.setValue(spin.minimum() if param.default is None else float(param.default))
            self._getters[param.name] = lambda s=spin: None if s.value() == s.minimum() else s.value()
            self._setters[param.name] = lambda v, s=spin: s.setValue(s.minimum() if v is None else float(v))
            return spin
        box = NumberBox(
            float(param.default),
            minimum=param.minimum if param.minimum is not None else -1e12,
            maximum=param.maximum if param.maximum is not None else 1e12,
            param=param,
            owner=_owner_of(param),
        )
        box.sig_refusal_changed.connect(lambda refusal, n=param.name: self._on_box_refusal_changed(n, refusal))
        self._getters[param.name] = box.value
        self._setters[param.name] = lambda v, s=box: s.setValue(float(v))
        return box

    def _text(self, param: Param) -> QLineEdit:
        """Text, column lists and pairs: written as ``a, b``; empty stands for None."""

        def text_of(value: Any) -> str:
            if value is None:
                return ""
            if isinstance(value, (list, tuple)):
                return ", ".join(str(v) for v in value)
            return str(value)

        edit = QLineEdit(text_of(param.default))
        edit.setMinimumWidth(220)
        if param.allows_none:
            edit.setPlaceholderText(param.none or "default")

        def get(e: QLineEdit = edit, p: Param = param) -> Any:
            text = e.text().strip()
            if not text and p.allows_none:
                return None
            if p.kind in ("columns", "pair"):
                value = p.parse_text(text)
                return [value] if p.kind == "columns" and isinstance(value, str) else value
            return text

        self._getters[param.name] = get
        self._setters[param.name] = lambda v, e=edit: e.setText(text_of(v))
        return edit

    @staticmethod
    def _fill(box: QComboBox, param: Param, model: Any) -> None:
        if param.allows_none:
            box.addItem("default")
        box.addItems(list(param.choices_for(model)))

    def update_choices(self, model: Any) -> None:
        """Refill choice boxes for ``model`` (its classes, the scorings that fit its task)."""
        for box, param in self._choice_boxes.values():
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            self._fill(box, param, model)
            index = box.findText(current)
            box.setCurrentIndex(max(index, 0))
            box.blockSignals(False)

    @property
    def names(self) -> tuple[str, ...]:
        """The parameters this form shows."""
        return tuple(self._getters)

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

    def _on_box_refusal_changed(self, name: str, refusal: str) -> None:
        if refusal:
            self._refusals[name] = refusal
        else:
            self._refusals.pop(name, None)
        # The first field's refusal, in the form's order, whichever was typed last.
        problem = next((self._refusals[n] for n in self._getters if n in self._refusals), "")
        if problem == self.problem:
            return
        self.problem = problem
        if problem:
            self.message.show_error(problem)
        else:
            self.message.clear_message()
        self.sig_problem_changed.emit(problem)


class AnalysisPanel(QWidget):
    """Parameters, Run/Cancel with progress, inline errors and the result view of one analysis."""

    sig_result_shown = Signal(str)  # analysis name

    def __init__(self, method: Method, session: Session, runner: RunnerLike, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = method
        self._session = session
        self._runner = runner
        self._job: int | None = None
        self.form: ParamForm | None = None
        self.view: QWidget | None = None
        self.result: Any | None = None

        self.title = pane_title(method.title)
        self.description = hint_label(method.summary)
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
    @property
    def name(self) -> str:
        return self.method.name

    def ensure_ready(self) -> None:
        """Build the parameter form (on first show)."""
        if self.form is not None:
            return
        self.form = ParamForm(self.method.params, uses_seed=self.method.random)
        self.form.update_choices(self._session.model)
        self.form.sig_problem_changed.connect(self._on_form_problem_changed)
        self._form_slot.addWidget(self.form)

    def run(self) -> int | None:
        """Start the analysis on the session's inputs; returns the job id or ``None`` (error shown)."""

        self.ensure_ready()
        assert self.form is not None
        if self.form.problem:
            return None  # the form shows the refused number's sentence under its fields
        inputs = self._session.inputs_or_say(self.error)
        if inputs is None:
            return None
        dataset = self._session.dataset
        self._job = self._runner.submit(
            JobSpec(
                kind=self.method.name,
                fn=run_analysis,
                args=(inputs,),
                params={"method": self.method.name, "params": self.form.values()},
                key=f"analysis:{self.method.name}",
                title=f"{self.method.title} · {dataset.name if dataset else ''}",
                seed=self.form.seed,
            )
        )
        self.run_button.setEnabled(False)
        self.progress.start(f"Running {self.method.title.lower()}…")
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

    def _on_form_problem_changed(self, _problem: str) -> None:
        self._refresh_readiness()

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
            from gui.views import VIEWS

            build = VIEWS[self.method.view].build
            assert build is not None  # every view of this area builds its own widget
            self.view = build()
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
        self.sig_result_shown.emit(self.method.name)

    def _stop(self) -> None:
        self.progress.stop()
        self._refresh_readiness()

    def _refresh_readiness(self) -> None:
        missing = self._session.missing_inputs()
        refused = self.form is not None and bool(self.form.problem)  # the form says why
        self.run_button.setEnabled(not missing and self._job is None and not refused)
        if missing:
            self.readiness.setText(f"To run this analysis, {' and '.join(missing)}.")
            self.readiness.show()
        else:
            self.readiness.hide()


class AnalysesPane(QWidget):
    """A list of analyses on the left and the chosen one's panel on the right.

    The panels are made from the descriptors the first time the area is shown
    or asked for one (:meth:`ensure_ready`); ``sig_panels_ready`` then hands
    them out, and ``sig_result_shown`` tells which analysis drew a result.
    """

    sig_panels_ready = Signal(list)  # the AnalysisPanels, once made
    sig_result_shown = Signal(str)  # analysis name

    def __init__(self, session: Session, runner: RunnerLike, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._runner = runner
        self.list = QListWidget()
        self.list.setObjectName("analysisList")
        self.list.setFixedWidth(210)
        self.stack = QStackedWidget()
        self.panels: dict[str, AnalysisPanel] = {}
        self.list.currentRowChanged.connect(self._on_list_current_row_changed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.list)
        layout.addWidget(self.stack, 1)

    def ensure_ready(self) -> None:
        """Make one panel per analysis this area shows (once; imports the registry)."""
        if self.panels:
            return
        for method in analysis_methods():
            panel = AnalysisPanel(method, self._session, self._runner)
            panel.sig_result_shown.connect(self.sig_result_shown)
            self.panels[method.name] = panel
            self.stack.addWidget(panel)
            self.list.addItem(method.title)
        self.list.setCurrentRow(0)
        self.sig_panels_ready.emit(list(self.panels.values()))

    def show_panel(self, name: str) -> AnalysisPanel:
        self.ensure_ready()
        panel = self.panels[name]
        self.list.setCurrentRow(list(self.panels).index(name))
        return panel

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.ensure_ready()
        super().showEvent(event)

    # -- session state (see gui.sessionfile.SessionPane) ---------------------------------------
    def save_state(self) -> dict[str, dict[str, Any]]:
        """Each built panel's parameters and seed, under the analysis name."""
        return {
            name: {"params": panel.form.values(), "seed": panel.form.seed}
            for name, panel in self.panels.items()
            if panel.form is not None
        }

    def restore_state(self, parameters: Mapping[str, Any], results: Mapping[str, Any]) -> None:
        """Put back the saved parameters and seed of every panel named in ``parameters``."""
        self.ensure_ready()
        for name, saved in parameters.items():
            panel = self.panels.get(name)
            if panel is None or not isinstance(saved, dict):
                continue
            panel.ensure_ready()
            assert panel.form is not None
            known = panel.form.values()
            values = {k: v for k, v in (saved.get("params") or {}).items() if k in known}
            seed = saved.get("seed")
            panel.form.set_values(values, seed=int(seed) if isinstance(seed, int) else None)

    def show_restored_result(self, name: str, result: Any) -> bool:
        """Draw a reopened result in its panel (not recomputed); False when no panel draws ``name``."""
        self.ensure_ready()
        panel = self.panels.get(name)
        if panel is None:
            return False
        panel.show_result(result)
        panel.status.setText("Reopened from the saved session (not recomputed).")
        return True

    def _on_list_current_row_changed(self, row: int) -> None:
        if row >= 0:
            self.stack.setCurrentIndex(row)
