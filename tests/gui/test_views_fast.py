"""Every result view draws stub results (tests/gui/stubs.py) and shows what it should, with no analysis run.

Each view gets a small real engine result built from arrays, then its edge cases: one
feature, NaN values, a 2,500-character name, many classes or clusters.  What is checked is
what a reader sees: bars and their order, axis labels, captions, badges and their colour.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QRectF

from engine.results import result_from_dict
from gui.panes.explain import GroupsView, SurrogateView
from gui.plots.beeswarm import BeeswarmView
from gui.plots.clusters import ClusterView
from gui.plots.dependence import DependenceView
from gui.plots.importance import ImportanceView
from gui.plots.local import LimeView, WaterfallView, badge_style, format_cell
from gui.plots.performance import METRIC_LABELS, PerformanceView
from tests.gui import stubs
from tests.gui.stubs import FEATURES, LONG_NAME


def _ticks(plot_item: pg.PlotItem, axis: str) -> list[str]:
    """The labels of an axis's fixed ticks, as set by the view."""
    levels = plot_item.getAxis(axis)._tickLevels or []
    return [label for level in levels for _, label in level]


def _axis_label(plot_item: pg.PlotItem, axis: str) -> str:
    return html.unescape(plot_item.getAxis(axis).labelText)


def _title(plot_item: pg.PlotItem) -> str:
    return html.unescape(plot_item.titleLabel.text)


def _items(plot_item: pg.PlotItem, kind: type) -> list:
    return [item for item in plot_item.items if isinstance(item, kind)]


def _render(view) -> None:
    """Lay the view out at a window's size and paint it once (errors while painting fail the test)."""
    view.resize(900, 650)
    image = view.grab()
    assert not image.isNull()


@pytest.fixture
def make(qtbot):
    """Build a view, owned by qtbot (closed and deleted after the test)."""

    def _make(cls):
        view = cls()
        qtbot.addWidget(view)
        return view

    return _make


STUBS = [
    stubs.shap_result,
    stubs.lime_result,
    stubs.permutation_result,
    stubs.native_result,
    stubs.performance_result,
    stubs.regression_performance_result,
    stubs.dependence_result,
    stubs.surrogate_result,
    stubs.clusters_result,
    stubs.group_metrics_result,
]


@pytest.mark.parametrize("factory", STUBS, ids=lambda f: f.__name__)
def test_every_stub_is_a_real_result_that_survives_the_json_round_trip(factory) -> None:
    result = factory()
    data = result.to_dict()
    again = result_from_dict(data)
    assert type(again) is type(result)
    assert again.to_dict() == data


# -- importance ---------------------------------------------------------------------------------------


def test_permutation_importance_draws_one_bar_per_feature_with_whiskers_most_important_on_top(make) -> None:
    view = make(ImportanceView)
    result = stubs.permutation_result(features=("a", "b", "c", "d"), mean=[0.02, 0.3, -0.01, 0.1])
    view.set_result(result)
    assert view.bar_count == 4
    # Top to bottom: b, d, a, c.
    assert _ticks(view.plot_item, "left") == ["b", "d", "a", "c"]
    assert [int(i) for i in view.order] == [1, 3, 0, 2]
    assert _axis_label(view.plot_item, "bottom") == "Drop in accuracy when the column is shuffled"
    assert _title(view.plot_item) == "Permutation importance"
    assert view.whiskers is not None and len(view.whiskers.opts["x"]) == 4
    assert "over 4 shuffles" in view.caption.text() and "Baseline accuracy 0.82 on 40 rows" in view.caption.text()
    assert view.hover_text(0).startswith("b: mean 0.3, sd ")
    assert "95% CI [" in view.hover_text(0)
    assert view.methods == ("permutation",) and not view.switcher.isVisibleTo(view)


