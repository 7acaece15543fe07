"""Resource limits on what Probity reads before anyone decided to trust it.

A model, a data table, a session file or a report may come from someone who
wants to exhaust the auditor's machine: a small zip that decompresses to
gigabytes, a pickle whose checking takes hours, JSON nested a million levels
deep.  Every reader checks the limits below *before* it commits the memory or
time, and refuses with one sentence that names the file, the limit and the
command-line option that raises it.

The limits live in one frozen :class:`Limits`.  Readers take it as a keyword
argument (``limits=``); when none is given they use :func:`current_limits`,
which is :data:`DEFAULT_LIMITS` unless the ``probity`` command set other values
for the command it runs (:func:`using_limits`).  The defaults are generous for
legitimate models and tables and small next to a laptop's memory.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

from engine.errors import ProbityError

__all__ = [
    "Limits",
    "LimitOption",
    "LIMIT_OPTIONS",
    "DEFAULT_LIMITS",
    "current_limits",
    "using_limits",
    "format_bytes",
    "raise_hint",
]

_KIB, _MIB, _GIB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limits:
    """How much Probity reads, decompresses and checks before it refuses a file.

    Attributes
    ----------
    max_decompressed_bytes:
        The most a compressed input (a skops or xlsx archive, a compressed joblib
        file, a report's embedded results) may decompress to, in bytes (4 GiB).
    max_compression_ratio:
        The most an input may decompress to, as a multiple of its own size (100,
        as zip-bomb guards of office readers use); inputs that decompress to less
        than :attr:`ratio_exempt_bytes` are exempt.
    ratio_exempt_bytes:
        Decompressed size up to which the ratio is not checked (64 MiB): small
        arrays of zeros compress far better than 100:1 and harm nobody.
    max_archive_members:
        The most members a zip-based input (skops, xlsx) may hold (65,536).
    max_pickle_scan_steps:
        The most steps the pickle scanner may take on one file (200 million):
        one per opcode and one per link between the objects it follows.  The
        scanner is linear in the file size, so only files of hundreds of
        megabytes of opcodes come near it.
    max_report_bytes:
        The largest PDF ``probity verify`` reads (512 MiB).
    max_json_depth:
        The deepest nesting of lists and objects in a session file, a report's
        ``results.json`` or a manifest (100; Probity writes fewer than 15 levels).
    max_text_row_bytes:
        The longest line (row) of a delimited text table, in bytes (16 MiB; at
        most 1 GiB, the largest block the CSV parser reads).
    """

    max_decompressed_bytes: int = 4 * _GIB
    max_compression_ratio: float = 100.0
    ratio_exempt_bytes: int = 64 * _MIB
    max_archive_members: int = 65_536
    max_pickle_scan_steps: int = 200_000_000
    max_report_bytes: int = 512 * _MIB
    max_json_depth: int = 100
    max_text_row_bytes: int = 16 * _MIB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ProbityError(f"The limit {_describe(f.name)} must be a positive number, not {value!r}.")
        if self.max_compression_ratio < 1:
            raise ProbityError(
                f"The limit {_describe('max_compression_ratio')} must be at least 1, "
                f"not {self.max_compression_ratio!r}."
            )
        if self.max_text_row_bytes > _GIB:
            raise ProbityError(
                f"The limit {_describe('max_text_row_bytes')} can be at most 1024 MiB "
                "(the largest block the CSV parser reads)."
            )

    def decompressed_cap(self, compressed_size: int) -> int:
        """The most bytes an input of ``compressed_size`` bytes may decompress to (both limits applied)."""
        by_ratio = max(self.ratio_exempt_bytes, int(self.max_compression_ratio * max(compressed_size, 0)))
        return min(self.max_decompressed_bytes, by_ratio)

    def decompression_refusal(self, name: str, compressed_size: int, *, what: str = "decompresses") -> str:
        """The sentence for an input of ``compressed_size`` bytes that ``what`` beyond :meth:`decompressed_cap`."""
        cap = self.decompressed_cap(compressed_size)
        if cap == self.max_decompressed_bytes:
            return (
                f"{name} {what} to more than {format_bytes(cap)}, the limit on decompressed size; "
                f"{raise_hint('max_decompressed_bytes')}."
            )
        return (
            f"{name} {what} to more than {format_bytes(cap)}, over {self.max_compression_ratio:g} times its "
            f"size of {format_bytes(compressed_size)} (the limit on compression ratio, a zip-bomb guard); "
            f"{raise_hint('max_compression_ratio')}."
        )


@dataclass(frozen=True)
class LimitOption:
    """How one limit is set on the command line: ``--option VALUE`` with VALUE in ``unit``."""

    field: str
    option: str
    unit: int  # bytes per unit of the option's value (1 for counts and ratios)
    help: str


#: The command-line option of every limit a user may raise (the one table the CLI and messages use).
LIMIT_OPTIONS: tuple[LimitOption, ...] = (
    LimitOption(
        "max_decompressed_bytes",
        "--max-decompressed-mb",
        _MIB,
        "most a compressed model, workbook or report may decompress to, in MiB (default 4096)",
    ),
    LimitOption(
        "max_compression_ratio",
        "--max-compression-ratio",
        1,
        "most an input may decompress to as a multiple of its size, checked above 64 MiB (default 100)",
    ),
    LimitOption(
        "max_archive_members", "--max-archive-members", 1, "most files a skops or xlsx archive may hold (default 65536)"
    ),
    LimitOption(
        "max_pickle_scan_steps",
        "--max-pickle-scan-steps",
        1,
        "most steps the pickle safety scan may take on one file (default 200000000)",
    ),
    LimitOption(
        "max_report_bytes", "--max-report-mb", _MIB, "largest report PDF probity verify reads, in MiB (default 512)"
    ),
    LimitOption(
        "max_json_depth",
        "--max-json-depth",
        1,
        "deepest nesting of lists and objects in session, results or manifest JSON (default 100)",
    ),
    LimitOption(
        "max_text_row_bytes", "--max-row-mb", _MIB, "longest line of a CSV/TSV table, in MiB (default 16, at most 1024)"
    ),
)
_OPTION_OF = {o.field: o for o in LIMIT_OPTIONS}

DEFAULT_LIMITS = Limits()

# The limits of the command being run; a context variable, so a GUI worker thread (which starts
# with a fresh context) always gets the defaults.
_CURRENT: contextvars.ContextVar[Limits] = contextvars.ContextVar("probity_limits", default=DEFAULT_LIMITS)


def current_limits() -> Limits:
    """The limits in force: those given to :func:`using_limits`, else :data:`DEFAULT_LIMITS`."""
    return _CURRENT.get()


@contextmanager
def using_limits(limits: Limits) -> Iterator[Limits]:
    """Make ``limits`` the default of every reader called inside the ``with`` block (this thread only)."""
    token = _CURRENT.set(limits)
    try:
        yield limits
    finally:
        _CURRENT.reset(token)


def format_bytes(n: int) -> str:
    """``n`` bytes for a sentence: ``"4 GiB"``, ``"64 MiB"``, ``"1.5 KiB"``, ``"300 bytes"``."""
    for unit, size in (("GiB", _GIB), ("MiB", _MIB), ("KiB", _KIB)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) or value >= 100 else f"{value:.3g} {unit}"
    return f"{n} byte{'s' if n != 1 else ''}"


def raise_hint(field: str) -> str:
    """``"raise it with --option if the file is legitimate"`` for the limit ``field``."""
    return f"raise it with {_OPTION_OF[field].option} if the file is legitimate"


def _describe(field: str) -> str:
    option = _OPTION_OF.get(field)
    return option.option if option is not None else field.replace("_", " ")
