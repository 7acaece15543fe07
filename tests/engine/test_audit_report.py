"""`probity audit` writes report.pdf, results.json and manifest.json that agree and reproduce byte for byte."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.cli import main
from engine.report import SECTION_TITLES, SECTIONS, extract_embedded_results, results_json_bytes

TIMESTAMP = "2024-05-01T14:30:00+02:00"
RECORDED_TIMESTAMP = "2024-05-01T12:30:00+00:00"  # the same instant, as the audit records it (UTC)
NOTES = "Income and debt drive approval.\n\nThe proxy neighbourhood needs a second look."


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pdftotext(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian package poppler-utils) is not installed, so text cannot be extracted")
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def full_registry() -> Iterator[None]:
    """Every analysis of the audit registered, SHAP included even before the registry lists it."""
    from engine.explain import shap_auto
    from engine.registry import METHODS

    with pytest.MonkeyPatch.context() as mp:
        if "shap" not in METHODS:
            mp.setitem(METHODS, "shap", shap_auto.METHOD)
        yield


def _audit_argv(demo_paths: Any, out: Path, notes: Path, *extra: str) -> list[str]:
    # Small sample sizes keep the suite fast; the defaults are what `probity audit` uses for real.
    return [
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
        "11",
        "--n-repeats",
        "2",
        "--lime-samples",
        "300",
        "--cluster-rows",
        "random:60",
        "--explain-rows",
        "17,3",
        "--timestamp",
        TIMESTAMP,
        "--auditor",
        "Ada Auditor",
        "--organisation",
        "Model Risk Office",
        "--notes-file",
        str(notes),
        *extra,
    ]


@pytest.fixture(scope="module")
def audit(demo_paths: Any, full_registry: None, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One demo audit written to DIR, then the same command run again into the same DIR (with --force)."""
    root = tmp_path_factory.mktemp("audit")
    notes = root / "notes.txt"
    notes.write_text(NOTES, encoding="utf-8")
    out = root / "out"
    argv = _audit_argv(demo_paths, out, notes)
    assert main(argv) == 0
    first = {name: (out / name).read_bytes() for name in ("report.pdf", "results.json", "manifest.json")}
    assert main([*argv, "--force"]) == 0
    return SimpleNamespace(
        out=out, argv=argv, first=first, notes=notes, doc=json.loads(first["results.json"].decode("utf-8"))
    )


def test_audit_writes_report_results_and_manifest(audit: SimpleNamespace, demo_paths: Any) -> None:
    manifest = json.loads((audit.out / "manifest.json").read_text(encoding="utf-8"))
    from engine import __version__

    assert manifest["probity_version"] == __version__
    assert manifest["created"] == RECORDED_TIMESTAMP
    by_role = {e["role"]: e for e in manifest["files"]}
    assert set(by_role) == {"report", "results", "data", "model"}
    for role, path, shown in (
        ("report", audit.out / "report.pdf", "report.pdf"),
        ("results", audit.out / "results.json", "results.json"),
        ("data", demo_paths.data, str(demo_paths.data)),
        ("model", demo_paths.model, str(demo_paths.model)),
    ):
        entry = by_role[role]
        assert entry["path"] == shown
        assert entry["sha256"] == _sha(path)
        assert entry["size_bytes"] == path.stat().st_size
    assert (audit.out / "report.pdf").read_bytes().startswith(b"%PDF-")


def test_embedded_results_equal_results_json(audit: SimpleNamespace) -> None:
    embedded = extract_embedded_results(audit.out / "report.pdf")
    on_disk = (audit.out / "results.json").read_bytes()
    assert embedded == json.loads(on_disk)
    assert results_json_bytes(embedded) == on_disk


def test_fixed_timestamp_gives_byte_identical_files(audit: SimpleNamespace) -> None:
    for name, first in audit.first.items():
        assert (audit.out / name).read_bytes() == first, name


