"""Writing output files: atomically, with permissions a shared audit folder needs."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["json_bytes", "write_bytes_atomic"]

# Audit outputs are handed to reviewers: readable by others, as an ordinary file would be
# (mkstemp alone would leave them 0600).
_OUTPUT_MODE = 0o644


def json_bytes(document: Mapping[str, Any]) -> bytes:
    """The one JSON serialisation of results (UTF-8, indented, strict: no NaN), ending in a newline."""
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    A crash never leaves half a file; missing parent folders are created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _OUTPUT_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
