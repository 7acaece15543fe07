"""The Analyses and Explain panes driven through a FakeRunner: what Run submits, and what each job state shows.

No analysis runs: the panes get stub inputs (tests/gui/stubs.py), the fake runner records the
JobSpec that pressing Run submits, and the test plays the job's progress, result, failure or
cancellation back through the runner's signals.  Where a job's own function is cheap and the
point (a search, the predictions, a parameter the method refuses before computing anything),
the fake runs it synchronously on the test's thread.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFormLayout

from engine.errors import AnalysisError
from engine.inputs import AuditInputs
from engine.registry import METHODS
from gui.panes.analyses import AnalysisPanel, run_analysis
from gui.panes.explain import (
    VIEW_TITLES,
    ExplainOutcome,
    ExplainPane,
    explain_methods,
    run_explanation,
    scan_predictions,
)
from gui.runner import JobRunner, JobSpec, JobState, RunnerLike
from gui.selection import SelectionModel, find_rows
from gui.session import Session
from tests.gui import stubs
from tests.gui.fakes import FakeRunner, bug_error, user_error


@pytest.fixture
def fake(qapp):
    runner = FakeRunner()
    yield runner
    runner.shutdown()
    runner.deleteLater()


@pytest.fixture
def session(qapp):
    return stubs.stub_session()


def _click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


# -- the fake itself ------------------------------------------------------------------------------------


def _protocol_members() -> list[str]:
    return [name for name in vars(RunnerLike) if not name.startswith("_")]


def test_the_fake_and_the_real_runner_both_have_every_member_panes_use() -> None:
    members = _protocol_members()
    assert {"submit", "cancel", "record", "sig_job_progress", "sig_job_finished", "sig_job_failed"} <= set(members)
    for name in members:
        real, fake = getattr(JobRunner, name), getattr(FakeRunner, name)
        if inspect.isfunction(real):
            assert inspect.signature(fake) == inspect.signature(real), name
        else:
            assert type(fake) is type(real), name  # a Signal, or a property


def test_signals_carry_the_same_arguments_as_the_real_runners(qtbot, fake) -> None:
    seen: list[tuple] = []
    fake.sig_job_queued.connect(lambda j: seen.append(("queued", j)))
    fake.sig_job_started.connect(lambda j: seen.append(("started", j)))
    fake.sig_job_progress.connect(lambda j, f, m: seen.append(("progress", j, f, m)))
    fake.sig_job_finished.connect(lambda j, r: seen.append(("finished", j, r)))
    fake.sig_job_failed.connect(lambda j, e: seen.append(("failed", j, e.message, e.is_user_error)))
    fake.sig_job_cancelled.connect(lambda j: seen.append(("cancelled", j)))
    a = fake.submit(JobSpec(kind="a", fn=lambda *, ctx: None, params={"x": 1}))
    fake.progress(a, 0.5, "half")
    fake.finish(a, "done")
    b = fake.submit(JobSpec(kind="b", fn=lambda *, ctx: None))
    fake.fail(b, "No rows.")
    c = fake.submit(JobSpec(kind="c", fn=lambda *, ctx: None))
    fake.fail(c, bug_error("oops"))
    assert seen == [
        ("queued", a),
        ("started", a),
        ("progress", a, 0.5, "half"),
        ("finished", a, "done"),
        ("queued", b),
        ("started", b),
        ("failed", b, "No rows.", True),
        ("queued", c),
        ("started", c),
        ("failed", c, "RuntimeError: oops", False),
    ]
    assert fake.record(a).state is JobState.DONE and fake.record(a).spec.params == {}
    assert fake.spec(a).params == {"x": 1} and fake.submitted[0].params == {"x": 1}
    assert fake.active_count == 0 and [r.job_id for r in fake.records()] == [a, b, c]


def test_cancelling_follows_the_real_runners_rules(qtbot, fake) -> None:
    queued = fake.submit(JobSpec(kind="q", fn=lambda *, ctx: None))
    with qtbot.waitSignal(fake.sig_job_cancelled) as blocker:
        fake.cancel(queued)  # never started: cancelled at once
    assert blocker.args == [queued] and fake.record(queued).state is JobState.CANCELLED
    running = fake.submit(JobSpec(kind="r", fn=lambda *, ctx: None, key="k"))
    fake.start(running)
    superseding = fake.submit(JobSpec(kind="r", fn=lambda *, ctx: None, key="k"))
    assert fake.record(running).state is JobState.CANCELLING  # running: it stops at its next check
    assert fake.live_job_for("k") == superseding
    with qtbot.waitSignal(fake.sig_job_cancelled) as blocker:
        fake.finish(running, "late")  # a late result of a cancelled job is dropped
    assert blocker.args == [running]
    assert fake.cancel_requests == [queued, running]


def test_run_job_calls_the_function_here_with_a_real_context_and_reports_like_the_real_runner(qtbot, fake) -> None:
    from engine.errors import Cancelled, DataError

    def scaled(values, *, ctx, factor):
        ctx.progress(0.5, "halfway")
        return tuple(v * factor + ctx.seed for v in values)

    ok = fake.submit(JobSpec(kind="ok", fn=scaled, args=((1, 2),), params={"factor": 10}, seed=7))
    with qtbot.waitSignal(fake.sig_job_finished) as blocker:
        fake.run_job(ok)
    assert blocker.args == [ok, (17, 27)] and fake.record(ok).message == "halfway"

    def refuse(*, ctx):
        raise DataError("The file is empty.")

    def crash(*, ctx):
        raise ValueError("bad index")

    def stop(*, ctx):
        raise Cancelled()

    for fn, signal in ((refuse, fake.sig_job_failed), (crash, fake.sig_job_failed), (stop, fake.sig_job_cancelled)):
        job = fake.submit(JobSpec(kind=fn.__name__, fn=fn))
        with qtbot.waitSignal(signal) as blocker:
            fake.run_job(job)
        assert blocker.args[0] == job
    refused, crashed = (fake.record(j).error for j in (2, 3))
    assert refused.is_user_error and refused.message == "The file is empty." and refused.type_name == "DataError"
    assert not crashed.is_user_error and crashed.message == "ValueError: bad index" and "bad index" in crashed.traceback
    assert fake.record(4).state is JobState.CANCELLED


def test_autorun_runs_each_job_once_control_returns_to_the_event_loop(qtbot) -> None:
    runner = FakeRunner(autorun=True)
    job = runner.submit(JobSpec(kind="sum", fn=lambda values, *, ctx: sum(values), args=((1, 2, 3),)))
    assert runner.is_live(job)  # not inside submit: a pane stores the id before the job may report
    with qtbot.waitSignal(runner.sig_job_finished) as blocker:
        pass
    assert blocker.args == [job, 6] and not runner.is_live(job)


# -- the Analyses area ------------------------------------------------------------------------------------


@pytest.fixture
def panel(qtbot, session, fake):
    widget = AnalysisPanel(METHODS["permutation"], session, fake)
    qtbot.addWidget(widget)
    widget.ensure_ready()
    return widget


def test_pressing_run_submits_the_method_with_the_forms_values_inputs_and_seed(qtbot, panel, fake, session) -> None:
    panel.form.set_values({"n_repeats": 3, "scoring": "roc_auc"}, seed=11)
    _click(qtbot, panel.run_button)
    assert len(fake.submitted) == 1
    spec = fake.submitted[0]
    assert spec.kind == "permutation" and spec.fn is run_analysis
    assert spec.params == {"method": "permutation", "params": panel.form.values()}
    assert spec.params["params"]["n_repeats"] == 3 and spec.params["params"]["scoring"] == "roc_auc"
    assert spec.seed == 11 and spec.key == "analysis:permutation"
    assert spec.title == "Permutation importance · stub.csv"
    (inputs,) = spec.args
    assert isinstance(inputs, AuditInputs)
    assert inputs.frame is session.dataset.frame and inputs.model is session.model
    assert inputs.roles.target == "approved"
    assert panel.job_id == fake.last_id
    assert not panel.run_button.isEnabled()
    assert panel.progress.isVisibleTo(panel) and panel.progress.message.text() == "Running permutation importance…"


def test_progress_then_a_result_with_warnings_fill_the_panel(qtbot, panel, fake) -> None:
    job = panel.run()
    fake.progress(job, 0.25, "Shuffling income")
    assert panel.progress.bar.value() == 250 and panel.progress.message.text() == "Shuffling income"
    result = stubs.permutation_result(warnings=("The class 2 has no rows in the data.",))
    with qtbot.waitSignal(panel.sig_result_shown) as blocker:
        fake.finish(job, result)
    assert blocker.args == ["permutation"]
    assert panel.result is result and panel.view.result is result and panel.view.bar_count == 3
    assert not panel.placeholder.isVisibleTo(panel) and not panel.progress.isVisibleTo(panel)
    assert panel.status.text().startswith("Finished in ") and panel.status.text().endswith(" s.")
    assert panel.warnings.kind == "warning" and panel.warnings.text() == "The class 2 has no rows in the data."
    assert panel.error.kind == "" and panel.run_button.isEnabled() and panel.job_id is None


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (user_error("Permutation importance needs a target column."), "Permutation importance needs a target column."),
        (bug_error(), "This analysis stopped because of an internal error; the details are in the log."),
    ],
    ids=["user error", "bug"],
)
def test_a_failed_job_is_an_inline_error_and_run_is_offered_again(qtbot, panel, fake, error, shown) -> None:
    job = panel.run()
    fake.fail(job, error)
    assert panel.error.kind == "error" and panel.error.text() == shown
    assert panel.run_button.isEnabled() and not panel.progress.isVisibleTo(panel)
    assert panel.result is None and panel.placeholder.isVisibleTo(panel)


def test_cancel_asks_the_runner_and_the_panel_waits_for_the_job_to_stop(qtbot, panel, fake) -> None:
    job = panel.run()
    fake.progress(job, 0.4, "Shuffling debt")
    _click(qtbot, panel.progress.cancel_button)
    assert fake.cancel_requests == [job] and fake.record(job).state is JobState.CANCELLING
    assert panel.progress.message.text() == "Cancelling…" and not panel.progress.cancel_button.isEnabled()
    assert not panel.run_button.isEnabled()  # still running until the job stops
    fake.confirm_cancel(job)
    assert panel.status.text() == "Cancelled." and panel.run_button.isEnabled() and panel.job_id is None
    assert panel.error.kind == "" and panel.result is None


def test_without_a_model_run_is_refused_inline_and_nothing_is_submitted(qtbot, fake) -> None:
    session = stubs.stub_session(with_model=False)
    widget = AnalysisPanel(METHODS["performance"], session, fake)
    qtbot.addWidget(widget)
    assert not widget.run_button.isEnabled()
    assert widget.readiness.text() == "To run this analysis, open a model."
    assert widget.run() is None
    assert widget.error.kind == "error" and widget.error.text() == "To run an analysis, open a model."
    assert fake.submitted == []


def test_new_inputs_cancel_the_running_job_and_clear_the_shown_result(qtbot, panel, fake, session) -> None:
    fake.finish(panel.run(), stubs.permutation_result())
    job = panel.run()
    session.set_model(stubs.StubModel())
    assert job in fake.cancel_requests and fake.record(job).state is JobState.CANCELLED
    assert panel.result is None and panel.placeholder.text() == "The inputs changed; press Run for new results."


def test_an_excluded_bound_is_refused_inline_and_run_stays_disabled_until_it_is_mended(qtbot, panel, fake) -> None:
    """The form refuses the value with the method's own sentence; nothing is submitted while it holds it."""
    panel.form.set_values({"confidence": 1.0})
    assert panel.form.problem == (
        "Permutation importance's parameter confidence must be a number strictly between 0 and 1, not 1.0."
    )
    assert panel.form.message.isVisibleTo(panel) and panel.form.message.text() == panel.form.problem
    assert not panel.run_button.isEnabled()
    assert panel.run() is None and fake.submitted == [] and panel.job_id is None
    panel.form.set_values({"confidence": 0.9})
    assert panel.form.problem == "" and not panel.form.message.isVisibleTo(panel)
    assert panel.run_button.isEnabled()
    job = panel.run()
    assert job is not None and fake.submitted[-1].params["params"]["confidence"] == 0.9


