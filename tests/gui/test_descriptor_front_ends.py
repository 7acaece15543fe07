"""The app's forms, method lists and settings are made from the method descriptors.

Every registered method is offered in exactly one area (Analyses, Explain or Fairness), every form field starts at
its descriptor's default (the one named exception: the rows per model call, capped for a responsive window),
and the methods the app gained from the descriptors (linear SHAP and the gradient methods) run in it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.registry import METHODS
from gui.main_window import MainWindow
from gui.settings import INTERACTIVE_CHUNK_ROWS, AppSettings

WAIT_MS = 60_000
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "before_calls"
# What the app sets differently from a descriptor, and why: a model call of the engine's size for the
# command line freezes the window (gui/settings.py, INTERACTIVE_CHUNK_ROWS).
GUI_OVERRIDES = {"chunk_rows": lambda default: min(default, INTERACTIVE_CHUNK_ROWS)}


def test_every_registered_method_has_exactly_one_place_in_the_app() -> None:
    from gui.panes.analyses import analysis_methods
    from gui.panes.explain import VIEW_TITLES, explain_methods
    from gui.panes.fairness import fairness_methods
    from gui.views import AREAS, VIEWS

    analyses = {m.name for m in analysis_methods()}
    explain = set(explain_methods())
    fairness = set(fairness_methods())
    assert analyses | explain | fairness == set(METHODS)
    assert not analyses & explain and not analyses & fairness and not explain & fairness
    assert fairness == {"fairness"} and "proxies" in analyses and "dependence" in explain
    # One table of views: every descriptor's view is in it, in one of the areas, and the Explain tabs are its own.
    assert all(m.view in VIEWS for m in METHODS.values())
    assert {v.area for v in VIEWS.values()} == set(AREAS)
    assert list(VIEW_TITLES) == [k for k, v in VIEWS.items() if v.area == "explain"]
    assert all(VIEWS[m.view].build is not None for m in METHODS.values() if m.name in analyses | explain)


@pytest.fixture
def window(qtbot, settings, tmp_path):
    win = MainWindow(settings=settings, data_dir=tmp_path / "userdata")
    win.resize(1300, 900)
    win.show()
    yield win
    win.close()
    win.deleteLater()


def _expected(param):
    override = GUI_OVERRIDES.get(param.name)
    default = override(param.default) if override is not None else param.default
    return list(default) if isinstance(default, tuple) else default


def test_every_form_starts_at_its_descriptors_defaults(qtbot, window) -> None:
    pane = window.explain_pane
    window.tabs.setCurrentWidget(pane)
    qtbot.waitUntil(lambda: bool(pane.forms), timeout=WAIT_MS)
    qtbot.wait(50)  # the settings fill the forms just after they are built
    assert list(pane.forms) == [name for name, m in METHODS.items() if name in pane.methods]
    assert [pane.method_box.itemText(i) for i in range(pane.method_box.count())] == [
        m.title for m in pane.methods.values()
    ]
    for name, (basic, advanced) in pane.forms.items():
        method = METHODS[name]
        shown = {p.name: p for p in method.params if not p.provided and not p.hidden}
        assert set(basic.names) == {n for n, p in shown.items() if p.basic}, name
        assert set(advanced.names) == {n for n, p in shown.items() if not p.basic}, name
        values = {**basic.values(), **advanced.values()}
        for param_name, param in shown.items():
            value = values[param_name]
            assert (list(value) if isinstance(value, tuple) else value) == _expected(param), (name, param_name)
        pane.set_method(name)
        assert pane.rows_form.isVisibleTo(pane) == method.takes_rows
        assert pane.rows_edit.text() == (method.rows_default or "")
        assert pane.description.text() == method.summary

    window.tabs.setCurrentWidget(window.analyses_pane)
    qtbot.waitUntil(lambda: bool(window.analyses_pane.panels), timeout=WAIT_MS)
    for name, panel in window.analyses_pane.panels.items():
        window.analyses_pane.show_panel(name)
        qtbot.waitUntil(lambda p=panel: p.form is not None, timeout=WAIT_MS)
        # A parameter another result provides (proxies: the permutation importance) is no field of the form.
        assert panel.form.values() == {p.name: _expected(p) for p in METHODS[name].params if not p.provided}
        assert (panel.form.seed_box is not None) == METHODS[name].random


def test_the_settings_leave_each_method_its_own_default_until_set(qtbot) -> None:
    from gui.dialogs.settings_dialog import SettingsDialog

    untouched = AppSettings()
    assert "num_samples" not in untouched.method_defaults("lime")
    assert "n_repeats" not in untouched.method_defaults("permutation")
    assert "n_coalitions" not in untouched.method_defaults("kernelshap")
    chosen = AppSettings(lime_samples=700, permutation_repeats=4)
    assert chosen.method_defaults("lime")["num_samples"] == 700
    assert chosen.method_defaults("permutation")["n_repeats"] == 4

    dialog = SettingsDialog(untouched)
    qtbot.addWidget(dialog)
    lime = METHODS["lime"].defaults["num_samples"]
    assert dialog.lime_box.text() == f"LIME's default ({lime:,})"
    assert dialog.permutation_box.text() == f"default ({METHODS['permutation'].defaults['n_repeats']:,})"
    assert dialog.value() == untouched
    dialog.lime_box.setValue(3)
    assert dialog.value().lime_samples == 10  # raised to the smallest count the settings take


@pytest.fixture
def linear_files(tmp_path: Path) -> tuple[Path, Path]:
    """The fixture's data and a scaled logistic regression: a linear, differentiable model."""
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = Path(shutil.copy(FIXTURE / "credit.csv", tmp_path / "credit.csv"))
    frame = pd.read_csv(data)
    numeric = ["age", "income", "debt", "credit_history_years", "late_payments", "loan_amount"]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[numeric], frame["approved"])
    sio.dump(model, tmp_path / "linear.skops")
    return data, tmp_path / "linear.skops"