def test_the_switcher_holds_one_result_per_method_and_shows_the_chosen_one(make, qtbot) -> None:
    view = make(ImportanceView)
    view.set_result(stubs.permutation_result())
    view.set_result(stubs.shap_result())
    view.set_result(stubs.native_result())
    assert view.methods == ("permutation", "mean_abs", "native")
    assert view.switcher.isVisibleTo(view) and view.method == "native"
    assert [view.method_box.itemText(i) for i in range(3)] == [
        "Permutation importance",
        "Mean |SHAP value|",
        "Model's own importance",
    ]
    assert "biased toward high-cardinality" in view.caption.text()  # the impurity caveat
    with qtbot.waitSignal(view.sig_method_changed) as blocker:
        view.method_box.setCurrentIndex(1)
    assert blocker.args == ["mean_abs"] and view.method == "mean_abs"
    shap = stubs.shap_result()
    expected = np.mean(np.abs(shap.values), axis=0)
    assert np.allclose(np.sort(view.bars.opts["width"]), np.sort(expected))
    assert _axis_label(view.plot_item, "bottom") == "Mean |SHAP value| (P(1), probability)"
    view.clear()
    assert view.methods == () and view.bar_count == 0 and not view.switcher.isVisibleTo(view)


def test_a_linear_models_own_importance_names_its_basis_and_signed_value(make) -> None:
    view = make(ImportanceView)
    view.set_result(stubs.native_result(basis="coefficient×std", importance=[0.1, 0.4, 0.2]))
    assert _title(view.plot_item) == "Model's own importance (coefficient×std)"
    assert _ticks(view.plot_item, "left") == ["income", "debt", "age"]  # top to bottom
    assert view.hover_text(0) == "income: coefficient×std importance 0.4, signed -0.4"
    assert "biased" not in view.caption.text()


def test_a_nan_importance_sorts_last_without_a_bar_or_whisker_and_reads_not_defined(make) -> None:
    view = make(ImportanceView)
    view.set_result(stubs.permutation_result(mean=[0.1, math.nan, 0.2]))
    assert view.bar_count == 3
    assert [int(i) for i in view.order] == [2, 0, 1]
    assert view.bars.opts["width"][-1] == 0.0  # the NaN row, drawn last (bottom), has no bar
    assert len(view.whiskers.opts["x"]) == 2
    assert view.hover_text(2).startswith("income: mean not defined")
    _render(view)


def test_one_feature_and_a_2500_character_name_are_drawn_in_full(make, qtbot) -> None:
    view = make(ImportanceView)
    view.set_result(stubs.permutation_result(features=(LONG_NAME,), mean=[0.05]))
    assert view.bar_count == 1
    assert _ticks(view.plot_item, "left") == [LONG_NAME]
    assert view.hover_text(0).startswith(LONG_NAME + ": mean 0.05")
    view.resize(900, 650)
    view.show()
    qtbot.waitExposed(view)
    # The axis asks for the name's whole width; the bars must still get room to be drawn.
    assert view.plot_item.vb.width() > 100


# -- performance ----------------------------------------------------------------------------------------


def test_a_binary_classifiers_performance_shows_metrics_confusion_roc_and_calibration(make) -> None:
    view = make(PerformanceView)
    result = stubs.performance_result(n_dropped=3)
    view.set_result(result)
    table = view.metrics_table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == [METRIC_LABELS[name] for name in result.metrics]
    shown = {headers[c]: table.item(0, c).text() for c in range(table.columnCount())}
    assert shown["Accuracy"] == "0.8000" and shown["Brier score"] == "not defined"
    assert (
        view.rows_label.text()
        == f"Evaluated on {result.n_rows:,} rows with a target; 3 rows without one were left out."
    )
    for plot in (view.confusion_plot, view.roc_plot, view.calibration_plot):
        assert plot.isVisibleTo(view)
    confusion = view.confusion_plot.getPlotItem()
    cells = [t.toPlainText() for t in _items(confusion, pg.TextItem)]
    share = result.confusion[0, 0] / result.confusion[0].sum()  # of the true class's rows
    assert len(cells) == 4 and cells[0] == f"{result.confusion[0, 0]}\n{share:.1%}"
    assert _ticks(confusion, "bottom") == ["0", "1"] and _ticks(confusion, "left") == ["0", "1"]
    roc = view.roc_plot.getPlotItem()
    names = [html.unescape(label.text) for _, label in roc.legend.items]
    assert names == ["chance", "class 1 (AUC 0.850)"]
    calibration = view.calibration_plot.getPlotItem()
    model_curve = [c for c in calibration.listDataItems() if c.name() == "model"][0]
    assert len(model_curve.xData) == 4  # the empty (NaN) bin is not drawn
    assert _axis_label(calibration, "bottom") == "Mean predicted P(1)"


