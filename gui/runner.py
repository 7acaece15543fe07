"""The only code in Probity that touches threads.

A :class:`JobRunner` runs :class:`JobSpec` jobs on its own ``QThreadPool``.
Each job is a ``QRunnable`` that calls a plain engine function with a
:class:`~engine.jobs.JobContext` and reports back through signals that live
on one long-lived ``QObject`` (so a finished runnable can vanish without
taking a signal source with it).  The GUI thread only ever sees frozen results.

Progress is not signalled by workers at all: a worker stores its latest
``(fraction, message)`` and a 20 Hz timer on the GUI thread publishes changes.
An engine loop may therefore report progress a million times without ever
flooding the event loop.

Cancelling is cooperative: the job's :class:`~engine.jobs.CancelToken` is set
and the engine raises :class:`~engine.errors.Cancelled` at its next check.
Submitting a job whose ``key`` matches a live job supersedes that job: it is
cancelled and whatever it still returns is dropped.

Two process-wide hazards of Python threads next to Qt are handled here too:
cyclic garbage collection is moved to the GUI thread (see
:class:`_GuiThreadCollector`), and an ``exclusive`` job runs alone (the first
import of torch, see :class:`JobSpec`).
"""

from __future__ import annotations

import dataclasses
import enum
import gc
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, SignalInstance

__all__ = ["JobSpec", "JobState", "JobError", "JobRecord", "JobRunner", "RunnerLike"]

_log = logging.getLogger("probity.gui.runner")

# 20 Hz: smooth enough for a progress bar, far below what would load the event loop.
PROGRESS_INTERVAL_MS = 50


@dataclass(frozen=True)
class JobSpec:
    """What to run: ``fn(*args, ctx=JobContext(...), **params)`` on a worker thread.

    Attributes
    ----------
    kind: short machine name (``"load-data"``, ``"permutation"``, …).
    fn: a plain function with a keyword-only ``ctx`` parameter; it must not touch Qt.
    params: keyword arguments for ``fn``.
    args: positional arguments for ``fn``.
    key: jobs with the same key supersede each other; ``None`` never supersedes.
    title: what the job list shows.
    seed: the :class:`~engine.jobs.JobContext` seed.
    listed: whether the job list shows this job (view refreshes and probes do not).
    exclusive: run alone: it starts once running jobs are done and holds back
        jobs submitted after it.  For the first import of torch, which breaks
        scikit-learn and SciPy code running at the same moment in another
        thread (they find a half-imported ``torch`` in ``sys.modules``).
    """

    kind: str
    fn: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[Any, ...] = ()
    key: str | None = None
    title: str = ""
    seed: int = 0
    listed: bool = True
    exclusive: bool = False


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class JobError:
    """Why a job failed.

    ``traceback`` is ``None`` for a :class:`~engine.errors.ProbityError` (a
    problem the user can fix; the pane shows ``message`` inline) and holds the
    formatted traceback for anything else (a bug; the window shows a dialog).
    """

    message: str
    type_name: str
    traceback: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def is_user_error(self) -> bool:
        return self.traceback is None


@dataclass
class JobRecord:
    """The GUI thread's view of one job (mutated only on the GUI thread)."""

    job_id: int
    spec: JobSpec
    token: Any  # engine.jobs.CancelToken
    state: JobState = JobState.QUEUED
    fraction: float = 0.0
    message: str = ""
    error: JobError | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def title(self) -> str:
        return self.spec.title or self.spec.kind


class RunnerLike(Protocol):
    """What a pane uses of a runner: :class:`JobRunner`, or the synchronous fake the GUI tests drive.

    The signals are those of :class:`JobRunner` (see there for what each carries).
    """

    @property
    def sig_job_queued(self) -> SignalInstance: ...
    @property
    def sig_job_started(self) -> SignalInstance: ...
    @property
    def sig_job_progress(self) -> SignalInstance: ...
    @property
    def sig_job_finished(self) -> SignalInstance: ...
    @property
    def sig_job_failed(self) -> SignalInstance: ...
    @property
    def sig_job_cancelled(self) -> SignalInstance: ...
    @property
    def active_count(self) -> int: ...

    def submit(self, spec: JobSpec) -> int: ...
    def cancel(self, job_id: int) -> None: ...
    def cancel_all(self) -> None: ...
    def record(self, job_id: int) -> JobRecord | None: ...
    def records(self) -> list[JobRecord]: ...
    def is_live(self, job_id: int) -> bool: ...
    def live_job_for(self, key: str) -> int | None: ...
    def forget_finished(self) -> None: ...
    def shutdown(self, timeout_ms: int = 5000) -> bool: ...


