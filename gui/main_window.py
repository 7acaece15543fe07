"""The main window: Dataset, Model and Analyses tabs, the job list, and the status bar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import QDialog, QLabel, QMainWindow, QMessageBox, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from gui import tasks
from gui.crash import CrashReporter
from gui.panes.analyses import AnalysesPane
from gui.panes.dataset import DatasetPane
from gui.panes.explain import ExplainPane
from gui.panes.fairness import FairnessPane
from gui.panes.jobs import JobListDock
from gui.panes.model import MODEL_SUFFIXES, ModelPane
from gui.resources import icon
from gui.runner import JobError, JobRunner, JobSpec
from gui.selection import SelectionModel, TableSelectionSync, group_rows
from gui.session import Session
from gui.sessionfile import SessionBanner, SessionKeeper, SessionPane
from gui.settings import AppSettings, FormDefaults
from gui.widgets import accept_file_drops

if TYPE_CHECKING:
    from engine.schema import ReadOptions

__all__ = ["MainWindow", "PaneTabs"]

#: The size a first run opens at, shrunk to fit the screen's free area.
DEFAULT_SIZE = (1280, 820)
_GEOMETRY_KEY = "window/geometry"
_STATE_KEY = "window/state"


class PaneTabs(QTabWidget):
    """Tabs whose pages are panes inside scroll areas.

    A pane full of results (plots, tables, forms) may want more height than
    a laptop screen has; in a scroll area it scrolls instead of making the
    whole window taller than the screen.  Callers name the pane itself:
    :meth:`setCurrentWidget`, :meth:`indexOf` and :meth:`currentWidget` see
    through the scroll areas.
    """

    def add_pane(self, pane: QWidget, tab_icon: QIcon, title: str) -> int:
        scroll = QScrollArea()
        scroll.setObjectName("paneScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(pane)
        return self.addTab(scroll, tab_icon, title)

    def pane(self, index: int) -> QWidget | None:
        """The pane shown by tab ``index`` (``None`` when out of range)."""
        page = self.widget(index)
        return page.widget() if isinstance(page, QScrollArea) else page

    def indexOf(self, widget: QWidget) -> int:  # noqa: N802 - Qt's name
        index = super().indexOf(widget)
        if index >= 0:
            return index
        return next((i for i in range(self.count()) if self.pane(i) is widget), -1)

    def setCurrentWidget(self, widget: QWidget) -> None:  # noqa: N802 - Qt's name
        index = self.indexOf(widget)
        if index >= 0:
            self.setCurrentIndex(index)

    def currentWidget(self) -> QWidget:  # noqa: N802 - Qt's name
        pane = self.pane(self.currentIndex())
        return pane if pane is not None else super().currentWidget()


class MainWindow(QMainWindow):
    """Probity's window.  Owns the session and the job runner; panes share both."""

    def __init__(
        self,
        *,
        settings: QSettings | None = None,
        reporter: CrashReporter | None = None,
        data_dir: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self.reporter = reporter if reporter is not None else CrashReporter(self)
        self.session = Session(self)
        self.runner = JobRunner(self)
        self._demo_job: int | None = None
        self._device_job: int | None = None
        self.setWindowTitle("Probity")
        self.setWindowIcon(icon("probity"))
        self._fit_default_size()

        self.dataset_pane = DatasetPane(self.session, self.runner, self.settings)
        self.model_pane = ModelPane(self.session, self.runner, self.settings)
        self.analyses_pane = AnalysesPane(self.session, self.runner)
        # Rows selected anywhere (table, plots, instance picker) are selected everywhere.
        self.selection = SelectionModel(self)
        self.explain_pane = ExplainPane(self.session, self.runner, self.selection)
        self.explain_pane.follow_analyses(self.analyses_pane)
        self.fairness_pane = FairnessPane(self.session, self.runner, self.selection)
        self.fairness_pane.follow_analyses(self.analyses_pane)
        self.table_sync = TableSelectionSync(
            self.dataset_pane.table_view, self.dataset_pane.table_model, self.selection
        )
        self.tabs = PaneTabs()
        self.tabs.setDocumentMode(False)
        self.tabs.add_pane(self.dataset_pane, icon("open-data"), "Dataset")
        self.tabs.add_pane(self.model_pane, icon("open-model"), "Model")
        self.tabs.add_pane(self.analyses_pane, icon("run"), "Analyses")
        self.tabs.add_pane(self.explain_pane, icon("run"), "Explain")
        self.tabs.add_pane(self.fairness_pane, icon("run"), "Fairness")
        # A session reopened with changed or missing files says so above the tabs.
        self.session_banner = SessionBanner()
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.addWidget(self.session_banner)
        central_layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.jobs_dock = JobListDock(self.runner, self)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        self.resizeDocks([self.jobs_dock], [150], Qt.Orientation.Vertical)

        self.data_status = QLabel("No dataset")
        self.model_status = QLabel("No model")
        self.device_status = QLabel("Compute: CPU")
        self.device_status.setToolTip("The GPU is detected in the background once the window is up.")
        bar = self.statusBar()
        for label in (self.data_status, self.model_status, self.device_status):
            label.setTextFormat(Qt.TextFormat.PlainText)  # they name the data and model files
            bar.addPermanentWidget(label)

        self._probe_timer = QTimer(self)
        self._probe_timer.setSingleShot(True)
        self._probe_timer.setInterval(500)
        self._probe_timer.timeout.connect(self.start_device_probe)

        self.app_settings = AppSettings.load(self.settings)
        self.app_settings.apply_to_process()
        self.form_defaults = FormDefaults(
            (), self.app_settings, self, method_panes=(self.explain_pane, self.fairness_pane)
        )
        # The Analyses panels are made from the descriptors when the area is first shown.
        self.analyses_pane.sig_panels_ready.connect(self.form_defaults.add_panels)
        self.explain_pane.defaults_filler = self.form_defaults.fill_methods
        self.fairness_pane.defaults_filler = self.form_defaults.fill_methods
        # The window is the keeper's SessionHost (gui.sessionfile); the keeper never sees the window's class.
        self.session_keeper = SessionKeeper(self, parent=self, data_dir=data_dir)
        self.session.sig_results_restored.connect(self._on_session_results_restored)
        self._build_menus()
        accept_file_drops(self, self._on_window_file_dropped)
        for pane in (self.dataset_pane, self.model_pane, self.explain_pane, self.fairness_pane):
            pane.sig_status.connect(self._on_pane_status)
        self.session.sig_dataset_changed.connect(self._on_session_dataset_changed)
        self.session.sig_model_changed.connect(self._on_session_model_changed)
        self.runner.sig_job_finished.connect(self._on_runner_job_finished)
        self.runner.sig_job_failed.connect(self._on_runner_job_failed)
        # A click on a row of the Groups table selects that group's rows everywhere.
        self._groups_table: Any | None = None
        self.explain_pane.sig_result_shown.connect(self._on_explain_pane_result_shown)
        self.restore_geometry()

    # -- menus ----------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_data = QAction(icon("open-data"), "Open &data…", self)
        open_data.setShortcut(QKeySequence.StandardKey.Open)
        open_data.triggered.connect(self.dataset_pane.open_dialog)
        open_model = QAction(icon("open-model"), "Open &model…", self)
        open_model.setShortcut(QKeySequence("Ctrl+M"))
        open_model.triggered.connect(self.model_pane.open_dialog)
        open_demo = QAction("Open the &demo", self)
        open_demo.triggered.connect(self.open_demo)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (open_data, open_model, open_demo):
            file_menu.addAction(action)
        file_menu.addSeparator()
        for text, shortcut, slot in (
            ("&Open session…", "Ctrl+Shift+O", self.session_keeper.open_dialog),
            ("&Save session…", "Ctrl+S", self.session_keeper.save_dialog),
            ("&Export report…", "Ctrl+E", self.open_export_dialog),
            ("Se&ttings…", "Ctrl+,", self.open_settings_dialog),
        ):
            action = QAction(text, self)
            action.setShortcut(QKeySequence(shortcut))
            action.triggered.connect(slot)
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.jobs_dock.toggleViewAction())

        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About Probity", self)
        about.triggered.connect(self._on_about_triggered)
        help_menu.addAction(about)

    # -- public API ------------------------------------------------------------------------
    def open_data(
        self,
        path: Path | str,
        *,
        target: str | None = None,
        sensitive: Sequence[str] = (),
        options: ReadOptions | None = None,
    ) -> int:
        """Start loading a data file (``options``: how to read it, ``None`` to detect); the job id."""
        return self.dataset_pane.open_path(path, target=target, sensitive=sensitive, options=options)

    def open_model(self, path: Path | str) -> int:
        return self.model_pane.open_path(path)

    def open_demo(self) -> int:
        """Open the built-in demo (data with target and sensitive roles, and its model)."""
        self._demo_job = self.runner.submit(
            JobSpec(kind="demo", fn=tasks.ensure_demo_files, key="demo", title="Prepare the demo")
        )
        return self._demo_job

    def session_panes(self) -> Sequence[SessionPane]:
        """The panes whose state a session keeps, in the order they save and restore it."""
        return (self.analyses_pane, self.explain_pane, self.fairness_pane)

    def model_trust_dialog(self) -> QDialog | None:
        """The trust question the Model area is asking now, if any."""
        return self.model_pane.trust_dialog

    def show_status(self, text: str, timeout_ms: int) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def start_device_probe(self) -> None:
        """Describe the compute device; torch is imported on a worker, never on the GUI thread.

        The probe waits for a moment with no jobs and then runs alone
        (``exclusive``): importing torch while another thread runs
        scikit-learn or SciPy code can break that code.  Done early, every
        later analysis finds torch fully imported.
        """
        known = tasks.device_if_torch_loaded()
        if known is not None:
            self._set_device(known)
            return
        if self.runner.active_count:
            self._probe_timer.start()
            return
        self._probe_timer.stop()
        self._device_job = self.runner.submit(
            JobSpec(
                kind="device",
                fn=tasks.probe_compute_device,
                key="device",
                title="Detect GPU",
                listed=False,
                exclusive=True,
            )
        )

    # -- slots --------------------------------------------------------------------------------
    def _on_window_file_dropped(self, path: Path) -> None:
        is_model = path.suffix.lower() in MODEL_SUFFIXES
        if is_model and path.suffix.lower() == ".txt":
            # A .txt is a LightGBM model only when it starts as one (the line "tree"); else it is a table.
            try:
                with path.open("rb") as handle:
                    is_model = handle.read(5).rstrip(b"\r\n") == b"tree"
            except OSError:
                is_model = False
        if is_model:
            self.tabs.setCurrentWidget(self.model_pane)
            self.model_pane.open_path(path)
        else:
            self.tabs.setCurrentWidget(self.dataset_pane)
            self.dataset_pane.open_path(path)

    def _on_pane_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    def _on_session_results_restored(self, results: Mapping[str, Any]) -> None:
        """Show reopened results in the panes that draw them, in the order they were saved."""
        self.analyses_pane.ensure_ready()
        for name, result in results.items():
            if self.fairness_pane.show_restored_result(name, result):
                continue  # the fairness analysis; a proxy table is drawn there and in Analyses
            if not self.analyses_pane.show_restored_result(name, result):
                self.explain_pane.show_restored_result(name, result, results)

    def _on_session_dataset_changed(self, dataset: Any) -> None:
        if dataset is None:
            self.data_status.setText("No dataset")
            self.setWindowTitle("Probity")
            return
        self.data_status.setText(f"Data: {dataset.name} ({dataset.n_rows:,} rows)")
        self.setWindowTitle(f"Probity — {dataset.name}")

    def _on_session_model_changed(self, model: Any) -> None:
        self.model_status.setText("No model" if model is None else f"Model: {model.name}")

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        if job_id == self._demo_job:
            from engine.demo import SENSITIVE, TARGET

            self._demo_job = None
            paths: Any = result
            self.open_data(paths.data, target=TARGET, sensitive=tuple(SENSITIVE))
            self.open_model(paths.model)
        elif job_id == self._device_job:
            self._device_job = None
            self._set_device(str(result))
        else:
            self._refresh_device()

    def _on_explain_pane_result_shown(self, _method: str) -> None:
        view = self.explain_pane.views.get("groups")
        table = getattr(view, "table", None)
        if table is None or table is self._groups_table:
            return
        self._groups_table = table
        table.cellClicked.connect(self._on_groups_table_cell_clicked)
        table.cellActivated.connect(self._on_groups_table_cell_clicked)
        table.setToolTip("Click a group to select its rows in the Dataset table and the other views.")

    def _on_groups_table_cell_clicked(self, row: int, _column: int) -> None:
        self.select_group_rows(row)

    def select_group_rows(self, table_row: int) -> int:
        """Select the rows of the group shown in row ``table_row`` of the Groups table; returns how many."""
        view = self.explain_pane.views.get("groups")
        result = getattr(view, "result", None)
        table = self._groups_table
        dataset, roles = self.session.dataset, self.session.roles
        if result is None or table is None or dataset is None:
            return 0
        # The attribute and group columns come first in the table (whatever else it shows).
        cells = [table.item(table_row, c) for c in (0, 1)]
        if any(cell is None for cell in cells):
            return 0
        attribute, group = (cell.text() for cell in cells)
        if not any(g.attribute == attribute and g.group == group for g in result.groups):
            return 0
        rows = group_rows(dataset.frame, attribute, group, target=roles.target if roles is not None else None)
        self.selection.set_rows(rows, source="groups")
        self.statusBar().showMessage(
            f"Selected the {rows.size:,} rows of {attribute} = {group}; the Dataset table shows them.", 8000
        )
        return int(rows.size)

    def _on_runner_job_failed(self, job_id: int, error: object) -> None:
        assert isinstance(error, JobError)
        if job_id == self._device_job:
            self._device_job = None
            return
        self._refresh_device()
        if job_id == self._demo_job:
            self._demo_job = None
            if error.is_user_error:
                self.statusBar().showMessage(error.message, 10000)
        if not error.is_user_error:
            # A bug: the pane says so inline; the traceback goes behind "Details".
            from engine.logs import log_dir

            self.reporter.show_error(error.message, error.traceback or "", log_dir() / "probity.log")

    def _on_about_triggered(self) -> None:
        from html import escape

        from engine import __version__, netguard
        from engine.build_info import describe_build

        compute = self.device_status.text().removeprefix("Compute: ")
        QMessageBox.about(
            self,
            "About Probity",
            f"<b>Probity {__version__}</b><br>An offline workstation for auditing machine-learning models:"
            " tabular data and a trained model in, explanations and a reproducible PDF report out."
            f"<br><br>{escape(describe_build())}"
            f"<br>Compute: {escape(compute)}<br>{escape(netguard.status().summary)}",
        )

    def open_export_dialog(self) -> Any:
        """The report export dialog (non-modal); its reviewer notes and results are the session's."""
        from gui.dialogs.export_report import ExportReportDialog

        dialog = ExportReportDialog(
            session=self.session,
            runner=self.runner,
            settings=self.settings,
            app_settings=self.app_settings,
            notes=self.session_keeper.notes,
            results=self.session_keeper.results,
            parent=self,
        )
        dialog.sig_notes_changed.connect(lambda text: setattr(self.session_keeper, "notes", text))
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def open_settings_dialog(self) -> Any:
        """The settings dialog (non-modal); accepted values are saved and apply to new jobs."""
        from gui.dialogs.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.app_settings, self)
        dialog.accepted.connect(lambda: self.set_app_settings(dialog.value()))
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def set_app_settings(self, value: AppSettings) -> None:
        self.app_settings = value
        value.save(self.settings)
        value.apply_to_process()
        self.form_defaults.set_settings(value)

    def apply_settings_to_process(self) -> None:
        self.app_settings.apply_to_process()

    def offer_recovery(self) -> Any:
        """After a crash or kill, offer the autosaved session back (``None`` when there is nothing to offer)."""
        return self.session_keeper.offer_recovery()

    def restore_geometry(self) -> bool:
        """Put back the size, position and dock layout of the last run; False when none was saved."""
        geometry = self.settings.value(_GEOMETRY_KEY)
        if not isinstance(geometry, QByteArray) or geometry.isEmpty() or not self.restoreGeometry(geometry):
            return False
        state = self.settings.value(_STATE_KEY)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        return True

    def save_geometry(self) -> None:
        """Remember the size, position and dock layout for the next run."""
        self.settings.setValue(_GEOMETRY_KEY, self.saveGeometry())
        self.settings.setValue(_STATE_KEY, self.saveState())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.save_geometry()
        # Workers must stop before the objects their signals point at are destroyed.
        self.session_keeper.stop()  # no autosave may land after the clean-exit marker
        self.runner.shutdown(3000)
        self.session_keeper.mark_clean_exit()
        super().closeEvent(event)

    # -- helpers ----------------------------------------------------------------------------------
    def _fit_default_size(self) -> None:
        screen = self.screen() or QGuiApplication.primaryScreen()
        width, height = DEFAULT_SIZE
        if screen is not None:
            free = screen.availableGeometry()
            width, height = min(width, free.width()), min(height, free.height())
        self.resize(width, height)

    def _set_device(self, text: str) -> None:
        self.device_status.setText(f"Compute: {text}")
        self.device_status.setToolTip("Where torch-based analyses run.")

    def _refresh_device(self) -> None:
        """After a job: the GPU's free memory again, or the device once an analysis imported torch (free to ask)."""
        text = self.device_status.text()
        if text != "Compute: CPU" and not text.startswith("Compute: CUDA"):
            return  # the processor, already described: nothing a job changes
        known = tasks.device_if_torch_loaded()
        if known is not None:
            self._set_device(known)