def test_a_regressors_performance_shows_its_metrics_and_no_classifier_plots(make) -> None:
    view = make(PerformanceView)
    view.set_result(stubs.regression_performance_result())
    table = view.metrics_table
    assert [table.horizontalHeaderItem(c).text() for c in range(3)] == [
        "R²",
        "Mean absolute error",
        "Root mean squared error",
    ]
    assert view.rows_label.text() == "Evaluated on 30 rows with a target."
    for plot in (view.confusion_plot, view.roc_plot, view.calibration_plot):
        assert not plot.isVisibleTo(view)


def test_twelve_classes_and_a_long_class_name_fill_the_confusion_matrix_and_one_roc_curve_each(make) -> None:
    view = make(PerformanceView)
    classes = [f"class_{i}" for i in range(11)] + [LONG_NAME]
    view.set_result(stubs.performance_result(classes=classes))
    confusion = view.confusion_plot.getPlotItem()
    assert len(_items(confusion, pg.TextItem)) == 144
    assert _ticks(confusion, "bottom") == classes
    roc = view.roc_plot.getPlotItem()
    assert len(roc.listDataItems()) == 1 + 12  # the chance line and one curve per class
    assert html.unescape(roc.legend.items[-1][1].text) == f"class {LONG_NAME} (AUC 0.850)"
    assert _axis_label(view.calibration_plot.getPlotItem(), "bottom") == "Mean predicted top-label confidence"
    _render(view)


# -- beeswarm ---------------------------------------------------------------------------------------------


def test_the_beeswarm_draws_a_dot_per_row_and_feature_ordered_by_mean_abs_shap(make) -> None:
    view = make(BeeswarmView)
    result = stubs.shap_result()
    view.set_result(result, frame=stubs.stub_frame())
    assert view.point_count == 4 * 3
    order = np.argsort(-np.mean(np.abs(result.values), axis=0), kind="stable")
    assert [int(j) for j in view.feature_order] == [int(j) for j in order]
    assert _ticks(view.plot_item, "left")[0] == FEATURES[order[0]]
    assert _title(view.plot_item) == "SHAP summary over the explained rows"
    assert _axis_label(view.plot_item, "bottom") == "SHAP value (effect on P(1))"
    assert view.caption.text().startswith("4 rows × 3 features.")
    assert view.hover_text(0).startswith(f"Row 0 · {FEATURES[order[0]]} = ")


def test_beeswarm_selection_rings_the_rows_dots_and_a_click_picks_the_row(make, qtbot) -> None:
    view = make(BeeswarmView)
    view.set_result(stubs.shap_result(rows=(3, 5, 8)))
    view.show_selection(np.array([5, 8]))
    assert view.highlighted_count == 2 * 3
    k = int(np.flatnonzero(view.point_rows == 8)[0])
    with qtbot.waitSignal(view.sig_rows_picked) as blocker:
        view.click_point(k)
    rows, current = blocker.args
    assert rows.tolist() == [8] and current == 8


