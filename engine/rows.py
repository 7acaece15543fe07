"""Row selection specs shared by the CLI and the GUI: which instances to explain."""

from __future__ import annotations

import numpy as np

from engine.errors import AnalysisError
from engine.jobs import JobContext

__all__ = ["parse_rows"]

_HELP = "use e.g. '0-99', '3,17,42', 'first:100', 'random:50' or 'all'"


def parse_rows(
    spec: str | None, n_rows: int, *, ctx: JobContext | None = None, default: str = "first:100"
) -> np.ndarray:
    """Turn a row spec into sorted, unique 0-based row positions.

    Grammar: ``all`` | ``first:N`` | ``last:N`` | ``random:N`` (drawn without
    replacement from ``ctx.rng("rows")``) | comma-separated positions and
    inclusive ranges ``a-b``.  Returns an ``int64`` array.
    """
    text = (spec if spec is not None else default).strip().lower()
    if n_rows <= 0:
        raise AnalysisError("The dataset has no rows to explain.")
    if text == "all":
        return np.arange(n_rows, dtype=np.int64)
    if ":" in text:
        kind, _, count = text.partition(":")
        try:
            k = int(count)
        except ValueError:
            raise AnalysisError(f"The row spec {spec!r} has a non-integer count; {_HELP}.") from None
        if k <= 0:
            raise AnalysisError(f"The row spec {spec!r} asks for no rows; {_HELP}.")
        k = min(k, n_rows)
        if kind == "first":
            return np.arange(k, dtype=np.int64)
        if kind == "last":
            return np.arange(n_rows - k, n_rows, dtype=np.int64)
        if kind == "random":
            rng = (ctx or JobContext()).rng("rows")
            return np.sort(rng.choice(n_rows, size=k, replace=False)).astype(np.int64)
        raise AnalysisError(f"The row spec {spec!r} is not understood; {_HELP}.")
    picked: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise AnalysisError(f"The row range {part!r} runs backwards; {_HELP}.")
                picked.extend(range(a, b + 1))
            else:
                picked.append(int(part))
        except ValueError:
            raise AnalysisError(f"The row spec {spec!r} is not understood; {_HELP}.") from None
    if not picked:
        raise AnalysisError(f"The row spec {spec!r} selects no rows; {_HELP}.")
    bad = [r for r in picked if not 0 <= r < n_rows]
    if bad:
        raise AnalysisError(f"Row {bad[0]} is outside the dataset, which has rows 0 to {n_rows - 1}.")
    return np.unique(np.asarray(picked, dtype=np.int64))
