"""PyTorch model files: TorchScript, torch.export, state dicts, safetensors and pickled modules, read safely.

Every model is built here: small MLPs with weights drawn from a seeded numpy generator.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from engine.cli import main  # noqa: E402
from engine.errors import ModelError, ModelInputError, UnsafeModelError, UntrustedModelError  # noqa: E402
from engine.hashing import sha256_bytes  # noqa: E402
from engine.models.loading import UnreviewedModelError, inspect_model, load_model  # noqa: E402

FEATURES = ["a", "b", "c"]


def _mlp(out: int, *, seed: int, head: object | None = None):
    """Linear(3, 5) - Tanh - Linear(5, out) [- head], weights from a seeded generator."""
    rng = np.random.default_rng(seed)
    layers = [torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, out)]
    if head is not None:
        layers.append(head)
    net = torch.nn.Sequential(*layers).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.as_tensor(rng.normal(scale=1.5, size=tuple(p.shape)), dtype=torch.float32))
    return net


def _frame(n: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)


def _own(net, X: pd.DataFrame) -> np.ndarray:
    with torch.no_grad():
        return net(torch.as_tensor(X[FEATURES].to_numpy(), dtype=torch.float32)).double().numpy()


def _sidecar(model: Path, doc: object) -> None:
    model.with_name(model.stem + ".features.json").write_text(json.dumps(doc))


def _export(net, path: Path) -> None:
    ep = torch.export.export(net, (torch.zeros(4, 3),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, path)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- formats that carry their own architecture ----------------------------------------------------


def test_torchscript_classifier_loads_without_trust_and_predicts_like_the_module(tmp_path: Path) -> None:
    net = _mlp(3, seed=0)
    path = tmp_path / "clf.pt"
    torch.jit.script(net).save(path)
    _sidecar(path, {"features": FEATURES, "classes": ["x", "y", "z"]})
    model = load_model(path)
    X = _frame()
    assert model.format == "torchscript" and not model.trust.required
    assert model.input_columns == tuple(FEATURES) and model.classes == ("x", "y", "z")
    np.testing.assert_allclose(model.predict(X), _softmax(_own(net, X)), atol=1e-6)
    record = model.trust.to_dict()["torch"]
    assert record["output"] == "logits" and record["output_from"].startswith("detected")
    assert record["sidecar_sha256"] == sha256_bytes(path.with_name("clf.features.json").read_bytes())


def test_softmax_output_is_detected_and_read_back_as_logits(tmp_path: Path) -> None:
    net = _mlp(3, seed=2, head=torch.nn.Softmax(dim=1))
    path = tmp_path / "prob.ts"
    torch.jit.trace(net, torch.zeros(2, 3)).save(path)
    _sidecar(path, {"features": FEATURES, "task": "classification", "classes": [0, 1, 2]})
    model = load_model(path)
    X = _frame()
    assert model.trust.to_dict()["torch"]["output"] == "probabilities"
    np.testing.assert_allclose(model.predict(X), _own(net, X), atol=1e-6)
    # The gradient methods' forward pass gives logits whose softmax is the network's output.
    logits = model.forward_tensor(torch.as_tensor(X.to_numpy(), dtype=torch.float32)).detach().double().numpy()
    np.testing.assert_allclose(_softmax(logits), _own(net, X), atol=1e-6)


def test_one_sigmoid_column_is_the_second_class_probability(tmp_path: Path) -> None:
    net = _mlp(1, seed=3, head=torch.nn.Sigmoid())
    path = tmp_path / "sig.pt"
    torch.jit.script(net).save(path)
    _sidecar(path, {"features": FEATURES, "classes": ["no", "yes"]})
    model = load_model(path)
    X = _frame()
    assert model.trust.to_dict()["torch"]["output"] == "probabilities"
    np.testing.assert_allclose(model.predict(X)[:, 1], _own(net, X)[:, 0], atol=1e-6)


def test_exported_regressor_loads_without_trust_and_predicts_values(tmp_path: Path) -> None:
    net = _mlp(1, seed=4)
    path = tmp_path / "reg.pt2"
    _export(net, path)
    _sidecar(path, FEATURES)
    model = load_model(path)
    X = _frame()
    assert model.format == "torch-export" and model.task.value == "regression" and not model.trust.required
    np.testing.assert_allclose(model.predict(X), _own(net, X)[:, 0], atol=1e-6)
    assert model.trust.to_dict()["torch"]["output"] == "values"


def test_an_export_with_a_fixed_batch_size_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(_mlp(1, seed=4), (torch.zeros(2, 3),)), path)
    _sidecar(path, FEATURES)
    with pytest.raises(ModelError, match="exported for batches of exactly 2 rows; export it with a dynamic batch"):
        load_model(path)


# -- weights only ------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["net.ts", "net.pt2"])
def test_a_state_dict_loads_into_the_named_architecture(tmp_path: Path, architecture: str) -> None:
    shape_only, trained = _mlp(2, seed=5), _mlp(2, seed=6)
    if architecture.endswith(".ts"):
        torch.jit.script(shape_only).save(tmp_path / architecture)
    else:
        _export(shape_only, tmp_path / architecture)
    path = tmp_path / "weights.pth"
    torch.save(trained.state_dict(), path)
    _sidecar(path, {"features": FEATURES, "classes": [0, 1], "architecture": architecture})
    model = load_model(path)
    X = _frame()
    assert model.format == "torch-state-dict" and not model.trust.required
    np.testing.assert_allclose(model.predict(X), _softmax(_own(trained, X)), atol=1e-6)
    record = model.trust.to_dict()["torch"]
    assert record["architecture"] == architecture
    assert record["architecture_sha256"] == sha256_bytes((tmp_path / architecture).read_bytes())


def test_weights_without_an_architecture_say_exactly_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(_mlp(2, seed=5).state_dict(), path)
    _sidecar(path, FEATURES)
    with pytest.raises(ModelError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "holds weights only (4 tensors: 0.bias, 0.weight, 2.bias, 2.weight) and no architecture" in message
    assert '"architecture" in weights.features.json' in message
    assert "Probity ran" not in message and "\n" not in message
    assert "weights only - needs the architecture" in inspect_model(path).to_text()


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """The format by its specification: u64 header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_safetensors_weights_load_into_the_architecture(tmp_path: Path) -> None:
    trained = _mlp(1, seed=7)
    torch.jit.script(_mlp(1, seed=8)).save(tmp_path / "net.pt")
    path = tmp_path / "weights.safetensors"
    _write_safetensors(path, {k: v.numpy() for k, v in trained.state_dict().items()})
    _sidecar(path, {"features": FEATURES, "architecture": "net.pt"})
    model = load_model(path)
    X = _frame()
    assert model.format == "safetensors"
    np.testing.assert_allclose(model.predict(X), _own(trained, X)[:, 0], atol=1e-6)
    assert "Tensors:  4: 0.weight F32[5, 3]" in inspect_model(path).to_text()


