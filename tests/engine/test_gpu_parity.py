"""GPU results equal CPU results within stated tolerances: run with ``pytest -m gpu`` on a machine with CUDA.

Skipped where torch sees no CUDA device.  The tolerances:

* ``TorchModel.predict``: float64 modules, ``rtol=1e-10`` (GPU and CPU kernels
  sum in different orders; float64 keeps that near 1e-15, the bound leaves room);
  float32 modules ``atol=1e-5`` on probabilities.
* Integrated Gradients, float64: ``rtol=1e-9, atol=1e-12``.
* TreeSHAP's torch path (path-dependent and interventional), float64 sweeps:
  ``atol=1e-10``, and a second GPU run repeats the first bit for bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

COLUMNS = tuple(f"f{j}" for j in range(12))


def _mlp(dtype) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(((12, 64), (64, 64), (64, 3))):
        layer = torch.nn.Linear(a, b, dtype=dtype)
        with torch.no_grad():
            layer.weight.copy_(torch.randn((b, a), generator=gen, dtype=dtype) * 0.4)
            layer.bias.copy_(torch.randn((b,), generator=gen, dtype=dtype) * 0.1)
        layers += [layer] + ([torch.nn.Tanh()] if i < 2 else [])
    return torch.nn.Sequential(*layers)


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(1).normal(size=(n, len(COLUMNS))), columns=list(COLUMNS))


@pytest.mark.parametrize(
    ("dtype", "tolerance"), [("float64", {"rtol": 1e-10, "atol": 1e-13}), ("float32", {"atol": 1e-5})]
)
def test_torch_predict_on_the_gpu_equals_the_cpu(dtype: str, tolerance: dict) -> None:
    from engine.models.torch_adapter import TorchModel

    module = _mlp(getattr(torch, dtype))
    kwargs = dict(input_columns=COLUMNS, task="classification", classes=("a", "b", "c"))
    frame = _frame(20_000)
    cpu = TorchModel(module, device="cpu", **kwargs).predict(frame)
    gpu_model = TorchModel(module, device="cuda", **kwargs)
    gpu = gpu_model.predict(frame)
    assert gpu_model.device == "cuda" and gpu_model.take_device_notes() == ()
    np.testing.assert_allclose(gpu, cpu, **tolerance)


def test_integrated_gradients_on_the_gpu_equal_the_cpu_in_float64() -> None:
    from engine.explain.gradients import run_ig
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.torch_adapter import TorchModel
    from engine.schema import Roles

    model = TorchModel(
        _mlp(torch.float64), input_columns=COLUMNS, task="classification", classes=("a", "b", "c"), device="cpu"
    )
    inputs = AuditInputs(frame=_frame(500), roles=Roles(target=None, features=COLUMNS), model=model)
    cpu = run_ig(inputs, ctx=JobContext(seed=0), dtype="float64", device="cpu", klass="b")
    gpu = run_ig(inputs, ctx=JobContext(seed=0), dtype="float64", device="cuda", klass="b")
    assert gpu.provenance.parameters["device"].startswith("cuda")
    assert not any("out of memory" in w for w in gpu.provenance.warnings)
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.predictions, cpu.predictions, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant", ["path_dependent", "interventional"])
def test_treeshap_torch_path_on_the_gpu_equals_the_cpu(variant: str) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier

    from engine.explain._trees import extract_tree_model
    from engine.explain.treeshap import tree_model_shap_values

    X, y = load_breast_cancer(return_X_y=True)
    model = GradientBoostingClassifier(n_estimators=40, max_depth=4, random_state=0).fit(X, y)
    trees = extract_tree_model(model, class_index=1)
    kwargs = {"variant": variant, "background": X[400:500]} if variant == "interventional" else {}
    cpu, base = tree_model_shap_values(trees, X[:200], **kwargs)
    gpu, base_gpu = tree_model_shap_values(trees, X[:200], torch_device="cuda", **kwargs)
    again, _ = tree_model_shap_values(trees, X[:200], torch_device="cuda", **kwargs)
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(gpu, again)
    assert base_gpu == pytest.approx(base, abs=1e-10)
