"""What machine an audit ran on: CPU, operating system and compute device.

Recorded in ``results.json`` (``provenance["hardware"]``) and printed in the
report's reproducibility section.  Nothing here imports torch: the compute
device of a scikit-learn or ONNX model is the CPU, and a torch model has
already imported torch by the time it was loaded.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

__all__ = ["cpu_description", "compute_device", "describe_hardware"]

_CPUINFO = Path("/proc/cpuinfo")


def _cpu_model(cpuinfo: Path = _CPUINFO) -> str | None:
    """The processor's marketing name from ``/proc/cpuinfo`` (Linux), or ``None``."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # x86 names the chip in "model name"; some ARM kernels only give "Hardware" or "Processor".
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return " ".join(value.split())
    return None


def cpu_description(*, cpuinfo: Path = _CPUINFO) -> str:
    """The processor model and its logical core count, e.g. ``"AMD EPYC 7B13 (2 logical cores)"``.

    Parameters
    ----------
    cpuinfo:
        Where Linux describes the processors (a parameter so tests can point elsewhere).
    """
    model = _cpu_model(cpuinfo) or platform.processor() or platform.machine() or "unknown processor"
    cores = os.cpu_count() or 1
    return f"{model} ({cores} logical core{'s' if cores != 1 else ''})"


def compute_device(model: Any | None = None) -> str:
    """Where the model's computations ran: ``"CPU"`` or ``"CUDA: <device name>"``.

    Only a torch model can run elsewhere than the CPU; its adapter records its
    device string (``"cpu"``, ``"cuda"``, ``"cuda:N"``) as ``model.device``.
    torch is queried only when it is already imported, never imported here.
    """
    device = getattr(model, "device", None) if model is not None else None
    if not isinstance(device, str) or not device.startswith("cuda"):
        return "CPU"
    torch = sys.modules.get("torch")
    if torch is None:  # pragma: no cover - a CUDA model implies torch was imported
        return device.upper()
    try:
        return f"CUDA: {torch.cuda.get_device_name(torch.device(device))}"
    except Exception:  # pragma: no cover - a driver problem must not fail the audit
        return device.upper()


def describe_hardware(model: Any | None = None) -> dict[str, str]:
    """``{"cpu": ..., "os": ..., "compute_device": ...}`` for the machine and ``model``."""
    return {"cpu": cpu_description(), "os": platform.platform(), "compute_device": compute_device(model)}
