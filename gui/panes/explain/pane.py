"""The Explain pane: method, parameters, Run/Cancel, the instance picker, the result tabs and the selected rows.

The pane wires: its method box and forms come from the descriptors
(:func:`~gui.panes.explain.worker.explain_methods`), Run submits
:func:`~gui.panes.explain.worker.run_explanation` to the job runner, the
instance picker (:class:`~gui.panes.explain.widgets.InstancePicker`) asks for
searches and predictions that run as jobs too, and the results are drawn by
:class:`~gui.panes.explain.views.ResultArea`, linked to the window's selection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from gui.panes.analyses import ParamForm
from gui.panes.explain.views import ResultArea
from gui.panes.explain.widgets import CollapsibleSection, InstancePicker, PositionTableModel
from gui.panes.explain.worker import (
    ExplainOutcome,
    PredictionScan,
    explain_methods,
    run_explanation,
    scan_predictions,
)
from gui.resources import icon
from gui.runner import JobError, JobSpec, RunnerLike
from gui.selection import Selection, SelectionModel, find_rows, row_ranges
from gui.session import Session, role_map
from gui.sessionfile import ATTRIBUTIONS_SUFFIX, EXPLAIN_PARAMETERS, EXPLAIN_PREFIX
from gui.text import literal, plain_label
from gui.widgets import InlineMessage, ProgressRow, hint_label, pane_title

if TYPE_CHECKING:
    from engine.method import Method
    from gui.panes.analyses import AnalysesPane

__all__ = ["ExplainPane", "rows_spec_text"]


def _rows_used(saved: Any, results: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Method -> the rows spec its restored result was computed on.

    Saved specs are used as they are (the seed is restored with them); a result
    saved without one (an older session file) gets its own rows written out,
    so the form never disagrees with the result on screen.
    """
    methods = explain_methods()
    out: dict[str, dict[str, Any]] = {}
    if isinstance(saved, dict):
        for name, used in saved.items():
            if name in methods and isinstance(used, dict) and isinstance(used.get("rows_spec"), str):
                out[name] = {"rows_spec": used["rows_spec"], "include_selected": bool(used.get("include_selected"))}
    for kind, result in (results or {}).items():
        name = kind[len(EXPLAIN_PREFIX) :] if kind.startswith(EXPLAIN_PREFIX) else ""
        rows = getattr(result, "rows", None)
        if name in methods and methods[name].takes_rows and name not in out and rows is not None:
            out[name] = {"rows_spec": rows_spec_text(np.asarray(rows, dtype=np.int64)), "include_selected": False}
    return out


def rows_spec_text(rows: np.ndarray) -> str:
    """A row spec naming exactly ``rows`` (0-based), with runs written as ranges: ``0-9,17,40-41``."""
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in row_ranges(np.unique(rows)))