def test_integrated_gradients_are_named_ig_not_shap(make) -> None:
    view = make(BeeswarmView)
    view.set_result(stubs.shap_result(method="ig"))
    assert _title(view.plot_item) == "IG summary over the explained rows"
    assert _axis_label(view.plot_item, "bottom") == "IG value (effect on P(1))"


# An all-NaN feature makes np.nanmean warn inside beeswarm.py (np.errstate does not silence it); the dots are right.
@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
@pytest.mark.parametrize(
    ("features", "values"),
    [
        (("age",), [[0.1], [-0.2], [0.3]]),
        (FEATURES, [[0.1, math.nan, 0.2], [math.nan, math.nan, 0.1], [0.0, math.nan, -0.1]]),
        ((LONG_NAME, "age"), [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]),
    ],
    ids=["one feature", "NaN values", "long name"],
)
def test_beeswarm_edge_cases_draw_every_dot(make, features, values) -> None:
    view = make(BeeswarmView)
    view.set_result(stubs.shap_result(features=features, rows=(0, 1, 2), values=values))
    assert view.point_count == 3 * len(features)
    assert set(_ticks(view.plot_item, "left")) == set(features)
    x_range = view.plot_item.vb.viewRange()[0]
    assert all(math.isfinite(x) for x in x_range)
    _render(view)


# -- dependence ---------------------------------------------------------------------------------------


def test_dependence_opens_on_the_feature_that_moves_the_output_most(make) -> None:
    view = make(DependenceView)
    result = stubs.dependence_result()  # income's curves are twice as steep as age's
    view.set_result(result)
    assert view.feature == "income"
    assert [view.feature_box.itemText(i) for i in range(view.feature_box.count())] == ["age", "income"]
    assert view.ice_curve_count == 5
    assert _axis_label(view.plot_item, "bottom") == "income"
    assert _axis_label(view.plot_item, "left") == "P(1)"
    assert "Thin lines: the model's P(1) for each of 5 rows as income" in view.caption.text()
    view.feature_box.setCurrentText("age")
    assert view.feature == "age" and _axis_label(view.plot_item, "bottom") == "age"
    view.show_selection(np.array([1, 3]))
    assert view.highlighted_count == 2


def test_long_category_names_are_shortened_on_the_axis_and_given_in_full_in_a_key(make) -> None:
    view = make(DependenceView)
    categories = ("employed", LONG_NAME, "retired")
    view.set_result(stubs.dependence_result(numeric=(), categorical={"employment": categories}))
    assert view.categorical and view.feature == "employment"
    labels = _ticks(view.plot_item, "bottom")
    assert labels[0] == "employed" and labels[2] == "retired"
    assert len(labels[1]) <= 12 and labels[1].endswith("…")
    assert view.category_key.isVisibleTo(view)
    assert view.category_key.text() == f"Key: {labels[1]} = {LONG_NAME}."
    assert "The categories have no order" in view.caption.text()
    _render(view)


# pyqtgraph's ScatterPlotItem warns while bounding all-NaN dots; the view sets no range from them.
@pytest.mark.filterwarnings("ignore:All-NaN slice encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "ice",
    [
        [[0.1, math.nan, 0.3], [0.2, math.nan, 0.4]],
        [[math.nan, math.nan, math.nan], [math.nan, math.nan, math.nan]],
    ],
    ids=["a NaN column", "all NaN"],
)
def test_dependence_with_nan_ice_values_draws_without_error(make, ice) -> None:
    view = make(DependenceView)
    view.set_result(stubs.dependence_result(numeric=("age",), rows=(0, 1), grid_size=3, ice={"age": ice}))
    assert view.feature == "age" and view.ice_curve_count == 2
    assert view.grid_x.tolist() == [0.0, 5.0, 10.0]
    assert all(math.isfinite(y) for y in view.plot_item.vb.viewRange()[1])
    _render(view)


