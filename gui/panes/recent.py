"""Recently opened files, kept in QSettings, offered as a menu."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu, QWidget

from gui.text import literal

__all__ = ["RecentFiles"]


class RecentFiles:
    """Up to ``limit`` paths under one settings key, most recent first."""

    def __init__(self, settings: QSettings, key: str, *, limit: int = 8) -> None:
        self._settings = settings
        self._key = key
        self._limit = limit

    def paths(self) -> list[Path]:
        raw = self._settings.value(self._key, [])
        if isinstance(raw, str):  # INI files hand a one-element list back as a string
            raw = [raw]
        return [Path(p) for p in (raw or []) if p]

    def add(self, path: Path) -> None:
        text = str(Path(path).resolve())
        kept = [str(p) for p in self.paths() if str(p) != text]
        self._settings.setValue(self._key, [text, *kept][: self._limit])
        self._settings.sync()

    def clear(self) -> None:
        self._settings.remove(self._key)
        self._settings.sync()

    def fill_menu(self, menu: QMenu, on_open: Callable[[Path], None], parent: QWidget | None = None) -> None:
        """Rebuild ``menu`` with one action per existing recent file."""
        menu.clear()
        paths = [p for p in self.paths() if p.exists()]
        if not paths:
            empty = menu.addAction("No recent files")
            empty.setEnabled(False)
            return
        for path in paths:
            action = menu.addAction(path.name.replace("&", "&&"))  # a lone & would be a shortcut marker
            action.setToolTip(literal(str(path)))
            action.setStatusTip(str(path))
            action.triggered.connect(lambda _checked=False, p=path: on_open(p))
        menu.addSeparator()
        menu.addAction("Clear list").triggered.connect(lambda _checked=False: self.clear())
