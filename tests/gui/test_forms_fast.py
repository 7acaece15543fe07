"""Every method's parameter form, built from its descriptor alone: defaults shown, help given, bounds kept.

A :class:`gui.panes.analyses.ParamForm` is made for each registered method exactly as the
Analyses area makes it (every parameter, and a seed box for random methods); no window,
data or model is needed.  Out-of-range numbers are typed key by key, as a user types them.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractSpinBox, QCheckBox, QComboBox, QFormLayout, QLineEdit, QWidget

from engine.errors import AnalysisError
from engine.registry import METHODS
from gui.panes.analyses import ParamForm
from tests.gui.stubs import StubModel

SHOWN = {name: [p for p in m.params if not p.provided and not p.hidden] for name, m in METHODS.items()}
NUMERIC = [
    (name, p.name) for name, params in SHOWN.items() for p in params if p.kind in ("int", "float", "int_or_auto")
]
# Floats whose bound is excluded and that cannot be left empty: the box itself can hold the bound.
EXCLUSIVE = [
    (name, p.name)
    for name, params in SHOWN.items()
    for p in params
    if p.kind == "float" and p.exclusive and not p.allows_none
]


def _form(qtbot, method_name: str) -> ParamForm:
    method = METHODS[method_name]
    form = ParamForm(method.params, uses_seed=method.random)
    qtbot.addWidget(form)
    return form


def _rows(form: ParamForm) -> dict[str, QWidget]:
    """Label text -> field widget, for every labelled row of the form (the last row, its message, has none)."""
    layout = form.layout()
    assert isinstance(layout, QFormLayout)
    out = {}
    for row in range(layout.rowCount()):
        label = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
        field = layout.itemAt(row, QFormLayout.ItemRole.FieldRole)
        if label is None:
            assert row == layout.rowCount() - 1
            assert layout.itemAt(row, QFormLayout.ItemRole.SpanningRole).widget() is form.message
            continue
        out[label.widget().text()] = field.widget()
    return out


def _field(form: ParamForm, method_name: str, param_name: str) -> QWidget:
    param = METHODS[method_name].param(param_name)
    return _rows(form)[f"{param.title}:"]


def _type(box: QAbstractSpinBox, text: str) -> None:
    """Select what the box holds, type ``text`` key by key and press Enter."""
    QTest.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(box, text)
    QTest.keyClick(box, Qt.Key.Key_Return)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("method_name", list(METHODS))
def test_every_form_holds_its_descriptors_defaults(qtbot, method_name) -> None:
    form = _form(qtbot, method_name)
    shown = SHOWN[method_name]
    assert form.names == tuple(p.name for p in shown)
    assert form.values() == {p.name: _plain(p.default) for p in shown}


@pytest.mark.parametrize("method_name", list(METHODS))
def test_every_field_is_labelled_with_its_title_and_explained_by_its_help(qtbot, method_name) -> None:
    method = METHODS[method_name]
    form = _form(qtbot, method_name)
    rows = _rows(form)
    expected = [f"{p.title}:" for p in SHOWN[method_name]] + (["Seed:"] if method.random else [])
    assert list(rows) == expected
    for param in SHOWN[method_name]:
        tip = rows[f"{param.title}:"].toolTip()
        assert tip.startswith(param.help), (param.name, tip)
        if param.none:
            assert tip.endswith(f": {param.none}."), (param.name, tip)
    assert (form.seed_box is not None) == method.random
    hidden = [p.name for p in method.params if p.hidden or p.provided]
    assert not set(hidden) & set(form.names)


@pytest.mark.parametrize("method_name", list(METHODS))
def test_every_field_shows_its_default_as_a_person_reads_it(qtbot, method_name) -> None:
    form = _form(qtbot, method_name)
    for param in SHOWN[method_name]:
        field = _field(form, method_name, param.name)
        default = param.default
        if isinstance(field, QCheckBox):
            assert field.isChecked() is bool(default)
        elif isinstance(field, QComboBox):
            items = [field.itemText(i) for i in range(field.count())]
            offered = list(param.choices_for(None))
            assert items == (["default"] if param.allows_none else []) + offered, param.name
            assert field.currentText() == ("default" if default is None else str(default))
        elif isinstance(field, QAbstractSpinBox):
            special = field.specialValueText()
            if default in (None, "auto"):
                assert special and field.text() == special, (param.name, field.text())
            else:
                assert field.value() == pytest.approx(default) and field.text() != special
        else:
            assert isinstance(field, QLineEdit)
            text = (
                ""
                if default is None
                else ", ".join(str(v) for v in default)
                if isinstance(default, tuple)
                else str(default)
            )
            assert field.text() == text
            if param.allows_none:
                assert field.placeholderText() == (param.none or "default")


def test_class_and_scoring_boxes_offer_what_the_open_model_has(qtbot) -> None:
    form = _form(qtbot, "permutation")
    scoring = _field(form, "permutation", "scoring")
    form.update_choices(StubModel())
    offered = [scoring.itemText(i) for i in range(scoring.count())]
    assert offered == ["default", *METHODS["permutation"].param("scoring").task_choices["classification"]]
    lime = _form(qtbot, "lime")
    klass = _field(lime, "lime", "klass")
    assert [klass.itemText(i) for i in range(klass.count())] == ["default"]
    lime.update_choices(StubModel())
    assert [klass.itemText(i) for i in range(klass.count())] == ["default", "0", "1"]
    klass.setCurrentText("1")
    assert lime.values()["klass"] == "1"


def _inside(param) -> float:
    """A value inside the parameter's range that is not its default."""
    low = param.minimum if param.minimum is not None else 0.0
    if param.maximum is not None:
        candidates = [low + (param.maximum - low) * share for share in (0.3, 0.7)]
    else:
        candidates = [low + step for step in (0.25, 0.5)] if param.kind == "float" else [low + 3, low + 5]
    if param.kind != "float":
        candidates = [int(c) for c in candidates]
    return next(c for c in candidates if c != param.default)


