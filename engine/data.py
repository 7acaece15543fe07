"""Data intake: read a table from disk into a :class:`~engine.schema.Dataset`.

``load_table(path, options)`` reads delimited text (``.csv``, ``.tsv``,
``.txt``), Parquet (``.parquet``, ``.pq``), Feather / Arrow IPC (``.feather``,
``.arrow``, ``.ipc``) and Excel workbooks (``.xlsx``).  The format comes from
the extension, checked against the file's first bytes.  For text files the
encoding, delimiter, quote character, decimal mark and header line are detected
unless :class:`~engine.schema.ReadOptions` fixes them; the returned dataset
records the options actually used, so ``load_table(path, dataset.options)``
parses the file the same way again.

Delimited text goes through ``pyarrow.csv`` (multi-threaded, decimal comma
included); pandas is only used for what pyarrow cannot parse, a delimiter of
more than one character.  Every problem a person can cause (missing file, wrong
format, ragged rows, duplicate names ...) raises :class:`~engine.errors.DataError`
with one sentence naming the file; no pyarrow or pandas exception escapes.

Column kinds (:func:`infer_schema`) follow the documented thresholds below.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.errors import DataError
from engine.files import ArchiveProblem, check_zip_archive
from engine.hashing import sha256_file
from engine.limits import Limits, current_limits, format_bytes, raise_hint
from engine.schema import ColumnInfo, ColumnKind, Dataset, ReadOptions, Schema

__all__ = [
    "FORMATS",
    "MISSING_MARKERS",
    "ProgressCallback",
    "load_table",
    "infer_schema",
    "TablePreview",
    "preview_table",
]

ProgressCallback = Callable[[float, str], None]

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

# --- text sniffing ------------------------------------------------------------------------------
_SAMPLE_BYTES = 1 << 20  # bytes read to sniff the dialect; ~5k rows of a typical table
_SAMPLE_RECORDS = 2000  # records parsed in Python to sniff; the rest is left to pyarrow
_DELIMITERS = (",", ";", "\t", "|")  # candidates, in order of preference on a tie
_BLOCK_SIZE = 1 << 20  # pyarrow block; 1 MiB keeps both cores busy on files of a few MB upwards

_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_COMMA_DECIMAL = re.compile(r"[+-]?\d*,\d+")
_DOT_DECIMAL = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")
_LINE_END = re.compile(r"\r\n|\r|\n")
_CONVERSION_ERROR = re.compile(r"CSV column #(\d+): CSV conversion error to (?:int64|double)")
_INTEGER_LINES = re.compile(r"[+-]?\d+(?:\n[+-]?\d+)*")
_DOT_FLOAT = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_COMMA_FLOAT = _DOT_FLOAT.replace("\\.", ",")
_DOT_NUMBER_LINES = re.compile(rf"{_DOT_FLOAT}(?:\n{_DOT_FLOAT})*")
_COMMA_NUMBER_LINES = re.compile(rf"{_COMMA_FLOAT}(?:\n{_COMMA_FLOAT})*")
_WORD_START = re.compile(r"^[^\W\d_]", re.MULTILINE)
# Words that start with a letter yet pyarrow may read as a number or boolean; any other
# value starting with a letter makes its column text.
_NON_TEXT_WORDS = frozenset({"true", "false", "nan", "inf", "infinity", "null", "none", "na", "n/a"})

# Signatures of common non-table files, to name what a mis-named file really is.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"PAR1", "a Parquet file"),
    (b"ARROW1", "a Feather/Arrow file"),
    (b"FEA1", "a Feather file"),
    (b"\xd0\xcf\x11\xe0", "an old-style .xls workbook or other OLE2 document"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
)
# Control bytes other than tab, line feed, carriage return and form feed; text files
# carry almost none, so more than 1 % of the head means binary data.
_CONTROL_BYTES = bytes([*range(0, 9), 11, *range(14, 32), 127])
_MAX_CONTROL_SHARE = 0.01

# --- column kinds ------------------------------------------------------------------------------
#: Below this many non-missing values, "every value is distinct" is no evidence of an
#: identifier (three rows of 1, 2, 3 are just three numbers).
ID_MIN_ROWS = 20
#: A string column is free TEXT when, on a sample of its values, at least this share
#: contain whitespace, their mean length is at least TEXT_MIN_MEAN_LENGTH characters,
#: and at least TEXT_MIN_DISTINCT_RATIO of its values are distinct.
TEXT_MIN_SPACE_SHARE = 0.5
TEXT_MIN_MEAN_LENGTH = 20.0
TEXT_MIN_DISTINCT_RATIO = 0.5
#: A zero-padded digit column ("0001234") is an IDENTIFIER when at least this share of its
#: values is distinct, else a CATEGORICAL code (a branch or postal code repeated across rows).
PADDED_ID_MIN_DISTINCT_RATIO = 0.5
_KIND_SAMPLE = 10_000  # string values examined for the text / padded-code rules
_ID_TOKENS = frozenset({"id", "uuid", "guid", "identifier"})
_BOOL_PAIRS = (
    frozenset({"true", "false"}),
    frozenset({"yes", "no"}),
    frozenset({"y", "n"}),
    frozenset({"t", "f"}),
)
_PARALLEL_CELLS = 2_000_000  # schema work above this many cells is spread over threads


def _noop_progress(fraction: float, message: str) -> None:
    return None


# =================================================================================================
# Public API
# =================================================================================================


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
        The file; its extension picks the format (see :data:`FORMATS`).
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
    fmt = _check_file(path)
    report(0.0, f"Reading {path.name}")
    # Hash on a second thread: hashlib releases the GIL, so it overlaps the parse.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256_file, path)
        try:
            if fmt == "csv":
                frame, used = _read_delimited(path, options, limits)
            elif fmt == "parquet":
                frame, used = _read_parquet(path), options
            elif fmt == "feather":
                frame, used = _read_feather(path), options
            else:
                frame, used = _read_xlsx(path, options, limits)
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
                f"The data file {path.name!r} could not be read as a table: {_reason(exc)}.", path=path
            ) from exc
        _check_names(path, list(frame.columns))
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
            raise DataError(f"The data file {path.name!r} could not be read: {_reason(exc)}.", path=path) from exc
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
    fmt = _check_file(path)
    if fmt != "csv":
        dataset = load_table(path, options)
        return TablePreview(
            frame=dataset.frame.head(max_rows), options=dataset.options, format=fmt, complete=dataset.n_rows <= max_rows
        )
    head = _read_head(path, _SAMPLE_BYTES)
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


def infer_schema(frame: pd.DataFrame) -> Schema:
    """Describe every column of ``frame``: kind, dtype, missing and distinct counts.

    Kinds are labels only; no value is converted.  The rules, in order:

    * ``bool`` dtype, a numeric column whose values are exactly {0, 1}, or a string
      column with exactly two values forming a pair such as true/false, yes/no,
      y/n, t/f (any case) -> BOOLEAN.  A 0/1 target therefore reads BOOLEAN but
      keeps its integer dtype and stays numerically usable.
    * datetime dtypes (or objects holding dates) -> DATETIME.
    * integer-valued numbers, every value distinct, and either the name has an
      id token (``id``, ``customer_id``, ``CustomerId``, ``uuid``) or, with at
      least :data:`ID_MIN_ROWS` values, they are consecutive (a saved row
      counter) -> IDENTIFIER.  Other numbers -> NUMERIC (an all-distinct income
      column is not an identifier).
    * strings of digits with a leading zero ("0001234") -> IDENTIFIER when at
      least :data:`PADDED_ID_MIN_DISTINCT_RATIO` of them are distinct, else
      CATEGORICAL.
    * strings with every value distinct and no whitespace, given at least
      :data:`ID_MIN_ROWS` values or an id-like name -> IDENTIFIER.
    * strings that are mostly distinct, long and contain spaces (see the TEXT_*
      thresholds) -> TEXT.
    * anything else (strings, pandas categoricals, mixed objects) -> CATEGORICAL.

    Parameters
    ----------
    frame:
        Table of shape (n_rows, n_columns); duplicate names are allowed here.

    Returns
    -------
    Schema
        One :class:`~engine.schema.ColumnInfo` per column, in frame order.
    """
    columns = [(str(name), frame.iloc[:, j]) for j, name in enumerate(frame.columns)]
    if frame.size >= _PARALLEL_CELLS and len(columns) > 1:
        # Sorting and hashing release the GIL, so two threads use both cores.
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            infos = list(pool.map(lambda item: _column_info(*item), columns))
    else:
        infos = [_column_info(name, series) for name, series in columns]
    return Schema(columns=tuple(infos))


# =================================================================================================
# File checks
# =================================================================================================


def _reason(exc: BaseException) -> str:
    """First line of an exception's text, without a trailing full stop."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")


