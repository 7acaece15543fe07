"""The PDF shows the fairness evidence: the summary names the gap that matters, the section holds every table.

Known answers: on a COMPAS-like table (two large groups whose false positive rates differ, two tiny groups
at the extremes) the executive summary names the large groups' gap with its interval and both n, and lists
the tiny groups as too small; on an audit of the demo with two sensitive attributes every table of the
fairness section is present with the rows the results hold; the methodology defines every measure.  A report
without fairness results is byte for byte what the code before the fairness section wrote, and the report
kept in tests/fixtures/before_calls still rebuilds from its embedded results.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Table

from engine.explain import fairness as fairness_method
from engine.explain.fairness import FOUR_FIFTHS, MEASURES, FairnessResult
from engine.explain.groups import HEADLINE_MIN_GROUP_SIZE
from engine.jobs import JobContext
from engine.report import ReportInput, render_report
from engine.report.facts import Facts
from engine.report.names import short_name
from engine.report.sections import build_story
from engine.report.sections.fairness import FIGURE_TEXT, MEASURE_TEXT, fairness_findings
from tests.engine.test_fairness import make_inputs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
WIDTH = 480.0
TIMESTAMP = "2026-01-02T03:04:05+00:00"

# SHA-256 of the PDF the report code wrote before the fairness section existed (commit 5d28caa), from
# tests/fixtures/without_fairness/results.json.gz: an audit of this version (the before_calls data and
# model, fixed timestamp) whose document holds neither the proxy table nor the fairness analysis.
WITHOUT_FAIRNESS_SHA256 = "e56a532d930d33ebd178a62d5046ccc2ae9ff3cd52dd35a67eaa4612cbaa105f"


# -- helpers -------------------------------------------------------------------------------------------------


def _flat(flowables: Iterable[Flowable]) -> Iterator[Flowable]:
    for f in flowables:
        if isinstance(f, KeepTogether):
            yield from _flat(f._content)
        else:
            yield f


def _plain(f: Any) -> str:
    if isinstance(f, Paragraph):  # its markup without tags (a line break as a space), entities decoded
        return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]*>", "", f.text.replace("<br/>", " ")))).strip()
    return str(f)


def _tables(flowables: Iterable[Flowable]) -> list[tuple[str, list[list[str]]]]:
    """Each table with the last heading before it (``h2``/``h3`` paragraph), its cells as plain text."""
    out: list[tuple[str, list[list[str]]]] = []
    title = ""
    for f in _flat(flowables):
        if isinstance(f, Paragraph) and f.style.name in ("h1", "h2", "h3"):
            title = _plain(f)
        elif isinstance(f, Table):
            out.append((title, [[_plain(c) for c in row] for row in f._cellvalues]))
    return out


def _text(flowables: Iterable[Flowable]) -> str:
    parts: list[str] = []
    for f in _flat(flowables):
        if isinstance(f, Paragraph):
            parts.append(_plain(f))
        elif isinstance(f, Table):
            parts += [_plain(c) for row in f._cellvalues for c in row]
    return " ".join(parts)


def _document(result: FairnessResult, sensitive: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """A small results.json holding one fairness result, as a report reads it back."""
    doc = {
        "schema_version": 1,
        "probity_version": "0.1.0",
        "provenance": {
            "started_at": TIMESTAMP,
            "finished_at": TIMESTAMP,
            "roles": {"target": "y", "features": ["row"], "sensitive": list(sensitive), "ignored": []},
            "seed": 0,
        },
        "results": {"fairness": result.to_dict()},
        **extra,
    }
    return json.loads(json.dumps(doc))


def _facts(document: dict[str, Any]) -> Facts:
    return Facts.gather(ReportInput.from_document(document), WIDTH)


def _section(story: list[Flowable], key: str) -> list[Flowable]:
    """The flowables of the section whose heading key is ``s-<key>``, up to the next section."""
    flat = list(_flat(story))
    start = next(i for i, f in enumerate(flat) if getattr(f, "outline_key", None) == f"s-{key}")
    end = next(
        (i for i, f in enumerate(flat[start + 1 :], start + 1) if getattr(f, "outline_level", None) == 0), len(flat)
    )
    return flat[start:end]


def _compas(groups: tuple[tuple[str, int, int, int, int], ...]) -> pd.DataFrame:
    """Rows of (group, positives, true positives, negatives, false positives): flagged rows have score 1."""
    parts = []
    for group, pos, tp, neg, fp in groups:
        y = np.r_[np.ones(pos), np.zeros(neg)].astype(int)
        flagged = np.r_[np.arange(pos) < tp, np.arange(neg) < fp].astype(float)
        parts.append(pd.DataFrame({"race": group, "y": y, "p": flagged}))
    return pd.concat(parts, ignore_index=True)


LARGE = (
    ("African-American", 1500, 1050, 1500, 675),  # 3,000 rows: TPR 0.70, FPR 0.45
    ("Caucasian", 800, 480, 1200, 264),  # 2,000 rows: TPR 0.60, FPR 0.22
)
TINY = (
    ("Asian", 6, 6, 6, 6),  # 12 rows, everyone flagged
    ("Native American", 4, 0, 5, 0),  # 9 rows, nobody flagged
)


def _compas_result(groups: tuple[tuple[str, int, int, int, int], ...]) -> FairnessResult:
    frame = _compas(groups)
    inputs = make_inputs(frame, frame["p"].to_numpy(), sensitive=("race",))
    return fairness_method.run(inputs, ctx=JobContext(seed=0), n_boot=200)


def _group_metrics(result: FairnessResult) -> list[dict[str, Any]]:
    """The ``group_metrics`` an audit records beside the fairness result (the old headline's source)."""
    return [
        {
            "attribute": g.attribute,
            "group": g.group,
            "n": g.n,
            "positive_rate": g.selection_rate,
            "accuracy": g.accuracy,
        }
        for g in result.groups
    ]


# -- the executive summary -----------------------------------------------------------------------------------


def test_the_summary_names_the_large_group_gap_of_a_compas_like_table_with_its_interval_and_n() -> None:
    result = _compas_result(LARGE + TINY)
    d = result.headline
    assert d is not None and d.metric == "fpr"
    doc = _document(result, ("race",), group_metrics=_group_metrics(result))
    facts = _facts(doc)
    story = build_story(facts, attachment_sha256="0" * 64)
    summary = _text(_section(story, "summary"))

    assert (
        f"The largest disparity between groups with at least {HEADLINE_MIN_GROUP_SIZE} rows is in race: the false "
        f"positive rate is 0.450 for African-American (n = 3,000) and 0.220 for Caucasian (n = 2,000), a gap of "
        f"0.230 (95 % CI {d.ci_low:.3f} to {d.ci_high:.3f})."
    ) in summary
    assert 0.15 < d.ci_low < 0.23 < d.ci_high
    assert (
        "In race, Asian (n = 12) and Native American (n = 9) are too small to drive a headline (fewer than "
        f"{HEADLINE_MIN_GROUP_SIZE} rows); the fairness section reports them."
    ) in summary
    # The fairness headline replaces the group metrics' min-max sentence, and no tiny group is in a gap.
    assert "percentage points" not in summary and "ranges from" not in summary
    findings = " ".join(fairness_findings(facts))
    assert not re.search(r"(Asian|Native American)</b> \(n = \d+\) and", findings)


def test_one_large_group_and_two_tiny_ones_make_no_headline_and_say_so() -> None:
    result = _compas_result(LARGE[:1] + TINY)
    assert result.headline is None
    summary = _text(_section(build_story(_facts(_document(result, ("race",))), attachment_sha256="0" * 64), "summary"))
    assert (
        f"The groups of race are not compared in a headline: fewer than two have at least {HEADLINE_MIN_GROUP_SIZE} "
        "rows. In race, Asian (n = 12) and Native American (n = 9) are too small"
    ) in summary
    assert "largest disparity" not in summary


def test_a_report_with_group_metrics_but_no_fairness_result_keeps_its_old_sentences() -> None:
    result = _compas_result(LARGE + TINY)
    doc = _document(result, ("race",), group_metrics=_group_metrics(result))
    doc["results"] = {}
    summary = _text(_section(build_story(_facts(doc), attachment_sha256="0" * 64), "summary"))
    assert "the predicted positive rate ranges from" in summary and "largest disparity" not in summary


# -- the fairness section ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit_document(demo_paths: Any) -> dict[str, Any]:
    """results.json of an audit of the demo with two sensitive attributes, one of them a model input."""
    from engine.audit import AuditRequest, audit_document, run_audit
    from engine.report import results_json_bytes

    request = AuditRequest(
        data=demo_paths.data,
        model=demo_paths.model,
        target="approved",
        sensitive=("group", "employment"),
        analyses=("performance", "permutation", "groups", "proxies", "fairness"),
        n_repeats=3,
        timestamp=TIMESTAMP,
        measure_times=False,
    )
    outcome = run_audit(request, JobContext(seed=0))
    return json.loads(results_json_bytes(audit_document(outcome)))


class _Sealed(Mapping[str, Any]):
    """A results document that fails the test on any read: the sections read the typed record."""

    def __getitem__(self, key: str) -> Any:
        raise AssertionError(f"a section read results.json[{key!r}]")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a section iterated over results.json")

    def __len__(self) -> int:
        raise AssertionError("a section measured results.json")


@pytest.fixture(scope="module")
def audit_story(audit_document: dict[str, Any]) -> tuple[Facts, list[Flowable]]:
    report = dataclasses.replace(ReportInput.from_document(audit_document), document=_Sealed())
    facts = Facts.gather(report, WIDTH)
    return facts, build_story(facts, attachment_sha256="0" * 64)


def test_every_table_of_the_fairness_section_is_present_with_its_rows(
    audit_story: tuple[Facts, list[Flowable]],
) -> None:
    facts, story = audit_story
    result, proxies = facts.fairness, facts.proxies
    assert result is not None and proxies is not None
    assert result.attributes == ("group", "employment") and result.intersections == ("group × employment",)
    tables = _tables(_section(story, "fairness"))
    titles = [t for t, _ in tables]

    def first_column(title: str, nth: int = 0) -> list[str]:
        found = [rows for t, rows in tables if t == title]
        return [row[0] for row in found[nth][1:]]

    for attribute in (*result.attributes, *result.intersections):
        groups = result.rows(attribute)
        label = [g.group + (" (reference)" if g.reference else "") + ("" if g.judged else " †") for g in groups]
        heading = f"Groups of {attribute}" if attribute in result.attributes else f"Intersection {attribute}"
        # The group table (n, share and rates) and, for attributes, precision, accuracy and calibration.
        assert first_column(heading) == label
        rows = next(rows for t, rows in tables if t == heading)
        assert rows[0][:5] == ["Group", "n", "Share", "Base rate", "Selection rate"]
        assert [row[1] for row in rows[1:]] == [f"{g.n:,}" for g in groups]
        sel = rows[0].index("Selection rate")
        assert [row[sel].split()[0] for row in rows[1:]] == [f"{g.selection_rate:.3f}" for g in groups]
        low, high = groups[0].interval("selection_rate")
        assert rows[1][sel] == f"{groups[0].selection_rate:.3f} {low:.3f}–{high:.3f}"
        if attribute in result.attributes:
            assert first_column(heading, 1) == label
        # The summary measures, each with its interval.
        measures = [rows for t, rows in tables if t == "Summary measures"]
        assert [row[0] for row in measures[0][1:]] == [MEASURE_TEXT[m][0] for m in MEASURES]
        # The Local Law 144 table: every known category, the most selected at impact ratio 1.
        ll144 = result.table(attribute)
        heading = f"NYC Local Law 144: {ll144.rate_kind} and impact ratio"
        assert heading in titles
        found = [rows for t, rows in tables if t == heading]
        assert any([row[0] for row in rows[1:]] == [r.category for r in ll144.rows] for rows in found)
    # The four-fifths table: each group against its attribute's reference, flagged rows said so.
    for attribute in result.attributes:
        comparisons = [c for c in result.comparisons if c.attribute == attribute]
        ref = result.references[attribute]
        heading = next(t for t in titles if t.startswith(f"Four-fifths rule and significance against {ref} (n = "))
        rows = next(rows for t, rows in tables if t == heading)
        assert [row[0] for row in rows[1:]] == [c.group for c in comparisons]
        for c, row in zip(comparisons, rows[1:]):
            assert row[-1].startswith(
                "† not judged"
                if not c.judged
                else "below four fifths"
                if c.ratio < FOUR_FIFTHS
                else "at least four fifths"
            )
    # The demo's built-in bias: group B is selected at under four fifths of A's rate.
    b = next(c for c in result.comparisons if c.attribute == "group" and c.group == "B")
    assert b.below_four_fifths and b.judged
    # The proxy table of each attribute, highest risk first, with its level; the strongest proxy named.
    for a in proxies.attributes:
        rows = next(rows for t, rows in tables if t == f"Proxies of {a.attribute}")
        assert [row[0] for row in rows[1:]] == [r.feature for r in proxies.table(a.attribute)]
        assert [row[2] for row in rows[1:]] == [r.level for r in proxies.table(a.attribute)]
        risks = [float(row[1]) for row in rows[1:]]
        assert risks == sorted(risks, reverse=True)
    strongest = proxies.strongest("group")
    assert strongest and first_column("Proxies of group")[0] == strongest
    # The flip tests: counts by group, every (group, value) cell, and example rows.
    assert result.flips
    for flip in result.flips:
        role = "the sensitive attribute" if flip.role == "sensitive attribute" else f"proxy of {flip.attribute}"
        found = [rows for t, rows in tables if t == f"{flip.column} ({role}), by the groups of {flip.attribute}"]
        assert len(found) >= 2
        assert [row[:3] for row in found[0][1:]] == [
            [g, f"{n:,}", f"{flip.flipped_by_group.get(g, 0):,}"] for g, n in flip.n_by_group.items()
        ]
        assert [row[:4] for row in found[1][1:]] == [
            [r.group, r.to_value, f"{r.n:,}", f"{r.flipped:,}"] for r in flip.rows
        ]
        examples = {(int(row[0]), row[1], row[2]) for row in found[2][1:]} if len(found) > 2 else set()
        expected = {(e, r.group, r.to_value) for r in flip.rows for e in r.examples}
        assert examples <= expected and (bool(examples) == bool(expected))
    assert {(f.column, f.role) for f in result.flips} >= {("employment", "sensitive attribute"), (strongest, "proxy")}


def test_the_rate_chart_is_drawn_for_each_attribute(audit_story: tuple[Facts, list[Flowable]]) -> None:
    from reportlab.graphics.shapes import Drawing, String

    facts, story = audit_story
    section = _section(story, "fairness")
    drawings = [f for f in section if isinstance(f, Drawing)]
    assert facts.fairness is not None and len(drawings) == len(facts.fairness.attributes)

    def strings(node: Any) -> list[str]:
        found = [node.text] if isinstance(node, String) else []
        for child in getattr(node, "contents", []):
            found += strings(child)
        return found

    texts = strings(drawings[0])
    reference = next(g for g in facts.fairness.rows("group") if g.reference)
    assert f"4/5 of {reference.group}" in texts
    assert any(t.startswith(f"{reference.group} (ref.), n = {reference.n:,}") for t in texts)
    assert "below four fifths of the reference" in texts


def test_the_methodology_defines_every_measure_and_names_the_reference_and_favourable_outcome(
    audit_story: tuple[Facts, list[Flowable]],
) -> None:
    facts, story = audit_story
    assert facts.fairness is not None
    methodology = _section(story, "methodology")
    defined = [rows for _, rows in _tables(methodology) if rows[0] == ["Measure", "Definition"]]
    assert len(defined) == 1
    terms = [row[0] for row in defined[0][1:]]
    for label, _ in (*FIGURE_TEXT.values(), *MEASURE_TEXT.values()):
        assert label in terms
    assert {"Four-fifths ratio", "Two-proportion test", "Impact ratio (Local Law 144)", "Proxy risk"} <= set(terms)
    text = _text(methodology)
    refs = facts.fairness.references
    assert f"Favourable outcome: class {facts.fairness.favourable}." in text
    assert f"Reference groups: {refs['group']} for group (the largest group)" in text


def test_the_summary_names_four_fifths_flags_and_each_attribute_s_strongest_proxy(
    audit_story: tuple[Facts, list[Flowable]],
) -> None:
    facts, story = audit_story
    assert facts.proxies is not None and facts.fairness is not None
    summary = _text(_section(story, "summary"))
    b = next(c for c in facts.fairness.comparisons if c.attribute == "group" and c.group == "B")
    assert (
        f"In group, the selection rate of B (n = {b.n:,}; ratio {b.ratio:.3f}, 95 % CI {b.ratio_ci_low:.3f} to "
        f"{b.ratio_ci_high:.3f}) is under four fifths of that of the reference group A."
    ) in summary
    strongest = facts.proxies.strongest("group")
    row = next(r for r in facts.proxies.table("group") if r.feature == strongest)
    assert (
        f"The strongest proxy of group is {strongest}: on its own it predicts the attribute with AUC {row.auc:.3f}, "
        f"and the model uses it (shuffling it lowers accuracy by"
    ) in summary
    # employment is a model input: the summary says so, and it has no proxy sentence of its own.
    assert "Sensitive attribute employment is a direct model input" in summary
    assert "strongest proxy of employment" not in summary


def test_a_regressor_s_section_states_scoring_rates_unknown_rows_and_the_2_percent_exclusion() -> None:
    from engine.inputs import AuditInputs
    from engine.models.base import Model, Task
    from engine.schema import Roles

    rng = np.random.default_rng(4)
    n = 1000
    s = rng.choice(np.array(["x", "y", "z"]), size=n, p=[0.6, 0.39, 0.01]).astype(object)
    s[:40] = None
    target = rng.normal(size=n) + np.where(s == "x", 0.5, 0.0)
    prediction = target + rng.normal(scale=0.5, size=n)

    class Regressor(Model):
        task, classes, input_columns, format = Task.REGRESSION, None, ("row",), "sklearn"

        def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
            return prediction[X["row"].to_numpy(dtype=np.int64)]

    frame = pd.DataFrame({"s": s, "y": target, "row": np.arange(n)})
    inputs = AuditInputs(frame=frame, roles=Roles(target="y", features=("row",), sensitive=("s",)), model=Regressor())
    result = fairness_method.run(inputs, ctx=JobContext(seed=0), n_boot=20, ll144_exclude_small=True)
    facts = _facts(_document(result, ("s",)))
    section = _section(build_story(facts, attachment_sha256="0" * 64), "fairness")
    text = _text(section)
    assert f"The favourable outcome is a prediction above the median prediction ({result.median_score:.3f})." in text
    tables = dict(_tables(section))
    ll144 = tables["NYC Local Law 144: scoring rate and impact ratio"]
    assert ll144[0][:4] == ["Category", "n", "Scoring rate", "Impact ratio"]
    assert [(row[0], row[3]) for row in ll144[1:]] == [
        (r.category, "—" if r.excluded else f"{r.impact_ratio:.3f}") for r in result.table("s").rows
    ]
    assert "40 rows with an unknown category are counted and left out of the table." in text
    assert "Categories under 2% of the rows with a known category are left out of the impact ratios: z." in text
    groups = next(rows for title, rows in _tables(section) if title == "Groups of s")
    assert "Scoring rate" in groups[0] and "Selection rate" not in groups[0]
    calibration = [rows for title, rows in _tables(section) if title == "Groups of s"][1]
    assert "MAE" in calibration[0] and "ECE" not in calibration[0]  # columns no group has a value for are left out


# -- names from the data ---------------------------------------------------------------------------------------


def test_group_names_are_escaped_and_long_ones_shortened_by_the_report_s_rule(tmp_path: Path) -> None:
    long = "a group whose name goes on " + "and on " * 12 + "<b>&amp; ends"
    frame = _compas(((long, 1500, 1050, 1500, 675), ("<i>C&D</i>", 800, 480, 1200, 264)))
    inputs = make_inputs(frame, frame["p"].to_numpy(), sensitive=("race",))
    result = fairness_method.run(inputs, ctx=JobContext(seed=0), n_boot=50)
    doc = _document(result, ("race",))
    pdf = render_report(ReportInput.from_document(doc))  # malformed markup would raise here
    assert pdf.startswith(b"%PDF")
    facts = _facts(doc)
    assert long in facts.names()
    from engine.report.names import shortening

    with shortening(facts.names()):
        story = build_story(facts, attachment_sha256="0" * 64)
        text = _text(_section(story, "summary")) + _text(_section(story, "fairness"))
    assert short_name(long) in text and long not in text
    assert "<i>C&D</i>" in text  # drawn as the characters it holds, not as markup


# -- compatibility ---------------------------------------------------------------------------------------------


def test_a_report_without_fairness_results_is_byte_identical_to_before() -> None:
    document = json.loads(gzip.decompress((FIXTURES / "without_fairness" / "results.json.gz").read_bytes()))
    assert "fairness" not in document and not {"fairness", "proxies"} & set(document["results"])
    assert document["provenance"]["roles"]["sensitive"] == ["group"] and document["group_metrics"]
    options = document["provenance"]["report"]
    pdf = render_report(
        ReportInput.from_document(
            document,
            auditor=options["auditor"],
            sections=options["sections"],
            local_rows=document["provenance"]["explain_rows"],
        )
    )
    assert hashlib.sha256(pdf).hexdigest() == WITHOUT_FAIRNESS_SHA256


def test_the_report_written_before_calls_still_rebuilds_page_for_page() -> None:
    from engine.verify import check_pages, read_report_results

    pdf = FIXTURES / "before_calls" / "report.pdf"
    differences, checked = check_pages(pdf, read_report_results(pdf))
    assert checked == "pages rebuilt from the embedded results" and differences == []
