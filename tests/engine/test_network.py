"""Network views: first-layer weights per input column and mean activations per hidden unit, in closed form.

Every model is built here: a hand-set ReLU network whose activations are worked out by hand, torch modules
observed in each of the four ways (layer by layer, hooks, a TorchScript file, a torch.export program),
scikit-learn MLP pipelines compared with their own coefficients, and the audit's section in the PDF.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

from engine.errors import AnalysisError  # noqa: E402
from engine.explain.network import NetworkResult  # noqa: E402
from engine.inputs import AuditInputs  # noqa: E402
from engine.jobs import JobContext  # noqa: E402
from engine.models.sklearn_adapter import SklearnModel  # noqa: E402
from engine.models.torch_adapter import TorchModel  # noqa: E402
from engine.registry import get_method, refusal  # noqa: E402
from engine.results import result_from_dict  # noqa: E402
from engine.schema import Roles  # noqa: E402

NETWORK = get_method("network")
CTX = JobContext(seed=5)
AB = ("a", "b")


def _linear(w: list[list[float]], b: list[float]) -> torch.nn.Linear:
    layer = torch.nn.Linear(len(w[0]), len(w)).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w, dtype=torch.float64))
        layer.bias.copy_(torch.tensor(b, dtype=torch.float64))
    return layer


def _hand_set() -> torch.nn.Sequential:
    """Linear(2→3) ReLU Linear(3→2) ReLU Linear(2→1); unit 3 of layer 1 is −a − b − 10, dead on the rows below."""
    return torch.nn.Sequential(
        _linear([[1, 0], [0, 1], [-1, -1]], [0, 0, -10]),
        torch.nn.ReLU(),
        _linear([[1, 1, 0], [1, -1, 0]], [0, 0.5]),
        torch.nn.ReLU(),
        _linear([[1, 1]], [0]),
    )


# a = [1, 2, -1, 0], b = [-1, 3, 0, 2]
#   layer 1: relu(a) = [1, 2, 0, 0], relu(b) = [0, 3, 0, 2], relu(-a-b-10) = 0   -> means 0.75, 1.25, 0
#   layer 2: relu(h0 + h1) = [1, 5, 0, 2], relu(h0 - h1 + 0.5) = [1.5, 0, 0.5, 0] -> means 2, 0.5
HAND = pd.DataFrame({"a": [1.0, 2.0, -1.0, 0.0], "b": [-1.0, 3.0, 0.0, 2.0]})


def _torch_inputs(module, frame: pd.DataFrame = HAND, *, columns=AB) -> AuditInputs:
    model = TorchModel(module, input_columns=columns, task="regression", device="cpu")
    return AuditInputs(frame=frame, roles=Roles(target=None, features=tuple(columns)), model=model)


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of small fits
        return estimator.fit(X, y)


def test_a_hand_set_relu_network_gives_its_weights_mean_activations_and_dead_unit() -> None:
    result = NETWORK(_torch_inputs(_hand_set()), ctx=CTX, max_rows=None)
    assert isinstance(result, NetworkResult) and result.n_rows == 4
    assert result.feature_names == AB and result.first_layer == "0 Linear (2 → 3)" and result.n_first_units == 3
    np.testing.assert_array_equal(result.weights, [[1, 0], [0, 1], [-1, -1]])
    std = np.array([np.std([1, 2, -1, 0]), np.std([-1, 3, 0, 2])])
    np.testing.assert_allclose(result.feature_std, std)
    np.testing.assert_allclose(result.scaled_weights, np.array([[1, 0], [0, 1], [-1, -1]]) * std[None, :])
    first, second = result.layers
    assert (first.modules, first.activation, first.n_units) == ("0 Linear → 1 ReLU", "ReLU", 3)
    np.testing.assert_allclose(first.mean, [0.75, 1.25, 0.0])
    np.testing.assert_allclose(first.inactive_share, [0.5, 0.5, 1.0])
    np.testing.assert_array_equal(first.dead_units, [2])
    np.testing.assert_allclose(second.mean, [2.0, 0.5])
    np.testing.assert_allclose(second.inactive_share, [0.25, 0.5])
    assert second.dead_units.size == 0 and result.dead_unit_count() == 1
    assert result.architecture == "Linear (2 → 3) → ReLU → Linear (3 → 2) → ReLU → Linear (2 → 1)"
    assert result.warnings == (
        "Layer 1 (ReLU) has 1 of 3 units inactive on every sampled row (dead units: they pass nothing on to the "
        "next layer).",
    )
    grid = result.activation_grid()
    np.testing.assert_allclose(grid[0], [0.75, 1.25, 0.0])
    np.testing.assert_allclose(grid[1, :2], [2.0, 0.5])
    assert np.isnan(grid[1, 2])
    # Frozen arrays, and a lossless JSON round trip (nested layers included).
    with pytest.raises(ValueError):
        first.mean[0] = 1.0
    again = result_from_dict(json.loads(json.dumps(result.to_dict())))
    assert isinstance(again, NetworkResult) and again.layers[0].activation == "ReLU"
    np.testing.assert_array_equal(again.layers[0].inactive_share, first.inactive_share)
    np.testing.assert_array_equal(again.weights, result.weights)


def test_the_row_sample_is_seeded_and_the_figures_are_those_of_the_sampled_rows() -> None:
    frame = pd.concat([HAND] * 10, ignore_index=True)
    frame["a"] += np.arange(len(frame)) * 0.1
    one = NETWORK(_torch_inputs(_hand_set(), frame), ctx=CTX, max_rows=7)
    two = NETWORK(_torch_inputs(_hand_set(), frame), ctx=CTX, max_rows=7)
    other = NETWORK(_torch_inputs(_hand_set(), frame), ctx=JobContext(seed=6), max_rows=7)
    np.testing.assert_array_equal(one.rows, two.rows)
    assert one.rows.size == 7 and not np.array_equal(one.rows, other.rows)
    a = frame["a"].to_numpy()[one.rows]
    np.testing.assert_allclose(one.layers[0].mean[0], np.maximum(a, 0).mean())
    assert "random sample of 7 of the 40 rows" in one.warnings[0]
    full = NETWORK(_torch_inputs(_hand_set(), frame), ctx=CTX, max_rows=None)
    np.testing.assert_array_equal(full.rows, np.arange(40))


def test_rows_with_a_missing_value_are_left_out_and_said_so() -> None:
    frame = HAND.copy()
    frame.loc[4] = [np.nan, 1.0]
    result = NETWORK(_torch_inputs(_hand_set(), frame), ctx=CTX, max_rows=None)
    np.testing.assert_array_equal(result.rows, [0, 1, 2, 3])
    np.testing.assert_allclose(result.layers[0].mean, [0.75, 1.25, 0.0])
    assert any("1 of the 5 rows were left out" in w for w in result.warnings)


def test_max_units_limits_the_units_shown_and_kept_not_the_counts() -> None:
    result = NETWORK(_torch_inputs(_hand_set()), ctx=CTX, max_rows=None, max_units=2)
    assert result.weights.shape == (2, 2) and result.n_first_units == 3
    assert result.layers[0].mean.size == 3 and result.dead_unit_count() == 1  # every unit counted
    assert result.activation_grid().shape == (2, 2)
    assert "Units 0 to 1 of the first layer's 3 are shown." in result.notes


class _Functional(torch.nn.Module):
    """Linear layers with the activation called as a function: hooks see the Linear outputs only."""

    def __init__(self) -> None:
        super().__init__()
        seq = _hand_set()
        self.fc1, self.fc2, self.out = seq[0], seq[2], seq[4]

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class _Modules(torch.nn.Module):
    """The hand-set network as a custom module with activation modules: hooks see everything."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _hand_set()
        self.extra = torch.nn.Identity()

    def forward(self, x):
        return self.extra(self.body(x))


