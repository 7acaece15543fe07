"""Unexpected errors: written to the log file and shown in a dialog, never as a console traceback.

:class:`CrashReporter` installs ``sys.excepthook`` and ``threading.excepthook``.
Both may run on any thread; the report hops to the GUI thread by a queued
signal and opens an :class:`ErrorDialog` whose traceback sits behind a
"Details" button, selectable and copyable for a bug report.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.resources import icon
from gui.text import plain_label

__all__ = ["ErrorDialog", "CrashReporter", "write_crash_log"]

_log = logging.getLogger("probity.gui")


def write_crash_log(exc: BaseException, *, context: str) -> Path | None:
    """Append ``exc`` and its traceback to the user's log file; ``None`` if that failed."""
    try:
        from engine.logs import log_exception

        return log_exception(exc, context=context)
    except Exception:  # a broken log folder must not hide the original error
        _log.debug("could not write the crash log", exc_info=True)
        return None


class ErrorDialog(QDialog):
    """A plain message, where the log is, and the traceback behind a "Details" button."""

    def __init__(
        self,
        title: str,
        message: str,
        details: str,
        *,
        log_path: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(520)
        self.details_text = details

        glyph = QLabel()
        glyph.setPixmap(icon("error").pixmap(32, 32))
        glyph.setAlignment(Qt.AlignmentFlag.AlignTop)
        text = plain_label(message)  # error messages quote file and column names
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where = plain_label(
            f"The details were written to {log_path}." if log_path is not None else "The details could not be logged."
        )
        where.setObjectName("hint")
        where.setWordWrap(True)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.details = QPlainTextEdit(details)
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setMinimumHeight(220)
        self.details.setVisible(False)

        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(self._on_details_toggled)
        self.copy_button = QPushButton("Copy details")
        self.copy_button.clicked.connect(self._on_copy_clicked)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.details_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        top = QHBoxLayout()
        top.addWidget(glyph)
        words = QVBoxLayout()
        words.addWidget(text)
        words.addWidget(where)
        top.addLayout(words, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)

    def _on_details_toggled(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.adjustSize()

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.details_text)


class CrashReporter(QObject):
    """Routes uncaught exceptions from any thread to the log and a dialog.

    Only one dialog is open at a time; errors arriving while it is open are
    logged and counted, so a failing paint handler cannot bury the user in
    dialogs.
    """

    sig_report = Signal(str, str, object)  # message, details, log path

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dialog: ErrorDialog | None = None
        self.suppressed = 0
        self._previous: tuple[Any, Any] | None = None
        self.sig_report.connect(self._on_report, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self.on_exception
        threading.excepthook = self._on_thread_exception

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def on_exception(
        self, etype: type[BaseException], value: BaseException, tb: TracebackType | None, *, context: str = "uncaught"
    ) -> None:
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        if value.__traceback__ is None and tb is not None:
            value = value.with_traceback(tb)
        path = write_crash_log(value, context=context)
        details = "".join(traceback.format_exception(etype, value, tb))
        message = f"{etype.__name__}: {value}" if str(value) else etype.__name__
        self.sig_report.emit(message, details, path)

    def _on_thread_exception(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        self.on_exception(args.exc_type, args.exc_value, args.exc_traceback, context=f"thread {name}")

    def show_error(self, message: str, details: str, log_path: Path | None = None) -> None:
        """Show an unexpected error (already logged) in the dialog."""
        self._on_report(message, details, log_path)

    @Slot(str, str, object)
    def _on_report(self, message: str, details: str, log_path: object) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.suppressed += 1
            return
        parent = QApplication.activeWindow()
        text = (
            "Something went wrong inside Probity. Your data and files are unchanged; "
            f"you can keep working.\n\n{message}"
        )
        self.dialog = ErrorDialog(
            "Unexpected error", text, details, log_path=log_path if isinstance(log_path, Path) else None, parent=parent
        )
        self.dialog.show()
