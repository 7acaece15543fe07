"""Saved sessions: the ``.probity`` file that reopens a piece of work without recomputing it.

A session file is UTF-8 JSON::

    {
      "format": "probity-session",
      "format_version": 1,
      "probity_version": "0.1.0",
      "saved_at": "2024-05-01T12:00:00+00:00",
      "data":  {"path": "/abs/credit.csv", "relative": "credit.csv", "sha256": "...",
                "read_options": {...}},
      "model": {"path": "/abs/model.skops", "relative": "model.skops", "sha256": "...",
                "trust": {"required": false, "granted_by": "not required", ...}},
      "roles": {"target": "approved", "features": [...], "sensitive": [...], "ignored": [...]},
      "parameters": {"permutation": {"params": {"n_repeats": 5}, "seed": 3}},
      "results": {"permutation": {<Result.to_dict()>}, ...},
      "notes": "Reviewer notes, free text."
    }

``relative`` is the path from the session file's folder, so a folder holding
the session and its inputs can be moved as a whole.  The recorded trust
decision is informational: reopening a file that needs trust asks again,
because a session file is not evidence that its author reviewed the model
(and the decision covered that exact SHA-256 only).

Nothing here imports Qt; the GUI reads and writes sessions on a worker thread.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import ProbityError
from engine.files import JSONNestingError, json_bytes, loads_json, write_bytes_atomic
from engine.hashing import sha256_file
from engine.limits import Limits, current_limits
from engine.results import Result, result_from_dict, utc_now
from engine.schema import ReadOptions, Roles

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SESSION_SUFFIX",
    "FileRecord",
    "FileCheck",
    "SessionState",
    "write_session",
    "read_session",
    "check_files",
]

FORMAT_NAME = "probity-session"
FORMAT_VERSION = 1
SESSION_SUFFIX = ".probity"


@dataclass(frozen=True)
class FileRecord:
    """A file the session used: where it was and the SHA-256 of its bytes then.

    Attributes
    ----------
    path: absolute path when the session was saved.
    sha256: hex digest then (``None`` when unknown).
    relative: path from the session file's folder (``None`` when there is none,
        e.g. on another drive).
    """

    path: Path
    sha256: str | None
    relative: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def locate(self, base: Path | None) -> Path | None:
        """The file now: the recorded path, else the same relative place beside the session file."""
        if self.path.is_file():
            return self.path
        if base is not None and self.relative:
            moved = base / self.relative
            if moved.is_file():
                return moved
        return None


@dataclass(frozen=True)
class FileCheck:
    """How a recorded file compares with what is on disk now.

    ``status`` is ``"unchanged"``, ``"changed"`` (its SHA-256 differs) or
    ``"missing"``; ``found`` is the file that was hashed (``None`` when missing).
    """

    role: str
    record: FileRecord
    found: Path | None
    sha256_now: str | None

    @property
    def status(self) -> str:
        if self.found is None:
            return "missing"
        if self.record.sha256 is not None and self.sha256_now != self.record.sha256:
            return "changed"
        return "unchanged"

    def sentence(self) -> str:
        """One sentence for the banner; empty when the file is unchanged."""
        what = "data file" if self.role == "data" else "model file"
        if self.status == "missing":
            return f"The {what} {self.record.name} is missing (it was at {self.record.path})."
        if self.status == "changed":
            return (
                f"The {what} {self.record.name} has changed since the session was saved "
                "(its SHA-256 differs); the saved results describe the earlier file."
            )
        return ""


@dataclass(frozen=True, eq=False)
class SessionState:
    """Everything a session file holds, with results rebuilt as :class:`~engine.results.Result` objects.

    Attributes
    ----------
    data, read_options: the data file and the parse options actually used.
    model, model_trust: the model file and the trust decision it was loaded under
        (``TrustDecision.to_dict()``; informational).
    roles: column roles (``None`` before a dataset was opened).
    parameters: per analysis, the form's parameters and seed (``{"params": {...}, "seed": n}``).
    results: finished results by analysis name.
    notes: the reviewer's notes.
    saved_at: ISO 8601 UTC time of saving.
    problems: sentences about results in the file that could not be rebuilt (they are skipped).
    """

    data: FileRecord | None = None
    read_options: ReadOptions = field(default_factory=ReadOptions)
    model: FileRecord | None = None
    model_trust: Mapping[str, Any] = field(default_factory=dict)
    roles: Roles | None = None
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    results: Mapping[str, Result] = field(default_factory=dict)
    notes: str = ""
    saved_at: str = ""
    problems: tuple[str, ...] = ()

    def to_dict(self, *, base: Path | None = None) -> dict[str, Any]:
        """The JSON document; ``base`` is the session file's folder (for relative paths)."""
        doc: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "probity_version": __version__,
            "saved_at": self.saved_at or utc_now(),
            "data": None,
            "model": None,
            "roles": None if self.roles is None else self.roles.to_dict(),
            "parameters": {str(k): dict(v) for k, v in self.parameters.items()},
            "results": {str(name): result.to_dict() for name, result in self.results.items()},
            "notes": self.notes,
        }
        if self.data is not None:
            doc["data"] = {**_file_dict(self.data, base), "read_options": self.read_options.to_dict()}
        if self.model is not None:
            doc["model"] = {**_file_dict(self.model, base), "trust": dict(self.model_trust)}
        return doc