def _hostile(param) -> list[str]:
    """Texts outside the parameter's range (the excluded bound itself left to its own test), and junk."""
    texts = ["abc", "-99999999999", "99999999999", "1e99"]
    if param.minimum is not None:
        below = param.minimum - (1 if param.kind != "float" else 0.5)
        texts.append(f"{below:g}")
    if param.maximum is not None:
        texts.append(f"{param.maximum + 1:g}")
    return texts


@pytest.mark.parametrize(("method_name", "param_name"), NUMERIC, ids=[f"{m}.{p}" for m, p in NUMERIC])
def test_numbers_typed_outside_a_fields_range_never_leave_the_form(qtbot, method_name, param_name) -> None:
    """Whatever is typed, the form hands the method a value its descriptor accepts (or the default's None/auto).

    An excluded bound is taken as included here; the test after this one holds the form to the bound itself.
    """
    param = METHODS[method_name].param(param_name)
    if (method_name, param_name) in EXCLUSIVE:
        param = dataclasses.replace(param, exclusive=False)
    form = _form(qtbot, method_name)
    box = _field(form, method_name, param_name)
    assert isinstance(box, QAbstractSpinBox)
    inside = _inside(param)
    _type(box, f"{inside:g}")  # typing reaches the box: an in-range value is taken as typed
    assert form.values()[param_name] == pytest.approx(inside) and inside != param.default
    for text in _hostile(param):
        _type(box, text)
        value = form.values()[param_name]
        try:
            param.check(value, owner="test")
        except AnalysisError as exc:
            pytest.fail(f"typing {text!r} into {method_name}.{param_name} left {value!r}: {exc}")
        if isinstance(value, float):
            assert math.isfinite(value)


