"""One descriptor per method: its parameters are its run function's, every value is checked, the call is recorded."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from engine.errors import AnalysisError
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import NEEDS, Method
from engine.models.sklearn_adapter import SklearnModel
from engine.params import KINDS, Param
from engine.registry import METHODS, get_method
from engine.results import Provenance, Result, result_from_dict
from engine.schema import Roles

ALL = sorted(METHODS)


def _keyword_parameters(method: Method) -> list[tuple[str, object]]:
    sig = inspect.signature(method.run)
    return [
        (p.name, p.default)
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "ctx"
    ]


@pytest.mark.parametrize("name", ALL)
def test_each_descriptor_lists_exactly_its_run_functions_parameters_and_defaults(name: str) -> None:
    method = METHODS[name]
    assert [(p.name, p.default) for p in method.params] == _keyword_parameters(method)
    assert method.defaults == dict(_keyword_parameters(method))


def test_a_descriptor_that_drifts_from_its_run_function_cannot_be_made() -> None:
    def run(inputs, *, ctx, n: int = 10, klass=None):  # noqa: ANN001, ANN202
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="declares parameters"):
        Method(name="x", title="X", run=run, params=(Param("n", "int", 5), Param("klass", "class", None)))
    with pytest.raises(TypeError, match="declares parameters"):
        Method(name="x", title="X", run=run, params=(Param("n", "int", 10),))
    ok = Method(name="x", title="X", run=run, params=(Param("n", "int", 10), Param("klass", "class", None)))
    assert ok.defaults == {"n": 10, "klass": None}


@pytest.mark.parametrize("name", ALL)
def test_each_descriptor_is_complete_for_every_front_end(name: str) -> None:
    method = METHODS[name]
    assert method.title and method.summary and method.description and method.view
    assert issubclass(method.result, Result) and method.result is not Result
    assert set(method.needs) <= set(NEEDS)
    assert method.samples is None or method.param(method.samples).kind in ("int", "int_or_auto")
    assert method.takes_rows == ("rows" in method.needs)
    # A method that explains rows takes them, or hands them to the result it builds on.
    if method.takes_rows:
        assert "rows" in method.param_names or any(
            "rows" in get_method(s).param_names for s in method.builds_on.values()
        )
    for param in method.params:
        assert param.kind in KINDS
        assert param.check(param.default, owner=method.report_title) == param.default or param.kind == "pair"
        if param.default is None and not param.provided:
            assert param.none, f"{name}.{param.name}: say what null means"
        if param.kind == "choice":
            assert param.choices and (param.default is None or param.default in param.choices)
        if not param.provided and not param.hidden:
            assert param.help.endswith("."), f"{name}.{param.name} needs a one-sentence help"


BAD_VALUES = [
    ("lime", "num_samples", "many", "LIME's parameter num_samples must be a whole number of at least 2, not 'many'."),
    ("lime", "num_samples", 1, "LIME's parameter num_samples must be a whole number of at least 2, not 1."),
    ("lime", "sampling", "both", "LIME's parameter sampling must be one of 'shared', 'independent', not 'both'."),
    (
        "lime",
        "discretize_continuous",
        "yes",
        "LIME's parameter discretize_continuous must be true or false, not 'yes'.",
    ),
    (
        "kernelshap",
        "n_coalitions",
        "lots",
        "Kernel SHAP's parameter n_coalitions must be 'auto' or a whole number of at least 2, not 'lots'.",
    ),
    (
        "permutation",
        "confidence",
        1.0,
        "Permutation importance's parameter confidence must be a number strictly between 0 and 1, not 1.0.",
    ),
    (
        "pdp",
        "percentiles",
        [0.1],
        "Partial dependence and ICE's parameter percentiles must be two numbers each from 0 to 1, not [0.1].",
    ),
    (
        "clusters",
        "k",
        1,
        "Explanation clusters and K-LIME's parameter k must be a whole number of at least 2, or "
        "null (chosen by silhouette), not 1.",
    ),
    (
        "surrogate",
        "max_rows",
        5.5,
        "Global surrogates's parameter max_rows must be a whole number of at least 10, or null (every row), not 5.5.",
    ),
]


@pytest.mark.parametrize(("name", "param", "value", "sentence"), BAD_VALUES)
def test_a_bad_value_is_refused_in_one_sentence_naming_the_method_and_the_parameter(name, param, value, sentence):
    with pytest.raises(AnalysisError) as caught:
        METHODS[name].validate({param: value})
    assert str(caught.value) == sentence


@pytest.mark.parametrize("name", ALL)
def test_no_parameter_takes_a_value_of_the_wrong_kind(name: str) -> None:
    method = METHODS[name]
    for param in method.params:
        with pytest.raises(AnalysisError) as caught:
            method.validate({param.name: object()})
        message = str(caught.value)
        assert message.startswith(f"{method.report_title}'s parameter {param.name} must be ")
        assert message.endswith(".") and "\n" not in message


def test_values_read_back_from_json_become_what_the_run_function_takes() -> None:
    pdp = METHODS["pdp"]
    assert pdp.validate({"percentiles": [0.1, 0.9]})["percentiles"] == (0.1, 0.9)
    assert pdp.validate({"pair": ["a", "b"], "features": "a"})["pair"] == ("a", "b")
    lime = METHODS["lime"]
    checked = lime.validate({"rows": np.array([3, 1], dtype=np.int64), "num_samples": np.int64(300), "klass": 1})
    assert checked["rows"] == [3, 1] and type(checked["rows"][0]) is int
    assert checked["num_samples"] == 300 and type(checked["num_samples"]) is int
    assert checked["klass"] == 1  # a class label keeps its type
    assert {k: v for k, v in checked.items() if k not in ("rows", "num_samples", "klass")} == {
        k: v for k, v in lime.defaults.items() if k not in ("rows", "num_samples", "klass")
    }
    with pytest.raises(AnalysisError, match="has no parameter num_sample;"):
        lime.validate({"num_sample": 10})


def test_text_from_the_command_line_is_read_by_the_parameters_kind() -> None:
    lime, pdp = METHODS["lime"], METHODS["pdp"]
    assert lime.param("num_samples").parse_text("5000") == 5000
    assert lime.param("kernel_width").parse_text("null") is None
    assert lime.param("discretize_continuous").parse_text("false") is False
    assert lime.param("sampling").parse_text("independent") == "independent"
    assert pdp.param("features").parse_text("age, income") == ["age", "income"]
    assert pdp.param("features").parse_text('["age"]') == ["age"]
    assert pdp.param("percentiles").parse_text("0.1, 0.9") == [0.1, 0.9]
    assert METHODS["permutation"].param("scoring").parse_text("1") == "1"  # a name stays a name


@pytest.fixture(scope="module")
def small_inputs() -> AuditInputs:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120), "g": rng.choice(["x", "y"], 120)})
    frame["y"] = (frame["a"] + 0.5 * frame["b"] > 0).astype(int)
    model = SklearnModel(LogisticRegression().fit(frame[["a", "b"]], frame["y"]))
    return AuditInputs(frame=frame, roles=Roles(target="y", features=("a", "b"), sensitive=("g",)), model=model)


def test_the_call_is_recorded_exactly_after_defaults_with_rows_and_class_as_given(small_inputs) -> None:
    ctx = JobContext(seed=4).sub(0.0, 1.0, "lime")
    result = METHODS["lime"](small_inputs, ctx=ctx, rows=np.array([5, 2]), num_samples=200, klass=1)
    call = result.provenance.call
    assert call["method"] == "lime" and call["stream"] == ["lime"]
    assert call["parameters"] == {**METHODS["lime"].defaults, "rows": [5, 2], "num_samples": 200, "klass": 1}
    assert call["roles"] == {"target": "y", "features": ["a", "b"], "sensitive": ["g"]}
    assert result.provenance.seed == 4
    # The derived facts stay where they were.
    assert result.provenance.parameters["num_samples"] == 200
    # The JSON form carries the call, and reads back equal.
    back = result_from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.provenance.call == call


def test_a_result_built_on_another_records_that_results_call(small_inputs) -> None:
    ctx = JobContext(seed=1)
    shap = METHODS["shap"](small_inputs, ctx=ctx.sub(0.0, 0.5, "shap"), rows=list(range(40)))
    clusters = METHODS["clusters"](small_inputs, ctx=ctx.sub(0.5, 1.0, "clusters"), attributions=shap, k=2)
    reference = clusters.provenance.call["parameters"]["attributions"]
    assert reference["call"] == shap.provenance.call and reference["seed"] == 1 and reference["rows"] == 40
    assert clusters.provenance.call["parameters"]["k"] == 2


def test_results_without_a_call_write_and_read_as_before() -> None:
    provenance = Provenance(
        method="m",
        parameters={"x": 1},
        seed=0,
        data_sha256=None,
        model_sha256=None,
        versions={},
        started_at=None,
        finished_at=None,
    )
    assert "call" not in provenance.to_dict()
    assert dataclasses.replace(provenance, call={"method": "m"}).to_dict()["call"] == {"method": "m"}
    assert Provenance.from_dict(provenance.to_dict()).call is None
