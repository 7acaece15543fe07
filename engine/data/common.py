"""What every table reader shares: the formats, the missing-value markers, file checks and names.

:func:`check_file` turns every way a path can fail to be a readable data file
into one :class:`~engine.errors.DataError` sentence before any reader runs;
:func:`check_names` and :func:`fill_blank_names` hold the column-name rules of
all formats; :func:`arrow_to_frame` is the one Arrow-to-pandas conversion.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from engine.errors import DataError

__all__ = [
    "FORMATS",
    "MISSING_MARKERS",
    "error_reason",
    "check_file",
    "read_head",
    "read_tail",
    "check_names",
    "fill_blank_names",
    "arrow_to_frame",
]

#: Extension (lower case) -> format name recorded in ``Dataset.format``.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".feather": "feather",
    ".arrow": "feather",
    ".ipc": "feather",
    ".xlsx": "xlsx",
}

#: Field values read as missing in text and Excel files, besides
#: ``ReadOptions.missing_values``.  "?" and "-" are deliberately absent: they are
#: missing only when a user says so.
MISSING_MARKERS: tuple[str, ...] = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "#N/A", "<NA>")


def error_reason(exc: BaseException) -> str:
    """First line of an exception's text, without a trailing full stop."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")


def check_file(path: Path) -> str:
    """Return the format of ``path`` or raise DataError for a file that cannot be read."""
    name = path.name or str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(f"The data file {name!r} does not exist.", path=path) from None
    except PermissionError:
        raise DataError(f"The data file {name!r} cannot be read: permission denied.", path=path) from None
    except OSError as exc:
        raise DataError(f"The data file {name!r} cannot be opened: {error_reason(exc)}.", path=path) from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"The path {name!r} is a folder, not a data file.", path=path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        supported = ", ".join(FORMATS)
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise DataError(
            f"The data file {name!r} has {shown}, which is not a supported format (use one of {supported}).",
            path=path,
        )
    if not os.access(path, os.R_OK):
        raise DataError(f"The data file {name!r} cannot be read: permission denied.", path=path)
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except PermissionError:
        raise DataError(f"The data file {name!r} cannot be read: permission denied.", path=path) from None
    except OSError as exc:
        raise DataError(f"The data file {name!r} cannot be read: {error_reason(exc)}.", path=path) from None
    if info.st_size == 0:
        raise DataError(f"The data file {name!r} is empty.", path=path)
    return FORMATS[suffix]


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of ``path`` (fewer for a shorter file)."""
    with open(path, "rb") as handle:
        return handle.read(size)


def read_tail(path: Path, size: int) -> bytes:
    """The last ``size`` bytes of ``path`` (fewer for a shorter file)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        handle.seek(max(0, end - size))
        return handle.read()


def check_names(path: Path, names: Sequence[object]) -> None:
    """Refuse a table whose column names, as strings, are not unique."""
    counts = Counter(str(n) for n in names)
    dupes = [n for n, c in counts.items() if c > 1]
    if dupes:
        listed = ", ".join(repr(n) for n in dupes)
        raise DataError(f"The data file {path.name!r} has duplicate column names: {listed}.", path=path)


def fill_blank_names(names: Sequence[object]) -> list[str]:
    """Column names as strings, a blank one named ``column_<i>`` after its 1-based position."""
    # A CSV written with its pandas index has an empty first header cell; name it
    # like a header-less column instead of refusing the file.
    return [str(n) if str(n).strip() else f"column_{i + 1}" for i, n in enumerate(names)]


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Convert to pandas with a default RangeIndex and string column names.

    A named index stored by pandas (Parquet/Feather metadata) comes back as an
    ordinary column; an unnamed one is dropped, since it only numbered rows.
    """
    # split_blocks keeps one block per column, so numeric columns without gaps are taken
    # over from Arrow without a copy; with copy-on-write the frame is read-only anyway.
    frame = table.to_pandas(date_as_object=False, use_threads=True, split_blocks=True)
    index = frame.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        named = [n for n in index.names if n is not None]
        if named:
            frame = frame.reset_index(level=named)
        frame = frame.reset_index(drop=True)
    if not all(isinstance(c, str) for c in frame.columns):
        frame.columns = [str(c) for c in frame.columns]
    return frame