# -- the Explain area ----------------------------------------------------------------------------------------


@pytest.fixture
def selection(qapp):
    return SelectionModel()


@pytest.fixture
def pane(qtbot, fake, selection):
    session = Session()
    widget = ExplainPane(session, fake, selection)
    qtbot.addWidget(widget)
    stubs.open_stub_inputs(session)
    widget.ensure_ready()
    return widget


@pytest.mark.parametrize("name", list(explain_methods()))  # the fairness analysis has an area of its own
def test_each_methods_form_rows_and_texts_come_from_its_descriptor(pane, name) -> None:
    method = METHODS[name]
    pane.set_method(name)
    basic, advanced = pane.forms[name]
    shown = [p for p in method.params if not p.provided and not p.hidden]
    assert basic.names == tuple(p.name for p in shown if p.basic)
    assert advanced.names == tuple(p.name for p in shown if not p.basic)
    assert pane.advanced.isVisibleTo(pane) == bool(advanced.names)
    assert basic.isVisibleTo(pane) and all(
        not f.isVisibleTo(pane) for n, fs in pane.forms.items() if n != name for f in fs
    )
    assert pane.rows_form.isVisibleTo(pane) == method.takes_rows
    assert pane.rows_edit.text() == (method.rows_default or "")
    assert pane.description.text() == method.summary


