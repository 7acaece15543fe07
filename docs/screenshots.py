"""Screenshots of every pane, taken offscreen on the built-in demo.

Opens the app with ``--demo``, runs Performance and Permutation importance
and the Explain workspace's methods (LIME, SHAP, clusters, PDP/ICE, and
Integrated Gradients of a scikit-learn MLP) through
the job runner exactly as a user would, and saves one PNG per pane and view
(plus the pickle trust dialog) under ``docs/screenshots/``, with the window at
1366×768, the smallest common laptop screen::

    .venv/bin/python docs/screenshots.py            # or: make screenshots
    .venv/bin/python docs/screenshots.py --out /tmp/shots --scale 2
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _wait(app: object, done: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"Timed out waiting for {what}.")
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.02)


def _settle(app: object, seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)


def _small_pickle(folder: Path) -> Path:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"income": np.arange(40.0), "debt": np.arange(40.0) % 7})
    path = folder / "legacy_model.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression().fit(frame, np.arange(40) % 2)))
    return path


def _hover_top_bar(app: object, view: object) -> None:
    """Move the (virtual) mouse over the most important bar so its exact values show."""
    from PySide6.QtCore import QPointF

    _settle(app)
    top = int(view.order[0])  # type: ignore[attr-defined]
    mean = float(view.result.mean[top])  # type: ignore[attr-defined]
    row = len(view.order) - 1  # type: ignore[attr-defined]
    scene = view.plot_item.vb.mapViewToScene(QPointF(mean / 2, row))  # type: ignore[attr-defined]
    view._on_scene_mouse_moved(scene)  # type: ignore[attr-defined]


# The instance the local views show: a declined applicant whose explanation is easy to read.
EXPLAIN_ROW = 17


def _run_explain(app: object, pane: object, method: str, rows: str | None = None, **params: object) -> None:
    pane.set_method(method)  # type: ignore[attr-defined]
    if params:
        pane.set_params(params)  # type: ignore[attr-defined]
    if rows is not None:
        pane.rows_edit.setText(rows)  # type: ignore[attr-defined]
    if pane.run() is None:  # type: ignore[attr-defined]
        raise SystemExit(f"{method} did not start: {pane.error.text()}")  # type: ignore[attr-defined]
    _wait(app, lambda: pane.job_id is None, method)  # type: ignore[attr-defined]
    if pane.error.kind == "error":  # type: ignore[attr-defined]
        raise SystemExit(f"{method} failed: {pane.error.text()}")  # type: ignore[attr-defined]


def _hover_bar(app: object, view: object, index: int = 0) -> None:
    """Put the (virtual) mouse on a local view's bar so its exact value shows."""
    from PySide6.QtCore import QPointF

    _settle(app)
    n = view.bar_count  # type: ignore[attr-defined]
    x = float(view.starts[index] + view.contributions[index] / 2)  # type: ignore[attr-defined]
    scene = view.plot_item.vb.mapViewToScene(QPointF(x, n - 1 - index))  # type: ignore[attr-defined]
    view._on_scene_mouse_moved(scene)  # type: ignore[attr-defined]


