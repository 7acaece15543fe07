"""Export report: the PDF, results.json and manifest.json, written as ``probity audit`` writes them.

The report is made from one of two things, chosen at the top of the dialog:

* **the results in this session** (the default once there are any): the
  analyses the auditor ran and looked at, Integrated Gradients and other
  methods the batch audit does not run included, each ticked or not.  Nothing is
  re-run; :func:`engine.record.session_record` makes the record and
  ``probity verify`` later re-runs each result from its recorded call.  The
  recorded command is that ``probity verify`` command line.
* **a full audit, run now**: ``engine.audit.run_audit`` on the open data and
  model with the dialog's computation settings; the recorded command is the
  ``probity audit`` command line that regenerates the same results.json.

The dialog collects what only a person can add (sections, auditor,
organisation, reviewer notes, output folder) and writes through the job runner
with progress and Cancel.

An export never carries one audit's words into another's folder: the folder
proposed is named after the open data and model (inside the folder the last
export went to), reviewer notes written while other data or another model was
open are taken out (and can be put back with one click), and files already in
the folder are replaced only after a confirmation that lists them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.audit_options import option_defaults
from gui.resources import icon
from gui.runner import JobError, JobSpec, RunnerLike
from gui.session import InputsIdentity, Session
from gui.settings import AppSettings, method_default
from gui.text import literal, plain_label
from gui.widgets import InlineMessage, ProgressRow, hint_label

if TYPE_CHECKING:
    from engine.audit import AuditRequest
    from engine.jobs import JobContext
    from engine.models.base import Model
    from engine.record import ReportOptions
    from engine.schema import Dataset

__all__ = [
    "ExportReportDialog",
    "ExportResult",
    "export_job",
    "export_session_job",
    "reportable_results",
    "verify_command",
    "audit_command",
    "proposed_folder",
    "DEFAULT_EXPLAIN_ROWS",
]

DEFAULT_EXPLAIN_ROWS: str = option_defaults()["explain_rows"]
_SETTINGS_PREFIX = "export/"


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote (role -> path: report, results, manifest) and the audit's warnings."""

    paths: Mapping[str, Path]
    warnings: tuple[str, ...] = ()


def audit_command(request: AuditRequest, out_dir: Path) -> list[str]:
    """The ``probity audit`` command line that regenerates ``request``'s results.json.

    Reviewer notes are not on it (they have no command-line form but a file);
    they are in results.json's ``provenance.report``.
    """
    request = request.resolved()  # the numbers a method's default stands for, as the results record them
    command = [
        "probity",
        "audit",
        "--data",
        str(request.data),
        "--model",
        str(request.model),
        "--target",
        request.target,
    ]
    if request.sensitive:
        command += ["--sensitive", *request.sensitive]
    if request.features is not None:
        command += ["--features", *request.features]
    command += ["--out", str(out_dir), "--seed", str(request.seed)]
    for sha in request.trusted_sha256:
        command += ["--trust-model", sha]
    if request.allow_unreviewed:
        command += ["--allow-unreviewed"]
    report = request.report
    if report is not None and report.sections is not None:
        command += ["--sections", *report.sections]
    if report is not None and report.auditor:
        command += ["--auditor", report.auditor]
    if report is not None and report.organisation:
        command += ["--organisation", report.organisation]
    if request.timestamp:
        command += ["--timestamp", request.timestamp]
    from engine.audit_options import AUDIT_OPTIONS

    for option in AUDIT_OPTIONS:  # the audit's own settings, as the command line spells them (declared once)
        value = getattr(request, option.field)
        if value is not None and value != "":
            command += [option.flag, str(value)]
    options = request.read_options
    if options.delimiter is not None:
        command += ["--delimiter", "tab" if options.delimiter == "\t" else options.delimiter]
    if options.encoding is not None:
        command += ["--encoding", options.encoding]
    if options.decimal is not None:
        command += ["--decimal", options.decimal]
    if options.header_row is not None:
        command += ["--header-row", str(options.header_row)]
    for marker in options.missing_values:
        command += ["--na", marker]
    if options.sheet is not None:
        command += ["--sheet", options.sheet]
    return command


def verify_command(model: Model, dataset: Dataset) -> list[str]:
    """The ``probity verify`` command line that re-runs every result of a session's report (run beside it)."""
    command = ["probity", "verify", "report.pdf", "--data", str(dataset.path)]
    command += ["--model", str(model.path if model.path is not None else model.name)]
    if model.trust.required and model.sha256:
        command += ["--trust-model", model.sha256]
    if model.trust.allow_unreviewed:
        command += ["--allow-unreviewed"]
    return command