def test_run_submits_the_method_params_rows_and_selection(qtbot, pane, fake, selection) -> None:
    pane.set_method("lime")
    pane.set_params({"num_samples": 300, "stability_runs": 0})
    pane.rows_edit.setText("0-2")
    selection.set_rows([5, 7], current=5, source="test")
    pane.seed_box.setValue(3)
    _click(qtbot, pane.run_button)
    spec = fake.submitted[-1]
    assert spec.kind == "explain-lime" and spec.fn is run_explanation and spec.key == "explain" and spec.seed == 3
    assert spec.title == "LIME (local surrogates) · stub.csv"
    assert isinstance(spec.args[0], AuditInputs)
    params = dict(spec.params)
    assert params["method"] == "lime" and params["rows_spec"] == "0-2" and params["extra_rows"] == (5, 7)
    assert params["params"] == pane.form_values() and params["params"]["num_samples"] == 300
    assert params["reuse"] is None
    assert not pane.run_button.isEnabled() and pane.progress.message.text() == "Running LIME (local surrogates)…"

    fake.progress(pane.job_id, 0.5, "Explaining row 2 of 5")
    assert pane.progress.bar.value() == 500
    result = stubs.lime_result(rows=(0, 1, 2, 5, 7))
    with qtbot.waitSignal(pane.sig_result_shown) as blocker:
        fake.finish(pane.job_id, ExplainOutcome(method="lime", result=result))
    assert blocker.args == ["lime"]
    assert pane.results["lime"] is result and pane.result_tabs.currentWidget() is pane.lime_view
    assert pane.lime_view.shown_row == 5  # the current row of the selection
    assert pane.status.text().startswith("LIME (local surrogates) finished on 5 rows in ")
    assert pane.rows_used["lime"] == {"rows_spec": "0-2", "include_selected": True}
    selection.set_current(7, source="test")
    assert pane.lime_view.shown_row == 7


