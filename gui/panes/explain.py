"""The Explain workspace: run any explanation method, pick instances, read linked plots.

A method is chosen from a box listing every registered method whose view is
one of this area's (:data:`VIEW_TITLES`); the box, the parameter forms (the
descriptor's basic parameters shown, the rest folded under "Advanced
options"), the default rows and the texts all come from the method
descriptors, read the first time the area is needed (the registry loads
pandas, which start-up does not).  Methods that explain rows (LIME, SHAP,
gradients, clusters) take a row spec (``first:20``, ``random:500``,
``3,17,42``: 0-based positions, as in the report and the CLI) plus, when
ticked, the rows selected anywhere in the window.

The instance picker selects rows by position, by a search (``income > 50000``,
``employment = retired``, plain text), by highest or lowest prediction, or by
a click in any plot; the selection is the window's :class:`SelectionModel`,
so the dataset table, the plots and the "Selected rows" table all follow it.

Everything computed runs on the job runner through :func:`run_explanation`,
:func:`scan_predictions` and :func:`gui.selection.find_rows`; this widget only
wires and displays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.panes.analyses import ParamForm
from gui.panes.table_model import FrameTableModel
from gui.resources import icon
from gui.runner import JobError, JobRunner, JobSpec
from gui.selection import Selection, SelectionModel, find_rows, row_ranges
from gui.session import Session, role_map
from gui.sessionfile import ATTRIBUTIONS_SUFFIX, EXPLAIN_PARAMETERS, EXPLAIN_PREFIX
from gui.text import literal, plain_label
from gui.widgets import InlineMessage, ProgressRow, hint_label, pane_title

if TYPE_CHECKING:
    from engine.explain.base import AuditInputs, Method
    from engine.jobs import JobContext
    from gui.panes.analyses import AnalysesPane

__all__ = [
    "explain_methods",
    "ExplainOutcome",
    "attribution_key",
    "PredictionScan",
    "run_explanation",
    "scan_predictions",
    "CollapsibleSection",
    "SurrogateView",
    "GroupsView",
    "ExplainPane",
    "VIEW_TITLES",
]


# -- what can be run ---------------------------------------------------------------------------------


def explain_methods() -> dict[str, Method]:
    """The registered methods this area offers (their view is one of :data:`VIEW_TITLES`), in registry order."""
    from engine.explain.registry import METHODS

    return {name: m for name, m in METHODS.items() if m.view in VIEW_TITLES}


#: The result tabs of this area, by the view key a method's descriptor names, in their order.
VIEW_TITLES: dict[str, str] = {
    "lime": "LIME",
    "shap": "SHAP / IG",
    "clusters": "Clusters",
    "dependence": "Dependence",
    "importance": "Importance",
    "surrogate": "Surrogates",
    "groups": "Groups",
}


# -- worker functions (no Qt) ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExplainOutcome:
    """What an explain job returns: the method's result and, for clusters, the SHAP values clustered.

    ``shap_key`` is the :func:`attribution_key` of the SHAP values in the outcome
    (the result of a SHAP run, or the values a clustering used), ``None`` when
    they cannot be reused; ``shap_reused`` says whether the clustering took them
    from an earlier run instead of computing them.
    """

    method: str
    result: Any
    attributions: Any | None = None
    shap_key: tuple[Any, ...] | None = None
    shap_reused: bool = False


def attribution_key(
    inputs: AuditInputs, *, method: str, params: Mapping[str, Any], rows: Sequence[int], seed: int
) -> tuple[Any, ...] | None:
    """What identifies an attribution result for reuse: model and data hashes, method, parameters, rows, seed.

    ``params`` are completed with the method's defaults, so an untouched form and
    the defaults give the same key.  ``None`` when the model or the data has no
    hash (nothing then proves two runs saw the same inputs).
    """
    from engine.explain.registry import get_method

    dataset = inputs.dataset
    if inputs.model.sha256 is None or dataset is None or dataset.sha256 is None:
        return None
    full = {**get_method(method).defaults, **{k: v for k, v in params.items() if k != "rows"}}
    return (
        inputs.model.sha256,
        dataset.sha256,
        repr(sorted(dataset.options.to_dict().items())),
        tuple(inputs.feature_names),
        method,
        tuple(sorted((k, repr(v)) for k, v in full.items())),
        tuple(int(r) for r in rows),
        int(seed),
    )


def run_explanation(
    inputs: AuditInputs,
    *,
    method: str,
    params: Mapping[str, Any],
    rows_spec: str = "",
    extra_rows: Sequence[int] = (),
    reuse: Mapping[tuple[Any, ...], Any] | None = None,
    ctx: JobContext,
) -> ExplainOutcome:
    """Run one registered method on ``inputs`` (on a worker thread).

    Parameters
    ----------
    inputs: data, roles and model.
    method: a name from :func:`explain_methods`.
    params: the method's keyword parameters (``rows`` and the results it builds on are set here).
    rows_spec: for row methods, a :func:`engine.explain.rows.parse_rows` spec
        (0-based positions); ``""`` means only ``extra_rows``.
    extra_rows: positions explained as well (the window's selection).
    reuse: SHAP results already computed, by :func:`attribution_key`; the clusters
        method takes its SHAP values from here when the key matches, and records so.
    ctx: seed, progress and cancel.
    """
    from engine.errors import AnalysisError
    from engine.explain.registry import get_method
    from engine.explain.rows import parse_rows

    definition = get_method(method)
    rows: list[int] | None = None
    if definition.takes_rows:
        n = len(inputs.frame)
        picked = parse_rows(rows_spec, n, ctx=ctx) if rows_spec.strip() else np.zeros(0, dtype=np.int64)
        extra = np.asarray(list(extra_rows), dtype=np.int64)
        if extra.size and (extra.min() < 0 or extra.max() >= n):
            raise AnalysisError(f"A selected row is outside the data, which has rows 0 to {n - 1}.")
        merged = np.union1d(picked, extra).astype(np.int64)
        if merged.size == 0:
            raise AnalysisError("Choose the rows to explain: select rows, or write a row spec such as first:20.")
        rows = merged.tolist()
    from engine.plan import JobSpec as EngineJob
    from engine.plan import base_spec, run_job

    own = {k: v for k, v in params.items() if k != "rows"}
    spec = EngineJob(method, own, rows=None if rows is None else tuple(rows))
    if definition.builds_on:
        assert rows is not None
        # What it builds on (clusters: the SHAP values) is what that method gives on its own on these rows and
        # seed (engine.plan runs it so), so an earlier such run is reused rather than recomputed.
        ((name, source),) = definition.builds_on.items()
        key = attribution_key(
            inputs, method=source, params=dict(base_spec(spec, source).params), rows=rows, seed=ctx.seed
        )
        shap = (reuse or {}).get(key) if key is not None else None
        outcome = run_job(spec, inputs, ctx, built={name: shap} if shap is not None else None)
        result = outcome.result
        if outcome.reused:
            result = _note_reused(result, shap)
        return ExplainOutcome(
            method=method,
            result=result,
            attributions=outcome.built_on[name],
            shap_key=key,
            shap_reused=bool(outcome.reused),
        )
    result = run_job(spec, inputs, ctx).result
    key = None
    if method == "shap" and rows is not None:
        key = attribution_key(inputs, method="shap", params=params, rows=rows, seed=ctx.seed)
    return ExplainOutcome(method=method, result=result, shap_key=key)


def _note_reused(result: Any, shap: Any) -> Any:
    """``result`` whose provenance says its SHAP values were reused, and from which result."""
    import dataclasses

    source = shap.provenance
    parameters = {
        **result.provenance.parameters,
        "attributions_reused": {
            "method": source.method,
            "started_at": source.started_at,
            "finished_at": source.finished_at,
            "seed": source.seed,
            "rows": len(shap.rows),
            "note": "The SHAP values of this earlier result on the same model, data, rows and seed were reused, "
            "not recomputed.",
        },
    }
    return dataclasses.replace(result, provenance=dataclasses.replace(result.provenance, parameters=parameters))


@dataclass(frozen=True, eq=False)
class PredictionScan:
    """The explained model output of every row, for picking instances by prediction.

    ``values`` is ``(n,)`` in the units named by ``output_name``.
    """

    output_name: str
    values: np.ndarray


def scan_predictions(inputs: AuditInputs, *, ctx: JobContext) -> PredictionScan:
    """The model's explained output (the positive class's probability, or the value) for every row."""
    from engine.explain.attribution import resolve_output
    from engine.explain.pdp import explained_output

    class_index, name = resolve_output(inputs.model, None)
    X = inputs.X
    n = len(X)
    ctx.progress(0.0, "Predicting every row")
    values = explained_output(
        inputs.model,
        lambda a, b: X.iloc[a:b],
        n,
        class_index,
        ctx=ctx,
        n_columns=X.shape[1],
        on_chunk=lambda stop: ctx.progress(stop / max(n, 1), f"Predicted {stop:,} of {n:,} rows"),
    )
    values.flags.writeable = False
    return PredictionScan(output_name=name, values=values)


# -- widgets -------------------------------------------------------------------------------------------


class CollapsibleSection(QWidget):
    """A header button that folds its content away (closed by default)."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggle = QToolButton()
        self.toggle.setText(title)
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._on_toggle_toggled)
        self.content = QWidget()
        self.content_layout = QVBoxLayout(self.content)
        self.content_layout.setContentsMargins(18, 0, 0, 0)
        self.content.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.content)

    @property
    def expanded(self) -> bool:
        return self.toggle.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.toggle.setChecked(expanded)

    def _on_toggle_toggled(self, checked: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if checked else Qt.ArrowType.RightArrow)
        self.content.setVisible(checked)


