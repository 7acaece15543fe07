"""The report's look: colours, the bundled fonts, paragraph and table styles.

Every piece of text in the PDF is set in the bundled DejaVu fonts (registered
here as TrueType fonts, so reportlab embeds a subset of each): PDF/A forbids
the non-embedded standard-14 fonts such as Helvetica that reportlab falls back
to wherever a font name is left unset.

The colours are plain hex strings; ``gui/plots/palette.py`` mirrors them so a
chart looks the same on screen and on paper.  The engine never imports the GUI.
"""

from __future__ import annotations

import functools
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm

from engine.report.errors import ReportError
from engine.report.names import shorten_in

__all__ = [
    "RESOURCES_DIR",
    "FONT_FILES",
    "ICC_PROFILE",
    "SANS",
    "SANS_BOLD",
    "SANS_OBLIQUE",
    "SANS_BOLD_OBLIQUE",
    "MONO",
    "MONO_BOLD",
    "CATEGORICAL",
    "PRIMARY",
    "SECONDARY",
    "POSITIVE",
    "NEGATIVE",
    "REFERENCE",
    "GRID",
    "TEXT",
    "MUTED_TEXT",
    "BACKGROUND",
    "PANEL",
    "ERROR",
    "WARNING",
    "SEQUENTIAL",
    "DIVERGING",
    "CONTRIBUTION_UP",
    "CONTRIBUTION_DOWN",
    "ROLE_COLOURS",
    "categorical",
    "rgb",
    "register_fonts",
    "printable",
    "styles",
    "PAGE_MARGIN",
]

RESOURCES_DIR = Path(__file__).resolve().parents[2] / "resources"

# -- colours ------------------------------------------------------------------------------------------
# Defined once in engine/palette.py and shared with the GUI's plots.
from engine.palette import (  # noqa: E402
    BACKGROUND,
    CATEGORICAL,
    CONTRIBUTION_DOWN,
    CONTRIBUTION_UP,
    DIVERGING,
    ERROR,
    GRID,
    MUTED_TEXT,
    NEGATIVE,
    PANEL,
    POSITIVE,
    PRIMARY,
    REFERENCE,
    ROLE_COLOURS,
    SECONDARY,
    SEQUENTIAL,
    TEXT,
    WARNING,
    categorical,
)


def rgb(hex_colour: str) -> colors.Color:
    """A reportlab RGB colour from ``"#RRGGBB"`` (never CMYK: the output intent is sRGB)."""
    return colors.HexColor(hex_colour)


# -- fonts --------------------------------------------------------------------------------------------

SANS = "ProbitySans"
SANS_BOLD = "ProbitySans-Bold"
SANS_OBLIQUE = "ProbitySans-Oblique"
SANS_BOLD_OBLIQUE = "ProbitySans-BoldOblique"
MONO = "ProbityMono"
MONO_BOLD = "ProbityMono-Bold"

FONT_FILES: dict[str, str] = {
    SANS: "DejaVuSans.ttf",
    SANS_BOLD: "DejaVuSans-Bold.ttf",
    SANS_OBLIQUE: "DejaVuSans-Oblique.ttf",
    SANS_BOLD_OBLIQUE: "DejaVuSans-BoldOblique.ttf",
    MONO: "DejaVuSansMono.ttf",
    MONO_BOLD: "DejaVuSansMono-Bold.ttf",
}

ICC_PROFILE = RESOURCES_DIR / "icc" / "sRGB.icc"


@functools.cache
def register_fonts() -> None:
    """Register the bundled TrueType fonts with reportlab (once per process).

    Raises
    ------
    ReportError
        When a font file is missing from ``resources/fonts`` (a broken install).
    """
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for name, filename in FONT_FILES.items():
        path = RESOURCES_DIR / "fonts" / filename
        if not path.is_file():
            raise ReportError(f"The report font {path} is missing; reinstall Probity to restore it.", path=path)
        # asciiReadable=0 packs each subset densely, so fewer subsets (font objects) are written.
        pdfmetrics.registerFont(TTFont(name, str(path), asciiReadable=0))
    # <b> and <i> in paragraph markup resolve through this family map; without
    # it reportlab would look for "ProbitySans-Bold" by its own naming rules.
    for bold, italic, face in (
        (0, 0, SANS),
        (1, 0, SANS_BOLD),
        (0, 1, SANS_OBLIQUE),
        (1, 1, SANS_BOLD_OBLIQUE),
    ):
        addMapping(SANS, bold, italic, face)
    for bold, italic, face in ((0, 0, MONO), (1, 0, MONO_BOLD), (0, 1, MONO), (1, 1, MONO_BOLD)):
        addMapping(MONO, bold, italic, face)