def _check_file(path: Path) -> str:
    """Return the format of ``path`` or raise DataError for a file that cannot be read."""
    name = path.name or str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(f"The data file {name!r} does not exist.", path=path) from None
    except PermissionError:
        raise DataError(f"The data file {name!r} cannot be read: permission denied.", path=path) from None
    except OSError as exc:
        raise DataError(f"The data file {name!r} cannot be opened: {_reason(exc)}.", path=path) from None
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
        raise DataError(f"The data file {name!r} cannot be read: {_reason(exc)}.", path=path) from None
    if info.st_size == 0:
        raise DataError(f"The data file {name!r} is empty.", path=path)
    return FORMATS[suffix]


def _read_head(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _read_tail(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        handle.seek(max(0, end - size))
        return handle.read()


def _check_names(path: Path, names: Sequence[object]) -> None:
    counts = Counter(str(n) for n in names)
    dupes = [n for n, c in counts.items() if c > 1]
    if dupes:
        listed = ", ".join(repr(n) for n in dupes)
        raise DataError(f"The data file {path.name!r} has duplicate column names: {listed}.", path=path)


def _fill_blank_names(names: Sequence[object]) -> list[str]:
    # A CSV written with its pandas index has an empty first header cell; name it
    # like a header-less column instead of refusing the file.
    return [str(n) if str(n).strip() else f"column_{i + 1}" for i, n in enumerate(names)]


# =================================================================================================
# Delimited text
# =================================================================================================


class _EncodingError(DataError):
    """The bytes do not decode with the encoding in use (internal: triggers a retry)."""


@dataclass(frozen=True)
class _Dialect:
    """What sniffing the head of a text file resolved."""

    delimiter: str
    quotechar: str
    decimal: str
    header_row: int
    encoding: str
    names: tuple[str, ...]
    skip_lines: int  # physical lines before the first data line (pyarrow's skip_rows)
    forced_string: tuple[str, ...]  # columns read as text, typed afterwards (leading zeros)
    text: tuple[str, ...]  # columns with a word in the sample: text whatever follows
    numeric: tuple[tuple[str, str], ...]  # (name, "int64" | "float64") as the sample shows
    newlines_in_values: bool


def _validate_text_options(path: Path, options: ReadOptions) -> None:
    name = path.name
    if options.delimiter is not None and (options.delimiter == "" or set(options.delimiter) & {"\n", "\r"}):
        raise DataError(f"The delimiter {options.delimiter!r} given for {name!r} is not usable.", path=path)
    if options.decimal is not None and options.decimal not in (".", ","):
        raise DataError(f"The decimal mark {options.decimal!r} given for {name!r} must be '.' or ','.", path=path)
    if options.decimal is not None and options.decimal == options.delimiter:
        raise DataError(f"The decimal mark given for {name!r} cannot equal its delimiter.", path=path)
    if options.quotechar is not None and len(options.quotechar) != 1:
        raise DataError(
            f"The quote character {options.quotechar!r} given for {name!r} must be one character.", path=path
        )
    if options.header_row is not None and (not isinstance(options.header_row, int) or options.header_row < -1):
        raise DataError(
            f"The header row {options.header_row!r} given for {name!r} must be -1 or a line index.", path=path
        )
    if options.encoding is not None:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            raise DataError(f"The encoding {options.encoding!r} given for {name!r} is unknown.", path=path) from None


def _check_text_head(path: Path, head: bytes) -> None:
    """Refuse binary content (a PNG renamed .csv) before parsing it as text.

    Text never holds NUL bytes, and holds few other control characters; a known
    signature only names what the binary file is (a header cell "PAR1" is text).
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if b"\x00" not in head and controls <= len(head) * _MAX_CONTROL_SHARE:
        return
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise DataError(f"The data file {path.name!r} is not a text table: it looks like {what}.", path=path)
    raise DataError(f"The data file {path.name!r} is not a text table: it contains binary data.", path=path)


def _detect_encoding(head: bytes, complete: bool) -> str:
    """UTF-8 (with or without BOM) first, then cp1252, then Latin-1 (which never fails)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _decode_sample(path: Path, head: bytes, encoding: str, complete: bool, explicit: bool) -> str:
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=complete)
    except UnicodeDecodeError:
        if explicit:
            raise DataError(
                f"The data file {path.name!r} is not valid {encoding} text; choose another encoding.", path=path
            ) from None
        raise
    return text.lstrip("\ufeff")


def _sniff_records(text: str, delimiter: str, quotechar: str, complete: bool) -> list[list[str]]:
    """Parse up to _SAMPLE_RECORDS records of the sample, blank lines dropped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar, strict=False)
    records: list[list[str]] = []
    try:
        for record in reader:
            if record:
                records.append(record)
            if len(records) > _SAMPLE_RECORDS:
                break
    except csv.Error:
        pass
    if not complete and records and len(records) <= _SAMPLE_RECORDS:
        records.pop()  # the sample ends mid-record
    return records[:_SAMPLE_RECORDS]


def _sniff_delimiter(text: str, complete: bool, default: str) -> tuple[str, list[list[str]] | None]:
    """Pick the candidate that splits the sample into the most consistent field count > 1.

    Ties (say "1,5;2,5" lines, consistent under both "," and ";") go to the split
    whose fields look like whole numbers, with the decimal mark that delimiter
    allows, then to the earlier candidate in :data:`_DELIMITERS`.  Also returns
    the sample's records under the chosen delimiter (``None`` for the default).
    """
    scored: list[tuple[float, int, str, list[list[str]]]] = []
    for rank, cand in enumerate(_DELIMITERS):
        if cand not in text:
            continue
        records = _sniff_records(text, cand, '"', complete)
        if not records:
            continue
        mode, freq = Counter(len(r) for r in records).most_common(1)[0]
        if mode >= 2:
            scored.append((freq / len(records), -rank, cand, records))
    if not scored:
        return default, None
    best = max(item[0] for item in scored)
    tied = [item for item in scored if item[0] == best]
    if len(tied) == 1:
        return tied[0][2], tied[0][3]

    def numeric_share(cand: str, records: list[list[str]]) -> float:
        pattern = _DOT_DECIMAL if cand == "," else _NUMBER
        fields = [f for r in records for f in r]
        hits = sum(1 for f in fields if pattern.fullmatch(f) or _INTEGER.fullmatch(f))
        return hits / max(1, len(fields))

    winner = max(tied, key=lambda item: (numeric_share(item[2], item[3]), item[1]))
    return winner[2], winner[3]


def _sniff_quotechar(records: list[list[str]], text: str) -> str:
    # A single quote is the quote character only when fields are wrapped in it and
    # no double quote appears anywhere: apostrophes inside words never trigger this.
    if '"' in text:
        return '"'
    wrapped = sum(1 for r in records for f in r if len(f) >= 2 and f[0] == "'" and f[-1] == "'")
    return "'" if wrapped else '"'


def _skip_physical_lines(text: str, n: int) -> tuple[str, bool]:
    """Drop the first ``n`` physical lines; False when the text has fewer."""
    pos = 0
    for _ in range(n):
        nl = _next_newline(text, pos)
        if nl < 0:
            return "", False
        pos = nl
    return text[pos:], True


def _next_newline(text: str, pos: int) -> int:
    """Index just past the line ending that starts at or after ``pos`` (-1 if none)."""
    match = _LINE_END.search(text, pos)
    return -1 if match is None else match.end()


def _sniff_dialect(path: Path, options: ReadOptions, head: bytes, complete: bool) -> _Dialect:
    encoding = options.encoding or _detect_encoding(head, complete)
    try:
        text = _decode_sample(path, head, encoding, complete, explicit=options.encoding is not None)
    except UnicodeDecodeError:
        encoding = "latin-1"
        text = head.decode("latin-1")
    if not text.strip():
        raise DataError(f"The data file {path.name!r} is empty (it contains only whitespace).", path=path)
    if not complete:
        # Keep whole lines only; the cut may fall inside a multi-byte character or a line.
        last = max(text.rfind("\n"), text.rfind("\r"))
        text = text[: last + 1] if last >= 0 else text

    requested_header = options.header_row
    skip = max(0, requested_header or 0)
    body, ok = _skip_physical_lines(text, skip)
    if not ok or not body.strip():
        if skip:
            raise DataError(f"The data file {path.name!r} has no line {skip + 1} to use as the header.", path=path)
        raise DataError(f"The data file {path.name!r} is empty.", path=path)

    default_delim = "\t" if path.suffix.lower() == ".tsv" else ","
    sniffed: list[list[str]] | None = None
    if options.delimiter is not None:
        delimiter = options.delimiter
    else:
        delimiter, sniffed = _sniff_delimiter(body, complete, default_delim)
    if len(delimiter) == 1:
        records = sniffed if sniffed is not None else _sniff_records(body, delimiter, '"', complete)
        quotechar = options.quotechar or _sniff_quotechar(records, body)
        if quotechar != '"':
            records = _sniff_records(body, delimiter, quotechar, complete)
    else:
        quotechar = options.quotechar or '"'
        records = [line.split(delimiter) for line in body.splitlines() if line][:_SAMPLE_RECORDS]
    if not records:
        raise DataError(f"The data file {path.name!r} is empty.", path=path)

    markers = set(MISSING_MARKERS) | set(options.missing_values)
    if requested_header is None:
        # No header when every field of the first record is a number: real headers are names.
        first = records[0]
        header_row = -1 if all(_NUMBER.fullmatch(f.strip()) for f in first) else 0
    else:
        header_row = requested_header
    has_header = header_row >= 0
    width = len(records[0])
    if has_header:
        names = tuple(_fill_blank_names(records[0]))
        data = records[1:]
    else:
        names = tuple(f"column_{i + 1}" for i in range(width))
        data = records

    if options.decimal is not None:
        decimal = options.decimal
    elif delimiter == ",":
        decimal = "."
    else:
        fields = [f for r in data for f in r]
        commas = sum(1 for f in fields if _COMMA_DECIMAL.fullmatch(f))
        dots = sum(1 for f in fields if _DOT_DECIMAL.fullmatch(f))
        decimal = "," if commas and not dots else "."

    # pyarrow would read "0001234" as the number 1234.  Zero padding pads to a fixed width,
    # so integer columns whose sampled values share one width of 2+ digits (or already show
    # a leading zero), and columns with no sampled value at all, are read as text and typed
    # afterwards over the whole file (see _soft_type), which keeps zeros wherever they sit.
    # Variable-width integers cannot be zero-padded and keep pyarrow's fast native parse.
    forced: list[str] = []
    # Columns that are text for sure are also declared as such: pyarrow would infer text
    # anyway, and declaring the large_string that pandas stores saves a conversion.
    textual: list[str] = []
    numeric: list[tuple[str, str]] = []
    number = _DOT_NUMBER_LINES if decimal == "." else _COMMA_NUMBER_LINES
    by_column = list(itertools.zip_longest(*data, fillvalue="")) if data else []
    for j, name in enumerate(names):
        values = [v for v in set(by_column[j]) if v not in markers] if j < len(by_column) else []
        if not values:
            forced.append(name)
            continue
        # One regex over the joined values instead of one call per value.
        joined = "\n".join(values)
        if _WORD_START.search(joined) and any(
            v[:1].isalpha() and v.strip().lower() not in _NON_TEXT_WORDS for v in values
        ):
            textual.append(name)
        elif _INTEGER_LINES.fullmatch(joined):
            digits = {v.lstrip("+-") for v in values}
            widths = {len(d) for d in digits}
            if any(len(d) > 1 and d[0] == "0" for d in digits) or (len(widths) == 1 and min(widths) > 1):
                forced.append(name)
            elif max(widths) <= 18:  # int64 holds every 18-digit number
                numeric.append((name, "int64"))
        elif number.fullmatch(joined):
            numeric.append((name, "float64"))

    skip_lines = 0
    if has_header:
        # pyarrow's skip_rows counts physical lines: the lines before the header plus the
        # header's own lines (a quoted header cell may span several).
        if len(delimiter) == 1:
            reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, quotechar=quotechar, strict=False)
            for record in reader:
                if record:
                    break
            skip_lines = skip + reader.line_num
        else:  # the pandas path splits plain lines, without quoting
            lines = body.splitlines()
            skip_lines = skip + next(i for i, line in enumerate(lines) if line) + 1
    newlines = quotechar in body and any("\n" in f or "\r" in f for r in records for f in r)
    return _Dialect(
        delimiter=delimiter,
        quotechar=quotechar,
        decimal=decimal,
        header_row=header_row,
        encoding=encoding,
        names=names,
        skip_lines=skip_lines,
        forced_string=tuple(forced),
        text=tuple(textual),
        numeric=tuple(numeric),
        newlines_in_values=newlines,
    )


def _read_delimited(path: Path, options: ReadOptions, limits: Limits) -> tuple[pd.DataFrame, ReadOptions]:
    _validate_text_options(path, options)
    head = _read_head(path, _SAMPLE_BYTES)
    size = path.stat().st_size
    longest = limits.max_text_row_bytes
    # One full line must be in the sample; very wide rows need a longer look, up to the row limit.
    while len(head) < size and b"\n" not in head and b"\r" not in head and len(head) < longest:
        head = _read_head(path, min(len(head) * 4, longest))
    if size > longest and b"\n" not in head[:longest] and b"\r" not in head[:longest]:
        raise DataError(
            f"The data file {path.name!r} has no line break in its first {format_bytes(longest)}, so its first "
            f"line is longer than the limit on a table's rows; {raise_hint('max_text_row_bytes')}.",
            path=path,
        )
    complete = len(head) >= size
    _check_text_head(path, head)
    dialect = _sniff_dialect(path, options, head, complete)
    _check_names(path, dialect.names)
    encoding_fixed = options.encoding is not None
    if len(dialect.delimiter) > 1:
        table = _pandas_text_table(path, dialect, options)
    else:
        try:
            table = _arrow_text_table(path, dialect, options, longest)
            valid = not _has_binary(table)  # pyarrow reads undeclared invalid UTF-8 as binary
        except _EncodingError:
            if encoding_fixed or dialect.encoding != "utf-8":
                raise
            valid = False
        if not valid and not encoding_fixed and dialect.encoding == "utf-8":
            # The head was valid UTF-8 but a later byte is not: a cp1252 file whose
            # first accented character sits beyond the sniffed sample.
            dialect = replace(dialect, encoding="cp1252")
            try:
                table = _arrow_text_table(path, dialect, options, longest)
            except _EncodingError:
                dialect = replace(dialect, encoding="latin-1")
                table = _arrow_text_table(path, dialect, options, longest)
        if _has_binary(table):
            raise DataError(
                f"The data file {path.name!r} is not valid {dialect.encoding} text; choose another encoding.",
                path=path,
            )
        table = _type_forced_columns(table, dialect)
    frame = _arrow_to_frame(table)
    used = ReadOptions(
        delimiter=dialect.delimiter,
        encoding=dialect.encoding,
        decimal=dialect.decimal,
        header_row=dialect.header_row,
        missing_values=tuple(options.missing_values),
        quotechar=dialect.quotechar,
        sheet=None,
    )
    return frame, used


def _has_binary(table: pa.Table) -> bool:
    return any(pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in table.schema.types)


def _arrow_encoding(encoding: str) -> str:
    # pyarrow decodes UTF-8 natively (and skips a BOM); other codecs go through Python.
    return "utf8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding


def _arrow_text_table(path: Path, dialect: _Dialect, options: ReadOptions, longest: int) -> pa.Table:
    """Parse with ``pyarrow.csv``; rows up to ``longest`` bytes fit in a block."""
    import pyarrow.csv as pacsv

    markers = list(dict.fromkeys([*MISSING_MARKERS, *options.missing_values]))
    # Types known from the sample are declared: it spares pyarrow's inference about a
    # quarter of the parse.  A declared number that a later row contradicts is
    # undeclared and the file read again, which ends where inference would.
    numeric = {name: pa.int64() if kind == "int64" else pa.float64() for name, kind in dialect.numeric}
    newlines = dialect.newlines_in_values
    block = min(_BLOCK_SIZE, longest)
    # Enough tries to grow the block to the row limit, see a value with a line break and
    # undeclare every declared number.
    for _attempt in range(8 + len(numeric)):
        convert = pacsv.ConvertOptions(
            null_values=markers,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            decimal_point=dialect.decimal,
            column_types={
                **numeric,
                **{name: pa.large_string() for name in dialect.text},
                **{name: pa.string() for name in dialect.forced_string},
            },
        )
        read = pacsv.ReadOptions(
            encoding=_arrow_encoding(dialect.encoding),
            skip_rows=dialect.skip_lines,
            column_names=list(dialect.names),
            block_size=block,
            use_threads=True,
        )
        parse = pacsv.ParseOptions(
            delimiter=dialect.delimiter,
            quote_char=dialect.quotechar,
            newlines_in_values=newlines,
        )
        try:
            return pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError, UnicodeError) as exc:
            message = str(exc)
            if "straddl" in message or ("block size" in message and "skip" not in message):
                if block >= longest:
                    raise DataError(
                        f"A row of the data file {path.name!r} is longer than {format_bytes(longest)}, the limit "
                        f"on a table's rows; {raise_hint('max_text_row_bytes')}.",
                        path=path,
                    ) from None
                block = min(block * 8, longest)  # one row is longer than a block
                continue
            if "Expected" in message and "columns" in message and not newlines:
                newlines = True  # a quoted field may hold a line break beyond the sample
                continue
            contradicted = _CONVERSION_ERROR.search(message)
            if contradicted and numeric:
                index = int(contradicted.group(1))
                name = dialect.names[index] if index < len(dialect.names) else None
                if name in numeric:
                    del numeric[name]
                else:
                    numeric.clear()
                continue
            raise _text_error(path, dialect, exc) from None
    raise DataError(f"The data file {path.name!r} could not be parsed as a table.", path=path)


def _text_error(path: Path, dialect: _Dialect, exc: BaseException) -> DataError:
    message = str(exc)
    if isinstance(exc, UnicodeError) or "decode" in message.lower() or "utf8" in message.lower():
        return _EncodingError(
            f"The data file {path.name!r} is not valid {dialect.encoding} text; choose another encoding.", path=path
        )
    if "Could not skip" in message or "Empty CSV" in message:
        return DataError(f"The data file {path.name!r} has a header but no data rows.", path=path)
    if "Expected" in message and ("columns" in message or "fields" in message):
        ragged = _find_ragged_line(path, dialect)
        if ragged is not None:
            line, got, expected, reference = ragged
            ref = "the header" if dialect.header_row >= 0 else f"line {reference}"
            return DataError(
                f"Line {line} of the data file {path.name!r} has {got} fields, but {ref} has {expected}.", path=path
            )
        return DataError(
            f"The data file {path.name!r} has rows with different numbers of fields (for example an unclosed quote).",
            path=path,
        )
    return DataError(f"The data file {path.name!r} could not be parsed as a table: {_reason(exc)}.", path=path)


def _find_ragged_line(path: Path, dialect: _Dialect) -> tuple[int, int, int, int] | None:
    """Return (line, fields, expected, reference line) of the first ragged record, 1-based.

    Only runs after the fast parser failed, so a plain Python scan is fine here.
    """
    skip = max(0, dialect.header_row)
    if len(dialect.delimiter) != 1:
        return None
    try:
        with open(path, encoding=dialect.encoding, errors="replace", newline="") as handle:
            for _ in range(skip):
                handle.readline()
            reader = csv.reader(handle, delimiter=dialect.delimiter, quotechar=dialect.quotechar, strict=False)
            expected = len(dialect.names)
            reference = 0
            for record in reader:
                if not record:
                    continue
                if reference == 0:
                    reference = skip + reader.line_num
                    if dialect.header_row >= 0:
                        continue
                    expected = len(record)
                    continue
                if len(record) != expected:
                    return skip + reader.line_num, len(record), expected, reference
    except (OSError, csv.Error):
        return None
    return None


def _pandas_text_table(path: Path, dialect: _Dialect, options: ReadOptions) -> pa.Table:
    """Multi-character delimiters, which pyarrow cannot split on: pandas' Python engine."""
    markers = list(dict.fromkeys([*MISSING_MARKERS, *options.missing_values]))
    try:
        frame = pd.read_csv(
            path,
            sep=re.escape(dialect.delimiter),
            engine="python",
            encoding=dialect.encoding,
            quotechar=dialect.quotechar,
            header=None,
            names=list(dialect.names),
            skiprows=dialect.skip_lines,
            dtype=str,
            na_values=markers,
            keep_default_na=False,
            skip_blank_lines=True,
        )
    except (ValueError, OSError, UnicodeError, csv.Error, pd.errors.ParserError) as exc:
        raise _text_error(path, dialect, exc) from None
    # Drop pandas' metadata: it would turn the typed columns back into text on conversion.
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    # Every column came back as text; type them all as the forced ones are.
    return _type_forced_columns(table, replace(dialect, forced_string=tuple(dialect.names)))


def _type_forced_columns(table: pa.Table, dialect: _Dialect) -> pa.Table:
    """Give the columns read as text their type: int, float, bool, timestamp, else text.

    Integers with a leading zero ("007", "-01") stay text: they are codes, and
    reading them as numbers would lose the zeros.
    """
    for name in dialect.forced_string:
        if name not in table.column_names:
            continue
        index = table.column_names.index(name)
        column = table.column(index)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            continue
        table = table.set_column(index, name, _soft_type(column, dialect.decimal))
    return table


def _soft_type(column: pa.ChunkedArray, decimal: str) -> pa.ChunkedArray:
    if column.null_count == len(column):
        return pa.chunked_array([pa.nulls(len(column), pa.float64())])
    try:
        as_int = column.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        as_int = None
    if as_int is not None:
        return column if _has_padding(column, as_int) else as_int
    text = pc.replace_substring(column, ",", ".") if decimal == "," else column
    try:
        return text.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    for target in (pa.bool_(), pa.timestamp("s")):
        try:
            return column.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return column


def _has_padding(text: pa.ChunkedArray, numbers: pa.ChunkedArray) -> bool:
    """Whether any integer was written with a leading zero ("007", "-01").

    Cheap first pass: a canonically written integer has exactly as many bytes as
    its digits plus its sign, so when every length matches no value is padded.
    Only otherwise (padding, a "+", or integers too large for exact floats) are
    the strings themselves inspected.
    """
    values = numbers.to_numpy()  # int64, or float64 with NaN where missing
    present = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(values.shape, dtype=bool)
    signed = values[present].astype(np.float64)
    magnitude = np.abs(signed)
    if magnitude.size == 0:
        return False
    if magnitude.max() < 2.0**53:
        digits = np.floor(np.log10(np.maximum(magnitude, 1.0))) + 1.0
        # log10 may land a hair below an exact power of ten: then one digit more.
        digits += magnitude >= 10.0**digits
        canonical = digits + (signed < 0)
        lengths = pc.binary_length(text).to_numpy(zero_copy_only=False)[present].astype(np.float64)
        if np.array_equal(lengths, canonical):
            return False
    unsigned = pc.utf8_ltrim(text, characters="+-")
    padded = pc.and_(pc.starts_with(unsigned, "0"), pc.greater(pc.utf8_length(unsigned), 1))
    return bool(pc.any(padded).as_py())


def _arrow_to_frame(table: pa.Table) -> pd.DataFrame:
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


# =================================================================================================
# Parquet, Feather / Arrow IPC, Excel
# =================================================================================================


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    head, tail = _read_head(path, 4), _read_tail(path, 4)
    if head != b"PAR1":
        raise DataError(f"The data file {path.name!r} is not a Parquet file.", path=path)
    if tail != b"PAR1" or path.stat().st_size < 12:
        raise DataError(f"The Parquet file {path.name!r} is truncated or corrupt.", path=path)
    try:
        table = pq.read_table(path, use_threads=True)
        _check_names(path, table.column_names)
        return _arrow_to_frame(table)
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(
            f"The Parquet file {path.name!r} is truncated or corrupt ({_reason(exc)}).", path=path
        ) from None


def _read_feather(path: Path) -> pd.DataFrame:
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc

    head = _read_head(path, 8)
    try:
        if head.startswith(b"ARROW1"):
            if _read_tail(path, 6) != b"ARROW1":
                raise DataError(f"The Feather file {path.name!r} is truncated or corrupt.", path=path)
            table = feather.read_table(path, use_threads=True)
        elif head.startswith(b"FEA1"):
            table = feather.read_table(path, use_threads=True)
        elif head.startswith(b"\xff\xff\xff\xff"):
            # The Arrow IPC *stream* format has no file magic, only a continuation marker.
            with pa.memory_map(str(path)) as source:
                table = ipc.open_stream(source).read_all()
        else:
            raise DataError(f"The data file {path.name!r} is not a Feather/Arrow file.", path=path)
        _check_names(path, table.column_names)
        return _arrow_to_frame(table)
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(
            f"The Feather file {path.name!r} is truncated or corrupt ({_reason(exc)}).", path=path
        ) from None


def _excel_engine() -> str:
    try:
        import python_calamine  # noqa: F401

        return "calamine"
    except ImportError:
        return "openpyxl"


def _read_xlsx(path: Path, options: ReadOptions, limits: Limits) -> tuple[pd.DataFrame, ReadOptions]:
    if _read_head(path, 4) != b"PK\x03\x04":
        raise DataError(f"The data file {path.name!r} is not an Excel .xlsx workbook.", path=path)
    try:
        # A workbook is a zip of XML: its real size is measured before a reader inflates it.
        check_zip_archive(path, name=f"The workbook {path.name!r}", limits=limits)
    except ArchiveProblem as exc:
        if exc.damaged:
            raise DataError(
                f"The workbook {path.name!r} is corrupt or not an .xlsx file ({exc.reason}).", path=path
            ) from None
        raise DataError(exc.message, path=path) from None
    header_row = options.header_row
    if header_row is not None and (not isinstance(header_row, int) or header_row < -1):
        raise DataError(f"The header row {header_row!r} given for {path.name!r} must be -1 or a row index.", path=path)
    engine = _excel_engine()
    markers = list(dict.fromkeys([*MISSING_MARKERS, *options.missing_values]))
    try:
        with pd.ExcelFile(path, engine=engine) as book:
            sheets = [str(s) for s in book.sheet_names]
            if not sheets:
                raise DataError(f"The workbook {path.name!r} has no sheets.", path=path)
            sheet = options.sheet if options.sheet is not None else sheets[0]
            if sheet not in sheets:
                listed = ", ".join(repr(s) for s in sheets)
                raise DataError(f"The workbook {path.name!r} has no sheet {sheet!r} (it has {listed}).", path=path)
            # dtype=object keeps each cell as stored: a text cell "0001234" stays text,
            # where pandas' own inference would turn it into the number 1234.
            raw = pd.read_excel(
                book, sheet_name=sheet, header=None, dtype=object, na_values=markers, keep_default_na=False
            )
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip, XML and engine errors all mean "corrupt workbook"
        raise DataError(
            f"The workbook {path.name!r} is corrupt or not an .xlsx file ({_reason(exc)}).", path=path
        ) from None
    # Header rows count sheet rows from the top; fully empty columns are formatting left-overs.
    raw = raw.loc[:, raw.notna().any(axis=0)]
    filled = np.flatnonzero(raw.notna().any(axis=1).to_numpy())
    if filled.size == 0:
        raise DataError(f"The sheet {sheet!r} of {path.name!r} is empty.", path=path)
    if header_row is None:
        first = raw.iloc[filled[0]]
        numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in first if pd.notna(v))
        header_row = -1 if numeric else int(filled[0])
    if header_row >= 0:
        if header_row >= len(raw):
            raise DataError(
                f"The sheet {sheet!r} of {path.name!r} has no row {header_row + 1} to use as the header.", path=path
            )
        names = _fill_blank_names(["" if pd.isna(v) else _cell_name(v) for v in raw.iloc[header_row]])
        data = raw.iloc[header_row + 1 :]
    else:
        names = [f"column_{i + 1}" for i in range(raw.shape[1])]
        data = raw
    _check_names(path, names)
    data = data.dropna(how="all").reset_index(drop=True)
    data.columns = names
    frame = data.infer_objects()
    for name in frame.columns:
        column = frame[name]
        # Numbers, dates and booleans are typed by infer_objects (booleans with gaps stay
        # objects, as pyarrow gives them for CSV); anything else left as objects mixes
        # numbers and text, and is text.  Missing cells stay missing.
        if column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) not in (
            "boolean",
            "datetime",
            "date",
            "empty",
        ):
            frame[name] = column.map(lambda v: v if pd.isna(v) else str(v)).astype("str")
    used = ReadOptions(header_row=header_row, missing_values=tuple(options.missing_values), sheet=sheet)
    return frame, used


