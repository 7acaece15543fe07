"""Small widgets the panes share: inline messages, a progress row, drop handling, file sizes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject, Qt, Signal
from PySide6.QtGui import QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QProgressBar, QPushButton, QSizePolicy, QToolButton, QWidget

from gui.resources import icon

__all__ = [
    "InlineMessage",
    "ProgressRow",
    "pane_title",
    "hint_label",
    "local_files",
    "accept_file_drops",
    "human_size",
    "short_hash",
]


class InlineMessage(QLabel):
    """A red (error) or amber (warning) sentence inside a pane; hidden when empty.

    Errors a user can fix are shown here, next to what caused them, and the
    rest of the app stays usable (no modal dialog).  The text is plain: the
    sentences quote file, column and session names, which must never become markup.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.hide()

    def show_error(self, text: str) -> None:
        self._show(text, "errorLabel")

    def show_warning(self, text: str) -> None:
        self._show(text, "warningLabel")

    def clear_message(self) -> None:
        self.setText("")
        self.hide()

    @property
    def kind(self) -> str:
        """``"error"``, ``"warning"`` or ``""`` when hidden."""
        if self.isHidden() or not self.text():
            return ""
        return "error" if self.objectName() == "errorLabel" else "warning"

    def _show(self, text: str, name: str) -> None:
        self.setObjectName(name)
        # Re-polish so the stylesheet rule for the new object name applies.
        self.style().unpolish(self)
        self.style().polish(self)
        self.setText(text)
        self.show()


class ProgressRow(QWidget):
    """Progress bar, message and a Cancel button for the job a pane is waiting on."""

    sig_cancel_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(220)
        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # "Opening <file name>…"
        self.message.setObjectName("hint")
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.clicked.connect(self.sig_cancel_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.cancel_button)
        self.hide()

    def start(self, message: str) -> None:
        self.bar.setValue(0)
        self.message.setText(message)
        self.cancel_button.setEnabled(True)
        self.show()

    def update_progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(round(1000 * min(max(fraction, 0.0), 1.0))))
        if message:
            self.message.setText(message)

    def cancelling(self) -> None:
        self.message.setText("Cancelling…")
        self.cancel_button.setEnabled(False)

    def stop(self) -> None:
        self.hide()


def pane_title(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("paneTitle")
    return label


def hint_label(text: str) -> QLabel:
    """A grey explanatory line, plain text (hints name files and columns)."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


def local_files(mime: QMimeData) -> list[Path]:
    """The local files named by a drag's data (URLs that are not files are skipped)."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class _DropFilter(QObject):
    def __init__(self, widget: QWidget, on_drop: Callable[[Path], None], suffixes: Sequence[str] | None) -> None:
        super().__init__(widget)
        self._on_drop = on_drop
        self._suffixes = None if suffixes is None else tuple(s.lower() for s in suffixes)

    def _wanted(self, mime: QMimeData) -> list[Path]:
        files = local_files(mime)
        if self._suffixes is not None:
            files = [f for f in files if f.suffix.lower() in self._suffixes]
        return files

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            assert isinstance(event, QDragMoveEvent)  # QDragEnterEvent derives from it
            if self._wanted(event.mimeData()):
                event.acceptProposedAction()
            else:
                event.ignore()
            return True
        if kind == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            files = self._wanted(event.mimeData())
            if files:
                event.acceptProposedAction()
                self._on_drop(files[0])
            else:
                event.ignore()
            return True
        return False


def accept_file_drops(
    widget: QWidget, on_drop: Callable[[Path], None], *, suffixes: Sequence[str] | None = None
) -> None:
    """Let ``widget`` take a dropped file and hand the first one to ``on_drop``.

    ``suffixes`` (lower case, with the dot) limit what the drag cursor accepts;
    ``None`` accepts any file and leaves judging it to the loader, whose error
    message is more useful than a refused drop.
    """
    widget.setAcceptDrops(True)
    widget.installEventFilter(_DropFilter(widget, on_drop, suffixes))


def human_size(n_bytes: int | None) -> str:
    """``1536`` -> ``"1.5 KiB (1,536 bytes)"``."""
    if n_bytes is None:
        return "unknown"
    value = float(n_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            if unit == "bytes":
                return f"{n_bytes:,} bytes"
            return f"{value:.1f} {unit} ({n_bytes:,} bytes)"
        value /= 1024
    return f"{n_bytes:,} bytes"  # pragma: no cover - loop always returns


def short_hash(sha256: str | None) -> str:
    """First and last eight hex digits, enough to compare by eye."""
    if not sha256:
        return "unknown"
    return f"{sha256[:8]}…{sha256[-8:]}" if len(sha256) > 20 else sha256


class OpenHeader(QHBoxLayout):
    """A pane's title row: the title, a "Recent ▾" menu button and the primary "Open …" button.

    ``on_recent`` fills :attr:`recent_menu` each time it is about to show.
    """

    def __init__(
        self, title: str, icon_name: str, open_text: str, *, on_open: Callable[[], None], on_recent: Callable[[], None]
    ) -> None:
        super().__init__()
        self.open_button = QPushButton(icon(icon_name), open_text)
        self.open_button.setObjectName("primary")
        self.open_button.clicked.connect(on_open)
        self.recent_button = QToolButton()
        self.recent_button.setText("Recent ▾")
        self.recent_button.setObjectName("recentButton")
        self.recent_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self.recent_button)
        self.recent_menu.aboutToShow.connect(on_recent)
        self.recent_button.setMenu(self.recent_menu)
        self.addWidget(pane_title(title))
        self.addStretch(1)
        self.addWidget(self.recent_button)
        self.addWidget(self.open_button)