@pytest.mark.parametrize(("method_name", "param_name"), EXCLUSIVE, ids=[f"{m}.{p}" for m, p in EXCLUSIVE])
def test_an_excluded_bound_typed_into_a_field_never_leaves_the_form(qtbot, method_name, param_name) -> None:
    param = METHODS[method_name].param(param_name)
    form = _form(qtbot, method_name)
    box = _field(form, method_name, param_name)
    bounds = [f"{b:g}" for b in (param.minimum, param.maximum) if b is not None]
    for text in bounds + _hostile(param):
        _type(box, text)
        param.check(form.values()[param_name], owner="test")
        assert form.problem == "" and form.message.kind == ""  # Enter put the last accepted number back


def _refusal(method_name: str, param_name: str, value: float) -> str:
    """The sentence the method's own check gives for ``value``."""
    with pytest.raises(AnalysisError) as refused:
        METHODS[method_name].validate({param_name: value})
    return str(refused.value)


@pytest.mark.parametrize(("method_name", "param_name"), EXCLUSIVE, ids=[f"{m}.{p}" for m, p in EXCLUSIVE])
def test_an_excluded_bound_is_refused_as_it_is_typed_with_the_engines_sentence(qtbot, method_name, param_name) -> None:
    param = METHODS[method_name].param(param_name)
    form = _form(qtbot, method_name)
    box = _field(form, method_name, param_name)
    problems: list[str] = []
    form.sig_problem_changed.connect(problems.append)
    beyond = [param.minimum - 0.5] + ([param.maximum + 1] if param.maximum is not None else [])
    for number in [b for b in (param.minimum, param.maximum) if b is not None] + beyond:
        QTest.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        QTest.keyClicks(box, f"{number:g}")
        sentence = _refusal(method_name, param_name, float(number))
        assert form.problem == sentence and box.refusal == sentence
        assert form.message.kind == "error" and form.message.text() == sentence
        assert form.values()[param_name] == pytest.approx(param.default)  # never taken
        QTest.keyClick(box, Qt.Key.Key_Return)
        assert form.problem == "" and form.message.kind == "" and box.text() == f"{param.default:g}"
        assert problems[-2:] == [sentence, ""]


def test_a_refused_value_set_by_a_script_stays_refused_until_a_good_one_replaces_it(qtbot) -> None:
    form = _form(qtbot, "surrogate")
    sentence = _refusal("surrogate", "holdout_fraction", 1.0)
    form.set_values({"holdout_fraction": 1.0})
    assert form.problem == sentence and form.message.text() == sentence
    box = _field(form, "surrogate", "holdout_fraction")
    QTest.keyClick(box, Qt.Key.Key_Return)  # nothing better to put back
    assert form.problem == sentence
    form.set_values({"holdout_fraction": 0.999999999})  # shown as "1", held as less: accepted
    assert box.text() == "1" and form.problem == "" and form.message.kind == ""


def test_an_inclusive_bound_is_taken_and_a_number_past_it_is_refused_with_the_engines_sentence(qtbot) -> None:
    form = _form(qtbot, "groups")
    box = _field(form, "groups", "threshold")
    _type(box, "1")
    assert form.values()["threshold"] == 1.0 and form.problem == ""
    QTest.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(box, "1.5")
    assert form.problem == _refusal("groups", "threshold", 1.5)
    assert form.values()["threshold"] == 1.0


def test_the_floats_with_an_excluded_bound_are_these() -> None:
    # If a descriptor gains or loses an excluded bound, the tests above must be revisited.
    assert sorted(EXCLUSIVE) == [
        ("clusters", "klime_alpha"),
        ("fairness", "threshold"),
        ("permutation", "confidence"),
        ("surrogate", "holdout_fraction"),
    ]


def test_set_values_refuses_a_parameter_the_form_does_not_have(qtbot) -> None:
    form = _form(qtbot, "lime")
    with pytest.raises(KeyError):
        form.set_values({"no_such_parameter": 1})
    form.set_values({"num_samples": 300, "kernel_width": None, "num_features": 4}, seed=9)
    values = form.values()
    assert values["num_samples"] == 300 and values["kernel_width"] is None and values["num_features"] == 4
    assert form.seed == 9
