"""The report's typed record header, and the sections keyed by result type that read it, never results.json."""

from __future__ import annotations

import copy
import dataclasses
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from engine.explain.performance import PerformanceResult
from engine.record import ReportOptions
from engine.report import SECTIONS, ReportError, ReportInput, extract_embedded_results
from engine.report.facts import RENDERERS, Facts, renderer_of
from engine.report.header import FileRecord, GroupFigures, ModelSummary, RecordHeader, RoleRecord, TrustRecord
from engine.report.sections import SECTION_BUILDERS, build_story
from engine.results import Result

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 480.0


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """results.json of the audit kept in tests/fixtures/before_calls (written by an older Probity)."""
    return extract_embedded_results(ROOT / "tests" / "fixtures" / "before_calls" / "report.pdf")


def test_the_header_holds_what_the_document_records(document: dict[str, Any]) -> None:
    header = RecordHeader.from_document(document)
    prov, model = document["provenance"], document["model"]
    assert header.kind is None and not header.from_session
    assert header.probity_version == document["probity_version"]
    assert header.data_file == FileRecord("credit.csv", prov["data_sha256"], "csv")
    assert header.model_file == FileRecord("credit_model.skops", prov["model_sha256"], "skops")
    assert header.data_options == prov["data_options"]
    assert header.data is not None and header.data.rows == 240 and header.data.columns == document["data"]["columns"]
    assert [(c.name, c.kind, c.dtype, c.n_missing, c.n_distinct) for c in header.data.schema] == [
        (c["name"], c["kind"], c["dtype"], c["n_missing"], c["n_distinct"]) for c in document["data"]["schema"]
    ]
    assert header.model == ModelSummary(
        format="skops",
        task="classification",
        classes=(0, 1),
        input_columns=tuple(model["input_columns"]),
        size_bytes=model["size_bytes"],
    )
    assert header.trust == TrustRecord(True, "probity reviewed types", ("sklearn.tree._tree.Tree",), False, ())
    assert header.roles == RoleRecord("approved", tuple(prov["roles"]["features"]), ("group",), ())
    assert header.seed == 0 and header.parameters == prov["parameters"]
    assert header.requested_features is None  # the audit was run without --features
    assert header.explain_rows == (0, 1, 2)
    assert (header.started_at, header.finished_at) == (prov["started_at"], prov["finished_at"])
    assert header.command == shlex.join(prov["command"]) and shlex.split(header.command) == prov["command"]
    assert header.versions == prov["versions"] and header.hardware == prov["hardware"]
    assert header.warnings == tuple(document["warnings"])
    assert header.group_metrics == tuple(
        GroupFigures(g["attribute"], g["group"], g["n"], g["positive_rate"], g["accuracy"])
        for g in document["group_metrics"]
    )
    assert header.report == ReportOptions(auditor="Fixture")
    assert set(header.names()) == {c["name"] for c in document["data"]["schema"]} | {"0", "1"}


def test_an_empty_document_reads_as_an_empty_header() -> None:
    assert RecordHeader.from_document({}) == RecordHeader()
    assert RecordHeader().data is None and RecordHeader().model is None and RecordHeader().group_metrics is None


def test_older_names_of_the_hardware_and_a_command_as_one_line_are_read(document: dict[str, Any]) -> None:
    doc = copy.deepcopy(document)
    prov = doc["provenance"]
    del prov["hardware"]
    prov["device"] = {"gpu": "one", "cores": 8}
    prov["command"] = "probity audit --data 'a b.csv'"
    header = RecordHeader.from_document(doc)
    assert header.hardware == {"gpu": "one", "cores": 8}
    assert header.command == "probity audit --data 'a b.csv'"
    prov["device"] = "a laptop"
    assert RecordHeader.from_document(doc).hardware == "a laptop"


