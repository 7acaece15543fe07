"""Reading delimited text (``.csv``, ``.tsv``, ``.txt``) into a frame.

The head is sniffed (:mod:`engine.data.sniff`), then the whole file goes
through ``pyarrow.csv`` (multi-threaded, decimal comma included) with the
column types the sample showed declared; pandas is only used for what pyarrow
cannot parse, a delimiter of more than one character.  Columns read as text
for safety are typed afterwards over the whole file, keeping zero-padded codes
as text.  A file that is not UTF-8 after all is read again as cp1252, then
Latin-1, unless the encoding was given.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.data.common import MISSING_MARKERS, arrow_to_frame, check_names, error_reason, read_head
from engine.data.sniff import SAMPLE_BYTES, Dialect, check_text_head, sniff_dialect, validate_text_options
from engine.errors import DataError
from engine.limits import Limits, format_bytes, raise_hint
from engine.schema import ReadOptions

__all__ = ["read_delimited"]

_BLOCK_SIZE = 1 << 20  # pyarrow block; 1 MiB keeps both cores busy on files of a few MB upwards
_CONVERSION_ERROR = re.compile(r"CSV column #(\d+): CSV conversion error to (?:int64|double)")


class _EncodingError(DataError):
    """The bytes do not decode with the encoding in use (internal: triggers a retry)."""


def read_delimited(path: Path, options: ReadOptions, limits: Limits) -> tuple[pd.DataFrame, ReadOptions]:
    """The frame of a delimited text file and the options that parsed it, detected values filled in."""
    validate_text_options(path, options)
    head = read_head(path, SAMPLE_BYTES)
    size = path.stat().st_size
    longest = limits.max_text_row_bytes
    # One full line must be in the sample; very wide rows need a longer look, up to the row limit.
    while len(head) < size and b"\n" not in head and b"\r" not in head and len(head) < longest:
        head = read_head(path, min(len(head) * 4, longest))
    if size > longest and b"\n" not in head[:longest] and b"\r" not in head[:longest]:
        raise DataError(
            f"The data file {path.name!r} has no line break in its first {format_bytes(longest)}, so its first "
            f"line is longer than the limit on a table's rows; {raise_hint('max_text_row_bytes')}.",
            path=path,
        )
    complete = len(head) >= size
    check_text_head(path, head)
    dialect = sniff_dialect(path, options, head, complete)
    check_names(path, dialect.names)
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
    frame = arrow_to_frame(table)
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


def _arrow_text_table(path: Path, dialect: Dialect, options: ReadOptions, longest: int) -> pa.Table:
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


def _text_error(path: Path, dialect: Dialect, exc: BaseException) -> DataError:
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
    return DataError(f"The data file {path.name!r} could not be parsed as a table: {error_reason(exc)}.", path=path)


def _find_ragged_line(path: Path, dialect: Dialect) -> tuple[int, int, int, int] | None:
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


def _pandas_text_table(path: Path, dialect: Dialect, options: ReadOptions) -> pa.Table:
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


def _type_forced_columns(table: pa.Table, dialect: Dialect) -> pa.Table:
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
