"""Where torch computations run, and with how many CPU threads.

torch is imported only inside these functions: importing :mod:`engine` must
stay light, and a CPU-only analysis of a scikit-learn model never needs torch.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from engine.errors import AnalysisError

__all__ = [
    "DEVICE_CHOICES",
    "MIN_BATCH_ROWS",
    "choose_device",
    "preferred_device",
    "device_preference",
    "following_request_device",
    "replay_device",
    "device_description",
    "free_memory_bytes",
    "rows_within_memory",
    "is_out_of_memory",
    "release_device_memory",
    "out_of_memory_warning",
    "configure_threads",
    "available_cores",
]

#: What a user may ask for; ``"cuda:N"`` is accepted as well to pick one GPU.
DEVICE_CHOICES = ("auto", "cpu", "cuda")

_CUDA_INDEXED = re.compile(r"^cuda:(\d+)$")

# What "auto" means inside preferred_device(): an audit's --device, for every analysis it runs.
_PREFERRED: ContextVar[str | None] = ContextVar("probity_preferred_device", default=None)
_Run = TypeVar("_Run", bound=Callable[..., Any])

#: Fewest rows per pass that out-of-memory retries halve down to before the CPU takes the call over.
MIN_BATCH_ROWS = 16
#: Share of a GPU's free memory one pass may plan to use (the rest is for torch's workspace and other work).
_MEMORY_SHARE = 0.5


def choose_device(preference: str = "auto") -> str:
    """The torch device string an analysis should use.

    Parameters
    ----------
    preference:
        ``"auto"`` (CUDA when torch sees a GPU, else the CPU), ``"cpu"``,
        ``"cuda"`` or ``"cuda:N"``.  Case and surrounding spaces are ignored.

    Returns
    -------
    str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    AnalysisError
        For an unknown preference, or when CUDA is asked for explicitly and
        torch sees no CUDA device (silently falling back would make a
        reported GPU run a CPU run).
    """
    if not isinstance(preference, str):
        raise AnalysisError(f"Unknown compute device {preference!r}; choose 'auto', 'cpu' or 'cuda'.")
    wanted = preference.strip().lower()
    preferred = _PREFERRED.get()
    if wanted == "auto" and preferred is not None and preferred.strip().lower() != "auto":
        return choose_device(preferred)  # inside preferred_device(): the audit's --device
    if wanted == "cpu":
        return "cpu"  # no torch import: a CPU choice needs nothing from it
    indexed = _CUDA_INDEXED.match(wanted)
    if wanted not in ("auto", "cuda") and indexed is None:
        raise AnalysisError(f"Unknown compute device {preference!r}; choose 'auto', 'cpu' or 'cuda'.")
    if wanted == "auto" and "torch" not in sys.modules and not _cuda_possible():
        return "cpu"  # importing torch (over a second) only to hear "no GPU" is not worth it
    import torch

    has_cuda = bool(torch.cuda.is_available())
    if wanted == "auto":
        return "cuda" if has_cuda else "cpu"
    if not has_cuda:
        raise AnalysisError(
            f"The compute device {preference!r} was asked for, but torch sees no CUDA device on this machine; "
            "choose 'auto' or 'cpu'."
        )
    if indexed is not None and int(indexed.group(1)) >= torch.cuda.device_count():
        raise AnalysisError(
            f"The compute device {preference!r} does not exist; torch sees {torch.cuda.device_count()} CUDA "
            "device(s), numbered from 0."
        )
    return wanted


@contextmanager
def preferred_device(device: str | None) -> Iterator[None]:
    """Within the block, ``"auto"`` (:func:`choose_device`) means ``device``; ``None`` changes nothing.

    An audit runs under its ``--device`` this way, so that every analysis left
    to ``"auto"`` (TreeSHAP, the gradient methods, a torch or ONNX model loaded
    for it) computes where the audit was asked to.  The setting belongs to the
    current thread's context only.
    """
    if device is None:
        yield
        return
    choose_device(device)  # an unknown name, or a GPU that is not there, is refused before any work
    token = _PREFERRED.set(device)
    try:
        yield
    finally:
        _PREFERRED.reset(token)


def device_preference() -> str | None:
    """The device :func:`preferred_device` put in force here, or ``None``."""
    return _PREFERRED.get()


def following_request_device(run: _Run) -> _Run:
    """``run(request, ...)`` under :func:`preferred_device` of ``request.device``.

    A preference already in force wins: ``probity verify`` replays a recorded
    GPU audit on the CPU where the GPU is missing (:func:`replay_device`), and
    the request keeps the recorded device, so the record it makes is the same.
    """

    @functools.wraps(run)
    def under_device(request: Any, *args: Any, **kwargs: Any) -> Any:
        wanted = getattr(request, "device", None)
        if wanted is None or _PREFERRED.get() is not None:
            return run(request, *args, **kwargs)
        with preferred_device(wanted):
            return run(request, *args, **kwargs)

    return cast(_Run, under_device)


def _cuda_possible() -> bool:
    """Whether torch could see a CUDA GPU here, answered without importing torch.

    False for a CPU-only torch build (a ``+cpu`` wheel, like the one Probity
    pins), on macOS, and on Linux when no NVIDIA driver is loaded; True when
    in doubt, so that torch itself is asked.
    """
    if sys.platform == "darwin":
        return False
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return False
    if version.endswith("+cpu"):
        return False
    if sys.platform.startswith("linux"):
        return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidiactl")
    return True


def device_description(device: str | None = None) -> str:
    """A one-line description of a compute device for reports and the GUI.

    Parameters
    ----------
    device:
        A device string as returned by :func:`choose_device`; ``None`` means
        ``choose_device("auto")``.

    Returns
    -------
    str
        For example ``"CPU (2 threads)"`` or ``"CUDA: NVIDIA H100 80GB HBM3, 79.1 GB free"``
        (the free memory when torch can read it).
    """
    import torch

    resolved = choose_device("auto") if device is None else choose_device(device)
    if resolved == "cpu":
        n = torch.get_num_threads()
        return f"CPU ({n} thread{'s' if n != 1 else ''})"
    name = f"CUDA: {torch.cuda.get_device_name(torch.device(resolved))}"
    free = free_memory_bytes(resolved)
    return name if free is None else f"{name}, {free / 1e9:.1f} GB free"


def replay_device(recorded: str) -> str:
    """The device a recorded computation is made again on: the recorded one where it exists here, else the CPU.

    ``probity verify`` and ``probity rerun`` replay a GPU-made record on a
    laptop: ``"cuda"`` (or ``"cuda:N"``) without that GPU becomes ``"cpu"``, and
    the comparison notes that the device differs.  Anything else is returned
    as recorded (``"auto"`` stays ``"auto"``, so a replayed call records what
    its original did); an unknown name is refused.
    """
    try:
        choose_device(recorded)
        return recorded
    except AnalysisError:
        if isinstance(recorded, str) and recorded.strip().lower().startswith("cuda"):
            return "cpu"
        raise


def free_memory_bytes(device: str) -> int | None:
    """Free memory on a CUDA device in bytes (``torch.cuda.mem_get_info``); ``None`` for the CPU or when unreadable."""
    if not str(device).startswith("cuda"):
        return None
    import torch

    try:
        free, _total = torch.cuda.mem_get_info(torch.device(device))
    except Exception:  # a driver that cannot answer: plan without a bound, and let out-of-memory retries decide
        return None
    return int(free)


def rows_within_memory(device: str, bytes_per_row: float, cap: int) -> int:
    """At most ``cap`` rows, and on a GPU no more than half its free memory holds at ``bytes_per_row`` each.

    On the CPU (or where the free memory cannot be read) the bound is ``cap``
    alone, the fixed batch size; the result is at least 1.
    """
    free = free_memory_bytes(device)
    if free is None:
        return max(1, int(cap))
    return max(1, min(int(cap), int(free * _MEMORY_SHARE // max(1.0, float(bytes_per_row)))))


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device running out of memory: ``torch.OutOfMemoryError``, or a runtime error saying so.

    Answered without importing torch (the class is recognised by name).
    """
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__):
        return True
    return isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower()


