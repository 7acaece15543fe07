"""The job context every analysis runs under: seed, progress, cancel, sub-ranges.

No threads live here.  The GUI's runner and the CLI both build a
:class:`JobContext`, hand it to an analysis and read the frozen result back.
Random numbers come only from generators derived from the job's seed and a
stable per-task key, so a step's draws do not depend on which other steps ran.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import Cancelled

__all__ = ["ProgressFn", "CancelToken", "JobContext", "derive_seed_sequence"]

ProgressFn = Callable[[float, str], None]


class CancelToken:
    """A thread-safe flag that a job checks between steps (cooperative cancel)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def is_cancelled(self) -> bool:
        return self._event.is_set()


def _key_to_int(key: Hashable) -> int:
    # Python's hash() is salted per process; crc32 is stable across runs and machines.
    if isinstance(key, bool):
        return int(key)
    if isinstance(key, (int, np.integer)):
        if key < 0:
            raise ValueError(f"random stream keys must be non-negative, got {key}")
        return int(key)
    return zlib.crc32(str(key).encode("utf-8"))


def derive_seed_sequence(seed: int, path: tuple[Hashable, ...]) -> np.random.SeedSequence:
    """Return the SeedSequence for ``seed`` and a task path such as ("lime", 3)."""
    return np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(_key_to_int(k) for k in path))


@dataclass(frozen=True)
class JobContext:
    """Seed, progress reporting and cancellation for one analysis.

    Parameters
    ----------
    seed:
        The visible seed every random choice flows from.
    progress_fn:
        Called with ``(fraction in [0, 1], message)``; may be ``None``.
    cancel:
        Checked by :meth:`check_cancelled`; may be ``None`` (never cancelled).
    """

    seed: int = 0
    progress_fn: ProgressFn | None = None
    cancel: CancelToken | None = None
    lo: float = 0.0
    hi: float = 1.0
    path: tuple[Hashable, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    # -- progress -------------------------------------------------------
    def progress(self, fraction: float, message: str = "") -> None:
        """Report ``fraction`` of this (sub-)task done, mapped into the parent's range."""
        if self.progress_fn is None:
            return
        f = min(max(float(fraction), 0.0), 1.0)
        self.progress_fn(self.lo + (self.hi - self.lo) * f, message)

    def sub(self, start: float, end: float, *key: Hashable) -> JobContext:
        """A child context covering ``[start, end]`` of this context's progress range.

        ``key`` extends the random-stream path, so the child's generators are
        independent of the parent's and of its siblings'.
        """
        if not 0.0 <= start <= end <= 1.0:
            raise ValueError(f"sub-range must satisfy 0 <= start <= end <= 1, got {start}, {end}")
        span = self.hi - self.lo
        return JobContext(
            seed=self.seed,
            progress_fn=self.progress_fn,
            cancel=self.cancel,
            lo=self.lo + span * start,
            hi=self.lo + span * end,
            path=self.path + tuple(key),
            options=self.options,
        )

    # -- cancellation ---------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_cancelled

    def check_cancelled(self) -> None:
        """Raise :class:`~engine.errors.Cancelled` if the job was asked to stop."""
        if self.cancelled:
            raise Cancelled()

    # -- randomness -----------------------------------------------------
    def seed_sequence(self, *key: Hashable) -> np.random.SeedSequence:
        return derive_seed_sequence(self.seed, self.path + tuple(key))

    def rng(self, *key: Hashable) -> np.random.Generator:
        """A numpy Generator for the task named by ``key`` under this context."""
        return np.random.Generator(np.random.PCG64(self.seed_sequence(*key)))

    def int_seed(self, *key: Hashable, bits: int = 32) -> int:
        """A non-negative integer seed of ``bits`` bits for libraries that take ints.

        The 32-bit default is what scikit-learn's ``random_state`` accepts.
        """
        if not 1 <= bits <= 63:
            raise ValueError(f"bits must be between 1 and 63, got {bits}")
        state = self.seed_sequence(*key).generate_state(2, dtype=np.uint32)
        return ((int(state[0]) << 32) | int(state[1])) & ((1 << bits) - 1)

    def torch_generator(self, *key: Hashable, device: str = "cpu") -> Any:
        """A torch.Generator seeded from this context (torch imported lazily)."""
        import torch

        generator = torch.Generator(device=device)
        generator.manual_seed(self.int_seed(*key, bits=63))
        return generator
