"""``manifest.json``: the SHA-256 and size of every file an audit read or wrote.

Written last by ``probity audit`` next to ``report.pdf`` and ``results.json``::

    {
      "manifest_version": 1,
      "probity_version": "0.1.0",
      "created": "2024-05-01T12:00:00+00:00",      # the audit's recorded timestamp
      "files": [
        {"role": "report",  "path": "report.pdf",   "sha256": "...", "size_bytes": 123},
        {"role": "results", "path": "results.json", "sha256": "...", "size_bytes": 456},
        {"role": "data",    "path": "data/credit.csv", "sha256": "...", "size_bytes": 789},
        {"role": "model",   "path": "credit_model.skops", "sha256": "...", "size_bytes": 1011}
      ]
    }

Output files are named relative to the manifest's folder; input files keep the
path exactly as it was given on the command line.  Nothing in it reads the
clock, so the same audit writes the same manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import ProbityError
from engine.hashing import sha256_file

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "file_entry",
    "build_manifest",
    "read_manifest",
    "entries",
    "check_outputs",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def file_entry(role: str, path: Path, *, shown: str | None = None, sha256: str | None = None) -> dict[str, Any]:
    """One manifest entry: role, path as shown, SHA-256 (computed unless given) and size in bytes.

    A model's SHA-256 is its identity, which for an ONNX graph with external data
    covers the data files too (:func:`engine.models.onnx_adapter.model_identity`).
    """
    if sha256 is None and role == "model":
        from engine.models.onnx_adapter import model_identity

        sha256 = model_identity(path)
    return {
        "role": role,
        "path": str(path) if shown is None else shown,
        "sha256": sha256 if sha256 is not None else sha256_file(path),
        "size_bytes": Path(path).stat().st_size,
    }


def build_manifest(
    *,
    outputs: Mapping[str, Path | tuple[str, bytes]],
    inputs: Sequence[tuple[str, Path]],
    created: str,
) -> dict[str, Any]:
    """The manifest document.

    Parameters
    ----------
    outputs:
        Role → written file (``"report"``, ``"results"``), or role → ``(file name,
        content)`` for a file not yet in place (an atomic export hashes what it is
        about to rename); recorded by file name only, as they sit beside the manifest.
    inputs:
        ``(role, path as given)`` of every file the audit read (``"data"``, ``"model"``).
    created:
        The audit's recorded ISO 8601 timestamp, never the clock.
    """
    files = []
    for role, output in outputs.items():
        if isinstance(output, tuple):
            name, content = output
            files.append(
                {"role": role, "path": name, "sha256": hashlib.sha256(content).hexdigest(), "size_bytes": len(content)}
            )
        else:
            files.append(file_entry(role, output, shown=Path(output).name))
    files += [file_entry(role, path) for role, path in inputs]
    return {
        "manifest_version": MANIFEST_VERSION,
        "probity_version": __version__,
        "created": created,
        "files": files,
    }


def read_manifest(path: Path) -> dict[str, Any]:
    """Read a manifest, refusing anything that is not one.

    Raises
    ------
    ProbityError
        When the file cannot be read or is not a manifest of this version.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProbityError(f"The manifest {path} cannot be read: {exc.strerror or exc}.", path=path) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProbityError(f"The manifest {path} is not valid JSON: {exc}.", path=path) from exc
    if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION:
        raise ProbityError(f"The file {path} is not a Probity manifest (version {MANIFEST_VERSION}).", path=path)
    if not isinstance(data.get("files"), list):
        raise ProbityError(f"The manifest {path} lists no files.", path=path)
    return data


def entries(manifest: Mapping[str, Any], role: str) -> list[Mapping[str, Any]]:
    """The manifest's entries of ``role``."""
    return [e for e in manifest.get("files") or [] if isinstance(e, Mapping) and e.get("role") == role]


def check_outputs(manifest: Mapping[str, Any], folder: Path) -> list[str]:
    """Differences between the manifest's output entries and the files beside it, one sentence each."""
    out: list[str] = []
    for role in ("report", "results"):
        for entry in entries(manifest, role):
            path = Path(folder) / str(entry.get("path"))
            if not path.is_file():
                out.append(f"{MANIFEST_NAME} lists {entry.get('path')}, which is missing.")
                continue
            actual = sha256_file(path)
            if actual != entry.get("sha256"):
                out.append(
                    f"{path.name} SHA-256 differs from {MANIFEST_NAME}: manifest has "
                    f"{entry.get('sha256')}, file has {actual}."
                )
    return out
