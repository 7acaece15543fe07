"""Reading Parquet and Feather / Arrow IPC files, checked for their magic bytes and truncation first."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from engine.data.common import arrow_to_frame, check_names, error_reason, read_head, read_tail
from engine.errors import DataError

__all__ = ["read_parquet", "read_feather"]


def read_parquet(path: Path) -> pd.DataFrame:
    """The frame of a Parquet file (a stored named index comes back as a column)."""
    import pyarrow.parquet as pq

    head, tail = read_head(path, 4), read_tail(path, 4)
    if head != b"PAR1":
        raise DataError(f"The data file {path.name!r} is not a Parquet file.", path=path)
    if tail != b"PAR1" or path.stat().st_size < 12:
        raise DataError(f"The Parquet file {path.name!r} is truncated or corrupt.", path=path)
    try:
        table = pq.read_table(path, use_threads=True)
        check_names(path, table.column_names)
        return arrow_to_frame(table)
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(
            f"The Parquet file {path.name!r} is truncated or corrupt ({error_reason(exc)}).", path=path
        ) from None


def read_feather(path: Path) -> pd.DataFrame:
    """The frame of a Feather v1, Arrow IPC file or Arrow IPC stream."""
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc

    head = read_head(path, 8)
    try:
        if head.startswith(b"ARROW1"):
            if read_tail(path, 6) != b"ARROW1":
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
        check_names(path, table.column_names)
        return arrow_to_frame(table)
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(
            f"The Feather file {path.name!r} is truncated or corrupt ({error_reason(exc)}).", path=path
        ) from None
