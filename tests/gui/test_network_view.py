"""The network view draws a stub NetworkResult: weights by input column and unit, activations by layer and unit.

The result is built from arrays (no network is run), with a ReLU layer holding a dead unit, a Tanh layer
narrower than the first, and a first layer wider than the units shown.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QGraphicsRectItem

from engine.explain.network import LayerActivation, NetworkResult
from engine.results import result_from_dict
from gui.plots.base import TICK_POINT_SIZE
from gui.plots.network import NetworkView
from gui.views import VIEWS, methods_in
from tests.gui.stubs import FEATURES, provenance


def network_result(*, relu: bool = True) -> NetworkResult:
    """3 inputs; a first layer of 5 units (4 kept); layer 1 of 4 units (unit 2 dead), layer 2 of 2 tanh units."""
    weights = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, -1.0], [2.0, 0.0, 0.0], [-0.5, 0.5, 3.0]])
    first = LayerActivation(
        name="Layer 1",
        modules="0 Linear → 1 ReLU" if relu else "0 Linear → 1 Tanh",
        activation="ReLU" if relu else "Tanh",
        n_units=4,
        mean=[0.8, 0.1, 0.0, 1.5],
        inactive_share=[0.2, 0.9, 1.0, 0.0] if relu else None,
    )
    second = LayerActivation(
        name="Layer 2", modules="2 Linear → 3 Tanh", activation="Tanh", n_units=2, mean=[-0.4, 0.6]
    )
    return NetworkResult(
        provenance=provenance("network"),
        feature_names=FEATURES,
        first_layer="0 Linear (3 → 5)",
        n_first_units=5,
        weights=weights,
        feature_std=[1.0, 10.0, 0.1],
        input_mapping="The network takes the raw columns as they are; each weight is per unit of its column.",
        layers=(first, second),
        architecture="Linear (3 → 5) → ReLU → Linear (5 → 2) → Tanh → Linear (2 → 1)",
        rows=np.arange(10),
        n_rows=10,
        max_units=4,
        notes=("Units 0 to 3 of the first layer's 5 are shown.",),
    )


def _ticks(item: pg.PlotItem, axis: str) -> list[str]:
    levels = item.getAxis(axis)._tickLevels or []
    return [label for level in levels for _, label in level]


def test_the_view_is_in_the_explain_area_and_the_stub_survives_json() -> None:
    assert VIEWS["network"].area == "explain" and "network" in methods_in("explain")
    result = network_result()
    again = result_from_dict(json.loads(json.dumps(result.to_dict())))
    assert isinstance(again, NetworkResult) and again.layers[1].inactive_share is None
    np.testing.assert_array_equal(again.scaled_weights, result.scaled_weights)


def test_weights_activations_and_dead_units_are_drawn_as_heatmaps_with_readable_axes(qtbot) -> None:
    view = VIEWS["network"].build()
    assert isinstance(view, NetworkView)
    qtbot.addWidget(view)
    result = network_result()
    view.set_result(result)
    # Weights: input columns down, units across, each weight times its column's standard deviation.
    w = view.weights
    assert not w.isHidden() and w.image is not None
    np.testing.assert_allclose(w.values, (result.weights * np.array([1.0, 10.0, 0.1])[None, :]).T)
    assert _ticks(w.item, "left") == list(FEATURES) and _ticks(w.item, "bottom") == ["0", "1", "2", "3"]
    assert html.unescape(w.item.getAxis("left").labelText) == "Input column"
    assert "4 of 5" in html.unescape(w.item.getAxis("bottom").labelText)
    assert w.levels == (-20.0, 20.0)  # symmetric about 0: income's −2 × 10
    assert w.describe(1, 0) == (
        "income, unit 0: weight × standard deviation -20 (weight -2 per unit of the column, standard deviation 10)"
    )
    # Activations: one row per hidden layer, the narrower layer padded with grey cells, the dead unit crossed.
    a = view.activations
    assert a.values.shape == (2, 4) and np.isnan(a.values[1, 2:]).all()
    assert _ticks(a.item, "left") == ["Layer 1 · ReLU", "Layer 2 · Tanh"]
    # The row names fit beside the axis title (the axis does not widen for fixed ticks by itself).
    font = QFont()
    font.setPointSize(TICK_POINT_SIZE)
    assert a.item.getAxis("left").minimumWidth() >= QFontMetrics(font).horizontalAdvance("Layer 1 · ReLU") + 20
    assert len([i for i in a.item.items if isinstance(i, QGraphicsRectItem)]) == 2
    assert a.crossed == [(0, 2)]
    assert a.describe(0, 2) == "Layer 1, unit 2: mean activation 0, inactive on 100.0% of the rows; dead"
    assert a.describe(1, 3) == "Layer 2 has 2 units."
    # Inactive shares, 0 to 1, for the ReLU layer only.
    i = view.inactive
    assert not i.isHidden() and i.levels == (0.0, 1.0)
    np.testing.assert_allclose(i.values[0], [0.2, 0.9, 1.0, 0.0])
    assert np.isnan(i.values[1]).all()
    assert "Units 0 to 3 of the first layer's 5 are shown." in view.notes.text()
    assert "Linear (3 → 5) → ReLU" in view.summary.text()
    view.resize(900, 900)
    assert not view.grab().isNull()
    view.clear()
    assert view.weights.isHidden() and view.activations.isHidden() and view.result is None


def test_without_relu_layers_there_is_no_inactive_map_and_without_weights_no_weights_map(qtbot) -> None:
    view = NetworkView()
    qtbot.addWidget(view)
    view.set_result(network_result(relu=False))
    assert view.inactive.isHidden() and not view.activations.isHidden() and view.activations.crossed == []
    import dataclasses

    no_weights = dataclasses.replace(network_result(), weights=np.zeros((0, 3)), first_layer="", n_first_units=0)
    view.set_result(no_weights)
    assert view.weights.isHidden() and not view.activations.isHidden()
