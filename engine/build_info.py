"""Which build of Probity is running: an installer's flavour, baked in when the bundle was built.

``make installer`` (installer/probity.spec) writes ``resources/build-info.json`` into the bundle with
the flavour (``cpu`` or ``cuda``: which torch build it carries), the torch version and the date.  A
source checkout has no such file and reports itself as such.  Reading it imports nothing heavy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BuildInfo", "BUILD_INFO_NAME", "build_info", "describe_build"]

BUILD_INFO_NAME = "build-info.json"
FLAVOURS = ("cpu", "cuda")


@dataclass(frozen=True)
class BuildInfo:
    flavour: str  # "cpu", "cuda" or "source"
    torch: str = ""  # the torch version the bundle carries ("" from source)
    built: str = ""  # ISO date of the build ("" from source)

    @property
    def bundled(self) -> bool:
        return self.flavour in FLAVOURS


def _default_path() -> Path:
    return Path(__file__).resolve().parent.parent / "resources" / BUILD_INFO_NAME


def build_info(path: Path | None = None) -> BuildInfo:
    """The baked-in build description; ``flavour="source"`` when there is none (or it is unreadable)."""
    try:
        document = json.loads((path or _default_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return BuildInfo(flavour="source")
    flavour = document.get("flavour") if isinstance(document, dict) else None
    if flavour not in FLAVOURS:
        return BuildInfo(flavour="source")
    return BuildInfo(flavour=flavour, torch=str(document.get("torch", "")), built=str(document.get("built", "")))


def describe_build(info: BuildInfo | None = None) -> str:
    """One line for Help → About, e.g. ``"Installer build: CPU flavour (torch 2.13.0+cpu, built 2026-11-02)"``."""
    info = info or build_info()
    if not info.bundled:
        return "Running from a source checkout (not an installer build)."
    label = "CPU" if info.flavour == "cpu" else "CUDA"
    details = ", ".join(
        part
        for part in (f"torch {info.torch}" if info.torch else "", f"built {info.built}" if info.built else "")
        if part
    )
    return f"Installer build: {label} flavour" + (f" ({details})." if details else ".")