def test_a_safetensors_header_pointing_outside_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    text = json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 16)
    _sidecar(path, {"features": FEATURES, "architecture": "net.pt"})
    with pytest.raises(ModelError, match=r"bad.safetensors is not a valid safetensors file \('w' has data offsets"):
        load_model(path)


def test_weights_that_do_not_fit_the_architecture_name_the_keys(tmp_path: Path) -> None:
    torch.jit.script(_mlp(2, seed=5)).save(tmp_path / "net.ts")
    path = tmp_path / "other.pt"
    torch.save({"0.weight": torch.zeros(5, 3)}, path)
    _sidecar(path, {"features": FEATURES, "classes": [0, 1], "architecture": "net.ts"})
    with pytest.raises(ModelError, match=r"other.pt does not fit the network in net.ts: it lacks 0.bias, 2.bias"):
        load_model(path)


# -- pickled modules: the pickle flow ---------------------------------------------------------------


def test_a_pickled_module_is_refused_without_trust_and_loads_with_it(tmp_path: Path) -> None:
    net = _mlp(2, seed=9)
    path = tmp_path / "whole.pt"
    torch.save(net, path)
    _sidecar(path, {"features": FEATURES, "classes": [0, 1]})
    sha = sha256_bytes(path.read_bytes())
    with pytest.raises(UntrustedModelError) as untrusted:
        load_model(path)
    assert untrusted.value.exit_code == 3 and f"--trust-model {sha} --allow-unreviewed" in str(untrusted.value)
    assert "torch.nn.modules.linear.Linear" in untrusted.value.imports
    with pytest.raises(UnreviewedModelError):
        load_model(path, trusted_sha256=[sha])
    model = load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
    X = _frame()
    np.testing.assert_allclose(model.predict(X), _softmax(_own(net, X)), atol=1e-6)
    trust = model.trust.to_dict()
    assert trust["required"] and trust["sha256"] == sha and trust["allow_unreviewed"]
    assert trust["torch"]["kind"] == "torch-pickle"
    inspection = inspect_model(path)
    assert inspection.format == "torch-pickle" and inspection.needs_trust