def _file_dict(record: FileRecord, base: Path | None) -> dict[str, Any]:
    absolute = record.path.absolute()
    relative = None
    if base is not None:
        try:
            relative = Path(os.path.relpath(absolute, base.absolute())).as_posix()
        except ValueError:  # another drive (Windows): no relative path exists
            relative = None
    return {"path": str(absolute), "relative": relative, "sha256": record.sha256}


def write_session(path: Path, state: SessionState) -> None:
    """Write ``state`` to ``path`` atomically (a crash never leaves half a session file).

    Raises
    ------
    ProbityError
        When the file cannot be written (the message names it).
    """
    path = Path(path)
    try:
        write_bytes_atomic(path, json_bytes(state.to_dict(base=path.parent)))
    except OSError as exc:
        raise ProbityError(f"The session file {path} cannot be written: {exc.strerror or exc}.", path=path) from exc


def read_session(path: Path, *, limits: Limits | None = None) -> SessionState:
    """Read a session file and rebuild its results.

    Results whose kind this installation does not know, or that do not parse,
    are skipped and named in :attr:`SessionState.problems`; everything else
    still opens.  The JSON may nest at most ``limits.max_json_depth`` levels
    (default :func:`engine.limits.current_limits`).

    Raises
    ------
    ProbityError
        When the file is missing, not JSON, or not a Probity session of a
        version this installation reads.
    """
    path = Path(path)
    name = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProbityError(f"The session file {name} does not exist.", path=path) from None
    except OSError as exc:
        raise ProbityError(f"The session file {name} cannot be read: {exc.strerror or exc}.", path=path) from None
    try:
        doc = loads_json(raw.decode("utf-8"), max_depth=(current_limits() if limits is None else limits).max_json_depth)
    except JSONNestingError as exc:
        raise ProbityError(exc.sentence(f"The session file {name}"), path=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProbityError(f"The session file {name} is not valid JSON: {exc}.", path=path) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ProbityError(f"The file {name} is not a Probity session file.", path=path)
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise ProbityError(
            f"The session file {name} has format version {version!r}; this Probity reads version {FORMAT_VERSION}.",
            path=path,
        )
    try:
        return _state_from_doc(doc, base=path.parent)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ProbityError(f"The session file {name} is damaged: {exc}.", path=path) from None


def _record(data: Any) -> FileRecord | None:
    if not isinstance(data, Mapping) or not data.get("path"):
        return None
    sha = data.get("sha256")
    relative = data.get("relative")
    return FileRecord(
        path=Path(str(data["path"])), sha256=str(sha) if sha else None, relative=str(relative) if relative else None
    )


def _state_from_doc(doc: Mapping[str, Any], *, base: Path) -> SessionState:
    # Result kinds register themselves when their modules are imported.
    import engine.registry  # noqa: F401

    data: Mapping[str, Any] = doc["data"] if isinstance(doc.get("data"), Mapping) else {}
    model: Mapping[str, Any] = doc["model"] if isinstance(doc.get("model"), Mapping) else {}
    roles = doc.get("roles")
    results: dict[str, Result] = {}
    problems: list[str] = []
    for name, value in (doc.get("results") or {}).items():
        try:
            results[str(name)] = result_from_dict(value)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"The saved result {name!r} could not be read ({exc}) and is not shown.")
    parameters = {str(k): dict(v) for k, v in (doc.get("parameters") or {}).items() if isinstance(v, Mapping)}
    return SessionState(
        data=_record(data),
        read_options=ReadOptions.from_dict(data.get("read_options") or {}),
        model=_record(model),
        model_trust=dict(model.get("trust") or {}),
        roles=Roles.from_dict(roles) if isinstance(roles, Mapping) else None,
        parameters=parameters,
        results=results,
        notes=str(doc.get("notes") or ""),
        saved_at=str(doc.get("saved_at") or ""),
        problems=tuple(problems),
    )


def check_files(state: SessionState, *, base: Path | None) -> tuple[FileCheck, ...]:
    """Locate and re-hash the session's data and model files.

    Parameters
    ----------
    state:
        A session read by :func:`read_session`.
    base:
        The session file's folder, where moved inputs are also looked for.

    Returns
    -------
    tuple of FileCheck
        One per recorded file (data first), in the order recorded.
    """
    checks: list[FileCheck] = []
    for role, record in (("data", state.data), ("model", state.model)):
        if record is None:
            continue
        found = record.locate(base)
        digest = None
        if found is not None:
            try:
                digest = sha256_file(found)
            except OSError:
                found = None  # unreadable now: as good as missing
        checks.append(FileCheck(role=role, record=record, found=found, sha256_now=digest))
    return tuple(checks)
