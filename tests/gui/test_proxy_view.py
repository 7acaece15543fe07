"""The proxy-risk table draws every row of a ProxyResult and names each attribute's strongest proxy."""

from __future__ import annotations

import math

from engine.explain.proxies import ProxyAttribute, ProxyResult, ProxyRow
from gui.plots.proxies import ProxyView
from tests.gui.stubs import provenance


def test_the_proxy_table_shows_each_row_and_the_strongest_proxy(qtbot) -> None:
    rows = (
        ProxyRow(
            attribute="group",
            feature="neighbourhood",
            auc=0.91,
            mutual_information=0.4,
            importance=0.02,
            importance_ci_low=0.01,
            importance_ci_high=0.03,
            used=True,
            risk=0.82,
            level="high",
            rank=1,
        ),
        ProxyRow(
            attribute="group",
            feature="income",
            auc=0.55,
            mutual_information=0.01,
            importance=0.2,
            importance_ci_low=0.15,
            importance_ci_high=0.25,
            used=True,
            risk=0.1,
            level="low",
            rank=2,
        ),
    )
    attribute = ProxyAttribute(
        attribute="group", kind="auc", n_rows=100, groups=("A", "B"), all_inputs_auc=0.93, strongest="neighbourhood"
    )
    view = ProxyView()
    qtbot.addWidget(view)
    view.set_result(ProxyResult(provenance=provenance("proxies"), attributes=(attribute,), rows=rows))
    assert view.table.rowCount() == 2
    assert [view.table.item(r, 1).text() for r in range(2)] == ["neighbourhood", "income"]
    assert view.table.item(0, 3).text() == "high" and view.table.item(0, 6).text() == "0.02 (0.01 to 0.03)"
    assert view.summary.text() == (
        "group: its strongest proxy is neighbourhood; all inputs together predict it with AUC 0.93."
    )
    none = ProxyAttribute(attribute="age", kind="r2", all_inputs_r2=math.nan, direct_input=True)
    view.set_result(ProxyResult(provenance=provenance("proxies"), attributes=(none,), rows=()))
    assert view.table.rowCount() == 0
    assert view.summary.text().startswith("age: no input the model uses predicts it strongly; ")
    assert "R² not defined" in view.summary.text() and "itself a model input" in view.summary.text()
    view.clear()
    assert view.summary.text() == "" and view.result is None
