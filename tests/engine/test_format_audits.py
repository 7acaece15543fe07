"""`probity audit` with its PDF, then `probity verify`, on every model format an auditor is handed (issue #13).

Each model is trained here on one small credit table: XGBoost .json and .ubj, LightGBM .txt, CatBoost .cbm,
a pickled XGBClassifier Pipeline (trusted), and a torch network as TorchScript, as a torch.export .pt2, as a
state dict with its architecture and as .safetensors with its architecture.  Every audit writes a report
whose SHAP section is the exact algorithm for the format (TreeSHAP for the trees, in their margin space; the
networks get Integrated Gradients and the network views as well), and verify re-runs it to the same numbers.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.hashing import sha256_file

FEATURES = ["income", "debt", "age"]


def _frame(n: int = 240, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    frame["approved"] = (frame["income"] - 0.7 * frame["debt"] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return frame


def _pdf_text(path: Path) -> str | None:
    """The report's text (poppler's pdftotext), or ``None`` where it is not installed."""
    if shutil.which("pdftotext") is None:
        return None
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """The format by its specification: u64 header length, JSON header, raw little-endian float32 data."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    frame = _frame()
    (folder / "credit.csv").write_text(frame.to_csv(index=False))
    X, y = frame[FEATURES], frame["approved"].to_numpy()
    out: dict[str, Path] = {"data": folder / "credit.csv"}

    import xgboost as xgb

    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 0, "nthread": 1}, xgb.DMatrix(X, label=y), 8
    )
    for suffix in (".json", ".ubj"):
        out[f"xgboost{suffix}"] = folder / f"xgb{suffix}"
        booster.save_model(out[f"xgboost{suffix}"])

    import lightgbm as lgb

    lgbm = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbosity": -1, "seed": 0, "num_threads": 1}, lgb.Dataset(X, y), 8
    )
    out["lightgbm"] = folder / "lgb.txt"
    lgbm.save_model(out["lightgbm"])

    import catboost as cb

    cat = cb.CatBoostClassifier(
        iterations=10, depth=3, random_seed=0, thread_count=1, verbose=False, allow_writing_files=False
    )
    cat.fit(X, y)
    out["catboost"] = folder / "cat.cbm"
    cat.save_model(str(out["catboost"]))

    import joblib
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1))
    out["pickled wrapper"] = folder / "xgb_pipeline.joblib"
    joblib.dump(pipeline.fit(X, y), out["pickled wrapper"])

    import torch

    def network(seed: int) -> torch.nn.Module:
        generator = torch.Generator().manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).eval()
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=generator))
        return net

    trained = network(1)
    declared = {"features": FEATURES, "task": "classification", "classes": [0, 1], "output": "logits"}

    def sidecar(model: Path, **extra: str) -> None:
        model.with_name(model.stem + ".features.json").write_text(json.dumps({**declared, **extra}))

    out["torchscript"] = folder / "net.pt"
    torch.jit.script(trained).save(str(out["torchscript"]))
    sidecar(out["torchscript"])
    out["torch.export"] = folder / "net_export.pt2"
    batch = torch.export.Dim("batch")
    torch.export.save(
        torch.export.export(trained, (torch.zeros(4, 3),), dynamic_shapes=({0: batch},)), out["torch.export"]
    )
    sidecar(out["torch.export"])
    torch.jit.script(network(2)).save(str(folder / "shape.ts"))  # the architecture, other weights
    out["state dict"] = folder / "weights.pth"
    torch.save(trained.state_dict(), out["state dict"])
    sidecar(out["state dict"], architecture="shape.ts")
    out["safetensors"] = folder / "weights.safetensors"
    _write_safetensors(out["safetensors"], {k: v.numpy() for k, v in trained.state_dict().items()})
    sidecar(out["safetensors"], architecture="shape.ts")
    return out


TREES = ["xgboost.json", "xgboost.ubj", "lightgbm", "catboost", "pickled wrapper"]
NETWORKS = ["torchscript", "torch.export", "state dict", "safetensors"]


@pytest.mark.parametrize("kind", TREES + NETWORKS)
def test_an_audit_of_each_format_writes_its_report_and_verifies(made, kind, tmp_path: Path, capsys) -> None:
    model = made[kind]
    trust = ["--trust-model", sha256_file(model)] if kind == "pickled wrapper" else []
    inputs = ["--data", str(made["data"]), "--model", str(model), *trust]
    out = tmp_path / "audit"
    argv = ["--progress", "none", "audit", *inputs, "--target", "approved", "--n-repeats", "2", "--lime-samples", "300"]
    assert main([*argv, "--explain-rows", "0-2", "--out", str(out)]) == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())["results"]
    text = _pdf_text(out / "report.pdf")
    if kind in TREES:
        # The exact algorithm for trees; a booster read from its own file is explained in its margin space.
        assert results["shap"]["method"] == "treeshap"
        assert "ig" not in results and "network" not in results
    else:
        assert results["ig"]["method"] == "ig" and "network" in results
        assert "mean |IG|" in results["agreement"]["methods"]
        assert text is None or "Network views" in text
    assert text is None or ("Permutation importance" in text and "Local explanations" in text)
    capsys.readouterr()
    assert main(["--progress", "none", "verify", str(out / "report.pdf"), *inputs]) == 0, capsys.readouterr().err