def _shoot_explain(app: object, window: object, shoot: Callable[..., None]) -> None:
    """LIME, the SHAP waterfall and beeswarm, clusters with a brush, and PDP/ICE, linked by one selection."""
    from PySide6.QtCore import QPointF, QRectF

    pane = window.explain_pane  # type: ignore[attr-defined]
    window.tabs.setCurrentWidget(pane)  # type: ignore[attr-defined]
    window.jobs_dock.hide()  # type: ignore[attr-defined]
    window.resize(1366, 768)  # type: ignore[attr-defined]
    pane.ensure_ready()
    window.selection.set_current(EXPLAIN_ROW, source="screenshots")  # type: ignore[attr-defined]

    _run_explain(app, pane, "lime", rows="first:10", num_samples=2000, stability_runs=3)
    _hover_bar(app, pane.lime_view)
    shoot("explain-lime")

    _run_explain(app, pane, "treeshap", rows="random:500")
    _hover_bar(app, pane.waterfall_view)
    shoot("explain-shap")

    _run_explain(app, pane, "clusters", rows="random:500")
    view = pane.cluster_view
    points = view.points
    lo_x, hi_x = float(points[:, 0].min()), float(points[:, 0].max())
    lo_y, hi_y = float(points[:, 1].min()), float(points[:, 1].max())
    view.brush(
        QRectF(
            QPointF(lo_x + 0.72 * (hi_x - lo_x), lo_y + 0.15 * (hi_y - lo_y)),
            QPointF(hi_x + 0.01, lo_y + 0.75 * (hi_y - lo_y)),
        )
    )
    pane.show_view("clusters")
    shoot("explain-clusters")

    window.selection.set_current(EXPLAIN_ROW, source="screenshots")  # type: ignore[attr-defined]
    _run_explain(app, pane, "pdp", ice_rows=200)
    found = pane.results["pdp"].rows
    window.selection.set_rows(found[:3], source="screenshots")  # type: ignore[attr-defined]
    pane.dependence_view.show_feature("income")
    shoot("explain-pdp")

    pane.show_view("shap")
    splitter = pane.view("shap").splitter
    sizes = splitter.sizes()
    splitter.setSizes([sum(sizes) - 860, 860])  # the beeswarm alone, wide enough to read
    _settle(app)
    shoot("explain-beeswarm", pane.beeswarm_view)
    splitter.setSizes(sizes)

    window.jobs_dock.show()  # type: ignore[attr-defined]
    window.resize(1366, 768)  # type: ignore[attr-defined]