def test_a_fixed_timestamp_is_the_one_recorded_time(audit: SimpleNamespace) -> None:
    prov = audit.doc["provenance"]
    assert prov["started_at"] == RECORDED_TIMESTAMP
    assert prov["finished_at"] is None  # not measured: a fixed timestamp promises identical bytes
    assert audit.doc["results"], "the audit produced no results"
    for name, result in audit.doc["results"].items():
        assert result["provenance"]["started_at"] is None, name
        assert result["provenance"]["finished_at"] is None, name
        assert result.get("compute_seconds", 0.0) == 0.0, name  # wall-clock durations are not recorded


def test_audit_runs_every_analysis_from_one_seed(audit: SimpleNamespace) -> None:
    doc = audit.doc
    results = doc["results"]
    assert {
        "performance",
        "permutation",
        "native",
        "lime",
        "shap",
        "dependence",
        "surrogate",
        "clusters",
        "groups",
    } <= set(results)
    # Existing summary keys stay, and group metrics get their own top-level key.
    assert {
        "schema_version",
        "probity_version",
        "provenance",
        "data",
        "model",
        "performance",
        "importance",
        "warnings",
        "results",
        "group_metrics",
    } <= set(doc)
    assert doc["group_metrics"] == results["groups"]["groups"]
    assert {g["attribute"] for g in doc["group_metrics"]} == {"group"}
    for result in results.values():
        assert result["provenance"]["seed"] == 11
    # PDP/ICE for the three features permutation importance ranks highest.
    perm = doc["importance"]["permutation"]
    top = [r["feature"] for r in sorted(perm, key=lambda r: -r["mean"])[:3]]
    assert [f["feature"] for f in results["dependence"]["features"]] == top
    # LIME explains exactly the chosen rows; SHAP covers them plus the cluster sample.
    assert results["lime"]["rows"] == [3, 17]
    assert {3, 17} <= set(results["shap"]["rows"])
    assert set(results["clusters"]["rows"]) <= set(results["shap"]["rows"])
    assert len(results["clusters"]["rows"]) == len(results["shap"]["rows"]) <= 62
    assert doc["provenance"]["explain_rows"] == [3, 17]
    params = doc["provenance"]["parameters"]
    assert params["lime"]["num_samples"] == 300 and results["lime"]["provenance"]["parameters"]["num_samples"] == 300
    assert params["clusters"]["rows"] == "random:60"


def test_hardware_and_command_are_recorded_and_printed(audit: SimpleNamespace) -> None:
    prov = audit.doc["provenance"]
    hardware = prov["hardware"]
    assert set(hardware) == {"cpu", "os", "compute_device"}
    assert hardware["compute_device"] == "CPU"  # a scikit-learn model never runs on a GPU
    assert re.search(r"\(\d+ logical cores?\)$", hardware["cpu"])
    # The command as given, less where files are written (--out, --progress) and with files by name.
    argv = audit.argv[2:]
    del argv[argv.index("--out") : argv.index("--out") + 2]
    for option in ("--data", "--model", "--notes-file"):
        argv[argv.index(option) + 1] = Path(argv[argv.index(option) + 1]).name
    assert prov["command"] == ["probity", *argv]
    assert prov["report"] == {
        "auditor": "Ada Auditor",
        "organisation": "Model Risk Office",
        "reviewer_notes": NOTES,
        "sections": None,
    }
    text = " ".join(_pdftotext(audit.out / "report.pdf").split())
    assert f"--timestamp {TIMESTAMP}" in text
    assert "--explain-rows 17,3" in text
    assert hardware["compute_device"] in text and "logical core" in text
    assert "The proxy neighbourhood needs a second look." in text


def test_explain_rows_select_the_rows_shown(audit: SimpleNamespace) -> None:
    text = _pdftotext(audit.out / "report.pdf")
    shown = [int(m) for m in re.findall(r"^Row (\d+)$", text, flags=re.MULTILINE)]
    assert shown == [3, 17]