class _GuiThreadCollector(QObject):
    """Runs Python's cyclic garbage collector on the GUI thread only, while workers exist.

    Left to itself, the collector runs in whichever thread happens to allocate
    when a threshold is crossed.  If that is a worker and the garbage holds Qt
    objects (a closed dialog, cleared plot items), they are destroyed off the
    GUI thread and Qt crashes.  So automatic collection is switched off and a
    timer on the GUI thread collects the generations whose counts exceed
    Python's own thresholds.

    A full collection scans every tracked object: once pandas, scikit-learn and
    Qt are loaded that is a few hundred thousand, 0.1-0.5 s during which the
    window (and, holding the interpreter lock, every worker) stands still.
    Objects that survive a full collection are long-lived (modules, classes,
    the open dataset), so they are frozen (``gc.freeze``) and the next full
    collection scans only what is newer: milliseconds.  The frozen objects are
    scanned again, so cycles among them (a closed dialog, replaced plot items)
    are freed, once every runner has been idle for ``SWEEP_IDLE_MS`` and the
    frozen set has grown by a quarter since the last such sweep (the growth
    rule CPython itself applies before a full collection).
    """

    INTERVAL_MS = 250
    SWEEP_IDLE_MS = 2000
    SWEEP_GROWTH = 1.25

    def __init__(self) -> None:
        super().__init__()
        self._users = 0
        self._was_enabled = True
        self._busy: set[int] = set()  # ids of runners with live jobs
        self._swept = 0  # objects frozen after the last sweep
        self._timer = QTimer(self)
        self._timer.setInterval(self.INTERVAL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._sweep_timer = QTimer(self)
        self._sweep_timer.setSingleShot(True)
        self._sweep_timer.setInterval(self.SWEEP_IDLE_MS)
        self._sweep_timer.timeout.connect(self._on_sweep_timer_timeout)

    def acquire(self) -> None:
        if self._users == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
            # What exists before the first runner (the imported modules) lives as long as the process.
            gc.freeze()
            self._swept = gc.get_freeze_count()
            self._timer.start()
        self._users += 1

    def release(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users == 0:
            self._timer.stop()
            self._sweep_timer.stop()
            self._busy.clear()
            gc.unfreeze()
            gc.collect()
            if self._was_enabled:
                gc.enable()

    def set_busy(self, owner: object, busy: bool) -> None:
        """A runner has live jobs (``busy``) or none: sweeps wait for every runner to be idle."""
        if busy:
            self._busy.add(id(owner))
            self._sweep_timer.stop()
        else:
            self._busy.discard(id(owner))
            if not self._busy and self._users:
                self._sweep_timer.start()

    def _on_timer_timeout(self) -> None:
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        for generation in (2, 1, 0):
            if thresholds[generation] and counts[generation] > thresholds[generation]:
                gc.collect(generation)
                if generation == 2:
                    gc.freeze()
                return

    def _on_sweep_timer_timeout(self) -> None:
        if self._busy or gc.get_freeze_count() <= self.SWEEP_GROWTH * self._swept:
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._swept = gc.get_freeze_count()


_collector: _GuiThreadCollector | None = None


def _gui_thread_collector() -> _GuiThreadCollector:
    global _collector
    if _collector is None:
        _collector = _GuiThreadCollector()
    return _collector


class _WorkerSignals(QObject):
    """Signals emitted from worker threads; delivered queued to the GUI thread."""

    sig_started = Signal(int)
    sig_result = Signal(int, object)
    sig_error = Signal(int, object)
    sig_cancelled = Signal(int)


class _Job(QRunnable):
    def __init__(self, job_id: int, spec: JobSpec, token: Any, signals: _WorkerSignals) -> None:
        super().__init__()
        # Auto-delete (Qt's default): the pool frees the C++ side after run(); the
        # runner only reads this object's Python attributes afterwards.
        self.job_id = job_id
        self.spec = spec
        self.token = token
        self.signals = signals
        # Written by the worker, read by the GUI thread's timer; a tuple swap is atomic.
        self.latest: tuple[float, str] | None = None

    def _progress(self, fraction: float, message: str) -> None:
        self.latest = (float(fraction), str(message))

    def run(self) -> None:  # runs on a pool thread
        from engine.errors import Cancelled, ProbityError
        from engine.jobs import JobContext

        if self.token.is_cancelled:
            self.signals.sig_cancelled.emit(self.job_id)
            return
        self.signals.sig_started.emit(self.job_id)
        ctx = JobContext(seed=self.spec.seed, progress_fn=self._progress, cancel=self.token)
        try:
            result = self.spec.fn(*self.spec.args, ctx=ctx, **dict(self.spec.params))
        except Cancelled:
            self.signals.sig_cancelled.emit(self.job_id)
        except ProbityError as exc:
            self.signals.sig_error.emit(self.job_id, JobError(str(exc), type(exc).__name__, None, exc))
        except Exception as exc:  # a bug: keep the traceback for the log and the details dialog
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            _write_log(exc, f"job {self.job_id} ({self.spec.kind})")
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.signals.sig_error.emit(self.job_id, JobError(message, type(exc).__name__, text, exc))
        else:
            self.signals.sig_result.emit(self.job_id, result)


def _write_log(exc: BaseException, context: str) -> None:
    try:
        from engine.logs import log_exception

        log_exception(exc, context=context)
    except Exception:  # logging must never turn one failure into two
        _log.exception("could not write the error log")


class JobRunner(QObject):
    """Runs jobs on a thread pool and reports on the GUI thread.

    Signals
    -------
    sig_job_queued(job_id): a job was accepted.
    sig_job_started(job_id): a worker picked it up.
    sig_job_progress(job_id, fraction, message): at most ~20 per second per job.
    sig_job_finished(job_id, result): the frozen result.
    sig_job_failed(job_id, error): a :class:`JobError`.
    sig_job_cancelled(job_id): cancelled or superseded; never also failed/finished.
    """

    sig_job_queued = Signal(int)
    sig_job_started = Signal(int)
    sig_job_progress = Signal(int, float, str)
    sig_job_finished = Signal(int, object)
    sig_job_failed = Signal(int, object)
    sig_job_cancelled = Signal(int)

    def __init__(self, parent: QObject | None = None, *, max_threads: int | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        if max_threads is None:
            # Analyses are CPU-bound numpy/sklearn work; two jobs at once keeps a
            # cheap view refresh from waiting behind a long analysis.
            max_threads = max(2, min(4, QThreadPool.globalInstance().maxThreadCount()))
        self._pool.setMaxThreadCount(max_threads)
        self._signals = _WorkerSignals(self)
        self._signals.sig_started.connect(self._on_worker_started)
        self._signals.sig_result.connect(self._on_worker_result)
        self._signals.sig_error.connect(self._on_worker_error)
        self._signals.sig_cancelled.connect(self._on_worker_cancelled)
        self._next_id = 1
        self._records: dict[int, JobRecord] = {}
        self._live: dict[int, _Job] = {}
        self._waiting: list[_Job] = []  # accepted, not yet handed to the pool (FIFO)
        self._handed: set[int] = set()  # handed to the pool, not yet reported back
        self._exclusive: int | None = None
        self._by_key: dict[str, int] = {}
        self._published: dict[int, tuple[float, str]] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_INTERVAL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._collecting = True
        _gui_thread_collector().acquire()

    # -- public API -------------------------------------------------------------
    def submit(self, spec: JobSpec) -> int:
        """Queue ``spec`` and return its job id; a live job with the same key is superseded."""
        from engine.jobs import CancelToken

        if spec.key is not None and spec.key in self._by_key:
            self.cancel(self._by_key[spec.key])
        job_id = self._next_id
        self._next_id += 1
        token = CancelToken()
        record = JobRecord(job_id=job_id, spec=spec, token=token)
        self._records[job_id] = record
        job = _Job(job_id, spec, token, self._signals)
        self._live[job_id] = job
        _gui_thread_collector().set_busy(self, True)
        if spec.key is not None:
            self._by_key[spec.key] = job_id
        self.sig_job_queued.emit(job_id)
        self._waiting.append(job)
        self._dispatch()
        if not self._timer.isActive():
            self._timer.start()
        return job_id

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop; a queued job is cancelled at once, a running one at its next check."""
        record = self._records.get(job_id)
        if record is None or record.state.is_final:
            return
        record.token.cancel()
        self._release_key(record)
        job = self._live.get(job_id)
        if record.state is JobState.QUEUED and job is not None:
            if job in self._waiting:
                self._waiting.remove(job)
                taken = True
            else:
                taken = self._try_take(job)
            if taken:
                record.message = "Cancelled"
                self._finish(record, JobState.CANCELLED)
                self.sig_job_cancelled.emit(job_id)
                return
        if record.state is not JobState.CANCELLING:
            # Running, or already taken by a worker whose "started" report is still on its way.
            record.state = JobState.CANCELLING
            record.message = "Cancelling…"
            self.sig_job_progress.emit(job_id, record.fraction, record.message)

    def cancel_all(self) -> None:
        for job_id in list(self._live):
            self.cancel(job_id)

    def record(self, job_id: int) -> JobRecord | None:
        return self._records.get(job_id)

    def records(self) -> list[JobRecord]:
        return list(self._records.values())

    def is_live(self, job_id: int) -> bool:
        return job_id in self._live

    def live_job_for(self, key: str) -> int | None:
        return self._by_key.get(key)

    @property
    def active_count(self) -> int:
        """Jobs queued or running (including those asked to cancel)."""
        return len(self._live)

    def forget_finished(self) -> None:
        """Drop the records of finished jobs (the job list's "Clear")."""
        for job_id in [j for j, r in self._records.items() if r.state.is_final]:
            del self._records[job_id]

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and wait for the workers; True when all stopped in time."""
        self.cancel_all()
        done = self._pool.waitForDone(timeout_ms)
        self._timer.stop()
        if self._collecting and done:
            self._collecting = False
            _gui_thread_collector().release()
        return bool(done)

    # -- worker reports (GUI thread) -------------------------------------------------
    def _on_worker_started(self, job_id: int) -> None:
        record = self._records.get(job_id)
        if record is None or job_id not in self._live:
            return
        if record.state is JobState.QUEUED:
            record.state = JobState.RUNNING
        self.sig_job_started.emit(job_id)

    def _on_worker_result(self, job_id: int, result: object) -> None:
        record = self._records.get(job_id)
        if record is None or job_id not in self._live:
            return
        if record.token.is_cancelled:
            # Superseded or cancelled after its last check: the late result is dropped.
            self._finish(record, JobState.CANCELLED)
            self.sig_job_cancelled.emit(job_id)
            return
        self._publish_progress(record)  # the last word before finishing, however fast it came
        record.fraction = 1.0
        self._finish(record, JobState.DONE)
        self.sig_job_finished.emit(job_id, result)

    def _on_worker_error(self, job_id: int, error: object) -> None:
        record = self._records.get(job_id)
        if record is None or job_id not in self._live:
            return
        if record.token.is_cancelled:
            # The user no longer waits for this job; an error it raised while
            # stopping is noise, not news (bugs are still in the log).
            self._finish(record, JobState.CANCELLED)
            self.sig_job_cancelled.emit(job_id)
            return
        assert isinstance(error, JobError)
        record.error = error
        record.message = error.message
        self._finish(record, JobState.FAILED)
        self.sig_job_failed.emit(job_id, error)

    def _on_worker_cancelled(self, job_id: int) -> None:
        record = self._records.get(job_id)
        if record is None or job_id not in self._live:
            return
        record.message = "Cancelled"
        self._finish(record, JobState.CANCELLED)
        self.sig_job_cancelled.emit(job_id)

    def _on_timer_timeout(self) -> None:
        for job_id in list(self._live):
            record = self._records.get(job_id)
            if record is not None and record.state is JobState.RUNNING:
                self._publish_progress(record)
        if not self._live:
            self._timer.stop()

    # -- helpers ---------------------------------------------------------------------
    def _publish_progress(self, record: JobRecord) -> None:
        job = self._live.get(record.job_id)
        latest = job.latest if job is not None else None
        if latest is None or self._published.get(record.job_id) == latest:
            return
        self._published[record.job_id] = latest
        record.fraction, record.message = latest
        self.sig_job_progress.emit(record.job_id, record.fraction, record.message)

    def _dispatch(self) -> None:
        """Hand waiting jobs to the pool, in order, honouring exclusive jobs."""
        while self._waiting and self._exclusive is None:
            job = self._waiting[0]
            if job.spec.exclusive and self._handed:
                return  # it waits for the running jobs; later jobs wait behind it
            self._waiting.pop(0)
            self._handed.add(job.job_id)
            if job.spec.exclusive:
                self._exclusive = job.job_id
            self._pool.start(job)

    def _try_take(self, job: _Job) -> bool:
        try:
            return bool(self._pool.tryTake(job))
        except RuntimeError:  # a worker already ran it and Qt deleted the C++ side
            return False

    def _release_key(self, record: JobRecord) -> None:
        key = record.spec.key
        if key is not None and self._by_key.get(key) == record.job_id:
            del self._by_key[key]

    def _finish(self, record: JobRecord, state: JobState) -> None:
        record.state = state
        record.finished_at = time.monotonic()
        self._release_key(record)
        self._published.pop(record.job_id, None)
        # A finished job must not keep its inputs (a whole DataFrame, a model) alive,
        # whoever still holds the job object.
        record.spec = dataclasses.replace(record.spec, args=(), params={})
        job = self._live.pop(record.job_id, None)
        if job is not None:
            job.spec = record.spec
        if not self._live:
            _gui_thread_collector().set_busy(self, False)
        self._handed.discard(record.job_id)
        if self._exclusive == record.job_id:
            self._exclusive = None
        self._dispatch()
        if not record.spec.listed:
            self._records.pop(record.job_id, None)