class ExplainPane(QWidget):
    """Method, parameters, Run/Cancel, the instance picker, linked result views and the selected rows."""

    sig_status = Signal(str)
    sig_result_shown = Signal(str)  # method name

    def __init__(
        self, session: Session, runner: RunnerLike, selection: SelectionModel, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._runner = runner
        self.selection = selection
        self._job: int | None = None
        self._job_method: str | None = None
        self._find_job: int | None = None
        self._predict_job: int | None = None
        self._pending_pick: str | None = None  # "highest"/"lowest" once predictions arrive
        self.predictions: PredictionScan | None = None
        self.methods: dict[str, Method] = {}  # filled from the descriptors by ensure_ready
        self.forms: dict[str, tuple[ParamForm, ParamForm]] = {}
        # SHAP results by attribution_key, for clusters to reuse (cleared when the inputs change).
        self.shap_cache: dict[tuple[Any, ...], Any] = {}
        # Method -> reason it cannot explain the open model (greyed out in the method box).
        self.unavailable: dict[str, str] = {}
        # Method -> the rows its shown result was computed on: {"rows_spec", "include_selected"}.
        self.rows_used: dict[str, dict[str, Any]] = {}
        self._job_rows: dict[str, Any] | None = None
        # Fills the forms with the settings' defaults (the window's FormDefaults.fill_methods); a restored
        # session calls it before putting its own values back, so the saved values win.
        self.defaults_filler: Callable[[ExplainPane], object] | None = None
        self._build()
        session.sig_dataset_changed.connect(self._on_session_dataset_changed)
        session.sig_roles_changed.connect(self._on_session_inputs_changed)
        session.sig_model_changed.connect(self._on_session_inputs_changed)
        selection.sig_selection_changed.connect(self._on_selection_changed)
        runner.sig_job_progress.connect(self._on_runner_job_progress)
        runner.sig_job_finished.connect(self._on_runner_job_finished)
        runner.sig_job_failed.connect(self._on_runner_job_failed)
        runner.sig_job_cancelled.connect(self._on_runner_job_cancelled)
        self._on_method_box_index_changed(0)
        self._refresh_readiness()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.method_box = QComboBox()  # filled from the descriptors by ensure_ready
        self.method_box.currentIndexChanged.connect(self._on_method_box_index_changed)
        self.description = hint_label("")
        top = QHBoxLayout()
        top.addWidget(pane_title("Explain"))
        top.addSpacing(12)
        top.addWidget(QLabel("Method:"))
        top.addWidget(self.method_box)
        top.addWidget(self.description, 1)

        self._basic_slot = QHBoxLayout()
        self._basic_slot.setContentsMargins(0, 0, 0, 0)
        self.advanced = CollapsibleSection("Advanced options")
        self.rows_edit = QLineEdit()
        self.rows_edit.setPlaceholderText("only the selected rows")
        self.rows_edit.setToolTip(
            "Rows to explain, 0-based as in the report: first:20, last:5, random:500, 0-99, 3,17,42 or all."
        )
        self.rows_edit.setMinimumWidth(140)
        self.include_selected = QCheckBox("and the selected rows")
        self.include_selected.setChecked(True)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2_147_483_647)
        self.seed_box.setToolTip("Every random choice follows from this number; the result records it.")
        self.rows_form = QWidget()
        rows_layout = QFormLayout(self.rows_form)
        rows_layout.setContentsMargins(0, 0, 0, 0)
        rows_layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        row_fields = QHBoxLayout()
        row_fields.addWidget(self.rows_edit)
        row_fields.addWidget(self.include_selected)
        rows_layout.addRow("Rows:", row_fields)
        seed_form = QFormLayout()
        seed_form.setContentsMargins(0, 0, 0, 0)
        seed_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        seed_form.addRow("Seed:", self.seed_box)
        self.run_button = QPushButton(icon("run"), "Run")
        self.run_button.setObjectName("primary")
        self.run_button.clicked.connect(self._on_run_clicked)
        controls = QHBoxLayout()
        controls.addLayout(self._basic_slot)
        controls.addSpacing(16)
        side = QVBoxLayout()
        side.addWidget(self.rows_form)
        side.addLayout(seed_form)
        side.addStretch(1)
        controls.addLayout(side)
        controls.addStretch(1)
        controls.addWidget(self.run_button, 0, Qt.AlignmentFlag.AlignTop)

        self.readiness = hint_label("")
        self.progress = ProgressRow()
        self.progress.sig_cancel_clicked.connect(self._on_progress_cancel_clicked)
        self.status = plain_label()  # quotes the search text and column names
        self.status.setObjectName("hint")
        self.error = InlineMessage()
        self.warnings = InlineMessage()
        # Deletion/insertion figures of the attribution shown (engine.plan attaches them to every one).
        self.faithfulness = hint_label("")
        self.faithfulness.setObjectName("faithfulness")
        self.faithfulness.hide()

        # The instance picker: it asks, the pane answers (searches and predictions are jobs).
        self.picker = InstancePicker()
        self.picker.sig_row_chosen.connect(self._on_picker_row_chosen)
        self.picker.sig_find_requested.connect(self._on_picker_find_requested)
        self.picker.sig_pick_requested.connect(self._on_picker_pick_requested)
        self.picker.sig_clear_requested.connect(self._on_picker_clear_requested)
        self.row_spin = self.picker.row_spin
        self.find_edit = self.picker.find_edit
        self.find_button = self.picker.find_button
        self.pick_count = self.picker.pick_count
        self.highest_button = self.picker.highest_button
        self.lowest_button = self.picker.lowest_button
        self.clear_selection_button = self.picker.clear_selection_button
        self.selection_label = self.picker.selection_label

        # Results and the selected rows.
        self.result_stack = ResultArea()
        self.result_stack.sig_rows_picked.connect(self._on_result_stack_rows_picked)
        self.result_tabs = self.result_stack.tabs
        self.placeholder = self.result_stack.placeholder
        self.selected_model = PositionTableModel(self)
        self.selected_table = QTableView()
        self.selected_table.setModel(self.selected_model)
        self.selected_table.setAlternatingRowColors(True)
        self.selected_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.selected_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.selected_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.selected_table.horizontalHeader().setDefaultSectionSize(110)
        self.selected_table.clicked.connect(self._on_selected_table_clicked)
        self.selected_title = QLabel("Selected rows")
        self.selected_title.setToolTip("Rows are numbered by 0-based position, as in explanations and the report.")
        self.selected_title.setObjectName("sectionTitle")
        selected_box = QWidget()
        selected_layout = QVBoxLayout(selected_box)
        selected_layout.setContentsMargins(0, 0, 0, 0)
        selected_layout.addWidget(self.selected_title)
        selected_layout.addWidget(self.selected_table, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.result_stack)
        self.splitter.addWidget(selected_box)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([620, 150])  # the plots get the room; the table can be dragged taller

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(controls)
        layout.addWidget(self.advanced)
        layout.addWidget(self.readiness)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addWidget(self.warnings)
        layout.addWidget(self.faithfulness)
        layout.addWidget(self.picker)
        layout.addWidget(self.splitter, 1)

    # -- public API ------------------------------------------------------------------------
    @property
    def method_name(self) -> str:
        """The chosen method's name (``""`` before the methods are read)."""
        data = self.method_box.currentData()
        return "" if data is None else str(data)

    @property
    def definition(self) -> Method:
        """The chosen method's descriptor."""
        self.ensure_ready()
        return self.methods[self.method_name]

    @property
    def job_id(self) -> int | None:
        return self._job

    @property
    def results(self) -> dict[str, Any]:
        """The results shown, by view (``"lime"``, ``"shap"``, ``"clusters"``, ``"pdp"``, ``"native"``, …)."""
        return self.result_stack.results

    @property
    def views(self) -> dict[str, QWidget]:
        """The result views built so far, by :data:`VIEW_TITLES` key."""
        return self.result_stack.views

    @property
    def form_problem(self) -> str:
        """Why the chosen method's forms refuse a number they hold (``""``: Run may start it)."""
        basic, advanced = self.forms.get(self.method_name, (None, None))
        return (basic.problem if basic is not None else "") or (advanced.problem if advanced is not None else "")

    def set_method(self, name: str) -> None:
        """Choose method ``name`` and show its form and rows (also when it is already chosen)."""
        self.ensure_ready()
        index = list(self.methods).index(name)
        if index == self.method_box.currentIndex():
            self._on_method_box_index_changed(index)
        else:
            self.method_box.setCurrentIndex(index)

    def ensure_ready(self) -> None:
        """Read the method descriptors, fill the method box and build the forms (deferred so start-up skips it)."""
        if self.forms:
            return
        self.methods = explain_methods()
        self.method_box.blockSignals(True)
        for method in self.methods.values():
            self.method_box.addItem(method.title, method.name)
        self.method_box.blockSignals(False)
        for method in self.methods.values():
            shown = [p for p in method.params if not p.provided and not p.hidden]
            forms = []
            for subset in ([p for p in shown if p.basic], [p for p in shown if not p.basic]):
                form = ParamForm(subset)
                form.update_choices(self._session.model)
                form.sig_problem_changed.connect(self._on_form_problem_changed)
                form.hide()
                forms.append(form)
            self._basic_slot.addWidget(forms[0])
            self.advanced.content_layout.addWidget(forms[1])
            self.forms[method.name] = (forms[0], forms[1])
        self._on_method_box_index_changed(self.method_box.currentIndex())
        self.refresh_availability()

    def form_values(self) -> dict[str, Any]:
        """The chosen method's parameters from both forms."""
        self.ensure_ready()
        basic, advanced = self.forms[self.method_name]
        return {**advanced.values(), **basic.values()}

    def set_params(self, values: Mapping[str, Any]) -> None:
        """Fill the chosen method's forms (scripts and tests); unknown names raise ``KeyError``."""
        self.ensure_ready()
        basic, advanced = self.forms[self.method_name]
        for name, value in values.items():
            (basic if name in basic.names else advanced).set_values({name: value})

    def run(self) -> int | None:
        """Start the chosen method; returns the job id or ``None`` (the error is shown inline)."""

        self.ensure_ready()
        if self.form_problem:
            return None  # the form shows the refused number's sentence under its fields
        inputs = self._session.inputs_or_say(self.error)
        if inputs is None:
            return None
        definition = self.definition
        reason = self.unavailable.get(definition.name)
        if reason is not None:
            self.error.show_error(reason)
            return None
        extra: tuple[int, ...] = ()
        if definition.takes_rows and self.include_selected.isChecked():
            extra = tuple(int(r) for r in self.selection.rows)
        dataset = self._session.dataset
        self._job_method = definition.name
        self._job_rows = (
            None
            if not definition.takes_rows
            else {"rows_spec": self.rows_edit.text().strip(), "include_selected": self.include_selected.isChecked()}
        )
        self._job = self._runner.submit(
            JobSpec(
                kind=f"explain-{definition.name}",
                fn=run_explanation,
                args=(inputs,),
                params={
                    "method": definition.name,
                    "params": self.form_values(),
                    "rows_spec": self.rows_edit.text().strip() if definition.takes_rows else "",
                    "extra_rows": extra,
                    "reuse": dict(self.shap_cache) if definition.builds_on else None,
                },
                key="explain",
                title=f"{definition.title} · {dataset.name if dataset else ''}",
                seed=self.seed_box.value(),
            )
        )
        self.run_button.setEnabled(False)
        self.progress.start(f"Running {definition.title}…")
        self.status.setText("")
        return self._job

    def cancel(self) -> None:
        if self._job is not None:
            self._runner.cancel(self._job)
            self.progress.cancelling()

    def find(self, text: str) -> int | None:
        """Select the rows matching a search (see :func:`gui.selection.parse_query`); returns the job id."""
        dataset = self._session.dataset
        if dataset is None:
            self.error.show_error("Open a dataset to search its rows.")
            return None
        self.error.clear_message()
        self.find_edit.setText(text)
        self._find_job = self._runner.submit(
            JobSpec(
                kind="find-rows",
                fn=find_rows,
                args=(dataset.frame, text),
                params={"source": dataset.name},
                key="explain-find",
                title=f"Find rows: {text}",
                listed=False,
            )
        )
        self.status.setText("Searching…")
        return self._find_job

    def pick_by_prediction(self, which: str) -> int | None:
        """Select the ``pick_count`` rows with the ``"highest"`` or ``"lowest"`` prediction.

        Returns the prediction job's id, or ``None`` when the predictions are
        already known (the rows are selected at once) or inputs are missing.
        """

        if self.predictions is not None:
            self._select_by_prediction(which)
            return None
        inputs = self._session.inputs_or_say(self.error)
        if inputs is None:
            return None
        self._pending_pick = which
        self._predict_job = self._runner.submit(
            JobSpec(
                kind="predict-rows",
                fn=scan_predictions,
                args=(inputs,),
                key="explain-predict",
                title="Predict every row",
            )
        )
        self.status.setText("Predicting every row…")
        return self._predict_job

    def view(self, key: str) -> QWidget:
        """The result view of ``key`` (see :data:`VIEW_TITLES`), built on first use."""
        return self.result_stack.view(key)

    @property
    def lime_view(self) -> Any:
        return self.result_stack.lime_view

    @property
    def waterfall_view(self) -> Any:
        return self.result_stack.waterfall_view

    @property
    def beeswarm_view(self) -> Any:
        return self.result_stack.beeswarm_view

    @property
    def cluster_view(self) -> Any:
        return self.result_stack.cluster_view

    @property
    def dependence_view(self) -> Any:
        return self.result_stack.dependence_view

    @property
    def importance_view(self) -> Any:
        return self.result_stack.importance_view

    def show_view(self, key: str) -> None:
        """Bring the tab of ``key`` to the front (adding it in the standard order)."""
        self.result_stack.show_view(key)

    def show_outcome(self, outcome: ExplainOutcome) -> None:
        """Display what an explain job returned, in its view, linked to the current selection."""
        definition = self.methods.get(outcome.method) or explain_methods()[outcome.method]
        result = outcome.result
        self.result_stack.show_result(
            definition.view,
            result,
            attributions=outcome.attributions,
            frame=self._session.dataset.frame if self._session.dataset is not None else None,
            rows=self.selection.rows,
            current=self.selection.current,
        )
        warnings = tuple(getattr(result, "warnings", ()) or ())
        if outcome.attributions is not None:
            warnings += tuple(getattr(outcome.attributions, "warnings", ()) or ())
        warnings += self._show_faithfulness(outcome.attributions if outcome.attributions is not None else result)
        if warnings:
            self.warnings.show_warning("\n".join(dict.fromkeys(warnings)))
        else:
            self.warnings.clear_message()
        self.sig_result_shown.emit(outcome.method)

    def _show_faithfulness(self, result: Any) -> tuple[str, ...]:
        """Show the attribution's faithfulness figures (as the report states them); its warning, if any."""
        from engine.attribution import AttributionResult
        from engine.explain.quality import faithfulness_summary

        summary = faithfulness_summary(result) if isinstance(result, AttributionResult) else None
        if summary is None:
            self.faithfulness.setText("")
            self.faithfulness.hide()
            return ()
        self.faithfulness.setText(summary.line())
        self.faithfulness.show()
        warning = summary.warning()
        return (warning,) if warning else ()

    def add_global_result(self, result: Any) -> None:
        """Show an importance result computed elsewhere (permutation from the Analyses area) in Importance."""
        self.importance_view.set_result(result)
        self.show_view("importance")

    def follow_analyses(self, analyses: AnalysesPane) -> None:
        """Mirror the Analyses area's permutation importance in the Importance tab's method switcher."""
        analyses.sig_result_shown.connect(lambda name: self._on_analysis_result_shown(analyses.panels[name]))

    # -- session state (see gui.sessionfile.SessionPane) ---------------------------------------
    def save_state(self) -> dict[str, dict[str, Any]]:
        """The chosen method, the seed, every method's parameters, the rows each shown result used, the selection."""
        if not self.forms:
            return {}
        return {
            EXPLAIN_PARAMETERS: {
                "method": self.method_name,
                "seed": self.seed_box.value(),
                "params": {
                    name: {k: v for form in forms for k, v in form.values().items()}
                    for name, forms in self.forms.items()
                },
                # The rows each shown result was computed on, and the window's selection.
                "rows": {name: dict(used) for name, used in self.rows_used.items()},
                "selection": {
                    "rows": [int(r) for r in self.selection.rows],
                    "current": self.selection.current,
                },
            }
        }

    def restore_state(self, parameters: Mapping[str, Any], results: Mapping[str, Any]) -> None:
        """Put back the saved method, seed, parameters, rows and selection (when the session has them)."""
        saved = parameters.get(EXPLAIN_PARAMETERS)
        if not isinstance(saved, dict):
            return
        self.ensure_ready()
        if self.defaults_filler is not None:
            self.defaults_filler(self)  # the defaults first, so the saved values win
        for name, values in (saved.get("params") or {}).items():
            for form in self.forms.get(name, ()):
                known = form.values()
                form.set_values({k: v for k, v in values.items() if k in known})
        if isinstance(saved.get("seed"), int):
            self.seed_box.setValue(saved["seed"])
        self.rows_used = _rows_used(saved.get("rows"), results)
        saved_selection = saved.get("selection")
        if isinstance(saved_selection, dict) and self._session.dataset is not None:
            rows = [int(r) for r in saved_selection.get("rows") or () if isinstance(r, int)]
            current = saved_selection.get("current")
            self.selection.set_rows(rows, current=current if isinstance(current, int) else None, source="session")
        self.set_method(saved["method"] if saved.get("method") in self.forms else self.method_name)

    def show_restored_result(self, name: str, result: Any, results: Mapping[str, Any]) -> bool:
        """Draw a reopened ``explain-<method>`` result (not recomputed); False when it is not one this area shows.

        ``results`` are all the reopened results: a cluster result's SHAP values are kept beside it.
        """
        if not name.startswith(EXPLAIN_PREFIX) or name.endswith(ATTRIBUTIONS_SUFFIX):
            return False
        method = name[len(EXPLAIN_PREFIX) :]
        if method not in explain_methods():
            return False
        self.ensure_ready()
        self.show_outcome(
            ExplainOutcome(method=method, result=result, attributions=results.get(name + ATTRIBUTIONS_SUFFIX))
        )
        self.status.setText("Reopened from the saved session (not recomputed).")
        return True

    def clear_results(self, message: str) -> None:
        self.result_stack.clear(message)
        self.warnings.clear_message()
        self.faithfulness.setText("")
        self.faithfulness.hide()
        self.status.setText("")

    # -- slots: user -------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.ensure_ready()
        super().showEvent(event)

    def _on_method_box_index_changed(self, _index: int) -> None:
        name = self.method_name
        if name not in self.methods:  # the methods are read when the area is first needed
            self.rows_form.setVisible(False)
            return
        definition = self.methods[name]
        for form_name, (basic, advanced) in self.forms.items():
            basic.setVisible(form_name == name)
            advanced.setVisible(form_name == name)
        self.description.setText(definition.summary)
        self.rows_form.setVisible(definition.takes_rows)
        # The rows of the result on screen for this method, else the method's default.
        used = self.rows_used.get(name)
        self.rows_edit.setText(used["rows_spec"] if used is not None else definition.rows_default or "")
        if used is not None:
            self.include_selected.setChecked(bool(used["include_selected"]))
        # An error belongs to the method that raised it.
        self.error.clear_message()
        if name in self.forms:
            self.advanced.setVisible(bool(self.forms[name][1].names))
        self._show_form_problem()
        self._refresh_readiness()

    def _on_run_clicked(self) -> None:
        self.run()

    def _on_progress_cancel_clicked(self) -> None:
        self.cancel()

    def _on_form_problem_changed(self, _problem: str) -> None:
        self._show_form_problem()
        self._refresh_readiness()

    def _on_picker_row_chosen(self, value: int) -> None:
        if self._session.dataset is not None:
            self.selection.set_current(value, source="picker")

    def _on_picker_find_requested(self, text: str) -> None:
        self.find(text)

    def _on_picker_pick_requested(self, which: str) -> None:
        self.pick_by_prediction(which)

    def _on_picker_clear_requested(self) -> None:
        self.selection.clear(source="picker")

    def _on_selected_table_clicked(self, index: Any) -> None:
        # Make the clicked row the instance while keeping the others selected.
        row = self.selected_model.source_row(index.row())
        self.selection.set_rows(self.selection.rows, current=row, source="selected-table")

    def _on_result_stack_rows_picked(self, rows: Any, current: Any) -> None:
        self.selection.set_rows(rows, current=current, source="plot")

    def _on_analysis_result_shown(self, panel: Any) -> None:
        # Global importances (the "permutation" view) join the Importance tab's switcher.
        if panel.result is not None and panel.method.view == "permutation":
            self.importance_view.set_result(panel.result)
            if self.result_tabs.indexOf(self.importance_view) < 0:
                self.show_view("importance")

    # -- slots: session, selection, runner -------------------------------------------------------
    def _on_session_dataset_changed(self, dataset: Any) -> None:
        self.selection.set_row_count(None if dataset is None else dataset.n_rows)
        self.selected_model.set_frame(None if dataset is None else dataset.frame)
        self.selected_model.set_rows(np.zeros(0, dtype=np.int64))
        self.picker.set_row_count(None if dataset is None else dataset.n_rows)
        self._on_session_inputs_changed(dataset)

    def _on_session_inputs_changed(self, _value: object) -> None:
        dataset, roles = self._session.dataset, self._session.roles
        if dataset is not None and roles is not None:
            self.selected_model.set_roles(role_map(roles, [str(c) for c in dataset.frame.columns]))
            self._fit_selected_columns()
        for basic, advanced in self.forms.values():
            basic.update_choices(self._session.model)
            advanced.update_choices(self._session.model)
        for job in (self._job, self._predict_job, self._find_job):
            if job is not None:
                self._runner.cancel(job)
        self.predictions = None
        self.shap_cache.clear()
        self.rows_used.clear()
        if self.results:
            self.clear_results("The inputs changed; press Run for new explanations.")
        self.refresh_availability()
        self._refresh_readiness()

    def _on_selection_changed(self, selection: Selection) -> None:
        self.picker.show_selection(selection)
        n = selection.count
        shown_rows = self.selected_model.rows
        if shown_rows is None or not np.array_equal(shown_rows, selection.rows):
            self.selected_model.set_rows(selection.rows)
        self.selected_title.setText(f"Selected rows ({n:,})" if n else "Selected rows")
        if selection.current is not None:
            at = np.flatnonzero(selection.rows == selection.current)
            if at.size:
                self.selected_table.selectRow(int(at[0]))
        self.result_stack.link(selection.rows, selection.current)

    def _on_runner_job_progress(self, job_id: int, fraction: float, message: str) -> None:
        if job_id == self._job:
            self.progress.update_progress(fraction, message)
        elif job_id == self._predict_job:
            self.status.setText(message)

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        if job_id == self._job:
            record = self._runner.record(job_id)
            self._job = None
            self.progress.stop()
            self._refresh_readiness()
            assert isinstance(result, ExplainOutcome)
            if self._job_rows is not None:
                self.rows_used[result.method] = self._job_rows
                finished = self.methods[result.method]
                if finished.view == "shap" or finished.builds_on:
                    # One SHAP / IG tab: its rows are those of the last result it shows.
                    for name, definition in self.methods.items():
                        if definition.view == "shap" and name != result.method:
                            self.rows_used.pop(name, None)
            self._job_rows = None
            self._remember_shap(result)
            self.show_outcome(result)
            seconds = (
                ""
                if record is None or record.finished_at is None
                else (f" in {record.finished_at - record.submitted_at:.1f} s")
            )
            rows = getattr(result.result, "rows", None)
            shown = self.methods[result.method]
            counted = f" on {len(rows):,} rows" if rows is not None and shown.takes_rows else ""
            self.status.setText(f"{shown.title} finished{counted}{seconds}.")
        elif job_id == self._find_job:
            self._find_job = None
            rows = np.asarray(result, dtype=np.int64)
            self.selection.set_rows(rows, source="search")
            text = self.find_edit.text().strip()
            self.status.setText(f"{rows.size:,} row{'s' if rows.size != 1 else ''} match “{text}”.")
        elif job_id == self._predict_job:
            self._predict_job = None
            assert isinstance(result, PredictionScan)
            self.predictions = result
            which, self._pending_pick = self._pending_pick, None
            if which is not None:
                self._select_by_prediction(which)

    def _on_runner_job_failed(self, job_id: int, error: object) -> None:
        if job_id not in (self._job, self._find_job, self._predict_job):
            return
        assert isinstance(error, JobError)
        if job_id == self._job:
            self._job = None
            self.progress.stop()
            self._refresh_readiness()
        elif job_id == self._find_job:
            self._find_job = None
        else:
            self._predict_job = None
            self._pending_pick = None
        self.status.setText("")
        if error.is_user_error:
            self.error.show_error(error.message)
        else:
            self.error.show_error("This stopped because of an internal error; the details are in the log.")

    def _on_runner_job_cancelled(self, job_id: int) -> None:
        if job_id == self._job:
            self._job = None
            self.progress.stop()
            self._refresh_readiness()
            self.status.setText("Cancelled.")
        elif job_id == self._find_job:
            self._find_job = None
        elif job_id == self._predict_job:
            self._predict_job = None
            self._pending_pick = None
            self.status.setText("")

    # -- helpers -----------------------------------------------------------------------------------
    _SHAP_CACHE_SIZE = 4

    def _remember_shap(self, outcome: ExplainOutcome) -> None:
        """Keep the SHAP values of ``outcome`` for a later clustering of the same rows and seed."""
        if outcome.shap_key is None:
            return
        values = outcome.result if outcome.method == "shap" else outcome.attributions
        if values is None:
            return
        self.shap_cache.pop(outcome.shap_key, None)
        self.shap_cache[outcome.shap_key] = values
        while len(self.shap_cache) > self._SHAP_CACHE_SIZE:
            self.shap_cache.pop(next(iter(self.shap_cache)))

    def refresh_availability(self) -> None:
        """Grey out the methods the engine says cannot explain the open model, with its reason as tooltip."""
        model = self._session.model
        self.unavailable = {}
        if not self.methods:
            return  # read with the descriptors (ensure_ready calls this again)
        if model is not None:
            from engine.registry import refusal

            roles = self._session.roles
            features = tuple(roles.features) if roles is not None else ()
            for name in self.methods:
                reason = refusal(name, model, feature_names=features)
                if reason is not None:
                    self.unavailable[name] = reason
        items = self.method_box.model()
        for index, name in enumerate(self.methods):
            item = items.item(index)  # type: ignore[attr-defined]
            reason = self.unavailable.get(name)
            item.setEnabled(reason is None)
            item.setToolTip(literal(f"Not available for this model: {reason}") if reason is not None else "")
        if self.method_name in self.unavailable:
            previous = self.methods[self.method_name].title
            self.set_method(next(name for name in self.methods if name not in self.unavailable))
            self.status.setText(f"{previous} cannot explain this model; {self.definition.title} is chosen instead.")

    def _select_by_prediction(self, which: str) -> None:
        assert self.predictions is not None
        values = np.asarray(self.predictions.values, dtype=np.float64)
        k = min(self.pick_count.value(), values.size)
        # NaN outputs never count as extreme.
        key = np.where(np.isfinite(values), values, -np.inf if which == "highest" else np.inf)
        order = np.argsort(-key if which == "highest" else key, kind="stable")[:k]
        self.selection.set_rows(order, current=int(order[0]) if k else None, source="prediction")
        if k:
            self.status.setText(
                f"Selected the {k:,} rows with the {which} {self.predictions.output_name}; "
                f"row {int(order[0])} has {values[order[0]]:.4g}."
            )

    def _fit_selected_columns(self) -> None:
        # Widths from the header text only: the selection may be large and changes often.
        metrics = self.selected_table.horizontalHeader().fontMetrics()
        for column in range(self.selected_model.columnCount()):
            title = str(self.selected_model.headerData(column, Qt.Orientation.Horizontal))
            self.selected_table.setColumnWidth(column, min(max(metrics.horizontalAdvance(title) + 28, 72), 260))

    def _show_form_problem(self) -> None:
        # A refused number set by a script may sit in the folded options: unfold them so their sentence shows.
        forms = self.forms.get(self.method_name)
        if forms is not None and forms[1].problem:
            self.advanced.set_expanded(True)

    def _refresh_readiness(self) -> None:
        missing = self._session.missing_inputs()
        refused = bool(self.form_problem)  # the form says why, under its fields
        self.run_button.setEnabled(not missing and self._job is None and not refused)
        self.picker.set_predictions_enabled(not missing)
        if missing:
            self.readiness.setText(f"To explain the model, {' and '.join(missing)}.")
            self.readiness.show()
        else:
            self.readiness.hide()
