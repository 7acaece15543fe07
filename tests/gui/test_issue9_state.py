"""Issue 9: no stale state (row counter, model in use), roles remembered and targets suggested,
refusals shown as refusals, rows numbered from 0, and the last folders remembered."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from gui.main_window import MainWindow

WAIT_MS = 30_000


@pytest.fixture
def window(qtbot, settings):
    win = MainWindow(settings=settings)
    win.resize(1200, 800)
    win.show()
    yield win
    win.close()
    win.deleteLater()


def _open_data(qtbot, win: MainWindow, path: Path, **roles) -> None:
    with qtbot.waitSignal(win.session.sig_dataset_changed, timeout=WAIT_MS):
        win.open_data(path, **roles)
    assert win.session.dataset.path == path
    assert win.dataset_pane.error_text == ""


def _open_model(qtbot, win: MainWindow, path: Path) -> None:
    job = win.open_model(path)
    qtbot.waitUntil(lambda: win.model_pane._job != job, timeout=WAIT_MS)


@pytest.fixture
def small_csv(write_text) -> Path:
    lines = ["a,b,label"] + [f"{i},{i % 3},{i % 2}" for i in range(25)]
    return write_text("small.csv", "\n".join(lines) + "\n")


# -- 6: stale state ------------------------------------------------------------------------------------


def test_row_counter_counts_the_new_file_not_the_previous_one(qtbot, window, demo_paths, small_csv):
    _open_data(qtbot, window, demo_paths.data, target="approved")
    assert window.dataset_pane.row_count_label.text() == "6,000 rows"
    _open_data(qtbot, window, small_csv)
    assert window.dataset_pane.table_model.rowCount() == 25
    assert window.dataset_pane.row_count_label.text() == "25 rows"


@pytest.fixture
def evil_pickle(tmp_path: Path) -> Path:
    evil = tmp_path / "evil.pkl"
    payload = f"open({str(tmp_path / 'ran')!r}, 'w').close()"
    evil.write_bytes(b"cbuiltins\nexec\n(" + pickle.dumps(payload, protocol=0)[:-1] + b"tR.")
    return evil


def test_a_refused_file_leaves_the_model_in_use_shown_as_in_use(qtbot, window, demo_paths, evil_pickle):
    pytest.importorskip("engine.models.loading")
    _open_model(qtbot, window, demo_paths.model)
    pane = window.model_pane
    model = window.session.model
    assert model is not None and pane.shown_file == demo_paths.model.name
    sha = pane.fields["sha256"].toolTip()

    _open_model(qtbot, window, evil_pickle)
    assert window.session.model is model
    assert pane.shown_file == demo_paths.model.name
    assert pane.fields["sha256"].toolTip() == sha == model.sha256
    assert pane.details_box.title() == f"Model in use: {demo_paths.model.name}"
    assert "evil.pkl" in pane.error_text
    assert f"The model in use is still {demo_paths.model.name}." in pane.error_text
    # Its scan is shown, under its own name.
    assert "evil.pkl" in pane.scan_box.title()
    assert "builtins.exec" in [pane.scan_list.item(i).text() for i in range(pane.scan_list.count())]


def test_a_damaged_file_leaves_the_model_in_use_shown(qtbot, window, demo_paths, tmp_path):
    pytest.importorskip("engine.models.loading")
    _open_model(qtbot, window, demo_paths.model)
    damaged = tmp_path / "damaged.skops"
    damaged.write_bytes(b"PK\x03\x04 this is not a zip archive")
    _open_model(qtbot, window, damaged)
    pane = window.model_pane
    assert pane.error_text and "damaged.skops" in pane.error_text
    assert f"The model in use is still {demo_paths.model.name}." in pane.error_text
    assert pane.shown_file == demo_paths.model.name
    assert window.session.model is not None and window.session.model.path == demo_paths.model


# -- 11: refusals, numbering ------------------------------------------------------------------------------


def test_a_refused_pickle_is_refused_in_the_job_list_and_said_once(qtbot, window, evil_pickle):
    pytest.importorskip("engine.models.loading")
    job = window.open_model(evil_pickle)
    qtbot.waitUntil(lambda: bool(window.model_pane.error_text), timeout=WAIT_MS)
    assert window.jobs_dock.state_of(job) == "refused"
    item = window.jobs_dock._items[job]
    assert item.data(2, Qt.ItemDataRole.UserRole + 1) is None  # no "100 %" bar
    assert "evil.pkl" in item.text(3)
    text = window.model_pane.error_text
    assert text.count("never load") == 1, text
    assert text.count("refused") == 1, text
    # Nothing is in use, so the details say the file was not loaded.
    assert window.model_pane.details_box.title() == "Not loaded: evil.pkl"


def test_import_preview_numbers_rows_from_zero(qtbot, window, small_csv):
    from gui.dialogs.import_preview import ImportPreviewDialog

    dialog = ImportPreviewDialog(small_csv, window.runner, parent=window)
    with qtbot.waitSignal(dialog.sig_preview_shown, timeout=WAIT_MS):
        pass
    header = dialog.table.model()
    assert header.headerData(0, Qt.Orientation.Vertical) == "0"
    assert header.headerData(24, Qt.Orientation.Vertical) == "24"
    # Row 0 is the first data row, as in the Dataset table.
    assert dialog.cell_text(0, 0) == "0"
    dialog.reject()


# -- 7: roles remembered, targets suggested -------------------------------------------------------------


def test_roles_come_back_for_the_same_file_in_a_later_run(qtbot, settings, tmp_path, demo_paths):
    first = MainWindow(settings=settings)
    try:
        _open_data(qtbot, first, demo_paths.data)
        assert first.session.roles.target is None
        assert first.dataset_pane.set_column_role("approved", "target")
        assert first.dataset_pane.set_column_role("group", "sensitive")
        assert first.dataset_pane.set_column_role("application_id", "ignored")
    finally:
        first.close()
        first.deleteLater()

    again = QSettings(settings.fileName(), QSettings.Format.IniFormat)  # a new run reads the file afresh
    second = MainWindow(settings=again)
    try:
        _open_data(qtbot, second, demo_paths.data)
        roles = second.session.roles
        assert roles.target == "approved" and roles.sensitive == ("group",)
        assert "application_id" in roles.ignored and "group" not in roles.features
        assert "as you last set them for this file" in second.dataset_pane.roles_summary.text()
    finally:
        second.close()
        second.deleteLater()


def test_roles_come_back_for_another_file_with_the_same_columns(qtbot, window, write_text):
    first = write_text("march.csv", "id,score,region,result\n1,0.5,n,0\n2,0.7,s,1\n3,0.1,n,1\n")
    second = write_text("april.csv", "region,id,result,score\ns,4,0,0.9\nn,5,1,0.3\n")
    _open_data(qtbot, window, first)
    assert window.dataset_pane.set_column_role("result", "target")
    assert window.dataset_pane.set_column_role("region", "sensitive")
    _open_data(qtbot, window, second)
    roles = window.session.roles
    assert roles.target == "result" and roles.sensitive == ("region",)
    assert "a file with these columns" in window.dataset_pane.roles_summary.text()


def test_explicit_roles_win_over_remembered_ones(qtbot, window, demo_paths):
    _open_data(qtbot, window, demo_paths.data)
    assert window.dataset_pane.set_column_role("income", "target")
    _open_data(qtbot, window, demo_paths.data, target="approved")
    assert window.session.roles.target == "approved"


def test_a_column_named_like_a_target_is_suggested(qtbot, window, small_csv):
    _open_data(qtbot, window, small_csv)
    roles = window.session.roles
    assert roles.target == "label" and "label" not in roles.features
    assert "Target suggested" in window.dataset_pane.roles_summary.text()


def test_the_model_suggests_its_target_when_opened_after_the_data(qtbot, window, demo_paths):
    pytest.importorskip("engine.models.loading")
    _open_data(qtbot, window, demo_paths.data)
    assert window.session.roles.target is None  # "approved" is not an obvious name on its own
    _open_model(qtbot, window, demo_paths.model)
    # The one column the model does not take whose values are its classes.
    assert window.session.roles.target == "approved"
    assert "model" in window.dataset_pane.roles_summary.text()


def test_a_suggested_target_is_not_remembered_as_a_choice(qtbot, window, small_csv):
    _open_data(qtbot, window, small_csv)
    assert window.session.roles.target == "label"
    assert window.dataset_pane.role_memory.recall(window.session.dataset.sha256, ["a", "b", "label"]) is None


# -- 11: folders remembered -------------------------------------------------------------------------------


def test_open_dialogs_start_in_the_folder_used_last_time(qtbot, settings, tmp_path, monkeypatch, small_csv):
    from PySide6.QtWidgets import QFileDialog

    data_folder = tmp_path / "data-here"
    model_folder = tmp_path / "models-here"
    data_folder.mkdir()
    model_folder.mkdir()
    starts: list[str] = []
    answers = iter([str(data_folder / "gone.csv"), str(model_folder / "gone.skops"), "", ""])

    def fake_dialog(_parent, _title, start, _filter):
        starts.append(start)
        return next(answers), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(fake_dialog))
    first = MainWindow(settings=settings)
    first.dataset_pane.open_dialog()
    first.model_pane.open_dialog()
    first.close()
    first.deleteLater()

    second = MainWindow(settings=QSettings(settings.fileName(), QSettings.Format.IniFormat))
    second.dataset_pane.open_dialog()
    second.model_pane.open_dialog()
    second.close()
    second.deleteLater()
    assert starts[2:] == [str(data_folder.resolve()), str(model_folder.resolve())]
