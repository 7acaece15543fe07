"""The Dataset pane: open a table, browse and filter it, and give each column its role."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui import tasks
from gui.panes.recent import RecentFiles
from gui.panes.table_model import FrameTableModel, compute_view_rows
from gui.plots import palette
from gui.runner import JobError, JobRunner, JobSpec
from gui.session import ROLE_NAMES, Session, role_map, roles_from_map
from gui.settings import RoleMemory, last_folder, remember_folder
from gui.text import literal
from gui.widgets import InlineMessage, OpenHeader, ProgressRow, accept_file_drops, hint_label, short_hash

if TYPE_CHECKING:
    from engine.models.base import Model
    from engine.schema import Dataset, ReadOptions, Roles

__all__ = ["DatasetPane", "DATA_FILE_FILTER", "OBVIOUS_TARGET_NAMES", "suggest_target"]

DATA_FILE_FILTER = "Tables (*.csv *.tsv *.txt *.xlsx *.parquet *.pq *.feather *.arrow *.ipc);;All files (*)"
_FILTER_DELAY_MS = 250  # wait for a pause in typing before filtering a large table
#: Column names (compared without case) that almost always hold what a model predicts.
OBVIOUS_TARGET_NAMES = ("target", "label", "y", "outcome", "class")
_MAX_COLUMN_WIDTH = 280  # px; longer header texts are elided in the middle, keeping the role visible


def _plain(value: Any) -> str:
    """A value as text for comparing a column's values with a model's classes (1.0 reads as 1)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def suggest_target(dataset: Dataset, model: Model | None = None) -> tuple[str, str] | None:
    """The column that is most likely the target, with the reason in words, or ``None``.

    In order: the column the model records as its target (``target_name``,
    where a format keeps it); a column named like a target (see
    :data:`OBVIOUS_TARGET_NAMES`) that the model does not take as an input;
    the one column the model does not take whose values are exactly the
    model's classes.  Columns with no value at all are never suggested.
    """
    frame = dataset.frame
    columns = [str(c) for c in frame.columns]
    usable = [c for c in columns if bool(frame[c].notna().any())]
    inputs = set(model.input_columns or ()) if model is not None else set()
    named = getattr(model, "target_name", None) if model is not None else None
    if isinstance(named, str) and named in usable:
        return named, "the model records it as its target"
    lowered = {c.strip().lower(): c for c in reversed(usable)}
    for name in OBVIOUS_TARGET_NAMES:
        column = lowered.get(name)
        if column is not None and column not in inputs:
            return column, f"“{column}” is the usual name of a target column"
    classes = tuple(getattr(model, "classes", None) or ()) if model is not None else ()
    if classes and inputs:
        wanted = {_plain(c) for c in classes}
        kinds = {info.name: info for info in dataset.schema.columns}
        candidates = [
            c
            for c in usable
            if c not in inputs
            and c in kinds
            and kinds[c].n_distinct == len(wanted)
            and kinds[c].kind.value != "identifier"
        ]
        matches = [c for c in candidates if {_plain(v) for v in frame[c].dropna().unique()} == wanted]
        if len(matches) == 1:
            return matches[0], "its values are the model's classes and the model does not take it as an input"
    return None