class _RunsCommand:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def test_a_pt_whose_pickle_runs_code_is_refused_and_nothing_runs(tmp_path: Path, capsys) -> None:
    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "evil.pt"
    torch.save({"model": _RunsCommand(sentinel)}, path)
    sha = sha256_bytes(path.read_bytes())
    with pytest.raises(UnsafeModelError, match="evil.pt is refused: its data.pkl imports posix.system"):
        load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
    (tmp_path / "d.csv").write_text("a,b,c,y\n1,2,3,0\n")
    code = main(["explain", "saliency", "--data", str(tmp_path / "d.csv"), "--model", str(path), "--target", "y"])
    err = capsys.readouterr().err
    assert code == 3 and err.count("\n") == 1 and "Traceback" not in err
    assert not sentinel.exists()


# -- TorchScript and torch.export that reach outside the model ---------------------------------------


class _Saves(torch.nn.Module):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, x):
        torch.save(x, self.target)
        return self.linear(x)


def test_torchscript_that_writes_files_is_refused_before_it_runs(tmp_path: Path) -> None:
    written = tmp_path / "written.pt"
    path = tmp_path / "saves.pt"
    torch.jit.script(_Saves(str(written))).save(path)
    _sidecar(path, FEATURES)
    with pytest.raises(UnsafeModelError, match=r"saves.pt is refused: its code calls torch.save") as caught:
        load_model(path)
    assert caught.value.exit_code == 3 and not written.exists()
    assert "Verdict:  refused - its code calls torch.save" in inspect_model(path).to_text()


def _tampered_export(tmp_path: Path, change) -> Path:
    """An exported MLP whose program JSON ``change`` edits in place."""
    good = tmp_path / "good.pt2"
    _export(_mlp(1, seed=4), good)
    path = tmp_path / "tampered.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("models/model.json"):
                doc = json.loads(data)
                change(doc)
                data = json.dumps(doc).encode()
            dst.writestr(item, data)
    _sidecar(path, FEATURES)
    return path


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda doc, s: doc.__setitem__("guards_code", [f"__import__('os').system('touch {s}')"]), "guard code"),
        (
            lambda doc, s: doc["graph_module"]["graph"]["nodes"][0].__setitem__("target", "torch.os.system"),
            "its graph calls torch.os.system, which is not an ATen tensor operator",
        ),
        (
            lambda doc, s: doc["graph_module"]["graph"]["tensor_values"]["input"]["sizes"][0].__setitem__(
                "as_expr", {"expr_str": f"__import__('os').system('touch {s}')", "hint": None}
            ),
            "shape expression",
        ),
    ],
)
def test_a_pt2_that_would_run_code_in_torch_export_load_is_refused(tmp_path: Path, change, why: str) -> None:
    sentinel = tmp_path / "SENTINEL"
    path = _tampered_export(tmp_path, lambda doc: change(doc, sentinel))
    with pytest.raises(UnsafeModelError, match=why) as caught:
        load_model(path)
    assert caught.value.exit_code == 3 and not sentinel.exists()


def test_a_pt2_with_pickled_sample_inputs_is_refused(tmp_path: Path) -> None:
    sentinel = tmp_path / "SENTINEL"
    good = tmp_path / "good.pt2"
    _export(_mlp(1, seed=4), good)
    evil = io.BytesIO()
    torch.save(_RunsCommand(sentinel), evil)
    path = tmp_path / "inputs.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, evil.getvalue() if "sample_inputs" in item.filename else data)
    _sidecar(path, FEATURES)
    with pytest.raises(UnsafeModelError, match="its sample inputs are not plain tensors"):
        load_model(path)
    assert not sentinel.exists()


# -- input mapping --------------------------------------------------------------------------------


def test_features_given_and_in_the_sidecar_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.jit.script(_mlp(1, seed=4)).save(path)
    _sidecar(path, FEATURES)
    with pytest.raises(ModelInputError) as caught:
        load_model(path, features=["a", "b", "d"])
    assert str(caught.value) == (
        "The sidecar m.features.json maps 3 columns to m.pt (a, b, c), but the features given are 3 (a, b, d); "
        "make them agree."
    )
    assert load_model(path, features=FEATURES).input_columns == tuple(FEATURES)


