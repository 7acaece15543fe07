"""Dialogs: import preview with live re-parsing, and report export writing what `probity audit` writes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gui.main_window import MainWindow

WAIT_MS = 60_000


@pytest.fixture
def window(qtbot, settings, tmp_path):
    win = MainWindow(settings=settings, data_dir=tmp_path / "userdata")
    win.resize(1100, 750)
    win.show()
    yield win
    win.close()
    win.deleteLater()


@pytest.fixture
def ambiguous_csv(write_text):
    # One comma and one semicolon per line: detection prefers the comma, the author meant semicolons.
    lines = ["name;city, country"] + [f"person {i};town {i}, land {i % 3}" for i in range(120)]
    return write_text("people.csv", "\n".join(lines) + "\n")


def _wait_preview(qtbot, dialog) -> None:
    qtbot.waitUntil(lambda: not dialog.is_parsing and not dialog._timer.isActive(), timeout=WAIT_MS)


def test_import_preview_reparses_with_a_semicolon_and_loads_with_it(qtbot, window, ambiguous_csv):
    pane = window.dataset_pane
    pane.preview_import(ambiguous_csv)
    dialog = pane.import_dialog
    _wait_preview(qtbot, dialog)
    assert dialog.column_names() == ["name;city", " country"]  # as detected: split on the comma
    assert "delimiter “,”" in dialog.detected_label.text()
    assert dialog.table.rowCount() == 50  # a bounded preview of a 120-row file
    assert "first 50 rows" in dialog.detected_label.text()

    with qtbot.waitSignal(dialog.sig_preview_shown, timeout=WAIT_MS):
        dialog.delimiter_combo.setCurrentIndex(dialog.delimiter_combo.findData(";"))
    assert dialog.column_names() == ["name", "city, country"]
    assert dialog.cell_text(0, 1) == "town 0, land 0"
    assert "delimiter “;”" in dialog.detected_label.text()
    assert dialog.options().delimiter == ";" and dialog.options().encoding is None  # the rest still detected

    dialog.accept()
    qtbot.waitUntil(lambda: window.session.dataset is not None, timeout=WAIT_MS)
    dataset = window.session.dataset
    assert list(dataset.frame.columns) == ["name", "city, country"]
    assert dataset.n_rows == 120 and dataset.options.delimiter == ";"


def test_import_preview_shows_a_parse_error_inline_and_recovers(qtbot, window, write_text):
    path = write_text("prices.csv", "item;price\n" + "".join(f"thing {i};{i},50\n" for i in range(10)))
    window.dataset_pane.preview_import(path)
    dialog = window.dataset_pane.import_dialog
    _wait_preview(qtbot, dialog)
    assert dialog.column_names() == ["item", "price"] and dialog.cell_text(0, 1) == "0.5"
    with qtbot.waitSignal(dialog.sig_preview_shown, timeout=WAIT_MS):
        dialog.set_options(dialog.options().__class__(delimiter=",", header_row=0))
    assert dialog.error.kind == "error" and "prices.csv" in dialog.error.text()
    assert not dialog.open_button.isEnabled()
    with qtbot.waitSignal(dialog.sig_preview_shown, timeout=WAIT_MS):
        dialog.set_options(dialog.options().__class__(delimiter=";", decimal=".", missing_values=("thing 3",)))
    assert dialog.error.kind == "" and dialog.open_button.isEnabled()
    assert dialog.cell_text(0, 1) == "0,50"  # a point decimal mark leaves "0,50" as text
    assert dialog.cell_text(3, 0) == "missing"
    dialog.reject()
    assert window.session.dataset is None


def test_export_report_writes_the_three_files_with_the_reviewer_notes(qtbot, window, demo_paths, tmp_path):
    data = Path(shutil.copy(demo_paths.data, tmp_path / "credit.csv"))
    model = Path(shutil.copy(demo_paths.model, tmp_path / "credit_model.skops"))
    window.open_data(data, target="approved", sensitive=("group",))
    window.open_model(model)
    qtbot.waitUntil(lambda: window.session.dataset is not None and window.session.model is not None, timeout=WAIT_MS)
    out = tmp_path / "report out"
    notes = "Income dominates the decisions.\n\nThe group gap needs a second look."
    dialog = window.open_export_dialog()
    opened: list[str] = []
    dialog.open_url = lambda url: opened.append(url.toLocalFile())
    dialog.folder_edit.setText(str(out))
    dialog.notes_edit.setPlainText(notes)
    dialog.auditor_edit.setText("A. Reviewer")
    dialog.organisation_edit.setText("Model Risk")
    dialog.rows_edit.setText("0,3")
    dialog.section_checks["clusters"].setChecked(False)
    dialog.repeats_box.setValue(2)
    dialog.lime_box.setValue(100)
    dialog.cluster_edit.setText("random:60")
    dialog.seed_box.setValue(5)
    dialog.open_when_done.setChecked(True)
    assert window.session_keeper.notes == notes  # the notes belong to the session too

    with qtbot.waitSignal(dialog.sig_exported, timeout=120_000):
        assert dialog.export() is not None
    assert dialog.error.kind in ("", "warning")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "report.pdf", "results.json"]
    assert opened == [str(out / "report.pdf")]

    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    provenance = document["provenance"]
    assert provenance["report"]["reviewer_notes"] == notes
    assert provenance["report"]["auditor"] == "A. Reviewer"
    assert "clusters" not in provenance["report"]["sections"]
    assert provenance["seed"] == 5 and provenance["explain_rows"] == [0, 3]
    assert provenance["data_sha256"] == window.session.dataset.sha256
    command = provenance["command"]
    assert command[:2] == ["probity", "audit"] and command[command.index("--seed") + 1] == "5"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    roles = {entry["role"]: entry for entry in manifest["files"]}
    assert set(roles) == {"report", "results", "data", "model"}
    assert roles["data"]["sha256"] == window.session.dataset.sha256

    text = subprocess.run(
        ["pdftotext", "-layout", str(out / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    assert "Income dominates the decisions." in flat and "The group gap needs a second look." in flat
    assert "A. Reviewer" in flat and "Model Risk" in flat

    # What `probity verify` checks: re-running the recorded audit reproduces every number.
    from engine.verify import verify_report

    checked = verify_report(
        out / "report.pdf",
        data=data,
        model=model,
        trusted_sha256=tuple(command[i + 1] for i, a in enumerate(command) if a == "--trust-model"),
    )
    assert checked.ok, list(checked.lines())


def test_export_without_a_model_says_what_is_missing(qtbot, window, demo_paths):
    window.open_data(demo_paths.data, target="approved")
    qtbot.waitUntil(lambda: window.session.dataset is not None, timeout=WAIT_MS)
    dialog = window.open_export_dialog()
    assert dialog.error.text() == "To export a report, open a model."
    assert not dialog.export_button.isEnabled()
    assert dialog.export() is None
    dialog.reject()


def test_the_model_pane_offers_exactly_the_files_the_engine_reads():
    from engine.models.loading import MODEL_SUFFIXES as ENGINE_SUFFIXES
    from gui.panes.model import MODEL_FILE_FILTER, MODEL_SUFFIXES

    assert set(MODEL_SUFFIXES) == set(ENGINE_SUFFIXES)
    assert all(f"*{suffix}" in MODEL_FILE_FILTER for suffix in ENGINE_SUFFIXES)