def test_unticking_the_selection_leaves_it_out_and_whole_table_methods_take_no_rows(
    qtbot, pane, fake, selection
) -> None:
    selection.set_rows([4], current=4, source="test")
    pane.set_method("kernelshap")
    pane.include_selected.setChecked(False)
    pane.run()
    assert fake.submitted[-1].params["extra_rows"] == () and fake.submitted[-1].params["rows_spec"] == "first:20"
    pane.set_method("surrogate")
    pane.run()  # supersedes the first (same key)
    params = fake.submitted[-1].params
    assert params["rows_spec"] == "" and params["extra_rows"] == ()
    assert fake.record(1).state is JobState.CANCELLED


OUTCOMES = {
    "shap": lambda: ExplainOutcome(method="shap", result=stubs.shap_result()),
    "clusters": lambda: ExplainOutcome(
        method="clusters", result=stubs.clusters_result(), attributions=stubs.shap_result(rows=tuple(range(12)))
    ),
    "pdp": lambda: ExplainOutcome(method="pdp", result=stubs.dependence_result()),
    "native": lambda: ExplainOutcome(method="native", result=stubs.native_result()),
    "surrogate": lambda: ExplainOutcome(method="surrogate", result=stubs.surrogate_result()),
    "groups": lambda: ExplainOutcome(method="groups", result=stubs.group_metrics_result()),
}