def release_device_memory(device: str) -> None:
    """Hand torch's cached blocks on a CUDA device back before a retry (nothing to do on the CPU)."""
    if not str(device).startswith("cuda"):
        return
    import torch

    try:
        torch.cuda.empty_cache()
    except Exception:  # pragma: no cover - a driver already in trouble
        pass


def out_of_memory_warning(what: str, device: str, rows: int) -> str:
    """The sentence a result carries when ``what`` ran on the CPU because ``device`` ran out of memory."""
    return (
        f"{what} ran on the CPU after the GPU ({device}) ran out of memory at batch {rows} (rows per pass); "
        "the numbers equal the GPU's within rounding."
    )


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def free_cores() -> int:
    """Cores not already busy with other work: :func:`available_cores` less the others' load, at least 1.

    On Linux the others' load is the number of runnable tasks right now
    (``/proc/loadavg``) less this process's own running threads, the median
    of three readings a millisecond apart; elsewhere it is the 1-minute load
    average.  The
    average lags and counts this process's own last minute of work, so a
    job that follows another would see its own shadow and run on one core
    of two; the instantaneous count sees only what runs now.  On two cores
    with one busy it returns 1, which measured 4-7x faster for Integrated
    Gradients than letting torch's two threads fight the other load
    (docs/benchmarks.md).
    """
    cores = available_cores()
    others = _others_running()
    if others is None:
        try:
            others = os.getloadavg()[0]
        except (AttributeError, OSError):  # not available on this platform
            return cores
    return max(1, min(cores, cores - int(others + 0.5)))