def test_sections_subset_omits_the_others(demo_paths: Any, full_registry: None, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text(NOTES, encoding="utf-8")
    out = tmp_path / "out"
    # Without --timestamp, the clock is read once and the recorded command fixes it.
    argv = _audit_argv(demo_paths, out, notes, "--sections", "performance", "reproducibility")
    cut = argv.index("--timestamp")
    argv = argv[:cut] + argv[cut + 2 :]
    assert main(argv) == 0
    text = _pdftotext(out / "report.pdf")
    for name in SECTIONS:
        assert (SECTION_TITLES[name] in text) == (name in ("performance", "reproducibility")), name
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    stamp = doc["provenance"]["started_at"]
    recorded = doc["provenance"]["command"]
    assert recorded[-2:] == ["--timestamp", stamp]
    assert recorded[:4] == ["probity", "audit", "--data", demo_paths.data.name]
    assert f"--timestamp {stamp}" in " ".join(text.split())
    assert doc["provenance"]["report"]["sections"] == ["performance", "reproducibility"]


def test_no_report_writes_results_and_manifest_only(demo_paths: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [
        "--progress",
        "none",
        "audit",
        "--data",
        str(demo_paths.data),
        "--model",
        str(demo_paths.model),
        "--target",
        "approved",
        "--out",
        str(out),
        "--n-repeats",
        "2",
        "--lime-samples",
        "100",
        "--cluster-rows",
        "first:20",
        "--no-report",
    ]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "results.json"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [e["role"] for e in manifest["files"]] == ["results", "data", "model"]
    assert "report" not in json.loads((out / "results.json").read_text(encoding="utf-8"))["provenance"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--sections", "summary", "appendix"], "'appendix'; choose from " + ", ".join(SECTIONS) + "."),
        (["--timestamp", "yesterday"], "The timestamp 'yesterday' is not an ISO 8601 date and time"),
        (["--notes-file", "{missing}"], "notes.txt does not exist."),
        (["--explain-rows", "5-2"], "The row range '5-2' runs backwards"),
    ],
)
def test_bad_report_options_are_one_line_exit_2(
    demo_paths: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    argv = [
        "audit",
        "--data",
        str(demo_paths.data),
        "--model",
        str(demo_paths.model),
        "--target",
        "approved",
        "--out",
        str(tmp_path / "out"),
        *[e.format(missing=tmp_path / "notes.txt") for e in extra],
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cpu_description_reads_the_processor_model(tmp_path: Path) -> None:
    from engine.hardware import cpu_description

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)  CPU @ 2.20GHz\n"
        "processor\t: 1\nmodel name\t: Intel(R) Xeon(R)  CPU @ 2.20GHz\n",
        encoding="utf-8",
    )
    import os

    cores = os.cpu_count()
    assert cpu_description(cpuinfo=info) == (
        f"Intel(R) Xeon(R) CPU @ 2.20GHz ({cores} logical core{'s' if cores != 1 else ''})"
    )


def test_compute_device_names_the_gpu_of_a_cuda_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.hardware import compute_device

    asked: list[Any] = []
    fake_torch = SimpleNamespace(
        device=lambda d: f"device({d})",
        cuda=SimpleNamespace(get_device_name=lambda d: asked.append(d) or "NVIDIA H100 80GB HBM3"),
    )
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    assert compute_device(SimpleNamespace(device="cuda:0")) == "CUDA: NVIDIA H100 80GB HBM3"
    assert asked == ["device(cuda:0)"]
    assert compute_device(SimpleNamespace(device="cpu")) == "CPU"
    assert compute_device(object()) == "CPU"
    assert asked == ["device(cuda:0)"]  # torch is asked only about a CUDA model


def test_recording_hardware_never_imports_torch() -> None:
    code = (
        "import sys; from engine.hardware import describe_hardware; h = describe_hardware(); "
        "print(h['compute_device'], 'torch' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["CPU", "False"]


def test_recorded_command_is_shell_quoted_in_the_report(audit: SimpleNamespace) -> None:
    text = " ".join(_pdftotext(audit.out / "report.pdf").split())
    assert shlex.join(["--organisation", "Model Risk Office"]) in text
