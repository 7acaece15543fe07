"""The functions jobs run on worker threads: thin adapters from the runner to the engine.

Each takes a keyword-only ``ctx`` (:class:`~engine.jobs.JobContext`), touches no
Qt, and returns a frozen value.  Engine modules are imported here, inside the
functions, so the window can appear before pandas and scikit-learn are loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.jobs import JobContext
    from engine.schema import Dataset, ReadOptions

__all__ = ["ModelIntake", "load_dataset", "intake_model", "ensure_demo_files", "probe_compute_device"]


def load_dataset(path: Path, *, options: ReadOptions | None = None, ctx: JobContext) -> Dataset:
    """Read a table with ``options`` (``None`` fields detected; raises ``DataError`` for unusable files)."""
    from engine.data import load_table

    ctx.progress(0.0, f"Reading {path.name}")
    dataset = load_table(path, options, progress=ctx.progress)
    ctx.progress(1.0, f"Loaded {dataset.n_rows:,} rows and {dataset.frame.shape[1]} columns from {path.name}")
    return dataset


@dataclass(frozen=True, eq=False)
class ModelIntake:
    """The outcome of opening a model file.

    ``model`` is set when it loaded.  ``refusal`` holds the
    ``UntrustedModelError`` (a per-file trust decision is needed), the
    ``UnreviewedModelError`` (trusted, but names Probity has not reviewed were
    not acknowledged), the ``UnsafeModelError`` (refused always) or the
    ``TorchDeclarationNeeded`` (a network whose sidecar must name its columns or outputs) instead;
    ``inspection`` describes the file either way.
    """

    path: Path
    inspection: Any | None
    model: Any | None
    refusal: Exception | None = None

    @property
    def job_outcome(self) -> str | None:
        """What the job list shows instead of "done" when nothing was loaded (see ``gui.panes.jobs``)."""
        from engine.errors import UntrustedModelError
        from engine.models.torch_files import TorchDeclarationNeeded

        if self.refusal is None:
            return None
        if isinstance(self.refusal, TorchDeclarationNeeded):
            return "needs its sidecar"
        return "needs trust" if isinstance(self.refusal, UntrustedModelError) else "refused"


def intake_model(
    path: Path,
    *,
    trusted_sha256: Iterable[str] = (),
    allow_unreviewed: bool = False,
    ctx: JobContext,
) -> ModelIntake:
    """Inspect a model file, then load it under the given per-file trust decisions.

    ``allow_unreviewed`` is the trust dialog's second acknowledgement, passed to
    :func:`engine.models.loading.load_model` as is.
    """
    from engine.errors import UnsafeModelError, UntrustedModelError
    from engine.models.loading import UnreviewedModelError, inspect_model, load_model
    from engine.models.probe import probe_model
    from engine.models.torch_files import TorchDeclarationNeeded

    ctx.progress(0.0, f"Inspecting {path.name}")
    inspection = inspect_model(path)
    ctx.check_cancelled()
    ctx.progress(0.4, f"Loading {path.name}")
    try:
        model = load_model(
            path,
            trusted_sha256=tuple(trusted_sha256),
            granted_by="gui confirmation",
            allow_unreviewed=allow_unreviewed,
        )
        # Its first prediction in a child process: a native crash is a refusal, not a dead app.
        probe_model(model, ctx=ctx.sub(0.5, 0.95))
    except (UntrustedModelError, UnreviewedModelError, UnsafeModelError, TorchDeclarationNeeded) as exc:
        ctx.progress(1.0, f"{path.name} needs a trust decision" if isinstance(exc, UntrustedModelError) else str(exc))
        return ModelIntake(path=path, inspection=inspection, model=None, refusal=exc)
    ctx.progress(1.0, f"Loaded {path.name}")
    return ModelIntake(path=path, inspection=inspection, model=model)


def ensure_demo_files(*, ctx: JobContext) -> Any:
    """The demo's data and model paths, generating them on first use."""
    from engine.demo import ensure_demo

    ctx.progress(0.0, "Preparing the demo data and model")
    paths = ensure_demo()
    ctx.progress(1.0, f"Demo ready in {paths.data.parent}")
    return paths


def probe_compute_device(*, ctx: JobContext) -> str:
    """``"CPU (n threads)"`` or ``"CUDA: <device name>"``; torch is imported here, off the GUI thread.

    Also sets torch's thread count once, leaving a core for the GUI thread.
    """
    try:
        from engine.device import available_cores, configure_threads

        configure_threads(max(1, available_cores() - 1))
    except Exception:  # torch missing or broken: analyses run on the CPU anyway
        return "CPU"
    return _describe()


def _describe() -> str:
    try:
        from engine.device import device_description

        return device_description()
    except Exception:  # a broken driver must not stop the app
        return "CPU"


def device_if_torch_loaded() -> str | None:
    """The device description when torch is already imported, else ``None`` (never imports it)."""
    return None if "torch" not in sys.modules else _describe()