def _fmt(value: float, digits: int = 3) -> str:
    return "not defined" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class SurrogateView(QWidget):
    """A ``SurrogateResult`` as text: the tree's rules and the linear equation, with their fidelity."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.text = QPlainTextEdit()
        self.text.setObjectName("monoText")
        self.text.setReadOnly(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)

    def clear(self) -> None:
        self.result = None
        self.text.clear()

    def set_result(self, result: Any) -> None:
        self.result = result
        tree, linear = result.tree, result.linear

        def fidelity(part: Any) -> str:
            text = f"R² {_fmt(part.r2_train)} on {result.n_train:,} fitted rows, {_fmt(part.r2_holdout)} held out"
            if part.agreement_holdout is not None:
                text += f", same side of 0.5 as the model on {part.agreement_holdout:.1%} of held-out rows"
            return text

        lines = [f"What imitates {result.output_name} globally.", ""]
        lines.append(f"Decision tree of depth {tree.max_depth}: {fidelity(tree)}.")
        lines += [f"  • {rule}" for rule in tree.rule_texts]
        lines += ["", f"Sparse linear model: {fidelity(linear)}.", f"  {linear.equation}"]
        self.text.setPlainText("\n".join(lines))


class GroupsView(QWidget):
    """A ``GroupMetricsResult``: one table row per group, then the largest gaps."""

    COLUMNS = (
        ("attribute", "Attribute"),
        ("group", "Group"),
        ("n", "Rows"),
        ("share", "Share"),
        ("positive_rate", "Selection rate"),
        ("base_rate", "Base rate"),
        ("accuracy", "Accuracy"),
        ("tpr", "TPR"),
        ("fpr", "FPR"),
        ("mean_prediction", "Mean prediction"),
        ("mae", "MAE"),
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: Any | None = None
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.gaps = plain_label()  # group names come from the data
        self.gaps.setWordWrap(True)
        self.gaps.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.gaps)

    def clear(self) -> None:
        self.result = None
        self.table.setRowCount(0)
        self.gaps.setText("")

    def set_result(self, result: Any) -> None:
        self.result = result
        # Only the columns the task defines somewhere.
        columns = [
            (key, title)
            for key, title in self.COLUMNS
            if key in ("attribute", "group", "n") or any(_defined(getattr(g, key)) for g in result.groups)
        ]
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels([title for _, title in columns])
        self.table.setRowCount(len(result.groups))
        for r, group in enumerate(result.groups):
            for c, (key, _) in enumerate(columns):
                value = getattr(group, key)
                if key == "n":
                    text = f"{int(value):,}"
                elif isinstance(value, float):
                    text = _fmt(value)
                else:
                    text = str(value)
                cell = QTableWidgetItem(text)
                if isinstance(value, (int, float)):
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, cell)
        lines = []
        for d in result.differences:
            if not _defined(d.difference):
                continue
            ratio = f", ratio {_fmt(d.ratio)}" if _defined(d.ratio) else ""
            lines.append(
                f"{d.attribute}, {d.measure.replace('_', ' ')} ({d.metric}): gap {_fmt(d.difference)}{ratio} "
                f"between {d.low_group} (lowest) and {d.high_group} (highest)."
            )
        self.gaps.setText("\n".join(lines) or "No gap is defined for these groups.")


class _PositionTableModel(FrameTableModel):
    """The frame's rows numbered by 0-based position (as the explanations and the report name them)."""

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole:
            return str(self.source_row(section))
        return super().headerData(section, orientation, role)


