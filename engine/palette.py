"""Colour-blind-safe colours shared by the GUI's plots and the PDF report.

Plain data only (hex strings), defined once here: ``engine/report/style.py`` and
``gui/plots/palette.py`` both take them from this module, so a chart looks the
same on screen and on paper.
The categorical set is Okabe & Ito's eight colours, which stay distinct under
the common colour-vision deficiencies and in greyscale print; the sequential
ramp is a single-hue blue, readable when printed in black and white.
"""

from __future__ import annotations

__all__ = [
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
]

# Okabe & Ito (2008), ordered so the first few are the most distinct in print.
CATEGORICAL: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

PRIMARY = "#0072B2"
SECONDARY = "#E69F00"
POSITIVE = "#0072B2"
NEGATIVE = "#D55E00"
REFERENCE = "#8C8C8C"  # diagonals, chance lines
GRID = "#E3E3E3"
TEXT = "#1A1A1A"
MUTED_TEXT = "#5F5F5F"
BACKGROUND = "#FFFFFF"
PANEL = "#F6F6F4"
ERROR = "#B3261E"
WARNING = "#8A5A00"

# Light to dark; used for heatmaps (confusion matrices) where a count maps to darkness.
SEQUENTIAL: tuple[str, ...] = (
    "#F7FBFF",
    "#DEEBF7",
    "#C6DBEF",
    "#9ECAE1",
    "#6BAED6",
    "#4292C6",
    "#2171B5",
    "#08519C",
    "#08306B",
)

# Blue (negative) to orange (positive) through white; for signed attributions.
DIVERGING: tuple[str, ...] = (
    "#0072B2",
    "#5FA3D0",
    "#B7D5EA",
    "#FFFFFF",
    "#F5CFA0",
    "#EBA24D",
    "#D55E00",
)

# A contribution that raises the explained output takes the diverging scale's
# positive end, one that lowers it the negative end.
CONTRIBUTION_UP = DIVERGING[-1]
CONTRIBUTION_DOWN = DIVERGING[0]

# Tints for column roles in the data table and the schema list.
ROLE_COLOURS: dict[str, str] = {
    "target": "#E69F00",
    "sensitive": "#CC79A7",
    "feature": "#0072B2",
    "ignored": "#8C8C8C",
}


def categorical(i: int) -> str:
    """The ``i``-th categorical colour, cycling past the eighth."""
    return CATEGORICAL[i % len(CATEGORICAL)]
