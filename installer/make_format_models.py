"""Small models in every native format, for `make installer-test` to open with the installed `probity`.

    build/venv-FLAVOUR/bin/python installer/make_format_models.py OUTDIR

Writes OUTDIR/formats.csv and one model per library, each trained here on that table: an XGBoost .json,
a LightGBM .txt, a CatBoost .cbm and a TorchScript network with its sidecar. The installer test explains
each with the bundled program, so a native library missing from the bundle fails the test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["income", "debt", "age"]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    frame.loc[::11, "debt"] = np.nan
    frame["approved"] = (frame["income"] - 0.5 * frame["debt"].fillna(0) > 0).astype(int)
    frame.to_csv(out / "formats.csv", index=False)
    X, y = frame[FEATURES], frame["approved"].to_numpy()

    import xgboost as xgb

    xgb.train({"objective": "binary:logistic", "max_depth": 3, "seed": 0}, xgb.DMatrix(X, label=y), 8).save_model(
        out / "model_xgb.json"
    )

    import lightgbm as lgb

    params = {"objective": "binary", "num_leaves": 7, "verbosity": -1, "seed": 0}
    lgb.train(params, lgb.Dataset(X, label=y), 8).save_model(out / "model_lgb.txt")

    import catboost as cb

    cat = cb.CatBoostClassifier(iterations=10, depth=3, random_seed=0, verbose=False, allow_writing_files=False)
    cat.fit(X, y).save_model(str(out / "model_cat.cbm"))

    import torch

    generator = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
    torch.jit.script(net).save(str(out / "model_net.pt"))
    sidecar = {"features": FEATURES, "task": "classification", "classes": [0, 1], "output": "logits"}
    (out / "model_net.features.json").write_text(json.dumps(sidecar))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
