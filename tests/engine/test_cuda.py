"""The GPU paths on a real CUDA device: skipped where torch sees none (CI has no GPU).

Run on a machine with a GPU: ``pytest tests/engine/test_cuda.py``.  Each test
compares the CUDA result with the processor's, which the rest of the suite
checks against peers and closed forms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_treeshap_sweeps_on_cuda_equal_the_processor_and_repeat_bit_for_bit() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    from engine.explain._trees import extract_tree_model
    from engine.explain.treeshap import tree_model_shap_values

    X, y = load_breast_cancer(return_X_y=True)
    for model in (
        RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y),
        HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y),
    ):
        trees = extract_tree_model(model, class_index=1)
        cpu, base = tree_model_shap_values(trees, X[:300])
        gpu, base_gpu = tree_model_shap_values(trees, X[:300], torch_device="cuda")
        again, _ = tree_model_shap_values(trees, X[:300], torch_device="cuda")
        np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-10)
        np.testing.assert_array_equal(gpu, again)
        assert base_gpu == base
        kw = dict(variant="interventional", background=X[300:400])
        cpu, _ = tree_model_shap_values(trees, X[:50], **kw)
        gpu, _ = tree_model_shap_values(trees, X[:50], torch_device="cuda", **kw)
        np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-10)


def test_integrated_gradients_on_cuda_equal_the_processor() -> None:
    from engine.explain.gradients import run_ig
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.torch_adapter import TorchModel
    from engine.schema import Roles

    rng = np.random.default_rng(0)
    columns = tuple(f"f{j}" for j in range(8))
    layers = []
    for i, (a, b) in enumerate(((8, 16), (16, 16), (16, 3))):
        layer = torch.nn.utils.skip_init(torch.nn.Linear, a, b, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(rng.normal(0, 0.5, (b, a))))
            layer.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, b)))
        layers += [layer] + ([torch.nn.ReLU()] if i < 2 else [])
    model = TorchModel(
        torch.nn.Sequential(*layers), input_columns=columns, task="classification", classes=("a", "b", "c")
    )
    frame = pd.DataFrame(rng.normal(size=(50, 8)), columns=list(columns))
    inputs = AuditInputs(frame=frame, roles=Roles(target=None, features=columns), model=model)
    cpu = run_ig(inputs, ctx=JobContext(seed=0), dtype="float64", device="cpu", klass="b")
    gpu = run_ig(inputs, ctx=JobContext(seed=0), dtype="float64", device="cuda", klass="b")
    assert gpu.provenance.parameters["device"].startswith("cuda")
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=1e-9, atol=1e-12)
