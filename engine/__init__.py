"""Probity's computation engine.

Everything here is importable and testable without Qt: the GUI (``gui/``) and the
``probity`` command both drive the same functions.  Heavy optional back ends
(torch, onnxruntime) are imported lazily inside the functions that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
