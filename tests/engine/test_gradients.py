"""Gradient attributions for torch models: closed forms, completeness, captum parity, seeding, cancel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from engine import device as device_mod  # noqa: E402
from engine.errors import AnalysisError, Cancelled, ModelError, ModelInputError  # noqa: E402
from engine.explain import gradients as G  # noqa: E402
from engine.inputs import AuditInputs  # noqa: E402
from engine.jobs import CancelToken, JobContext  # noqa: E402
from engine.models.sklearn_adapter import SklearnModel  # noqa: E402
from engine.models.torch_adapter import TorchModel  # noqa: E402
from engine.results import result_from_dict  # noqa: E402
from engine.schema import Roles  # noqa: E402

F = 6
COLUMNS = tuple(f"x{j}" for j in range(F))


# -- builders (weights from a seeded numpy Generator; no global torch RNG) -------------


def _linear(w: np.ndarray, b: np.ndarray) -> torch.nn.Linear:
    """A float64 Linear layer with the given ``(out, in)`` weights and ``(out,)`` bias."""
    layer = torch.nn.utils.skip_init(torch.nn.Linear, w.shape[1], w.shape[0], dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.asarray(w, dtype=np.float64)))
        layer.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float64)))
    return layer


def _mlp(seed: int, sizes: tuple[int, ...], act: type = torch.nn.Tanh) -> torch.nn.Sequential:
    rng = np.random.default_rng(seed)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(_linear(rng.normal(0, 1.5 / np.sqrt(a), (b, a)), rng.normal(0, 0.3, b)))
        if i < len(sizes) - 2:
            layers.append(act())
    return torch.nn.Sequential(*layers)


def _frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(1.0, 2.0, (n, F)), columns=list(COLUMNS))


def _inputs(model: TorchModel, frame: pd.DataFrame) -> AuditInputs:
    return AuditInputs(frame=frame, roles=Roles(target=None, features=COLUMNS), model=model)


def _classifier(module: torch.nn.Module, classes=("a", "b", "c")) -> TorchModel:
    return TorchModel(module, input_columns=COLUMNS, task="classification", classes=classes, device="cpu")


W = np.array([0.5, -1.0, 2.0, 0.0, 3.0, -0.25])


@pytest.fixture(scope="module")
def linear_regressor() -> TorchModel:
    return TorchModel(_linear(W[None, :], np.array([0.7])), input_columns=COLUMNS, task="regression", device="cpu")


@pytest.fixture(scope="module")
def smooth_classifier() -> TorchModel:
    return _classifier(_mlp(3, (F, 16, 16, 3)))


CTX = JobContext(seed=11)


# -- closed forms on a linear model ------------------------------------------------------


@pytest.mark.parametrize("rule", G.INTEGRATION_METHODS)
def test_ig_of_linear_model_from_zero_baseline_is_weights_times_inputs(linear_regressor, rule) -> None:
    frame = _frame(9)
    x = frame.to_numpy()
    res = G.run_ig(_inputs(linear_regressor, frame), ctx=CTX, n_steps=7, method=rule, dtype="float64")
    np.testing.assert_allclose(res.values, W * x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.predictions, x @ W + 0.7, atol=1e-12)
    np.testing.assert_allclose(res.base_values, 0.7, atol=1e-12)
    assert res.method == "ig" and res.output_space == "value" and res.class_index is None
    assert res.quality["completeness_error"].max() < 1e-12


def test_saliency_and_input_x_gradient_of_linear_model(linear_regressor) -> None:
    frame = _frame(9)
    x = frame.to_numpy()
    inputs = _inputs(linear_regressor, frame)
    sal = G.run_saliency(inputs, ctx=CTX, dtype="float64")
    np.testing.assert_array_equal(sal.values, np.broadcast_to(np.abs(W), x.shape))
    np.testing.assert_array_equal(sal.extras["gradient"], np.broadcast_to(W, x.shape))
    signed = G.run_saliency(inputs, ctx=CTX, dtype="float64", absolute=False)
    np.testing.assert_array_equal(signed.values, np.broadcast_to(W, x.shape))
    ixg = G.run_input_x_gradient(inputs, ctx=CTX, dtype="float64")
    np.testing.assert_allclose(ixg.values, W * x, rtol=0, atol=1e-15)
    assert (sal.method, ixg.method) == ("saliency", "input_x_gradient")


def test_ig_of_linear_logit_explains_the_chosen_class() -> None:
    rng = np.random.default_rng(5)
    w, b = rng.normal(size=(3, F)), rng.normal(size=3)
    model = _classifier(_linear(w, b))
    frame = _frame(5)
    res = G.run_ig(_inputs(model, frame), ctx=CTX, klass="c", dtype="float64", n_steps=3)
    np.testing.assert_allclose(res.values, w[2] * frame.to_numpy(), atol=1e-12)
    assert (res.class_index, res.output_name, res.output_space) == (2, "logit(c)", "logit")


@pytest.mark.parametrize("kind", ["mean", "median", "vector", "mapping"])
def test_ig_baselines_shift_the_linear_closed_form(linear_regressor, kind) -> None:
    frame = _frame(12)
    frame.iloc[3, 2] = np.nan  # statistics skip missing values; row 3 is not explained
    data = frame.to_numpy()
    expected_base = {
        "mean": np.nanmean(data, axis=0),
        "median": np.nanmedian(data, axis=0),
        "vector": np.linspace(-1, 1, F),
        "mapping": np.arange(F, dtype=float),
    }[kind]
    baseline = {"vector": list(np.linspace(-1, 1, F)), "mapping": {c: float(j) for j, c in enumerate(COLUMNS)}}.get(
        kind, kind
    )
    rows = [0, 1, 2, 4, 11]
    res = G.run_ig(_inputs(linear_regressor, frame), ctx=CTX, rows=rows, baseline=baseline, dtype="float64")
    np.testing.assert_allclose(res.extras["baseline"], expected_base, atol=1e-12)
    np.testing.assert_allclose(res.values, W * (data[rows] - expected_base), atol=1e-12)
    np.testing.assert_array_equal(res.rows, rows)


def test_smoothgrad_of_linear_model_is_the_weights_whatever_the_noise(linear_regressor) -> None:
    res = G.run_smoothgrad(_inputs(linear_regressor, _frame(8)), ctx=CTX, dtype="float64", noise_level=0.5)
    np.testing.assert_allclose(res.values, np.broadcast_to(W, (8, F)), atol=1e-12)
    np.testing.assert_allclose(res.extras["gradient_std"], 0.0, atol=1e-12)


# -- non-linear models -------------------------------------------------------------------


@pytest.mark.parametrize("output", ["logit", "probability"])
def test_ig_is_complete_on_a_smooth_mlp(smooth_classifier, output) -> None:
    frame = _frame(40)
    res = G.run_ig(
        _inputs(smooth_classifier, frame), ctx=CTX, baseline="mean", n_steps=64, output=output, dtype="float64"
    )
    gap = res.predictions - res.base_values
    assert np.abs(gap).min() > 1e-3  # the property is not met trivially
    np.testing.assert_allclose(res.values.sum(axis=1), gap, rtol=0, atol=1e-6)
    assert res.summary["max_completeness_error"] < 1e-6
    assert res.warnings == ()
    # predictions and base values are the model's own outputs
    module = smooth_classifier.module
    with torch.no_grad():
        out = module(torch.tensor(frame.to_numpy()))
        base = module(torch.tensor(res.extras["baseline"][None, :]))
    if output == "probability":
        out, base = torch.softmax(out, 1), torch.softmax(base, 1)
    np.testing.assert_allclose(res.predictions, out[:, 0].numpy(), atol=1e-12)
    np.testing.assert_allclose(res.base_values, base[0, 0].item(), atol=1e-12)


def test_too_few_steps_on_a_relu_net_warns_about_completeness() -> None:
    model = _classifier(_mlp(8, (F, 32, 3), act=torch.nn.ReLU))
    res = G.run_ig(_inputs(model, _frame(30)), ctx=CTX, n_steps=2, method="riemann_left", dtype="float64")
    assert res.summary["max_completeness_error"] > 1e-3
    assert len(res.warnings) == 1 and "raise the number of integration steps above 2" in res.warnings[0]


@pytest.mark.parametrize(
    ("rule", "output", "klass"),
    [
        ("gausslegendre", "logit", None),
        ("gausslegendre", "probability", "b"),
        ("riemann_middle", "logit", "c"),
        ("riemann_right", "logit", "b"),
    ],
)
def test_ig_matches_captum(rule, output, klass) -> None:
    captum_attr = pytest.importorskip("captum.attr")
    module = _mlp(21, (F, 12, 12, 3), act=torch.nn.ReLU)
    model = _classifier(module)
    frame = _frame(25, seed=4)
    baseline = np.linspace(-0.5, 0.5, F)
    res = G.run_ig(
        _inputs(model, frame),
        ctx=CTX,
        baseline=baseline,
        n_steps=20,
        method=rule,
        klass=klass,
        output=output,
        dtype="float64",
        batch_rows=7,
    )
    forward = module if output == "logit" else (lambda t: torch.softmax(module(t), dim=1))
    x = torch.tensor(frame.to_numpy())
    theirs = captum_attr.IntegratedGradients(forward).attribute(
        x,
        baselines=torch.from_numpy(baseline)[None, :].expand_as(x),
        target=res.class_index,
        n_steps=20,
        method=rule,
    )
    assert res.class_index == (0 if klass is None else "abc".index(klass))
    diff = np.abs(res.values - theirs.detach().numpy()).max()
    assert diff <= 1e-6, diff


def test_chunking_does_not_change_results_and_progress_is_per_chunk(smooth_classifier) -> None:
    frame = _frame(10)
    seen: list[tuple[float, str]] = []
    ctx = JobContext(seed=0, progress_fn=lambda f, m: seen.append((f, m)))
    small = G.run_ig(_inputs(smooth_classifier, frame), ctx=ctx, batch_rows=3, dtype="float64", n_steps=8)
    big = G.run_ig(_inputs(smooth_classifier, frame), ctx=CTX, batch_rows=256, dtype="float64", n_steps=8)
    np.testing.assert_allclose(small.values, big.values, rtol=1e-12, atol=1e-14)
    fractions = [f for f, _ in seen]
    assert fractions == [0.0, 0.3, 0.6, 0.9, 1.0]
    assert seen[1][1] == "Integrated gradients: 3 of 10 rows"


def test_float32_default_agrees_with_float64(smooth_classifier) -> None:
    inputs = _inputs(smooth_classifier, _frame(10))
    low = G.run_ig(inputs, ctx=CTX, n_steps=16)
    high = G.run_ig(inputs, ctx=CTX, n_steps=16, dtype="float64")
    np.testing.assert_allclose(low.values, high.values, rtol=1e-4, atol=1e-5)
    # converting to float32 works on a cached copy; the caller's module stays float64
    assert smooth_classifier.module[0].weight.dtype == torch.float64


# -- SmoothGrad seeding ------------------------------------------------------------------


def test_smoothgrad_is_reproducible_from_the_seed_only(smooth_classifier) -> None:
    inputs = _inputs(smooth_classifier, _frame(9))
    kw = {"n_samples": 16, "dtype": "float64"}
    a = G.run_smoothgrad(inputs, ctx=JobContext(seed=1), batch_rows=2, **kw)
    b = G.run_smoothgrad(inputs, ctx=JobContext(seed=1), batch_rows=256, **kw)
    c = G.run_smoothgrad(inputs, ctx=JobContext(seed=2), **kw)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=1e-14)
    assert np.abs(a.values - c.values).max() > 1e-4
    # with no noise SmoothGrad is the plain gradient
    quiet = G.run_smoothgrad(inputs, ctx=CTX, n_samples=3, noise_level=0.0, dtype="float64")
    plain = G.run_saliency(inputs, ctx=CTX, absolute=False, dtype="float64")
    np.testing.assert_allclose(quiet.values, plain.values, atol=1e-14)
    np.testing.assert_allclose(a.extras["noise_std"], 0.15 * _frame(9).to_numpy().std(axis=0), rtol=1e-12)


# -- refusals, cancel, devices -----------------------------------------------------------


@pytest.mark.parametrize("run", [G.run_ig, G.run_saliency, G.run_input_x_gradient, G.run_smoothgrad])
def test_non_differentiable_model_is_refused_with_one_sentence(run) -> None:
    from sklearn.tree import DecisionTreeRegressor

    frame = _frame(20)
    est = DecisionTreeRegressor(max_depth=2).fit(frame, frame["x0"] * 2.0)
    with pytest.raises(AnalysisError) as info:
        run(_inputs(SklearnModel(est), frame), ctx=CTX)
    assert str(info.value) == (
        "Gradient methods need a differentiable model (a torch model, or a scikit-learn MLP or linear model after "
        "affine scalers); SklearnModel is not one, because DecisionTreeRegressor is not a model whose gradient is "
        "rebuilt (MLPs and linear models are); SHAP and LIME explain any model."
    )


def test_bad_inputs_are_reported(linear_regressor, smooth_classifier) -> None:
    frame = _frame(5)
    inputs = _inputs(linear_regressor, frame)
    with pytest.raises(AnalysisError, match=r"^Row position 5 is outside the data, which has 5 rows"):
        G.run_ig(inputs, ctx=CTX, rows=[0, 5])
    holed = frame.copy()
    holed.iloc[2, 4] = np.nan
    with pytest.raises(AnalysisError, match=r"^Row 2 of the data has a missing or infinite value in column 'x4'"):
        G.run_saliency(_inputs(linear_regressor, holed), ctx=CTX, rows=[2])
    with pytest.raises(AnalysisError, match="is a regressor and has no probabilities"):
        G.run_ig(inputs, ctx=CTX, output="probability")
    with pytest.raises(AnalysisError, match=r"^The baseline has shape \(3,\), but the model takes 6 input columns\.$"):
        G.run_ig(inputs, ctx=CTX, baseline=[0.0, 1.0, 2.0])
    with pytest.raises(AnalysisError, match="^Unknown integration method 'simpson'"):
        G.run_ig(inputs, ctx=CTX, method="simpson")
    with pytest.raises(ModelInputError, match=r"^The data lacks 1 column the model TorchModel needs: 'x5'\.$"):
        G.run_input_x_gradient(_inputs(linear_regressor, frame.drop(columns="x5")), ctx=CTX)
    with pytest.raises(AnalysisError, match="no class 'z'"):
        G.run_ig(_inputs(smooth_classifier, frame), ctx=CTX, klass="z")


def test_cancel_stops_between_chunks(smooth_classifier) -> None:
    inputs = _inputs(smooth_classifier, _frame(20))
    token = CancelToken()
    calls: list[float] = []

    def progress(fraction: float, message: str) -> None:
        calls.append(fraction)
        token.cancel()  # the first report asks to stop

    with pytest.raises(Cancelled):
        G.run_ig(inputs, ctx=JobContext(progress_fn=progress, cancel=token), batch_rows=2, n_steps=4)
    assert calls == [0.0]  # the second chunk never started
    for run in (G.run_saliency, G.run_smoothgrad, G.run_input_x_gradient):
        with pytest.raises(Cancelled):
            run(inputs, ctx=JobContext(cancel=token))


def test_device_choice_on_a_cpu_only_machine(monkeypatch, linear_regressor) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_mod.choose_device() == "cpu"
    assert device_mod.choose_device(" CPU ") == "cpu"
    with pytest.raises(AnalysisError, match="torch sees no CUDA device"):
        device_mod.choose_device("cuda")
    with pytest.raises(AnalysisError, match=r"^Unknown compute device 'tpu'; choose 'auto', 'cpu' or 'cuda'\.$"):
        device_mod.choose_device("tpu")
    assert device_mod.device_description("cpu") == f"CPU ({torch.get_num_threads()} thread" + (
        "s)" if torch.get_num_threads() != 1 else ")"
    )
    res = G.run_ig(_inputs(linear_regressor, _frame(4)), ctx=CTX, device="auto")
    assert res.provenance.parameters["device"] == "cpu"


def test_configure_threads_sets_torch_intra_op_threads() -> None:
    before = torch.get_num_threads()
    try:
        assert device_mod.configure_threads(1) == 1 == torch.get_num_threads()
        with pytest.raises(AnalysisError, match="positive whole number, not 0"):
            device_mod.configure_threads(0)
    finally:
        torch.set_num_threads(before)


# -- the TorchModel adapter ---------------------------------------------------------------


def test_torch_model_predicts_softmax_probabilities_and_values(smooth_classifier, linear_regressor) -> None:
    frame = _frame(6)
    x = torch.tensor(frame.to_numpy())
    proba = smooth_classifier.predict(frame)
    with torch.no_grad():
        expected = torch.softmax(smooth_classifier.module(x), dim=1).numpy()
    np.testing.assert_allclose(proba, expected, atol=1e-15)
    np.testing.assert_allclose(linear_regressor.predict(frame), frame.to_numpy() @ W + 0.7, atol=1e-12)
    # a single-logit binary classifier reads as logits [0, z]: P(second class) = sigmoid(z)
    binary = TorchModel(
        _linear(W[None, :], np.array([0.1])), input_columns=COLUMNS, task="classification", classes=(0, 1)
    )
    z = frame.to_numpy() @ W + 0.1
    np.testing.assert_allclose(binary.predict(frame)[:, 1], 1 / (1 + np.exp(-z)), atol=1e-12)
    ig = G.run_ig(_inputs(binary, frame), ctx=CTX, dtype="float64")
    np.testing.assert_allclose(ig.values, W * frame.to_numpy(), atol=1e-12)


def test_torch_model_refuses_what_it_cannot_use() -> None:
    with pytest.raises(ModelInputError, match=r"returned logits of shape \(1, 3\), expected \(1, 2\)"):
        TorchModel(_mlp(0, (F, 3)), input_columns=COLUMNS, task="classification", classes=("n", "y"))
    with pytest.raises(ModelInputError, match="^The model TorchModel cannot take its 4 input columns: "):
        TorchModel(_mlp(0, (F, 1)), input_columns=COLUMNS[:4], task="regression")
    with pytest.raises(ModelError, match="is a dict, not a torch.nn.Module"):
        TorchModel({}, input_columns=COLUMNS, task="regression")
    model = TorchModel(_mlp(0, (F, 1)), input_columns=COLUMNS, task="regression", name="net.pt")
    frame = _frame(3).assign(x2=["a", "b", "c"])
    with pytest.raises(ModelInputError, match=r"^The column 'x2' is not numeric, but the torch model net.pt"):
        model.predict(frame)


def test_attribution_result_round_trips_through_json(smooth_classifier) -> None:
    res = G.run_ig(_inputs(smooth_classifier, _frame(4)), ctx=CTX, n_steps=5, baseline="median")
    back = result_from_dict(res.to_dict())
    np.testing.assert_array_equal(back.values, res.values)
    np.testing.assert_array_equal(back.quality["completeness_error"], res.quality["completeness_error"])
    assert back.provenance.parameters["baseline"] == "median"
    assert back.output_name == "logit(a)"


def test_a_model_that_ignores_its_inputs_gets_zero_attributions() -> None:
    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((x.shape[0],), 2.5, dtype=x.dtype)

    model = TorchModel(Constant(), input_columns=COLUMNS, task="regression", device="cpu")
    inputs = _inputs(model, _frame(3))
    for run in (G.run_ig, G.run_saliency, G.run_smoothgrad):
        res = run(inputs, ctx=CTX)
        np.testing.assert_array_equal(res.values, 0.0)
        np.testing.assert_array_equal(res.predictions, 2.5)


# -- the IG fast paths (leading affine layer, plain ReLU MLP) agree with autograd --------


class _Opaque(torch.nn.Module):
    """Wraps a module so that IG cannot see its layers and takes the generic autograd path."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


