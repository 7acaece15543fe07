"""Sessions in the window: save and open ``.probity`` files, autosave, and recovery after a crash.

:class:`SessionKeeper` remembers every finished analysis result, saves the
session (files with their SHA-256, parse options, roles, form parameters,
results, reviewer notes) through ``engine.session_store`` on a worker, and
reopens one without recomputing anything: the data and model are loaded
again, the roles and parameters put back, and the saved results handed to
the panes through :meth:`gui.session.Session.restore_results`.  A data or
model file that changed or vanished since is named in :class:`SessionBanner`;
the results stay viewable.  A pickle that needs trust asks again (the
recorded decision covered that exact file only, and a session file is not
proof anyone reviewed it).

After every finished job the session is autosaved to the user data folder;
a clean exit writes a marker acknowledging that autosave, so at the next
start an autosave the marker does not acknowledge means Probity was killed,
and :meth:`SessionKeeper.offer_recovery` offers it back.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDialog, QFileDialog, QHBoxLayout, QToolButton, QWidget

from gui.runner import JobError, JobSpec
from gui.session import InputsIdentity
from gui.widgets import InlineMessage

if TYPE_CHECKING:
    from engine.jobs import JobContext
    from engine.session_store import FileCheck, SessionState
    from gui.dialogs.recover import RecoverSessionDialog
    from gui.main_window import MainWindow

__all__ = [
    "AUTOSAVE_NAME",
    "CLEAN_EXIT_NAME",
    "SESSION_FILE_FILTER",
    "OpenedSession",
    "SessionBanner",
    "SessionKeeper",
    "user_data_dir",
    "recovery_candidate",
    "describe_session_file",
    "show_restored_results",
]

_log = logging.getLogger("probity.gui.sessions")

AUTOSAVE_NAME = "autosave.probity"
CLEAN_EXIT_NAME = "clean-exit"
SESSION_FILE_FILTER = "Probity sessions (*.probity);;All files (*)"
# Explain jobs are named "explain-<method>"; a cluster job's SHAP values are kept beside its result.
EXPLAIN_PREFIX = "explain-"
ATTRIBUTIONS_SUFFIX = ".attributions"
EXPLAIN_PARAMETERS = "explain-pane"  # the Explain area's chosen method, seed and every method's parameters
# Jobs whose outcome is not part of a session: finishing them changes nothing worth autosaving.
_NOT_SESSION_KINDS = frozenset({"autosave", "save-session", "open-session", "export-report", "demo", "device"})


def user_data_dir() -> Path:
    """``$PROBITY_DATA_DIR``, else the platform's per-user application data folder."""
    env = os.environ.get("PROBITY_DATA_DIR")
    if env:
        return Path(env)
    from PySide6.QtCore import QStandardPaths

    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(location) if location else Path.home() / ".probity"


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def recovery_candidate(data_dir: Path) -> Path | None:
    """The autosave to offer back, or ``None`` after a clean exit (or with no autosave).

    The clean-exit marker records the modification time of the autosave it
    acknowledges; an autosave written after it (newer) was never acknowledged.
    """
    autosave = data_dir / AUTOSAVE_NAME
    saved = _mtime_ns(autosave)
    if saved is None:
        return None
    try:
        acknowledged = int((data_dir / CLEAN_EXIT_NAME).read_text(encoding="utf-8").strip() or -1)
    except (OSError, ValueError):
        return autosave  # no marker: the last run never exited cleanly
    return None if acknowledged == saved else autosave


def acknowledge(data_dir: Path) -> None:
    """Write the clean-exit marker for the current autosave (``-1`` when there is none)."""
    saved = _mtime_ns(data_dir / AUTOSAVE_NAME)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / CLEAN_EXIT_NAME).write_text(str(-1 if saved is None else saved), encoding="utf-8")
    except OSError:  # a read-only home folder must not break quitting
        _log.warning("could not write the clean-exit marker in %s", data_dir, exc_info=True)


