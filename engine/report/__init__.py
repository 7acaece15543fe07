"""The PDF audit report: a PDF/A-3b document drawn from ``results.json``.

``build_report(ReportInput.from_document(doc, auditor=..., organisation=...), path)``
writes the report; :func:`extract_embedded_results` reads the attached
``results.json`` back (for ``probity verify``).  See ``docs/report.md``.
"""

from __future__ import annotations

from engine.report.errors import ReportError
from engine.report.inputs import SECTION_TITLES, SECTIONS, ReportInput
from engine.report.pdfa import ATTACHMENT_NAME, PDFA_CONFORMANCE, PDFA_PART
from engine.report.writer import build_report, extract_embedded_results, render_report, results_json_bytes

__all__ = [
    "ReportInput",
    "ReportError",
    "SECTIONS",
    "SECTION_TITLES",
    "ATTACHMENT_NAME",
    "PDFA_PART",
    "PDFA_CONFORMANCE",
    "build_report",
    "render_report",
    "extract_embedded_results",
    "results_json_bytes",
]
