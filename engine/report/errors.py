"""The report's user-facing error (kept here until engine/errors.py adopts it)."""

from __future__ import annotations

from engine.errors import ProbityError

__all__ = ["ReportError"]


class ReportError(ProbityError):
    """A report cannot be written, or a PDF is not a Probity report whose results can be read back."""