def _cell_name(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# =================================================================================================
# Schema inference
# =================================================================================================


def _name_is_id(name: str) -> bool:
    tokens = [t.lower() for t in re.split(r"[^0-9A-Za-z]+|(?<=[a-z])(?=[A-Z])", name) if t]
    return any(t in _ID_TOKENS for t in tokens)


def _distinct_sorted(values: np.ndarray) -> int:
    """Distinct count of a 1-D numeric array without NaN (sort-based, releases the GIL)."""
    if values.size == 0:
        return 0
    ordered = np.sort(values, kind="quicksort")
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1


def _bitmap_span(n_values: int) -> int:
    # A presence bitmap of one byte per possible value beats a sort while it stays
    # within a few dozen bytes per value (and 64 MiB).
    return min(max(32 * n_values, 1 << 16), 1 << 26)


def _distinct_integers(values: np.ndarray) -> int:
    """Distinct count of int64 values.

    A presence bitmap when their range is small; otherwise a sort, of 32-bit
    offsets from the minimum when the range allows (about 40 % cheaper).
    """
    if values.size == 0:
        return 0
    lo, hi = int(values.min()), int(values.max())
    span = hi - lo + 1
    if span <= _bitmap_span(values.size):
        seen = np.zeros(span, dtype=bool)
        seen[values - lo] = True
        return int(np.count_nonzero(seen))
    if span <= 1 << 32:
        return _distinct_sorted((values - lo).astype(np.uint32))
    return _distinct_sorted(values)


def _scaled_integers(values: np.ndarray, *, max_span: float) -> tuple[np.ndarray, int] | None:
    """Write finite floats as ``ints / 10**k`` exactly, for the smallest k <= 6, if possible.

    Values read from text usually carry a few decimals; as integers their distinct
    count is a bitmap or a 32-bit sort instead of a 64-bit float sort.  The map is
    exact (checked on every value), so distinct floats stay distinct integers.
    ``None`` when no k fits or the integers would span more than ``max_span``.
    """
    probe = values[:256]
    width = float(values.max()) - float(values.min())
    if np.abs(probe).max() >= 2.0**53:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(7):
            scale = 10.0**k
            if not np.array_equal(np.rint(probe * scale) / scale, probe):
                continue
            if width * scale > max_span:
                return None  # too wide for cheap integer counting: sort the floats instead
            scaled = np.rint(values * scale)
            if np.abs(scaled).max() < 2.0**53 and np.array_equal(scaled / scale, values):
                return scaled.astype(np.int64), k
            return None
    return None


def _numeric_info(name: str, series: pd.Series, n_missing: int) -> tuple[ColumnKind, int]:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan) if n_missing else series.to_numpy()
    if values.dtype.kind not in "iuf":
        values = values.astype(np.float64)
    if values.dtype.kind == "f" and n_missing:
        values = values[~np.isnan(values)]
    if values.size == 0:
        return ColumnKind.NUMERIC, 0
    if values.dtype.kind == "i":
        ints: np.ndarray | None = values.astype(np.int64, copy=False)
        integral = True
    elif values.dtype.kind == "u":
        ints = values.astype(np.int64) if values.max() < 2**63 else None
        integral = True
    elif np.isfinite(values).all():
        integral = bool(np.array_equal(np.rint(values), values))
        found = _scaled_integers(values, max_span=float(1 << 32))
        ints = None if found is None else found[0]
    else:
        ints, integral = None, False
    n_distinct = _distinct_integers(ints) if ints is not None else _distinct_sorted(values)
    lo, hi = values.min(), values.max()
    if n_distinct == 2 and lo == 0 and hi == 1 and integral:
        return ColumnKind.BOOLEAN, n_distinct
    if integral and n_distinct == values.size and values.size >= 2:
        consecutive = values.size >= ID_MIN_ROWS and float(hi) - float(lo) == values.size - 1
        if _name_is_id(name) or consecutive:
            return ColumnKind.IDENTIFIER, n_distinct
    return ColumnKind.NUMERIC, n_distinct


