"""A PyTorch network without a sidecar: the model pane asks for its input columns (the CLI's --features).

The prompt offers the open dataset's feature columns, loads the network with the columns given, and a
count that does not fit the network is the loader's one sentence inline, the prompt kept for a correction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from gui.main_window import MainWindow  # noqa: E402

WAIT_MS = 60_000


@pytest.fixture
def window(qtbot, settings, tmp_path):
    win = MainWindow(settings=settings, data_dir=tmp_path / "userdata")
    win.resize(1200, 800)
    win.show()
    yield win
    win.close()
    win.deleteLater()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["income", "debt", "age"])
    frame["approved"] = (frame["income"] > 0).astype(int)
    data = tmp_path / "loans.csv"
    frame.to_csv(data, index=False)
    torch.manual_seed(0)  # the test's own network; nothing of the app draws from torch's global generator
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).eval()
    model = tmp_path / "net.pt"
    torch.jit.script(net).save(str(model))
    return data, model


def test_the_model_pane_writes_a_networks_sidecar_and_loads_it(qtbot, window, files) -> None:
    data, model = files
    window.open_data(data, target="approved")
    qtbot.waitUntil(lambda: window.session.roles is not None, timeout=WAIT_MS)
    pane = window.model_pane
    pane.open_path(model)
    prompt = pane.sidecar_prompt
    qtbot.waitUntil(lambda: prompt.isVisibleTo(pane), timeout=WAIT_MS)
    assert "net.pt does not say which data columns it takes" in prompt.hint.text()
    # Prefilled from the dataset: its feature columns and its target's classes.
    assert prompt.columns_edit.text() == "income, debt, age"
    assert prompt.classes_edit.text() == "0, 1"
    assert window.session.model is None

    # Two outputs, and neither a task nor classes: the loader cannot tell what they are, and says so.
    prompt.classes_edit.clear()
    prompt.save_button.click()
    qtbot.waitUntil(lambda: "returns 2 outputs per row" in prompt.hint.text(), timeout=WAIT_MS)
    side = model.with_name("net.features.json")
    assert json.loads(side.read_text()) == {"features": ["income", "debt", "age"]}
    assert window.session.model is None and prompt.isVisibleTo(pane)

    prompt.task_box.setCurrentIndex(prompt.task_box.findData("classification"))
    prompt.classes_edit.setText("0, 1")
    prompt.save_button.click()
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT_MS)
    loaded = window.session.model
    assert tuple(loaded.input_columns) == ("income", "debt", "age") and tuple(loaded.classes) == (0, 1)
    assert json.loads(side.read_text()) == {
        "features": ["income", "debt", "age"],
        "task": "classification",
        "classes": [0, 1],
    }
    assert loaded.trust.to_dict()["torch"]["output"] == "logits"  # detected from the outputs
    assert not prompt.isVisibleTo(pane)
    # The command line reads the same file: the network loads there with no flag.
    from engine.models.loading import load_model

    assert tuple(load_model(model).input_columns) == ("income", "debt", "age")
