"""Saved sessions: reopen without recomputing, changed-file banners, trust asked again, autosave, recovery."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from gui.main_window import MainWindow
from gui.settings import AppSettings

WAIT_MS = 60_000
ANALYSIS_KINDS = {"performance", "permutation"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "userdata"


@pytest.fixture
def make_window(qtbot, settings, data_dir):
    windows: list[MainWindow] = []

    def make() -> MainWindow:
        win = MainWindow(settings=settings, data_dir=data_dir)
        win.resize(1100, 750)
        win.show()
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.close()
        win.deleteLater()


def _open_inputs(qtbot, win: MainWindow, data: Path, model: Path) -> None:
    win.open_data(data, target="approved", sensitive=("group",))
    win.open_model(model)
    qtbot.waitUntil(lambda: win.session.dataset is not None and win.session.model is not None, timeout=WAIT_MS)


def _run(qtbot, win: MainWindow, name: str, **params):
    panel = win.analyses_pane.show_panel(name)
    panel.ensure_ready()
    if params:
        panel.form.set_values(params, seed=7)
    assert panel.run() is not None
    qtbot.waitUntil(lambda: panel.result is not None or panel.error.kind == "error", timeout=WAIT_MS)
    assert panel.error.kind == ""
    return panel.result


def _jobs_started(win: MainWindow) -> list[str]:
    kinds: list[str] = []
    win.runner.sig_job_queued.connect(lambda job_id: kinds.append(win.runner.record(job_id).spec.kind))
    return kinds


@pytest.fixture
def copied_demo(tmp_path: Path, demo_paths):
    """The demo files copied beside where the session is saved, so a test may change them."""
    folder = tmp_path / "work"
    folder.mkdir()
    data = Path(shutil.copy(demo_paths.data, folder / "credit.csv"))
    model = Path(shutil.copy(demo_paths.model, folder / "credit_model.skops"))
    return data, model


def test_reopened_session_shows_saved_results_without_running_any_analysis(qtbot, make_window, copied_demo, tmp_path):
    data, model = copied_demo
    first = make_window()
    _open_inputs(qtbot, first, data, model)
    performance = _run(qtbot, first, "performance")
    permutation = _run(qtbot, first, "permutation", n_repeats=2, max_rows=400)
    explain = first.explain_pane
    explain.ensure_ready()
    explain.set_method("lime")
    explain.set_params({"num_samples": 200, "stability_runs": 2})
    explain.rows_edit.setText("first:4")
    assert explain.run() is not None
    qtbot.waitUntil(lambda: explain.job_id is None, timeout=WAIT_MS)
    assert explain.error.kind == "", explain.error.text()
    lime = explain.results["lime"]
    first.session_keeper.notes = "Checked with the credit team."
    path = tmp_path / "work" / "audit.probity"
    with qtbot.waitSignal(first.session_keeper.sig_saved, timeout=WAIT_MS):
        first.session_keeper.save(path)
    first.close()

    second = make_window()
    started = _jobs_started(second)
    with qtbot.waitSignal(second.session_keeper.sig_opened, timeout=WAIT_MS):
        second.session_keeper.open(path)

    assert not ANALYSIS_KINDS & set(started), started  # shown, not recomputed
    assert not [kind for kind in started if kind.startswith("explain")], started
    assert set(started) <= {"open-session", "load-data", "load-model", "table-view", "device", "autosave"}
    perm_panel = second.analyses_pane.panels["permutation"]
    shown = perm_panel.result
    assert shown is not None and shown is not permutation
    np.testing.assert_array_equal(shown.mean, permutation.mean)
    assert shown.feature_names == permutation.feature_names and shown.provenance.seed == 7
    assert perm_panel.view.bar_count == len(permutation.feature_names)
    assert second.analyses_pane.panels["performance"].result.metrics == performance.metrics
    reopened_lime = second.explain_pane.results["lime"]
    np.testing.assert_array_equal(reopened_lime.values, lime.values)
    assert tuple(reopened_lime.rows) == (0, 1, 2, 3)
    # The forms, roles, notes and inputs are back as they were.
    assert perm_panel.form.values()["n_repeats"] == 2 and perm_panel.form.seed == 7
    assert second.explain_pane.method_name == "lime"
    assert second.explain_pane.form_values()["num_samples"] == 200
    assert second.session.roles == first.session.roles
    assert second.session.dataset.sha256 == first.session.dataset.sha256
    assert second.session_keeper.notes == "Checked with the credit team."
    assert second.session_banner.text() == ""


def test_changed_data_and_missing_model_are_named_in_the_banner_and_results_stay(
    qtbot, make_window, copied_demo, tmp_path
):
    data, model = copied_demo
    first = make_window()
    _open_inputs(qtbot, first, data, model)
    performance = _run(qtbot, first, "performance")
    path = tmp_path / "work" / "audit.probity"
    with qtbot.waitSignal(first.session_keeper.sig_saved, timeout=WAIT_MS):
        first.session_keeper.save(path)
    first.close()

    lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
    data.write_text("".join(lines[:-1]), encoding="utf-8")  # one row fewer: the data changed
    model.unlink()

    second = make_window()
    with qtbot.waitSignal(second.session_keeper.sig_opened, timeout=WAIT_MS):
        second.session_keeper.open(path)
    banner = second.session_banner.text()
    assert "The data file credit.csv has changed since the session was saved" in banner
    assert "The model file credit_model.skops is missing" in banner
    assert second.session_banner.isVisible()
    assert second.session.model is None
    assert second.analyses_pane.panels["performance"].result.metrics == performance.metrics


def test_moved_session_folder_finds_its_inputs_beside_the_session_file(qtbot, make_window, copied_demo, tmp_path):
    data, model = copied_demo
    first = make_window()
    _open_inputs(qtbot, first, data, model)
    _run(qtbot, first, "performance")
    with qtbot.waitSignal(first.session_keeper.sig_saved, timeout=WAIT_MS):
        first.session_keeper.save(tmp_path / "work" / "audit")  # the suffix is added
    first.close()
    moved = Path(shutil.move(tmp_path / "work", tmp_path / "elsewhere"))

    second = make_window()
    with qtbot.waitSignal(second.session_keeper.sig_opened, timeout=WAIT_MS):
        second.session_keeper.open(moved / "audit.probity")
    assert second.session_banner.text() == ""
    assert second.session.dataset.path == moved / "credit.csv"
    assert second.session.model.path == moved / "credit_model.skops"


@pytest.fixture
def small_pickle(tmp_path: Path) -> Path:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    path = tmp_path / "small.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression().fit(frame, np.arange(20) % 2)))
    return path


def test_a_pickle_in_a_session_asks_for_trust_again(qtbot, make_window, small_pickle, tmp_path):
    first = make_window()
    first.open_model(small_pickle)
    qtbot.waitUntil(lambda: first.model_pane.trust_dialog is not None, timeout=WAIT_MS)
    first.model_pane.trust_dialog.accept()
    qtbot.waitUntil(lambda: first.session.model is not None, timeout=WAIT_MS)
    path = tmp_path / "pickle.probity"
    with qtbot.waitSignal(first.session_keeper.sig_saved, timeout=WAIT_MS):
        first.session_keeper.save(path)
    first.close()

    second = make_window()
    second.session_keeper.open(path)
    qtbot.waitUntil(lambda: second.model_pane.trust_dialog is not None, timeout=WAIT_MS)
    assert second.session.model is None  # the saved decision is not reused
    assert second.session_keeper.is_restoring
    with qtbot.waitSignal(second.session_keeper.sig_opened, timeout=WAIT_MS):
        second.model_pane.trust_dialog.accept()
    assert second.session.model.trust.granted_by == "gui confirmation"


def test_autosave_is_written_after_a_finished_job(qtbot, make_window, copied_demo, data_dir):
    from engine.session_store import read_session

    data, model = copied_demo
    win = make_window()
    _open_inputs(qtbot, win, data, model)
    with qtbot.waitSignal(win.session_keeper.sig_autosaved, timeout=WAIT_MS) as saved:
        performance = _run(qtbot, win, "performance")
        qtbot.waitUntil(lambda: "performance" in win.session_keeper.results, timeout=WAIT_MS)
    assert saved.args[0] == data_dir / "autosave.probity"
    qtbot.waitUntil(lambda: "performance" in read_session(data_dir / "autosave.probity").results, timeout=WAIT_MS)
    state = read_session(data_dir / "autosave.probity")
    assert state.results["performance"].metrics == performance.metrics
    assert state.data.sha256 == win.session.dataset.sha256 and state.roles == win.session.roles
    assert not list(data_dir.glob(".autosave.probity.*"))  # written atomically: no temporary left


def test_recovery_is_offered_only_when_the_last_run_did_not_exit_cleanly(qtbot, make_window, copied_demo, data_dir):
    from engine.session_store import read_session
    from gui.sessionfile import CLEAN_EXIT_NAME, recovery_candidate

    data, model = copied_demo
    crashed = make_window()
    _open_inputs(qtbot, crashed, data, model)
    with qtbot.waitSignal(crashed.session_keeper.sig_autosaved, timeout=WAIT_MS):
        performance = _run(qtbot, crashed, "performance")
    autosave = data_dir / "autosave.probity"
    # The signal may be an earlier autosave's (opening the inputs); wait for the one holding the result.
    qtbot.waitUntil(lambda: autosave.exists() and "performance" in read_session(autosave).results, timeout=WAIT_MS)
    assert not (data_dir / CLEAN_EXIT_NAME).exists()  # killed now: no clean exit was recorded
    assert recovery_candidate(data_dir) == autosave

    crashed.runner.shutdown(5000)
    crashed.session_keeper.mark_clean_exit()  # what a clean close writes
    assert recovery_candidate(data_dir) is None
    stamp = autosave.stat().st_mtime_ns + 1_000_000_000
    os.utime(autosave, ns=(stamp, stamp))  # an autosave newer than the marker
    assert recovery_candidate(data_dir) == autosave

    unanswered = make_window()
    assert unanswered.offer_recovery() is not None
    unanswered.close()  # quitting without answering keeps the offer
    assert recovery_candidate(data_dir) == autosave

    restarted = make_window()
    dialog = restarted.offer_recovery()
    assert dialog is not None and dialog.isVisible()
    assert "credit.csv" in dialog.message.text() and "1 result" in dialog.message.text()
    with qtbot.waitSignal(restarted.session_keeper.sig_opened, timeout=WAIT_MS):
        dialog.recover_button.click()
    assert restarted.analyses_pane.panels["performance"].result.metrics == performance.metrics
    restarted.close()
    assert recovery_candidate(data_dir) is None
    assert make_window().offer_recovery() is None


def test_settings_persist_across_settings_instances_and_fill_new_forms(qtbot, tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("PROBITY_THREADS", "2")  # recorded first, so the variable is restored afterwards
    monkeypatch.delenv("PROBITY_THREADS")
    ini = str(tmp_path / "prefs.ini")
    chosen = AppSettings(
        seed=42, threads=1, device="cpu", lime_samples=777, kernelshap_coalitions=64, permutation_repeats=3
    )
    chosen.save(QSettings(ini, QSettings.Format.IniFormat))
    assert AppSettings.load(QSettings(ini, QSettings.Format.IniFormat)) == chosen
    assert AppSettings.load(QSettings(str(tmp_path / "none.ini"), QSettings.Format.IniFormat)) == AppSettings()

    win = MainWindow(settings=QSettings(ini, QSettings.Format.IniFormat), data_dir=data_dir)
    try:
        assert win.app_settings == chosen
        assert os.environ["PROBITY_THREADS"] == "1"  # parallel model calls of new jobs use it
        win.show()
        win.tabs.setCurrentWidget(win.analyses_pane)
        panel = win.analyses_pane.show_panel("permutation")
        qtbot.waitUntil(lambda: panel.form is not None and panel.form.seed == 42, timeout=WAIT_MS)
        assert panel.form.values()["n_repeats"] == 3
        assert chosen.method_defaults("lime")["num_samples"] == 777
        assert chosen.method_defaults("kernelshap")["n_coalitions"] == 64
        assert chosen.method_defaults("ig")["device"] == "cpu"

        dialog = win.open_settings_dialog()
        dialog.permutation_box.setValue(5)
        dialog.accept()
        assert panel.form.values()["n_repeats"] == 5  # a change refills the forms
        assert AppSettings.load(QSettings(ini, QSettings.Format.IniFormat)).permutation_repeats == 5
    finally:
        win.close()
        win.deleteLater()


def test_a_session_named_on_the_command_line_or_handed_over_by_the_system_opens(
    qtbot, make_window, copied_demo, tmp_path, settings, data_dir
):
    from PySide6.QtGui import QFileOpenEvent
    from PySide6.QtWidgets import QApplication

    from gui.app import _session_file_opener, build_window, parse_args

    data, model = copied_demo
    first = make_window()
    _open_inputs(qtbot, first, data, model)
    path = tmp_path / "saved audit.probity"
    with qtbot.waitSignal(first.session_keeper.sig_saved, timeout=WAIT_MS):
        first.session_keeper.save(path)
    first.close()

    # The desktop entry runs `probity-gui %f`: the session is an argument among Qt's own.
    args, qt_args = parse_args(["-platform", "offscreen", str(path)])
    assert qt_args == ["-platform", "offscreen"]
    opened = build_window(args, settings=settings, data_dir=data_dir)
    qtbot.addWidget(opened)
    qtbot.waitUntil(lambda: opened.session.model is not None and opened.session.dataset is not None, timeout=WAIT_MS)
    assert opened.session.dataset.name == "credit.csv"

    # macOS delivers a double-clicked file as a QFileOpenEvent to the application.
    other = make_window()
    opener = _session_file_opener(other)
    QApplication.instance().installEventFilter(opener)
    try:
        with qtbot.waitSignal(other.session_keeper.sig_opened, timeout=WAIT_MS):
            QApplication.sendEvent(QApplication.instance(), QFileOpenEvent(str(path)))
    finally:
        QApplication.instance().removeEventFilter(opener)
    qtbot.waitUntil(lambda: other.session.model is not None, timeout=WAIT_MS)
