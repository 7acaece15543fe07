"""Reading a table: :func:`load_table` checks the file, hands it to its format's reader and infers the schema.

:func:`preview_table` parses only the start of a text file the same way, for
the import dialog.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from engine.data.columnar import read_feather, read_parquet
from engine.data.common import check_file, check_names, error_reason, read_head
from engine.data.delimited import read_delimited
from engine.data.excel import read_xlsx
from engine.data.kinds import infer_schema
from engine.data.sniff import SAMPLE_BYTES
from engine.errors import DataError
from engine.hashing import sha256_file
from engine.limits import Limits, current_limits
from engine.schema import Dataset, ReadOptions

__all__ = ["ProgressCallback", "load_table", "TablePreview", "preview_table"]

ProgressCallback = Callable[[float, str], None]


def _noop_progress(fraction: float, message: str) -> None:
    return None


def load_table(
    path: str | Path,
    options: ReadOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    limits: Limits | None = None,
) -> Dataset:
    """Read a data file into a :class:`~engine.schema.Dataset`.

    Parameters
    ----------
    path:
        The file; its extension picks the format (see :data:`engine.data.FORMATS`).
    options:
        Parse options; ``None`` fields are detected.  Text options (delimiter,
        encoding, decimal, quotechar) apply to delimited text only, ``sheet`` to
        Excel only, ``header_row`` and ``missing_values`` to text and Excel.
    progress:
        Optional ``progress(fraction, message)`` callback, fraction in [0, 1].
        Reading is a single step, so it is called only a few times.
    limits:
        The longest text row (``max_text_row_bytes``) and an xlsx workbook's
        decompressed size, ratio and member count; default
        :func:`engine.limits.current_limits`.

    Returns
    -------
    Dataset
        ``frame`` has a default ``RangeIndex`` and string column names;
        ``options`` holds the options actually used; ``sha256`` is the hex digest
        of the file's bytes; ``schema`` comes from :func:`infer_schema`.

    Raises
    ------
    DataError
        For any file that cannot be read as a table, with one sentence naming the
        file and the problem.
    """
    path = Path(path)
    options = ReadOptions() if options is None else options
    limits = current_limits() if limits is None else limits
    report = _noop_progress if progress is None else progress
    fmt = check_file(path)
    report(0.0, f"Reading {path.name}")
    # Hash on a second thread: hashlib releases the GIL, so it overlaps the parse.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256_file, path)
        try:
            if fmt == "csv":
                frame, used = read_delimited(path, options, limits)
            elif fmt == "parquet":
                frame, used = read_parquet(path), options
            elif fmt == "feather":
                frame, used = read_feather(path), options
            else:
                frame, used = read_xlsx(path, options, limits)
        except DataError:
            raise
        except (
            pa.ArrowException,
            pd.errors.ParserError,
            pd.errors.EmptyDataError,
            UnicodeError,
            OSError,
            csv.Error,
        ) as exc:
            # The readers translate every failure they know; this net keeps a parser's
            # own exception from ever reaching a user.
            raise DataError(
                f"The data file {path.name!r} could not be read as a table: {error_reason(exc)}.", path=path
            ) from exc
        check_names(path, list(frame.columns))
        if len(frame.columns) == 0:
            raise DataError(f"The data file {path.name!r} has no columns.", path=path)
        if len(frame) == 0:
            what = "a header but no data rows" if fmt in ("csv", "xlsx") else "no data rows"
            raise DataError(f"The data file {path.name!r} has {what}.", path=path)
        report(0.8, f"Inferring column types of {path.name}")
        schema = infer_schema(frame)
        try:
            sha = digest.result()
        except OSError as exc:
            raise DataError(f"The data file {path.name!r} could not be read: {error_reason(exc)}.", path=path) from exc
    report(1.0, f"Loaded {len(frame):,} rows and {len(frame.columns)} columns from {path.name}")
    return Dataset(frame=frame, path=path, sha256=sha, format=fmt, options=used, schema=schema)


@dataclass(frozen=True, eq=False)
class TablePreview:
    """The first rows of a table, parsed as :func:`load_table` parses the whole file.

    Attributes
    ----------
    frame:
        The first rows, shape ``(<= max_rows, n_columns)``, string column names.
    options:
        The options used, detected values filled in (as ``Dataset.options``).
    format:
        As ``Dataset.format`` (``"csv"``, ``"parquet"``, ``"feather"``, ``"xlsx"``).
    complete:
        ``True`` when ``frame`` holds every row of the file.
    """

    frame: pd.DataFrame
    options: ReadOptions
    format: str
    complete: bool


def preview_table(path: str | Path, options: ReadOptions | None = None, *, max_rows: int = 50) -> TablePreview:
    """Parse only the start of a table, to show how ``options`` read it before loading it all.

    Delimited text is cut after the lines the header and ``max_rows`` rows need
    and that prefix goes through :func:`load_table`, so the preview shows exactly
    what loading would give for those rows (types are inferred from them alone).
    Other formats are read whole; the GUI previews text files only.

    Parameters
    ----------
    path:
        The data file.
    options:
        Parse options; ``None`` fields are detected.
    max_rows:
        Most rows returned (at least 1).

    Raises
    ------
    DataError
        As :func:`load_table`, naming ``path``.
    """
    import tempfile

    path = Path(path)
    options = ReadOptions() if options is None else options
    max_rows = max(1, int(max_rows))
    fmt = check_file(path)
    if fmt != "csv":
        dataset = load_table(path, options)
        return TablePreview(
            frame=dataset.frame.head(max_rows), options=dataset.options, format=fmt, complete=dataset.n_rows <= max_rows
        )
    head = read_head(path, SAMPLE_BYTES)
    whole = len(head) >= path.stat().st_size
    # Header line(s) before the rows, the rows, and one more line to tell whether the file goes on.
    wanted = max(0, options.header_row or 0) + 1 + max_rows + 1
    cut = _after_lines(head, wanted, options.encoding)
    if whole and cut is None:  # a short file: read it all
        dataset = load_table(path, options)
        return TablePreview(
            frame=dataset.frame.head(max_rows), options=dataset.options, format=fmt, complete=dataset.n_rows <= max_rows
        )
    prefixes = [head[:cut]] if cut is not None else []
    if not whole:
        last = _after_lines(head, None, options.encoding)  # the whole sample, up to its last full line
        if last is not None and last != cut:
            prefixes.append(head[:last])  # a quoted value spanning lines may need more of the file
    if not prefixes:  # not one line end in the sample: a single, very long line
        prefixes = [head]
    error: DataError | None = None
    with tempfile.TemporaryDirectory(prefix="probity-preview-") as folder:
        # Same name as the original, so every error message names the user's file.
        copy = Path(folder) / path.name
        for prefix in prefixes:
            copy.write_bytes(prefix)
            try:
                dataset = load_table(copy, options)
            except DataError as exc:
                error = exc
                continue
            rows = dataset.n_rows
            return TablePreview(
                frame=dataset.frame.head(max_rows),
                options=dataset.options,
                format=fmt,
                complete=whole and len(prefix) == len(head) and rows <= max_rows,
            )
    assert error is not None
    raise DataError(error.message, path=path) from error


def _after_lines(head: bytes, n_lines: int | None, encoding: str | None) -> int | None:
    """Byte offset just after the ``n_lines``-th line end of ``head`` (``None``: after the last one).

    Returns ``None`` when ``head`` has fewer line ends.  UTF-16 text is cut on
    whole code units.
    """
    try:
        named_wide = encoding is not None and codecs.lookup(encoding).name.startswith("utf-16")
    except LookupError:  # load_table names the unknown encoding
        named_wide = False
    wide = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or named_wide
    if wide:
        big = head.startswith(codecs.BOM_UTF16_BE) or (encoding is not None and "be" in encoding.lower())
        mark = b"\x00\n" if big else b"\n\x00"
        ends = [m.end() for m in re.finditer(re.escape(mark), head) if m.start() % 2 == 0]
    else:
        mark = b"\n" if b"\n" in head else b"\r"
        ends = [m.end() for m in re.finditer(re.escape(mark), head)]
    if not ends:
        return None
    if n_lines is None:
        return ends[-1]
    return ends[n_lines - 1] if len(ends) >= n_lines else None
