"""Export report from the session: the PDF holds the results the auditor looked at (Integrated Gradients
included, which the batch audit never runs), nothing is re-run, and probity verify re-runs each of them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from gui.main_window import MainWindow

WAIT_MS = 60_000


@pytest.fixture
def mlp_window(qtbot, settings, tmp_path):
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_iris(as_frame=True).frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_pipeline(StandardScaler(), MLPClassifier((6,), activation="tanh", max_iter=300, random_state=0))
        model.fit(frame.drop(columns="target"), frame["target"])
    frame.to_csv(tmp_path / "iris.csv", index=False)
    sio.dump(model, tmp_path / "mlp.skops")
    window = MainWindow(settings=settings, data_dir=tmp_path / "userdata")
    window.resize(1300, 900)
    window.show()
    window.open_data(tmp_path / "iris.csv", target="target")
    window.open_model(tmp_path / "mlp.skops")
    qtbot.waitUntil(lambda: window.session.dataset is not None and window.session.model is not None, timeout=WAIT_MS)
    yield window, tmp_path / "iris.csv", tmp_path / "mlp.skops"
    window.close()
    window.deleteLater()


def _run(qtbot, pane, method: str, rows: str, **params) -> None:
    pane.set_method(method)
    if params:
        pane.set_params(params)
    pane.rows_edit.setText(rows)
    pane.include_selected.setChecked(False)
    assert pane.run() is not None, pane.error.text()
    qtbot.waitUntil(lambda: pane.job_id is None, timeout=WAIT_MS)
    assert pane.error.kind == "", pane.error.text()


def test_the_report_is_made_from_the_session_and_verifies(qtbot, mlp_window, tmp_path: Path) -> None:
    from engine.verify import verify_report

    window, data, model = mlp_window
    pane = window.explain_pane
    window.tabs.setCurrentWidget(pane)
    _run(qtbot, pane, "ig", "0-9", klass="2")
    # The figures the PDF states are under the explanation too.
    assert pane.faithfulness.isVisible() and pane.faithfulness.text().startswith("Faithfulness over 10 rows")
    _run(qtbot, pane, "lime", "0-2", num_samples=300)
    qtbot.waitUntil(lambda: len(window.session_keeper.results) >= 2, timeout=WAIT_MS)

    dialog = window.open_export_dialog()
    assert dialog.from_session and dialog.results_box.isVisible() and not dialog.compute_box.isVisible()
    assert set(dialog.result_checks) == {"ig", "lime"}
    dialog.folder_edit.setText(str(tmp_path / "out"))
    dialog.auditor_edit.setText("A. Auditor")
    job = dialog.export()
    assert job is not None, dialog.error.text()
    qtbot.waitUntil(lambda: dialog.result is not None or dialog.error.kind != "", timeout=WAIT_MS)
    assert dialog.result is not None, dialog.error.text()

    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["provenance"]["kind"] == "session"
    # The two local explanations' global rankings are compared: the agreement figure is derived from them.
    assert list(document["results"]) == ["ig", "lime", "agreement"]
    assert document["results"]["agreement"]["methods"] == ["mean |LIME|", "mean |IG|"]
    shown = window.session_keeper.results
    ig = next(r for r in shown.values() if getattr(r, "method", "") == "ig")
    # Nothing was re-run: the report holds the very numbers the auditor saw.
    assert document["results"]["ig"]["values"] == ig.to_dict()["values"]
    command = document["provenance"]["command"]
    assert command[:7] == ["probity", "verify", "report.pdf", "--data", "iris.csv", "--model", "mlp.skops"]

    outcome = verify_report(tmp_path / "out" / "report.pdf", data=data, model=model)
    assert outcome.ok, outcome.lines()
    assert outcome.n_results == 3
    dialog.close()


def test_without_session_results_the_dialog_offers_the_full_audit(qtbot, mlp_window) -> None:
    window, _, _ = mlp_window
    dialog = window.open_export_dialog()
    assert not dialog.from_session and not dialog.session_radio.isEnabled()
    assert dialog.compute_box.isVisible() and not dialog.results_box.isVisible()
    dialog.close()
