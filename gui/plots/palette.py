"""The GUI's colours: the engine's shared palette (engine/palette.py), so plots match the PDF report."""

from engine.palette import *  # noqa: F403
from engine.palette import __all__  # noqa: F401