def _set(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "sentence"),
    [
        (("provenance",), [], "The results document's provenance should be an object, not a list."),
        (("provenance", "seed"), "0", "The results document's provenance.seed should be a whole number, not a string."),
        (("provenance", "seed"), True, "The results document's provenance.seed should be a whole number, not true."),
        (
            ("provenance", "roles", "sensitive"),
            "group",
            "The results document's provenance.roles.sensitive should be a list of names, not a string.",
        ),
        (
            ("provenance", "roles", "features"),
            ["age", 3],
            "The results document's provenance.roles.features should be a list of names; it holds a number.",
        ),
        (
            ("provenance", "model_trust", "required"),
            "yes",
            "The results document's provenance.model_trust.required should be true or false, not a string.",
        ),
        (
            ("provenance", "versions", "python"),
            3.11,
            "The results document's provenance.versions.python should be a string, not a number.",
        ),
        (
            ("provenance", "hardware"),
            ["cpu"],
            "The results document's provenance.hardware should be an object, not a list.",
        ),
        (
            ("provenance", "command"),
            7,
            "The results document's provenance.command should be a string or a list of arguments, not a number.",
        ),
        (
            ("provenance", "finished_at"),
            20261206,
            "The results document's provenance.finished_at should be a string, not a number.",
        ),
        (
            ("provenance", "report", "sections"),
            "summary",
            "The results document's provenance.report.sections should be a list of section names, not a string.",
        ),
        (("data", "rows"), "240", "The results document's data.rows should be a whole number, not a string."),
        (("data", "schema", 1), "age", "The results document's data.schema[1] should be an object, not a string."),
        (("data", "schema", 1), {"kind": "numeric"}, "The results document's data.schema[1] names no column."),
        (
            ("model", "classes"),
            [[0]],
            "The results document's model.classes should be a list of values; it holds a list.",
        ),
        (("warnings",), "careful", "The results document's warnings should be a list of sentences, not a string."),
        (
            ("group_metrics", 0, "positive_rate"),
            "high",
            "The results document's group_metrics[0].positive_rate should be a number, not a string.",
        ),
    ],
)
def test_a_malformed_header_is_refused_in_one_sentence(
    document: dict[str, Any], path: tuple[Any, ...], value: Any, sentence: str
) -> None:
    doc = _set(document, path, value)
    with pytest.raises(ReportError) as err:
        ReportInput.from_document(doc)
    assert str(err.value) == sentence


def test_a_document_that_is_no_object_is_refused() -> None:
    with pytest.raises(ReportError) as err:
        RecordHeader.from_document([])  # type: ignore[arg-type]
    assert str(err.value) == "The results document should be an object, not a list."


class _Sealed(Mapping[str, Any]):
    """A results document that fails the test on any read."""

    def __getitem__(self, key: str) -> Any:
        raise AssertionError(f"a section read results.json[{key!r}]")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a section iterated over results.json")

    def __len__(self) -> int:
        raise AssertionError("a section measured results.json")


@pytest.mark.parametrize("kind", [None, "session"])
def test_the_sections_read_the_typed_record_never_the_document(document: dict[str, Any], kind: str | None) -> None:
    doc = copy.deepcopy(document)
    if kind is not None:
        doc["provenance"]["kind"] = kind
    report = ReportInput.from_document(doc, reviewer_notes="Looked at it.", local_rows=[0, 2])
    sealed = dataclasses.replace(report, document=_Sealed())
    assert sealed.header is report.header
    story = build_story(Facts.gather(sealed, WIDTH), attachment_sha256="0" * 64)
    headings = [f.outline_key for f in story if hasattr(f, "outline_key")]
    # Every section drawn but fairness and network: the fixture predates the first and its forest has no network
    # (test_report_fairness seals one that has fairness; test_network reads a network section).
    absent = ("fairness", "network")
    assert [key for key in SECTIONS if f"s-{key}" in headings] == [key for key in SECTIONS if key not in absent]


def test_each_result_type_has_one_renderer_with_a_field_and_sections() -> None:
    fields = {f.name for f in dataclasses.fields(Facts)}
    for cls, renderer in RENDERERS.items():
        assert issubclass(cls, Result) and cls.kind != Result.kind
        assert renderer.slot in fields and set(renderer.sections) <= set(SECTIONS), cls
    assert len({r.slot for r in RENDERERS.values()}) == len(RENDERERS)
    assert set(SECTION_BUILDERS) == set(SECTIONS) - {"reproducibility"}


def test_results_are_sorted_by_type_and_a_subclass_goes_where_its_base_does(document: dict[str, Any]) -> None:
    report = ReportInput.from_document(document)
    facts = Facts.gather(report, WIDTH)
    drawn = 0
    for result in report.results.values():
        renderer = renderer_of(result)
        if renderer is None:
            continue
        drawn += 1
        held = getattr(facts, renderer.slot)
        first = next(r for r in report.results.values() if renderer_of(r) is renderer)
        assert result in held if renderer.every else held is first
    assert drawn >= 8 and facts.performance is not None and facts.groups is not None and facts.attributions
    subclass = type("LaterPerformanceResult", (PerformanceResult,), {})
    assert renderer_of(object.__new__(subclass)) is RENDERERS[PerformanceResult]


def test_the_recorded_group_figures_come_first_and_the_result_s_otherwise(document: dict[str, Any]) -> None:
    recorded = Facts.gather(ReportInput.from_document(document), WIDTH).group_figures()
    assert len(recorded) >= 2
    without = copy.deepcopy(document)
    del without["group_metrics"]
    assert Facts.gather(ReportInput.from_document(without), WIDTH).group_figures() == recorded
    none_recorded = _set(document, ("group_metrics",), [])
    assert Facts.gather(ReportInput.from_document(none_recorded), WIDTH).group_figures() == ()
