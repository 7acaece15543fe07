"""Where the GUI's stylesheet and icons live, and the light theme that uses them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from gui.plots import palette

__all__ = ["RESOURCES_DIR", "icon", "stylesheet", "register_fonts", "apply_theme"]

RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"


@cache
def icon(name: str) -> QIcon:
    """The SVG icon ``resources/icons/<name>.svg`` (an empty icon if it is missing)."""
    path = RESOURCES_DIR / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def stylesheet() -> str:
    """The application stylesheet (empty when the resources folder is not installed)."""
    path = RESOURCES_DIR / "style" / "probity.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _light_palette() -> QPalette:
    # Fusion plus an explicit light palette: the app looks like a printed page even
    # when the desktop runs a dark theme, so screenshots and the PDF report agree.
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#F6F6F4",
        QPalette.ColorRole.WindowText: palette.TEXT,
        QPalette.ColorRole.Base: palette.BACKGROUND,
        QPalette.ColorRole.AlternateBase: "#F8F8F6",
        QPalette.ColorRole.Text: palette.TEXT,
        QPalette.ColorRole.Button: "#EFEFEC",
        QPalette.ColorRole.ButtonText: palette.TEXT,
        QPalette.ColorRole.ToolTipBase: "#FFFFF0",
        QPalette.ColorRole.ToolTipText: palette.TEXT,
        QPalette.ColorRole.PlaceholderText: "#8A8A8A",
        QPalette.ColorRole.Highlight: "#CFE3F3",
        QPalette.ColorRole.HighlightedText: palette.TEXT,
        QPalette.ColorRole.Link: palette.PRIMARY,
        QPalette.ColorRole.BrightText: palette.ERROR,
    }
    for role, colour in roles.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#9A9A9A"))
    return pal


def register_fonts() -> str | None:
    """Register the bundled DejaVu fonts (resources/fonts, the report's fonts too) and return the sans family.

    The app then reads the same on every machine and matches the PDF report;
    ``None`` when the fonts are not installed (the system font is kept).
    """
    from PySide6.QtGui import QFontDatabase

    family = None
    for path in sorted((RESOURCES_DIR / "fonts").glob("DejaVu*.ttf")):
        font_id = QFontDatabase.addApplicationFont(str(path))
        families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
        if path.name == "DejaVuSans.ttf" and families:
            family = families[0]
    return family


def apply_theme(app: QApplication) -> None:
    """Fusion style, light palette, a readable default font and the stylesheet."""
    fusion = QStyleFactory.create("Fusion")
    if fusion is not None:
        app.setStyle(fusion)
    app.setPalette(_light_palette())
    font = QFont(app.font())
    family = register_fonts()
    if family:
        font.setFamily(family)
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
    app.setFont(font)
    app.setStyleSheet(stylesheet())
    app.setWindowIcon(icon("probity"))