def _defined(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class _ShapTab(QWidget):
    """The waterfall of the instance beside the beeswarm of every explained row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from gui.plots.beeswarm import BeeswarmView
        from gui.plots.local import WaterfallView

        self.waterfall = WaterfallView()
        self.beeswarm = BeeswarmView()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.waterfall)
        self.splitter.addWidget(self.beeswarm)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([500, 500])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def clear(self) -> None:
        self.waterfall.clear()
        self.beeswarm.clear()


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
        self, session: Session, runner: JobRunner, selection: SelectionModel, parent: QWidget | None = None
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
        self.results: dict[str, Any] = {}
        self.views: dict[str, QWidget] = {}
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

        # The instance picker.
        self.row_spin = QSpinBox()
        self.row_spin.setRange(0, 0)
        self.row_spin.setKeyboardTracking(False)
        self.row_spin.setToolTip("Show this row (0-based position) as the instance.")
        self.row_spin.valueChanged.connect(self._on_row_spin_value_changed)
        self.find_edit = QLineEdit()
        self.find_edit.setPlaceholderText("income > 50000, employment = retired, or any text")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.returnPressed.connect(self._on_find_clicked)
        self.find_button = QPushButton("Find")
        self.find_button.clicked.connect(self._on_find_clicked)
        self.pick_count = QSpinBox()
        self.pick_count.setRange(1, 10_000)
        self.pick_count.setValue(10)
        self.pick_count.setSuffix(" rows")
        self.highest_button = QPushButton("Highest")
        self.highest_button.setToolTip("Select the rows with the highest predicted output.")
        self.highest_button.clicked.connect(self._on_highest_clicked)
        self.lowest_button = QPushButton("Lowest")
        self.lowest_button.setToolTip("Select the rows with the lowest predicted output.")
        self.lowest_button.clicked.connect(self._on_lowest_clicked)
        self.clear_selection_button = QPushButton("Clear")
        self.clear_selection_button.clicked.connect(self._on_clear_selection_clicked)
        self.selection_label = plain_label("No rows selected.")
        self.selection_label.setObjectName("hint")
        picker = QGroupBox("Instances")
        picker_layout = QHBoxLayout(picker)
        picker_layout.addWidget(QLabel("Row"))
        picker_layout.addWidget(self.row_spin)
        picker_layout.addSpacing(12)
        picker_layout.addWidget(QLabel("Find"))
        picker_layout.addWidget(self.find_edit, 2)
        picker_layout.addWidget(self.find_button)
        picker_layout.addSpacing(12)
        picker_layout.addWidget(QLabel("Prediction"))
        picker_layout.addWidget(self.highest_button)
        picker_layout.addWidget(self.lowest_button)
        picker_layout.addWidget(self.pick_count)
        picker_layout.addSpacing(12)
        picker_layout.addWidget(self.selection_label, 1)
        picker_layout.addWidget(self.clear_selection_button)
        self.picker = picker

        # Results and the selected rows.
        self.placeholder = plain_label(
            "No explanations yet. Choose a method, select rows if it explains rows, and press Run."
        )
        self.placeholder.setObjectName("dropHint")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.result_tabs = QTabWidget()
        self.result_stack = QStackedWidget()
        self.result_stack.addWidget(self.placeholder)
        self.result_stack.addWidget(self.result_tabs)
        self.selected_model = _PositionTableModel(self)
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
        from engine.errors import ProbityError

        self.ensure_ready()
        self.error.clear_message()
        try:
            inputs = self._session.audit_inputs()
        except ProbityError as exc:
            self.error.show_error(str(exc))
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
        from engine.errors import ProbityError

        if self.predictions is not None:
            self._select_by_prediction(which)
            return None
        try:
            inputs = self._session.audit_inputs()
        except ProbityError as exc:
            self.error.show_error(str(exc))
            return None
        self.error.clear_message()
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
        existing = self.views.get(key)
        if existing is not None:
            return existing
        widget: QWidget
        if key == "lime":
            from gui.plots.local import LimeView

            widget = LimeView()
        elif key == "shap":
            widget = _ShapTab()
            widget.beeswarm.sig_rows_picked.connect(self._on_view_rows_picked)
        elif key == "clusters":
            from gui.plots.clusters import ClusterView

            widget = ClusterView()
            widget.sig_rows_picked.connect(self._on_view_rows_picked)
        elif key == "dependence":
            from gui.plots.dependence import DependenceView

            widget = DependenceView()
            widget.sig_rows_picked.connect(self._on_view_rows_picked)
        elif key == "importance":
            from gui.plots.importance import ImportanceView

            widget = ImportanceView()
        elif key == "surrogate":
            widget = SurrogateView()
        elif key == "groups":
            widget = GroupsView()
        else:
            raise KeyError(key)
        self.views[key] = widget
        return widget

    @property
    def lime_view(self) -> Any:
        return self.view("lime")

    @property
    def waterfall_view(self) -> Any:
        return self.view("shap").waterfall  # type: ignore[attr-defined]

    @property
    def beeswarm_view(self) -> Any:
        return self.view("shap").beeswarm  # type: ignore[attr-defined]

    @property
    def cluster_view(self) -> Any:
        return self.view("clusters")

    @property
    def dependence_view(self) -> Any:
        return self.view("dependence")

    @property
    def importance_view(self) -> Any:
        return self.view("importance")

    def show_view(self, key: str) -> None:
        """Bring the tab of ``key`` to the front (adding it in the standard order)."""
        widget = self.view(key)
        if self.result_tabs.indexOf(widget) < 0:
            order = list(VIEW_TITLES)
            position = sum(
                1 for k in order[: order.index(key)] if k in self.views and self.result_tabs.indexOf(self.views[k]) >= 0
            )
            self.result_tabs.insertTab(position, widget, VIEW_TITLES[key])
        self.result_tabs.setCurrentWidget(widget)
        self.result_stack.setCurrentWidget(self.result_tabs)

    def show_outcome(self, outcome: ExplainOutcome) -> None:
        """Display what an explain job returned, in its view, linked to the current selection."""
        definition = self.methods.get(outcome.method) or explain_methods()[outcome.method]
        result = outcome.result
        frame = self._session.dataset.frame if self._session.dataset is not None else None
        current = self.selection.current
        key = definition.view
        if key == "lime":
            self.lime_view.set_result(result, frame=frame, row=current)
            self.results["lime"] = result
        elif key == "shap":
            self._show_shap(result, frame, current)
        elif key == "clusters":
            self.cluster_view.set_result(result)
            self.cluster_view.show_selection(self.selection.rows)
            self.results["clusters"] = result
            if outcome.attributions is not None:
                self._show_shap(outcome.attributions, frame, current)
        elif key == "dependence":
            self.dependence_view.set_result(result)
            self.dependence_view.show_selection(self.selection.rows)
            self.results["pdp"] = result
        elif key == "importance":
            self.importance_view.set_result(result)
            self.results["native"] = result
        else:
            self.view(key).set_result(result)  # type: ignore[attr-defined]
            self.results[key] = result
        self.show_view(key)
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
        from engine.explain.attribution import AttributionResult
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
        self.results.clear()
        for widget in self.views.values():
            widget.clear()  # type: ignore[attr-defined]
            index = self.result_tabs.indexOf(widget)
            if index >= 0:
                self.result_tabs.removeTab(index)
        self.placeholder.setText(message)
        self.result_stack.setCurrentWidget(self.placeholder)
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

    def _on_run_clicked(self) -> None:
        self.run()

    def _on_progress_cancel_clicked(self) -> None:
        self.cancel()

    def _on_row_spin_value_changed(self, value: int) -> None:
        if self._session.dataset is not None:
            self.selection.set_current(value, source="picker")

    def _on_find_clicked(self) -> None:
        if self.find_edit.text().strip():
            self.find(self.find_edit.text())

    def _on_highest_clicked(self) -> None:
        self.pick_by_prediction("highest")

    def _on_lowest_clicked(self) -> None:
        self.pick_by_prediction("lowest")

    def _on_clear_selection_clicked(self) -> None:
        self.selection.clear(source="picker")

    def _on_selected_table_clicked(self, index: Any) -> None:
        # Make the clicked row the instance while keeping the others selected.
        row = self.selected_model.source_row(index.row())
        self.selection.set_rows(self.selection.rows, current=row, source="selected-table")

    def _on_view_rows_picked(self, rows: Any, current: Any) -> None:
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
        self.row_spin.blockSignals(True)
        self.row_spin.setRange(0, max(0, (dataset.n_rows - 1) if dataset is not None else 0))
        self.row_spin.blockSignals(False)
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
        n = selection.count
        if n == 0:
            self.selection_label.setText("No rows selected.")
        else:
            self.selection_label.setText(
                f"{n:,} row{'s' if n != 1 else ''} selected · instance: row {selection.current}"
            )
        if selection.current is not None:
            self.row_spin.blockSignals(True)
            self.row_spin.setValue(selection.current)
            self.row_spin.blockSignals(False)
        shown_rows = self.selected_model.rows
        if shown_rows is None or not np.array_equal(shown_rows, selection.rows):
            self.selected_model.set_rows(selection.rows)
        self.selected_title.setText(f"Selected rows ({n:,})" if n else "Selected rows")
        if selection.current is not None:
            at = np.flatnonzero(selection.rows == selection.current)
            if at.size:
                self.selected_table.selectRow(int(at[0]))
        self._link_views(selection)

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
            from engine.explain.registry import refusal

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

    def _show_shap(self, result: Any, frame: Any, current: int | None) -> None:
        self.waterfall_view.set_result(result, frame=frame, row=current)
        self.beeswarm_view.set_result(result, frame=frame)
        self.beeswarm_view.show_selection(self.selection.rows)
        self.results["shap"] = result
        self.importance_view.set_result(result)

    def _link_views(self, selection: Selection) -> None:
        rows = selection.rows
        if "lime" in self.results and selection.current is not None:
            self.lime_view.show_row(selection.current)
        if "shap" in self.results:
            if selection.current is not None:
                self.waterfall_view.show_row(selection.current)
            self.beeswarm_view.show_selection(rows)
        if "clusters" in self.results:
            self.cluster_view.show_selection(rows)
        if "pdp" in self.results:
            self.dependence_view.show_selection(rows)

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

    def _refresh_readiness(self) -> None:
        missing = self._session.missing_inputs()
        self.run_button.setEnabled(not missing and self._job is None)
        self.highest_button.setEnabled(not missing)
        self.lowest_button.setEnabled(not missing)
        if missing:
            self.readiness.setText(f"To explain the model, {' and '.join(missing)}.")
            self.readiness.show()
        else:
            self.readiness.hide()