def test_the_caption_gives_the_range_of_the_defined_partial_dependence(make) -> None:
    view = make(DependenceView)
    ice = [[0.1, math.nan, 0.3], [0.2, math.nan, 0.4]]
    view.set_result(stubs.dependence_result(numeric=("age",), rows=(0, 1), grid_size=3, ice={"age": ice}))
    assert "the partial dependence, from 0.15 to 0.35." in view.caption.text()


def test_an_all_nan_partial_dependence_has_no_range_in_the_caption(make) -> None:
    view = make(DependenceView)
    ice = [[math.nan] * 3, [math.nan] * 3]
    view.set_result(stubs.dependence_result(numeric=("age",), rows=(0, 1), grid_size=3, ice={"age": ice}))
    assert "the partial dependence, not defined." in view.caption.text()


def test_a_nan_grid_point_does_not_make_a_feature_the_one_that_moves_the_output_most(make) -> None:
    view = make(DependenceView)
    flat = [[0.1, math.nan, 0.11], [0.1, math.nan, 0.12]]  # a range of 0.015 where defined; income's is 0.2
    view.set_result(stubs.dependence_result(rows=(0, 1), grid_size=3, ice={"age": flat}))
    assert view.feature == "income"


def test_a_one_point_grid_draws(make) -> None:
    view = make(DependenceView)
    view.set_result(stubs.dependence_result(numeric=("age",), grid_size=1))
    assert view.feature == "age" and view.grid_x.size == 1
    _render(view)


# -- clusters -------------------------------------------------------------------------------------------


def test_clusters_fill_the_table_legend_axes_and_a_green_klime_badge(make) -> None:
    view = make(ClusterView)
    result = stubs.clusters_result(k=3, r2=[0.9, 0.6, 0.3])
    view.set_result(result)
    assert view.table.rowCount() == 3 and len(view.scatters) == 3
    assert [html.unescape(label.text) for _, label in view.plot_item.legend.items] == [
        f"Cluster {c} (4 rows)" for c in range(3)
    ]
    assert _axis_label(view.plot_item, "bottom") == "Principal component 1 (60% of the variance)"
    assert _axis_label(view.plot_item, "left") == "Principal component 2 (25% of the variance)"
    assert view.klime_badge.text() == "K-LIME over all rows: R² 0.8"
    assert view.klime_badge.styleSheet() == badge_style("good")
    low = view.table.item(2, 4)
    assert low.text() == "0.3" and "Below 0.5" in low.toolTip()
    assert view.table.item(0, 4).toolTip() == ""
    assert view.caption.text().startswith("12 rows clustered by their treeshap attributions of P(1) into 3 clusters")


@pytest.mark.parametrize("global_r2", [0.3, math.nan], ids=["low", "not defined"])
def test_a_poor_or_undefined_klime_fit_gets_a_warning_badge(make, global_r2) -> None:
    view = make(ClusterView)
    view.set_result(stubs.clusters_result(global_r2=global_r2))
    assert view.klime_badge.styleSheet() == badge_style("warning")
    expected = "not defined" if math.isnan(global_r2) else "0.3"
    assert view.klime_badge.text() == f"K-LIME over all rows: R² {expected}"


def test_brushing_a_cluster_selects_its_rows_and_profiles_it(make, qtbot) -> None:
    view = make(ClusterView)
    result = stubs.clusters_result(k=3)
    view.set_result(result)
    with qtbot.waitSignal(view.sig_rows_picked) as blocker:
        rows = view.brush(QRectF(8.0, -7.0, 4.0, 4.0))  # around (10, -5): cluster 1
    expected = np.sort(result.rows[result.labels == 1])
    assert rows.tolist() == expected.tolist() and blocker.args[0].tolist() == expected.tolist()
    view.show_selection(rows)
    assert view.focused_cluster == 1 and view.highlighted_count == 4
    assert "Cluster 1</b>: 4 rows" in view.profile.text()


