"""`probity verify`: a report checks against its inputs, and any change to inputs, numbers or files shows."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import pickle
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.cli import main
from engine.report import ReportInput, build_report, extract_embedded_results, results_json_bytes
from engine.verify import MAX_LISTED, check_companions, check_pages, compare_documents

TIMESTAMP = "2024-05-01T12:00:00Z"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["--progress", "none", *[str(a) for a in argv]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def full_registry() -> Iterator[None]:
    """Every analysis of the audit registered, SHAP included even before the registry lists it."""
    from engine.explain import shap_auto
    from engine.registry import METHODS

    with pytest.MonkeyPatch.context() as mp:
        if "shap" not in METHODS:
            mp.setitem(METHODS, "shap", shap_auto.METHOD)
        yield


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The demo's data and model at 1,500 rows, so that each re-run stays quick."""
    import skops.io as sio

    from engine.demo import make_credit_frame, train_credit_model

    root = tmp_path_factory.mktemp("small-demo")
    frame = make_credit_frame(n_rows=1500, seed=3)
    data, model = root / "credit.csv", root / "credit_model.skops"
    frame.to_csv(data, index=False, lineterminator="\n")
    sio.dump(train_credit_model(frame, seed=3), model)
    return SimpleNamespace(data=data, model=model)


@pytest.fixture(scope="module")
def audited(small_demo: Any, full_registry: None, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """An audit of the small demo with small sample sizes: its folder, data and model."""
    demo_paths = small_demo
    root = tmp_path_factory.mktemp("verify")
    out = root / "audit"
    code = main(
        [
            "--progress",
            "none",
            "audit",
            "--data",
            str(demo_paths.data),
            "--model",
            str(demo_paths.model),
            "--target",
            "approved",
            "--sensitive",
            "group",
            "--out",
            str(out),
            "--seed",
            "5",
            "--n-repeats",
            "2",
            "--lime-samples",
            "300",
            "--cluster-rows",
            "random:60",
            "--explain-rows",
            "0,9",
            "--timestamp",
            TIMESTAMP,
            "--auditor",
            "Ada Auditor",
        ]
    )
    assert code == 0
    return SimpleNamespace(
        root=root,
        out=out,
        pdf=out / "report.pdf",
        data=demo_paths.data,
        model=demo_paths.model,
        doc=json.loads((out / "results.json").read_text("utf-8")),
    )


def _numbers(doc: Any) -> int:
    if isinstance(doc, dict):
        return sum(_numbers(v) for v in doc.values())
    if isinstance(doc, list):
        return sum(_numbers(v) for v in doc)
    return int(isinstance(doc, (int, float)) and not isinstance(doc, bool))


def test_unchanged_inputs_verify(audited: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "verify", audited.pdf, "--data", audited.data, "--model", audited.model)
    assert code == 0, out + err
    first = out.splitlines()[0]
    match = re.fullmatch(r"verified: (\d+) numbers in (\d+) results match", first)
    assert match, first
    assert int(match.group(2)) == len(audited.doc["results"]) >= 9
    # Every number is compared except the few describing the machine (versions hold none; sizes do).
    assert int(match.group(1)) > 0.99 * _numbers(audited.doc)
    assert "results.json beside the report" in out and "manifest.json" in out
    assert "pages rebuilt from the embedded results" in out


def test_one_changed_byte_in_the_data_fails_naming_the_data_hash(
    audited: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = audited.data.read_text(encoding="utf-8")
    header, first_row, rest = text.split("\n", 2)
    income = header.split(",").index("income")
    cells = first_row.split(",")
    digit = cells[income][0]
    cells[income] = ("9" if digit != "9" else "1") + cells[income][1:]  # one byte: the leading digit
    changed = tmp_path / audited.data.name
    changed.write_text("\n".join([header, ",".join(cells), rest]), encoding="utf-8")
    assert len(changed.read_bytes()) == len(audited.data.read_bytes())

    code, out, _ = _run(capsys, "verify", audited.pdf, "--data", changed, "--model", audited.model)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"data SHA-256 differs: report has {_sha(audited.data)}, file has {_sha(changed)}."
    assert not any(line.startswith("model SHA-256") for line in lines)
    total = int(
        re.fullmatch(r"not verified: (\d+) differences? \(\d+ numbers compared in \d+ results\)", lines[-1]).group(1)
    )
    # A new income changes numbers (metrics, importances, LIME and SHAP of row 0), not just the hash.
    assert total > 1
    assert any(line.startswith("performance.") for line in lines)
    listed = lines[:-1]
    if total > MAX_LISTED:
        assert listed[-1] == f"… and {total - MAX_LISTED} more differences"
        assert len(listed) == MAX_LISTED + 1
    else:
        assert len(listed) == total


def test_renamed_copies_of_the_inputs_verify(
    audited: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "renamed-data.csv"
    model = tmp_path / "renamed-model.skops"
    shutil.copyfile(audited.data, data)
    shutil.copyfile(audited.model, model)
    code, out, err = _run(capsys, "verify", audited.pdf, "--data", data, "--model", model)
    assert code == 0, out + err


def test_changed_numbers_with_the_same_files_are_named(
    audited: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy.deepcopy(audited.doc)
    doc["results"]["permutation"]["mean"][1] += 0.25
    doc["results"]["lime"]["rows"][1] = 8
    folder = tmp_path / "forged"
    report = doc["provenance"]["report"]
    build_report(
        ReportInput.from_document(doc, auditor=report["auditor"], local_rows=doc["provenance"]["explain_rows"]),
        folder / "report.pdf",
    )
    code, out, _ = _run(capsys, "verify", folder / "report.pdf", "--data", audited.data, "--model", audited.model)
    assert code == 1
    original = audited.doc["results"]["permutation"]["mean"][1]
    assert f"results.permutation.mean[1]: report has {original + 0.25!r}, re-run gives {original!r}." in out
    assert "results.lime.rows[1]: report has 8, re-run gives 9." in out
    assert out.splitlines()[-1].startswith("not verified: 2 differences")


def test_results_and_manifest_beside_the_report_are_checked(audited: SimpleNamespace, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(audited.out, folder)
    doc = extract_embedded_results(folder / "report.pdf")
    differences, checked = check_companions(folder / "report.pdf", doc)
    assert differences == []
    assert checked == ["results.json beside the report", "manifest.json"]

    (folder / "results.json").write_bytes(results_json_bytes(doc).replace(b'"seed": 5', b'"seed": 6', 1))
    with open(folder / "report.pdf", "ab") as handle:
        handle.write(b"\n% appended\n")
    differences, _ = check_companions(folder / "report.pdf", doc)
    assert differences[0] == "results.json beside report.pdf differs from the copy embedded in it."
    assert any(
        d.startswith(
            "report.pdf SHA-256 differs from manifest.json: manifest has "
            f"{_sha(audited.pdf)}, file has {_sha(folder / 'report.pdf')}."
        )
        for d in differences
    )
    assert any(d.startswith("results.json SHA-256 differs from manifest.json") for d in differences)


def test_edited_pages_are_found(audited: SimpleNamespace, tmp_path: Path) -> None:
    doc = extract_embedded_results(audited.pdf)
    assert check_pages(audited.pdf, doc) == ([], "pages rebuilt from the embedded results")
    edited = tmp_path / "report.pdf"
    raw = audited.pdf.read_bytes()
    marker = b"Ada Auditor"
    assert marker in raw  # the author in the metadata; a forger would change a figure the same way
    edited.write_bytes(raw.replace(marker, b"Bob Auditor"))
    differences, _ = check_pages(edited, doc)
    assert differences == [
        "The pages of report.pdf differ from the report rebuilt from its embedded results "
        "(edited after it was written, or built with other fonts or ReportLab)."
    ]


def test_a_file_that_is_not_a_report_is_exit_2(
    audited: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.pdf"
    text.write_text("not a PDF at all\n", encoding="utf-8")
    code, out, err = _run(capsys, "verify", text, "--data", audited.data, "--model", audited.model)
    assert code == 2 and out == ""
    assert "notes.pdf" in err and "PDF header" in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err

    from reportlab.pdfgen.canvas import Canvas

    plain = tmp_path / "plain.pdf"
    canvas = Canvas(str(plain), invariant=1)
    canvas.drawString(72, 720, "A PDF without results")
    canvas.save()
    code, _, err = _run(capsys, "verify", plain, "--data", audited.data, "--model", audited.model)
    assert code == 2
    assert "plain.pdf has no attached results.json" in err


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_an_untrusted_or_unsafe_model_is_exit_3(
    audited: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LogisticRegression

    plain = tmp_path / "model.pkl"
    plain.write_bytes(pickle.dumps(LogisticRegression()))
    code, _, err = _run(capsys, "verify", audited.pdf, "--data", audited.data, "--model", plain)
    assert code == 3
    assert _sha(plain) in err and "--trust-model" in err

    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(_Payload(marker)))
    code, _, err = _run(
        capsys, "verify", audited.pdf, "--data", audited.data, "--model", bad, "--trust-model", _sha(bad)
    )
    assert code == 3 and "system" in err
    assert not marker.exists()


# -- the comparison itself ------------------------------------------------------------------------------------


def _doc(**results: Any) -> dict[str, Any]:
    return {"provenance": {"versions": {"numpy": "2.4.0"}, "hardware": {"cpu": "A"}, "seed": 1}, "results": results}


def test_floats_match_exactly_or_within_the_stated_tolerance() -> None:
    a = _doc(x={"values": [1.0, 0.5, 0.0, 3], "name": "f"})
    same = compare_documents(a, copy.deepcopy(a))
    assert same.differences == () and same.n_numbers == 5 and same.n_within_tolerance == 0

    b = _doc(x={"values": [1.0 + 4e-10, 0.5, 1e-13, 3], "name": "f"})
    close = compare_documents(a, b)
    assert close.differences == () and close.n_within_tolerance == 2
    exact = compare_documents(a, b, rel_tol=0.0)
    assert exact.differences == (
        f"results.x.values[0]: report has 1.0, re-run gives {1.0 + 4e-10!r}.",
        f"results.x.values[2]: report has 0.0, re-run gives {1e-13!r}.",
    )

    c = _doc(x={"values": [1.0 + 2e-9, 0.5, 0.0, 4], "name": "g"})
    far = compare_documents(a, c)
    assert far.differences == (
        f"results.x.values[0]: report has 1.0, re-run gives {1.0 + 2e-9!r}.",
        "results.x.values[3]: report has 3, re-run gives 4.",  # integers are always exact
        'results.x.name: report has "f", re-run gives "g".',
    )


def test_structure_differences_and_machine_notes() -> None:
    a = _doc(x={"values": [1.0, 2.0]}, y={"k": 1})
    b = _doc(x={"values": [1.0]}, z={"k": 1})
    b["provenance"]["versions"] = {"numpy": "2.4.1"}
    b["provenance"]["hardware"] = {"cpu": "B"}
    result = compare_documents(a, b)
    assert result.differences == (
        "results.x.values: report has 2 values, re-run gives 1.",
        "results.y: in the report but not produced by the re-run.",
        "results.z: produced by the re-run but not in the report.",
    )
    # Versions and hardware are not compared, only noted.
    assert result.notes == (
        "numpy is 2.4.0 in the report and 2.4.1 here.",
        "The report was computed on cpu A; the re-run on B.",
    )


def test_outcome_lines_list_differences_one_per_line_capped_with_a_count() -> None:
    from engine.verify import VerifyOutcome

    many = tuple(f"results.x.values[{i}]: report has {i}, re-run gives {i + 1}." for i in range(MAX_LISTED + 5))
    failed = VerifyOutcome(
        pdf=Path("r.pdf"),
        differences=many,
        notes=(),
        checked=(),
        n_numbers=40,
        n_results=3,
        n_within_tolerance=0,
        rel_tol=1e-9,
    )
    assert failed.lines() == [
        *many[:MAX_LISTED],
        "… and 5 more differences",
        f"not verified: {MAX_LISTED + 5} differences (40 numbers compared in 3 results)",
    ]
    passed = dataclasses.replace(failed, differences=(), n_within_tolerance=2, checked=("manifest.json",))
    assert passed.lines() == [
        "verified: 40 numbers in 3 results match",
        "  38 bit-identical, 2 within the relative tolerance 1e-09 allowed for float reductions whose order "
        "depends on BLAS threading",
        "  also checked: manifest.json",
    ]


def test_the_compute_device_is_a_note_not_a_difference() -> None:
    """A report computed on a GPU verifies on a laptop: where TreeSHAP ran is noted, the numbers compared."""
    a = _doc(shap={"values": [0.25], "provenance": {"parameters": {"device": "cuda", "variant": "path_dependent"}}})
    b = copy.deepcopy(a)
    b["results"]["shap"]["provenance"]["parameters"]["device"] = "cpu"
    result = compare_documents(a, b)
    assert result.differences == ()
    assert "shap was computed on cuda in the report and on cpu here." in result.notes
    b["results"]["shap"]["provenance"]["parameters"]["variant"] = "interventional"
    assert compare_documents(a, b).differences == (
        'results.shap.provenance.parameters.variant: report has "path_dependent", re-run gives "interventional".',
    )


def test_a_gpu_running_out_of_memory_is_noted_not_a_difference() -> None:
    """Where the work moved to the CPU says where it ran, like the hardware; any other warning is compared."""
    from engine.device import out_of_memory_warning

    fallback = out_of_memory_warning("Integrated Gradients", "cuda", 256)
    recorded = {"results": {"ig": {"provenance": {"warnings": ["Row 3 was left out.", fallback]}, "v": [1.0]}}}
    rerun = {"results": {"ig": {"provenance": {"warnings": ["Row 3 was left out."]}, "v": [1.0]}}}
    comparison = compare_documents(recorded, rerun)
    assert comparison.differences == ()
    assert any("ran out of memory" in note and "in the report" in note for note in comparison.notes)
    other = {"results": {"ig": {"provenance": {"warnings": ["Row 4 was left out."]}, "v": [1.0]}}}
    assert compare_documents(recorded, other).differences
