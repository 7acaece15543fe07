"""Alternating timed runs of Probity and a peer in one process, and the table the benchmarks print."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

__all__ = ["Timings", "alternate", "print_table"]

Timings = dict[str, dict[str, list[float]]]


def alternate(cases: dict[str, Callable[[], object]], runs: int) -> Timings:
    """One warm-up of each, then ``runs`` rounds running each once, in order; wall and CPU seconds."""
    for fn in cases.values():
        fn()
    out: Timings = {name: {"wall": [], "cpu": []} for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            fn()
            out[name]["wall"].append(time.perf_counter() - started)
            out[name]["cpu"].append(time.process_time() - cpu_started)
    return out


def _fmt(times: list[float]) -> str:
    return f"{statistics.median(times):.3f} s ({min(times):.3f}–{max(times):.3f})"


def print_table(title: str, timings: Timings, *, ours: str, peer: str, load_before: float) -> None:
    """A markdown table: median (min-max) wall and CPU time, ratio of medians and the paired ratio."""
    print(
        f"{title}; {len(timings[ours]['wall'])} alternating runs after a warm-up, {os.cpu_count()} CPUs, "
        f"load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after\n"
    )
    print("| run | wall time, median (min–max) | CPU time, median (min–max) |")
    print("|---|---|---|")
    for name in (ours, peer):
        print(f"| {name} | {_fmt(timings[name]['wall'])} | {_fmt(timings[name]['cpu'])} |")
    wall = statistics.median(timings[peer]["wall"]) / statistics.median(timings[ours]["wall"])
    cpu = statistics.median(timings[peer]["cpu"]) / statistics.median(timings[ours]["cpu"])
    paired = statistics.median(p / o for p, o in zip(timings[peer]["wall"], timings[ours]["wall"]))
    print(f"\nspeed-up ({peer} / {ours}): wall {wall:.2f}x (paired {paired:.2f}x), CPU {cpu:.2f}x")