def test_tsne_axes_many_clusters_and_a_long_feature_name(make) -> None:
    view = make(ClusterView)
    view.set_result(stubs.clusters_result(k=10, projection_method="tsne", features=(LONG_NAME, "age")))
    assert _axis_label(view.plot_item, "bottom") == "t-SNE 1"
    assert view.table.rowCount() == 10 and len(view.scatters) == 10
    view.focus_cluster(0)
    assert html.escape(LONG_NAME) in view.profile.text()
    _render(view)


# -- LIME ----------------------------------------------------------------------------------------------------


def test_lime_draws_a_bar_per_feature_labelled_with_the_rows_values(make) -> None:
    view = make(LimeView)
    result = stubs.lime_result(rows=(0, 1, 2))
    frame = stubs.stub_frame()
    view.set_result(result, frame=frame, row=1)
    assert view.shown_row == 1 and view.bar_count == 3
    assert np.allclose(np.sort(view.contributions), np.sort(result.values[1]))
    top = int(np.argmax(np.abs(result.values[1])))
    assert abs(view.contributions[0]) == pytest.approx(abs(result.values[1, top]))
    assert view.labels[0] == f"{FEATURES[top]} = {format_cell(frame[FEATURES[top]].iloc[1])}"
    assert _axis_label(view.plot_item, "bottom") == "Change in P(1) (LIME coefficient)"
    assert view.r2_badge.text() == "Local fidelity R² 0.9"
    assert view.r2_badge.styleSheet() == badge_style("good")
    assert view.stability_badge.text() == "Stability not measured"
    assert view.stability_badge.styleSheet() == badge_style("neutral")


@pytest.mark.parametrize(
    ("jaccard", "kind", "word"),
    [(0.9, "good", "stable"), (0.6, "warning", "somewhat stable"), (0.2, "bad", "unstable")],
)
def test_lime_stability_badge_colours_by_jaccard(make, jaccard, kind, word) -> None:
    view = make(LimeView)
    view.set_result(stubs.lime_result(rows=(4,), stability=[jaccard], stability_runs=3))
    assert view.stability_badge.text() == f"Stability {jaccard:g} · {word}"
    assert view.stability_badge.styleSheet() == badge_style(kind)
    assert "and 3 re-runs" in view.stability_badge.toolTip()


def test_lime_on_a_row_it_did_not_explain_says_so_and_keeps_the_row_shown(make) -> None:
    view = make(LimeView)
    view.set_result(stubs.lime_result(rows=(2, 5)))
    assert view.shown_row == 2
    assert view.show_row(7) is False
    assert view.shown_row == 2 and view.note.isVisibleTo(view)
    assert view.note.text().startswith("Row 7 is not among the 2 rows this explanation covers; showing row 2.")
    assert view.show_row(5) is True and not view.note.isVisibleTo(view)


@pytest.mark.parametrize(
    ("features", "values"),
    [(("age",), [[0.4]]), ((LONG_NAME, "age"), [[0.4, -0.1]])],
    ids=["one feature", "long name"],
)
def test_lime_edge_cases(make, features, values) -> None:
    view = make(LimeView)
    view.set_result(stubs.lime_result(features=features, rows=(0,), values=values))
    assert view.bar_count == len(features) and view.labels[0] == features[0]
    assert _ticks(view.plot_item, "left")[0] == features[0]
    _render(view)


def test_lime_with_a_nan_coefficient_draws_the_others(make) -> None:
    view = make(LimeView)
    view.set_result(stubs.lime_result(rows=(0,), values=[[0.3, math.nan, -0.2]]))
    assert view.bar_count == 3
    assert view.labels[-1] == "income"  # NaN has no magnitude: drawn last
    assert all(math.isfinite(x) for x in view.plot_item.vb.viewRange()[0])
    _render(view)


# -- waterfall -------------------------------------------------------------------------------------------


