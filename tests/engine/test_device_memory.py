"""Passes bounded by device memory, halved on running out of it, then moved to the CPU.

No GPU is needed: a module's forward raises torch's out-of-memory error for
passes above a size, and the device ``"cpu:0"`` stands in for a GPU (torch
runs it on the processor, but it is not ``"cpu"``, so the CPU fallback is a
different module copy, as a GPU's would be).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from engine import device as device_mod  # noqa: E402
from engine.explain.gradients import run_ig, run_saliency, run_smoothgrad  # noqa: E402
from engine.inputs import AuditInputs  # noqa: E402
from engine.jobs import JobContext  # noqa: E402
from engine.models import torch_adapter  # noqa: E402
from engine.models.torch_adapter import TorchModel  # noqa: E402
from engine.schema import Roles  # noqa: E402

COLUMNS = tuple(f"f{j}" for j in range(5))


class Capped(torch.nn.Module):
    """A small MLP (not an ``nn.Sequential``, so gradients go through its forward) with a memory limit.

    A pass of more than ``limit`` rows raises ``torch.OutOfMemoryError``, as a GPU
    with room for ``limit`` rows would; ``None`` is no limit.  ``sizes`` records
    every pass.
    """

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.a = torch.nn.Linear(5, 8, dtype=torch.float64)
        self.b = torch.nn.Linear(8, 3, dtype=torch.float64)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        self.limit = limit
        self.sizes: list[int] = []

    def forward(self, x):
        self.sizes.append(int(x.shape[0]))
        if self.limit is not None and x.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (a test's fake)")
        return self.b(torch.tanh(self.a(x)))


def _model(module: Capped, device: str = "cpu") -> TorchModel:
    return TorchModel(module, input_columns=COLUMNS, task="classification", classes=("a", "b", "c"), device=device)


def _frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(rng.normal(size=(n, len(COLUMNS))), columns=list(COLUMNS))


def _stand_in_gpu(monkeypatch: pytest.MonkeyPatch, module: Capped, limit: int) -> TorchModel:
    """A model on the stand-in GPU ``"cpu:0"`` whose copy there holds at most ``limit`` rows; the CPU has room."""
    monkeypatch.setattr(torch_adapter, "choose_device", lambda preference: "cpu:0")
    model = _model(module, device="cpu:0")
    on_gpu = model.module_for("cpu:0", model.dtype)
    assert on_gpu is not module  # the stand-in GPU has a copy of its own, as a GPU would
    on_gpu.limit = limit
    on_gpu.sizes = []
    return model


# -- helpers in engine.device ---------------------------------------------------------


def test_out_of_memory_is_recognised_by_its_class_or_its_words() -> None:
    assert device_mod.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory."))
    assert device_mod.is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert device_mod.is_out_of_memory(MemoryError("DefaultCPUAllocator: out of memory"))
    assert not device_mod.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not device_mod.is_out_of_memory(ValueError("out of memory"))


def test_rows_are_bounded_by_half_the_free_gpu_memory_and_fixed_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert device_mod.rows_within_memory("cpu", 1e9, 500) == 500  # the CPU: the fixed bound alone
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8_000_000, 80_000_000))
    assert device_mod.free_memory_bytes("cuda") == 8_000_000
    assert device_mod.rows_within_memory("cuda", 1000.0, 65_536) == 4000
    assert device_mod.rows_within_memory("cuda", 1000.0, 100) == 100
    assert device_mod.rows_within_memory("cuda", 1e12, 100) == 1  # never no rows at all

    def broken(device=None):
        raise RuntimeError("CUDA driver initialization failed")

    monkeypatch.setattr(torch.cuda, "mem_get_info", broken)
    assert device_mod.rows_within_memory("cuda", 1000.0, 100) == 100


def test_a_recorded_gpu_replays_on_the_cpu_where_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_mod.replay_device("cuda") == "cpu"
    assert device_mod.replay_device("cuda:1") == "cpu"
    assert device_mod.replay_device("cpu") == "cpu"
    assert device_mod.replay_device("auto") == "auto"  # as recorded: a replayed call records what the original did
    with pytest.raises(device_mod.AnalysisError):
        device_mod.replay_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert device_mod.replay_device("cuda") == "cuda"  # where the GPU exists, the recorded device


def test_a_gpu_is_described_with_its_name_and_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (12_345_000_000, 80_000_000_000))
    assert device_mod.device_description("cuda") == "CUDA: NVIDIA H100 80GB HBM3, 12.3 GB free"


# -- TorchModel.predict -----------------------------------------------------------------


def test_predict_halves_its_passes_on_running_out_of_memory_and_gives_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch_adapter, "PREDICT_BATCH_ROWS", 256)
    frame = _frame(300)
    expected = _model(Capped()).predict(frame)
    module = Capped(limit=50)
    model = _model(module)
    module.sizes.clear()
    got = model.predict(frame)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    # 256, 128 and 64 ran out; passes of 32 rows made the call.
    assert module.sizes[:3] == [256, 128, 64]
    assert set(module.sizes[3:]) == {32, 300 - 9 * 32}
    assert model.take_device_notes() == ()  # it stayed on its device: nothing to warn about
    module.sizes.clear()
    np.testing.assert_allclose(model.predict(frame), expected, rtol=0, atol=1e-15)
    assert max(module.sizes) == 32  # the next call starts from the size that fitted


def test_predict_moves_to_the_cpu_below_the_floor_and_says_so_in_the_next_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.registry import get_method

    monkeypatch.setattr(torch_adapter, "PREDICT_BATCH_ROWS", 256)
    frame = _frame(300)
    expected = _model(Capped()).predict(frame)
    module = Capped()
    model = _stand_in_gpu(monkeypatch, module, limit=device_mod.MIN_BATCH_ROWS - 1)
    on_gpu = model.module_for("cpu:0", model.dtype)
    got = model.predict(frame)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    assert on_gpu.sizes == [256, 128, 64, 32, 16]  # halved down to the floor, every pass out of memory
    assert module.sizes[1:] == [256, 300 - 256]  # then the whole call on the CPU's copy (after its shape check)
    notes = model.take_device_notes()
    assert notes == (
        "Predictions of the model TorchModel ran on the CPU after the GPU (cpu:0) ran out of memory at batch 16 "
        "(rows per pass); the numbers equal the GPU's within rounding.",
    )
    assert model.take_device_notes() == ()  # taken once

    # Through an analysis: the result made while the model fell back carries the warning.
    target = np.asarray(["a", "b", "c"], dtype=object)[np.argmax(expected, axis=1)]
    data = frame.assign(y=target)
    inputs = AuditInputs(frame=data, roles=Roles(target="y", features=COLUMNS), model=model)
    on_gpu.sizes.clear()
    result = get_method("performance")(inputs, ctx=JobContext(seed=0))
    assert on_gpu.sizes and notes[0] in result.provenance.warnings
    assert notes[0] in result.to_dict()["provenance"]["warnings"]  # and so in results.json and the report


def test_out_of_memory_on_the_cpu_itself_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.errors import ModelError

    monkeypatch.setattr(torch_adapter, "PREDICT_BATCH_ROWS", 64)
    model = _model(Capped(limit=3))
    with pytest.raises(ModelError) as err:
        model.predict(_frame(40))
    assert str(err.value).startswith("The model TorchModel ran out of memory on the CPU even at 16 rows per pass")


def test_predict_passes_are_bounded_by_the_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    module = Capped()
    model = _stand_in_gpu(monkeypatch, module, limit=10_000)
    on_gpu = model.module_for("cpu:0", model.dtype)
    per_row = model.bytes_per_row()
    free = {"cpu:0": int(per_row * 100)}  # room for 100 rows on the stand-in GPU
    monkeypatch.setattr(device_mod, "free_memory_bytes", free.get)
    expected = _model(Capped()).predict(_frame(300))
    np.testing.assert_allclose(model.predict(_frame(300)), expected, rtol=0, atol=1e-15)
    assert max(on_gpu.sizes) == 50  # half the free memory holds 50 rows


# -- gradient methods ---------------------------------------------------------------------


def _inputs(model: TorchModel, n: int = 40) -> AuditInputs:
    return AuditInputs(frame=_frame(n), roles=Roles(target=None, features=COLUMNS), model=model)


@pytest.mark.parametrize(("run", "limit"), [(run_ig, 400), (run_smoothgrad, 400), (run_saliency, 15)])
def test_gradient_passes_are_halved_on_running_out_of_memory(run, limit: int) -> None:
    plain = run(_inputs(_model(Capped())), ctx=JobContext(seed=4), dtype="float64", klass="b")
    module = Capped(limit=limit)
    capped = run(_inputs(_model(module)), ctx=JobContext(seed=4), dtype="float64", klass="b")
    # The same numbers: rows never influence each other, and SmoothGrad's noise restarts from the seed.
    np.testing.assert_allclose(capped.values, plain.values, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(capped.predictions, plain.predictions, rtol=1e-12, atol=1e-14)
    failed = [s for s in module.sizes if s > limit]
    assert len(failed) >= 2 and all(b < a / 1.9 for a, b in zip(failed, failed[1:]))  # each retry half the rows
    assert capped.provenance.parameters["device"] == "cpu"
    assert capped.provenance.parameters["batch_rows"] == plain.provenance.parameters["batch_rows"]  # as asked
    assert not any("out of memory" in w for w in capped.provenance.warnings)


def test_a_gradient_run_moves_to_the_cpu_when_one_row_does_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = run_ig(_inputs(_model(Capped())), ctx=JobContext(seed=4), dtype="float64", klass="b", n_steps=16)
    module = Capped()
    model = _stand_in_gpu(monkeypatch, module, limit=5)  # one row's 17 path points do not fit
    on_gpu = model.module_for("cpu:0", torch.float64)
    moved = run_ig(_inputs(model), ctx=JobContext(seed=4), dtype="float64", klass="b", n_steps=16)
    np.testing.assert_allclose(moved.values, plain.values, rtol=1e-12, atol=1e-14)
    tried = [s for s in on_gpu.sizes if s > 1]
    assert tried == sorted(tried, reverse=True) and tried[-1] == 16 + 1 + 1  # down to one row and the baseline
    assert moved.provenance.parameters["device"] == "cpu"
    assert (
        "Integrated Gradients attributions ran on the CPU after the GPU (cpu:0) ran out of memory at batch 1 "
        "(rows per pass); the numbers equal the GPU's within rounding." in moved.provenance.warnings
    )


def test_other_errors_are_not_taken_for_running_out_of_memory() -> None:
    class Broken(Capped):
        calls = 0

        def forward(self, x):
            if x.shape[0] > 1:
                Broken.calls += 1
                raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
            return super().forward(x)

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run_ig(_inputs(_model(Broken())), ctx=JobContext(seed=0), dtype="float64", klass="b")
    assert Broken.calls == 1  # raised as it came, not retried with smaller passes


# -- ONNX providers -------------------------------------------------------------------------


def test_onnx_runs_on_the_cuda_provider_where_it_is_installed_and_allowed() -> None:
    from engine.errors import ModelError
    from engine.models.onnx_adapter import onnx_providers

    gpu_build = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    cpu_build = ["AzureExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("auto", gpu_build) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("auto", cpu_build) == ["CPUExecutionProvider"]
    assert onnx_providers("cpu", gpu_build) == ["CPUExecutionProvider"]
    assert onnx_providers(" CUDA ", gpu_build) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cuda:1", gpu_build) == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    with pytest.raises(ModelError) as err:
        onnx_providers("cuda", cpu_build)
    assert "no CUDA provider" in str(err.value) and "onnxruntime-gpu" in str(err.value)
    with pytest.raises(ModelError):
        onnx_providers("tpu", gpu_build)


def test_the_onnx_provider_used_is_recorded_in_provenance(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from engine.models import load_model

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        initializer=[numpy_helper.from_array(np.array([[1.0], [2.0]], dtype=np.float32), name="W")],
    )
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model_proto.ir_version = 8
    path = tmp_path / "linear.onnx"
    path.write_bytes(model_proto.SerializeToString())
    asked: list[list] = []
    real_session = ort.InferenceSession

    def session(*args, providers=None, **kwargs):
        asked.append(list(providers))
        return real_session(*args, providers=["CPUExecutionProvider"], **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", session)
    model = load_model(path, device="cpu")
    assert asked == [["CPUExecutionProvider"]] and model.device == "cpu"
    assert model.trust.to_dict()["onnx"] == {"providers": ["CPUExecutionProvider"]}
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    load_model(path)  # "auto" with the CUDA provider installed asks for it first
    assert asked[-1] == ["CUDAExecutionProvider", "CPUExecutionProvider"]


# -- the audit's --device ----------------------------------------------------------------------


def test_the_audit_records_its_device_only_when_one_is_given() -> None:
    from pathlib import Path

    from engine.audit import AuditRequest

    plain = AuditRequest(data=Path("d.csv"), model=Path("m.pt"), target="y")
    assert "device" not in plain.parameters()  # an audit recorded before --device re-runs to the same record
    on_cpu = AuditRequest(data=Path("d.csv"), model=Path("m.pt"), target="y", device="cpu")
    assert on_cpu.parameters()["device"] == "cpu"
    document = {"provenance": {"parameters": on_cpu.parameters()}}
    again = AuditRequest.from_document(document, data=Path("d.csv"), model=Path("m.pt"))
    assert again.device == "cpu" and again.parameters() == on_cpu.parameters()


def test_the_cli_takes_a_known_device_only() -> None:
    from engine.cli import build_parser

    argv = ["audit", "--data", "d.csv", "--model", "m.pt", "--target", "y"]
    assert build_parser().parse_args([*argv, "--device", "cpu"]).device == "cpu"
    assert build_parser().parse_args(argv).device is None
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--device", "tpu"])


def test_auto_means_the_audits_device_inside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from engine.audit import AuditRequest

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU "auto" would take
    assert device_mod.choose_device("auto") == "cuda"
    with device_mod.preferred_device("cpu"):
        assert device_mod.choose_device("auto") == "cpu"
        assert device_mod.choose_device("cuda") == "cuda"  # an explicit choice stays explicit
    assert device_mod.choose_device("auto") == "cuda"

    seen: list[str] = []

    @device_mod.following_request_device
    def run(request, ctx=None):
        seen.append(device_mod.choose_device("auto"))

    run(AuditRequest(data=Path("d"), model=Path("m"), target="y", device="cpu"))
    run(AuditRequest(data=Path("d"), model=Path("m"), target="y"))
    with device_mod.preferred_device("cpu"):  # verify's replay: its device wins over the recorded one
        run(AuditRequest(data=Path("d"), model=Path("m"), target="y", device="cuda"))
    assert seen == ["cpu", "cuda", "cpu"]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(device_mod.AnalysisError, match="no CUDA device"):
        with device_mod.preferred_device("cuda"):  # refused before any work
            pytest.fail("ran without the GPU it was asked for")


def test_gradient_methods_follow_the_audits_device_over_the_models(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _stand_in_gpu(monkeypatch, Capped(), limit=10_000)
    on_model = run_saliency(_inputs(model), ctx=JobContext(seed=0), dtype="float64", klass="b")
    assert on_model.provenance.parameters["device"] == "cpu:0"  # "auto" on a torch model: the model's device
    with device_mod.preferred_device("cpu"):
        on_cpu = run_saliency(_inputs(model), ctx=JobContext(seed=0), dtype="float64", klass="b")
    assert on_cpu.provenance.parameters["device"] == "cpu"
    np.testing.assert_allclose(on_cpu.values, on_model.values, rtol=1e-12, atol=1e-14)


def test_a_result_recorded_on_a_missing_gpu_is_rerun_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from engine.files import json_bytes
    from engine.registry import get_method
    from engine.rerun import replay

    inputs = _inputs(_model(Capped()))
    made = get_method("saliency")(inputs, ctx=JobContext(seed=2), rows=[0, 1, 2], device="cpu", dtype="float64")
    call = json.loads(json_bytes(made.to_dict()))["provenance"]["call"]
    call["parameters"]["device"] = "cuda"  # as a GPU machine records it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    again = replay(inputs, call, seed=2, ctx=JobContext())
    assert again.provenance.parameters["device"] == "cpu"
    np.testing.assert_array_equal(again.values, made.values)


def test_audit_device_cpu_keeps_every_analysis_off_a_gpu_torch_sees(tmp_path, monkeypatch, capsys) -> None:
    """With a GPU "seen", ``--device cpu`` runs the torch model and its gradient methods on the CPU, and says so."""
    import json

    from engine.cli import main
    from engine.models.torch_files import sidecar_of

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    path = tmp_path / "clf.pt"
    torch.jit.script(net).save(path)
    sidecar_of(path).write_text(json.dumps({"features": list(COLUMNS), "classes": [0, 1]}))
    frame = _frame(60)
    with torch.no_grad():
        frame["y"] = net(torch.as_tensor(frame.to_numpy().copy(), dtype=torch.float32)).argmax(dim=1).numpy()
    frame.to_csv(tmp_path / "d.csv", index=False)
    # torch "sees" a GPU that is not there: anything left to "auto" outside the audit's device would fail on it.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_mod, "_cuda_possible", lambda: True)
    argv = ["audit", "--data", str(tmp_path / "d.csv"), "--model", str(path), "--target", "y", "--no-report"]
    out = tmp_path / "audit"
    assert main([*argv, "--out", str(out), "--device", "cpu", "--explain-rows", "0-2"]) == 0, capsys.readouterr().err
    doc = json.loads((out / "results.json").read_text())
    assert doc["provenance"]["parameters"]["device"] == "cpu"
    assert doc["provenance"]["model_trust"]["torch"]["device"] == "cpu"
    assert doc["results"]["ig"]["provenance"]["parameters"]["device"] == "cpu"
    assert "--device" in doc["provenance"]["command"]
