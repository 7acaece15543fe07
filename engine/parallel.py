"""Chunks of work executed through joblib, so the same chunks could go to a cluster later.

Model calls dominate model-agnostic explainers.  By default the chunks run on
the cores that are free when the work starts (:func:`engine.device.free_cores`:
the cores less the other tasks running at that moment).  Measured on the 2-core
reference machine (docs/benchmarks.md): with both cores free, two threads made
KernelSHAP's calls to a scikit-learn RandomForest 1.65x faster (tree traversal
releases the GIL once calls hold ~100k rows); with the other core busy, a
second thread only fought the other work and doubled the CPU time, so it is
not started then.  ``$PROBITY_THREADS`` or ``n_jobs`` fix the count.  BLAS and
OpenMP pools get their share of those cores while the chunks run (one thread
each while two workers run, one in all on a machine with one free core), so a
model's own threads do not oversubscribe them either.  How many workers a job
gets is decided in one place, :func:`job_threads` (here, on the ground floor, so the data readers use it too);
this module runs the chunks.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from engine.errors import Cancelled
from engine.jobs import JobContext

__all__ = ["job_threads", "job_threads_later", "worker_count", "chunk_workers", "even_spans", "map_chunks"]

T = TypeVar("T")
R = TypeVar("R")


def job_threads(requested: int | None = None, *, limit: int | None = None) -> int:
    """Threads one job may use: ``requested`` when positive, else ``$PROBITY_THREADS``, else the free cores.

    Never more than ``limit`` (when given) and never fewer than one.
    """
    if requested is not None and requested > 0:
        n = int(requested)
    else:
        env = os.environ.get("PROBITY_THREADS", "").strip()
        if env.isdigit() and int(env) > 0:
            n = int(env)
        else:
            from engine import device

            n = device.free_cores()
    if limit is not None:
        n = min(n, int(limit))
    return max(1, n)


def job_threads_later(requested: int | None = None, *, limit: int | None = None) -> Callable[[], int]:
    """:func:`job_threads`, decided in the background; call the result for the count.

    Reading the free cores takes about 2 ms, mostly waiting between three
    readings; a caller that has its own preparation to do (TreeSHAP plans its
    first block of trees) hides that wait behind it.  A request or
    ``$PROBITY_THREADS`` is answered at once, with no thread.
    """
    env = os.environ.get("PROBITY_THREADS", "").strip()
    if (requested is not None and requested > 0) or (env.isdigit() and int(env) > 0):
        n = job_threads(requested, limit=limit)
        return lambda: n
    answer: list[int] = []
    reader = threading.Thread(target=lambda: answer.append(job_threads(limit=limit)), daemon=True)
    reader.start()

    def result() -> int:
        reader.join()
        return answer[0] if answer else job_threads(limit=limit)

    return result


def worker_count(requested: int | None = None) -> int:
    """Workers to use: :func:`job_threads`, the one thread policy."""
    return chunk_workers(requested)


def chunk_workers(requested: int | None = None) -> int:
    """Workers for chunks: ``requested``, else ``$PROBITY_THREADS``, else the free cores.

    The policy itself lives in :func:`job_threads`.
    """
    return job_threads(requested)


def even_spans(start: int, stop: int, size: int, workers: int = 1) -> list[tuple[int, int]]:
    """``[start, stop)`` cut into spans of at most ``size`` items, as even as can be.

    The number of spans is rounded up to a multiple of ``workers`` so that no
    worker is left with a short last span while the others wait.
    """
    total = stop - start
    if total <= 0:
        return []
    count = -(-total // max(1, size))
    count = -(-count // max(1, workers)) * max(1, workers)
    count = min(count, total)
    bounds = [start + (total * i) // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def map_chunks(
    fn: Callable[[T], R],
    chunks: Sequence[T],
    *,
    ctx: JobContext | None = None,
    n_jobs: int | None = None,
) -> Iterator[R]:
    """Yield ``fn(chunk)`` for each chunk, in order, running up to ``n_jobs`` at once
    (default: ``$PROBITY_THREADS``, else the free cores).

    Cancellation is checked before each chunk starts; a cancelled job raises
    :class:`~engine.errors.Cancelled` from the iterator and starts no new chunk.
    ``fn`` must not mutate shared state (each chunk writes only its own output).
    """
    cores = chunk_workers(n_jobs)
    workers = min(cores, len(chunks))

    def run(chunk: T) -> R:
        if ctx is not None and ctx.cancelled:
            raise Cancelled()
        return fn(chunk)

    if not chunks:
        return
    # Each worker's BLAS/OpenMP pools get their share of the cores: one thread each
    # when the workers fill them, and on a busy machine (one free core) the model's
    # own OpenMP threads do not fight the other work either (measured: a histogram
    # gradient boosting model predicted 400k rows in 4.35 s with its two OpenMP
    # threads on a half-busy two-core machine, in 3.78 s with one).  BLAS limits
    # are process-wide, OpenMP's belong to the thread that sets them, so each
    # worker sets them again.
    controller = _controller(len(sys.modules))
    share = max(1, cores // workers)
    with controller.limit(limits=share):
        if workers <= 1:
            for chunk in chunks:
                yield run(chunk)
            return
        from joblib import Parallel, delayed

        def run_limited(chunk: T) -> R:
            with controller.limit(limits=share):
                return run(chunk)

        parallel = Parallel(n_jobs=workers, backend="threading", return_as="generator")
        yield from parallel(delayed(run_limited)(chunk) for chunk in chunks)


@functools.lru_cache(maxsize=1)
def _controller(n_modules: int) -> Any:
    """threadpoolctl's view of the BLAS/OpenMP libraries loaded (scanning them takes 5 ms).

    Kept while no module has been imported since (``n_modules``), since an
    import is what loads a new library.
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
