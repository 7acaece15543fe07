"""Model calls over many rows, and how many threads a job may use: one way for every explainer.

The model-agnostic explainers (LIME, KernelSHAP, partial dependence,
permutation importance, surrogates, clusters) all score more rows than one
model call should hold.  :func:`predict_batched` cuts them into calls of at
most a bound, checks the cancel flag before every call, reports progress after
every call and writes each call's output into place, so results never depend
on how rows were grouped (for models whose output for a row does not depend on
the other rows of the call, as for scikit-learn models).

Calls are sized by a :class:`Pacer`, in one of two ways:

* **paced** (LIME, KernelSHAP): the first call holds at most
  :data:`FIRST_CALL_ROWS` rows; each full-size call is timed and the next one
  is resized towards :data:`TARGET_CALL_SECONDS` (at most
  :data:`MAX_GROWTH` times larger, never below :data:`MIN_CALL_ROWS`, never
  above the bound).  A call that lasts between half and twice the target (or
  one held at a bound) settles the size; the rest go out as even chunks of that
  size on :func:`job_threads` workers through :func:`engine.parallel.map_chunks`.
  Timed calls run one at a time, so settling early matters: on the 2-core
  reference machine a band starting at 0.8 of the target left LIME's first
  block of 130,000 rows unsettled and made it 6 % slower on two workers.  A
  remainder at least half the planned size counts, its time scaled up to a
  full call; a shorter one says nothing about a full call.  A model's fixed
  cost per call makes small calls look slow per row (the scaled time errs long,
  towards smaller calls), so sizes grow by measured factors rather than from
  one per-row rate.
* **fixed** (partial dependence, permutation importance): every call holds the
  bound (:func:`rows_per_call`: at most :data:`CELLS_PER_CALL` cells), one
  after the other in this thread.  Chunk boundaries depend only on the data's
  shape, so even a model whose output depends on the batch (BLAS blocking in a
  neural network) gives the same numbers on every run.

:func:`job_threads` is the one thread policy: a positive request, else
``$PROBITY_THREADS``, else the cores free when the job starts
(:func:`engine.device.free_cores`), never more than a given limit and never
fewer than one.  Measured on the 2-core reference machine
(docs/benchmarks.md): with both cores free two threads made KernelSHAP's calls
to a random forest 1.65x faster; with the other core busy a second thread only
fought the other work.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from numpy.typing import DTypeLike

from engine.jobs import JobContext
from engine.parallel import even_spans, job_threads, job_threads_later, map_chunks

__all__ = [
    "TARGET_CALL_SECONDS",
    "FIRST_CALL_ROWS",
    "MIN_CALL_ROWS",
    "MAX_GROWTH",
    "CELLS_PER_CALL",
    "Pacer",
    "job_threads",
    "job_threads_later",
    "predict_batched",
    "rows_per_call",
]

# A paced call is sized to last about this long: long enough that a model's fixed cost per call
# (100 trees dispatched one by one, input validation) is amortised, short enough that a cancel
# request, checked between calls, is answered within about half a second.
TARGET_CALL_SECONDS = 0.3
# The first paced call is small, so the first cancel check and progress report come quickly.
FIRST_CALL_ROWS = 8_192
# Paced calls never shrink below this many rows (a timing disturbed by other work must not leave
# thousands of tiny calls).
MIN_CALL_ROWS = 512
# A paced call is at most this many times larger than the previous one.
MAX_GROWTH = 8.0
# A call that lasts between these fractions of the target settles the size.
_QUICK = 0.5
_SLOW = 2.0
# Fixed calls hold at most this many cells (rows x input columns): per-call overhead vanishes,
# memory stays bounded.
CELLS_PER_CALL = 2_000_000


def rows_per_call(n_columns: int, cells: int = CELLS_PER_CALL) -> int:
    """Rows of ``n_columns`` input columns that fit in one call of at most ``cells`` cells (at least one)."""
    return max(1, int(cells) // max(int(n_columns), 1))


class Pacer:
    """Sizes the model calls of one job, and counts them.

    ``max_rows`` bounds every call (a call of whole units may exceed it only
    when one unit alone does).  A paced pacer learns the size from timed calls
    (see the module docstring) and keeps it across :func:`predict_batched`
    calls of the same job; a fixed one (:meth:`fixed`) always plans
    ``max_rows``.
    """

    def __init__(self, max_rows: int, *, paced: bool = True) -> None:
        if max_rows < 1:
            raise ValueError(f"a model call must hold at least one row, not {max_rows!r}")
        self.max_rows = int(max_rows)
        self.paced = paced
        self.size = min(self.max_rows, FIRST_CALL_ROWS) if paced else self.max_rows
        self.settled = not paced
        self.calls = 0
        self.rows = 0

    @classmethod
    def fixed(cls, max_rows: int) -> Pacer:
        """A pacer whose calls all hold ``max_rows`` rows (the last one the remainder), untimed."""
        return cls(max_rows, paced=False)

    def next_rows(self, quantum: int = 1) -> int:
        """Rows for the next call: a whole number of ``quantum``-row units, at least one unit."""
        quantum = max(1, int(quantum))
        return max(quantum, (min(self.size, self.max_rows) // quantum) * quantum)

    def count(self, rows: int) -> None:
        """Note one call of ``rows`` rows."""
        self.calls += 1
        self.rows += int(rows)

    def record(self, rows: int, seconds: float, *, planned: int, quantum: int = 1) -> None:
        """Learn from a call of ``rows`` rows that took ``seconds`` (``planned``: the rows it was sized for)."""
        if not self.paced or self.settled or 2 * rows < planned:
            return  # a short remainder says nothing about a full call
        seconds = max(float(seconds), 1e-6) * planned / max(rows, 1)  # as if the call were full
        if seconds < _QUICK * TARGET_CALL_SECONDS:
            size = int(planned * min(MAX_GROWTH, TARGET_CALL_SECONDS / seconds))
        elif seconds > _SLOW * TARGET_CALL_SECONDS:
            size = max(MIN_CALL_ROWS, int(planned * TARGET_CALL_SECONDS / seconds))
        else:
            size = planned
        self.size = max(1, min(self.max_rows, size))
        # Settled once the size stops changing: the call was on target, or a bound holds it.
        self.settled = self.next_rows(quantum) == planned


def predict_batched(
    call: Callable[[int, int], np.ndarray],
    n: int,
    *,
    pacer: Pacer,
    ctx: JobContext,
    unit_rows: int = 1,
    on_done: Callable[[int], None] | None = None,
    dtype: DTypeLike | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """``call(start, stop)`` over units ``[0, n)`` in bounded calls, the outputs stacked in order.

    ``call(start, stop)`` scores units ``start .. stop - 1`` (each unit is
    ``unit_rows`` model rows: KernelSHAP's instance-coalitions, one row
    elsewhere) and returns an array whose first axis has ``stop - start``
    entries.  Calls hold a whole number of units, at most ``pacer.max_rows``
    rows when a unit fits.  The cancel flag is checked before every call
    (:class:`~engine.errors.Cancelled` is raised and no further call starts)
    and ``on_done(units_done)`` is called after every call, in order.
    ``dtype``: the output's dtype (``None``: the first call's, and a single
    call's output is returned as it is).  ``threads``:
    workers for a paced job's settled calls (``None``: :func:`job_threads`).
    """
    if n <= 0:
        return np.empty((0,), dtype=np.float64 if dtype is None else dtype)
    unit_rows = max(1, int(unit_rows))
    out: np.ndarray | None = None

    def store(start: int, stop: int, values: np.ndarray) -> None:
        nonlocal out
        values = np.asarray(values)
        if out is None and dtype is None and stop - start == n:
            out = values  # one call for every unit: its own output, uncopied
        elif out is None:
            out = np.empty((n, *values.shape[1:]), dtype=values.dtype if dtype is None else dtype)
            out[start:stop] = values
        else:
            out[start:stop] = values
        pacer.count((stop - start) * unit_rows)
        if on_done is not None:
            on_done(stop)

    done = 0
    # Timed calls, one at a time in this thread, until the size settles (fixed pacers: every call).
    while done < n and not (pacer.paced and pacer.settled):
        ctx.check_cancelled()
        planned = pacer.next_rows(unit_rows)
        stop = min(n, done + planned // unit_rows)
        began = time.perf_counter()
        values = call(done, stop)
        pacer.record((stop - done) * unit_rows, time.perf_counter() - began, planned=planned, quantum=unit_rows)
        store(done, stop, values)
        done = stop
    if done < n:
        # A settled size: the rest as even chunks on the job's workers.
        workers = job_threads(threads)
        step = pacer.next_rows(unit_rows) // unit_rows

        def one(span: tuple[int, int]) -> tuple[int, int, np.ndarray]:
            return span[0], span[1], call(span[0], span[1])

        for start, stop, values in map_chunks(one, even_spans(done, n, step, workers), ctx=ctx, n_jobs=workers):
            store(start, stop, values)
    assert out is not None
    return out