@pytest.mark.parametrize("name", list(OUTCOMES))
def test_each_outcome_is_drawn_in_its_own_tab(qtbot, pane, fake, name) -> None:
    outcome = OUTCOMES[name]()
    pane.set_method(name)
    pane.unavailable.pop(name, None)  # the stub model is no tree: native is refused, its result is not
    job = pane.run()
    fake.finish(job, outcome)
    key = METHODS[name].view
    tab = pane.result_tabs.currentWidget()
    assert pane.result_tabs.tabText(pane.result_tabs.currentIndex()) == VIEW_TITLES[key]
    assert tab is pane.view(key) and pane.result_stack.currentWidget() is pane.result_tabs
    assert pane.error.kind == "" and pane.run_button.isEnabled()
    if name == "clusters":  # its SHAP values are shown beside it
        assert pane.results["shap"] is outcome.attributions
        assert pane.beeswarm_view.point_count == 12 * 3
    if name == "shap":
        assert pane.importance_view.method == "mean_abs"
        assert pane.waterfall_view.result is outcome.result and pane.beeswarm_view.result is outcome.result


def test_warnings_of_a_result_are_shown_and_cleared_by_the_next(qtbot, pane, fake) -> None:
    pane.set_method("shap")
    fake.finish(pane.run(), ExplainOutcome("shap", stubs.shap_result(warnings=("Few background rows.",))))
    assert pane.warnings.kind == "warning" and pane.warnings.text() == "Few background rows."
    fake.finish(pane.run(), ExplainOutcome("shap", stubs.shap_result()))
    assert pane.warnings.kind == ""


def test_clusters_are_handed_the_shap_values_computed_on_the_same_rows(qtbot, pane, fake) -> None:
    shap = stubs.shap_result()
    key = ("stub", "shap", 0)
    pane.set_method("shap")
    fake.finish(pane.run(), ExplainOutcome("shap", shap, shap_key=key))
    assert pane.shap_cache == {key: shap}
    pane.set_method("clusters")
    pane.run()
    assert fake.submitted[-1].params["reuse"] == {key: shap}


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (user_error("Choose the rows to explain."), "Choose the rows to explain."),
        (bug_error(), "This stopped because of an internal error; the details are in the log."),
    ],
    ids=["user error", "bug"],
)
def test_a_failed_explanation_is_an_inline_error(qtbot, pane, fake, error, shown) -> None:
    pane.set_method("lime")
    fake.fail(pane.run(), error)
    assert pane.error.kind == "error" and pane.error.text() == shown
    assert pane.run_button.isEnabled() and not pane.progress.isVisibleTo(pane) and pane.results == {}


def test_cancelling_an_explanation(qtbot, pane, fake) -> None:
    pane.set_method("lime")
    job = pane.run()
    fake.start(job)
    _click(qtbot, pane.progress.cancel_button)
    assert fake.cancel_requests == [job] and pane.progress.message.text() == "Cancelling…"
    fake.confirm_cancel(job)
    assert pane.status.text() == "Cancelled." and pane.run_button.isEnabled() and pane.job_id is None


def test_a_method_the_model_cannot_use_is_greyed_out_and_refused_without_a_job(qtbot, pane, fake) -> None:
    index = list(pane.methods).index("treeshap")
    item = pane.method_box.model().item(index)
    assert not item.isEnabled() and "needs a tree model (scikit-learn's, or an XGBoost" in item.toolTip()
    pane.method_box.setCurrentIndex(index)
    assert pane.run() is None
    assert pane.error.kind == "error" and pane.error.text().startswith("TreeSHAP needs a tree model")
    assert fake.submitted == []


def test_a_parameter_the_method_refuses_is_an_inline_error_before_anything_is_computed(qtbot, pane, fake) -> None:
    pane.set_method("pdp")
    pane.set_params({"percentiles": [0.5, 2]})
    fake.run_job(pane.run())
    assert pane.error.kind == "error"
    assert pane.error.text() == (
        "Partial dependence and ICE's parameter percentiles must be two numbers each from 0 to 1, not [0.5, 2]."
    )


