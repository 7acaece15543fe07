"""Issue 9, item 2 (GUI): an export proposes a folder of its own, never carries stale notes, never replaces
files without a confirmation listing them, and says where the report is when it cannot be opened."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gui.main_window import MainWindow

WAIT_MS = 60_000
NOTES = "Income dominates the decisions on the credit data."


@pytest.fixture
def window(qtbot, settings, tmp_path):
    win = MainWindow(settings=settings, data_dir=tmp_path / "userdata")
    win.resize(1100, 750)
    win.show()
    yield win
    win.close()
    win.deleteLater()


@pytest.fixture
def files(tmp_path, demo_paths):
    folder = tmp_path / "inputs"
    folder.mkdir()
    credit = Path(shutil.copy(demo_paths.data, folder / "credit.csv"))
    model = Path(shutil.copy(demo_paths.model, folder / "credit_model.skops"))
    # Other data (other bytes) and the same model under another name.
    lines = credit.read_text(encoding="utf-8").splitlines(keepends=True)
    loans = folder / "loans 2024.csv"
    loans.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    loan_model = Path(shutil.copy(demo_paths.model, folder / "loan_model.skops"))
    return credit, model, loans, loan_model


def _open(qtbot, window: MainWindow, data: Path, model: Path) -> None:
    window.open_data(data, target="approved", sensitive=("group",))
    window.open_model(model)
    qtbot.waitUntil(
        lambda: (
            window.session.dataset is not None
            and window.session.model is not None
            and window.session.dataset.path == data
            and window.session.model.path == model
        ),
        timeout=WAIT_MS,
    )


def test_proposed_folder_is_named_after_the_data_and_the_model(tmp_path):
    from gui.dialogs.export_report import proposed_folder

    assert proposed_folder(tmp_path, "credit.csv", "credit_model.skops") == tmp_path / "audit-credit-credit_model"
    assert proposed_folder(tmp_path, "loans 2024.csv", "m/../x?:.onnx") == tmp_path / "audit-loans_2024-x"


def test_after_switching_inputs_the_export_proposes_their_folder_and_takes_out_the_old_notes(
    qtbot, window, files, settings, tmp_path
):
    credit, model, loans, loan_model = files
    _open(qtbot, window, credit, model)
    exports = tmp_path / "exports"
    settings.setValue("export/folder", str(exports / "audit-credit-credit_model"))  # the last export went here
    window.session_keeper.notes = NOTES  # written while credit.csv was open
    first = window.open_export_dialog()
    assert first.notes() == NOTES and first.notes_message.kind == ""  # same inputs: the notes stay
    assert first.out_dir() == exports / "audit-credit-credit_model"
    first.close()

    _open(qtbot, window, loans, loan_model)
    dialog = window.open_export_dialog()
    assert dialog.out_dir() == exports / "audit-loans_2024-loan_model"
    assert dialog.notes() == ""
    assert dialog.notes_message.kind == "warning"
    assert "credit.csv and credit_model.skops" in dialog.notes_message.text()
    assert "loans 2024.csv" in dialog.notes_message.text()
    qtbot.waitUntil(lambda: window.session_keeper.notes == "", timeout=WAIT_MS)  # the session forgets them too
    assert dialog.build_request().report.reviewer_notes == ""

    # The person may still want them: one click puts them back, now for the open inputs.
    assert dialog.restore_notes_button.isVisible()
    dialog.restore_notes_button.click()
    assert dialog.notes() == NOTES and dialog.notes_message.kind == ""
    assert window.session_keeper.notes == NOTES
    assert window.session_keeper.notes_for.same_inputs(window.session.identity())
    dialog.close()


def test_the_folder_follows_inputs_changed_while_the_dialog_is_open_unless_typed(qtbot, window, files, tmp_path):
    credit, model, loans, loan_model = files
    _open(qtbot, window, credit, model)
    dialog = window.open_export_dialog()
    assert dialog.out_dir().name == "audit-credit-credit_model"
    _open(qtbot, window, loans, model)
    assert dialog.out_dir().name == "audit-loans_2024-credit_model"
    dialog.folder_edit.setText(str(tmp_path / "mine"))
    _open(qtbot, window, credit, model)
    assert dialog.out_dir() == tmp_path / "mine"
    dialog.close()


def test_existing_files_are_replaced_only_after_a_confirmation_listing_them(qtbot, window, files, tmp_path):
    credit, model, _, _ = files
    _open(qtbot, window, credit, model)
    out = tmp_path / "audit-credit-credit_model"
    out.mkdir()
    old = {"report.pdf": b"%PDF old report", "results.json": b'{"old": true}', "manifest.json": b'{"old": 1}'}
    for name, data in old.items():
        (out / name).write_bytes(data)
    dialog = window.open_export_dialog()
    dialog.folder_edit.setText(str(out))
    asked: list[tuple[Path, list[str]]] = []

    def refuse(folder, existing):
        asked.append((folder, [Path(p).name for p in existing]))
        return False

    dialog.confirm_overwrite = refuse
    jobs: list[int] = []
    window.runner.sig_job_queued.connect(jobs.append)
    assert dialog.export() is None and not jobs
    assert asked == [(out, ["report.pdf", "results.json", "manifest.json"])]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert "Nothing was written" in dialog.status.text()

    # Confirmed: replaced; and where no application opens PDFs, the dialog says so and where the report is.
    dialog.confirm_overwrite = lambda folder, existing: True
    dialog.open_url = lambda url: False
    dialog.open_when_done.setChecked(True)
    for name, check in dialog.section_checks.items():
        check.setChecked(name in ("summary", "performance"))
    dialog.repeats_box.setValue(2)
    dialog.lime_box.setValue(100)
    dialog.cluster_edit.setText("random:40")
    with qtbot.waitSignal(dialog.sig_exported, timeout=180_000):
        assert dialog.export() is not None
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert document["provenance"]["data_sha256"] == window.session.dataset.sha256
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF") and (out / "report.pdf").read_bytes() != old[
        "report.pdf"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "report.pdf", "results.json"]
    assert dialog.open_message.kind == "warning"
    assert "could not be opened" in dialog.open_message.text() and str(out / "report.pdf") in dialog.open_message.text()
    dialog.close()


def test_the_confirmation_names_every_file_it_would_replace(qtbot, window, files, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    credit, model, _, _ = files
    _open(qtbot, window, credit, model)
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "results.json").write_text("{}", encoding="utf-8")
    (out / "manifest.json").write_text("{}", encoding="utf-8")
    shown: list[str] = []

    def answer(_parent, _title, text, *_args):
        shown.append(text)
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "warning", answer)
    dialog = window.open_export_dialog()
    dialog.folder_edit.setText(str(out))
    assert dialog.export() is None
    assert len(shown) == 1 and str(out) in shown[0]
    assert "results.json" in shown[0] and "manifest.json" in shown[0] and "report.pdf" not in shown[0]
    assert (out / "results.json").read_text(encoding="utf-8") == "{}"
    dialog.close()
