"""Issue 10 in the window: the second acknowledgement for unreviewed names, and text from files shown literally.

The trust dialog lists each unreviewed name in red and loads such a file only when a separate box is
ticked on top of trust; the decision reaches ``load_model`` as ``allow_unreviewed``; a refusal is
said inline and keeps the model in use.  Names, columns, class labels and session fields written by
whoever made a file are shown as written wherever Qt or pyqtgraph would otherwise render markup.
"""

from __future__ import annotations

import hashlib
import html
import json
import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
import pytest
from PySide6 import QtGui
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QTextDocument
from PySide6.QtWidgets import QDialog, QLabel, QWidget

from gui.main_window import MainWindow
from gui.panes.model import ACKNOWLEDGE_TEXT, SCAN_STATUS_ROLE, TrustDialog
from gui.plots import palette
from gui.text import escape, literal, plain_label

WAIT_MS = 60_000
FRACTION = "fractions.Fraction"


# -- what Qt shows ------------------------------------------------------------------------------------------


def _shown(text: str, fmt: Qt.TextFormat = Qt.TextFormat.AutoText) -> str:
    """The text a user sees for ``text`` in a label of format ``fmt`` (tooltips are AutoText)."""
    rich = fmt == Qt.TextFormat.RichText or (fmt == Qt.TextFormat.AutoText and QtGui.Qt.mightBeRichText(text))
    if not rich:
        return text
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


def _label_shows(label: QLabel) -> str:
    return _shown(label.text(), label.textFormat())


def _mentions(raw: str, token: str) -> bool:
    return token in raw or html.escape(token) in raw or html.escape(token, quote=False) in raw


def _eaten(window: QWidget, tokens: tuple[str, ...]) -> list[str]:
    """Every label, tooltip, plot title, axis label or legend entry that names a token but does not show it."""
    bad: list[str] = []

    def check(where: str, raw: str, shown: str) -> None:
        for token in tokens:
            if _mentions(raw, token) and token not in shown:
                bad.append(f"{where}: {raw!r} shows as {shown!r}")

    for label in window.findChildren(QLabel):
        check(f"QLabel {label.objectName() or type(label.parent()).__name__}", label.text(), _label_shows(label))
    for widget in window.findChildren(QWidget):
        if widget.toolTip():
            check(f"tooltip of {type(widget).__name__}", widget.toolTip(), _shown(widget.toolTip()))
    for plot in window.findChildren(pg.PlotWidget):
        item = plot.getPlotItem()
        check("plot title", item.titleLabel.text, item.titleLabel.item.toPlainText())
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            check(f"{name} axis label", axis.labelText, axis.label.toPlainText())
        if item.legend is not None:
            for _sample, entry in item.legend.items:
                check("legend entry", entry.text, entry.item.toPlainText())
    return bad


# -- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture
def window(qtbot, settings, tmp_path):
    win = MainWindow(settings=settings, data_dir=tmp_path / "userdata")
    win.resize(1200, 800)
    win.show()
    yield win
    win.close()
    win.deleteLater()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fitted():
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    return LogisticRegression().fit(frame, np.arange(20) % 2)


@pytest.fixture
def fraction_pickle(tmp_path: Path) -> Path:
    """A fitted model carrying a harmless attribute of a type Probity has not reviewed."""
    model = _fitted()
    model.note_ = Fraction(1, 3)
    path = tmp_path / "fraction.pkl"
    path.write_bytes(pickle.dumps(model, protocol=5))
    return path


@pytest.fixture
def reviewed_pickle(tmp_path: Path) -> Path:
    path = tmp_path / "reviewed.pkl"
    path.write_bytes(pickle.dumps(_fitted(), protocol=5))
    return path


def _wait_dialog(qtbot, win: MainWindow) -> TrustDialog:
    qtbot.waitUntil(lambda: win.model_pane.trust_dialog is not None, timeout=WAIT_MS)
    dialog = win.model_pane.trust_dialog
    assert isinstance(dialog, TrustDialog)
    return dialog


