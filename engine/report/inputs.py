"""What a report is built from: :class:`ReportInput`.

The report reads the ``results.json`` document written by
:meth:`engine.record.AuditRecord.to_document`: the result objects rebuilt from
it and its typed header (:class:`~engine.report.header.RecordHeader`), plus
the few things only a person can add (auditor, organisation, notes).  Its
date is the audit's recorded finish time, never the clock, so rebuilding a
report from the same inputs gives the same bytes.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.report.errors import ReportError
from engine.report.header import RecordHeader
from engine.results import Result, result_from_dict

__all__ = ["SECTIONS", "SECTION_TITLES", "ReportInput"]

#: Every optional section, in report order.  A section whose results are
#: absent is left out even when selected; the title page is always present.
SECTIONS: tuple[str, ...] = (
    "summary",
    "data",
    "model",
    "performance",
    "importance",
    "fairness",
    "surrogates",
    "local",
    "clusters",
    "dependence",
    "network",
    "methodology",
    "limitations",
    "reproducibility",
    "notes",
)

SECTION_TITLES: dict[str, str] = {
    "summary": "Executive summary",
    "data": "Data summary",
    "model": "Model summary",
    "performance": "Predictive performance",
    "importance": "Global feature importance",
    "fairness": "Fairness and proxies",
    "surrogates": "Global surrogate models",
    "local": "Local explanations",
    "clusters": "Cluster analysis",
    "dependence": "Partial dependence and ICE",
    "network": "Network views",
    "methodology": "Methodology",
    "limitations": "Limitations",
    "reproducibility": "Reproducibility",
    "notes": "Reviewer notes",
}


@dataclass(frozen=True, eq=False)
class ReportInput:
    """Everything one report is built from.

    Attributes
    ----------
    document:
        The ``results.json`` document (:meth:`engine.record.AuditRecord.to_document`),
        embedded verbatim in the PDF as ``results.json``; the sections never read it.
    results:
        The full results rebuilt from ``document["results"]`` with
        :func:`engine.results.result_from_dict`, under the same keys.
    auditor, organisation:
        Who performed the audit, for the title page and metadata.
    report_date:
        ISO 8601 timestamp printed as the audit date and used as the PDF's
        creation date (the audit's ``finished_at``).
    command:
        The shell command that regenerates the results, as one line.
    reviewer_notes:
        Free text from the reviewer; blank lines separate paragraphs.
    sections:
        Which of :data:`SECTIONS` to include, in any order (the report keeps its own order).
    local_rows:
        0-based dataset rows shown in the local-explanations section; ``None``
        picks up to three rows explained by every local method present.
    header:
        Everything else the report reads from ``document``, typed; read from it when not given.

    Raises
    ------
    ReportError
        When a section is unknown or the document's header is malformed
        (:meth:`RecordHeader.from_document`).
    """

    document: Mapping[str, Any]
    results: Mapping[str, Result]
    auditor: str
    organisation: str
    report_date: str
    command: str
    reviewer_notes: str = ""
    sections: tuple[str, ...] = SECTIONS
    local_rows: tuple[int, ...] | None = None
    header: RecordHeader | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown:
            raise ReportError(
                f"Unknown report section {', '.join(repr(u) for u in unknown)}; choose from {', '.join(SECTIONS)}."
            )
        object.__setattr__(self, "sections", tuple(s for s in SECTIONS if s in set(self.sections)))
        if self.local_rows is not None:
            object.__setattr__(self, "local_rows", tuple(int(r) for r in self.local_rows))
        if self.header is None:
            object.__setattr__(self, "header", RecordHeader.from_document(self.document))

    @classmethod
    def from_document(
        cls,
        document: Mapping[str, Any],
        *,
        auditor: str = "",
        organisation: str = "",
        reviewer_notes: str = "",
        sections: Iterable[str] | None = None,
        command: str | Sequence[str] | None = None,
        local_rows: Sequence[int] | None = None,
    ) -> ReportInput:
        """Build the input from a ``results.json`` document, rebuilding every result.

        The date is ``document["provenance"]["finished_at"]`` (``started_at`` when the
        audit ran with a fixed timestamp and measured no times) and the command
        defaults to ``document["provenance"]["command"]``.

        Raises
        ------
        ReportError
            When the document lacks its provenance timestamp, a value of its header has
            the wrong type, or a result cannot be rebuilt.
        """
        header = RecordHeader.from_document(document)
        date = header.finished_at or header.started_at
        if not date:
            raise ReportError("The results document has no recorded audit time (provenance.finished_at).")
        raw_results = document.get("results") or {}
        if not isinstance(raw_results, Mapping):
            raise ReportError("The results document's results should be an object of results by key.")
        results: dict[str, Result] = {}
        for key, data in raw_results.items():
            try:
                results[str(key)] = result_from_dict(data)
            except (ValueError, TypeError, KeyError) as exc:
                raise ReportError(f"The result {key!r} in the results document cannot be read: {exc}.") from exc
        if command is None:
            command = header.command
        if not isinstance(command, str):
            command = shlex.join(str(c) for c in command)
        return cls(
            document=document,
            results=results,
            auditor=auditor,
            organisation=organisation,
            report_date=date,
            command=command,
            reviewer_notes=reviewer_notes,
            sections=tuple(SECTIONS if sections is None else sections),
            local_rows=None if local_rows is None else tuple(local_rows),
            header=header,
        )
