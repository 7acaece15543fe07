"""Lay the report out on A4 pages and write the PDF.

The layout runs twice: once to count the pages (for the "page x of y"
footers), then for real.  Both passes see the same flowables, so the page
breaks are the same.  The bytes then get one fix-up pass
(:func:`engine.report.pdfa.terminate_streams`) and are written atomically.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import reportlab
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate

from engine import __version__
from engine.files import json_bytes, write_bytes_atomic
from engine.report import style as st
from engine.report.errors import ReportError
from engine.report.facts import Facts
from engine.report.formats import format_date
from engine.report.inputs import ReportInput
from engine.report.layout import Heading
from engine.report.names import shortening
from engine.report.pdfa import (
    ATTACHMENT_NAME,
    DocumentInfo,
    make_canvas_class,
    parse_timestamp,
    read_attachment,
    read_icc_profile,
    terminate_streams,
)
from engine.report.pdfread import PdfFile
from engine.report.sections import build_story

__all__ = ["build_report", "render_report", "extract_embedded_results", "results_json_bytes"]


def results_json_bytes(document: Mapping[str, Any]) -> bytes:
    """``document`` serialised exactly as :func:`engine.audit.write_json_atomic` writes ``results.json``.

    Raises
    ------
    ReportError
        When the document holds values JSON cannot represent (NaN, infinities, objects).
    """
    try:
        return json_bytes(document)
    except (TypeError, ValueError) as exc:
        raise ReportError(f"The results document cannot be embedded in the report as JSON: {exc}.") from exc


@functools.cache
def _icc_profile() -> bytes:
    return read_icc_profile(st.ICC_PROFILE)


class _ReportTemplate(BaseDocTemplate):
    """A4 pages with a running header and a "page x of y" footer; headings become bookmarks."""

    def __init__(self, buffer: io.BytesIO, *, facts: Facts, info: DocumentInfo, total_pages: int | None) -> None:
        margin = st.PAGE_MARGIN
        super().__init__(
            buffer,
            pagesize=A4,
            leftMargin=margin,
            rightMargin=margin,
            topMargin=margin + 4 * mm,
            bottomMargin=margin,
            title=info.title,
            author=info.author,
            subject=info.subject,
            creator=info.creator_tool,
            producer=info.producer,
            keywords=list(info.keywords),
            invariant=1,
            initialFontName=st.SANS,
            initialFontSize=9,
            initialLeading=12,
            lang=info.language,
            displayDocTitle=1,
        )
        self._facts = facts
        self._total_pages = total_pages
        self.pages_seen = 0
        self.heading_pages: dict[str, int] = {}
        frame = Frame(
            self.leftMargin,
            self.bottomMargin,
            self.width,
            self.height,
            id="body",
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
        )
        self.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=self._decorate)])

    def afterFlowable(self, flowable: Flowable) -> None:  # noqa: N802 - reportlab's hook name
        if isinstance(flowable, Heading):
            self.heading_pages.setdefault(flowable.outline_key, self.canv.getPageNumber())
            # The frame's cursor sits under the heading just drawn; point the bookmark at its top.
            top = self.frame._y + flowable.height + 6
            self.canv.bookmarkPage(flowable.outline_key, fit="XYZ", left=0, top=top)
            self.canv.addOutlineEntry(
                flowable.outline_title, flowable.outline_key, level=flowable.outline_level, closed=False
            )

    def _decorate(self, canv: Canvas, doc: BaseDocTemplate) -> None:
        page = canv.getPageNumber()
        self.pages_seen = max(self.pages_seen, page)
        width, height = A4
        left, right = self.leftMargin, width - self.rightMargin
        facts = self._facts
        canv.saveState()
        muted = st.rgb(st.MUTED_TEXT)
        rule = st.rgb(st.GRID)
        if page == 1:
            canv.setFillColor(st.rgb(st.PRIMARY))
            canv.rect(0, height - 9 * mm, width, 9 * mm, stroke=0, fill=1)
        else:
            canv.setFont(st.SANS, 7)
            canv.setFillColor(muted)
            canv.drawString(
                left,
                height - st.PAGE_MARGIN + 3 * mm,
                st.printable(f"Audit of {facts.model_name} on {facts.data_name}"),
            )
            canv.drawRightString(right, height - st.PAGE_MARGIN + 3 * mm, format_date(facts.report.report_date))
            canv.setStrokeColor(rule)
            canv.setLineWidth(0.5)
            canv.line(left, height - st.PAGE_MARGIN + 1.5 * mm, right, height - st.PAGE_MARGIN + 1.5 * mm)
        canv.setStrokeColor(rule)
        canv.setLineWidth(0.5)
        canv.line(left, st.PAGE_MARGIN - 5 * mm, right, st.PAGE_MARGIN - 5 * mm)
        canv.setFont(st.SANS, 7)
        canv.setFillColor(muted)
        canv.drawString(left, st.PAGE_MARGIN - 9 * mm, f"Probity {__version__} · model audit report")
        total = self._total_pages if self._total_pages is not None else page
        canv.drawRightString(right, st.PAGE_MARGIN - 9 * mm, f"Page {page} of {total}")
        canv.restoreState()


def _plain(text: str) -> str:
    """``text`` without control characters, which XML (the XMP packet) cannot hold."""
    return "".join(ch if ch >= " " else " " for ch in text).strip()


def _document_info(report: ReportInput, facts: Facts) -> DocumentInfo:
    return DocumentInfo(
        title=_plain(f"Audit of {facts.model_name} on {facts.data_name}"),
        author=_plain(report.auditor) or "Probity",
        subject="Model audit report: performance, explanations and a reproducibility record.",
        keywords=("model audit", "explainability", _plain(facts.model_name), _plain(facts.data_name), "Probity"),
        creator_tool=f"Probity {__version__}",
        producer=f"Probity {__version__} with ReportLab {reportlab.Version}",
        created=parse_timestamp(report.report_date),
    )


def _layout(
    report: ReportInput, attachment: bytes, first_pass: _ReportTemplate | None
) -> tuple[bytes, _ReportTemplate]:
    st.register_fonts()
    width = A4[0] - 2 * st.PAGE_MARGIN
    facts = Facts.gather(report, width)
    with shortening(facts.names()):
        info = _document_info(report, facts)
        story = build_story(
            facts,
            attachment_sha256=hashlib.sha256(attachment).hexdigest(),
            pages=first_pass.heading_pages if first_pass else None,
        )
        buffer = io.BytesIO()
        template = _ReportTemplate(
            buffer, facts=facts, info=info, total_pages=first_pass.pages_seen if first_pass else None
        )
        template.build(story, canvasmaker=make_canvas_class(info, _icc_profile(), attachment))
    return buffer.getvalue(), template


def render_report(document: ReportInput) -> bytes:
    """The report as PDF bytes: identical inputs give identical bytes.

    Raises
    ------
    ReportError
        When a bundled font or the colour profile is missing, or the
        results document cannot be serialised.
    """
    attachment = results_json_bytes(document.document)
    # The first pass only measures: where each section starts and how many pages there are.
    _, first = _layout(document, attachment, None)
    pdf, second = _layout(document, attachment, first)
    if second.heading_pages != first.heading_pages:  # pragma: no cover - layout must not depend on the footer
        raise ReportError("The report layout changed between its two passes; please report this as a bug.")
    return terminate_streams(pdf)
    return terminate_streams(pdf)


def build_report(document: ReportInput, path: Path) -> None:
    """Write the audit report for ``document`` to ``path`` (a PDF/A-3b file with ``results.json`` attached).

    The file is written through a temporary file in the same folder, so a
    failure never leaves half a report; missing parent folders are created.

    Raises
    ------
    ReportError
        When the report cannot be built or the file cannot be written.
    """
    path = Path(path)
    pdf = render_report(document)
    try:
        write_bytes_atomic(path, pdf)
    except OSError as exc:
        raise ReportError(f"The report {path} cannot be written: {exc.strerror or exc}.", path=path) from exc


def extract_embedded_results(pdf_path: Path) -> dict[str, Any]:
    """The ``results.json`` document embedded in a Probity report.

    Raises
    ------
    ReportError
        When the file cannot be read, is not a PDF this reader understands,
        has no embedded ``results.json``, or that attachment is not a JSON object.
    """
    pdf_path = Path(pdf_path)
    pdf = PdfFile.open(pdf_path)
    try:
        data = read_attachment(pdf, ATTACHMENT_NAME)
    except ReportError as exc:
        raise ReportError(f"{exc.message[:-1]} ({pdf_path.name}).", path=pdf_path) from exc
    except Exception as exc:  # a corrupt stream: zlib/base64 errors
        raise ReportError(
            f"The {ATTACHMENT_NAME} attached to {pdf_path.name} is damaged: {exc}.", path=pdf_path
        ) from exc
    if data is None:
        raise ReportError(
            f"{pdf_path.name} has no attached {ATTACHMENT_NAME}, so it is not a Probity report.", path=pdf_path
        )
    from engine.limits import current_limits

    return decode_attached_results(data, pdf_path, max_depth=current_limits().max_json_depth)


def decode_attached_results(data: bytes, pdf_path: Path, *, max_depth: int) -> dict[str, Any]:
    """The ``results.json`` attachment's bytes as a JSON object nesting at most ``max_depth`` levels.

    Raises
    ------
    ReportError
        One sentence naming the report when the bytes are not UTF-8 JSON, nest too deeply or are
        not an object.
    """
    from engine.files import JSONNestingError, loads_json

    try:
        document = loads_json(data.decode("utf-8"), max_depth=max_depth)
    except JSONNestingError as exc:
        raise ReportError(exc.sentence(f"The {ATTACHMENT_NAME} attached to {pdf_path.name}"), path=pdf_path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(
            f"The {ATTACHMENT_NAME} attached to {pdf_path.name} is not valid JSON: {exc}.", path=pdf_path
        ) from None
    if not isinstance(document, dict):
        raise ReportError(f"The {ATTACHMENT_NAME} attached to {pdf_path.name} is not a JSON object.", path=pdf_path)
    return document
