"""Sniffing delimited text: what a sample of a file's head says about how to parse it.

From the first :data:`SAMPLE_BYTES` of a text file, :func:`sniff_dialect`
resolves everything :class:`~engine.schema.ReadOptions` leaves open -- the
encoding, delimiter, quote character, decimal mark and header line -- and, for
each column, whether the sample shows it to be text, integers or floats, or
must be read as text and typed afterwards (zero-padded codes).  The result is a
:class:`Dialect`; :mod:`engine.data.delimited` parses the whole file with it.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from engine.data.common import MISSING_MARKERS, fill_blank_names
from engine.errors import DataError
from engine.schema import ReadOptions

__all__ = ["SAMPLE_BYTES", "Dialect", "validate_text_options", "check_text_head", "sniff_dialect"]

SAMPLE_BYTES = 1 << 20  # bytes read to sniff the dialect; ~5k rows of a typical table
_SAMPLE_RECORDS = 2000  # records parsed in Python to sniff; the rest is left to pyarrow
_DELIMITERS = (",", ";", "\t", "|")  # candidates, in order of preference on a tie

_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_COMMA_DECIMAL = re.compile(r"[+-]?\d*,\d+")
_DOT_DECIMAL = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")
_LINE_END = re.compile(r"\r\n|\r|\n")
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


@dataclass(frozen=True)
class Dialect:
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


def validate_text_options(path: Path, options: ReadOptions) -> None:
    """Refuse text options no parse can use, naming the option and the file."""
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


def check_text_head(path: Path, head: bytes) -> None:
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


def sniff_dialect(path: Path, options: ReadOptions, head: bytes, complete: bool) -> Dialect:
    """Resolve what ``options`` leaves open from ``head``; ``complete`` when it is the whole file."""
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
        names = tuple(fill_blank_names(records[0]))
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
    return Dialect(
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