def _evenly_spaced(values: pa.Array, limit: int) -> pa.Array:
    if len(values) <= limit:
        return values
    return values.take(pa.array(np.linspace(0, len(values) - 1, limit).astype(np.int64)))


def _string_info(name: str, series: pd.Series, n_missing: int) -> tuple[ColumnKind, int]:
    """Kind and distinct count of a string column, computed on its distinct values in Arrow.

    The shape rules (digits, whitespace, length) look at up to _KIND_SAMPLE evenly
    spaced distinct values: a categorical column has few, and the TEXT and
    IDENTIFIER rules only fire when most rows are distinct anyway.
    """
    n_present = len(series) - n_missing
    if n_present == 0:
        return ColumnKind.CATEGORICAL, 0
    try:
        values = pa.array(series.array, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        values = pa.array(series.astype(object).where(series.notna(), None).tolist(), type=pa.large_string())
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.large_string())
    uniques = pc.unique(values).drop_null()
    n_distinct = len(uniques)
    if n_distinct == 2:
        lowered = frozenset(str(v).strip().lower() for v in uniques.to_pylist())
        if lowered in _BOOL_PAIRS:
            return ColumnKind.BOOLEAN, n_distinct
    sample = _evenly_spaced(uniques, _KIND_SAMPLE)
    ratio = n_distinct / n_present
    if (
        pc.all(pc.match_substring_regex(sample, r"^[0-9]+$")).as_py()
        and pc.any(pc.match_substring_regex(sample, r"^0[0-9]")).as_py()
    ):
        kind = ColumnKind.IDENTIFIER if ratio >= PADDED_ID_MIN_DISTINCT_RATIO else ColumnKind.CATEGORICAL
        return kind, n_distinct
    spaced = pc.mean(pc.cast(pc.match_substring_regex(sample, r"\s"), pa.float64())).as_py() or 0.0
    if n_distinct == n_present and spaced == 0.0 and (n_present >= ID_MIN_ROWS or _name_is_id(name)):
        return ColumnKind.IDENTIFIER, n_distinct
    mean_length = pc.mean(pc.utf8_length(sample)).as_py() or 0.0
    if ratio >= TEXT_MIN_DISTINCT_RATIO and spaced >= TEXT_MIN_SPACE_SHARE and mean_length >= TEXT_MIN_MEAN_LENGTH:
        return ColumnKind.TEXT, n_distinct
    return ColumnKind.CATEGORICAL, n_distinct