def test_linear_shap_and_the_gradient_methods_run_in_the_explain_area(qtbot, window, linear_files) -> None:
    data, model = linear_files
    window.open_data(data, target="approved", sensitive=("group",))
    window.open_model(model)
    qtbot.waitUntil(lambda: window.session.dataset is not None and window.session.model is not None, timeout=WAIT_MS)
    pane = window.explain_pane
    window.tabs.setCurrentWidget(pane)
    for name in ("linearshap", "saliency", "input_x_gradient", "smoothgrad"):
        pane.set_method(name)
        assert name not in pane.unavailable, pane.unavailable.get(name)
        pane.rows_edit.setText("0-4")
        pane.include_selected.setChecked(False)
        assert pane.run() is not None, pane.error.text()
        qtbot.waitUntil(lambda: pane.job_id is None, timeout=WAIT_MS)
        assert pane.error.kind == "", pane.error.text()
        shown = pane.results["shap"]
        assert shown.method == name and tuple(shown.rows) == (0, 1, 2, 3, 4)
        assert shown.provenance.call["method"] == name


def test_a_session_saved_before_calls_were_recorded_reopens_as_it_was(qtbot, window, tmp_path) -> None:
    """tests/fixtures/before_calls/session.probity, saved by the app at commit 83f3dae, shows its results again."""
    import json

    folder = Path(shutil.copytree(FIXTURE, tmp_path / "old"))
    saved = json.loads((folder / "session.probity").read_text(encoding="utf-8"))
    started: list[str] = []
    window.runner.sig_job_queued.connect(lambda job_id: started.append(window.runner.record(job_id).spec.kind))
    with qtbot.waitSignal(window.session_keeper.sig_opened, timeout=WAIT_MS):
        window.session_keeper.open(folder / "session.probity")
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT_MS)
    assert not [kind for kind in started if kind.startswith("explain") or kind in METHODS], started
    pane = window.explain_pane
    assert {"lime", "shap", "clusters", "pdp"} <= set(pane.results)
    assert pane.results["lime"].to_dict() == saved["results"]["explain-lime"]
    assert pane.results["clusters"].to_dict() == saved["results"]["explain-clusters"]
    assert window.analyses_pane.panels["permutation"].result.to_dict() == saved["results"]["permutation"]
    assert pane.method_name == "pdp" and pane.form_values()["ice_rows"] == 20  # the forms are back as saved
    assert pane.forms["lime"][0].values()["num_samples"] == 300
    assert pane.rows_used["lime"]["rows_spec"] == "0-2"
