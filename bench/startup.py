"""What each ``probity`` command costs before any work: start-up, measured as whole processes.

``python -m bench.startup [--runs 7]`` runs each command ``--runs`` times after one warm-up
(so the operating system's file cache is warm, as on a user's second run) and prints the median
and min–max wall time, the targets of issue #11, and whether the command imported torch (it must
not, unless a torch model or a gradient method needs it).  Commands run on the built-in demo.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cases(demo: Path, out: Path) -> list[tuple[str, list[str], float | None]]:
    model, data = str(demo / "credit_model.skops"), str(demo / "credit.csv")
    return [
        ("probity --version", ["--version"], 0.3),
        ("probity inspect-model (skops)", ["inspect-model", model], 1.5),
        (
            "probity explain lime, 5 rows (skops)",
            [
                "--progress",
                "none",
                "explain",
                "lime",
                "--data",
                data,
                "--model",
                model,
                "--target",
                "approved",
                "--rows",
                "first:5",
                "--out",
                str(out / "lime.json"),
            ],
            None,
        ),
    ]


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        check=True,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _imports_torch(args: list[str], env: dict[str, str]) -> bool:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "engine.cli", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    return any(line.rstrip().endswith("| torch") for line in proc.stderr.splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (default 7)")
    args = parser.parse_args(argv)
    from engine.demo import ensure_demo

    demo = Path(ensure_demo().data).parent
    # As installed: compiled modules are cached (pip and the bundle write them), whatever this shell says.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PROBITY_LOG_DIR"] = tempfile.mkdtemp(prefix="probity-bench-")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print("| command | median s (min–max) | target | torch imported |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for title, cmd, target in _cases(demo, Path(tmp)):
            _run(cmd, env)  # warm-up
            times = [_run(cmd, env) for _ in range(args.runs)]
            shown = f"{statistics.median(times):.2f} ({min(times):.2f}–{max(times):.2f})"
            goal = "—" if target is None else f"≤ {target} s"
            print(f"| {title} | {shown} | {goal} | {'yes' if _imports_torch(cmd, env) else 'no'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
