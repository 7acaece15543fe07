"""The Model pane: open a model file, see what it is, and decide on trust for pickles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui import tasks
from gui.panes.recent import RecentFiles
from gui.plots import palette
from gui.resources import icon
from gui.runner import JobError, JobRunner, JobSpec
from gui.session import Session
from gui.settings import last_folder, remember_folder
from gui.text import escape, literal, plain_label
from gui.widgets import InlineMessage, OpenHeader, ProgressRow, accept_file_drops, hint_label, human_size, short_hash

__all__ = ["ModelPane", "TrustDialog", "SidecarPrompt", "MODEL_FILE_FILTER", "MODEL_SUFFIXES", "ACKNOWLEDGE_TEXT"]

_SCAN_TITLE = "Safety scan (what the file imports when loaded)"

# The suffixes engine.models.loading reads (a test keeps the two equal; importing
# the engine's table here would pull pandas into the app's start-up).
MODEL_SUFFIXES = (
    *(".skops", ".onnx", ".pkl", ".pickle", ".joblib", ".json", ".ubj", ".txt", ".lgb", ".cbm"),
    *(".pt", ".pth", ".ts", ".torchscript", ".pt2", ".safetensors"),
)
# The inline message above the scan says why a file was refused; the scan's headline does not repeat it.
_VERDICTS = {
    "refused": "Refused",
    "needs-trust": "Loading runs the code of the classes below: it needs your trust",
}
_UNREVIEWED_VERDICT = (
    "Loading runs the code of the classes below: it needs your trust, and an acknowledgement of "
    "the names Probity has not reviewed"
)
#: Item data role of the safety scan's list holding each name's status: reviewed, unreviewed or dangerous.
SCAN_STATUS_ROLE = Qt.ItemDataRole.UserRole + 1
MODEL_FILE_FILTER = f"Models ({' '.join('*' + s for s in MODEL_SUFFIXES)});;All files (*)"
#: The trust dialog's second acknowledgement, needed on top of trust when a file names unreviewed names.
ACKNOWLEDGE_TEXT = "I have reviewed the names in red and accept them"
_DANGEROUS_TIP = "Can run commands or code: Probity never loads a file that names it."
_UNREVIEWED_TIP = "Not on Probity's reviewed list: loading runs its code, which Probity has not checked."


class TrustDialog(QDialog):
    """Asks whether to load a file that can run code, showing exactly what it imports.

    Names Probity has not reviewed are listed in red and need a second, separate
    acknowledgement (:attr:`acknowledge_box`): "Trust and load" stays disabled
    until it is ticked.  A file with a dangerous name can never be loaded from here.
    """

    def __init__(
        self,
        path: Path,
        sha256: str,
        imports: tuple[str, ...],
        dangerous: set[str],
        parent: QWidget | None = None,
        *,
        unreviewed: Sequence[str] = (),
    ) -> None:
        super().__init__(parent)
        self.unreviewed = tuple(n for n in unreviewed if n not in dangerous)
        self.dangerous = tuple(n for n in imports if n in dangerous)
        self.setWindowTitle("Trust this model file?")
        self.setMinimumWidth(560)
        glyph = QLabel()
        glyph.setPixmap(icon("shield").pixmap(40, 40))
        glyph.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.text = QLabel(
            f"<b>{escape(path.name)}</b> is a pickle-based file. Loading it runs code named inside it, "
            "with your permissions. Load it only if you trust who made it and the imports below are what a "
            "model needs.<br><br>Your decision is recorded in the report as "
            "<i>gui confirmation</i> for this exact file:"
        )
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        digest = plain_label(sha256)
        digest.setObjectName("mono")
        digest.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.imports_list = QListWidget()
        marked = set(self.unreviewed)
        for name in imports:
            item = QListWidgetItem(name)  # item views draw plain text
            if name in dangerous:
                item.setForeground(QColor(palette.ERROR))
                item.setToolTip(_DANGEROUS_TIP)
            elif name in marked:
                item.setForeground(QColor(palette.ERROR))
                item.setToolTip(_UNREVIEWED_TIP)
            self.imports_list.addItem(item)
        self.imports_list.setMinimumHeight(160)

        # The names that need the second acknowledgement, each in red; escaped, as they come from the file.
        self.unreviewed_label = QLabel()
        self.unreviewed_label.setTextFormat(Qt.TextFormat.RichText)
        self.unreviewed_label.setWordWrap(True)
        self.unreviewed_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.acknowledge_box = QCheckBox(ACKNOWLEDGE_TEXT)
        if self.unreviewed:
            n = len(self.unreviewed)
            self.unreviewed_label.setText(
                f"<b>{n} of these name{'s are' if n != 1 else ' is'} not on Probity's reviewed list</b>: "
                "Probity cannot say what "
                f"{'they do' if n != 1 else 'it does'} when the file is loaded. Look "
                f"{'them' if n != 1 else 'it'} up before you accept:<br>"
                + "<br>".join(f"<span style='color:{palette.ERROR}'>{escape(name)}</span>" for name in self.unreviewed)
            )
        else:
            self.unreviewed_label.hide()
            self.acknowledge_box.hide()
        self.acknowledge_box.toggled.connect(self._on_acknowledge_box_toggled)

        buttons = QDialogButtonBox()
        self.trust_button = buttons.addButton("Trust and load", QDialogButtonBox.ButtonRole.AcceptRole)
        self.refuse_button = buttons.addButton("Don't load", QDialogButtonBox.ButtonRole.RejectRole)
        self.refuse_button.setDefault(True)  # the safe choice is what Enter does
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self._update_trust_button()

        top = QHBoxLayout()
        top.addWidget(glyph)
        words = QVBoxLayout()
        words.addWidget(self.text)
        words.addWidget(digest)
        top.addLayout(words, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(QLabel(f"It imports {len(imports)} name{'s' if len(imports) != 1 else ''}:"))
        layout.addWidget(self.imports_list, 1)
        layout.addWidget(self.unreviewed_label)
        layout.addWidget(self.acknowledge_box)
        layout.addWidget(buttons)

    @property
    def can_load(self) -> bool:
        """Whether "Trust and load" may be pressed: no dangerous name, and unreviewed names acknowledged."""
        return not self.dangerous and (not self.unreviewed or self.acknowledge_box.isChecked())

    @property
    def allow_unreviewed(self) -> bool:
        """The second acknowledgement: there are unreviewed names and the box is ticked."""
        return bool(self.unreviewed) and self.acknowledge_box.isChecked() and not self.dangerous

    def accept(self) -> None:
        # Enforced here too, not only by the disabled button: nothing accepts a decision the dialog forbids.
        if self.can_load:
            super().accept()

    def _on_acknowledge_box_toggled(self, _checked: bool) -> None:
        self._update_trust_button()

    def _update_trust_button(self) -> None:
        self.trust_button.setEnabled(self.can_load)
        self.trust_button.setToolTip(
            ""
            if self.can_load
            else "This file names something that can run commands or code; Probity never loads it."
            if self.dangerous
            else "Tick the box above once you have reviewed the names in red."
        )


class SidecarPrompt(QGroupBox):
    """Writes the sidecar a PyTorch network needs (``net.pt`` -> ``net.features.json``) and loads it again.

    Shown when the network does not say which data columns it takes, or what its
    several outputs are.  The columns (in the order the network reads them), the
    task, the class labels and the kind of output are asked here, prefilled from the
    open dataset's feature columns and target; "Save … and load" writes exactly what
    ``probity`` reads from the command line (so a report's ``probity verify`` finds
    it), keeping any key the sidecar already had, and loads the file again.  A
    declaration the network does not fit is the loader's one sentence, shown inline.
    """

    sig_saved = Signal(object)  # the model file (Path) whose sidecar was written

    _TASKS = (("detect from the outputs", None), ("classification", "classification"), ("regression", "regression"))
    _OUTPUTS = (
        ("detect from the outputs", None),
        ("logits", "logits"),
        ("probabilities", "probabilities"),
        ("values", "values"),
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Describe the network (its sidecar file)", parent)
        self.path: Path | None = None
        self.hint = hint_label("")
        self.hint.setWordWrap(True)
        self.columns_edit = QLineEdit()
        self.columns_edit.setPlaceholderText("income, debt, age, …")
        self.use_features_button = QPushButton("Use the dataset's feature columns")
        self.use_features_button.clicked.connect(self._on_use_features_clicked)
        self.task_box = QComboBox()
        for text, value in self._TASKS:
            self.task_box.addItem(text, value)
        self.classes_edit = QLineEdit()
        self.classes_edit.setPlaceholderText("class labels in the order of the outputs, e.g. 0, 1")
        self.output_box = QComboBox()
        for text, value in self._OUTPUTS:
            self.output_box.addItem(text, value)
        self.save_button = QPushButton("Save and load")
        self.save_button.setObjectName("primary")
        self.save_button.clicked.connect(self._on_save_clicked)
        self.problem = InlineMessage()
        self._features: tuple[str, ...] = ()
        columns_row = QHBoxLayout()
        columns_row.addWidget(self.columns_edit, 1)
        columns_row.addWidget(self.use_features_button)
        form = QFormLayout()
        form.addRow("Input columns, in order:", columns_row)
        form.addRow("Task:", self.task_box)
        form.addRow("Classes:", self.classes_edit)
        form.addRow("Output:", self.output_box)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addLayout(buttons)
        self.hide()

    def sidecar(self) -> Path | None:
        """The sidecar file of the network asked about."""
        return None if self.path is None else self.path.with_name(self.path.stem + ".features.json")

    def ask(self, path: Path, reason: str, *, features: Sequence[str] = (), classes: Sequence[Any] = ()) -> None:
        """Ask about ``path`` (``reason``: the loader's sentence); prefill from the dataset's columns and classes."""
        if path != self.path:
            self.columns_edit.clear()
            self.classes_edit.clear()
            self.task_box.setCurrentIndex(0)
            self.output_box.setCurrentIndex(0)
        self.path = path
        self._features = tuple(features)
        side = self.sidecar()
        assert side is not None
        self.hint.setText(
            f"{reason} Probity writes your answers to {side.name} beside the model, as the command line reads them."
        )
        self.save_button.setText(f"Save {side.name} and load")
        self.use_features_button.setEnabled(bool(self._features))
        if not self.columns_edit.text().strip() and self._features:
            self.columns_edit.setText(", ".join(self._features))
        if not self.classes_edit.text().strip() and classes:
            self.classes_edit.setText(", ".join(str(c) for c in classes))
        self.problem.clear_message()
        self.show()

    def declaration(self) -> dict[str, Any]:
        """What the sidecar will declare (keys the loader reads: features, task, classes, output)."""
        doc: dict[str, Any] = {}
        columns = [c.strip() for c in self.columns_edit.text().split(",") if c.strip()]
        if columns:
            doc["features"] = columns
        task = self.task_box.currentData()
        if task is not None:
            doc["task"] = task
        labels = [c.strip() for c in self.classes_edit.text().split(",") if c.strip()]
        if labels and task != "regression":
            doc["classes"] = [_label(c) for c in labels]
        output = self.output_box.currentData()
        if output is not None:
            doc["output"] = output
        return doc

    def _on_use_features_clicked(self) -> None:
        self.columns_edit.setText(", ".join(self._features))

    def _on_save_clicked(self) -> None:
        import json

        side = self.sidecar()
        if side is None:
            return
        doc = self.declaration()
        if "features" not in doc:
            self.problem.show_error("Name the input columns the network takes, in order, separated by commas.")
            return
        try:
            kept: Any = json.loads(side.read_text(encoding="utf-8")) if side.exists() else {}
        except (OSError, ValueError):
            kept = {}
        if isinstance(kept, list):  # a bare list of columns: replaced by the full declaration
            kept = {}
        try:
            side.write_text(json.dumps({**kept, **doc}, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.problem.show_error(f"{side.name} could not be written beside the model ({reason}).")
            return
        self.problem.clear_message()
        self.sig_saved.emit(self.path)


def _label(text: str) -> Any:
    """A class label as typed: a whole number, a number, or text (as the data's target holds it)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


class ModelPane(QWidget):
    """Open and describe one model; pickles need an explicit per-file decision."""

    sig_status = Signal(str)

    def __init__(self, session: Session, runner: JobRunner, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._runner = runner
        self._settings = settings
        self.recent = RecentFiles(settings, "recent/model")
        self._job: int | None = None
        # What the details show: the model in use (path, inspection), kept while another file is tried.
        self._in_use: tuple[Path, Any] | None = None
        self.trust_dialog: TrustDialog | None = None
        self._build()
        accept_file_drops(self, self.open_path)
        session.sig_dataset_changed.connect(self._on_session_dataset_changed)
        session.sig_model_changed.connect(self._on_session_model_changed)
        runner.sig_job_progress.connect(self._on_runner_job_progress)
        runner.sig_job_finished.connect(self._on_runner_job_finished)
        runner.sig_job_failed.connect(self._on_runner_job_failed)
        runner.sig_job_cancelled.connect(self._on_runner_job_cancelled)

    # -- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        top = OpenHeader(
            "Model",
            "open-model",
            "Open model…",
            on_open=self._on_open_clicked,
            on_recent=self._on_recent_menu_about_to_show,
        )
        self.open_button, self.recent_button, self.recent_menu = top.open_button, top.recent_button, top.recent_menu

        self.error = InlineMessage()
        self.progress = ProgressRow()
        self.progress.sig_cancel_clicked.connect(self._on_progress_cancel_clicked)
        self.drop_hint = QLabel(
            "Drop a model file here (skops, ONNX, pickle/joblib, XGBoost, LightGBM, CatBoost or PyTorch), "
            "or use Open model….\n"
            "Pickle-based files can run code: Probity scans them first and asks before loading."
        )
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for key, label in (
            ("file", "File"),
            ("format", "Format"),
            ("size", "Size"),
            ("sha256", "SHA-256"),
            ("task", "Task"),
            ("classes", "Classes"),
            ("trust", "Trust"),
        ):
            value = plain_label()  # names from the file: shown as written
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            if key == "sha256":
                value.setObjectName("mono")
            self.fields[key] = value
            form.addRow(f"{label}:", value)
        self.copy_sha_button = QToolButton()
        self.copy_sha_button.setText("Copy SHA-256")
        self.copy_sha_button.clicked.connect(self._on_copy_sha_clicked)
        form.addRow("", self.copy_sha_button)
        self.details_box = QGroupBox("Model file")
        self.details_box.setLayout(form)

        self.columns_hint = hint_label("")
        self.columns_list = QListWidget()
        columns_layout = QVBoxLayout()
        columns_layout.addWidget(self.columns_hint)
        columns_layout.addWidget(self.columns_list, 1)
        self.columns_box = QGroupBox("Expected input columns")
        self.columns_box.setLayout(columns_layout)

        self.scan_verdict = QLabel()
        self.scan_verdict.setTextFormat(Qt.TextFormat.RichText)  # every value in it is escaped
        self.scan_verdict.setWordWrap(True)
        self.scan_list = QListWidget()
        scan_layout = QVBoxLayout()
        scan_layout.addWidget(self.scan_verdict)
        scan_layout.addWidget(self.scan_list, 1)
        self.scan_box = QGroupBox(_SCAN_TITLE)
        self.scan_box.setLayout(scan_layout)

        # The same text `probity inspect-model` prints, so GUI and CLI users compare like with like.
        self.report_text = QPlainTextEdit()
        self.report_text.setReadOnly(True)
        self.report_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.report_text.setObjectName("monoText")
        report_layout = QVBoxLayout()
        report_layout.addWidget(self.report_text)
        self.report_box = QGroupBox("Inspection report (the file was read, not run)")
        self.report_box.setLayout(report_layout)

        body = QHBoxLayout()
        left = QVBoxLayout()
        self.details_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        left.addWidget(self.details_box)
        left.addWidget(self.scan_box, 1)
        left.addWidget(self.report_box, 1)
        body.addLayout(left, 3)
        body.addWidget(self.columns_box, 2)
        self.body = QWidget()
        self.body.setLayout(body)
        body.setContentsMargins(0, 0, 0, 0)
        self.body.hide()

        self.sidecar_prompt = SidecarPrompt()
        self.sidecar_prompt.sig_saved.connect(self._on_sidecar_prompt_saved)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.error)
        layout.addWidget(self.sidecar_prompt)
        layout.addWidget(self.progress)
        layout.addWidget(self.drop_hint, 1)
        layout.addWidget(self.body, 1)

    # -- public API ---------------------------------------------------------------------
    def open_dialog(self) -> None:
        fallback = self.recent.paths()[0].parent if self.recent.paths() else None
        start = last_folder(self._settings, "model", fallback)
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", start, MODEL_FILE_FILTER)
        if path:
            remember_folder(self._settings, "model", path)
            self.open_path(Path(path))

    def open_path(
        self, path: Path | str, *, trusted_sha256: tuple[str, ...] = (), allow_unreviewed: bool = False
    ) -> int:
        """Start inspecting and loading ``path``.

        ``trusted_sha256`` lists the file digests the user trusts; ``allow_unreviewed``
        is the second acknowledgement a trusted file naming unreviewed names needs.
        """
        path = Path(path)
        self.error.clear_message()
        if self.sidecar_prompt.path != path:
            self.sidecar_prompt.hide()
        self._job = self._runner.submit(
            JobSpec(
                kind="load-model",
                fn=tasks.intake_model,
                args=(path,),
                params={"trusted_sha256": trusted_sha256, "allow_unreviewed": allow_unreviewed},
                key="load-model",
                title=f"Open {path.name}",
            )
        )
        self.progress.start(f"Opening {path.name}…")
        return self._job

    @property
    def error_text(self) -> str:
        return self.error.text() if self.error.kind == "error" else ""

    @property
    def shown_file(self) -> str:
        """The file name the details box describes (the model in use once one is loaded)."""
        return self.fields["file"].text()

    # -- slots ----------------------------------------------------------------------------
    def _on_open_clicked(self) -> None:
        self.open_dialog()

    def _on_recent_menu_about_to_show(self) -> None:
        self.recent.fill_menu(self.recent_menu, self.open_path, self)

    def _on_copy_sha_clicked(self) -> None:
        sha = self.fields["sha256"].toolTip()
        if sha:
            QGuiApplication.clipboard().setText(sha)
            self.sig_status.emit("Copied the model file's SHA-256.")

    def _on_progress_cancel_clicked(self) -> None:
        if self._job is not None:
            self._runner.cancel(self._job)
            self.progress.cancelling()

    def _on_runner_job_progress(self, job_id: int, fraction: float, message: str) -> None:
        if job_id == self._job:
            self.progress.update_progress(fraction, message)

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        if job_id != self._job:
            return
        self._job = None
        self.progress.stop()
        assert isinstance(result, tasks.ModelIntake)
        if result.model is not None:
            self.sidecar_prompt.hide()
            self.recent.add(result.path)
            self._in_use = (result.path, result.inspection)
            self._show_inspection(result.path, result.inspection)
            self._show_model(result.model)
            self._session.set_model(result.model, result.inspection)
            self.sig_status.emit(f"Opened model {result.path.name}.")
            return
        from engine.errors import UntrustedModelError
        from engine.models.loading import UnreviewedModelError
        from engine.models.torch_files import TorchDeclarationNeeded

        # Not loaded: the details keep describing the model in use; only the scan shows the file tried.
        self._show_attempt(result.path, result.inspection)
        if isinstance(result.refusal, TorchDeclarationNeeded):
            features, classes = self._dataset_hints()
            self.sidecar_prompt.ask(result.path, str(result.refusal), features=features, classes=classes)
            self.error.show_warning(f"{result.path.name} was not loaded yet: describe the network below.")
        elif isinstance(result.refusal, UntrustedModelError):
            self._ask_trust(result.path, result.refusal, result.inspection)
        elif isinstance(result.refusal, UnreviewedModelError):
            # Trusted, but the loader met names nobody acknowledged: a refusal, said once, the model in use kept.
            names = ", ".join(result.refusal.unreviewed)
            self.error.show_error(
                f"{result.path.name} was not loaded: it names {names}, which Probity has not reviewed and which "
                f"were not acknowledged.{self._still_in_use()}"
            )
        else:
            # The refusal is one sentence already ("… is refused: …; Probity never loads such a file …").
            self.error.show_error(f"{result.refusal}{self._still_in_use()}")

    def _on_runner_job_failed(self, job_id: int, error: object) -> None:
        if job_id != self._job:
            return
        assert isinstance(error, JobError)
        self._job = None
        self.progress.stop()
        self.error.show_error(
            (error.message if error.is_user_error else "The model could not be opened because of an internal error.")
            + self._still_in_use()
        )

    def _on_runner_job_cancelled(self, job_id: int) -> None:
        if job_id == self._job:
            self._job = None
            self.progress.stop()

    def _on_sidecar_prompt_saved(self, path: Path) -> None:
        self.open_path(path)

    def _on_trust_dialog_finished(self, path: Path, sha256: str, accepted: bool, allow_unreviewed: bool) -> None:
        self.trust_dialog = None
        if accepted:
            self.open_path(path, trusted_sha256=(sha256,), allow_unreviewed=allow_unreviewed)
        else:
            if self._in_use is not None:
                self._show_inspection(*self._in_use)  # back to the model in use, scan included
                if self._session.model is not None:
                    self._show_model(self._session.model)
            self.error.show_warning(f"{path.name} was not loaded: you chose not to trust it.{self._still_in_use()}")

    def _on_session_model_changed(self, model: object) -> None:
        if model is None:
            self._in_use = None

    def _on_session_dataset_changed(self, _dataset: object) -> None:
        if self._session.model is not None:
            self._show_columns(self._session.model)

    # -- helpers -------------------------------------------------------------------------------
    def _dataset_hints(self) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """The open dataset's feature columns and its target's distinct values (sorted), to prefill the sidecar."""
        dataset, roles = self._session.dataset, self._session.roles
        if dataset is None or roles is None:
            return (), ()
        classes: tuple[Any, ...] = ()
        if roles.target is not None and roles.target in dataset.frame.columns:
            values = dataset.frame[roles.target].dropna().unique()
            if 1 < len(values) <= 50:
                try:
                    classes = tuple(sorted(v.item() if hasattr(v, "item") else v for v in values))
                except TypeError:
                    classes = ()
        return tuple(roles.features), classes

    def _still_in_use(self) -> str:
        """A sentence naming the model still in use after a file was not loaded, or ``""`` when none is."""
        model = self._session.model
        return f" The model in use is still {model.name}." if model is not None else ""

    def _show_attempt(self, path: Path, inspection: Any) -> None:
        """Show a file that was not loaded: in the details only while no model is in use; its scan always."""
        if self._in_use is None:
            self._show_inspection(path, inspection)
            self.details_box.setTitle(f"Not loaded: {path.name}")
        else:
            self.drop_hint.hide()
            self.body.show()
        self._show_scan(getattr(inspection, "scan", None), title=f"Safety scan of {path.name} (not loaded)")

    def _ask_trust(self, path: Path, refusal: Any, inspection: Any) -> None:
        imports = tuple(getattr(refusal, "imports", ()) or ())
        sha256 = getattr(refusal, "sha256", None) or getattr(inspection, "sha256", "")
        scan = getattr(inspection, "scan", None)
        dangerous = set(getattr(scan, "dangerous", ()) or ()) | set(getattr(refusal, "dangerous", ()) or ())
        unreviewed = tuple(getattr(inspection, "unreviewed", ()) or ())
        dialog = TrustDialog(path, sha256, imports, dangerous, self, unreviewed=unreviewed)
        dialog.finished.connect(
            lambda code: self._on_trust_dialog_finished(
                path, sha256, code == QDialog.DialogCode.Accepted, dialog.allow_unreviewed
            )
        )
        self.trust_dialog = dialog
        # open(), not exec(): no nested event loop, and the rest of the app keeps running.
        dialog.open()

    def _show_inspection(self, path: Path, inspection: Any) -> None:
        self.drop_hint.hide()
        self.body.show()
        self.details_box.setTitle(f"Model in use: {path.name}")
        self.fields["file"].setText(path.name)
        self.fields["file"].setToolTip(literal(str(path)))
        fmt = getattr(inspection, "format", None)
        self.fields["format"].setText(str(fmt) if fmt else "unknown")
        self.fields["size"].setText(human_size(getattr(inspection, "size_bytes", None)))
        sha = getattr(inspection, "sha256", None)
        self.fields["sha256"].setText(short_hash(sha))
        self.fields["sha256"].setToolTip(sha or "")
        for key in ("task", "classes", "trust"):
            self.fields[key].setText("not loaded")
        self.columns_list.clear()
        self.columns_hint.setText("Known once the model is loaded.")
        self._show_scan(getattr(inspection, "scan", None))
        to_text = getattr(inspection, "to_text", None)
        self.report_text.setPlainText(to_text() if callable(to_text) else "")

    def _show_scan(self, scan: Any, *, title: str = _SCAN_TITLE) -> None:
        self.scan_list.clear()
        if scan is None:
            self.scan_box.setVisible(False)
            return
        self.scan_box.setTitle(title)
        self.scan_box.setVisible(True)
        dangerous = set(getattr(scan, "dangerous", ()) or ())
        unreviewed = set(getattr(scan, "unreviewed", ()) or ()) - dangerous
        verdict = str(getattr(scan, "verdict", "") or "")
        imports = tuple(getattr(scan, "imports", ()) or ())
        notes = tuple(getattr(scan, "notes", ()) or ())
        colour = palette.ERROR if verdict == "refused" or dangerous else palette.WARNING
        headline = _VERDICTS.get(verdict, verdict.capitalize() or "Scanned")
        if verdict == "needs-trust" and unreviewed:
            headline = _UNREVIEWED_VERDICT
        summary = f"{len(imports)} import{'s' if len(imports) != 1 else ''}"
        if dangerous:
            summary += f", {len(dangerous)} able to run commands or code (red)"
        if unreviewed:
            summary += f", {len(unreviewed)} not reviewed by Probity (amber)"
        lines = [f"<span style='color:{colour}'><b>{escape(headline)}</b></span> · {summary}"]
        lines += [escape(note) for note in notes]
        self.scan_verdict.setText("<br>".join(lines))
        for name in imports:
            # Each name's status in words as well as colour: reviewed, unreviewed or dangerous.
            item = QListWidgetItem(name)  # item views draw plain text
            if name in dangerous:
                item.setForeground(QColor(palette.ERROR))
                item.setToolTip(_DANGEROUS_TIP)
                item.setData(SCAN_STATUS_ROLE, "dangerous")
            elif name in unreviewed:
                item.setForeground(QColor(palette.WARNING))
                item.setToolTip(_UNREVIEWED_TIP)
                item.setData(SCAN_STATUS_ROLE, "unreviewed")
            else:
                item.setToolTip("Reviewed by Probity: it builds data without running other code.")
                item.setData(SCAN_STATUS_ROLE, "reviewed")
            self.scan_list.addItem(item)

    def _show_model(self, model: Any) -> None:
        self.fields["task"].setText(getattr(model.task, "value", str(model.task)))
        classes = model.classes
        self.fields["classes"].setText(", ".join(map(str, classes)) if classes else "none (regression)")
        trust = model.trust
        if trust.required:
            text = f"granted by “{trust.granted_by}” for this file"
            if trust.imports:
                text += f" (covers {len(trust.imports)} imported name{'s' if len(trust.imports) != 1 else ''})"
            if trust.allow_unreviewed and trust.unreviewed:
                n = len(trust.unreviewed)
                text += f"; {n} unreviewed name{'s' if n != 1 else ''} acknowledged: {', '.join(trust.unreviewed)}"
            self.fields["trust"].setToolTip(literal("\n".join(trust.imports)))
        else:
            text = "not required for this format"
        self.fields["trust"].setText(text)
        self._show_columns(model)

    def _show_columns(self, model: Any) -> None:
        self.columns_list.clear()
        columns = model.input_columns
        if columns is None:
            n = getattr(model, "n_features_in", None)
            self.columns_hint.setText(
                "The file does not name its input columns"
                + (f" (it takes {n} values)" if n else "")
                + "; the dataset's feature columns are used, in order."
            )
            return
        dataset = self._session.dataset
        present = set(map(str, dataset.frame.columns)) if dataset is not None else None
        missing = [c for c in columns if present is not None and c not in present]
        for column in columns:
            item = QListWidgetItem(column)
            if column in missing:
                item.setForeground(QColor(palette.ERROR))
                item.setToolTip("The open dataset has no such column.")
            self.columns_list.addItem(item)
        text = f"{len(columns)} column{'s' if len(columns) != 1 else ''}, in the model's order."
        if dataset is not None:
            text += f" {len(missing)} missing from {dataset.name}." if missing else f" All present in {dataset.name}."
        self.columns_hint.setText(text)