def _load_queued(win: MainWindow) -> list[dict]:
    """The parameters of every model load the pane submits from now on."""
    params: list[dict] = []

    def queued(job_id: int) -> None:
        spec = win.runner.record(job_id).spec
        if spec.kind == "load-model":
            params.append(dict(spec.params))

    win.runner.sig_job_queued.connect(queued)
    return params


# -- the trust dialog ----------------------------------------------------------------------------------------


def test_unreviewed_names_need_the_box_ticked_on_top_of_trust(qtbot, window, fraction_pickle):
    loads = _load_queued(window)
    window.open_model(fraction_pickle)
    dialog = _wait_dialog(qtbot, window)
    assert dialog.unreviewed == (FRACTION,)
    assert dialog.acknowledge_box.text() == ACKNOWLEDGE_TEXT
    assert not dialog.acknowledge_box.isHidden() and not dialog.acknowledge_box.isChecked()
    assert not dialog.trust_button.isEnabled()
    # Each unreviewed name in red, the reviewed ones not.
    colours = {
        dialog.imports_list.item(i).text(): dialog.imports_list.item(i).foreground().color()
        for i in range(dialog.imports_list.count())
    }
    assert colours[FRACTION] == QColor(palette.ERROR)
    assert all(c != QColor(palette.ERROR) for name, c in colours.items() if name != FRACTION)
    assert f"<span style='color:{palette.ERROR}'>{FRACTION}</span>" in dialog.unreviewed_label.text()
    assert FRACTION in _label_shows(dialog.unreviewed_label)

    dialog.accept()  # what Enter or a script would do: refused while the box is unticked
    assert dialog.isVisible() and window.session.model is None and window.model_pane.trust_dialog is dialog

    dialog.acknowledge_box.setChecked(True)
    assert dialog.trust_button.isEnabled() and dialog.allow_unreviewed
    qtbot.mouseClick(dialog.trust_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT_MS)
    assert [p["allow_unreviewed"] for p in loads] == [False, True]
    assert loads[-1]["trusted_sha256"] == (_sha(fraction_pickle),)
    trust = window.session.model.trust
    assert trust.granted_by == "gui confirmation" and trust.allow_unreviewed and trust.unreviewed == (FRACTION,)
    assert window.session.model.estimator.note_ == Fraction(1, 3)
    assert f"1 unreviewed name acknowledged: {FRACTION}" in window.model_pane.fields["trust"].text()


def test_an_exported_report_records_the_acknowledgement_and_its_command_loads_the_model(
    qtbot, window, fraction_pickle, tmp_path, capsys
):
    from engine.cli import main
    from gui.dialogs.export_report import audit_command

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": rng.integers(0, 3, size=80).astype(float)})
    frame["y"] = (frame["a"] > 0).astype(int)
    data = tmp_path / "table.csv"
    frame.to_csv(data, index=False)
    window.open_data(data, target="y")
    window.open_model(fraction_pickle)
    dialog = _wait_dialog(qtbot, window)
    dialog.acknowledge_box.setChecked(True)
    dialog.accept()
    qtbot.waitUntil(lambda: window.session.model is not None and window.session.roles is not None, timeout=WAIT_MS)
    export = window.open_export_dialog()
    export.folder_edit.setText(str(tmp_path / "out"))
    request = export.build_request()
    export.close()
    assert request.allow_unreviewed and request.trusted_sha256 == (_sha(fraction_pickle),)
    command = audit_command(request, tmp_path / "out")
    assert command[command.index("--trust-model") + 2] == "--allow-unreviewed"
    # The recorded command really loads the model again; without the acknowledgement it is refused.
    without = [c for c in command[2:] if c != "--allow-unreviewed"]
    assert main(["--progress", "none", "audit", *without, "--no-report"]) == 3
    assert main(["--progress", "none", "audit", *command[2:], "--no-report", "--force"]) == 0, capsys.readouterr().err
    trust = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))["provenance"]["model_trust"]
    assert trust["allow_unreviewed"] is True and trust["unreviewed"] == [FRACTION]


