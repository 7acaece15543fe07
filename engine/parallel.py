"""Chunks of work executed through joblib, so the same chunks could go to a cluster later.

Model calls dominate model-agnostic explainers.  By default the chunks run one
at a time: measured on the 2-core reference machine (docs/benchmarks.md), two
threads calling a scikit-learn RandomForest's predict_proba were slower than
one (its per-tree Python loop holds the GIL) and doubled the CPU time.  Models
that release the GIL for the whole call (onnxruntime, torch) can use more
workers through ``$PROBITY_THREADS`` or ``n_jobs``; while chunks run in
parallel, BLAS/OpenMP pools are limited to one thread each so the workers do
not oversubscribe the cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from engine.errors import Cancelled
from engine.jobs import JobContext

__all__ = ["worker_count", "map_chunks"]

T = TypeVar("T")
R = TypeVar("R")


def worker_count(requested: int | None = None) -> int:
    """Workers to use: ``requested``, else ``$PROBITY_THREADS``, else the cores this process may run on."""
    if requested is not None and requested > 0:
        return int(requested)
    env = os.environ.get("PROBITY_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    from engine.device import available_cores

    return available_cores()


def _chunk_workers(requested: int | None) -> int:
    """Workers for model-call chunks: ``requested``, else ``$PROBITY_THREADS``, else one (see module doc)."""
    if requested is not None and requested > 0:
        return int(requested)
    env = os.environ.get("PROBITY_THREADS", "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else 1


def map_chunks(
    fn: Callable[[T], R],
    chunks: Sequence[T],
    *,
    ctx: JobContext | None = None,
    n_jobs: int | None = None,
) -> Iterator[R]:
    """Yield ``fn(chunk)`` for each chunk, in order, running up to ``n_jobs`` at once
    (default: ``$PROBITY_THREADS``, else one at a time).

    Cancellation is checked before each chunk starts; a cancelled job raises
    :class:`~engine.errors.Cancelled` from the iterator and starts no new chunk.
    ``fn`` must not mutate shared state (each chunk writes only its own output).
    """
    workers = min(_chunk_workers(n_jobs), len(chunks))

    def run(chunk: T) -> R:
        if ctx is not None and ctx.cancelled:
            raise Cancelled()
        return fn(chunk)

    if workers <= 1:
        for chunk in chunks:
            yield run(chunk)
        return

    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        parallel = Parallel(n_jobs=workers, backend="threading", return_as="generator")
        yield from parallel(delayed(run)(chunk) for chunk in chunks)
