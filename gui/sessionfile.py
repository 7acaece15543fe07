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

The keeper knows the window only as a :class:`SessionHost` (the session, the
runner, the banner, opening data and a model, the status line) and the panes
only as :class:`SessionPane` objects that save and restore their own part of
the session's ``parameters``; it never imports ``gui.main_window``.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDialog, QFileDialog, QHBoxLayout, QToolButton, QWidget

from gui.runner import JobError, JobRunner, JobSpec
from gui.session import InputsIdentity, Session
from gui.widgets import InlineMessage

if TYPE_CHECKING:
    from engine.jobs import JobContext
    from engine.schema import ReadOptions
    from engine.session_store import FileCheck, SessionState
    from gui.dialogs.recover import RecoverSessionDialog

__all__ = [
    "AUTOSAVE_NAME",
    "CLEAN_EXIT_NAME",
    "SESSION_FILE_FILTER",
    "OpenedSession",
    "SessionBanner",
    "SessionHost",
    "SessionKeeper",
    "SessionPane",
    "user_data_dir",
    "recovery_candidate",
    "describe_session_file",
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


class SessionPane(Protocol):
    """A pane that keeps its own part of a session: its forms, seeds and choices, as plain JSON values.

    :meth:`save_state` returns entries of the session's ``parameters`` (each
    pane its own keys); :meth:`restore_state` puts them back from a reopened
    session, ignoring entries that are not its own and values it no longer
    knows, with the session's saved ``results`` at hand.
    """

    def save_state(self) -> dict[str, dict[str, Any]]: ...

    def restore_state(self, parameters: Mapping[str, Any], results: Mapping[str, Any]) -> None: ...


class SessionHost(Protocol):
    """What the session keeper needs from the window that hosts it, and nothing more."""

    @property
    def session(self) -> Session: ...

    @property
    def runner(self) -> JobRunner: ...

    @property
    def session_banner(self) -> SessionBanner: ...

    def session_panes(self) -> Sequence[SessionPane]:
        """The panes whose state a session keeps, in the order they save and restore it."""
        ...

    def open_data(
        self,
        path: Path | str,
        *,
        target: str | None = None,
        sensitive: Sequence[str] = (),
        options: ReadOptions | None = None,
    ) -> int:
        """Start loading a data file (with its roles and read options); the job id."""
        ...

    def open_model(self, path: Path | str) -> int:
        """Start loading a model file; the job id."""
        ...

    def model_trust_dialog(self) -> QDialog | None:
        """The trust question the model pane is asking now, if any."""
        ...

    def show_status(self, text: str, timeout_ms: int) -> None:
        """Say ``text`` in the status line for ``timeout_ms`` milliseconds."""
        ...

    def apply_settings_to_process(self) -> None:
        """Apply the app's settings to this process again (after a job may have changed them)."""
        ...


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

    def __init__(self, host: SessionHost, *, parent: QWidget | None = None, data_dir: Path | None = None) -> None:
        """``parent`` owns the keeper and its dialogs (the window); ``host`` is what the keeper works through."""
        super().__init__(parent)
        self._host = host
        self._parent_widget = parent
        self._session = host.session
        self._runner = host.runner
        self.data_dir = Path(data_dir) if data_dir is not None else user_data_dir()
        self.banner: SessionBanner = host.session_banner
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
            model=None
            if model is None or model.path is None
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
            JobSpec(
                kind="save-session",
                fn=write_session_job,
                args=(path, self.snapshot()),
                key="save-session",
                title=f"Save {path.name}",
            )
        )
        self._save_jobs[job] = False
        return job

    def autosave(self) -> int | None:
        """Write the autosave now (skipped while a session is being restored or nothing is open)."""
        self._autosave_timer.stop()
        if self._stopped or self._restore is not None or self._recovery_pending or self._is_empty():
            return None
        job = self._runner.submit(
            JobSpec(
                kind="autosave",
                fn=write_session_job,
                args=(self.autosave_path, self.snapshot()),
                key="autosave",
                title="Autosave",
                listed=False,
            )
        )
        self._save_jobs[job] = True
        return job

    def save_dialog(self) -> None:
        start = str(self.path) if self.path is not None else str(Path.home() / "audit.probity")
        path, _ = QFileDialog.getSaveFileName(self._parent_widget, "Save session", start, SESSION_FILE_FILTER)
        if path:
            self.save(Path(path))

    # -- open -------------------------------------------------------------------------------------
    def open(self, path: Path | str) -> int:
        """Reopen a session file; results appear once its data and model are back. Returns the job id."""
        path = Path(path)
        self._open_job = self._runner.submit(
            JobSpec(
                kind="open-session", fn=read_session_job, args=(path,), key="open-session", title=f"Open {path.name}"
            )
        )
        return self._open_job

    def open_dialog(self) -> None:
        start = str(self.path.parent) if self.path is not None else ""
        path, _ = QFileDialog.getOpenFileName(self._parent_widget, "Open session", start, SESSION_FILE_FILTER)
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
        dialog = RecoverSessionDialog(candidate, describe_session_file(candidate), self._parent_widget)
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
            self._host.show_status("The autosaved session was discarded.", 6000)

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
                trust = self._host.model_trust_dialog()
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
                self._host.show_status(error.message, 10000)
            return
        if job_id == self._open_job:
            self._open_job = None
            self._host.show_status(error.message, 10000)
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
        self._host.show_status(f"Saved the session to {path}.", 6000)
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
            restore.data_job = self._host.open_data(
                found["data"],
                target=roles.target if roles is not None else None,
                sensitive=roles.sensitive if roles is not None else (),
                options=state.read_options,
            )
        if found.get("model") is not None:
            restore.model_job = self._host.open_model(found["model"])
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
                self._session.set_roles(
                    assign_roles(
                        dataset,
                        target=roles.target,
                        features=roles.features,
                        sensitive=roles.sensitive,
                        ignored=roles.ignored,
                    )
                )
            except RoleError as exc:
                restore.notes.append(f"The saved column roles do not fit {dataset.name}: {exc}")
        self._put_form_parameters(state.parameters, state.results)
        self.results = dict(state.results)
        self._notes = state.notes
        # Written for the files the session was saved with (which may since have changed).
        self.notes_for = (
            InputsIdentity(
                data_name=None if state.data is None else state.data.path.name,
                data_sha256=None if state.data is None else state.data.sha256,
                model_name=None if state.model is None else state.model.path.name,
                model_sha256=None if state.model is None else state.model.sha256,
            )
            if state.notes.strip()
            else None
        )
        self.path = restore.opened.path if restore.opened.path != self.autosave_path else None
        self._restore = None
        self.banner.show_messages(restore.notes)
        # No job runs for these: the panes draw the saved results as they are.
        self._session.restore_results(dict(state.results))
        self._host.show_status(
            f"Reopened {restore.opened.path.name}: {len(state.results)} saved "
            f"result{'s' if len(state.results) != 1 else ''}.",
            8000,
        )
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
        """Every pane's own state, merged into the session's ``parameters``."""
        out: dict[str, dict[str, Any]] = {}
        for pane in self._host.session_panes():
            out.update(pane.save_state())
        return out

    def _put_form_parameters(self, parameters: Mapping[str, Any], results: Mapping[str, Any]) -> None:
        """Hand the saved ``parameters`` to every pane, which takes back its own."""
        for pane in self._host.session_panes():
            pane.restore_state(parameters, results)

    def _is_empty(self) -> bool:
        return self._session.dataset is None and self._session.model is None and not self.results

    def _apply_settings_after_job(self) -> None:
        self._host.apply_settings_to_process()


def _is_result(value: object) -> bool:
    """Whether ``value`` is an analysis result (without importing the engine when it is not loaded)."""
    results = sys.modules.get("engine.results")
    return results is not None and isinstance(value, results.Result)
