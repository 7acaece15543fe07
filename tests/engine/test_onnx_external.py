"""ONNX external data: read only from the model's own folder, listed, hashed into the model's identity, trusted."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import ModelError, UnsafeModelError, UntrustedModelError
from engine.hashing import sha256_bytes
from engine.models import OnnxModel, inspect_model, load_model
from engine.models.onnx_adapter import ExternalData, model_identity, onnx_identity, read_onnx_files

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

WEIGHTS = np.array([[1.5], [-2.0], [0.25]], dtype=np.float32)
BIAS = np.array([0.5], dtype=np.float32)


def _external(tensor: TensorProto, location: str, offset: int = 0, length: int | None = None) -> None:
    """Make ``tensor`` keep its data at ``location`` (the bytes are written by the caller)."""
    raw = tensor.raw_data
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length or len(raw)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def _linear_graph(initializers: list[TensorProto], nodes: list | None = None) -> onnx.ModelProto:
    """``Y = X @ W + B`` for three float inputs, one output."""
    nodes = (nodes or []) + [
        helper.make_node("MatMul", ["X", "W"], ["XW"]),
        helper.make_node("Add", ["XW", "B"], ["Y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _write_model(
    folder: Path, *, location: str = "weights.bin", data_file: Path | None = None, name: str = "linear.onnx"
) -> Path:
    """A model whose W and B live in one data file (``data_file``, default ``folder / location``)."""
    folder.mkdir(parents=True, exist_ok=True)
    w = numpy_helper.from_array(WEIGHTS, name="W")
    b = numpy_helper.from_array(BIAS, name="B")
    blob = w.raw_data + b.raw_data
    _external(w, location, 0, len(w.raw_data))
    _external(b, location, len(blob) - len(b.raw_data), len(b.raw_data))
    (data_file or folder / location).write_bytes(blob)
    path = folder / name
    path.write_bytes(_linear_graph([w, b]).SerializeToString())
    return path


def _rows() -> pd.DataFrame:
    return pd.DataFrame(np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]]), columns=["x0", "x1", "x2"])


def _expected() -> np.ndarray:
    return (_rows().to_numpy(np.float32) @ WEIGHTS + BIAS)[:, 0].astype(np.float64)


# ---------------------------------------------------------------------------
# Identity, listing and trust
# ---------------------------------------------------------------------------


def test_external_data_is_listed_hashed_into_the_identity_and_needs_trust(tmp_path: Path) -> None:
    path = _write_model(tmp_path / "model")
    file_sha = sha256_bytes(path.read_bytes())
    data_sha = sha256_bytes((tmp_path / "model" / "weights.bin").read_bytes())

    inspection = inspect_model(path)
    identity = onnx_identity(file_sha, [ExternalData("weights.bin", path, 16, data_sha, ("W", "B"))])
    assert inspection.sha256 == identity != file_sha
    assert inspection.needs_trust and not inspection.refused
    text = inspection.to_text()
    assert f"SHA-256:  {identity}" in text and f"Model file SHA-256: {file_sha}" in text
    assert f"  weights.bin  16 bytes  SHA-256 {data_sha}  (2 tensors)" in text
    assert text.rstrip().endswith(f"with --trust-model {identity}")

    with pytest.raises(UntrustedModelError) as err:
        load_model(path)
    assert str(err.value) == (
        f"linear.onnx reads tensor data from 1 other file in its folder (weights.bin); trust this model and its "
        f"data with --trust-model {identity} only if you trust their source."
    )
    assert err.value.exit_code == 3 and err.value.sha256 == identity
    with pytest.raises(UntrustedModelError):  # the model file's own hash does not cover the data
        load_model(path, trusted_sha256=[file_sha])

    model = load_model(path, trusted_sha256=[identity], granted_by="api")
    assert isinstance(model, OnnxModel)
    assert model.sha256 == identity  # what provenance records
    assert model.trust.required and model.trust.sha256 == identity and model.trust.granted_by == "api"
    assert model.trust.imports == ("external data: weights.bin",)
    np.testing.assert_allclose(model.predict(_rows()), _expected(), rtol=1e-6)


def test_changed_data_file_changes_the_identity_so_old_trust_no_longer_loads(tmp_path: Path) -> None:
    path = _write_model(tmp_path)
    identity = inspect_model(path).sha256
    data = tmp_path / "weights.bin"
    blob = bytearray(data.read_bytes())
    blob[0] ^= 0xFF
    data.write_bytes(bytes(blob))
    assert inspect_model(path).sha256 != identity
    with pytest.raises(UntrustedModelError):
        load_model(path, trusted_sha256=[identity])


def test_data_is_read_from_the_models_folder_never_the_current_one(tmp_path: Path, monkeypatch) -> None:
    path = _write_model(tmp_path / "model")
    identity = inspect_model(path).sha256
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "weights.bin").write_bytes(np.zeros(4, dtype=np.float32).tobytes())  # a decoy
    monkeypatch.chdir(elsewhere)
    model = load_model(path.resolve(), trusted_sha256=[identity])
    np.testing.assert_allclose(model.predict(_rows()), _expected(), rtol=1e-6)


def test_model_without_external_data_keeps_its_file_hash_and_needs_no_trust(tmp_path: Path) -> None:
    w = numpy_helper.from_array(WEIGHTS, name="W")
    b = numpy_helper.from_array(BIAS, name="B")
    path = tmp_path / "inline.onnx"
    path.write_bytes(_linear_graph([w, b]).SerializeToString())
    inspection = inspect_model(path)
    assert inspection.sha256 == sha256_bytes(path.read_bytes()) == model_identity(path)
    assert not inspection.needs_trust and "External data" not in inspection.to_text()
    model = load_model(path)
    assert not model.trust.required and model.sha256 == inspection.sha256


# ---------------------------------------------------------------------------
# Only the model's own folder
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "../secret.bin",
        "sub/../../secret.bin",
        "/etc/hostname",
        "C:/secret.bin",
        "sub\\..\\..\\secret.bin",
        "*/_ORT_MEM_ADDR_/*",
    ],
)
def test_locations_outside_the_models_folder_are_refused_even_when_trusted(tmp_path: Path, location: str) -> None:
    folder = tmp_path / "model"
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 16)
    path = _write_model(folder, location=location, data_file=tmp_path / "secret.bin")
    with pytest.raises(ModelError) as err:
        inspect_model(path)
    if location.startswith("*"):  # names no file there
        assert str(err.value) == (
            f"linear.onnx reads tensor data from {location!r}, which does not exist in the model's folder."
        )
    else:
        assert isinstance(err.value, UnsafeModelError) and err.value.exit_code == 3
        assert str(err.value) == (
            f"linear.onnx is refused: it reads tensor data from {location!r}, which is not a file in the model's "
            "own folder; Probity reads external data only from there."
        )
    with pytest.raises(ModelError) as again:
        load_model(path, trusted_sha256=[sha256_bytes(path.read_bytes())])
    assert str(again.value) == str(err.value)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_links_may_not_lead_out_of_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    folder = tmp_path / "model"
    path = _write_model(folder, location="weights.bin", data_file=outside)
    (folder / "weights.bin").symlink_to(outside)
    with pytest.raises(UnsafeModelError, match="'weights.bin', which is not a file in the model's own folder"):
        load_model(path)

    # A link that stays inside the folder is the folder's own file.
    inside = tmp_path / "inside"
    path = _write_model(inside, location="weights.bin", data_file=inside / "real.bin")
    (inside / "weights.bin").symlink_to(inside / "real.bin")
    identity = inspect_model(path).sha256
    np.testing.assert_allclose(load_model(path, trusted_sha256=[identity]).predict(_rows()), _expected(), rtol=1e-6)


def test_missing_or_short_data_files_are_clear_errors(tmp_path: Path) -> None:
    path = _write_model(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 14)  # W fits, B (bytes 12 to 16) does not
    with pytest.raises(ModelError) as err:
        inspect_model(path)
    assert str(err.value) == "linear.onnx reads the tensor B from bytes 12 to 16 of 'weights.bin', which has only 14."
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(ModelError) as err:
        load_model(path)
    assert str(err.value) == (
        "linear.onnx reads tensor data from 'weights.bin', which does not exist in the model's folder."
    )


# ---------------------------------------------------------------------------
# Tensors anywhere in the graph
# ---------------------------------------------------------------------------


def test_external_tensors_in_node_attributes_and_subgraphs_are_found(tmp_path: Path) -> None:
    w = numpy_helper.from_array(WEIGHTS, name="Wc")
    _external(w, "constant.bin")
    (tmp_path / "constant.bin").write_bytes(numpy_helper.from_array(WEIGHTS).raw_data)
    b = numpy_helper.from_array(BIAS, name="Bc")
    _external(b, "branch.bin")
    (tmp_path / "branch.bin").write_bytes(numpy_helper.from_array(BIAS).raw_data)
    # B comes from an If whose branches hold the (external) constant: a graph nested in an attribute.
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["Bt"], value=b)],
        "then",
        [],
        [helper.make_tensor_value_info("Bt", TensorProto.FLOAT, [1])],
    )
    other = helper.make_graph(
        [helper.make_node("Constant", [], ["Be"], value=numpy_helper.from_array(BIAS, "Be"))],
        "else",
        [],
        [helper.make_tensor_value_info("Be", TensorProto.FLOAT, [1])],
    )
    yes = numpy_helper.from_array(np.array(True), name="yes")
    nodes = [
        helper.make_node("Constant", [], ["W"], value=w),
        helper.make_node("If", ["yes"], ["B"], then_branch=branch, else_branch=other),
    ]
    path = tmp_path / "nested.onnx"
    path.write_bytes(_linear_graph([yes], nodes).SerializeToString())

    files = read_onnx_files(path.read_bytes(), path=path)
    assert [(e.location, e.tensors) for e in files.external] == [("branch.bin", ("Bc",)), ("constant.bin", ("Wc",))]
    assert "  constant.bin  12 bytes" in inspect_model(path).to_text()
    with pytest.raises(UntrustedModelError):
        load_model(path)
    model = load_model(path, trusted_sha256=[files.identity])
    np.testing.assert_allclose(model.predict(_rows()), _expected(), rtol=1e-6)


# ---------------------------------------------------------------------------
# The recorded identity is what verify and the manifest compare
# ---------------------------------------------------------------------------


def test_verify_and_manifest_compare_the_identity_that_covers_the_data(tmp_path: Path) -> None:
    from engine.manifest import file_entry
    from engine.verify import check_input_files

    path = _write_model(tmp_path / "model")
    identity = inspect_model(path).sha256
    table = tmp_path / "table.csv"
    _rows().to_csv(table, index=False)
    assert file_entry("model", path)["sha256"] == identity
    document = {"provenance": {"data_sha256": sha256_bytes(table.read_bytes()), "model_sha256": identity}}
    assert check_input_files(document, data=table, model=path) == []
    (tmp_path / "model" / "weights.bin").write_bytes(np.zeros(4, dtype=np.float32).tobytes())
    differences = check_input_files(document, data=table, model=path)
    assert len(differences) == 1 and differences[0].startswith(f"model SHA-256 differs: report has {identity}")


def test_probe_loads_the_trusted_model_and_its_data_in_the_child(tmp_path: Path) -> None:
    from engine.models import probe

    path = _write_model(tmp_path / "model")
    model = load_model(path, trusted_sha256=[inspect_model(path).sha256])
    probe.probe_model(model, rows=_rows())
    assert probe._OUTCOMES[model.sha256] is None


def test_a_graph_may_not_read_its_own_file_as_data(tmp_path: Path) -> None:
    path = _write_model(tmp_path, location="linear.onnx", data_file=tmp_path / "unused.bin")
    with pytest.raises(ModelError) as err:
        inspect_model(path)
    assert str(err.value) == (
        "linear.onnx reads tensor data from itself ('linear.onnx'), which Probity does not support."
    )