def _column_info(name: str, series: pd.Series) -> ColumnInfo:
    dtype = series.dtype
    n_missing = int(series.isna().sum())
    if pd.api.types.is_bool_dtype(dtype):
        kind, n_distinct = ColumnKind.BOOLEAN, int(series.nunique(dropna=True))
    elif isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        kind, n_distinct = ColumnKind.CATEGORICAL, int(np.unique(codes[codes >= 0]).size)
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        stamps = (
            series.dropna().to_numpy().view(np.int64)
            if not isinstance(dtype, pd.DatetimeTZDtype)
            else (series.dropna().astype("int64").to_numpy())
        )
        kind, n_distinct = ColumnKind.DATETIME, _distinct_sorted(stamps)
    elif pd.api.types.is_timedelta64_dtype(dtype):
        kind, n_distinct = ColumnKind.NUMERIC, int(series.nunique(dropna=True))
    elif pd.api.types.is_numeric_dtype(dtype):
        kind, n_distinct = _numeric_info(name, series, n_missing)
    elif pd.api.types.is_string_dtype(dtype) and dtype != np.dtype(object):
        kind, n_distinct = _string_info(name, series, n_missing)
    else:
        kind, n_distinct = _object_info(name, series, n_missing)
    return ColumnInfo(name=name, kind=kind, dtype=str(dtype), n_missing=n_missing, n_distinct=n_distinct)


def _object_info(name: str, series: pd.Series, n_missing: int) -> tuple[ColumnKind, int]:
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("datetime", "datetime64", "date"):
        return ColumnKind.DATETIME, _safe_nunique(series)
    if inferred == "boolean":
        return ColumnKind.BOOLEAN, _safe_nunique(series)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return _numeric_info(name, pd.to_numeric(series, errors="coerce"), n_missing)
    if inferred == "string":
        return _string_info(name, series, n_missing)
    return ColumnKind.CATEGORICAL, _safe_nunique(series)


def _safe_nunique(series: pd.Series) -> int:
    try:
        return int(series.nunique(dropna=True))
    except TypeError:  # unhashable cells (lists, dicts)
        return int(series.dropna().astype(str).nunique())
