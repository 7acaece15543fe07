"""Offered at start-up when Probity did not close normally: recover the autosaved session?"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gui.resources import icon
from gui.widgets import hint_label

__all__ = ["RecoverSessionDialog"]


class RecoverSessionDialog(QDialog):
    """ "Recover" (accept) reopens the autosave; "Discard" (reject) leaves it unused."""

    def __init__(self, autosave: Path, summary: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recover the last session?")
        self.setMinimumWidth(500)
        self.autosave = autosave
        glyph = QLabel()
        glyph.setPixmap(icon("probity").pixmap(40, 40))
        glyph.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.message = QLabel(
            "<b>Probity did not close normally last time.</b><br>"
            f"Your work was saved automatically after the last finished job:<br>{html.escape(summary)}"
        )
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where = hint_label(f"Autosave: {autosave}")
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox()
        self.recover_button = buttons.addButton("Recover", QDialogButtonBox.ButtonRole.AcceptRole)
        self.discard_button = buttons.addButton("Discard", QDialogButtonBox.ButtonRole.RejectRole)
        self.recover_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        top = QHBoxLayout()
        top.addWidget(glyph)
        words = QVBoxLayout()
        words.addWidget(self.message)
        words.addWidget(where)
        top.addLayout(words, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)