@functools.cache
def _covered() -> frozenset[int]:
    """Code points every bundled font has a glyph for."""
    from reportlab.pdfbase.pdfmetrics import getFont

    register_fonts()
    maps = [set(getFont(name).face.charToGlyph) for name in FONT_FILES]
    return frozenset(set.intersection(*maps))


def printable(text: str) -> str:
    """``text`` with every character the bundled fonts cannot draw replaced by U+FFFD.

    A missing glyph would otherwise be drawn as the font's ``.notdef`` glyph,
    which PDF/A forbids and which readers show as an empty box at best.  Long
    names of the report being built are shortened first (:mod:`engine.report.names`).
    """
    text = shorten_in(text)
    covered = _covered()
    if all(ord(ch) in covered or ch in "\n\t" for ch in text):
        return text
    return "".join(ch if ord(ch) in covered or ch in "\n\t" else "\ufffd" for ch in text)


# -- paragraph and table styles -------------------------------------------------------------------------

PAGE_MARGIN = 20 * mm
BODY_SIZE = 9.0


@functools.cache
def styles() -> dict[str, ParagraphStyle]:
    """The report's paragraph styles by name; every font slot names a bundled font."""
    register_fonts()
    text = rgb(TEXT)
    muted = rgb(MUTED_TEXT)

    def style(name: str, **kw: object) -> ParagraphStyle:
        base: dict[str, object] = dict(
            fontName=SANS,
            fontSize=BODY_SIZE,
            leading=BODY_SIZE * 1.38,
            textColor=text,
            bulletFontName=SANS,
            bulletFontSize=BODY_SIZE,
            alignment=TA_LEFT,
            spaceAfter=4,
        )
        base.update(kw)
        return ParagraphStyle(name, **base)

    out = {
        "body": style("body"),
        "small": style("small", fontSize=7.5, leading=10, textColor=muted, spaceAfter=2),
        "caption": style("caption", fontSize=7.5, leading=10, textColor=muted, spaceBefore=2, spaceAfter=8),
        "cell": style("cell", fontSize=7.8, leading=9.8, spaceAfter=0),
        "cell_bold": style("cell_bold", fontName=SANS_BOLD, fontSize=7.8, leading=9.8, spaceAfter=0),
        "cell_mono": style("cell_mono", fontName=MONO, fontSize=7.2, leading=9.4, spaceAfter=0),
        "cell_head": style(
            "cell_head", fontName=SANS_BOLD, fontSize=7.8, leading=9.8, spaceAfter=0, textColor=rgb(TEXT)
        ),
        "mono": style("mono", fontName=MONO, fontSize=7.6, leading=10.2, bulletFontName=MONO),
        "bullet": style("bullet", leftIndent=11, bulletIndent=2, spaceAfter=2.5),
        "h1": style(
            "h1", fontName=SANS_BOLD, fontSize=15, leading=19, spaceBefore=0, spaceAfter=8, textColor=rgb(TEXT)
        ),
        "h2": style(
            "h2", fontName=SANS_BOLD, fontSize=11, leading=14, spaceBefore=10, spaceAfter=5, textColor=rgb(TEXT)
        ),
        "h3": style(
            "h3", fontName=SANS_BOLD, fontSize=9.2, leading=12, spaceBefore=7, spaceAfter=3, textColor=rgb(MUTED_TEXT)
        ),
        "warning": style("warning", textColor=rgb(WARNING), leftIndent=11, bulletIndent=2, spaceAfter=2.5),
        "title": style("title", fontName=SANS_BOLD, fontSize=24, leading=30, spaceAfter=6),
        "subtitle": style("subtitle", fontSize=12.5, leading=17, textColor=muted, spaceAfter=20),
        "title_label": style("title_label", fontSize=8, leading=11, textColor=muted, spaceAfter=0),
        "title_value": style("title_value", fontSize=10.5, leading=14, spaceAfter=0),
        "centre_small": style("centre_small", fontSize=7.5, leading=10, textColor=muted, alignment=TA_CENTER),
    }
    return out