def test_reviewed_file_asks_only_for_trust(qtbot, window, reviewed_pickle):
    loads = _load_queued(window)
    window.open_model(reviewed_pickle)
    dialog = _wait_dialog(qtbot, window)
    assert dialog.unreviewed == () and dialog.acknowledge_box.isHidden() and dialog.unreviewed_label.isHidden()
    assert dialog.trust_button.isEnabled() and not dialog.allow_unreviewed
    qtbot.mouseClick(dialog.trust_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT_MS)
    assert loads[-1]["allow_unreviewed"] is False
    assert window.session.model.trust.allow_unreviewed is False


def test_unreviewed_names_are_escaped_and_dangerous_names_never_load(qtbot, tmp_path):
    hostile = "<img src=x><a href='https://example.com/'>click</a>"
    dialog = TrustDialog(
        tmp_path / "<b>model<i>.pkl", "ab" * 32, (hostile, "numpy.ndarray"), set(), unreviewed=(hostile,)
    )
    qtbot.addWidget(dialog)
    assert escape(hostile) in dialog.unreviewed_label.text()
    assert hostile in _label_shows(dialog.unreviewed_label)
    assert "<b>model<i>.pkl is a pickle-based file" in _label_shows(dialog.text)
    assert dialog.imports_list.item(0).text() == hostile  # item views draw plain text

    refused = TrustDialog(
        tmp_path / "bad.pkl", "cd" * 32, ("os.system", FRACTION), {"os.system"}, unreviewed=(FRACTION,)
    )
    qtbot.addWidget(refused)
    refused.acknowledge_box.setChecked(True)
    assert not refused.trust_button.isEnabled() and not refused.can_load and not refused.allow_unreviewed
    refused.accept()
    assert refused.result() != QDialog.DialogCode.Accepted


def test_unacknowledged_load_is_refused_inline_and_keeps_the_model_in_use(
    qtbot, window, reviewed_pickle, fraction_pickle
):
    window.open_model(reviewed_pickle)
    _wait_dialog(qtbot, window).accept()
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT_MS)
    in_use = window.session.model
    pane = window.model_pane
    # Trusted, but without the acknowledgement: what a file whose names the scan did not flag would meet.
    job = pane.open_path(fraction_pickle, trusted_sha256=(_sha(fraction_pickle),))
    qtbot.waitUntil(lambda: bool(pane.error_text), timeout=WAIT_MS)
    assert pane.error_text == (
        f"fraction.pkl was not loaded: it names {FRACTION}, which Probity has not reviewed "
        f"and which were not acknowledged. The model in use is still {in_use.name}."
    )
    assert pane.trust_dialog is None
    assert window.session.model is in_use
    assert window.jobs_dock.state_of(job) == "refused"
    statuses = {
        pane.scan_list.item(i).text(): pane.scan_list.item(i).data(SCAN_STATUS_ROLE)
        for i in range(pane.scan_list.count())
    }
    assert statuses[FRACTION] == "unreviewed" and statuses["numpy.ndarray"] == "reviewed"
    assert "1 not reviewed by Probity" in _label_shows(pane.scan_verdict)


def test_a_refused_name_with_markup_is_shown_as_written(qtbot, window, tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"\x80\x02c<img src=x>\nthing\nq\x00.")
    window.open_model(evil)
    pane = window.model_pane
    qtbot.waitUntil(lambda: bool(pane.error_text), timeout=WAIT_MS)
    assert "<img src=x>.thing" in _label_shows(pane.error)
    assert "<img src=x>.thing" in _label_shows(pane.scan_verdict)
    statuses = {
        pane.scan_list.item(i).text(): pane.scan_list.item(i).data(SCAN_STATUS_ROLE)
        for i in range(pane.scan_list.count())
    }
    assert statuses == {"<img src=x>.thing": "dangerous"}
    assert window.session.model is None


