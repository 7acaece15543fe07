"""The PDF audit report: content, embedded fonts, determinism, attachment, outline, metadata."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.report import (
    ATTACHMENT_NAME,
    SECTION_TITLES,
    ReportError,
    ReportInput,
    build_report,
    extract_embedded_results,
    render_report,
    results_json_bytes,
)
from engine.report.pdfa import pdf_date
from engine.report.pdfread import PdfFile, Stream, decode_stream

ROOT = Path(__file__).resolve().parents[2]
NOTES = "Income and debt drive the model, as expected.\n\nCheck a < b & c > d before sign-off: 中."

# The standard-14 fonts that reportlab falls back to; none may appear un-embedded.
_STANDARD_FONTS = (b"Helvetica", b"Times-Roman", b"Courier", b"Symbol", b"ZapfDingbats")


@pytest.fixture(scope="module")
def audit_document(demo_paths: Any) -> dict[str, Any]:
    """results.json of a demo audit with every cheap analysis, as `probity audit` would write it."""
    from engine.audit import AuditRequest, audit_document, run_audit
    from engine.explain import clusters, fairness, lime, native, pdp, proxies, surrogate, treeshap
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext

    request = AuditRequest(
        data=demo_paths.data, model=demo_paths.model, target="approved", sensitive=("group",), n_repeats=2, seed=7
    )
    ctx = JobContext(seed=7)
    outcome = run_audit(request, ctx)
    inputs = AuditInputs.from_dataset(outcome.dataset, outcome.roles, outcome.model)
    results = dict(outcome.results)
    results["treeshap"] = treeshap.run(inputs, ctx=ctx.sub(0, 1, "ts"), rows=list(range(0, 6000, 40)))
    results["lime"] = lime.run(inputs, ctx=ctx.sub(0, 1, "lime"), rows=[0, 40], num_samples=500, stability_runs=2)
    results["pdp"] = pdp.run(
        inputs, ctx=ctx.sub(0, 1, "pdp"), features=["income", "debt", "employment"], ice_rows=30, grid_resolution=8
    )
    results["native"] = native.run(inputs, ctx=ctx)
    results["surrogate"] = surrogate.run(inputs, ctx=ctx.sub(0, 1, "sur"), max_rows=1500)
    results["clusters"] = clusters.run(
        inputs, ctx=ctx.sub(0, 1, "cl"), attributions=results["treeshap"], k_range=(2, 3), n_init=1
    )
    results["proxies"] = proxies.run(inputs, ctx=ctx.sub(0, 1, "px"), importance=results["permutation"])
    results["fairness"] = fairness.run(inputs, ctx=ctx.sub(0, 1, "fair"), n_boot=100)
    outcome = dataclasses.replace(outcome, results=results)
    command = [
        "probity",
        "audit",
        "--data",
        str(demo_paths.data),
        "--model",
        str(demo_paths.model),
        "--target",
        "approved",
        "--sensitive",
        "group",
        "--n-repeats",
        "2",
        "--seed",
        "7",
    ]
    # Round-trip through JSON exactly as results.json is read back from disk.
    return json.loads(results_json_bytes(audit_document(outcome, command=command)))


@pytest.fixture(scope="module")
def report_input(audit_document: dict[str, Any]) -> ReportInput:
    return ReportInput.from_document(
        audit_document, auditor="Ada Auditor", organisation="Model Risk Office", reviewer_notes=NOTES
    )


@pytest.fixture(scope="module")
def report_path(report_input: ReportInput, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "nested" / "report.pdf"
    build_report(report_input, path)
    return path


@pytest.fixture(scope="module")
def pdf(report_path: Path) -> PdfFile:
    return PdfFile.open(report_path)


def _pdftotext(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian package poppler-utils) is not installed, so text cannot be extracted")
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def _text(raw: Any) -> str:
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be")
    return raw.decode("latin-1")


def _outline_titles(pdf: PdfFile) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []

    def walk(node: Any, level: int) -> None:
        while node is not None:
            item = pdf.resolve(node)
            out.append((level, _text(item["Title"])))
            if "First" in item:
                walk(item["First"], level + 1)
            node = item.get("Next")

    walk(pdf.get(pdf.catalog, "Outlines", "First"), 0)
    return out


# -- content ---------------------------------------------------------------------------------------------


def test_text_names_every_section_the_hashes_and_the_features(
    report_path: Path, audit_document: dict[str, Any]
) -> None:
    text = _pdftotext(report_path)
    flat = re.sub(r"\s+", " ", text)
    for key, title in SECTION_TITLES.items():
        if key == "network":
            continue  # only a differentiable model has network views (tests/engine/test_network.py reads that section)
        assert title in flat, title
    prov = audit_document["provenance"]
    assert prov["data_sha256"] in text
    assert prov["model_sha256"] in text
    for feature in prov["roles"]["features"]:
        assert feature in text, feature
    assert "Ada Auditor" in text and "Model Risk Office" in text
    # The regeneration command, the audit date taken from the results, and the notes escaped literally.
    assert "--n-repeats 2 --seed 7" in flat
    assert "Check a < b & c > d before sign-off" in flat
    day = prov["finished_at"][:10]
    assert re.search(r"\d{1,2} \w+ " + day[:4], flat)


def test_footer_counts_pages_as_page_x_of_y(report_path: Path, pdf: PdfFile) -> None:
    text = _pdftotext(report_path)
    n = pdf.get(pdf.catalog, "Pages", "Count")
    assert n >= 10
    found = [int(a) for a, b in re.findall(r"Page (\d+) of (\d+)", text) if int(b) == n]
    assert found == list(range(1, n + 1))


def test_glyphs_the_fonts_lack_become_replacement_characters(report_path: Path) -> None:
    text = _pdftotext(report_path)
    assert "中" not in text
    assert "sign-off: \ufffd" in re.sub(r"\s+", " ", text)


def test_charts_are_vector_drawings_not_images(report_path: Path, pdf: PdfFile) -> None:
    assert all(not (isinstance(o, Stream) and o.dict.get("Subtype") == "Image") for _, o in pdf.objects())
    # Curves are drawn as paths in the page content: the ROC curve alone has dozens of line segments.
    contents = b"".join(
        decode_stream(pdf.resolve(pdf.resolve(p)["Contents"])) for p in pdf.get(pdf.catalog, "Pages", "Kids")
    )
    assert contents.count(b" l ") + contents.count(b" l\n") > 500


# -- fonts --------------------------------------------------------------------------------------------------


def test_every_font_is_an_embedded_truetype_subset(report_path: Path, pdf: PdfFile) -> None:
    fonts = [o for _, o in pdf.objects() if isinstance(o, dict) and o.get("Type") == "Font"]
    assert len(fonts) >= 3  # regular, bold and monospace at least
    for font in fonts:
        assert font["Subtype"] == "TrueType", font
        descriptor = pdf.resolve(font["FontDescriptor"])
        program = pdf.resolve(descriptor["FontFile2"])
        assert isinstance(program, Stream) and len(decode_stream(program)) > 1000
        assert str(font["BaseFont"]).split("+", 1)[1].startswith("DejaVu")
    raw = report_path.read_bytes()
    # Independent of the parser: font dictionaries are never inside compressed streams here.
    assert raw.count(b"/Type /Font\n") + raw.count(b"/Type /Font ") == len(fonts)
    for name in _STANDARD_FONTS:
        assert b"/BaseFont /" + name not in raw


def test_poppler_sees_every_font_embedded(report_path: Path) -> None:
    if shutil.which("pdffonts") is None:
        pytest.skip("pdffonts (Debian package poppler-utils) is not installed")
    rows = subprocess.run(
        ["pdffonts", str(report_path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    assert rows
    for row in rows:
        emb = row.split()[-5]
        assert emb == "yes", row


# -- determinism --------------------------------------------------------------------------------------------


def test_identical_inputs_give_identical_bytes(report_input: ReportInput, report_path: Path) -> None:
    first = render_report(report_input)
    assert render_report(report_input) == first
    assert report_path.read_bytes() == first


def test_bytes_do_not_depend_on_the_process_or_the_environment(
    report_path: Path, audit_document: dict[str, Any], tmp_path: Path
) -> None:
    doc_path = tmp_path / "results.json"
    doc_path.write_bytes(results_json_bytes(audit_document))
    out = tmp_path / "again.pdf"
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from engine.report import ReportInput, build_report\n"
        "doc = json.loads(Path(sys.argv[1]).read_text(encoding='utf-8'))\n"
        "r = ReportInput.from_document(doc, auditor='Ada Auditor', organisation='Model Risk Office',\n"
        "                              reviewer_notes=sys.argv[3])\n"
        "build_report(r, Path(sys.argv[2]))\n"
    )
    env = {
        "PYTHONHASHSEED": "12345",
        "SOURCE_DATE_EPOCH": "86400",
        "TZ": "Pacific/Auckland",
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
    }
    subprocess.run(
        [sys.executable, "-c", script, str(doc_path), str(out), NOTES],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert out.read_bytes() == report_path.read_bytes()


def test_dates_come_from_the_results_not_the_clock(pdf: PdfFile, audit_document: dict[str, Any]) -> None:
    from engine.report.pdfa import parse_timestamp

    finished = audit_document["provenance"]["finished_at"]
    info = pdf.resolve(pdf.trailer["Info"])
    assert _text(info["CreationDate"]) == pdf_date(parse_timestamp(finished))
    assert info["ModDate"] == info["CreationDate"]
    xmp = decode_stream(pdf.get(pdf.catalog, "Metadata")).decode("utf-8")
    assert f"<xmp:CreateDate>{finished}</xmp:CreateDate>" in xmp


# -- attachment -------------------------------------------------------------------------------------------


def test_embedded_results_equal_the_input_document(report_path: Path, audit_document: dict[str, Any]) -> None:
    assert extract_embedded_results(report_path) == audit_document


def test_attachment_is_byte_identical_to_results_json(
    report_path: Path, audit_document: dict[str, Any], tmp_path: Path
) -> None:
    if shutil.which("pdfdetach") is None:
        pytest.skip("pdfdetach (Debian package poppler-utils) is not installed")
    listing = subprocess.run(
        ["pdfdetach", "-list", str(report_path)], capture_output=True, text=True, check=True
    ).stdout
    assert f"1: {ATTACHMENT_NAME}" in listing
    target = tmp_path / "out.json"
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(target), str(report_path)], check=True)
    data = target.read_bytes()
    assert data == results_json_bytes(audit_document)
    # The reproducibility section prints this file's hash for readers to check.
    assert hashlib.sha256(data).hexdigest() in _pdftotext(report_path)


def test_attachment_is_declared_as_a_pdfa3_associated_file(pdf: PdfFile) -> None:
    (spec_ref,) = pdf.catalog["AF"]
    spec = pdf.resolve(spec_ref)
    assert spec["AFRelationship"] == "Data"
    assert _text(spec["F"]) == _text(spec["UF"]) == ATTACHMENT_NAME
    stream = pdf.resolve(spec["EF"]["F"])
    assert stream.dict["Subtype"] == "application/json"
    params = stream.dict["Params"]
    data = decode_stream(stream)
    assert params["Size"] == len(data)
    assert params["CheckSum"] == hashlib.md5(data).digest()
    names = pdf.get(pdf.catalog, "Names", "EmbeddedFiles", "Names")
    assert names[1] == spec_ref


def test_extracting_from_a_file_that_is_not_a_report_names_the_file(tmp_path: Path) -> None:
    from reportlab.pdfgen.canvas import Canvas

    plain = tmp_path / "plain.pdf"
    canvas = Canvas(str(plain), invariant=1)
    canvas.drawString(72, 72, "no attachment")
    canvas.save()
    with pytest.raises(ReportError) as err:
        extract_embedded_results(plain)
    assert str(err.value) == "plain.pdf has no attached results.json, so it is not a Probity report."
    assert err.value.path == plain

    text = tmp_path / "notes.pdf"
    text.write_text("hello", encoding="utf-8")
    with pytest.raises(ReportError) as err:
        extract_embedded_results(text)
    assert str(err.value) == (
        "The PDF is not one Probity can read back: it does not start with a PDF header (notes.pdf)."
    )


def test_a_damaged_attachment_is_reported_not_crashed(report_path: Path, tmp_path: Path) -> None:
    data = bytearray(report_path.read_bytes())
    pdf = PdfFile.from_bytes(bytes(data))
    spec = pdf.resolve(pdf.catalog["AF"][0])
    ref = spec["EF"]["F"]
    start = pdf.offsets[ref.num]
    body = data.index(b"stream\n", start) + len(b"stream\n")
    data[body + 10 : body + 20] = b"\x00" * 10  # corrupt the compressed JSON, same length
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(bytes(data))
    with pytest.raises(ReportError, match=r"^The results.json attached to broken.pdf is damaged: "):
        extract_embedded_results(broken)


# -- PDF/A identification, outline, metadata ------------------------------------------------------------


def test_outline_has_an_entry_per_section(pdf: PdfFile) -> None:
    outline = _outline_titles(pdf)
    top = [title for level, title in outline if level == 0]
    assert top[0].startswith("Audit of ")
    numbered = [re.sub(r"^\d+\s+", "", t) for t in top[1:]]
    present = [title for key, title in SECTION_TITLES.items() if key != "network"]  # a forest has no network
    assert numbered == present
    assert [int(t.split()[0]) for t in top[1:]] == list(range(1, len(present) + 1))
    assert any(level == 1 and title == "Permutation importance" for level, title in outline)
    assert pdf.catalog["PageMode"] == "UseOutlines"


def test_metadata_agrees_between_info_dictionary_and_xmp(pdf: PdfFile, report_path: Path) -> None:
    info = {k: _text(v) for k, v in pdf.resolve(pdf.trailer["Info"]).items()}
    assert info["Title"] == "Audit of credit_model.skops on credit.csv"
    assert info["Author"] == "Ada Auditor"
    assert info["Subject"].startswith("Model audit report")
    assert "credit_model.skops" in info["Keywords"]
    assert "Trapped" not in info  # no XMP counterpart is written for it
    metadata = pdf.get(pdf.catalog, "Metadata")
    assert metadata.dict["Type"] == "Metadata" and "Filter" not in metadata.dict
    xmp = decode_stream(metadata).decode("utf-8")
    assert "<pdfaid:part>3</pdfaid:part>" in xmp and "<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    assert f'<rdf:li xml:lang="x-default">{info["Title"]}</rdf:li>' in xmp
    assert f"<rdf:li>{info['Author']}</rdf:li>" in xmp
    assert f"<pdf:Producer>{info['Producer']}</pdf:Producer>" in xmp
    assert f"<xmp:CreatorTool>{info['Creator']}</xmp:CreatorTool>" in xmp
    assert f"<pdf:Keywords>{info['Keywords']}</pdf:Keywords>" in xmp
    if shutil.which("pdfinfo") is not None:
        shown = subprocess.run(["pdfinfo", str(report_path)], capture_output=True, text=True, check=True).stdout
        assert re.search(r"^Author:\s+Ada Auditor$", shown, re.M)
        assert re.search(r"^Metadata Stream:\s+yes$", shown, re.M)


def test_output_intent_carries_the_bundled_srgb_profile(pdf: PdfFile) -> None:
    (intent,) = [pdf.resolve(i) for i in pdf.catalog["OutputIntents"]]
    assert intent["S"] == "GTS_PDFA1"
    profile = pdf.resolve(intent["DestOutputProfile"])
    assert profile.dict["N"] == 3
    assert decode_stream(profile) == (ROOT / "resources" / "icc" / "sRGB.icc").read_bytes()


def test_every_endstream_follows_an_end_of_line_outside_the_length(report_path: Path, pdf: PdfFile) -> None:
    raw = report_path.read_bytes()
    checked = 0
    for num, obj in pdf.objects():
        if not isinstance(obj, Stream):
            continue
        keyword = re.compile(rb">>\s*stream(\r\n|\n)").search(raw, pdf.offsets[num])
        end = keyword.end() + obj.dict["Length"]
        assert re.match(rb"(\r\n|\n)endstream", raw[end : end + 11]), num
        checked += 1
    assert checked > 10
    # The rewritten cross-reference table points at every object.
    for num, offset in pdf.offsets.items():
        assert raw.startswith(f"{num} 0 obj".encode(), offset)
    assert raw.startswith(b"%PDF-1.7\n%")
    assert all(b > 127 for b in raw[10:14])


# -- optional sections and inputs ------------------------------------------------------------------------


def _minimal(document: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    doc["results"] = {k: v for k, v in doc["results"].items() if k in ("performance", "permutation")}
    return doc


def test_sections_without_results_are_left_out(audit_document: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "minimal.pdf"
    build_report(
        ReportInput.from_document(
            _minimal(audit_document),
            sections=[
                "summary",
                "performance",
                "importance",
                "local",
                "clusters",
                "dependence",
                "surrogates",
                "reproducibility",
            ],
        ),
        path,
    )
    outline = [re.sub(r"^\d+\s+", "", t) for level, t in _outline_titles(PdfFile.open(path)) if level == 0]
    assert outline[1:] == [
        "Executive summary",
        "Predictive performance",
        "Global feature importance",
        "Reproducibility",
    ]
    assert extract_embedded_results(path) == _minimal(audit_document)


def test_group_differences_appear_only_when_recorded(audit_document: dict[str, Any], tmp_path: Path) -> None:
    doc = _minimal(audit_document)
    plain = tmp_path / "plain.pdf"
    build_report(ReportInput.from_document(doc, sections=["summary"]), plain)
    assert "percentage points" not in _pdftotext(plain)
    doc["group_metrics"] = [
        {"attribute": "group", "group": "A", "n": 3900, "positive_rate": 0.61, "accuracy": 0.84},
        {"attribute": "group", "group": "B", "n": 2100, "positive_rate": 0.38, "accuracy": 0.80},
    ]
    with_groups = tmp_path / "groups.pdf"
    build_report(ReportInput.from_document(doc, sections=["summary"]), with_groups)
    text = re.sub(r"\s+", " ", _pdftotext(with_groups))
    assert (
        "the predicted positive rate ranges from 38.0 % (B, n = 2,100) to 61.0 % (A, n = 3,900), a difference "
        "of 23.0 percentage points"
    ) in text
    assert (
        "the accuracy ranges from 80.0 % (B, n = 2,100) to 84.0 % (A, n = 3,900), a difference of 4.0 percentage points"
    ) in text


def test_unknown_sections_and_missing_dates_are_refused(audit_document: dict[str, Any]) -> None:
    with pytest.raises(ReportError) as err:
        ReportInput.from_document(audit_document, sections=["summary", "appendix"])
    assert str(err.value).startswith("Unknown report section 'appendix'; choose from summary, data, model,")
    doc = _minimal(audit_document)
    del doc["provenance"]["finished_at"], doc["provenance"]["started_at"]
    with pytest.raises(ReportError) as err:
        ReportInput.from_document(doc)
    assert str(err.value) == "The results document has no recorded audit time (provenance.finished_at)."


def test_an_unwritable_destination_names_the_file(report_input: ReportInput, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    target = blocker / "report.pdf"  # a folder that is a file
    with pytest.raises(ReportError) as err:
        build_report(dataclasses.replace(report_input, sections=("summary",)), target)
    assert str(err.value).startswith(f"The report {target} cannot be written: ")
    assert list(tmp_path.iterdir()) == [blocker]


def test_stream_fixup_keeps_every_object_readable(report_path: Path, pdf: PdfFile) -> None:
    # Decoding every stream proves the Length values and the rebuilt offsets agree.
    for _, obj in pdf.objects():
        if isinstance(obj, Stream) and obj.dict.get("Filter"):
            decode_stream(obj)
    page = pdf.resolve(pdf.get(pdf.catalog, "Pages", "Kids")[0])
    assert b"Tf" in decode_stream(pdf.resolve(page["Contents"]))