@pytest.mark.parametrize(
    ("act", "sizes", "task", "classes", "klass", "output", "path"),
    [
        (torch.nn.ReLU, (F, 9, 7, 3), "classification", ("a", "b", "c"), "c", "logit", "relu"),
        (torch.nn.ReLU, (F, 9, 7, 1), "classification", (0, 1), 1, "logit", "relu"),
        (torch.nn.ReLU, (F, 9, 7, 1), "classification", (0, 1), 0, "logit", "relu"),
        (torch.nn.ReLU, (F, 9, 1), "regression", None, None, "logit", "relu"),
        (torch.nn.ReLU, (F, 9, 7, 3), "classification", ("a", "b", "c"), "a", "probability", "affine"),
        (torch.nn.Tanh, (F, 9, 7, 3), "classification", ("a", "b", "c"), "b", "logit", "affine"),
    ],
)
def test_ig_fast_paths_equal_the_autograd_path(monkeypatch, act, sizes, task, classes, klass, output, path) -> None:
    calls: list[int] = []
    relu_path = G._relu_path_gradient
    monkeypatch.setattr(G, "_relu_path_gradient", lambda *a: calls.append(1) or relu_path(*a))
    module = _mlp(31, sizes, act=act)
    fast = TorchModel(module, input_columns=COLUMNS, task=task, classes=classes, device="cpu")
    slow = TorchModel(_Opaque(module), input_columns=COLUMNS, task=task, classes=classes, device="cpu")
    assert (fast.relu_layers("cpu", torch.float64) is not None) == (act is torch.nn.ReLU)
    assert fast.affine_head("cpu", torch.float64) is not None
    assert slow.affine_head("cpu", torch.float64) is None and slow.relu_layers("cpu", torch.float64) is None
    frame = _frame(23, seed=8)
    kwargs = dict(ctx=CTX, baseline="mean", n_steps=17, klass=klass, output=output, dtype="float64", batch_rows=5)
    a = G.run_ig(_inputs(fast, frame), **kwargs)
    assert bool(calls) == (path == "relu")
    b = G.run_ig(_inputs(slow, frame), **kwargs)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.predictions, b.predictions, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.base_values, b.base_values, rtol=1e-12, atol=1e-12)
    if classes == (0, 1) and klass == 0:
        assert not a.values.any()  # the logit of class 0 is the constant 0 of [0, z]
    else:
        assert np.abs(a.values).max() > 1e-3  # not a vacuous comparison of zeros