def _demo_mlp(folder: Path) -> Path:
    """A scikit-learn MLP on the demo's numeric columns, saved with skops (the kind of file IG explains)."""
    import warnings

    import pandas as pd
    import skops.io as sio
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from engine.demo import ensure_demo

    frame = pd.read_csv(ensure_demo().data)
    numeric = ["age", "income", "debt", "credit_history_years", "late_payments", "loan_amount"]
    complete = frame.dropna(subset=numeric)
    model = make_pipeline(StandardScaler(), MLPClassifier((16, 8), activation="tanh", max_iter=400, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(complete[numeric], complete["approved"])
    path = folder / "credit_mlp.skops"
    sio.dump(model, path)
    return path


def _shoot_gradients(app: object, window: object, shoot: Callable[..., None], scratch: Path) -> None:
    """Integrated Gradients of a scikit-learn MLP: the waterfall from f(baseline) to f(x)."""
    window.model_pane.open_path(_demo_mlp(scratch))  # type: ignore[attr-defined]
    _wait(
        app,
        lambda: (
            window.session.model is not None  # type: ignore[attr-defined]
            and window.session.model.name == "credit_mlp.skops"
        ),
        "the MLP",
    )  # type: ignore[attr-defined]
    pane = window.explain_pane  # type: ignore[attr-defined]
    window.tabs.setCurrentWidget(pane)  # type: ignore[attr-defined]
    window.jobs_dock.hide()  # type: ignore[attr-defined]
    window.resize(1366, 768)  # type: ignore[attr-defined]
    # Rows with a missing value are left out (the demo has some), and the pane says which.
    window.selection.set_current(3, source="screenshots")  # type: ignore[attr-defined]
    _run_explain(app, pane, "ig", rows="first:200", baseline="median", n_steps=64)
    _hover_bar(app, pane.waterfall_view)
    shoot("explain-ig")
    window.jobs_dock.show()  # type: ignore[attr-defined]
    window.resize(1366, 768)  # type: ignore[attr-defined]


def _european_csv(folder: Path) -> Path:
    """A semicolon-separated, decimal-comma, cp1252 export with "?" for unknown values."""
    cities = ("Zürich", "Genève", "Köln", "Malmö")
    lines = ["kunde;stadt;einkommen;schulden;bewertung"]
    for i in range(80):
        debt = "?" if i % 9 == 4 else f"{(i * 37) % 500},{i % 10}0"
        lines.append(f"K-{1000 + i};{cities[i % 4]};{31000 + 713 * i},{i % 7}5;{debt};{'A' if i % 3 else 'B'}")
    path = folder / "kunden_export.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


def _shoot_dialogs(app: object, window: object, shoot: Callable[..., None], scratch: Path) -> None:
    """The import preview of a European CSV, and the report export after a finished run."""
    pane = window.dataset_pane  # type: ignore[attr-defined]
    window.tabs.setCurrentWidget(pane)  # type: ignore[attr-defined]
    pane.preview_import(_european_csv(scratch))
    preview = pane.import_dialog
    _wait(app, lambda: preview.preview is not None, "the import preview")
    preview.missing_edit.setText("?")
    _wait(app, lambda: preview._timer.isActive() or preview.is_parsing, "the re-parse to start", 5)
    _wait(app, lambda: not preview.is_parsing and not preview._timer.isActive(), "the re-parse")
    preview.resize(900, 560)
    shoot("import-preview", preview)
    preview.reject()

    dialog = window.open_export_dialog()  # type: ignore[attr-defined]
    dialog.open_url = lambda _url: True  # the screenshot run opens no viewer
    dialog.folder_edit.setText(str(scratch / "credit-audit"))
    dialog.auditor_edit.setText("Dana Reviewer")
    dialog.organisation_edit.setText("Model Risk Office")
    dialog.notes_edit.setPlainText(
        "Income and late payments drive most decisions, as the credit policy intends.\n\n"
        "The approval-rate gap between groups is larger than in last year's model; "
        "see the group metrics before sign-off."
    )
    dialog.section_checks["clusters"].setChecked(False)
    dialog.export()
    _wait(app, lambda: dialog.job_id is None, "the report export", 600)
    if dialog.error.kind == "error":
        raise SystemExit(f"The export failed: {dialog.error.text()}")
    shoot("export-report", dialog)
    dialog.reject()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio (2 for sharp README images)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_SCALE_FACTOR", str(args.scale))

    from PySide6.QtCore import QSettings, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from gui.app import build_window, configure_application, parse_args

    qInstallMessageHandler(lambda *_: None)  # offscreen-platform chatter is not news here
    app = QApplication.instance() or QApplication([sys.argv[0]])
    configure_application(app)
    scratch = Path(tempfile.mkdtemp(prefix="probity-shots-"))
    # A throwaway settings file: screenshots must not fill the user's recent-file lists.
    settings = QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat)
    os.environ["PROBITY_DATA_DIR"] = str(scratch / "userdata")  # autosaves stay out of the user's folder
    window = build_window(parse_args(["--demo"])[0], settings=settings)
    window.resize(1366, 768)
    window.show()
    _wait(app, lambda: window.session.dataset is not None and window.session.model is not None, "the demo")
    args.out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def shoot(name: str, widget: object | None = None) -> None:
        _settle(app)
        target = widget if widget is not None else window
        path = args.out / f"{name}.png"
        target.grab().save(str(path))  # type: ignore[attr-defined]
        saved.append(path)

    window.tabs.setCurrentWidget(window.dataset_pane)
    shoot("dataset")
    window.tabs.setCurrentWidget(window.model_pane)
    shoot("model")

    window.tabs.setCurrentWidget(window.analyses_pane)
    for name in ("performance", "permutation"):
        panel = window.analyses_pane.show_panel(name)
        panel.ensure_ready()
        panel.run()
        _wait(app, lambda p=panel: p.result is not None or p.error.kind == "error", name)
        if panel.error.kind == "error":
            raise SystemExit(f"{name} failed: {panel.error.text()}")
        if name == "permutation":
            _hover_top_bar(app, panel.view)
        shoot(name)

    _shoot_explain(app, window, shoot)

    # The trust dialog for a pickle, on its own.
    window.tabs.setCurrentWidget(window.model_pane)
    window.model_pane.open_path(_small_pickle(scratch))
    _wait(app, lambda: window.model_pane.trust_dialog is not None, "the trust dialog")
    dialog = window.model_pane.trust_dialog
    dialog.resize(640, 420)
    shoot("trust-dialog", dialog)
    dialog.reject()

    _shoot_dialogs(app, window, shoot, scratch)
    _shoot_gradients(app, window, shoot, scratch)

    window.close()
    for path in saved:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
