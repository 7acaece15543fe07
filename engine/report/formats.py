"""How the report writes numbers, dates, lists and recorded values as text (no layout here).

Every value that comes from users or data is escaped (:func:`escape`) before
it reaches reportlab's paragraph markup; long names are shortened by the
rule of :mod:`engine.report.names`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from engine.report import style as st
from engine.report.names import shorten_in
from engine.report.pdfa import parse_timestamp

__all__ = [
    "escape",
    "is_missing",
    "num",
    "sig",
    "pct",
    "count",
    "format_date",
    "names",
    "json_value",
    "clip",
    "flatten",
    "computed_text",
    "utc_time",
]


def escape(text: str) -> str:
    """``text`` made safe for paragraph markup and for the bundled fonts."""
    return _xml_escape(st.printable(str(text)))


def is_missing(x: Any) -> bool:
    """Whether ``x`` is no number to print: ``None``, NaN or infinite."""
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def num(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals and a typographic minus; "—" when missing."""
    if is_missing(x):
        return "—"
    text = f"{float(x):,.{digits}f}"
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]  # no "−0.000"
    return text.replace("-", "−")


def sig(x: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant figures; "—" when missing."""
    if is_missing(x):
        return "—"
    return f"{float(x):.{digits}g}".replace("-", "−")


def pct(x: Any, digits: int = 1) -> str:
    """A share as a percentage; "—" when missing."""
    if is_missing(x):
        return "—"
    return f"{100 * float(x):.{digits}f} %"


def count(x: Any) -> str:
    """A count with thousands separators; "—" when ``None``."""
    return "—" if x is None else f"{int(x):,}"


def format_date(iso: str) -> str:
    """``"2026-11-22T13:06:43+00:00"`` as ``"22 November 2026, 13:06 UTC"``."""
    value = parse_timestamp(iso)
    offset = value.utcoffset() or _dt.timedelta(0)
    zone = "UTC" if offset == _dt.timedelta(0) else value.strftime("UTC%z")
    return f"{value.day} {value:%B %Y, %H:%M} {zone}"


def names(items: Sequence[str], limit: int = 8) -> str:
    """``"a, b and c"``; beyond ``limit`` items the rest are counted (``"…, h and 3 more"``)."""
    shown = [str(i) for i in items[:limit]]
    if len(items) > limit:
        shown.append(f"{len(items) - limit} more")
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def json_value(value: Any) -> str:
    """A recorded value as text: a string as it is, anything else as compact, sorted JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=True)


_MAX_CELL_CHARS = 600  # a table cell cannot split across pages, so long values are cut


def clip(text: str, limit: int = _MAX_CELL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out (long names shortened first)."""
    text = shorten_in(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters in results.json)"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``{"a": {"b": 1}}`` as ``[("a.b", "1")]``, keeping the mapping's order."""
    out: list[tuple[str, str]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.extend(flatten(value, name + "."))
        else:
            out.append((name, clip(json_value(value))))
    return out


def utc_time(iso: str | None) -> _dt.datetime | None:
    """An ISO 8601 time as an aware UTC datetime, or ``None`` when absent or unreadable."""
    try:
        value = _dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00")) if iso else None
    except ValueError:
        return None
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=_dt.UTC)).astimezone(_dt.UTC)


def computed_text(started: str | None, finished: str | None) -> str:
    """When an analysis ran, as the methodology table states it: a measured interval, or why there is none."""
    if not started and not finished:
        return "not measured (audit time fixed for identical re-runs)"
    if started == finished:  # reports written before times were measured stamped the audit time twice
        return f"not measured (audit time {started})"
    begin, end = utc_time(started), utc_time(finished)
    if begin is None or end is None or end < begin:
        return f"{started or 'unknown'} to {finished or 'unknown'}"
    seconds = (end - begin).total_seconds()
    took = (
        f"{seconds:.3f} s"
        if seconds < 10
        else f"{seconds:.1f} s"
        if seconds < 120
        else f"{int(seconds // 60)} min {seconds % 60:.0f} s"
    )
    tail = f"{end:%H:%M:%S}.{end.microsecond // 1000:03d}"
    if end.date() != begin.date():
        tail = f"{end:%Y-%m-%d} {tail}"
    return f"{begin:%Y-%m-%d %H:%M:%S}.{begin.microsecond // 1000:03d} to {tail} UTC ({took})"
