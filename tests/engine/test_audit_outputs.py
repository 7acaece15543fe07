"""`probity audit` never overwrites without --force, writes its set atomically, measures when each analysis
ran without losing reproducibility, and writes the same report wherever its inputs and outputs lie."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.audit import OUTPUT_NAMES, existing_outputs, portable_command
from engine.cli import main
from engine.errors import OutputExistsError

TIMESTAMP = "2024-05-01T12:00:00Z"


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
    """The demo's data and model at 1,200 rows, so that each audit stays quick."""
    import skops.io as sio

    from engine.demo import make_credit_frame, train_credit_model

    root = tmp_path_factory.mktemp("outputs-demo")
    frame = make_credit_frame(n_rows=1200, seed=4)
    data, model = root / "credit.csv", root / "credit_model.skops"
    frame.to_csv(data, index=False, lineterminator="\n")
    sio.dump(train_credit_model(frame, seed=4), model)
    return SimpleNamespace(data=data, model=model)


def _argv(data: Path | str, model: Path | str, out: Path | str, *extra: str) -> list[str]:
    return [
        "--progress",
        "none",
        "audit",
        "--data",
        str(data),
        "--model",
        str(model),
        "--target",
        "approved",
        "--sensitive",
        "group",
        "--out",
        str(out),
        "--seed",
        "3",
        "--n-repeats",
        "2",
        "--lime-samples",
        "100",
        "--cluster-rows",
        "random:40",
        "--explain-rows",
        "0,5",
        *extra,
    ]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in ``folder`` (hidden ones included): its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def _verify(pdf: Path, data: Path, model: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--progress", "none", "verify", str(pdf), "--data", str(data), "--model", str(model)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def written(small_demo: Any, full_registry: None, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One audit with a fixed timestamp, written to its folder."""
    out = tmp_path_factory.mktemp("written") / "audit-demo"
    assert main(_argv(small_demo.data, small_demo.model, out, "--timestamp", TIMESTAMP)) == 0
    return SimpleNamespace(out=out, data=small_demo.data, model=small_demo.model)


def _copy_of(written: SimpleNamespace, tmp_path: Path) -> Path:
    out = tmp_path / "audit-demo"
    shutil.copytree(written.out, out)
    return out


# -- item 2: never overwrite without --force -------------------------------------------------------------


def test_existing_outputs_are_refused_with_exit_2_and_left_untouched(
    written: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _copy_of(written, tmp_path)
    before = _snapshot(out)
    import engine.audit

    def no_audit(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the audit ran although its outputs would be refused")

    monkeypatch.setattr(engine.audit, "run_audit", no_audit)  # refused before minutes of work, not after
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    code = main(_argv(written.data, written.model, "audit-demo", "--timestamp", TIMESTAMP, "--seed", "9"))
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "probity: audit-demo already holds report.pdf, results.json and manifest.json; use --force to overwrite them.\n"
    )
    assert _snapshot(out) == before


def test_refusal_names_only_the_outputs_that_exist(
    written: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "partly"
    out.mkdir()
    shutil.copyfile(written.out / "results.json", out / "results.json")
    (out / "notes.txt").write_text("mine", encoding="utf-8")  # other files are not outputs
    capsys.readouterr()
    assert main(_argv(written.data, written.model, out, "--timestamp", TIMESTAMP)) == 2
    err = capsys.readouterr().err
    assert err == f"probity: {out} already holds results.json; use --force to overwrite it.\n"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.json"]
    assert existing_outputs(out) == [out / "results.json"]
    assert existing_outputs(tmp_path / "missing") == []


def test_existing_outputs_counts_the_pdf_only_when_one_is_written(tmp_path: Path) -> None:
    for name in OUTPUT_NAMES:
        (tmp_path / name).write_bytes(b"old")
    assert existing_outputs(tmp_path) == [tmp_path / n for n in ("report.pdf", "results.json", "manifest.json")]
    assert existing_outputs(tmp_path, report=False) == [tmp_path / "results.json", tmp_path / "manifest.json"]


def test_force_overwrites_the_previous_set_which_then_verifies(
    written: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _copy_of(written, tmp_path)
    before = _snapshot(out)
    assert main(_argv(written.data, written.model, out, "--timestamp", TIMESTAMP, "--seed", "9", "--force")) == 0
    after = _snapshot(out)
    assert sorted(after) == sorted(OUTPUT_NAMES)  # no temporary file left behind
    for name in OUTPUT_NAMES:
        assert after[name][0] != before[name][0], name
    assert json.loads(after["results.json"][0])["provenance"]["seed"] == 9
    code, stdout, stderr = _verify(out / "report.pdf", written.data, written.model, capsys)
    assert code == 0, stdout + stderr
    assert "manifest.json" in stdout


def test_write_audit_outputs_raises_a_typed_error_naming_the_files(
    written: SimpleNamespace, small_demo: Any, tmp_path: Path
) -> None:
    from engine.audit import AuditRequest, ReportOptions, run_audit, write_audit_outputs
    from engine.jobs import JobContext

    out = _copy_of(written, tmp_path)
    before = _snapshot(out)
    request = AuditRequest(
        data=small_demo.data,
        model=small_demo.model,
        target="approved",
        seed=3,
        n_repeats=2,
        timestamp=TIMESTAMP,
        measure_times=False,
        report=ReportOptions(),
    )
    outcome = run_audit(request, JobContext(seed=3))
    with pytest.raises(OutputExistsError) as err:
        write_audit_outputs(outcome, out, request.report)
    assert err.value.existing == tuple(out / n for n in OUTPUT_NAMES)
    assert str(err.value).startswith(f"{out} already holds report.pdf, results.json and manifest.json;")
    assert err.value.exit_code == 2
    assert _snapshot(out) == before
    written_paths = write_audit_outputs(outcome, out, request.report, force=True)
    assert written_paths == {
        "report": out / "report.pdf",
        "results": out / "results.json",
        "manifest": out / "manifest.json",
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES)


# -- item 2: atomic writes ------------------------------------------------------------------------------


def test_a_report_that_fails_midway_leaves_the_previous_set_intact(
    written: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.report

    out = _copy_of(written, tmp_path)
    before = _snapshot(out)

    def broken_render(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("the PDF writer died midway")

    monkeypatch.setattr(engine.report, "render_report", broken_render)
    assert main(_argv(written.data, written.model, out, "--timestamp", TIMESTAMP, "--seed", "9", "--force")) == 1
    assert "internal error" in capsys.readouterr().err
    assert _snapshot(out) == before  # every old file as it was, and no temporary file left


def test_an_export_interrupted_between_renames_leaves_no_manifest(
    written: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _copy_of(written, tmp_path)
    real_replace = os.replace
    calls: list[str] = []

    def dies_on_second(src: Any, dst: Any) -> None:
        calls.append(Path(dst).name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C twice, or the power went
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies_on_second)
    assert main(_argv(written.data, written.model, out, "--timestamp", TIMESTAMP, "--seed", "9", "--force")) == 130
    monkeypatch.setattr(os, "replace", real_replace)
    assert calls == ["report.pdf", "results.json"]
    # The new report is in place but the set is not complete, and nothing claims it is.
    assert sorted(p.name for p in out.iterdir()) == ["report.pdf", "results.json"]
    code, stdout, _ = _verify(out / "report.pdf", written.data, written.model, capsys)
    assert code == 1 and "results.json beside report.pdf differs from the copy embedded in it." in stdout


def test_the_manifest_is_put_in_place_last_and_no_temporary_file_remains(
    small_demo: Any, full_registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    order: list[tuple[str, str]] = []

    def recording(src: Any, dst: Any) -> None:
        order.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording)
    out = tmp_path / "fresh" / "audit"
    assert main(_argv(small_demo.data, small_demo.model, out, "--timestamp", TIMESTAMP)) == 0
    assert [dst for _, dst in order] == ["report.pdf", "results.json", "manifest.json"]
    for src, dst in order:  # hidden temporary names that no reader takes for an output
        assert src.startswith(f".{dst}.") and src.endswith(".partial")
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES)


# -- item 11: real start and end times, still reproducible ----------------------------------------------


def _pdftext(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian package poppler-utils) is not installed, so text cannot be extracted")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_an_audit_run_now_records_when_each_analysis_ran_and_still_verifies(
    small_demo: Any, full_registry: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "now"
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert main(_argv(small_demo.data, small_demo.model, out)) == 0
    after = dt.datetime.now(dt.UTC)
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    prov = doc["provenance"]
    audit_start, audit_end = _when(prov["started_at"]), _when(prov["finished_at"])
    assert before <= audit_start <= audit_end <= after
    assert len(doc["results"]) >= 9
    previous_end = audit_start
    for name, result in doc["results"].items():
        start, end = _when(result["provenance"]["started_at"]), _when(result["provenance"]["finished_at"])
        assert previous_end <= start < end, name  # analyses run one after another
        assert end.replace(microsecond=0) <= audit_end, name  # the audit's end is recorded in seconds
        previous_end = end
    text = _pdftext(out / "report.pdf")
    computed = [
        line.split("computed", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("computed ")
    ]
    assert len(computed) == len(doc["results"])
    for line, result in zip(computed, doc["results"].values()):
        start = _when(result["provenance"]["started_at"])
        assert line.startswith(f"{start:%Y-%m-%d %H:%M:%S}.{start.microsecond // 1000:03d} to "), line
        assert line.endswith(" s)") and " UTC (" in line, line
    code, stdout, stderr = _verify(out / "report.pdf", small_demo.data, small_demo.model, capsys)
    assert code == 0, stdout + stderr
    assert "pages rebuilt from the embedded results" in stdout
    assert (
        f"probity: note: The times the report records for {len(doc['results'])} analyses (when each started "
        "and finished) were measured when it ran and are not compared."
    ) in stderr


def test_a_fixed_timestamp_measures_no_times_and_says_so(written: SimpleNamespace) -> None:
    doc = json.loads((written.out / "results.json").read_text(encoding="utf-8"))
    assert doc["provenance"]["started_at"] == "2024-05-01T12:00:00+00:00"
    assert doc["provenance"]["finished_at"] is None
    for name, result in doc["results"].items():
        assert result["provenance"]["started_at"] is None, name
        assert result["provenance"]["finished_at"] is None, name
        assert result.get("compute_seconds", 0.0) == 0.0, name
    text = " ".join(_pdftext(written.out / "report.pdf").split())
    assert text.count("computed not measured (audit time fixed for identical re-runs)") == len(doc["results"])
    assert "Audit time 2024-05-01T12:00:00+00:00 (recorded; how long the analyses took was not measured" in text
    assert "Audit finished" not in text


def test_a_report_written_before_times_were_measured_still_verifies(
    written: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old form: every time the audit timestamp, and the command with the paths as given."""
    from engine.report import ReportInput, build_report, extract_embedded_results

    doc = extract_embedded_results(written.out / "report.pdf")
    stamp = doc["provenance"]["started_at"]
    doc["provenance"]["finished_at"] = stamp
    for result in doc["results"].values():
        result["provenance"]["started_at"] = result["provenance"]["finished_at"] = stamp
    doc["provenance"]["command"] = [
        "probity",
        "audit",
        "--data",
        str(written.data),
        "--model",
        str(written.model),
        "--out",
        str(written.out),
        "--timestamp",
        TIMESTAMP,
    ]
    old = tmp_path / "old" / "report.pdf"
    build_report(ReportInput.from_document(doc, sections=None, local_rows=doc["provenance"]["explain_rows"]), old)
    text = " ".join(_pdftext(old).split())
    assert f"computed not measured (audit time {stamp})" in text
    code, stdout, stderr = _verify(old, written.data, written.model, capsys)
    assert code == 0, stdout + stderr
    assert "pages rebuilt from the embedded results" in stdout


# -- item 12: the same report from anywhere -------------------------------------------------------------


def test_the_same_audit_from_two_folders_writes_identical_report_and_results(
    small_demo: Any,
    full_registry: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = tmp_path / "alice" / "inputs"
    there = tmp_path / "bob" / "deeper" / "copies"
    for folder in (here, there):
        folder.mkdir(parents=True)
        shutil.copyfile(small_demo.data, folder / "credit.csv")
        shutil.copyfile(small_demo.model, folder / "credit_model.skops")
    notes = tmp_path / "bob" / "notes.txt"
    notes.write_text("Looks fine.", encoding="utf-8")
    shutil.copyfile(notes, here / "notes.txt")
    # One run with absolute paths, the other from its own folder with relative ones and abbreviated options.
    first = tmp_path / "alice" / "out-a"
    assert (
        main(
            _argv(
                here / "credit.csv",
                here / "credit_model.skops",
                first,
                "--timestamp",
                TIMESTAMP,
                "--notes-file",
                str(here / "notes.txt"),
            )
        )
        == 0
    )
    monkeypatch.chdir(tmp_path / "bob")
    second_argv = _argv(
        "deeper/copies/credit.csv",
        "deeper/copies/credit_model.skops",
        "results/b",
        "--timestamp",
        TIMESTAMP,
        "--notes",
        "notes.txt",
    )
    second_argv[second_argv.index("--data")] = "--dat"
    assert main(second_argv) == 0
    second = tmp_path / "bob" / "results" / "b"
    for name in ("report.pdf", "results.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    doc = json.loads((first / "results.json").read_text(encoding="utf-8"))
    command = doc["provenance"]["command"]
    assert command[:6] == ["probity", "audit", "--data", "credit.csv", "--model", "credit_model.skops"]
    assert "--out" not in command and "--progress" not in command
    assert command[command.index("--notes-file") + 1] == "notes.txt"
    assert "alice" not in (first / "results.json").read_text(encoding="utf-8")
    # The manifest keeps the paths exactly as they were given.
    for out, data in ((first, str(here / "credit.csv")), (second, "deeper/copies/credit.csv")):
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert [e["path"] for e in manifest["files"] if e["role"] == "data"] == [data]
    for out, folder in ((first, here), (second, there)):
        code, stdout, stderr = _verify(out / "report.pdf", folder / "credit.csv", folder / "credit_model.skops", capsys)
        assert code == 0, stdout + stderr


def test_portable_command_keeps_file_names_and_drops_where_files_are_written() -> None:
    command = [
        "probity",
        "audit",
        "--data",
        "/home/ann/audits/in/credit.csv",
        "--model=C:\\Users\\ann\\m.onnx",
        "--out",
        "/tmp/x",
        "--force",
        "--notes-file",
        "../notes.txt",
        "--progress",
        "none",
        "--out=elsewhere",
        "--auditor",
        "Ann / Risk",
        "--target",
        "approved",
    ]
    assert portable_command(command) == [
        "probity",
        "audit",
        "--data",
        "credit.csv",
        "--model=m.onnx",
        "--notes-file",
        "notes.txt",
        "--auditor",
        "Ann / Risk",
        "--target",
        "approved",
    ]
    assert portable_command(portable_command(command)) == portable_command(command)