@dataclass(frozen=True)
class Reportable:
    """A session result as the dialog lists it: its key in the report, and why it cannot go in (if so)."""

    key: str
    result: Any
    title: str
    problem: str = ""


def reportable_results(results: Mapping[str, Any], dataset: Dataset | None, model: Model | None) -> list[Reportable]:
    """The session's results under their report keys, each with the reason it cannot be reported, if any.

    Keys lose the Explain pane's job prefix (``explain-lime`` is ``lime``); a
    result from other inputs, or one that records no call (an older session's),
    is listed with its problem, not silently dropped.
    """
    from engine.registry import METHODS
    from gui.sessionfile import EXPLAIN_PREFIX

    out: list[Reportable] = []
    taken: set[str] = set()
    for kind, result in results.items():
        prov = getattr(result, "provenance", None)
        if prov is None:
            continue
        key = kind[len(EXPLAIN_PREFIX) :] if kind.startswith(EXPLAIN_PREFIX) else kind
        if key in taken:
            key = kind
        taken.add(key)
        method = METHODS.get(str(prov.method or ""))
        title = method.report_title if method is not None else str(prov.method or key)
        rows = getattr(result, "rows", None)  # the rows explained; a fairness result's rows() is its groups
        if rows is not None and not callable(rows) and len(rows):
            title += f" · {len(rows):,} row{'s' if len(rows) != 1 else ''}"
        problem = ""
        if dataset is None or model is None:
            problem = "the data or the model is not open"
        elif prov.data_sha256 not in (None, dataset.sha256) or prov.model_sha256 not in (None, model.sha256):
            problem = "computed on other data or another model"
        elif prov.call is None:
            problem = "from a session saved by an older Probity: run it again to report it"
        out.append(Reportable(key=key, result=result, title=title, problem=problem))
    return out


def export_session_job(
    results: Mapping[str, Any],
    *,
    dataset: Dataset,
    roles: Any,
    model: Model,
    seed: int,
    timestamp: str,
    report: Any,
    out_dir: Path,
    command: Sequence[str],
    force: bool = False,
    ctx: JobContext,
) -> ExportResult:
    """Write the report of the session's chosen results (on a worker; nothing is re-run)."""
    from engine.hardware import describe_hardware
    from engine.record import session_record, write_record_outputs

    ctx.progress(0.0, "Gathering the session's results")
    record = session_record(
        dataset=dataset,
        roles=roles,
        model=model,
        results=results,
        seed=seed,
        timestamp=timestamp,
        report=report,
        hardware=describe_hardware(model),
    )
    paths = write_record_outputs(record, out_dir, report, command=command, ctx=ctx.sub(0.1, 1.0), force=force)
    return ExportResult(paths=paths, warnings=record.warnings)


def _slug(name: str) -> str:
    """A file name's stem as a folder-name part: letters, digits, ``_``, ``.`` and ``-`` only."""
    stem = Path(name).stem if Path(name).suffix else name
    return re.sub(r"[^\w.-]+", "_", stem).strip("._-") or "unnamed"


def proposed_folder(parent: Path, data_name: str, model_name: str) -> Path:
    """``parent / "audit-<data>-<model>"``: the output folder proposed for an audit of these files."""
    return Path(parent) / f"audit-{_slug(data_name)}-{_slug(model_name)}"


def export_job(
    request: AuditRequest,
    *,
    dataset: Dataset,
    model: Model,
    out_dir: Path,
    command: Sequence[str],
    force: bool = False,
    ctx: JobContext,
) -> ExportResult:
    """Run the audit on the open data and model and write its three files (on a worker; no Qt).

    The roles are resolved from the request as the command line resolves them,
    and ``ctx`` carries ``request.seed`` at the root of its random streams, as
    the command line's does, so ``probity verify`` reproduces every number.
    ``force`` replaces files already in ``out_dir`` (the person confirmed it);
    without it they are refused with :class:`~engine.errors.OutputExistsError`.
    """
    from engine.audit import resolve_roles, run_audit, write_audit_outputs
    from engine.inputs import AuditInputs

    roles = resolve_roles(dataset, model, target=request.target, sensitive=request.sensitive, features=request.features)
    inputs = AuditInputs.from_dataset(dataset, roles, model)
    outcome = run_audit(request, ctx.sub(0.0, 0.9), inputs=inputs)
    paths = write_audit_outputs(outcome, out_dir, request.report, command=command, ctx=ctx.sub(0.9, 1.0), force=force)
    return ExportResult(paths=paths, warnings=outcome.warnings)


