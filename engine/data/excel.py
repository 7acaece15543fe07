"""Reading a sheet of an Excel ``.xlsx`` workbook, its zip container measured before it is inflated.

Cells keep their stored type (a text cell "0001234" stays text); header rows
count sheet rows from the top, and fully empty rows and columns are dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.common import MISSING_MARKERS, check_names, error_reason, fill_blank_names, read_head
from engine.errors import DataError
from engine.files import ArchiveProblem, check_zip_archive
from engine.limits import Limits
from engine.schema import ReadOptions

__all__ = ["read_xlsx"]


def _excel_engine() -> str:
    try:
        import python_calamine  # noqa: F401

        return "calamine"
    except ImportError:
        return "openpyxl"


def read_xlsx(path: Path, options: ReadOptions, limits: Limits) -> tuple[pd.DataFrame, ReadOptions]:
    """The frame of one sheet (``options.sheet``, else the first) and the options that read it."""
    if read_head(path, 4) != b"PK\x03\x04":
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
            f"The workbook {path.name!r} is corrupt or not an .xlsx file ({error_reason(exc)}).", path=path
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
        names = fill_blank_names(["" if pd.isna(v) else _cell_name(v) for v in raw.iloc[header_row]])
        data = raw.iloc[header_row + 1 :]
    else:
        names = [f"column_{i + 1}" for i in range(raw.shape[1])]
        data = raw
    check_names(path, names)
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