def test_a_hooked_layer_is_never_taken_apart() -> None:
    module = _mlp(32, (F, 9, 3), act=torch.nn.ReLU)
    module[0].register_forward_hook(lambda mod, inp, out: out * 2.0)
    hooked = _classifier(module)
    assert hooked.affine_head("cpu", torch.float64) is None and hooked.relu_layers("cpu", torch.float64) is None
    plain = _classifier(_Opaque(module))
    frame = _frame(6)
    a = G.run_ig(_inputs(hooked, frame), ctx=CTX, n_steps=9, dtype="float64", klass="b")
    b = G.run_ig(_inputs(plain, frame), ctx=CTX, n_steps=9, dtype="float64", klass="b")
    np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=1e-12)


def test_rows_with_missing_values_are_left_out_and_named(linear_regressor) -> None:
    frame = _frame(12)
    frame.iloc[[2, 7], [4, 1]] = np.nan
    frame.iloc[9, 0] = np.inf
    res = G.run_ig(_inputs(linear_regressor, frame), ctx=CTX, dtype="float64")
    assert res.rows.tolist() == [0, 1, 3, 4, 5, 6, 8, 10, 11]
    assert res.warnings == (
        "3 of the 12 rows asked for were left out because they have missing or infinite values, which gradients "
        "cannot pass through (rows 2, 7, 9).",
    )
    assert res.provenance.parameters["rows"] is None  # what was asked for, for a re-run
    clean = G.run_ig(_inputs(linear_regressor, frame.iloc[res.rows]), ctx=CTX, dtype="float64")
    np.testing.assert_array_equal(res.values, clean.values)
