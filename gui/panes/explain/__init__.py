"""The Explain workspace: run any explanation method, pick instances, read linked plots.

A method is chosen from a box listing every registered method whose view is
one of this area's (:data:`VIEW_TITLES`); the box, the parameter forms (the
descriptor's basic parameters shown, the rest folded under "Advanced
options"), the default rows and the texts all come from the method
descriptors, read the first time the area is needed (the registry loads
pandas, which start-up does not).  Methods that explain rows (LIME, SHAP,
gradients, clusters) take a row spec (``first:20``, ``random:500``,
``3,17,42``: 0-based positions, as in the report and the CLI) plus, when
ticked, the rows selected anywhere in the window.

The instance picker selects rows by position, by a search (``income > 50000``,
``employment = retired``, plain text), by highest or lowest prediction, or by
a click in any plot; the selection is the window's :class:`SelectionModel`,
so the dataset table, the plots and the "Selected rows" table all follow it.

Everything computed runs on the job runner through :func:`run_explanation`,
:func:`scan_predictions` and :func:`gui.selection.find_rows`; the widgets only
wire and display.  The modules, one job each:

* :mod:`~gui.panes.explain.worker`: what can be run and the job functions (no widgets);
* :mod:`~gui.panes.explain.widgets`: the folding section, the instance picker, the selected rows' model;
* :mod:`~gui.panes.explain.views`: the result views and the tabs that hold and link them;
* :mod:`~gui.panes.explain.pane`: :class:`ExplainPane`, which wires them to the session, the runner and the selection.
"""

from __future__ import annotations

from gui.panes.explain.pane import ExplainPane, rows_spec_text
from gui.panes.explain.views import GroupsView, ResultArea, SurrogateView
from gui.panes.explain.widgets import CollapsibleSection, InstancePicker
from gui.panes.explain.worker import (
    VIEW_TITLES,
    ExplainOutcome,
    PredictionScan,
    attribution_key,
    explain_methods,
    run_explanation,
    scan_predictions,
)

__all__ = [
    "explain_methods",
    "ExplainOutcome",
    "attribution_key",
    "PredictionScan",
    "run_explanation",
    "scan_predictions",
    "CollapsibleSection",
    "InstancePicker",
    "SurrogateView",
    "GroupsView",
    "ResultArea",
    "ExplainPane",
    "VIEW_TITLES",
    "rows_spec_text",
]
