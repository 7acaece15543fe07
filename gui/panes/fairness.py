"""The Fairness area: does the model treat groups differently, by how much, how sure are we, and through which proxy?

Its form is made from the fairness analysis's descriptor (``engine.explain.fairness.METHOD``) by
:class:`gui.panes.analyses.ParamForm`: the sensitive columns (by default those marked in the Dataset
area), the favourable outcome, the reference group of each attribute and the decision threshold in
view, the bins, the smallest group judged, the resamples, the Local Law 144 option and the inputs to
flip folded under "More settings".  Run submits the analysis through ``engine.plan.run_job`` (as the
Analyses area does, :func:`gui.panes.analyses.run_analysis`) and, when ticked, the proxy table too; a
changed threshold is a new run, and every figure is redrawn from its result.

The views (``gui.plots.fairness``, and ``gui.plots.proxies.ProxyView`` for the proxy table) draw the
engine's ``FairnessResult`` and ``ProxyResult`` as they are.  A click on a group, in a chart, the
heatmap or a table, selects that group's rows in the window's :class:`~gui.selection.SelectionModel`,
so the Dataset table shows them (:func:`fairness_group_rows` labels rows exactly as the analysis did).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.panes.analyses import ParamForm, run_analysis
from gui.panes.explain.widgets import CollapsibleSection
from gui.resources import icon
from gui.runner import JobError, JobSpec, RunnerLike
from gui.selection import SelectionModel
from gui.session import Session
from gui.text import plain_label
from gui.widgets import InlineMessage, ProgressRow, hint_label, pane_title

if TYPE_CHECKING:
    import pandas as pd

    from engine.method import Method
    from gui.panes.analyses import AnalysesPane

__all__ = ["FAIRNESS_PARAMETERS", "FairnessPane", "fairness_methods", "fairness_group_rows"]

#: The session's ``parameters`` entry of this area: its form, seed and choices.
FAIRNESS_PARAMETERS = "fairness-pane"
#: The job kinds (and so the session's result keys) of the two analyses this area runs.
FAIRNESS_KIND = "fairness"
PROXIES_KIND = "proxies"
# Sessions saved while the fairness analysis was offered in the Explain area keep it under this key.
_EXPLAIN_KIND = "explain-fairness"
_TABS = ("Groups", "Intersections", "Table", "Summary", "Proxies", "Flip test")
_EMPTY = np.zeros(0, dtype=np.int64)


def fairness_methods() -> dict[str, Method]:
    """The registered methods this area offers (their view is its own: the fairness analysis; the proxy
    table's place is Analyses)."""
    from gui.views import methods_in

    return methods_in("fairness")


def fairness_group_rows(
    frame: pd.DataFrame, result: Any, attribute: str, group: str, *, target: str | None = None
) -> np.ndarray:
    """Row positions ``(m,)`` of one group (or intersection of groups) of a ``FairnessResult``.

    The analysis evaluates the rows with a target value (every row without a
    target) and groups them by value, or, for a numeric attribute it binned, by
    the bin edges it recorded (``result.bin_edges``), keeping only bins that hold
    a row; the same rule is applied here, so a group's rows are exactly those its
    figures describe.  Empty when the result has no such group.
    """
    from engine.explain.fairness import INTERSECTION
    from engine.explain.groups import group_codes  # the analysis's own labelling of values

    evaluated = np.arange(len(frame), dtype=np.int64)
    if target is not None and target in frame.columns:
        evaluated = np.flatnonzero(frame[target].notna().to_numpy()).astype(np.int64)
    if attribute in result.intersections:
        first, second = attribute.split(INTERSECTION, 1)
        for a in (g.group for g in result.rows(first)):
            for b in (g.group for g in result.rows(second)):
                if f"{a}{INTERSECTION}{b}" == group:
                    both = np.intersect1d(
                        fairness_group_rows(frame, result, first, a, target=target),
                        fairness_group_rows(frame, result, second, b, target=target),
                    )
                    return both.astype(np.int64)
        return _EMPTY
    labels = [g.group for g in result.rows(attribute)]
    if group not in labels or attribute not in frame.columns:
        return _EMPTY
    series = frame[attribute].iloc[evaluated]
    edges = result.bin_edges.get(attribute)
    if edges is None:
        codes, names, _ = group_codes(series)
        return evaluated[codes == names.index(group)] if group in names else _EMPTY
    # Binned as the analysis bins: right-closed bins (the first holds the minimum), empty bins dropped,
    # "(missing)" last, so the k-th group of the result is the k-th bin that holds a row.
    x = series.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(x)
    full = np.asarray(edges, dtype=np.float64)
    n_bins = max(len(full) - 1, 1)
    codes = np.full(len(x), n_bins, dtype=np.int64)
    codes[~missing] = np.searchsorted(full[1:-1], x[~missing], side="left") if len(full) > 2 else 0
    used = np.unique(codes)
    k = labels.index(group)
    return evaluated[codes == used[k]] if k < len(used) else _EMPTY


class FairnessPane(QWidget):
    """Settings, Run/Cancel, the headline, and the group charts, heatmap, tables, proxies and flip test."""

    sig_status = Signal(str)
    sig_result_shown = Signal(str)  # "fairness" or "proxies"

    def __init__(
        self, session: Session, runner: RunnerLike, selection: SelectionModel, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._runner = runner
        self.selection = selection
        self._job: int | None = None
        self._proxy_job: int | None = None
        self.method: Method | None = None
        self.forms: dict[str, tuple[ParamForm, ParamForm]] = {}  # built by ensure_ready, as FormDefaults reads it
        self.result: Any | None = None  # the FairnessResult shown
        self.proxies: Any | None = None  # the ProxyResult shown
        self._views_built = False
        self._pending: dict[str, Any] = {}  # the chart attribute and tab a reopened session showed
        # Fills the form with the settings' defaults (the window's FormDefaults.fill_methods); a reopened
        # session calls it before putting its own values back, so the saved values win.
        self.defaults_filler: Callable[[FairnessPane], object] | None = None
        self._build()
        session.sig_dataset_changed.connect(self._on_session_inputs_changed)
        session.sig_roles_changed.connect(self._on_session_inputs_changed)
        session.sig_model_changed.connect(self._on_session_inputs_changed)
        runner.sig_job_progress.connect(self._on_runner_job_progress)
        runner.sig_job_finished.connect(self._on_runner_job_finished)
        runner.sig_job_failed.connect(self._on_runner_job_failed)
        runner.sig_job_cancelled.connect(self._on_runner_job_cancelled)
        self._refresh_readiness()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        # Settings on the left, results on the right: the charts keep the height a laptop screen has.
        self.description = hint_label("")
        self._basic_slot = QVBoxLayout()
        self._basic_slot.setContentsMargins(0, 0, 0, 0)
        self.advanced = CollapsibleSection("More settings")
        self.advanced.toggle.toggled.connect(self._on_advanced_toggled)
        self.advanced.toggle.setToolTip(
            "Bins of numeric attributes, the smallest group judged, bootstrap resamples, Local Law 144 and the "
            "inputs to flip."
        )
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2_147_483_647)
        self.seed_box.setToolTip("The bootstrap resamples follow from this number; the result records it.")
        seed_form = QFormLayout()
        seed_form.setContentsMargins(0, 0, 0, 0)
        seed_form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        seed_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        seed_form.addRow("Seed:", self.seed_box)
        self.proxies_too = QCheckBox("and the proxy table")
        self.proxies_too.setChecked(True)
        self.proxies_too.setToolTip(
            "Also find the inputs that carry each sensitive attribute into the model (the proxy table), "
            "unless it is already shown for these attributes."
        )
        self.run_button = QPushButton(icon("run"), "Run")
        self.run_button.setObjectName("primary")
        self.run_button.clicked.connect(self._on_run_clicked)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.proxies_too)
        run_row.addStretch(1)

        self.sensitive_hint = hint_label("")
        self.readiness = hint_label("")
        self.progress = ProgressRow()
        self.progress.bar.setFixedWidth(120)
        self.progress.sig_cancel_clicked.connect(self._on_progress_cancel_clicked)
        self.status = plain_label()
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        self.error = InlineMessage()
        self.warnings = InlineMessage()

        settings = QWidget()
        settings.setObjectName("fairnessSettings")
        self._settings = settings
        left = QVBoxLayout(settings)
        left.setContentsMargins(0, 0, 8, 0)
        left.addWidget(pane_title("Fairness"))
        left.addWidget(self.description)
        left.addLayout(self._basic_slot)
        left.addLayout(seed_form)
        left.addWidget(self.advanced)
        left.addWidget(self.sensitive_hint)
        left.addLayout(run_row)
        left.addWidget(self.readiness)
        left.addWidget(self.progress)
        left.addWidget(self.status)
        left.addWidget(self.error)
        left.addWidget(self.warnings)
        left.addStretch(1)
        self.settings_area = QScrollArea()
        self.settings_area.setWidgetResizable(True)
        self.settings_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.settings_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.settings_area.setWidget(settings)

        self.headline = plain_label()
        self.headline.setObjectName("sectionTitle")
        self.headline.setWordWrap(True)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.headline.hide()
        self.proxy_line = hint_label("")
        self.proxy_line.hide()
        self.placeholder = plain_label(
            "No fairness results yet. Mark the sensitive columns in the Dataset area (or name them on the left), "
            "choose the favourable outcome and press Run."
        )
        self.placeholder.setObjectName("dropHint")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.tabs = QTabWidget()
        self.result_stack = QStackedWidget()
        self.result_stack.addWidget(self.placeholder)
        self.result_stack.addWidget(self.tabs)
        # The charts need this much; the window's scroll area scrolls the pane when the screen is shorter.
        self.result_stack.setMinimumHeight(400)
        results = QWidget()
        right = QVBoxLayout(results)
        right.setContentsMargins(8, 0, 0, 0)
        right.addWidget(self.headline)
        right.addWidget(self.proxy_line)
        right.addWidget(self.result_stack, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.settings_area)
        self.splitter.addWidget(results)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([400, 940])
        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter, 1)

    def _build_views(self) -> None:
        """The result views (pyqtgraph is imported here, the first time a result is drawn)."""
        if self._views_built:
            return
        from gui.plots.fairness import FlipView, GroupBarsView, GroupTable, IntersectionView, SummaryView
        from gui.plots.proxies import ProxyView

        self.bars = GroupBarsView()
        self.heatmap = IntersectionView()
        self.table = GroupTable()
        self.summary = SummaryView()
        self.proxy_view = ProxyView()
        self.flips = FlipView()
        for view in (self.bars, self.heatmap, self.table, self.flips):
            view.sig_group_clicked.connect(self._on_view_group_clicked)
        self.flips.sig_rows_picked.connect(self._on_flips_rows_picked)
        self.flips.sig_flip_requested.connect(self._on_flips_flip_requested)

        self.proxy_run_button = QPushButton(icon("run"), "Run the proxy table")
        self.proxy_run_button.clicked.connect(self._on_proxy_run_clicked)
        self.proxy_progress = ProgressRow()
        self.proxy_progress.sig_cancel_clicked.connect(self._on_proxy_progress_cancel_clicked)
        self.proxy_status = hint_label(
            "Which inputs carry each sensitive attribute into the model: how well each predicts it, crossed "
            "with how much the model uses it (its permutation importance)."
        )
        self.proxy_error = InlineMessage()
        proxy_page = QWidget()
        proxy_top = QHBoxLayout()
        proxy_top.addWidget(self.proxy_status, 1)
        proxy_top.addWidget(self.proxy_run_button, 0, Qt.AlignmentFlag.AlignTop)
        proxy_layout = QVBoxLayout(proxy_page)
        proxy_layout.addLayout(proxy_top)
        proxy_layout.addWidget(self.proxy_progress)
        proxy_layout.addWidget(self.proxy_error)
        proxy_layout.addWidget(self.proxy_view, 1)

        def scrolled(widget: QWidget) -> QScrollArea:
            area = QScrollArea()
            area.setWidgetResizable(True)
            area.setFrameShape(QScrollArea.Shape.NoFrame)
            widget.setContentsMargins(6, 6, 6, 6)
            area.setWidget(widget)
            return area

        pages = (self.bars, self.heatmap, self.table, scrolled(self.summary), proxy_page, scrolled(self.flips))
        for title, page in zip(_TABS, pages):
            if page is self.bars or page is self.heatmap or page is self.table:
                page.setContentsMargins(6, 6, 6, 6)
            self.tabs.addTab(page, title)
        self._views_built = True

    # -- public API ------------------------------------------------------------------------
    @property
    def job_id(self) -> int | None:
        return self._job

    @property
    def proxy_job_id(self) -> int | None:
        return self._proxy_job

    @property
    def basic_form(self) -> ParamForm:
        self.ensure_ready()
        return self.forms[FAIRNESS_KIND][0]

    @property
    def advanced_form(self) -> ParamForm:
        self.ensure_ready()
        return self.forms[FAIRNESS_KIND][1]

    @property
    def form_problem(self) -> str:
        """Why the form refuses a value it holds (``""``: Run may start the analysis)."""
        forms = self.forms.get(FAIRNESS_KIND)
        if forms is None:
            return ""
        return forms[0].problem or forms[1].problem

    def ensure_ready(self) -> None:
        """Read the descriptor and build the form (deferred: the registry loads pandas, which start-up does not)."""
        if self.forms:
            return
        (self.method,) = fairness_methods().values()
        self.description.setText(self.method.summary)
        shown = [p for p in self.method.params if not p.provided and not p.hidden]
        forms = []
        for subset in ([p for p in shown if p.basic], [p for p in shown if not p.basic]):
            form = ParamForm(subset)
            # A field whose label leaves it no room goes under its label: the settings column stays narrow.
            form_layout = form.layout()
            if isinstance(form_layout, QFormLayout):
                form_layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
            form.update_choices(self._session.model)
            form.sig_problem_changed.connect(self._on_form_problem_changed)
            forms.append(form)
        self._basic_slot.addWidget(forms[0])
        self.advanced.content_layout.addWidget(forms[1])
        self.forms[FAIRNESS_KIND] = (forms[0], forms[1])
        self._refresh_readiness()
        self._fit_settings_width()

    def form_values(self) -> dict[str, Any]:
        """The analysis's parameters, from both parts of the form."""
        self.ensure_ready()
        basic, advanced = self.forms[FAIRNESS_KIND]
        return {**advanced.values(), **basic.values()}

    def set_params(self, values: Mapping[str, Any]) -> None:
        """Fill the form (scripts and tests); unknown names raise ``KeyError``."""
        basic, advanced = self.basic_form, self.advanced_form
        for name, value in values.items():
            (basic if name in basic.names else advanced).set_values({name: value})
        if advanced.problem:
            self.advanced.set_expanded(True)  # a refused value must be seen where it is

    def run(self) -> int | None:
        """Start the fairness analysis (and the proxy table when ticked); the job id, or ``None`` (said inline)."""

        self.ensure_ready()
        if self.form_problem:
            return None  # the form shows the refused value's sentence under its fields
        inputs = self._session.inputs_or_say(self.error)
        if inputs is None:
            return None
        assert self.method is not None
        dataset = self._session.dataset
        self._job = self._runner.submit(
            JobSpec(
                kind=FAIRNESS_KIND,
                fn=run_analysis,
                args=(inputs,),
                params={"method": FAIRNESS_KIND, "params": self.form_values()},
                key=FAIRNESS_KIND,
                title=f"{self.method.title} · {dataset.name if dataset else ''}",
                seed=self.seed_box.value(),
            )
        )
        self.progress.start(f"Running {self.method.title.lower()}…")
        self.status.setText("")
        if self.proxies_too.isChecked() and not self._proxies_shown_for(self._sensitive()):
            self.run_proxies()
        self._refresh_readiness()
        return self._job

    def run_proxies(self) -> int | None:
        """Start the proxy table for the sensitive attributes of the form; the job id, or ``None`` (said inline)."""

        self.ensure_ready()
        self._build_views()
        inputs = self._session.inputs_or_say(self.proxy_error)
        if inputs is None:
            return None
        from engine.registry import get_method

        method = get_method(PROXIES_KIND)
        sensitive = self.form_values().get("sensitive")
        dataset = self._session.dataset
        self._proxy_job = self._runner.submit(
            JobSpec(
                kind=PROXIES_KIND,
                fn=run_analysis,
                args=(inputs,),
                params={"method": PROXIES_KIND, "params": {"sensitive": sensitive}},
                key="fairness-proxies",
                title=f"{method.title} · {dataset.name if dataset else ''}",
                seed=self.seed_box.value(),
            )
        )
        self.proxy_progress.start(f"Running {method.title.lower()}…")
        self.proxy_run_button.setEnabled(False)
        return self._proxy_job

    def cancel(self) -> None:
        if self._job is not None:
            self._runner.cancel(self._job)
            self.progress.cancelling()

    def show_result(self, result: Any) -> None:
        """Draw a ``FairnessResult`` in every view, with its headline and warnings."""
        from gui.plots.fairness import headline_text

        self._build_views()
        self.result = result
        self.bars.set_result(result, self._pending.pop("attribute", None))
        self.heatmap.set_result(result)
        self.table.set_result(result)
        self.summary.set_result(result)
        self.flips.set_result(result)
        self._refresh_suggestion()
        self.headline.setText(headline_text(result))
        self.headline.show()
        self.result_stack.setCurrentWidget(self.tabs)
        tab = self._pending.pop("tab", None)
        if tab in _TABS:
            self.tabs.setCurrentIndex(_TABS.index(tab))
        warnings = tuple(getattr(result, "warnings", ()) or ())
        if warnings:
            self.warnings.show_warning("\n".join(dict.fromkeys(warnings)))
        else:
            self.warnings.clear_message()
        self.sig_result_shown.emit(FAIRNESS_KIND)

    def show_proxies(self, result: Any, *, source: str = "") -> None:
        """Draw a ``ProxyResult`` in the Proxies tab and name each attribute's strongest proxy under the headline."""
        self._build_views()
        self.proxies = result
        self.proxy_view.set_result(result)
        strongest = [f"{a.strongest} for {a.attribute}" for a in result.attributes if a.strongest]
        line = (
            "Strongest proxy: " + "; ".join(strongest) + " (see Proxies)."
            if strongest
            else "No input the model uses predicts a sensitive attribute strongly (see Proxies)."
        )
        self.proxy_line.setText(line)
        self.proxy_line.show()
        if source:
            self.proxy_status.setText(f"The proxy table {source}.")
        self._refresh_suggestion()
        if self.result is None:
            self.result_stack.setCurrentWidget(self.tabs)
        self.sig_result_shown.emit(PROXIES_KIND)

    def show_restored_result(self, name: str, result: Any) -> bool:
        """Draw a reopened result (not recomputed); True when this area is its place (the fairness analysis).

        A reopened proxy table is drawn here too, but its place is the Analyses area, so that is False.
        """
        kind = getattr(result, "kind", "")
        if name in (FAIRNESS_KIND, _EXPLAIN_KIND) and kind == "fairness":
            self.ensure_ready()
            self.show_result(result)
            self.status.setText("Reopened from the saved session (not recomputed).")
            return True
        if name == PROXIES_KIND and kind == "proxies":
            self.show_proxies(result, source="was reopened from the saved session (not recomputed)")
        return False

    def follow_analyses(self, analyses: AnalysesPane) -> None:
        """Show the proxy table the Analyses area computes, too."""
        analyses.sig_result_shown.connect(lambda name: self._on_analysis_result_shown(name, analyses))

    def select_group(self, attribute: str, group: str) -> int:
        """Select the rows of ``group`` of ``attribute`` (or of an intersection) everywhere; returns how many."""
        dataset, roles, result = self._session.dataset, self._session.roles, self.result
        if result is None or dataset is None:
            return 0
        target = roles.target if roles is not None else None
        rows = fairness_group_rows(dataset.frame, result, attribute, group, target=target)
        self.selection.set_rows(rows, source="fairness")
        text = f"Selected the {rows.size:,} rows of {attribute} = {group}; the Dataset table shows them."
        self.status.setText(text)
        self.sig_status.emit(text)
        return int(rows.size)

    # -- session state (see gui.sessionfile.SessionPane) ---------------------------------------
    def save_state(self) -> dict[str, dict[str, Any]]:
        """The form, the seed, whether the proxy table runs too, and the attribute and tab on screen."""
        if not self.forms:
            return {}
        state: dict[str, Any] = {
            "params": self.form_values(),
            "seed": self.seed_box.value(),
            "proxies_too": self.proxies_too.isChecked(),
        }
        if self._views_built and self.result is not None:
            state["attribute"] = self.bars.attribute
            state["tab"] = self.tabs.tabText(self.tabs.currentIndex())
        return {FAIRNESS_PARAMETERS: state}

    def restore_state(self, parameters: Mapping[str, Any], results: Mapping[str, Any]) -> None:
        """Put back the saved form, seed and choices (when the session has them)."""
        saved = parameters.get(FAIRNESS_PARAMETERS)
        if not isinstance(saved, dict):
            return
        self.ensure_ready()
        if self.defaults_filler is not None:
            self.defaults_filler(self)  # the defaults first, so the saved values win
        for form in self.forms[FAIRNESS_KIND]:
            known = form.values()
            form.set_values({k: v for k, v in (saved.get("params") or {}).items() if k in known})
        if isinstance(saved.get("seed"), int):
            self.seed_box.setValue(saved["seed"])
        if isinstance(saved.get("proxies_too"), bool):
            self.proxies_too.setChecked(saved["proxies_too"])
        self._pending = {k: saved[k] for k in ("attribute", "tab") if isinstance(saved.get(k), str)}

    # -- slots ----------------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.ensure_ready()
        super().showEvent(event)

    def _on_run_clicked(self) -> None:
        self.run()

    def _on_progress_cancel_clicked(self) -> None:
        self.cancel()

    def _on_proxy_run_clicked(self) -> None:
        self.run_proxies()

    def _on_proxy_progress_cancel_clicked(self) -> None:
        if self._proxy_job is not None:
            self._runner.cancel(self._proxy_job)
            self.proxy_progress.cancelling()

    def _on_form_problem_changed(self, _problem: str) -> None:
        forms = self.forms.get(FAIRNESS_KIND)
        if forms is not None and forms[1].problem:
            self.advanced.set_expanded(True)
        self._refresh_readiness()

    def _on_advanced_toggled(self, _expanded: bool) -> None:
        self._fit_settings_width()

    def _on_view_group_clicked(self, attribute: str, group: str) -> None:
        self.select_group(attribute, group)

    def _on_flips_rows_picked(self, rows: Any) -> None:
        positions = np.asarray(rows, dtype=np.int64)
        self.selection.set_rows(positions, source="fairness")
        text = f"Selected {positions.size:,} example row{'s' if positions.size != 1 else ''} of the flip test."
        self.status.setText(text)
        self.sig_status.emit(text)

    def _on_flips_flip_requested(self, column: str) -> None:
        advanced = self.advanced_form
        current = advanced.values().get("flip_inputs") or []
        advanced.set_values({"flip_inputs": list(dict.fromkeys([*current, column]))})
        self.advanced.set_expanded(True)  # the field that changed is in view
        self.run()

    def _on_analysis_result_shown(self, name: str, analyses: AnalysesPane) -> None:
        panel = analyses.panels.get(name)
        if name == PROXIES_KIND and panel is not None and panel.result is not None:
            self.show_proxies(panel.result, source="comes from the Analyses area")

    def _on_session_inputs_changed(self, _value: object) -> None:
        for form in self.forms.get(FAIRNESS_KIND, ()):
            form.update_choices(self._session.model)
        for job in (self._job, self._proxy_job):
            if job is not None:
                self._runner.cancel(job)
        if self.result is not None or self.proxies is not None:
            self.clear_results("The inputs changed; press Run for new results.")
        self._refresh_readiness()

    def _on_runner_job_progress(self, job_id: int, fraction: float, message: str) -> None:
        if job_id == self._job:
            self.progress.update_progress(fraction, message)
        elif job_id == self._proxy_job:
            self.proxy_progress.update_progress(fraction, message)

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        if job_id == self._job:
            record = self._runner.record(job_id)
            self._job = None
            self.progress.stop()
            self._refresh_readiness()
            self.show_result(result)
            if record is not None and record.finished_at is not None:
                self.status.setText(f"Finished in {record.finished_at - record.submitted_at:.1f} s.")
        elif job_id == self._proxy_job:
            self._proxy_job = None
            self.proxy_progress.stop()
            self.proxy_run_button.setEnabled(True)
            self.show_proxies(result, source="was computed here")

    def _on_runner_job_failed(self, job_id: int, error: object) -> None:
        if job_id not in (self._job, self._proxy_job):
            return
        assert isinstance(error, JobError)
        message = (
            error.message
            if error.is_user_error
            else "This analysis stopped because of an internal error; the details are in the log."
        )
        if job_id == self._job:
            self._job = None
            self.progress.stop()
            self._refresh_readiness()
            self.error.show_error(message)
        else:
            self._proxy_job = None
            self.proxy_progress.stop()
            self.proxy_run_button.setEnabled(True)
            self.proxy_error.show_error(message)
            self.proxy_line.setText("The proxy table was not made (see Proxies).")
            self.proxy_line.show()

    def _on_runner_job_cancelled(self, job_id: int) -> None:
        if job_id == self._job:
            self._job = None
            self.progress.stop()
            self._refresh_readiness()
            self.status.setText("Cancelled.")
        elif job_id == self._proxy_job:
            self._proxy_job = None
            self.proxy_progress.stop()
            self.proxy_run_button.setEnabled(True)

    # -- helpers -------------------------------------------------------------------------------------
    def clear_results(self, message: str) -> None:
        """Forget the results shown and say ``message`` in their place."""
        self.result = None
        self.proxies = None
        if self._views_built:
            for view in (self.bars, self.heatmap, self.table, self.summary, self.proxy_view, self.flips):
                view.clear()
            self.flips.suggest("")
        self.headline.hide()
        self.proxy_line.hide()
        self.warnings.clear_message()
        self.status.setText("")
        self.placeholder.setText(message)
        self.result_stack.setCurrentWidget(self.placeholder)

    def _fit_settings_width(self) -> None:
        """Keep the settings column at least as wide as its fields (it scrolls down, never sideways)."""
        scroll_bar = self.settings_area.verticalScrollBar().sizeHint().width()
        self.settings_area.setMinimumWidth(self._settings.minimumSizeHint().width() + scroll_bar + 2)

    def _sensitive(self) -> list[str]:
        """The sensitive columns a run uses: the form's, else the roles'."""
        given = self.form_values().get("sensitive") if self.forms else None
        if given:
            return [str(c) for c in given]
        roles = self._session.roles
        return list(roles.sensitive) if roles is not None else []

    def _proxies_shown_for(self, sensitive: list[str]) -> bool:
        shown = self.proxies
        if shown is None or shown.provenance is None:
            return False
        return list(shown.provenance.parameters.get("sensitive") or []) == sensitive

    def _refresh_suggestion(self) -> None:
        if not self._views_built:
            return
        strongest = ""
        if self.proxies is not None and self.result is not None:
            # The proxy of an attribute the model does not take (one it takes is flipped itself) comes first.
            candidates = sorted(
                (a for a in self.proxies.attributes if a.strongest and a.attribute in self.result.attributes),
                key=lambda a: a.direct_input,
            )
            strongest = candidates[0].strongest if candidates else ""
        self.flips.suggest(strongest)

    def _refresh_readiness(self) -> None:
        missing = self._session.missing_inputs()
        refused = bool(self.form_problem)  # the form says why, under its fields
        self.run_button.setEnabled(not missing and self._job is None and not refused)
        if missing:
            self.readiness.setText(f"To compare groups, {' and '.join(missing)}.")
            self.readiness.show()
        else:
            self.readiness.hide()
        roles = self._session.roles
        marked = list(roles.sensitive) if roles is not None else []
        if self._session.dataset is None:
            self.sensitive_hint.hide()
            return
        if marked:
            self.sensitive_hint.setText(
                f"Sensitive columns marked in the Dataset area: {', '.join(marked)} (used when Sensitive columns is "
                "left empty)."
            )
        else:
            self.sensitive_hint.setText(
                "No column is marked sensitive in the Dataset area: mark one there, or name it in Sensitive columns."
            )
        self.sensitive_hint.show()