def test_the_waterfall_walks_from_the_base_value_to_the_prediction(make) -> None:
    view = make(WaterfallView)
    result = stubs.shap_result()
    view.set_result(result, row=2)
    i = 2
    assert view.bar_count == 3
    assert view.base_value == pytest.approx(0.3)
    assert view.prediction == pytest.approx(0.3 + result.values[i].sum())
    # The bottom bar starts at the base value; the top bar ends at the prediction.
    assert view.starts[-1] == pytest.approx(view.base_value)
    assert view.starts[0] + view.contributions[0] == pytest.approx(view.prediction)
    assert _title(view.plot_item) == "SHAP: from the base value to this prediction"
    assert _axis_label(view.plot_item, "bottom") == "P(1) (probability)"
    assert view.heading.text().startswith("Row 2 · f(x) = ")
    badges = [view.badges.itemAt(k).widget() for k in range(view.badges.count())]
    texts = [b.text() for b in badges if b is not None]
    assert texts == ["treeshap", "Additivity error 0"]
    assert badges[1].styleSheet() == badge_style("good")


def test_a_large_additivity_error_is_an_amber_badge(make) -> None:
    view = make(WaterfallView)
    view.set_result(stubs.shap_result(quality_error=0.25))
    badge = view.badges.itemAt(1).widget()
    assert badge.text() == "Additivity error 0.25" and badge.styleSheet() == badge_style("warning")


def test_beyond_twelve_features_the_smallest_are_summed_in_one_bar(make) -> None:
    view = make(WaterfallView)
    names = tuple(f"f{j}" for j in range(20))
    values = np.linspace(-1.0, 1.0, 20)[None, :]
    result = stubs.shap_result(features=names, rows=(0,), values=values)
    view.set_result(result)
    assert view.bar_count == WaterfallView.MAX_BARS
    assert view.labels[-1] == "9 other features"
    kept = np.argsort(-np.abs(values[0]), kind="stable")[: WaterfallView.MAX_BARS - 1]
    rest = np.setdiff1d(np.arange(20), kept)
    assert view.contributions[-1] == pytest.approx(values[0, rest].sum())
    assert view.starts[0] + view.contributions[0] == pytest.approx(view.prediction)


def test_integrated_gradients_waterfall_names_the_baseline_and_its_completeness(make) -> None:
    view = make(WaterfallView)
    view.set_result(stubs.shap_result(method="ig", quality_error=0.5, output_space="logit", output_name="logit P(1)"))
    assert _title(view.plot_item) == "IG: from the base value to this prediction"
    assert "base value f(baseline) = 0.3" in view.heading.text()
    badge = view.badges.itemAt(1).widget()
    assert badge.text() == "Completeness error 0.5" and badge.styleSheet() == badge_style("warning")
    assert _axis_label(view.plot_item, "bottom") == "logit P(1)"  # the space is named once


def test_a_one_feature_waterfall(make) -> None:
    view = make(WaterfallView)
    view.set_result(stubs.shap_result(features=("age",), rows=(0,), values=[[0.25]]))
    assert view.bar_count == 1 and view.labels == ["age"] and view.prediction == pytest.approx(0.55)
    _render(view)


def test_a_waterfall_with_a_nan_attribution_draws_the_others(make) -> None:
    view = make(WaterfallView)
    view.set_result(stubs.shap_result(rows=(0,), values=[[0.2, math.nan, -0.1]]))
    assert view.bar_count == 3 and view.prediction == pytest.approx(0.4)
    assert all(math.isfinite(x) for x in view.plot_item.vb.viewRange()[0])
    # The defined bars walk from the base value to the prediction; the NaN one (no magnitude: at the
    # bottom) is labelled, drawn without a bar and adds nothing.
    assert view.labels == [FEATURES[0], FEATURES[2], FEATURES[1]]
    assert view.starts.tolist() == pytest.approx([0.2, 0.3, 0.3])
    assert view.starts[0] + view.contributions[0] == pytest.approx(view.prediction)
    assert view.bars is not None and len(view.bars.opts["x0"]) == 2
    assert view.hover_text(2) == f"{FEATURES[1]}: not defined (no bar; left out of the sum)"
    caption = view.caption.text()
    assert "0.3 + 0.1 = 0.4." in caption
    assert caption.endswith(" 1 contribution is not defined (NaN) and left out of the sum.")
    _render(view)