class DatasetPane(QWidget):
    """Open, view and assign roles to one table.

    Loading, filtering and sorting run through the :class:`JobRunner`; this
    widget only shows what comes back.
    """

    sig_status = Signal(str)

    def __init__(self, session: Session, runner: JobRunner, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._runner = runner
        self._settings = settings
        self.recent = RecentFiles(settings, "recent/data")
        self.role_memory = RoleMemory(settings)
        self.roles_note = ""  # where the roles came from: remembered, suggested (shown under the title)
        # Roles Probity chose by itself (defaults, a suggestion) are not remembered as the user's choice.
        self._roles_are_guesses = False
        self._load_job: int | None = None
        self._view_job: int | None = None
        self.import_dialog: QWidget | None = None  # the import preview while it is open
        self._pending_roles: tuple[str | None, tuple[str, ...]] = (None, ())
        self._sort: tuple[int, bool] | None = None  # column, descending
        self._role_combos: dict[str, QComboBox] = {}
        self._build()
        accept_file_drops(self, self.open_path)
        session.sig_roles_changed.connect(self._on_session_roles_changed)
        session.sig_model_changed.connect(self._on_session_model_changed)
        runner.sig_job_progress.connect(self._on_runner_job_progress)
        runner.sig_job_finished.connect(self._on_runner_job_finished)
        runner.sig_job_failed.connect(self._on_runner_job_failed)
        runner.sig_job_cancelled.connect(self._on_runner_job_cancelled)

    # -- layout ---------------------------------------------------------------------
    def _build(self) -> None:
        top = OpenHeader(
            "Dataset",
            "open-data",
            "Open data…",
            on_open=self._on_open_clicked,
            on_recent=self._on_recent_menu_about_to_show,
        )
        self.open_button, self.recent_button, self.recent_menu = top.open_button, top.recent_button, top.recent_menu

        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sha_label = QLabel()
        self.sha_label.setObjectName("mono")
        self.sha_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_sha_button = QToolButton()
        self.copy_sha_button.setText("Copy SHA-256")
        self.copy_sha_button.clicked.connect(self._on_copy_sha_clicked)
        info = QHBoxLayout()
        info.addWidget(self.summary)
        info.addStretch(1)
        info.addWidget(self.sha_label)
        info.addWidget(self.copy_sha_button)
        self.info_row = QWidget()
        self.info_row.setLayout(info)
        info.setContentsMargins(0, 0, 0, 0)
        self.info_row.hide()

        self.error = InlineMessage()
        self.progress = ProgressRow()
        self.progress.sig_cancel_clicked.connect(self._on_progress_cancel_clicked)

        self.drop_hint = QLabel(
            "Drop a table here (CSV, TSV, Excel, Parquet), or use Open data….\n"
            "Probity never changes the file; it records its SHA-256 for the report."
        )
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)

        # Left: the rows.
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter rows: text in any column, or “column: text”")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_edit_text_changed)
        self.row_count_label = QLabel()
        self.row_count_label.setObjectName("hint")
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(_FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self._on_filter_timer_timeout)

        self.table_model = FrameTableModel(self)
        self.table_view = QTableView()
        self.table_view.setModel(self.table_model)
        self.table_view.setAlternatingRowColors(True)
        self.table_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table_view.setWordWrap(False)
        self.table_view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vheader = self.table_view.verticalHeader()
        # Fixed heights: the view never measures a million rows.
        vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vheader.setDefaultSectionSize(self.fontMetrics().height() + 8)
        hheader = self.table_view.horizontalHeader()
        hheader.setSectionsClickable(True)
        hheader.setSortIndicatorShown(False)
        hheader.setDefaultSectionSize(120)
        # Column size hints read at most this many rows (Qt's default, 1,000, is a Python call per
        # cell and role: half a second on the GUI thread, seconds while a job holds the interpreter).
        hheader.setResizeContentsPrecision(64)
        # A long name loses its middle, never its role ("race (sensitive)" must stay readable).
        hheader.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        hheader.sectionClicked.connect(self._on_header_section_clicked)
        hheader.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        hheader.customContextMenuRequested.connect(self._on_header_context_menu_requested)

        rows_box = QWidget()
        rows_layout = QVBoxLayout(rows_box)
        rows_layout.setContentsMargins(0, 0, 0, 0)
        filter_row = QHBoxLayout()
        filter_row.addWidget(self.filter_edit, 1)
        filter_row.addWidget(self.row_count_label)
        rows_layout.addLayout(filter_row)
        rows_layout.addWidget(self.table_view, 1)

        # Right: the columns, their kinds and roles.
        self.roles_summary = QLabel()
        self.roles_summary.setTextFormat(Qt.TextFormat.RichText)  # every value in it is escaped
        self.roles_summary.setWordWrap(True)
        self.schema_table = QTableWidget(0, 5)
        self.schema_table.setHorizontalHeaderLabels(["Column", "Role", "Kind", "Missing", "Distinct"])
        self.schema_table.verticalHeader().hide()
        self.schema_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.schema_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.schema_table.setAlternatingRowColors(True)
        sheader = self.schema_table.horizontalHeader()
        sheader.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, 5):
            sheader.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        columns_box = QWidget()
        columns_layout = QVBoxLayout(columns_box)
        columns_layout.setContentsMargins(0, 0, 0, 0)
        columns_title = QLabel("Columns and roles")
        columns_title.setObjectName("sectionTitle")
        columns_layout.addWidget(columns_title)
        columns_layout.addWidget(
            hint_label("The target is what the model predicts; sensitive columns are used for fairness checks.")
        )
        columns_layout.addWidget(self.roles_summary)
        columns_layout.addWidget(self.schema_table, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(rows_box)
        self.splitter.addWidget(columns_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.info_row)
        layout.addWidget(self.error)
        layout.addWidget(self.progress)
        layout.addWidget(self.drop_hint, 1)
        layout.addWidget(self.splitter, 1)

    # -- public API -------------------------------------------------------------------
    def open_dialog(self) -> None:
        fallback = self.recent.paths()[0].parent if self.recent.paths() else None
        start = last_folder(self._settings, "data", fallback)
        path, _ = QFileDialog.getOpenFileName(self, "Open a data table", start, DATA_FILE_FILTER)
        if path:
            remember_folder(self._settings, "data", path)
            self.preview_import(Path(path))

    def preview_import(self, path: Path) -> None:
        """Show how ``path`` parses and let the user adjust the options before it loads (text and Excel)."""
        from gui.dialogs.import_preview import PREVIEWED_SUFFIXES, ImportPreviewDialog

        if path.suffix.lower() not in PREVIEWED_SUFFIXES:
            self.open_path(path)
            return
        dialog = ImportPreviewDialog(path, self._runner, parent=self)
        dialog.accepted.connect(lambda: self.open_path(path, options=dialog.options()))
        self.import_dialog = dialog
        dialog.open()  # no nested event loop: the preview parses on the runner meanwhile

    def open_path(
        self,
        path: Path | str,
        *,
        target: str | None = None,
        sensitive: Sequence[str] = (),
        options: ReadOptions | None = None,
    ) -> int:
        """Start loading ``path`` with ``options`` (``None``: detect); ``target``/``sensitive`` become its roles."""
        path = Path(path)
        self.error.clear_message()
        self._pending_roles = (target, tuple(sensitive))
        self._load_job = self._runner.submit(
            JobSpec(
                kind="load-data",
                fn=tasks.load_dataset,
                args=(path,),
                params={"options": options},
                key="load-data",
                title=f"Open {path.name}",
            )
        )
        self.progress.start(f"Opening {path.name}…")
        return self._load_job

    @property
    def dataset(self) -> Dataset | None:
        return self._session.dataset

    @property
    def error_text(self) -> str:
        return self.error.text() if self.error.kind == "error" else ""

    def role_of(self, column: str) -> str | None:
        combo = self._role_combos.get(column)
        return combo.currentText() if combo is not None else None

    def set_column_role(self, column: str, role: str) -> bool:
        """Give ``column`` a role (``target``/``feature``/``sensitive``/``ignored``); False if refused."""
        dataset = self._session.dataset
        if dataset is None or role not in ROLE_NAMES or column not in self._role_combos:
            return False
        current = role_map(self._session.roles, dataset.frame.columns) if self._session.roles else {}
        mapping = {str(c): current.get(str(c), "ignored") for c in dataset.frame.columns}
        if role == "target":
            # One target: the previous one is ignored rather than silently becoming a model input.
            mapping = {c: ("ignored" if r == "target" else r) for c, r in mapping.items()}
        mapping[column] = role
        self.roles_note = ""  # the user's own choice from now on
        return self._apply_role_map(mapping)

    def set_filter_text(self, text: str) -> None:
        """Filter at once (no typing delay); used by tests and scripts."""
        self.filter_edit.blockSignals(True)
        self.filter_edit.setText(text)
        self.filter_edit.blockSignals(False)
        self._refresh_rows()

    # -- slots: user ---------------------------------------------------------------------
    def _on_open_clicked(self) -> None:
        self.open_dialog()

    def _on_recent_menu_about_to_show(self) -> None:
        self.recent.fill_menu(self.recent_menu, self.open_path, self)

    def _on_copy_sha_clicked(self) -> None:
        if self._session.dataset is not None:
            QGuiApplication.clipboard().setText(self._session.dataset.sha256)
            self.sig_status.emit("Copied the data file's SHA-256.")

    def _on_progress_cancel_clicked(self) -> None:
        if self._load_job is not None:
            self._runner.cancel(self._load_job)
            self.progress.cancelling()

    def _on_filter_edit_text_changed(self, _text: str) -> None:
        self._filter_timer.start()

    def _on_filter_timer_timeout(self) -> None:
        self._refresh_rows()

    def _on_header_section_clicked(self, section: int) -> None:
        # Ascending, then descending, then back to file order.
        if self._sort is None or self._sort[0] != section:
            self._sort = (section, False)
        elif not self._sort[1]:
            self._sort = (section, True)
        else:
            self._sort = None
        header = self.table_view.horizontalHeader()
        header.setSortIndicatorShown(self._sort is not None)
        if self._sort is not None:
            order = Qt.SortOrder.DescendingOrder if self._sort[1] else Qt.SortOrder.AscendingOrder
            header.setSortIndicator(self._sort[0], order)
        self._refresh_rows()

    def _on_header_context_menu_requested(self, pos: QPoint) -> None:
        header = self.table_view.horizontalHeader()
        section = header.logicalIndexAt(pos)
        if section < 0:
            return
        column = self.table_model.column_name(section)
        menu = QMenu(self)
        current = self.role_of(column)
        for role in ROLE_NAMES:
            action = menu.addAction(f"Use “{column}” as {role}")
            action.setCheckable(True)
            action.setChecked(role == current)
            action.triggered.connect(lambda _checked=False, r=role: self.set_column_role(column, r))
        menu.exec(header.mapToGlobal(pos))

    def _on_role_combo_activated(self, column: str, role: str) -> None:
        self.set_column_role(column, role)

    # -- slots: runner and session --------------------------------------------------------
    def _on_runner_job_progress(self, job_id: int, fraction: float, message: str) -> None:
        if job_id == self._load_job:
            self.progress.update_progress(fraction, message)

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        if job_id == self._load_job:
            self._load_job = None
            self.progress.stop()
            self._show_dataset(result)
        elif job_id == self._view_job:
            self._view_job = None
            self.table_model.set_rows(result)  # type: ignore[arg-type]
            self._update_row_count()

    def _on_runner_job_failed(self, job_id: int, error: object) -> None:
        assert isinstance(error, JobError)
        if job_id == self._load_job:
            self._load_job = None
            self.progress.stop()
            self.error.show_error(
                error.message if error.is_user_error else "The file could not be opened because of an internal error."
            )
        elif job_id == self._view_job:
            self._view_job = None
            self.row_count_label.setText("Filter failed")

    def _on_runner_job_cancelled(self, job_id: int) -> None:
        if job_id == self._load_job:
            self._load_job = None
            self.progress.stop()
            self.sig_status.emit("Opening the file was cancelled.")
        elif job_id == self._view_job:
            self._view_job = None

    def _on_session_roles_changed(self, roles: Roles | None) -> None:
        dataset = self._session.dataset
        if dataset is None:
            return
        columns = [str(c) for c in dataset.frame.columns]
        mapping = role_map(roles, columns) if roles is not None else {c: "ignored" for c in columns}
        for column, combo in self._role_combos.items():
            combo.blockSignals(True)
            combo.setCurrentText(mapping.get(column, "ignored"))
            combo.blockSignals(False)
            self._tint_role_cell(column, mapping.get(column, "ignored"))
        self.table_model.set_roles(mapping)
        # A role suffix makes a header longer: widen its column so "(sensitive)" is never cut.
        self._fit_columns(grow_only=True, headers_only=True)
        self._update_roles_summary(roles)
        if roles is not None and not self._roles_are_guesses:
            self.role_memory.remember(dataset.sha256, columns, mapping)

    def _on_session_model_changed(self, model: Model | None) -> None:
        # A model opened after the data may tell which column is the target.
        dataset, roles = self._session.dataset, self._session.roles
        if model is None or dataset is None or (roles is not None and roles.target is not None):
            return
        suggestion = suggest_target(dataset, model)
        if suggestion is None:
            return
        column, reason = suggestion
        current = role_map(roles, dataset.frame.columns) if roles is not None else {}
        mapping = {str(c): current.get(str(c), "ignored") for c in dataset.frame.columns}
        mapping[column] = "target"
        self._roles_are_guesses = True
        try:
            if self._apply_role_map(mapping):
                self.roles_note = f"Target suggested: {reason}. Change it below if it is not."
                self._update_roles_summary(self._session.roles)
        finally:
            self._roles_are_guesses = False

    # -- helpers ---------------------------------------------------------------------------
    def _show_dataset(self, result: Any) -> None:
        dataset: Dataset = result
        if self._view_job is not None:
            # Its row positions belong to the previous table.
            self._runner.cancel(self._view_job)
            self._view_job = None
        self.recent.add(dataset.path)
        self._sort = None
        self.table_view.horizontalHeader().setSortIndicatorShown(False)
        self.filter_edit.blockSignals(True)
        self.filter_edit.clear()
        self.filter_edit.blockSignals(False)
        self.table_model.set_frame(dataset.frame)
        self._fill_schema(dataset)
        self.drop_hint.hide()
        self.splitter.show()
        self.info_row.show()
        self.summary.setText(_summary_html(dataset))
        self.sha_label.setText(f"SHA-256 {short_hash(dataset.sha256)}")
        self.sha_label.setToolTip(dataset.sha256)
        self._update_row_count()

        roles, self.roles_note, guessed = self._initial_roles(dataset)
        self._roles_are_guesses = guessed
        try:
            self._session.set_dataset(dataset, roles)
        finally:
            self._roles_are_guesses = False
        # After the roles (part of the header text) and once the view is laid out, so
        # the rows on screen count too.
        QTimer.singleShot(0, self._fit_columns)
        self.sig_status.emit(f"Opened {dataset.name}: {dataset.n_rows:,} rows.")

    def _initial_roles(self, dataset: Dataset) -> tuple[Roles, str, bool]:
        """Roles for a table just opened, a note saying where they came from, and whether Probity guessed them.

        Roles given with the request (command line, demo, a session) come
        first; then the roles last chosen for this file or these columns; then
        a suggested target (see :func:`suggest_target`).
        """
        from engine.errors import RoleError
        from engine.schema import assign_roles

        target, sensitive = self._pending_roles
        self._pending_roles = (None, ())
        columns = [str(c) for c in dataset.frame.columns]
        if target is None and not sensitive:
            remembered = self.role_memory.recall(dataset.sha256, columns)
            if remembered is not None:
                try:
                    roles = roles_from_map(dataset, remembered.mapping)
                except RoleError:
                    pass
                else:
                    where = "this file" if remembered.match == "file" else "a file with these columns"
                    return roles, f"Roles as you last set them for {where}.", False
        note, guessed = "", target is None and not sensitive
        if target is None:
            suggestion = suggest_target(dataset, self._session.model)
            if suggestion is not None:
                target, reason = suggestion
                note = f"Target suggested: {reason}. Change it below if it is not."
        try:
            roles = assign_roles(dataset, target=target, sensitive=sensitive)
        except RoleError as exc:
            self.error.show_error(str(exc))
            roles, note = assign_roles(dataset, target=None), ""
        # Round-trip through the role map so a sensitive column is not silently also a feature.
        return roles_from_map(dataset, role_map(roles, columns)), note, guessed

    def _fit_columns(self, *, grow_only: bool = False, headers_only: bool = False) -> None:
        """Fit each column to its header text (role included) and, unless ``headers_only``, the rows on screen.

        Never a scan of the whole table.  ``grow_only`` keeps columns that are
        already wide enough (the user may have widened them).
        """
        header = self.table_view.horizontalHeader()
        plain = header.fontMetrics()
        for column in range(self.table_model.columnCount()):
            title = str(self.table_model.headerData(column, Qt.Orientation.Horizontal))
            font = self.table_model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.FontRole)
            metrics = QFontMetrics(font) if isinstance(font, QFont) else plain
            wanted = max(metrics.horizontalAdvance(title) + 28, 64)
            if not headers_only:
                wanted = max(wanted, self.table_view.sizeHintForColumn(column))
            wanted = min(wanted, _MAX_COLUMN_WIDTH)
            if grow_only:
                wanted = max(wanted, self.table_view.columnWidth(column))
            if wanted != self.table_view.columnWidth(column):
                self.table_view.setColumnWidth(column, wanted)

    def _fill_schema(self, dataset: Dataset) -> None:
        self.schema_table.setRowCount(0)
        self._role_combos.clear()
        columns = dataset.schema.columns
        self.schema_table.setRowCount(len(columns))
        for row, info in enumerate(columns):
            name_item = QTableWidgetItem(info.name)
            name_item.setToolTip(literal(f"{info.name} ({info.dtype})"))
            self.schema_table.setItem(row, 0, name_item)
            combo = QComboBox()
            combo.addItems(list(ROLE_NAMES))
            combo.setAccessibleName(f"Role of {info.name}")
            combo.activated.connect(
                lambda index, c=info.name, box=combo: self._on_role_combo_activated(c, box.itemText(index))
            )
            self.schema_table.setCellWidget(row, 1, combo)
            self._role_combos[info.name] = combo
            self.schema_table.setItem(row, 2, QTableWidgetItem(info.kind.value))
            for col, value in ((3, info.n_missing), (4, info.n_distinct)):
                item = QTableWidgetItem(f"{value:,}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.schema_table.setItem(row, col, item)
            if info.n_missing:
                share = info.n_missing / max(dataset.n_rows, 1)
                self.schema_table.item(row, 3).setToolTip(f"{share:.1%} of rows are missing")

    def _tint_role_cell(self, column: str, role: str) -> None:
        for row in range(self.schema_table.rowCount()):
            item = self.schema_table.item(row, 0)
            if item is not None and item.text() == column:
                colour = QColor(palette.ROLE_COLOURS.get(role, palette.REFERENCE))
                colour.setAlpha(40 if role != "ignored" else 0)
                item.setBackground(colour)
                item.setForeground(QColor(palette.MUTED_TEXT if role == "ignored" else palette.TEXT))
                return

    def _apply_role_map(self, mapping: dict[str, str]) -> bool:
        from engine.errors import RoleError

        dataset = self._session.dataset
        assert dataset is not None
        try:
            roles = roles_from_map(dataset, mapping)
        except RoleError as exc:
            self.error.show_error(str(exc))
            self._on_session_roles_changed(self._session.roles)  # put the combos back
            return False
        self.error.clear_message()
        self._session.set_roles(roles)
        return True

    def _update_roles_summary(self, roles: Roles | None) -> None:
        if roles is None:
            self.roles_summary.setText("")
            return
        import html

        target = f"<b>{html.escape(roles.target)}</b>" if roles.target else "<i>none yet: choose one below</i>"
        sensitive = html.escape(", ".join(roles.sensitive)) if roles.sensitive else "none"
        note = f"<br><i>{html.escape(self.roles_note)}</i>" if self.roles_note else ""
        self.roles_summary.setText(
            f"Target: {target} · {len(roles.features)} feature{'s' if len(roles.features) != 1 else ''}"
            f" · sensitive: {sensitive}{note}"
        )

    def _refresh_rows(self) -> None:
        dataset = self._session.dataset
        if dataset is None:
            return
        sort_column = self.table_model.column_name(self._sort[0]) if self._sort is not None else None
        self._view_job = self._runner.submit(
            JobSpec(
                kind="table-view",
                fn=compute_view_rows,
                args=(dataset.frame,),
                params={
                    "text": self.filter_edit.text(),
                    "sort_column": sort_column,
                    "descending": bool(self._sort and self._sort[1]),
                },
                key="table-view",
                title="Filter rows",
                listed=False,
            )
        )
        self.row_count_label.setText("Filtering…")

    def _update_row_count(self) -> None:
        # The table's own frame, not the session's dataset: a new file is shown before the session has it.
        frame = self.table_model.frame
        if frame is None:
            self.row_count_label.setText("")
            return
        shown = self.table_model.rowCount()
        total = len(frame)
        self.row_count_label.setText(f"{total:,} rows" if shown == total else f"{shown:,} of {total:,} rows")


def _summary_html(dataset: Dataset) -> str:
    import html

    options = dataset.options
    details = [dataset.format.upper()]
    if options.delimiter:
        details.append("tab-separated" if options.delimiter == "\t" else f"delimiter “{options.delimiter}”")
    if options.encoding:
        details.append(options.encoding)
    if options.sheet:
        details.append(f"sheet “{options.sheet}”")
    n_cols = dataset.frame.shape[1]
    return (
        f"<b>{html.escape(dataset.name)}</b> · {dataset.n_rows:,} rows × {n_cols} columns"
        f" · {html.escape(' · '.join(details))}"
    )
