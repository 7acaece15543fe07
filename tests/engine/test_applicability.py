"""Which methods can explain the open model is decided by the engine, with the sentence a run would raise."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.errors import AnalysisError
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.models.sklearn_adapter import SklearnModel
from engine.registry import METHODS, get_method, refusal
from engine.schema import Roles

FEATURES = ("a", "b", "c")
GRADIENT_METHODS = ("ig", "saliency", "input_x_gradient", "smoothgrad")


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=list(FEATURES))
    frame["y"] = (frame["a"] + 0.5 * frame["b"] > 0).astype(int)
    return frame


def _model(estimator) -> SklearnModel:
    frame = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(frame.loc[:, list(FEATURES)], frame["y"])
    return SklearnModel(estimator)


@pytest.fixture(scope="module")
def forest() -> SklearnModel:
    return _model(RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0))


@pytest.fixture(scope="module")
def mlp() -> SklearnModel:
    return _model(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0)))


@pytest.fixture(scope="module")
def logistic() -> SklearnModel:
    return _model(LogisticRegression())


def _refused_by_run(name: str, model: SklearnModel) -> str:
    inputs = AuditInputs(frame=_frame(), roles=Roles(target="y", features=FEATURES), model=model)
    params = {"rows": [0, 1, 2]} if "rows" in get_method(name).defaults else {}
    with pytest.raises(AnalysisError) as caught:
        get_method(name)(inputs, ctx=JobContext(seed=0), **params)
    return caught.value.message


@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_gradient_methods_are_refused_for_a_tree_model_with_the_runs_own_sentence(forest, name):
    reason = refusal(name, forest, feature_names=FEATURES)
    assert reason is not None and "RandomForestClassifier" in reason
    assert reason == _refused_by_run(name, forest)


def test_treeshap_and_own_importance_refusals_are_the_runs_own_sentences(mlp):
    for name in ("treeshap", "native"):
        reason = refusal(name, mlp, feature_names=FEATURES)
        assert reason is not None and "MLPClassifier" in reason
        assert reason == _refused_by_run(name, mlp)


def test_methods_that_apply_are_not_refused(forest, mlp, logistic):
    for name in ("treeshap", "native", "shap", "kernelshap", "lime", "pdp", "clusters", "surrogate"):
        assert refusal(name, forest, feature_names=FEATURES) is None, name
    for name in (*GRADIENT_METHODS, "shap", "kernelshap", "lime"):
        assert refusal(name, mlp, feature_names=FEATURES) is None, name
        assert refusal(name, logistic, feature_names=FEATURES) is None, name
    assert refusal("native", logistic, feature_names=FEATURES) is None
    assert refusal("treeshap", logistic, feature_names=FEATURES) is not None


def test_every_registered_method_has_an_answer(forest):
    for name in METHODS:
        reason = refusal(name, forest, feature_names=FEATURES)
        assert reason is None or (reason.endswith(".") and "\n" not in reason)
    with pytest.raises(AnalysisError, match="Unknown analysis"):
        refusal("no-such-method", forest)


def test_deciding_does_not_import_torch():
    # A fresh interpreter: deciding for a tree model and an MLP must leave torch unimported.
    script = """
import sys, warnings
import numpy as np, pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.neural_network import MLPClassifier
from engine.registry import METHODS, refusal
from engine.models.sklearn_adapter import SklearnModel
X = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=list("abc"))
y = (X["a"] > 0).astype(int)
warnings.simplefilter("ignore")
for estimator in (RandomForestClassifier(n_estimators=3, random_state=0), MLPClassifier(max_iter=20)):
    model = SklearnModel(estimator.fit(X, y))
    for name in METHODS:
        refusal(name, model, feature_names=("a", "b", "c"))
assert refusal("ig", SklearnModel(RandomForestClassifier(n_estimators=2).fit(X, y))) is not None
print("torch" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    assert out.stdout.strip() == "False", out.stderr