def _others_running() -> float | None:
    """Runnable tasks outside this process, from ``/proc`` (``None`` where it cannot be read).

    ``/proc/loadavg`` counts every runnable thread on the machine, this
    process's own included (a worker pool or a BLAS thread still spinning
    after its last call); those found running in ``/proc/self/task`` are taken
    off.  The median of three readings a millisecond apart smooths a blip.
    """
    readings = []
    for i in range(3):
        if i:
            time.sleep(0.001)
        try:
            with open("/proc/loadavg", encoding="ascii") as fh:
                running = int(fh.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        readings.append(max(0, running - _own_running()))
    return float(sorted(readings)[1])


def _own_running() -> int:
    """Threads of this process in the running state (the caller among them)."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:  # the thread ended meanwhile
            continue
        end = stat.rfind(b")")  # the state follows the command name, which may hold spaces or ')'
        count += stat[end + 2 : end + 3] == b"R"
    return max(count, 1)


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count for this process.

    torch sizes its pool from the machine's cores, not from the cores that
    are free.  On a two-core laptop that also runs the GUI, or under a test
    runner with other workers, two busy cores shared by two torch threads
    and other processes oversubscribe: threads wait on each other at every
    parallel region and throughput collapses (on a busy two-core machine,
    Integrated Gradients on a small MLP ran about 5x slower with two threads
    than with one).  The CLI and GUI call this once, at start-up, with a
    count that leaves room for the rest of the work.

    Parameters
    ----------
    n:
        Threads to use, at least 1; ``None`` means the cores this process may
        run on (:func:`available_cores`).

    Returns
    -------
    int
        The intra-op thread count now in effect.
    """
    if n is None:
        n = available_cores()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise AnalysisError(f"The number of compute threads must be a positive whole number, not {n!r}.")
    import torch

    torch.set_num_threads(n)
    return int(torch.get_num_threads())
