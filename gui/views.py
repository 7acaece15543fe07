"""Every result view of the app, by the view key a method's descriptor names: one table for every area.

A registered method names its view (:attr:`Method.view <engine.method.Method.view>`);
this table says what that view is called, which area of the window shows it and
how its widget is built.  So the area a method appears in follows from its
descriptor and this one table: the Analyses area offers the methods whose view
is one of its own (:func:`methods_in`), the Explain area those whose view is one
of its tabs, the Fairness area the fairness analysis.  A new method with an
existing view needs no change here; a new view is one line.

Each widget has ``set_result(result)`` and ``clear()``, and is built on first use
(the builders import pyqtgraph lazily, so importing this module stays cheap and
free of Qt: the Explain area's job functions read it on worker threads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from engine.method import Method

__all__ = ["AREAS", "ResultView", "VIEWS", "methods_in", "titles_in"]

#: The areas of the window that show results, as the tabs name them.
AREAS = ("analyses", "explain", "fairness")


@dataclass(frozen=True)
class ResultView:
    """One result view.

    Attributes
    ----------
    key: the view key descriptors name.
    title: its tab's title (the Explain area) or its heading.
    area: where it is shown, one of :data:`AREAS`.
    build: makes its widget; ``None`` where the area lays the result out in its
        own tabs (the Fairness area: bars, intersections, table, summary, flips).
    """

    key: str
    title: str
    area: str
    build: Callable[[], QWidget] | None


def _performance() -> QWidget:
    from gui.plots.performance import PerformanceView

    return PerformanceView()


def _importance() -> QWidget:
    from gui.plots.importance import ImportanceView

    return ImportanceView()


def _proxies() -> QWidget:
    from gui.plots.proxies import ProxyView

    return ProxyView()


def _lime() -> QWidget:
    from gui.plots.local import LimeView

    return LimeView()


def _shap() -> QWidget:
    from gui.panes.explain.views import ShapTab

    return ShapTab()


def _clusters() -> QWidget:
    from gui.plots.clusters import ClusterView

    return ClusterView()


def _dependence() -> QWidget:
    from gui.plots.dependence import DependenceView

    return DependenceView()


def _surrogate() -> QWidget:
    from gui.panes.explain.views import SurrogateView

    return SurrogateView()


def _groups() -> QWidget:
    from gui.panes.explain.views import GroupsView

    return GroupsView()


def _network() -> QWidget:
    from gui.plots.network import NetworkView

    return NetworkView()


#: Every view, by key; within an area in the order its tabs take.
VIEWS: dict[str, ResultView] = {
    v.key: v
    for v in (
        ResultView("performance", "Performance", "analyses", _performance),
        ResultView("permutation", "Permutation importance", "analyses", _importance),
        ResultView("proxies", "Proxies", "analyses", _proxies),
        ResultView("lime", "LIME", "explain", _lime),
        ResultView("shap", "SHAP / IG", "explain", _shap),
        ResultView("clusters", "Clusters", "explain", _clusters),
        ResultView("dependence", "Dependence", "explain", _dependence),
        ResultView("importance", "Importance", "explain", _importance),
        ResultView("surrogate", "Surrogates", "explain", _surrogate),
        ResultView("groups", "Groups", "explain", _groups),
        ResultView("network", "Network", "explain", _network),
        ResultView("fairness", "Fairness", "fairness", None),
    )
}


def titles_in(area: str) -> dict[str, str]:
    """The views of ``area`` and their titles, in tab order."""
    return {key: v.title for key, v in VIEWS.items() if v.area == area}


def methods_in(area: str) -> dict[str, Method]:
    """The registered methods ``area`` offers (their view is one of its own), in registry order."""
    from engine.registry import METHODS

    if area not in AREAS:
        raise KeyError(area)
    return {name: m for name, m in METHODS.items() if m.view in VIEWS and VIEWS[m.view].area == area}