def test_any_module_is_observed_by_hooks_and_a_functional_activation_is_named() -> None:
    hooked = NETWORK(_torch_inputs(_Modules()), ctx=CTX, max_rows=None)
    assert hooked.provenance.parameters["observed_by"] == "hooks"
    np.testing.assert_allclose(hooked.layers[0].mean, [0.75, 1.25, 0.0])
    np.testing.assert_allclose(hooked.layers[1].inactive_share, [0.25, 0.5])
    module = _Functional()
    functional = NETWORK(_torch_inputs(module), ctx=CTX, max_rows=None)
    np.testing.assert_array_equal(functional.weights, [[1, 0], [0, 1], [-1, -1]])
    first = functional.layers[0]
    assert first.activation == "none" and first.inactive_share is None
    np.testing.assert_allclose(first.mean, [0.5, 1.0, -11.5])  # pre-activations a, b, -a-b-10
    assert any("No activation module follows the Linear layer fc1" in n for n in functional.notes)
    assert any("No activation module follows" in w for w in functional.warnings)
    assert not any(m._forward_hooks for m in module.modules())  # the hooks are gone afterwards


def test_torchscript_and_torch_export_files_are_observed_and_an_opaque_script_is_named(tmp_path: Path) -> None:
    from engine.models.loading import load_model

    net = _hand_set().float()
    frame = HAND.copy()
    scripted = tmp_path / "seq.pt"
    torch.jit.script(net).save(scripted)
    exported = tmp_path / "seq.pt2"
    ep = torch.export.export(net, (torch.zeros(4, 2),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, exported)
    custom = tmp_path / "custom.pt"
    torch.jit.script(_Functional().float()).save(custom)
    for path, mode in ((scripted, "chain"), (exported, "graph")):
        model = load_model(path, features=AB, device="cpu")
        inputs = AuditInputs(frame=frame, roles=Roles(target=None, features=AB), model=model)
        result = NETWORK(inputs, ctx=CTX, max_rows=None)
        assert result.provenance.parameters["observed_by"] == mode, path
        np.testing.assert_allclose(result.weights, [[1, 0], [0, 1], [-1, -1]])
        np.testing.assert_allclose(result.layers[0].mean, [0.75, 1.25, 0.0], atol=1e-6)
        np.testing.assert_allclose(result.layers[1].inactive_share, [0.25, 0.5])
        assert result.layers[0].activation == "ReLU" and result.dead_unit_count() == 1
    model = load_model(custom, features=AB, device="cpu")
    inputs = AuditInputs(frame=frame, roles=Roles(target=None, features=AB), model=model)
    with pytest.raises(AnalysisError) as info:
        NETWORK(inputs, ctx=CTX)
    assert str(info.value) == (
        "The network custom.pt is a TorchScript module that is not an nn.Sequential: its layers run inside "
        "compiled code, which takes no forward hooks, so neither its first-layer weights nor its activations "
        "can be shown."
    )


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    return frame


def test_an_mlp_pipelines_weights_are_its_own_per_raw_unit_and_its_activations_its_own(iris) -> None:
    features = tuple(c for c in iris.columns if c != "target")
    X = iris[list(features)]
    pipe = _fit(make_pipeline(StandardScaler(), MLPClassifier((6, 4), max_iter=300, random_state=0)), X, iris.target)
    inputs = AuditInputs(frame=iris, roles=Roles(target="target", features=features), model=SklearnModel(pipe))
    result = NETWORK(inputs, ctx=CTX, max_rows=None)
    scaler, mlp = pipe[0], pipe[-1]
    w0 = mlp.coefs_[0].T  # (6, 4): the MLP's own weights on the standardised columns
    np.testing.assert_allclose(result.weights, w0 / scaler.scale_[None, :], rtol=1e-12)
    # Over the rows it was fitted on, a column's standard deviation is the scaler's scale: weight × sd is w0.
    np.testing.assert_allclose(result.scaled_weights, w0, rtol=1e-10)
    Z = scaler.transform(X)
    h1 = np.maximum(Z @ mlp.coefs_[0] + mlp.intercepts_[0], 0)
    h2 = np.maximum(h1 @ mlp.coefs_[1] + mlp.intercepts_[1], 0)
    np.testing.assert_allclose(result.layers[0].mean, h1.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(result.layers[1].mean, h2.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(result.layers[1].inactive_share, (h2 == 0).mean(axis=0))
    assert [layer.n_units for layer in result.layers] == [6, 4]
    assert result.input_mapping.startswith("The Pipeline's StandardScaler is affine per column")
    assert result.provenance.parameters["differentiable_view"].startswith("MLPClassifier")


def test_a_linear_model_has_one_layer_and_no_hidden_layer(iris) -> None:
    features = tuple(c for c in iris.columns if c != "target")
    model = _fit(LogisticRegression(max_iter=500), iris[list(features)], iris.target == 2)
    frame = iris.assign(target=(iris.target == 2).astype(int))
    inputs = AuditInputs(frame=frame, roles=Roles(target="target", features=features), model=SklearnModel(model))
    result = NETWORK(inputs, ctx=CTX, max_rows=None)
    np.testing.assert_allclose(result.weights, model.coef_)
    assert result.layers == ()
    assert "The model has no hidden layer: its only Linear layer is the output layer, whose weights are shown." in (
        result.notes
    )


def test_a_tree_and_an_encoding_pipeline_are_refused_where_the_gradient_methods_are(iris) -> None:
    features = tuple(c for c in iris.columns if c != "target")
    X, y = iris[list(features)], iris.target
    tree = SklearnModel(_fit(DecisionTreeClassifier(max_depth=2, random_state=0), X, y))
    expected = (
        "Network views need a differentiable model (a torch model, or a scikit-learn MLP or linear model after "
        "affine scalers); SklearnModel is not one, because DecisionTreeClassifier is not a model whose gradient "
        "is rebuilt (MLPs and linear models are)."
    )
    assert refusal("network", tree, feature_names=features) == expected
    with pytest.raises(AnalysisError) as info:
        NETWORK(AuditInputs(frame=iris, roles=Roles(target="target", features=features), model=tree), ctx=CTX)
    assert str(info.value) == expected
    coded = iris.assign(size=np.where(iris.sepal_length > 5.8, "big", "small"))
    encoded = SklearnModel(
        _fit(
            make_pipeline(OneHotEncoder(handle_unknown="ignore"), MLPRegressor(hidden_layer_sizes=(3,), max_iter=50)),
            coded[["size"]],
            y,
        )
    )
    mlp = SklearnModel(_fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=50, random_state=0), X, y))
    for model, names in ((tree, features), (encoded, ("size",)), (mlp, features)):
        mine = refusal("network", model, feature_names=names)
        theirs = refusal("ig", model, feature_names=names)
        assert (mine is None) == (theirs is None), model.name
    assert refusal("network", mlp, feature_names=features) is None
    assert refusal("network", _torch_inputs(_hand_set()).model) is None


def test_parameters_are_checked_by_the_descriptor() -> None:
    with pytest.raises(AnalysisError, match="max_units"):
        NETWORK(_torch_inputs(_hand_set()), ctx=CTX, max_units=0)


# -- the audit and its report ------------------------------------------------------------------------------


def _pdftotext(path: Path, *pages: str) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian package poppler-utils) is not installed, so text cannot be extracted")
    done = subprocess.run(["pdftotext", *pages, "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True)
    return done.stdout


def test_the_audit_of_an_mlp_carries_the_network_section_and_a_tree_gets_none(tmp_path: Path, iris, capsys) -> None:
    import skops.io as sio

    from engine.cli import main

    features = [c for c in iris.columns if c != "target"]
    frame = iris.assign(target=(iris.target == 2).astype(int))
    data = tmp_path / "iris.csv"
    frame.to_csv(data, index=False)
    mlp = _fit(
        make_pipeline(StandardScaler(), MLPClassifier((8, 5), max_iter=300, random_state=0)),
        frame[features],
        frame.target,
    )
    tree = _fit(DecisionTreeClassifier(max_depth=2, random_state=0), frame[features], frame.target)
    for name, est in (("mlp", mlp), ("tree", tree)):
        path = tmp_path / f"{name}.skops"
        sio.dump(est, path)
        out = tmp_path / f"audit-{name}"
        from engine.hashing import sha256_file

        argv = ["--progress", "none", "audit", "--data", str(data), "--model", str(path), "--target", "target"]
        argv += ["--trust-model", sha256_file(path), "--out", str(out), "--seed", "2"]
        assert main(argv) == 0, capsys.readouterr().err
        results = json.loads((out / "results.json").read_text())
        text = " ".join(_pdftotext(out / "report.pdf").split())
        if name == "mlp":
            network = results["results"]["network"]
            assert network["kind"] == "network" and len(network["layers"]) == 2
            assert "Network views" in text and "First-layer weights" in text
            assert "Mean activation per layer and unit" in text
        else:
            assert "network" not in results["results"]
            assert "Network views" not in text and "Network views" not in " ".join(results.get("warnings", []))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_network_views_on_cuda_equal_the_processors() -> None:
    frame = pd.concat([HAND] * 50, ignore_index=True) + np.linspace(0, 1, 200)[:, None]
    cpu = NETWORK(_torch_inputs(_hand_set(), frame), ctx=CTX, max_rows=None, device="cpu")
    gpu = NETWORK(_torch_inputs(_hand_set(), frame), ctx=CTX, max_rows=None, device="cuda")
    assert gpu.provenance.parameters["device"].startswith("cuda")
    np.testing.assert_array_equal(gpu.weights, cpu.weights)
    for a, b in zip(gpu.layers, cpu.layers):
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(a.inactive_share, b.inactive_share)
