"""``load_table`` against ``pandas.read_csv`` on a large numeric + string CSV, in one process.

``python -m bench.csv_load [--rows 1000000] [--cols 30]`` writes one CSV into a
temporary folder from a seeded generator: 40 % float columns (4 decimals, one
with 1 % missing), 30 % integer columns of varying width and 30 % string
category columns.  After a warm-up of each, the two readers run alternately
``--repeats`` times (default 5).  ``load_table`` does the whole intake: dialect
sniffing, the parse, leading-zero checks, the schema (missing and distinct
counts of every column) and the file's SHA-256; ``pandas.read_csv`` only parses.

The table gives wall-clock medians and min–max, and the median CPU time of all
the process's threads (less sensitive to other work on the machine, which the
printed load average reports); the exit status is 1 when the wall-clock median
of ``load_table`` exceeds ``--limit`` seconds (2.0 by default).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

LIMIT_SECONDS = 2.0
_CATEGORIES = np.array(
    ["north", "south", "east", "west", "centre", "salaried", "contract", "retired", "student", "unknown"]
)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.csv_load", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="data rows (default 1,000,000)")
    p.add_argument("--cols", type=int, default=30, help="columns (default 30)")
    p.add_argument("--repeats", type=int, default=5, help="timed loads of each reader (default 5)")
    p.add_argument("--seed", type=int, default=20240917, help="seed of the data generator")
    p.add_argument("--limit", type=float, default=LIMIT_SECONDS, help="max median seconds of load_table")
    return p.parse_args(argv)


def write_csv(path: Path, *, rows: int, cols: int, seed: int) -> None:
    """Write the benchmark table: floats, integers and string categories, from ``seed``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    n_float = max(1, round(cols * 0.4))
    n_int = max(0, round(cols * 0.3))
    n_str = max(0, cols - n_float - n_int)
    arrays: dict[str, pa.Array] = {}
    for j in range(n_float):
        values = np.round(rng.normal(0.0, 10.0 ** (j % 4 + 1), rows), 4)
        mask = rng.random(rows) < 0.01 if j == 0 else None
        arrays[f"x{j}"] = pa.array(values, mask=mask)
    for j in range(n_int):
        arrays[f"n{j}"] = pa.array(rng.integers(0, 10 ** (j % 5 + 2), rows))
    for j in range(n_str):
        labels = _CATEGORIES[: 3 + j % 8]
        arrays[f"s{j}"] = pa.array(labels[rng.integers(0, labels.size, rows)])
    table = pa.table(arrays)
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="none"))


def _time(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all the process's threads) of one call."""
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    result = fn()
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    del result
    return elapsed, used


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    import pandas as pd

    from engine.data import load_table

    with tempfile.TemporaryDirectory(prefix="probity-bench-") as folder:
        path = Path(folder) / "bench.csv"
        start = time.perf_counter()
        write_csv(path, rows=args.rows, cols=args.cols, seed=args.seed)
        size_mb = path.stat().st_size / 1e6
        print(
            f"wrote {args.rows:,} rows x {args.cols} columns ({size_mb:.0f} MB) in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"pandas {pd.__version__}",
            flush=True,
        )

        readers: dict[str, Callable[[], object]] = {
            "load_table": lambda: load_table(path),
            "pandas.read_csv": lambda: pd.read_csv(path),
        }
        dataset = load_table(path)  # warm-up, and a check that the intake is right
        assert dataset.frame.shape == (args.rows, args.cols), dataset.frame.shape
        del dataset
        _time(readers["pandas.read_csv"])
        times: dict[str, list[float]] = {name: [] for name in readers}
        cpu: dict[str, list[float]] = {name: [] for name in readers}
        for repeat in range(args.repeats):
            order = list(readers) if repeat % 2 == 0 else list(reversed(readers))
            for name in order:
                wall, used = _time(readers[name])
                times[name].append(wall)
                cpu[name].append(used)

    # Other work on the machine slows both readers; the load average says how busy it was.
    print(f"load average (1, 5, 15 min) after the runs: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    medians = {name: float(np.median(values)) for name, values in times.items()}
    print(f"\n{'reader':<18}{'median s':>10}{'min–max s':>16}{'median CPU s':>15}")
    for name, values in times.items():
        print(
            f"{name:<18}{medians[name]:>10.3f}{min(values):>9.3f}–{max(values):.3f}{float(np.median(cpu[name])):>12.3f}"
        )
    ratio = medians["pandas.read_csv"] / medians["load_table"]
    print(f"\nload_table is {ratio:.2f}x the speed of pandas.read_csv (median ratio)")
    ok = medians["load_table"] <= args.limit
    verdict = "within" if ok else "OVER"
    print(f"load_table median {medians['load_table']:.3f} s is {verdict} the {args.limit:.1f} s limit")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
