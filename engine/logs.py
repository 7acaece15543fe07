"""Where unexpected errors are written, with their tracebacks, for support."""

from __future__ import annotations

import datetime as _dt
import os
import sys
import traceback
from pathlib import Path

__all__ = ["log_dir", "log_exception"]


def log_dir() -> Path:
    """``$PROBITY_LOG_DIR``, else the platform's per-user log/state folder."""
    env = os.environ.get("PROBITY_LOG_DIR")
    if env:
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "Probity"
    if sys.platform.startswith("win"):
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "Probity" / "logs"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "probity"


def log_exception(exc: BaseException, *, context: str = "") -> Path:
    """Append ``exc`` with its traceback to the log file and return the file's path."""
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "probity.log"
    stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"--- {stamp} {context}\n{text}\n")
    return path