def describe_session_file(path: Path) -> str:
    """One line about a session file (what it holds, when saved) without rebuilding its results."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep
        return "the file cannot be read."
    parts = []
    for key, what in (("data", "data"), ("model", "model")):
        entry = doc.get(key) if isinstance(doc, dict) else None
        if isinstance(entry, dict) and entry.get("path"):
            parts.append(f"{what} {Path(str(entry['path'])).name}")
    n_results = len(doc.get("results") or {}) if isinstance(doc, dict) else 0
    parts.append(f"{n_results} result{'s' if n_results != 1 else ''}")
    saved = str(doc.get("saved_at") or "") if isinstance(doc, dict) else ""
    when = f" (saved {saved.replace('T', ' ').replace('+00:00', ' UTC')})" if saved else ""
    return ", ".join(parts) + when + "."


@dataclass(frozen=True, eq=False)
class OpenedSession:
    """A session file read on a worker: its state and how its files compare now."""

    path: Path
    state: SessionState
    checks: tuple[FileCheck, ...]


def read_session_job(path: Path, *, ctx: JobContext) -> OpenedSession:
    """Read a session and re-hash its files (runs on a worker; no Qt)."""
    from engine.session_store import check_files, read_session

    ctx.progress(0.0, f"Reading {path.name}")
    state = read_session(path)
    ctx.check_cancelled()
    ctx.progress(0.3, "Checking the data and model files")
    checks = check_files(state, base=path.parent)
    ctx.progress(1.0, f"Read {path.name}")
    return OpenedSession(path=path, state=state, checks=checks)


def write_session_job(path: Path, state: SessionState, *, ctx: JobContext) -> Path:
    """Write a session file atomically (runs on a worker; results are frozen, so sharing them is safe)."""
    from engine.session_store import write_session

    ctx.progress(0.0, f"Saving {path.name}")
    write_session(path, state)
    ctx.progress(1.0, f"Saved {path.name}")
    return path


class SessionBanner(QWidget):
    """An amber strip above the tabs naming files that changed or vanished since a session was saved."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = InlineMessage()
        self.dismiss_button = QToolButton()
        self.dismiss_button.setText("Dismiss")
        self.dismiss_button.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 0)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.dismiss_button)
        self.hide()

    def show_messages(self, sentences: list[str]) -> None:
        sentences = [s for s in sentences if s]
        if not sentences:
            self.clear()
            return
        self.message.show_warning(" ".join(sentences))
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.message.text()

    def clear(self) -> None:
        self.message.clear_message()
        self.hide()


@dataclass
class _Restore:
    """An open session being put back: which loads are still awaited."""

    opened: OpenedSession
    data_job: int | None = None
    model_job: int | None = None
    awaiting_trust: bool = False
    data_loaded: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        return self.data_job is not None or self.model_job is not None or self.awaiting_trust