def test_find_selects_the_matching_rows(qtbot, pane, fake, selection) -> None:
    pane.find_edit.setText("age > 40")
    _click(qtbot, pane.find_button)
    spec = fake.submitted[-1]
    assert spec.kind == "find-rows" and spec.fn is find_rows and spec.key == "explain-find" and not spec.listed
    assert spec.args[1] == "age > 40" and spec.params == {"source": "stub.csv"}
    assert pane.status.text() == "Searching…"
    fake.run_job(fake.last_id)
    assert selection.rows.tolist() == [7, 8, 9, 10, 11]  # ages 41 to 53
    assert pane.status.text() == "5 rows match “age > 40”."
    assert pane.selection_label.text().startswith("5 rows selected")


def test_highest_predictions_are_scanned_once_then_picked_at_once(qtbot, pane, fake, selection) -> None:
    pane.pick_count.setValue(3)
    _click(qtbot, pane.highest_button)
    spec = fake.submitted[-1]
    assert spec.kind == "predict-rows" and spec.fn is scan_predictions and spec.key == "explain-predict"
    fake.run_job(fake.last_id)
    inputs = spec.args[0]
    p = inputs.model.predict(inputs.X)[:, 1]
    top = np.argsort(-p, kind="stable")[:3]
    assert selection.rows.tolist() == sorted(top.tolist()) and selection.current == int(top[0])
    assert pane.status.text().startswith("Selected the 3 rows with the highest P(1); row ")
    submitted = len(fake.submitted)
    _click(qtbot, pane.lowest_button)  # the predictions are known: no second job
    assert len(fake.submitted) == submitted
    assert selection.current == int(np.argmin(p))


def _field(form, method_name: str, param_name: str):
    """The field of ``param_name`` in ``form`` (its row is labelled with the parameter's title)."""
    title = f"{METHODS[method_name].param(param_name).title}:"
    layout = form.layout()
    for row in range(layout.rowCount()):
        label = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
        if label is not None and label.widget().text() == title:
            return layout.itemAt(row, QFormLayout.ItemRole.FieldRole).widget()
    raise AssertionError(f"{method_name}'s form has no field {title!r}")


def test_an_excluded_bound_typed_in_a_method_form_disables_run_and_submits_nothing(qtbot, pane, fake) -> None:
    """As in the Analyses area: the form says why under its fields, and Run waits until the number is mended."""
    pane.set_method("clusters")
    _basic, advanced = pane.forms["clusters"]
    box = _field(advanced, "clusters", "klime_alpha")
    assert pane.run_button.isEnabled() and not pane.advanced.expanded
    QTest.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(box, "0")  # the excluded lower bound
    with pytest.raises(AnalysisError) as refused:
        METHODS["clusters"].validate({"klime_alpha": 0.0})
    assert advanced.problem == pane.form_problem == str(refused.value)
    assert pane.advanced.expanded and advanced.message.isVisibleTo(pane)
    assert advanced.message.text() == str(refused.value)
    assert not pane.run_button.isEnabled()
    _click(qtbot, pane.run_button)
    assert pane.run() is None and fake.submitted == [] and pane.job_id is None
    assert pane.error.kind == ""  # the form's own sentence is the one shown
    QTest.keyClick(box, Qt.Key.Key_Return)  # Enter puts the last accepted number back
    assert pane.form_problem == "" and pane.run_button.isEnabled()
    _click(qtbot, pane.run_button)
    default = METHODS["clusters"].param("klime_alpha").default
    assert len(fake.submitted) == 1 and fake.submitted[0].params["params"]["klime_alpha"] == default


def test_only_the_chosen_methods_refused_number_holds_run_back(qtbot, pane, fake) -> None:
    pane.set_method("surrogate")
    pane.set_params({"holdout_fraction": 1.0})  # a script can leave a refused number in the box
    assert pane.form_problem and not pane.run_button.isEnabled() and pane.advanced.expanded
    pane.advanced.set_expanded(False)
    pane.set_method("lime")
    assert pane.form_problem == "" and pane.run_button.isEnabled()
    pane.set_method("surrogate")  # back to it: its folded options open on the sentence
    assert pane.advanced.expanded and pane.forms["surrogate"][1].message.isVisibleTo(pane)
    assert not pane.run_button.isEnabled() and pane.run() is None and fake.submitted == []
    pane.set_params({"holdout_fraction": 0.5})
    assert pane.run_button.isEnabled() and pane.run() is not None
    assert fake.submitted[-1].params["params"]["holdout_fraction"] == 0.5
