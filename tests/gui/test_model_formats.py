"""The models auditors are handed, opened and explained in the window as a person would (issue #13).

Each model is trained here on a small credit table with a text category and missing values: an XGBoost
.json, a LightGBM .txt, a CatBoost .cbm and a TorchScript network with its sidecar.  The window opens the
file with no trust question, shows the columns it expects, and the Explain area runs TreeSHAP on the
boosters (values add up to the library's own margin) and Integrated Gradients on the network, with the
faithfulness line under each explanation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gui.main_window import MainWindow

WAIT_MS = 60_000
FEATURES = ["income", "debt", "region"]


def _frame(n: int = 300, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(size=n),
            "debt": rng.normal(size=n),
            "region": rng.choice(["north", "south", "east"], size=n),
        }
    )
    frame.loc[::9, "income"] = np.nan
    score = np.nan_to_num(frame["income"].to_numpy()) - 0.6 * frame["debt"] + 0.7 * (frame["region"] == "east")
    frame["approved"] = (score + 0.3 * rng.normal(size=n) > 0.1).astype(int)
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    frame = _frame()
    data = folder / "credit.csv"
    frame.to_csv(data, index=False)
    X = frame[FEATURES].assign(region=pd.Categorical(frame["region"], categories=["north", "south", "east"]))
    y = frame["approved"].to_numpy()
    out = {"data": data}

    import xgboost as xgb

    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 0, "nthread": 1},
        xgb.DMatrix(X, label=y, enable_categorical=True),
        num_boost_round=10,
    )
    out["xgboost"] = folder / "credit_xgb.json"
    booster.save_model(out["xgboost"])

    import lightgbm as lgb

    lgbm = lgb.train(
        {"objective": "binary", "num_leaves": 7, "min_data_per_group": 5, "verbosity": -1, "seed": 0},
        lgb.Dataset(X, label=y),
        num_boost_round=10,
    )
    out["lightgbm"] = folder / "credit_lgb.txt"
    lgbm.save_model(out["lightgbm"])

    import catboost as cb

    cat = cb.CatBoostClassifier(
        iterations=15, depth=3, random_seed=0, thread_count=1, verbose=False, allow_writing_files=False
    )
    cat.fit(frame[FEATURES], y, cat_features=["region"])
    out["catboost"] = folder / "credit_cat.cbm"
    cat.save_model(str(out["catboost"]))

    import torch

    generator = torch.Generator().manual_seed(0)  # the test's own network: a seeded generator, no global state
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
    out["torch"] = folder / "credit_net.pt"
    torch.jit.script(net).save(str(out["torch"]))
    sidecar = {"features": ["debt", "income"], "task": "classification", "classes": [0, 1], "output": "logits"}
    out["torch"].with_name("credit_net.features.json").write_text(json.dumps(sidecar))
    return out


@pytest.fixture
def window(qtbot, settings, tmp_path):
    win = MainWindow(settings=settings, data_dir=tmp_path / "userdata")
    win.resize(1300, 900)
    win.show()
    yield win
    win.close()
    win.deleteLater()


def _open(qtbot, window: MainWindow, files: dict[str, Path], kind: str) -> None:
    window.open_data(files["data"], target="approved")
    qtbot.waitUntil(lambda: window.session.roles is not None, timeout=WAIT_MS)
    window.open_model(files[kind])
    pane = window.model_pane
    qtbot.waitUntil(lambda: window.session.model is not None or bool(pane.error_text), timeout=WAIT_MS)
    assert window.session.model is not None, pane.error_text
    assert pane.trust_dialog is None  # these formats carry no code: no trust question


def _explain(qtbot, window: MainWindow, method: str, rows: str, **params) -> object:
    pane = window.explain_pane
    window.tabs.setCurrentWidget(pane)
    qtbot.waitUntil(lambda: bool(pane.forms), timeout=WAIT_MS)
    pane.set_method(method)
    if params:
        pane.set_params(params)
    pane.rows_edit.setText(rows)
    pane.include_selected.setChecked(False)
    assert pane.run() is not None, pane.error.text()
    qtbot.waitUntil(lambda: pane.job_id is None, timeout=WAIT_MS)
    assert pane.error.kind == "", pane.error.text()
    return pane.results["shap"]


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm", "catboost"])
def test_a_booster_opens_and_treeshap_adds_up_to_its_own_margin(qtbot, window, files, kind) -> None:
    _open(qtbot, window, files, kind)
    model = window.session.model
    pane = window.model_pane
    assert [pane.columns_list.item(i).text() for i in range(pane.columns_list.count())] == FEATURES
    result = _explain(qtbot, window, "treeshap", "0-7")
    assert result.method == "treeshap" and len(result.rows) == 8
    # In the library's margin space: the values and the base add up to its own raw output.
    margin = np.asarray(model.predict_raw_output(window.session.dataset.frame.iloc[:8][FEATURES]), dtype=float)
    assert np.allclose(result.values.sum(axis=1) + result.base_values, margin, atol=1e-5)
    assert "faithfulness" in (result.provenance.call or {})
    assert window.explain_pane.result_tabs.tabText(window.explain_pane.result_tabs.currentIndex()) == "SHAP / IG"


def test_a_torchscript_network_opens_with_its_sidecar_and_integrated_gradients_explain_it(qtbot, window, files) -> None:
    _open(qtbot, window, files, "torch")
    model = window.session.model
    assert tuple(model.input_columns) == ("debt", "income") and tuple(model.classes) == (0, 1)
    result = _explain(qtbot, window, "ig", "0-4", baseline="mean")
    assert result.method == "ig" and list(result.feature_names) == ["debt", "income"]
    # Completeness: the attributions add up to f(x) - f(baseline).
    assert np.allclose(result.values.sum(axis=1), result.predictions - result.base_values, atol=1e-4)