def test_a_network_without_a_column_mapping_says_how_to_give_one(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.jit.script(_mlp(1, seed=4)).save(path)
    with pytest.raises(ModelError, match=r"m.pt does not say which data columns it takes; list them in order in "):
        load_model(path)
    assert load_model(path, features=FEATURES).trust.to_dict()["torch"]["features_from"] == "--features"


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_an_input_width_other_than_the_mapped_columns_is_one_sentence(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"m{suffix}"
    if suffix == ".pt":
        torch.jit.script(_mlp(1, seed=4)).save(path)
    else:
        _export(_mlp(1, seed=4), path)
    _sidecar(path, ["a", "b"])
    with pytest.raises(ModelInputError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "takes 3" in message and "m.features.json maps 2" in message and "(a, b)" in message
    assert "\n" not in message


def test_several_outputs_without_a_declared_task_are_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.jit.script(_mlp(3, seed=4)).save(path)
    _sidecar(path, FEATURES)
    with pytest.raises(ModelError, match=r'returns 3 outputs per row and nothing says what they are; declare "task"'):
        load_model(path)


def test_unknown_files_and_sidecar_keys_are_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="junk.pt is not a PyTorch file Probity can read"):
        inspect_model(path)
    model = tmp_path / "m.pt"
    torch.jit.script(_mlp(1, seed=4)).save(model)
    _sidecar(model, {"features": FEATURES, "ouput": "logits"})
    with pytest.raises(ModelError, match="The sidecar m.features.json has unknown key"):
        load_model(model)


# -- end to end ---------------------------------------------------------------------------------------


def test_gradient_and_model_agnostic_methods_run_on_a_torchscript_model_from_the_cli(tmp_path: Path, capsys) -> None:
    net = _mlp(2, seed=10)
    path = tmp_path / "clf.pt"
    torch.jit.script(net).save(path)
    _sidecar(path, {"features": FEATURES, "classes": [0, 1]})
    X = _frame(60)
    X["y"] = _own(net, X).argmax(axis=1)
    X.to_csv(tmp_path / "d.csv", index=False)
    argv = ["--data", str(tmp_path / "d.csv"), "--model", str(path), "--target", "y"]
    out = tmp_path / "ig.json"
    assert main(["explain", "ig", *argv, "--rows", "0-4", "--out", str(out)]) == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    values = np.asarray(doc["values"])
    gap = np.asarray(doc["output"]["predictions"]) - np.asarray(doc["base_values"])
    np.testing.assert_allclose(values.sum(axis=1), gap, rtol=1e-3, atol=1e-3)
    assert doc["provenance"]["model_trust"]["torch"]["kind"] == "torchscript"
    for method in ("saliency", "permutation"):
        target = tmp_path / f"{method}.json"
        assert main(["explain", method, *argv, "--out", str(target)]) == 0, capsys.readouterr().err
    audit = tmp_path / "audit"
    assert main(["audit", *argv, "--out", str(audit), "--no-report"]) == 0, capsys.readouterr().err
    results = json.loads((audit / "results.json").read_text())
    assert results["provenance"]["model_format"] == "torchscript"
    assert results["provenance"]["model_trust"]["torch"]["features_from"] == "clf.features.json"


def test_features_from_the_command_line_as_a_comma_list_or_a_json_file(tmp_path: Path, capsys) -> None:
    """No sidecar: --features maps the columns, through the audit's test process too, and is recorded."""
    net = _mlp(1, seed=11)
    path = tmp_path / "reg.pt2"
    _export(net, path)
    X = _frame(30)
    X["y"] = _own(net, X)[:, 0]
    X.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "cols.json").write_text(json.dumps(FEATURES))
    argv = ["explain", "saliency", "--data", str(tmp_path / "d.csv"), "--model", str(path), "--target", "y"]
    for given in (["a,b,c"], [str(tmp_path / "cols.json")]):
        out = tmp_path / "s.json"
        assert main([*argv, "--features", *given, "--out", str(out)]) == 0, capsys.readouterr().err
        doc = json.loads(out.read_text())
        assert doc["feature_names"] == FEATURES
        assert doc["provenance"]["model_trust"]["torch"]["features_from"] == "--features"
    capsys.readouterr()
    code = main([*argv, "--features", "a,b"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "reg.pt2 takes 3 input columns, but --features maps 2" in err
