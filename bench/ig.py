"""Integrated Gradients: Probity's batched run_ig against captum, side by side in one process.

Run ``python -m bench.ig`` (``--help`` for options).  A torch MLP
(30 → 64 → 64 → 2, ReLU, float64) explains 1000 rows with 50 Gauss–Legendre
steps from a zero baseline.  Both implementations are warmed up once, then
run alternately (``--repeats`` times each, the first one alternating too); the
table gives medians and min–max of wall time.  Probity's time is the whole
analysis (data frame to tensor, chunks, result object and provenance);
captum's is ``IntegratedGradients.attribute`` on a ready tensor with its
default ``internal_batch_size`` (all steps in one pass).  The two must agree
to 1e-6; the exit status is 1 when they do not.

On a machine whose cores are busy with other work, pass ``--threads 1``:
torch's default of one thread per core then oversubscribes the cores and
the batched kernels (not captum's per-output Python overhead) pay for it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

TOLERANCE = 1e-6
TARGET_SPEEDUP = 10.0


def _mlp(sizes: Sequence[int], seed: int) -> Any:
    """A float64 ReLU MLP whose weights come from a seeded numpy Generator (no global torch RNG)."""
    import torch

    rng = np.random.default_rng(seed)
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        # skip_init: no default initialisation, so torch's global generator is never drawn from.
        layer = torch.nn.utils.skip_init(torch.nn.Linear, a, b, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(rng.normal(0.0, np.sqrt(2.0 / a), (b, a))))
            layer.bias.copy_(torch.from_numpy(rng.normal(0.0, 0.1, b)))
        layers.append(layer)
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _time(fn: Callable[[], Any], sync: Callable[[], None]) -> tuple[float, Any]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ig", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each implementation (at least 5)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--batch-rows", type=int, default=256, help="run_ig's batch_rows")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")

    import pandas as pd
    import torch
    from captum.attr import IntegratedGradients

    from engine.device import choose_device, configure_threads, device_description
    from engine.errors import ProbityError
    from engine.explain.gradients import run_ig
    from engine.inputs import AuditInputs
    from engine.jobs import JobContext
    from engine.models.torch_adapter import TorchModel
    from engine.schema import Roles

    try:
        if args.threads is not None:
            configure_threads(args.threads)
        device = choose_device(args.device)
    except ProbityError as exc:
        print(exc)
        return 2
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    columns = tuple(f"f{j}" for j in range(args.features))
    module = _mlp((args.features, 64, 64, 2), seed=0)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(0.0, 1.0, (args.rows, args.features)), columns=list(columns))
    model = TorchModel(module, input_columns=columns, task="classification", classes=(0, 1), device=device)
    inputs = AuditInputs(frame=frame, roles=Roles(target=None, features=columns), model=model)

    captum_module = model.module_for(device, torch.float64)
    x = torch.tensor(frame.to_numpy(), dtype=torch.float64, device=device)
    zeros = torch.zeros_like(x)
    ig = IntegratedGradients(captum_module)

    def ours() -> np.ndarray:
        result = run_ig(
            inputs,
            ctx=JobContext(seed=0),
            n_steps=args.steps,
            baseline="zeros",
            method="gausslegendre",
            klass=1,
            dtype="float64",
            device=device,
            batch_rows=args.batch_rows,
        )
        return np.asarray(result.values)

    def theirs() -> np.ndarray:
        out = ig.attribute(x, baselines=zeros, target=1, n_steps=args.steps, method="gausslegendre")
        return out.detach().cpu().numpy()

    runners = {"probity run_ig": ours, "captum IntegratedGradients": theirs}
    outputs = {name: fn() for name, fn in runners.items()}  # warm-up (allocator, caches, lazy init)
    times: dict[str, list[float]] = {name: [] for name in runners}
    order = list(runners)
    for i in range(args.repeats):
        for name in order if i % 2 == 0 else order[::-1]:
            seconds, outputs[name] = _time(runners[name], sync)
            times[name].append(seconds)

    diff = float(np.abs(outputs["probity run_ig"] - outputs["captum IntegratedGradients"]).max())
    med = {name: statistics.median(t) for name, t in times.items()}
    ratio = med["captum IntegratedGradients"] / med["probity run_ig"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    print(f"## Integrated Gradients, {args.rows} rows x {args.steps} steps, MLP {args.features}-64-64-2 (float64)\n")
    print(
        f"Device: {device_description(device)}; torch {torch.__version__}; "
        f"captum {_version('captum')}; Python {platform.python_version()}; "
        f"{args.repeats} alternating runs each after one warm-up; 1-min load average {load:.2f}.\n"
    )
    print("| implementation | median (s) | min–max (s) | rows/s (median) |")
    print("|---|---:|---:|---:|")
    for name, t in times.items():
        print(f"| {name} | {med[name]:.4f} | {min(t):.4f}–{max(t):.4f} | {args.rows / med[name]:,.0f} |")
    print()
    print(
        f"Speed-up (captum median / Probity median): **{ratio:.1f}x** (target ≥ {TARGET_SPEEDUP:.0f}x: "
        f"{'met' if ratio >= TARGET_SPEEDUP else 'NOT met'})."
    )
    print(
        f"Max |difference| of attributions: {diff:.2e} (tolerance {TOLERANCE:.0e}: "
        f"{'ok' if diff <= TOLERANCE else 'FAILED'})."
    )
    return 0 if diff <= TOLERANCE else 1


def _version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
