"""How the report shows names too long to print: one stated rule, applied everywhere.

A column, input or class name can be thousands of characters long.  Printed in
full it would make a table row taller than a page (which reportlab cannot lay
out) and bury the text around it, so the report shortens every such name by
:data:`RULE`, the same way in paragraphs, tables and charts, and says so in its
data summary.  The tag is the start of the SHA-256 of the full name, so two long
names with the same beginning and end stay apart and anyone can check which
full name a shortened one stands for.  The command in the reproducibility
section is printed verbatim, and ``results.json``, attached to the PDF, holds
every name in full.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["LONG_NAME", "RULE", "short_name", "shortening", "shorten_in", "verbatim", "shortened"]

#: Names longer than this many characters are shortened.
LONG_NAME = 48
_HEAD, _TAIL, _TAG = 28, 10, 6

RULE = (
    f"Names longer than {LONG_NAME} characters are shortened to their first {_HEAD} and last {_TAIL} characters "
    f"around “…”, followed in brackets by the first {_TAG} hexadecimal digits of the SHA-256 of the full name "
    "(UTF-8); results.json, attached to this PDF, holds every name in full."
)

_ACTIVE: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("probity_report_long_names", default=())
_VERBATIM: ContextVar[bool] = ContextVar("probity_report_verbatim", default=False)


def short_name(name: str) -> str:
    """``name`` as the report prints it: unchanged up to :data:`LONG_NAME` characters, else by :data:`RULE`."""
    if len(name) <= LONG_NAME:
        return name
    tag = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_TAG]
    return f"{name[:_HEAD]}…{name[-_TAIL:]} [{tag}]"


@contextmanager
def shortening(names: Iterable[object]) -> Iterator[tuple[tuple[str, str], ...]]:
    """Within the block, :func:`shorten_in` replaces each long name of ``names`` by its short form."""
    long = {str(n) for n in names if n is not None and len(str(n)) > LONG_NAME}
    # Longest first, so a long name that contains another is replaced whole.
    pairs = tuple((n, short_name(n)) for n in sorted(long, key=lambda n: (-len(n), n)))
    token = _ACTIVE.set(pairs)
    try:
        yield pairs
    finally:
        _ACTIVE.reset(token)


def shortened() -> tuple[tuple[str, str], ...]:
    """The ``(full, short)`` pairs of the report being built; empty when no name is long."""
    return _ACTIVE.get()


@contextmanager
def verbatim() -> Iterator[None]:
    """Within the block, text is printed as it is (the command a reader copies)."""
    token = _VERBATIM.set(True)
    try:
        yield
    finally:
        _VERBATIM.reset(token)


def shorten_in(text: str) -> str:
    """``text`` with every long name of the current report replaced by its short form."""
    pairs = _ACTIVE.get()
    if not pairs or _VERBATIM.get():
        return text
    for full, short in pairs:
        if full in text:
            text = text.replace(full, short)
    return text
