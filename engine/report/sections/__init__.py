"""The report's sections as reportlab flowables, each drawn from the results it presents.

Every section builder takes a :class:`~engine.report.facts.Facts` (the
report input, its record's typed header and its results sorted by type) and
its number, and returns a list of flowables, empty when its results are
absent.  :data:`SECTION_BUILDERS` names the builder of each section of
:data:`engine.report.SECTIONS`; :func:`build_story` puts the title page and
the present sections in order.  One module per section (or a few closing ones):

- ``summary``: the title page and the executive summary;
- ``data_model``: the data and model summaries;
- ``performance``, ``importance``, ``fairness``, ``surrogates``, ``local``,
  ``clusters``, ``dependence``, ``network``: one section each, drawn from its results;
- ``closing``: methodology, limitations, reproducibility and reviewer notes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable

from engine.report.facts import Facts
from engine.report.inputs import SECTION_TITLES
from engine.report.sections.closing import limitations, methodology, reproducibility, reviewer_notes
from engine.report.sections.clusters import cluster_analysis
from engine.report.sections.data_model import data_summary, model_summary
from engine.report.sections.dependence import dependence
from engine.report.sections.fairness import fairness
from engine.report.sections.importance import importance
from engine.report.sections.local import local_explanations
from engine.report.sections.network import network
from engine.report.sections.performance import performance
from engine.report.sections.summary import executive_summary, title_page
from engine.report.sections.surrogates import surrogates

__all__ = ["SECTION_BUILDERS", "build_story"]

#: What draws a section: its facts and its number give its flowables (none when it has nothing to show).
SectionBuilder = Callable[[Facts, int], list[Flowable]]

#: The builder of each section but the reproducibility section, which also takes the attachment's SHA-256.
SECTION_BUILDERS: dict[str, SectionBuilder] = {
    "summary": executive_summary,
    "data": data_summary,
    "model": model_summary,
    "performance": performance,
    "importance": importance,
    "fairness": fairness,
    "surrogates": surrogates,
    "local": local_explanations,
    "clusters": cluster_analysis,
    "dependence": dependence,
    "network": network,
    "methodology": methodology,
    "limitations": limitations,
    "notes": reviewer_notes,
}

# Sections that follow on the page before when at least 60 mm of it are left, rather than on a new page.
_FLOWING = ("limitations", "notes")


def build_story(facts: Facts, *, attachment_sha256: str, pages: Mapping[str, int] | None = None) -> list[Flowable]:
    """Every flowable of the report, in order, numbering the sections that are present.

    ``pages`` maps section heading keys to page numbers (from an earlier
    layout pass) for the contents list; without it the list shows blanks of
    the same size, so both passes break pages alike.
    """
    builders: dict[str, SectionBuilder] = {
        **SECTION_BUILDERS,
        "reproducibility": lambda f, n: reproducibility(f, n, attachment_sha256),
    }
    body: list[Flowable] = []
    contents: list[tuple[str, str]] = []
    number = 1
    for key in facts.report.sections:
        flowables = builders[key](facts, number)
        if flowables:
            if key in _FLOWING:
                body.append(CondPageBreak(60 * mm))
            body += flowables
            heading = f"s-{key}"
            contents.append((f"{number}  {SECTION_TITLES[key]}", str((pages or {}).get(heading, ""))))
            number += 1
    return title_page(facts, contents) + body