# -- escaping -----------------------------------------------------------------------------------------------


def test_session_file_fields_show_literally_in_the_banner(qtbot, window, tmp_path):
    name = "<img src=x><a href=#pwn>data.csv"
    result_key = "<b>injected</b>"
    session = tmp_path / "hostile.probity"
    session.write_text(
        json.dumps(
            {
                "format": "probity-session",
                "format_version": 1,
                "data": {"path": f"/nowhere/{name}", "sha256": "00" * 32},
                "results": {result_key: {"kind": "nonsense"}},
            }
        ),
        encoding="utf-8",
    )
    with qtbot.waitSignal(window.session_keeper.sig_opened, timeout=WAIT_MS):
        window.session_keeper.open(session)
    banner = window.session_banner
    assert banner.isVisible()
    assert banner.message.textFormat() == Qt.TextFormat.PlainText
    shown = _label_shows(banner.message)
    assert f"The data file {name} is missing (it was at /nowhere/{name})." in shown
    assert f"'{result_key}'" in shown


def test_literal_shows_markup_as_written_and_leaves_plain_text_alone(qapp):
    assert literal("income (float64)") == "income (float64)"
    for text in ("<img src=x>", "a & b", "R&amp;D", "<b>x</b> (object)\nsecond line"):
        assert _shown(literal(text)) == text
    label = plain_label("<i>kept</i>")
    assert _label_shows(label) == "<i>kept</i>"


def test_names_from_files_show_literally_across_the_window(qtbot, window, tmp_path):
    """Hostile file, column and class names through data, model, performance and permutation views."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    income, debt, note = "<b>income</b>", "<img src=x>", "<a href='https://example.com/'>debt</a>"
    target, no, yes = "<i>approved</i>", "<b>no</b>", "<a href=#y>yes</a>"
    tokens = (income, debt, note, target, no, yes, "<img src=d>", "<img src=m>")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({income: rng.normal(size=300), debt: rng.normal(size=300), note: rng.normal(size=300)})
    frame[target] = np.where(frame[income] + 0.5 * frame[debt] + rng.normal(scale=0.5, size=300) > 0, yes, no)
    data = tmp_path / "<img src=d>credit.csv"
    frame.to_csv(data, index=False)
    model = LogisticRegression().fit(frame[[income, debt, note]], frame[target])
    model_path = tmp_path / "<img src=m>model.skops"
    sio.dump(model, model_path)

    window.open_data(data, target=target)
    window.open_model(model_path)
    qtbot.waitUntil(
        lambda: (
            window.session.dataset is not None and window.session.model is not None and window.session.roles is not None
        ),
        timeout=WAIT_MS,
    )
    assert window.dataset_pane.error_text == "" and window.model_pane.error_text == ""
    for name in ("performance", "permutation"):
        panel = window.analyses_pane.show_panel(name)
        panel.ensure_ready()
        if name == "permutation":
            panel.form.set_values({"n_repeats": 2}, seed=1)
        assert panel.run() is not None
        qtbot.waitUntil(lambda p=panel: p.result is not None or p.error.kind == "error", timeout=WAIT_MS)
        assert panel.error.kind == ""

    # Places known to carry the names, so the sweep below cannot pass by finding nothing.
    assert _label_shows(window.model_pane.fields["file"]) == model_path.name
    assert data.name in _label_shows(window.data_status) and model_path.name in _label_shows(window.model_status)
    assert data.name in _label_shows(window.dataset_pane.summary)
    assert target in _label_shows(window.dataset_pane.roles_summary)
    calibration = [p.getPlotItem().getAxis("bottom").label.toPlainText() for p in window.findChildren(pg.PlotWidget)]
    assert f"Mean predicted P({no})" in [t.strip() for t in calibration]  # the second class, sorted
    assert _eaten(window, tokens) == []