class SessionKeeper(QObject):
    """Keeps the window's session: finished results, notes, save/open, autosave and recovery.

    Signals
    -------
    sig_saved(Path): a session file was written (not autosaves).
    sig_opened(Path): a session was reopened and its results handed to the panes.
    sig_autosaved(Path): the autosave file was written.
    """

    sig_saved = Signal(object)
    sig_opened = Signal(object)
    sig_autosaved = Signal(object)

    def __init__(self, window: MainWindow, *, data_dir: Path | None = None) -> None:
        super().__init__(window)
        self._window = window
        self._session = window.session
        self._runner = window.runner
        self.data_dir = Path(data_dir) if data_dir is not None else user_data_dir()
        self.banner: SessionBanner = window.session_banner
        self.results: dict[str, Any] = {}
        self._notes = ""
        # The data and model open when the notes were written (None: no notes, or not known).
        self.notes_for: InputsIdentity | None = None
        self.path: Path | None = None  # the session file last saved or opened
        self._restore: _Restore | None = None
        self._save_jobs: dict[int, bool] = {}  # job id -> is an autosave
        self._open_job: int | None = None
        self._recovery_pending = False
        self._stopped = False
        self.recovery_dialog: RecoverSessionDialog | None = None
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.setInterval(0)  # coalesce the reports of one event-loop pass
        self._autosave_timer.timeout.connect(self.autosave)

        self._session.sig_dataset_changed.connect(self._on_session_inputs_changed)
        self._session.sig_roles_changed.connect(self._on_session_inputs_changed)
        self._session.sig_model_changed.connect(self._on_session_inputs_changed)
        self._runner.sig_job_queued.connect(self._on_runner_job_queued)
        self._runner.sig_job_finished.connect(self._on_runner_job_finished)
        self._runner.sig_job_failed.connect(self._on_runner_job_failed)
        self._runner.sig_job_cancelled.connect(self._on_runner_job_cancelled)

    # -- notes -----------------------------------------------------------------------------------
    @property
    def notes(self) -> str:
        """The reviewer notes; setting them records which data and model are open (``notes_for``)."""
        return self._notes

    @notes.setter
    def notes(self, text: str) -> None:
        if text == self._notes:
            return
        self._notes = text
        self.notes_for = self._session.identity() if text.strip() else None

    # -- paths ---------------------------------------------------------------------------------
    @property
    def autosave_path(self) -> Path:
        return self.data_dir / AUTOSAVE_NAME

    # -- save ------------------------------------------------------------------------------------
    def snapshot(self) -> SessionState:
        """The session now, as a frozen state (results are shared, not copied: they are frozen)."""
        from engine.results import utc_now
        from engine.schema import ReadOptions
        from engine.session_store import FileRecord, SessionState

        dataset, model = self._session.dataset, self._session.model
        return SessionState(
            data=None if dataset is None else FileRecord(path=Path(dataset.path).absolute(), sha256=dataset.sha256),
            read_options=dataset.options if dataset is not None else ReadOptions(),
            model=None if model is None or model.path is None
            else FileRecord(path=Path(model.path).absolute(), sha256=model.sha256),
            model_trust={} if model is None else model.trust.to_dict(),
            roles=self._session.roles,
            parameters=self._form_parameters(),
            results=dict(self.results),
            notes=self.notes,
            saved_at=utc_now(),
        )

    def save(self, path: Path | str) -> int:
        """Write the session to ``path`` (``.probity`` is added when missing); returns the job id."""
        from engine.session_store import SESSION_SUFFIX

        path = Path(path)
        if path.suffix.lower() != SESSION_SUFFIX:
            path = path.with_name(path.name + SESSION_SUFFIX)
        job = self._runner.submit(
            JobSpec(kind="save-session", fn=write_session_job, args=(path, self.snapshot()), key="save-session",
                    title=f"Save {path.name}")
        )
        self._save_jobs[job] = False
        return job

    def autosave(self) -> int | None:
        """Write the autosave now (skipped while a session is being restored or nothing is open)."""
        self._autosave_timer.stop()
        if self._stopped or self._restore is not None or self._recovery_pending or self._is_empty():
            return None
        job = self._runner.submit(
            JobSpec(kind="autosave", fn=write_session_job, args=(self.autosave_path, self.snapshot()),
                    key="autosave", title="Autosave", listed=False)
        )
        self._save_jobs[job] = True
        return job

    def save_dialog(self) -> None:
        start = str(self.path) if self.path is not None else str(Path.home() / "audit.probity")
        path, _ = QFileDialog.getSaveFileName(self._window, "Save session", start, SESSION_FILE_FILTER)
        if path:
            self.save(Path(path))

    # -- open -------------------------------------------------------------------------------------
    def open(self, path: Path | str) -> int:
        """Reopen a session file; results appear once its data and model are back. Returns the job id."""
        path = Path(path)
        self._open_job = self._runner.submit(
            JobSpec(kind="open-session", fn=read_session_job, args=(path,), key="open-session",
                    title=f"Open {path.name}")
        )
        return self._open_job

    def open_dialog(self) -> None:
        start = str(self.path.parent) if self.path is not None else ""
        path, _ = QFileDialog.getOpenFileName(self._window, "Open session", start, SESSION_FILE_FILTER)
        if path:
            self.open(Path(path))

    @property
    def is_restoring(self) -> bool:
        return self._open_job is not None or self._restore is not None

    # -- crash recovery -----------------------------------------------------------------------------
    def recovery_candidate(self) -> Path | None:
        return recovery_candidate(self.data_dir)

    def offer_recovery(self) -> RecoverSessionDialog | None:
        """Ask whether to reopen an autosave left by a run that did not exit cleanly; the dialog or ``None``."""
        candidate = self.recovery_candidate()
        if candidate is None:
            return None
        from gui.dialogs.recover import RecoverSessionDialog

        self._recovery_pending = True  # nothing may overwrite the autosave before the answer
        dialog = RecoverSessionDialog(candidate, describe_session_file(candidate), self._window)
        dialog.finished.connect(lambda code: self._on_recovery_dialog_finished(candidate, code))
        self.recovery_dialog = dialog
        dialog.open()
        return dialog

    def stop(self) -> None:
        """The window is closing: write no more autosaves."""
        self._stopped = True
        self._autosave_timer.stop()

    def mark_clean_exit(self) -> None:
        """Acknowledge the current autosave: the next start offers nothing.

        Not while a recovery question is unanswered: quitting without answering
        keeps the offer for the next start.
        """
        if not self._recovery_pending:
            acknowledge(self.data_dir)

    # -- slots ---------------------------------------------------------------------------------------
    def _on_recovery_dialog_finished(self, autosave: Path, code: int) -> None:
        self.recovery_dialog = None
        self._recovery_pending = False
        if code == QDialog.DialogCode.Accepted:
            self.open(autosave)  # read before any new autosave can replace it: the job is queued first
        else:
            acknowledge(self.data_dir)
            self._window.statusBar().showMessage("The autosaved session was discarded.", 6000)

    def _on_session_inputs_changed(self, _value: object) -> None:
        # Results of other inputs no longer describe what is open (the panes clear theirs too).
        if self._restore is None and self._open_job is None:
            self.results.clear()

    def _on_runner_job_queued(self, job_id: int) -> None:
        restore = self._restore
        if restore is None or not restore.awaiting_trust:
            return
        record = self._runner.record(job_id)
        if record is not None and record.spec.kind == "load-model":
            # The user trusted the model: its second load is the one to wait for.
            restore.awaiting_trust = False
            restore.model_job = job_id

    def _on_runner_job_finished(self, job_id: int, result: object) -> None:
        if job_id in self._save_jobs:
            self._on_saved(job_id, Path(str(result)))
            return
        if job_id == self._open_job:
            self._open_job = None
            assert isinstance(result, OpenedSession)
            self._start_restore(result)
            return
        restore = self._restore
        if restore is not None and job_id in (restore.data_job, restore.model_job):
            if job_id == restore.data_job:
                restore.data_job = None
                restore.data_loaded = True
            else:
                restore.model_job = None
                trust = getattr(self._window.model_pane, "trust_dialog", None)
                if trust is not None and getattr(result, "model", None) is None:
                    # The model pane asks about trust again; the restore waits for the answer.
                    restore.awaiting_trust = True
                    trust.finished.connect(self._on_trust_dialog_finished)
            self._finish_restore_if_ready()
            return
        record = self._runner.record(job_id)
        kind = record.spec.kind if record is not None else ""
        if record is not None:
            self._keep_results(kind, result)
        if record is not None and record.spec.listed and kind not in _NOT_SESSION_KINDS:
            self._autosave_timer.start()
        self._apply_settings_after_job()

    def _on_runner_job_failed(self, job_id: int, error: object) -> None:
        assert isinstance(error, JobError)
        if job_id in self._save_jobs:
            autosave = self._save_jobs.pop(job_id)
            if autosave:
                _log.warning("autosave failed: %s", error.message)
            else:
                self._window.statusBar().showMessage(error.message, 10000)
            return
        if job_id == self._open_job:
            self._open_job = None
            self._window.statusBar().showMessage(error.message, 10000)
            self.banner.show_messages([error.message])
            return
        self._on_restore_load_ended(job_id)

    def _on_runner_job_cancelled(self, job_id: int) -> None:
        self._save_jobs.pop(job_id, None)
        if job_id == self._open_job:
            self._open_job = None
            return
        self._on_restore_load_ended(job_id)

    def _on_trust_dialog_finished(self, _code: int) -> None:
        restore = self._restore
        if restore is None or not restore.awaiting_trust:
            return
        # Accepted: the pane queued a new load (seen in _on_runner_job_queued). Declined: no model.
        restore.awaiting_trust = False
        self._finish_restore_if_ready()

    # -- helpers ---------------------------------------------------------------------------------------
    def _on_saved(self, job_id: int, path: Path) -> None:
        if self._save_jobs.pop(job_id):
            self.sig_autosaved.emit(path)
            return
        self.path = path
        self._window.statusBar().showMessage(f"Saved the session to {path}.", 6000)
        self.sig_saved.emit(path)

    def _on_restore_load_ended(self, job_id: int) -> None:
        restore = self._restore
        if restore is None:
            return
        if job_id == restore.data_job:
            restore.data_job = None
        elif job_id == restore.model_job:
            restore.model_job = None
        else:
            return
        self._finish_restore_if_ready()

    def _start_restore(self, opened: OpenedSession) -> None:
        state = opened.state
        restore = _Restore(opened=opened)
        self._restore = restore
        restore.notes.extend(check.sentence() for check in opened.checks)
        restore.notes.extend(state.problems)
        found = {check.role: check.found for check in opened.checks}
        if found.get("data") is not None:
            roles = state.roles
            restore.data_job = self._window.dataset_pane.open_path(
                found["data"],
                target=roles.target if roles is not None else None,
                sensitive=roles.sensitive if roles is not None else (),
                options=state.read_options,
            )
        if found.get("model") is not None:
            restore.model_job = self._window.model_pane.open_path(found["model"])
        self.banner.show_messages(restore.notes)
        self._finish_restore_if_ready()

    def _finish_restore_if_ready(self) -> None:
        restore = self._restore
        if restore is None or restore.waiting:
            return
        from engine.errors import RoleError

        state = restore.opened.state
        dataset = self._session.dataset if restore.data_loaded else None
        if dataset is not None and state.roles is not None:
            from engine.schema import assign_roles

            roles = state.roles
            try:
                self._session.set_roles(assign_roles(
                    dataset, target=roles.target, features=roles.features, sensitive=roles.sensitive,
                    ignored=roles.ignored,
                ))
            except RoleError as exc:
                restore.notes.append(f"The saved column roles do not fit {dataset.name}: {exc}")
        self._put_form_parameters(state.parameters, state.results)
        self.results = dict(state.results)
        self._notes = state.notes
        # Written for the files the session was saved with (which may since have changed).
        self.notes_for = InputsIdentity(
            data_name=None if state.data is None else state.data.path.name,
            data_sha256=None if state.data is None else state.data.sha256,
            model_name=None if state.model is None else state.model.path.name,
            model_sha256=None if state.model is None else state.model.sha256,
        ) if state.notes.strip() else None
        self.path = restore.opened.path if restore.opened.path != self.autosave_path else None
        self._restore = None
        self.banner.show_messages(restore.notes)
        # No job runs for these: the panes draw the saved results as they are.
        self._session.restore_results(dict(state.results))
        self._window.statusBar().showMessage(
            f"Reopened {restore.opened.path.name}: {len(state.results)} saved "
            f"result{'s' if len(state.results) != 1 else ''}.", 8000)
        self.sig_opened.emit(restore.opened.path)
        self._autosave_timer.start()

    def _keep_results(self, kind: str, result: object) -> None:
        """Remember an analysis result under its job kind (and an explain outcome's parts)."""
        if _is_result(result):
            self.results[kind] = result
            return
        inner = getattr(result, "result", None)  # the Explain pane's outcome: result (+ SHAP values clustered)
        if _is_result(inner):
            self.results[kind] = inner
            attributions = getattr(result, "attributions", None)
            if _is_result(attributions):
                self.results[kind + ATTRIBUTIONS_SUFFIX] = attributions
            else:
                self.results.pop(kind + ATTRIBUTIONS_SUFFIX, None)

    def _form_parameters(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, panel in self._window.analyses_pane.panels.items():
            form = panel.form
            if form is not None:
                out[name] = {"params": form.values(), "seed": form.seed}
        explain = getattr(self._window, "explain_pane", None)
        if explain is not None and explain.forms:
            out[EXPLAIN_PARAMETERS] = {
                "method": explain.method_name,
                "seed": explain.seed_box.value(),
                "params": {name: {k: v for form in forms for k, v in form.values().items()}
                           for name, forms in explain.forms.items()},
                # The rows each shown result was computed on, and the window's selection.
                "rows": {name: dict(used) for name, used in explain.rows_used.items()},
                "selection": {
                    "rows": [int(r) for r in explain.selection.rows],
                    "current": explain.selection.current,
                },
            }
        return out

    def _put_form_parameters(self, parameters: Any, results: Mapping[str, Any] | None = None) -> None:
        self._window.analyses_pane.ensure_ready()
        panels = self._window.analyses_pane.panels
        explain = getattr(self._window, "explain_pane", None)
        saved_explain = parameters.get(EXPLAIN_PARAMETERS)
        if explain is not None and isinstance(saved_explain, dict):
            explain.ensure_ready()
            self._window.form_defaults.fill_methods(explain)  # the defaults first, so the saved values win
            for name, values in (saved_explain.get("params") or {}).items():
                for form in explain.forms.get(name, ()):
                    known = form.values()
                    form.set_values({k: v for k, v in values.items() if k in known})
            if isinstance(saved_explain.get("seed"), int):
                explain.seed_box.setValue(saved_explain["seed"])
            explain.rows_used = _rows_used(saved_explain.get("rows"), results)
            saved_selection = saved_explain.get("selection")
            if isinstance(saved_selection, dict) and self._session.dataset is not None:
                rows = [int(r) for r in saved_selection.get("rows") or () if isinstance(r, int)]
                current = saved_selection.get("current")
                explain.selection.set_rows(rows, current=current if isinstance(current, int) else None,
                                           source="session")
            explain.set_method(saved_explain["method"] if saved_explain.get("method") in explain.forms
                               else explain.method_name)
        for name, saved in parameters.items():
            panel = panels.get(name)
            if panel is None or not isinstance(saved, dict):
                continue
            panel.ensure_ready()
            known = panel.form.values()
            values = {k: v for k, v in (saved.get("params") or {}).items() if k in known}
            seed = saved.get("seed")
            panel.form.set_values(values, seed=int(seed) if isinstance(seed, int) else None)

    def _is_empty(self) -> bool:
        return self._session.dataset is None and self._session.model is None and not self.results

    def _apply_settings_after_job(self) -> None:
        apply = getattr(self._window, "apply_settings_to_process", None)
        if apply is not None:
            apply()


def show_restored_results(window: MainWindow, results: Any) -> None:
    """Show reopened results in the panes that draw them (the Analyses panels and the Explain area)."""
    explain_pane = getattr(window, "explain_pane", None)
    window.analyses_pane.ensure_ready()
    for name, result in results.items():
        panel = window.analyses_pane.panels.get(name)
        if panel is not None:
            panel.show_result(result)
            panel.status.setText("Reopened from the saved session (not recomputed).")
        elif name.startswith(EXPLAIN_PREFIX) and not name.endswith(ATTRIBUTIONS_SUFFIX) and explain_pane is not None:
            from gui.panes.explain import ExplainOutcome, explain_methods

            method = name[len(EXPLAIN_PREFIX):]
            if method not in explain_methods():
                continue
            explain_pane.ensure_ready()
            explain_pane.show_outcome(
                ExplainOutcome(method=method, result=result, attributions=results.get(name + ATTRIBUTIONS_SUFFIX))
            )
            explain_pane.status.setText("Reopened from the saved session (not recomputed).")


def _rows_used(saved: Any, results: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Method -> the rows spec its restored result was computed on.

    Saved specs are used as they are (the seed is restored with them); a result
    saved without one (an older session file) gets its own rows written out,
    so the form never disagrees with the result on screen.
    """
    from gui.panes.explain import explain_methods

    methods = explain_methods()
    out: dict[str, dict[str, Any]] = {}
    if isinstance(saved, dict):
        for name, used in saved.items():
            if name in methods and isinstance(used, dict) and isinstance(used.get("rows_spec"), str):
                out[name] = {"rows_spec": used["rows_spec"], "include_selected": bool(used.get("include_selected"))}
    for kind, result in (results or {}).items():
        name = kind[len(EXPLAIN_PREFIX):] if kind.startswith(EXPLAIN_PREFIX) else ""
        rows = getattr(result, "rows", None)
        if name in methods and methods[name].takes_rows and name not in out and rows is not None:
            out[name] = {"rows_spec": rows_spec_text(np.asarray(rows, dtype=np.int64)), "include_selected": False}
    return out


def rows_spec_text(rows: np.ndarray) -> str:
    """A row spec naming exactly ``rows`` (0-based), with runs written as ranges: ``0-9,17,40-41``."""
    from gui.selection import row_ranges

    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in row_ranges(np.unique(rows)))


def _is_result(value: object) -> bool:
    """Whether ``value`` is an analysis result (without importing the engine when it is not loaded)."""
    results = sys.modules.get("engine.results")
    return results is not None and isinstance(value, results.Result)
