"""Column kinds: what each column of a table is (numeric, boolean, identifier, text ...).

:func:`infer_schema` labels every column by the documented thresholds below;
no value is converted.  Distinct counts are computed without Python loops over
values (bitmaps, sorts and Arrow kernels), and wide tables spread the work over
threads.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.parallel import job_threads
from engine.schema import ColumnInfo, ColumnKind, Schema

__all__ = [
    "ID_MIN_ROWS",
    "TEXT_MIN_SPACE_SHARE",
    "TEXT_MIN_MEAN_LENGTH",
    "TEXT_MIN_DISTINCT_RATIO",
    "PADDED_ID_MIN_DISTINCT_RATIO",
    "infer_schema",
]

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
        with ThreadPoolExecutor(max_workers=job_threads(limit=4)) as pool:  # the one thread policy
            infos = list(pool.map(lambda item: _column_info(*item), columns))
    else:
        infos = [_column_info(name, series) for name, series in columns]
    return Schema(columns=tuple(infos))


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