def test_a_waterfall_whose_summed_features_are_all_nan_draws_the_others(make) -> None:
    view = make(WaterfallView)
    names = tuple(f"f{j}" for j in range(13))
    values = np.r_[np.linspace(0.1, 1.1, 11), math.nan, math.nan][None, :]
    view.set_result(stubs.shap_result(features=names, rows=(0,), values=values))
    assert view.bar_count == WaterfallView.MAX_BARS and view.labels[-1] == "2 other features"
    assert math.isnan(view.contributions[-1]) and view.starts[-1] == pytest.approx(0.3)
    assert view.starts[0] + view.contributions[0] == pytest.approx(view.prediction)
    assert view.caption.text().endswith(" 2 contributions are not defined (NaN) and left out of the sum.")
    assert all(math.isfinite(x) for x in view.plot_item.vb.viewRange()[0])
    _render(view)


def test_a_waterfall_with_no_defined_attribution_keeps_a_finite_range(make) -> None:
    view = make(WaterfallView)
    view.set_result(stubs.shap_result(rows=(0,), values=[[math.nan, math.nan, math.nan]]))
    assert view.bar_count == 3 and view.bars is None
    assert all(math.isfinite(x) for x in view.plot_item.vb.viewRange()[0])
    _render(view)


# -- surrogates and groups ----------------------------------------------------------------------------------


def test_the_surrogate_view_states_both_fits_rules_and_equation(make) -> None:
    view = make(SurrogateView)
    view.set_result(stubs.surrogate_result())
    text = view.text.toPlainText()
    assert text.splitlines()[0] == "What imitates P(1) globally."
    assert (
        "Decision tree of depth 1: R² 0.800 on 40 fitted rows, 0.710 held out, "
        "same side of 0.5 as the model on 90.0% of held-out rows." in text
    )
    assert "  • If income <= 41,150, then 0.2 (30 rows)." in text
    assert "Sparse linear model: R² 0.600 on 40 fitted rows, not defined held out" in text
    assert "  0.1 + 1e-05 × income − 0.02 × debt" in text


def test_a_regression_surrogate_does_not_claim_an_agreement(make) -> None:
    view = make(SurrogateView)
    view.set_result(stubs.surrogate_result(classification=False))
    text = view.text.toPlainText()
    assert text.startswith("What imitates prediction globally.") and "same side of 0.5" not in text


def test_the_groups_view_shows_only_the_measures_the_task_defines_and_the_gap(make) -> None:
    view = make(GroupsView)
    view.set_result(stubs.group_metrics_result())
    table = view.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["Attribute", "Group", "Rows", "Share", "Selection rate", "Base rate", "Accuracy", "TPR", "FPR"]
    assert table.rowCount() == 2
    assert [table.item(r, 1).text() for r in range(2)] == ["a", "b"]
    assert table.item(1, 4).text() == "0.400"
    assert view.gaps.text() == (
        "group, demographic parity (positive_rate): gap 0.100, ratio 0.750 between a (lowest) and b (highest)."
    )


def test_groups_without_a_defined_gap_say_so_and_many_long_named_groups_fit(make) -> None:
    view = make(GroupsView)
    groups = [f"g{i}" for i in range(11)] + [LONG_NAME]
    view.set_result(stubs.group_metrics_result(groups=groups, defined_gap=False))
    assert view.table.rowCount() == 12 and view.table.item(11, 1).text() == LONG_NAME
    assert view.gaps.text() == "No gap is defined for these groups."
    _render(view)
