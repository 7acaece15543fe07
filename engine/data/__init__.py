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

Column kinds (:func:`infer_schema`) follow the thresholds documented in
:mod:`engine.data.kinds`.

The package, one job per module:

* :mod:`~engine.data.load`: :func:`load_table` and :func:`preview_table`;
* :mod:`~engine.data.common`: formats, missing-value markers, file and name checks;
* :mod:`~engine.data.sniff`: what a text file's head says (encoding, delimiter, header, types);
* :mod:`~engine.data.delimited`: parsing delimited text with pyarrow;
* :mod:`~engine.data.columnar`: Parquet and Feather / Arrow IPC;
* :mod:`~engine.data.excel`: ``.xlsx`` workbooks;
* :mod:`~engine.data.kinds`: column kinds (:func:`infer_schema`).
"""

from __future__ import annotations

from engine.data.common import FORMATS, MISSING_MARKERS
from engine.data.kinds import (
    ID_MIN_ROWS,
    PADDED_ID_MIN_DISTINCT_RATIO,
    TEXT_MIN_DISTINCT_RATIO,
    TEXT_MIN_MEAN_LENGTH,
    TEXT_MIN_SPACE_SHARE,
    infer_schema,
)
from engine.data.load import ProgressCallback, TablePreview, load_table, preview_table

__all__ = [
    "FORMATS",
    "MISSING_MARKERS",
    "ProgressCallback",
    "load_table",
    "infer_schema",
    "TablePreview",
    "preview_table",
    "ID_MIN_ROWS",
    "TEXT_MIN_SPACE_SHARE",
    "TEXT_MIN_MEAN_LENGTH",
    "TEXT_MIN_DISTINCT_RATIO",
    "PADDED_ID_MIN_DISTINCT_RATIO",
]