class ExportReportDialog(QDialog):
    """Choose what goes into the report, then write it; stays open to show progress and the outcome.

    Signals: ``sig_exported(ExportResult)`` once the files are written;
    ``sig_notes_changed(str)`` as the reviewer notes are edited.
    ``open_url`` opens the PDF when "open when done" is ticked and
    ``confirm_overwrite(folder, files)`` asks before files are replaced (both
    replaceable in tests).  ``notes_for`` names the data and model the notes
    were written for; by default the window's session keeper says.
    """

    sig_exported = Signal(object)
    sig_notes_changed = Signal(str)

    def __init__(
        self,
        *,
        session: Session,
        runner: RunnerLike,
        settings: QSettings,
        app_settings: AppSettings,
        notes: str = "",
        out_dir: Path | None = None,
        notes_for: InputsIdentity | None = None,
        results: Mapping[str, Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        from engine.report.inputs import SECTION_TITLES

        self._session = session
        self._runner = runner
        self._settings = settings
        self._job: int | None = None
        self.result: ExportResult | None = None
        self.open_url: Callable[[QUrl], Any] = QDesktopServices.openUrl
        self.confirm_overwrite: Callable[[Path, Sequence[Path]], bool] = self._ask_overwrite
        if notes_for is None and notes.strip():
            keeper = getattr(parent, "session_keeper", None)
            notes_for = getattr(keeper, "notes_for", None)
        self._notes_for: InputsIdentity | None = notes_for if notes.strip() else None
        self._set_aside_notes = ""
        self.setWindowTitle("Export report")
        self.resize(860, 640)

        # Sections, in report order.
        self.section_checks: dict[str, QCheckBox] = {}
        grid = QGridLayout()
        for i, (name, title) in enumerate(SECTION_TITLES.items()):
            check = QCheckBox(title)
            check.setChecked(True)
            check.setObjectName(f"section-{name}")
            self.section_checks[name] = check
            grid.addWidget(check, i, 0)
        all_button = QPushButton("All")
        none_button = QPushButton("None")
        all_button.clicked.connect(lambda: self._check_all(True))
        none_button.clicked.connect(lambda: self._check_all(False))
        pick = QHBoxLayout()
        pick.addWidget(all_button)
        pick.addWidget(none_button)
        pick.addStretch(1)
        sections_layout = QVBoxLayout()
        sections_layout.addLayout(grid)
        sections_layout.addLayout(pick)
        sections_layout.addWidget(
            hint_label("The title page is always included; a section without results is left out.")
        )
        sections_layout.addStretch(1)
        self.sections_box = QGroupBox("Sections")
        self.sections_box.setLayout(sections_layout)

        # Who, what, where.
        remembered = self._remembered
        self.auditor_edit = QLineEdit(remembered("auditor", ""))
        self.organisation_edit = QLineEdit(remembered("organisation", ""))
        self.notes_edit = QPlainTextEdit(notes)
        self.notes_edit.setPlaceholderText(
            "Findings, caveats and decisions, as they should appear under "
            "“Reviewer notes”. Blank lines separate paragraphs."
        )
        self.notes_edit.setMinimumHeight(110)
        self.notes_edit.textChanged.connect(self._on_notes_edit_text_changed)
        self.notes_message = InlineMessage()
        self.restore_notes_button = QPushButton("Put the notes back")
        self.restore_notes_button.setToolTip("Use the notes anyway, for the data and model open now.")
        self.restore_notes_button.clicked.connect(self._on_restore_notes_clicked)
        self.restore_notes_button.hide()
        notes_row = QHBoxLayout()
        notes_row.setContentsMargins(0, 0, 0, 0)
        notes_row.addWidget(self.notes_message, 1)
        notes_row.addWidget(self.restore_notes_button, 0, Qt.AlignmentFlag.AlignTop)
        self._proposed: Path | None = None
        if out_dir is None:
            self._proposed = self._proposal()
        self.folder_edit = QLineEdit(str(out_dir if out_dir is not None else self._proposed or ""))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._on_browse_clicked)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        self.open_when_done = QCheckBox("Open the report when done")
        self.open_when_done.setChecked(remembered("open_when_done", "true") == "true")
        about = QFormLayout()
        about.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        about.addRow("Auditor:", self.auditor_edit)
        about.addRow("Organisation:", self.organisation_edit)
        about.addRow("Reviewer notes:", self.notes_edit)
        about.addRow("", notes_row)
        about.addRow("Output folder:", folder_row)
        about.addRow("", self.open_when_done)

        # How much computation: from the settings, adjustable for this report.
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2_147_483_647)
        self.seed_box.setValue(app_settings.seed)
        compute = QFormLayout()
        compute.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        compute.addRow("Seed:", self.seed_box)
        # The audit's own settings, one field each, from the table that declares them (engine.audit_options).
        from engine.audit_options import AUDIT_OPTIONS

        starting = {
            # The settings' counts, else the methods' own defaults (their descriptors').
            "n_repeats": app_settings.permutation_repeats,
            "lime_samples": app_settings.lime_samples,
            "explain_rows": remembered("explain_rows", DEFAULT_EXPLAIN_ROWS),
        }
        self.option_fields: dict[str, QLineEdit | QSpinBox] = {}
        for option in AUDIT_OPTIONS:
            value = starting.get(option.field) or option.default
            if value is None and option.method_default is not None:
                value = method_default(*option.method_default)
            field: QLineEdit | QSpinBox
            if option.type is int:
                field = QSpinBox()
                field.setRange(option.minimum or 0, 100_000_000)
                field.setGroupSeparatorShown(True)
                field.setValue(int(value))
            else:
                field = QLineEdit("" if value is None else str(value))
                if value is None:
                    field.setPlaceholderText("the method's own")
            field.setToolTip(option.help[:1].upper() + option.help[1:] + ".")
            self.option_fields[option.field] = field
            compute.addRow(f"{option.label}:", field)
        self.rows_edit = self.option_fields["explain_rows"]
        self.repeats_box = self.option_fields["n_repeats"]
        self.lime_box = self.option_fields["lime_samples"]
        self.cluster_edit = self.option_fields["cluster_rows"]
        self.compute_box = QGroupBox("Full audit: what it computes")
        self.compute_box.setLayout(compute)

        # What the report is made from: the session's results, or a full audit run now.
        self.reportables = reportable_results(results or {}, session.dataset, session.model)
        usable = [r for r in self.reportables if not r.problem]
        self.session_radio = QRadioButton(
            f"The results in this session ({len(usable)}): what you ran and looked at; nothing is re-run"
        )
        self.audit_radio = QRadioButton("A full audit, run now on the open data and model")
        self.result_checks: dict[str, QCheckBox] = {}
        results_layout = QVBoxLayout()
        for item in self.reportables:
            check = QCheckBox(item.title + (f" — {item.problem}" if item.problem else ""))
            check.setObjectName(f"result-{item.key}")
            check.setChecked(not item.problem)
            check.setEnabled(not item.problem)
            if item.problem:
                check.setToolTip(f"Not reported: {item.problem}.")
            self.result_checks[item.key] = check
            results_layout.addWidget(check)
        if not self.reportables:
            results_layout.addWidget(hint_label("No results yet: run analyses in the Explain and Analyses areas."))
        self.results_box = QGroupBox("Results to report")
        self.results_box.setLayout(results_layout)
        source_layout = QVBoxLayout()
        source_layout.addWidget(self.session_radio)
        source_layout.addWidget(self.audit_radio)
        source_box = QGroupBox("Report on")
        source_box.setLayout(source_layout)
        self.session_radio.setEnabled(bool(usable))
        (self.session_radio if usable else self.audit_radio).setChecked(True)
        self.session_radio.toggled.connect(self._on_source_toggled)

        right = QVBoxLayout()
        right.addWidget(source_box)
        right.addWidget(self.results_box)
        right.addLayout(about)
        right.addWidget(self.compute_box)
        body = QHBoxLayout()
        body.addWidget(self.sections_box)
        body.addLayout(right, 1)

        self.progress = ProgressRow()
        self.progress.sig_cancel_clicked.connect(self._on_progress_cancel_clicked)
        self.error = InlineMessage()
        self.open_message = InlineMessage()  # the report could not be opened: where it is
        self.status = plain_label()  # names the folder and files written
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = QPushButton(icon("run"), "Export")
        self.export_button.setObjectName("primary")
        self.buttons.addButton(self.export_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(
            hint_label(
                "Writes report.pdf, results.json and manifest.json as “probity audit” does; “probity verify” "
                "re-runs every number of the report later."
            )
        )
        layout.addLayout(body, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.error)
        layout.addWidget(self.status)
        layout.addWidget(self.open_message)
        layout.addWidget(self.buttons)

        runner.sig_job_progress.connect(self._on_runner_job_progress)
        runner.sig_job_finished.connect(self._on_runner_job_finished)
        runner.sig_job_failed.connect(self._on_runner_job_failed)
        runner.sig_job_cancelled.connect(self._on_runner_job_cancelled)
        session.sig_dataset_changed.connect(self._on_session_inputs_changed)
        session.sig_model_changed.connect(self._on_session_inputs_changed)
        missing = session.missing_inputs()
        if missing:
            self.error.show_error(f"To export a report, {' and '.join(missing)}.")
            self.export_button.setEnabled(False)
        self._check_notes()
        self._on_source_toggled()

    # -- public API ---------------------------------------------------------------------------
    def sections(self) -> tuple[str, ...] | None:
        """The chosen sections; ``None`` when all are chosen (the command line's default)."""
        chosen = tuple(name for name, check in self.section_checks.items() if check.isChecked())
        return None if len(chosen) == len(self.section_checks) else chosen

    def notes(self) -> str:
        return self.notes_edit.toPlainText()

    @property
    def from_session(self) -> bool:
        """Whether the report is made from the session's results (not from a full audit run now)."""
        return self.session_radio.isChecked()

    def chosen_results(self) -> dict[str, Any]:
        """The session results ticked for the report, under their report keys."""
        return {
            item.key: item.result
            for item in self.reportables
            if not item.problem and self.result_checks[item.key].isChecked()
        }

    def audit_options(self) -> dict[str, Any]:
        """The value of each of the audit's own settings as the fields have them (blank: its default)."""
        from engine.audit_options import AUDIT_OPTIONS

        values: dict[str, Any] = {}
        for option in AUDIT_OPTIONS:
            field = self.option_fields[option.field]
            if isinstance(field, QSpinBox):
                values[option.field] = field.value()
            else:
                values[option.field] = field.text().strip() or option.default
            option.check(values[option.field])
        return values

    def report_options(self) -> ReportOptions:
        """Auditor, organisation, notes and sections as the dialog has them."""
        from engine.errors import ProbityError
        from engine.record import ReportOptions

        sections = self.sections()
        if sections == ():
            raise ProbityError("Choose at least one report section.")
        return ReportOptions(
            auditor=self.auditor_edit.text().strip(),
            organisation=self.organisation_edit.text().strip(),
            reviewer_notes=self.notes(),
            sections=sections,
        )

    def out_dir(self) -> Path:
        return Path(self.folder_edit.text().strip()).expanduser()

    def build_request(self) -> AuditRequest:
        """The audit request for the open inputs and the dialog's fields.

        Raises
        ------
        ProbityError
            When the inputs are incomplete or a field is unusable.
        """
        from engine.audit import AUDIT_ANALYSES, AuditRequest, ReportOptions
        from engine.errors import AnalysisError, ProbityError
        from engine.results import utc_now

        missing = self._session.missing_inputs()
        if missing:
            raise AnalysisError(f"To export a report, {' and '.join(missing)}.")
        dataset, roles, model = self._session.dataset, self._session.roles, self._session.model
        assert dataset is not None and roles is not None and roles.target is not None and model is not None
        if model.path is None:
            raise ProbityError("The open model was not loaded from a file, so the report cannot name one.")
        sections = self.sections()
        if sections == ():
            raise ProbityError("Choose at least one report section.")
        if not self.folder_edit.text().strip():
            raise ProbityError("Choose an output folder for the report.")
        return AuditRequest(
            data=dataset.path,
            model=model.path,
            target=roles.target,
            sensitive=tuple(roles.sensitive),
            features=tuple(roles.features),
            seed=self.seed_box.value(),
            trusted_sha256=(model.sha256,) if model.trust.required and model.sha256 else (),
            # The trust dialog's second acknowledgement, so that the recorded command loads the model too.
            allow_unreviewed=model.trust.allow_unreviewed,
            read_options=dataset.options,
            analyses=AUDIT_ANALYSES,
            timestamp=utc_now(),
            **self.audit_options(),
            report=ReportOptions(
                auditor=self.auditor_edit.text().strip(),
                organisation=self.organisation_edit.text().strip(),
                reviewer_notes=self.notes(),
                sections=sections,
            ),
        )

    def export(self) -> int | None:
        """Start the export; returns the job id, or ``None`` when a problem is shown instead."""
        from engine.errors import ProbityError

        self.error.clear_message()
        if self.from_session:
            return self._export_session()
        try:
            request = self.build_request()
        except ProbityError as exc:
            self.error.show_error(str(exc))
            return None
        out_dir = self.out_dir()
        return self._submit(
            out_dir,
            export_job,
            (request,),
            {
                "dataset": self._session.dataset,
                "model": self._session.model,
                "command": audit_command(request, out_dir),
            },
            seed=request.seed,
            message="Running the audit…",
        )

    def _export_session(self) -> int | None:
        """Start writing the report of the session's chosen results."""
        from engine.errors import ProbityError
        from engine.results import utc_now

        try:
            missing = self._session.missing_inputs()
            if missing:
                raise ProbityError(f"To export a report, {' and '.join(missing)}.")
            chosen = self.chosen_results()
            if not chosen:
                raise ProbityError("Tick at least one result to report, or choose a full audit.")
            report = self.report_options()
            if not self.folder_edit.text().strip():
                raise ProbityError("Choose an output folder for the report.")
        except ProbityError as exc:
            self.error.show_error(str(exc))
            return None
        dataset, model = self._session.dataset, self._session.model
        assert dataset is not None and model is not None
        params = {
            "dataset": dataset,
            "roles": self._session.roles,
            "model": model,
            "seed": self.seed_box.value(),
            "timestamp": utc_now(),
            "report": report,
            "command": verify_command(model, dataset),
        }
        return self._submit(
            self.out_dir(),
            export_session_job,
            (chosen,),
            params,
            seed=self.seed_box.value(),
            message="Writing the report of the session's results…",
        )

    def _submit(
        self,
        out_dir: Path,
        fn: Callable[..., ExportResult],
        args: tuple[Any, ...],
        params: dict[str, Any],
        *,
        seed: int,
        message: str,
    ) -> int | None:
        """Confirm replacing files already there, then run ``fn`` on the runner; the job id, or ``None``."""
        from engine.audit import existing_outputs

        existing = existing_outputs(out_dir, report=True)
        if existing and not self.confirm_overwrite(out_dir, existing):
            self.status.setText(f"Nothing was written: {out_dir} keeps its files. Choose another folder to export.")
            return None
        self._remember()
        self._job = self._runner.submit(
            JobSpec(
                kind="export-report",
                fn=fn,
                args=args,
                params={**params, "out_dir": out_dir, "force": bool(existing)},
                key="export-report",
                title=f"Export report · {out_dir.name}",
                seed=seed,
            )
        )
        self.result = None
        self.status.setText("")
        self.open_message.clear_message()
        self.export_button.setEnabled(False)
        self.progress.start(message)
        return self._job

    def cancel(self) -> None:
        if self._job is not None:
            self._runner.cancel(self._job)
            self.progress.cancelling()

    @property
    def job_id(self) -> int | None:
        return self._job

    # -- slots ----------------------------------------------------------------------------------
    def _on_export_clicked(self) -> None:
        self.export()

    def _on_progress_cancel_clicked(self) -> None:
        self.cancel()

    def _on_source_toggled(self, _checked: bool = False) -> None:
        self.results_box.setVisible(self.from_session)
        self.compute_box.setVisible(not self.from_session)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder for the report", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def _on_notes_edit_text_changed(self) -> None:
        # Notes typed now are for the data and model open now.
        self._notes_for = self._session.identity() if self.notes().strip() else None
        if self.notes().strip():
            self._set_aside_notes = ""
            self.notes_message.clear_message()
            self.restore_notes_button.hide()
        self.sig_notes_changed.emit(self.notes())

    def _on_restore_notes_clicked(self) -> None:
        text, self._set_aside_notes = self._set_aside_notes, ""
        self.notes_edit.setPlainText(text)
        self.notes_message.clear_message()
        self.restore_notes_button.hide()

    def _on_session_inputs_changed(self, _value: object) -> None:
        if not self.isVisible():
            return  # a closed dialog no longer speaks for the session; the next one checks afresh
        # A folder the person did not choose follows the inputs; one they typed stays.
        untouched = (
            not self.folder_edit.text().strip()
            if self._proposed is None
            else self.out_dir() == self._proposed.expanduser()
        )
        if untouched:
            self._proposed = self._proposal()
            self.folder_edit.setText("" if self._proposed is None else str(self._proposed))
        self._check_notes()

    def _on_runner_job_progress(self, job_id: int, fraction: float, message: str) -> None:
        if job_id == self._job:
            self.progress.update_progress(fraction, message)

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        if job_id != self._job:
            return
        assert isinstance(result, ExportResult)
        self._job = None
        self.progress.stop()
        self.export_button.setEnabled(True)
        self.result = result
        folder = result.paths["results"].parent
        self.status.setText(f"Wrote {', '.join(p.name for p in result.paths.values())} to {folder}.")
        if result.warnings:
            self.error.show_warning("\n".join(result.warnings))
        if self.open_when_done.isChecked() and "report" in result.paths:
            report = result.paths["report"]
            # openUrl answers False where no desktop launcher or PDF viewer exists: say so, and where the file is.
            if self.open_url(QUrl.fromLocalFile(str(report))) is False:
                self.open_message.show_warning(
                    f"The report could not be opened because no application for PDF files was found; it is at {report}."
                )
        self.sig_exported.emit(result)

    def _on_runner_job_failed(self, job_id: int, error: object) -> None:
        if job_id != self._job:
            return
        assert isinstance(error, JobError)
        self._job = None
        self.progress.stop()
        self.export_button.setEnabled(True)
        self.error.show_error(
            error.message
            if error.is_user_error
            else "The report could not be written because of an internal error; the details are in the log."
        )

    def _on_runner_job_cancelled(self, job_id: int) -> None:
        if job_id != self._job:
            return
        self._job = None
        self.progress.stop()
        self.export_button.setEnabled(True)
        self.status.setText("Cancelled.")

    # -- helpers ---------------------------------------------------------------------------------------
    def _proposal(self) -> Path | None:
        """``audit-<data>-<model>`` inside the folder the last export went to (the home folder at first)."""
        dataset, model = self._session.dataset, self._session.model
        if dataset is None or model is None:
            return None
        last = self._remembered("folder", "")
        parent = Path(last).expanduser().parent if last.strip() else Path.home()
        identity = self._session.identity()
        return proposed_folder(parent, identity.data_name or "data", identity.model_name or "model")

    def _check_notes(self) -> None:
        """Take out notes written for other data or another model, saying for which, with a way back."""
        written_for = self._notes_for
        if not self.notes().strip() or written_for is None:
            return
        now = self._session.identity()
        if written_for.same_inputs(now):
            return
        text = self.notes()
        self.notes_edit.setPlainText("")  # emits sig_notes_changed(""): the session's notes go too
        # Said again once the event loop runs: a dialog being built is not connected yet.
        QTimer.singleShot(0, self, lambda: self.sig_notes_changed.emit(self.notes()))
        self._set_aside_notes = text
        self._notes_for = None
        self.notes_message.show_warning(
            f"The reviewer notes were written for {written_for.describe()}, not for the {now.describe()} open "
            "now, so they were taken out of this report."
        )
        self.restore_notes_button.show()

    def _ask_overwrite(self, folder: Path, existing: Sequence[Path]) -> bool:
        listed = "\n".join(f"  • {Path(p).name}" for p in existing)
        answer = QMessageBox.warning(
            self,
            "Replace the files?",
            literal(
                f"{folder} already holds files of an earlier export:\n\n{listed}\n\n"
                "Replace them with this report? The earlier files cannot be recovered."
            ),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _check_all(self, checked: bool) -> None:
        for check in self.section_checks.values():
            check.setChecked(checked)

    def _remembered(self, key: str, default: str) -> str:
        value = self._settings.value(_SETTINGS_PREFIX + key, default)
        return default if value is None else str(value)

    def _remember(self) -> None:
        for key, value in (
            ("explain_rows", self.rows_edit.text().strip()),
            ("auditor", self.auditor_edit.text().strip()),
            ("organisation", self.organisation_edit.text().strip()),
            ("folder", str(self.out_dir())),
            ("open_when_done", "true" if self.open_when_done.isChecked() else "false"),
        ):
            self._settings.setValue(_SETTINGS_PREFIX + key, value)
        self._settings.sync()
