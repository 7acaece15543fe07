"""Reading input files within limits, and writing output files atomically.

Readers here refuse what would exhaust the machine before the memory is spent:
:func:`check_zip_archive` measures a zip's real decompressed size without
keeping it, and :func:`loads_json` refuses nesting deeper than a limit.  The
limits come from :class:`engine.limits.Limits`.
"""

from __future__ import annotations

import bz2
import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from engine.limits import Limits, raise_hint

__all__ = [
    "json_bytes",
    "write_bytes_atomic",
    "ArchiveProblem",
    "check_zip_archive",
    "JSONNestingError",
    "loads_json",
    "json_depth_exceeds",
]

# Audit outputs are handed to reviewers: readable by others, as an ordinary file would be
# (mkstemp alone would leave them 0600).
_OUTPUT_MODE = 0o644


def json_bytes(document: Mapping[str, Any]) -> bytes:
    """The one JSON serialisation of results (UTF-8, indented, strict: no NaN), ending in a newline."""
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    A crash never leaves half a file; missing parent folders are created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _OUTPUT_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


class JSONNestingError(ValueError):
    """A JSON document nests lists and objects deeper than the limit."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"it nests lists and objects more than {max_depth} levels deep")
        self.max_depth = max_depth

    def sentence(self, subject: str) -> str:
        """``"<subject> nests ... deep, the limit ...; raise it with --max-json-depth ..."``."""
        return (
            f"{subject} nests lists and objects more than {self.max_depth} levels deep, the limit on JSON "
            f"nesting; {raise_hint('max_json_depth')}."
        )


def json_depth_exceeds(document: Any, max_depth: int) -> bool:
    """Whether ``document`` (parsed JSON) nests lists and objects more than ``max_depth`` levels.

    Iterative, and it looks only at containers, so it is cheap next to parsing.
    """
    if not isinstance(document, (list, dict)):
        return False
    todo: list[tuple[Any, int]] = [(document, 1)]
    while todo:
        value, depth = todo.pop()
        if depth > max_depth:
            return True
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, (list, dict)):
                todo.append((item, depth + 1))
    return False


def loads_json(text: str | bytes, *, max_depth: int) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` with :class:`JSONNestingError`.

    The parser itself stops at Python's recursion limit (about a thousand levels)
    with a ``RecursionError``; that, too, becomes :class:`JSONNestingError`, and
    so does any depth past ``max_depth`` that the parser accepted (the code that
    reads the document afterwards recurses as well).

    Raises
    ------
    json.JSONDecodeError
        The text is not JSON.
    JSONNestingError
        It nests deeper than ``max_depth``.
    """
    try:
        document = json.loads(text)
    except RecursionError:
        raise JSONNestingError(max_depth) from None
    if json_depth_exceeds(document, max_depth):
        raise JSONNestingError(max_depth)
    return document


# ---------------------------------------------------------------------------
# Zip archives (skops models, xlsx workbooks)
# ---------------------------------------------------------------------------


class ArchiveProblem(Exception):
    """A zip archive is refused, before anything in it is decompressed for use.

    Attributes
    ----------
    message: the full sentence, naming the archive and, for a limit, how to raise it.
    reason: the problem without the archive's name (for callers that phrase damage their own way).
    damaged: ``True`` when the archive is not a readable zip at all, ``False`` when it is
        refused for its size, its members or a construction only zip bombs use.
    """

    def __init__(self, message: str, *, reason: str, damaged: bool) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.damaged = damaged


_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_LOCAL_HEADER = b"PK\x03\x04"
_READ_PIECE = 1 << 16  # compressed bytes fed at a time
_OUT_PIECE = 1 << 20  # most bytes one decompression step returns
_LZMA_PIECE = 1 << 12  # zipfile's LZMA reader has no output cap: feed it little at a time


def _declared_members(handle: BinaryIO, size: int) -> int | None:
    """The member count the end-of-central-directory record declares, or ``None`` when there is none."""
    tail_len = min(size, 22 + 0xFFFF)
    handle.seek(size - tail_len)
    tail = handle.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        return None
    count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    if count == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == _EOCD64_LOCATOR:
        offset = struct.unpack("<Q", tail[at - 12 : at - 4])[0]
        if offset + 40 <= size:
            handle.seek(offset)
            record = handle.read(40)
            if record[:4] == b"PK\x06\x06":
                return int(struct.unpack("<Q", record[32:40])[0])
    return int(count)


def _data_start(handle: BinaryIO, info: zipfile.ZipInfo) -> int:
    handle.seek(info.header_offset)
    header = handle.read(30)
    if len(header) < 30 or header[:4] != _LOCAL_HEADER:
        raise ValueError(f"the entry {info.filename!r} has no local header where its directory says")
    name_len: int
    extra_len: int
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return int(info.header_offset) + 30 + name_len + extra_len


def _decompressed_size(handle: BinaryIO, info: zipfile.ZipInfo, start: int, stop_after: int) -> int:
    """Bytes the member's compressed data really decompresses to, counted up to ``stop_after`` + 1."""
    method = info.compress_type
    left = info.compress_size
    handle.seek(start)
    if method == zipfile.ZIP_STORED:
        return int(left)
    dec: Any
    if method == zipfile.ZIP_DEFLATED:
        dec = zlib.decompressobj(-15)
    elif method == zipfile.ZIP_BZIP2:
        dec = bz2.BZ2Decompressor()
    elif method == zipfile.ZIP_LZMA:
        dec = zipfile.LZMADecompressor()  # type: ignore[attr-defined]
    else:
        raise ValueError(f"the entry {info.filename!r} uses compression method {method}, which Probity does not read")
    total = 0
    piece = _LZMA_PIECE if method == zipfile.ZIP_LZMA else _READ_PIECE
    while left > 0 and total <= stop_after:
        data = handle.read(min(piece, left))
        if not data:
            raise ValueError(f"the entry {info.filename!r} runs past the end of the archive")
        left -= len(data)
        if method == zipfile.ZIP_LZMA:
            total += len(dec.decompress(data))
            continue
        if method == zipfile.ZIP_DEFLATED:
            out = dec.decompress(data, _OUT_PIECE)
            total += len(out)
            while dec.unconsumed_tail and total <= stop_after:
                out = dec.decompress(dec.unconsumed_tail, _OUT_PIECE)
                total += len(out)
            if dec.eof:
                break
        else:
            out = dec.decompress(data, _OUT_PIECE)
            total += len(out)
            while not dec.needs_input and not dec.eof and total <= stop_after:
                total += len(dec.decompress(b"", _OUT_PIECE))
            if dec.eof:
                break
    return total


def check_zip_archive(source: bytes | Path, *, name: str, limits: Limits) -> None:
    """Refuse a zip archive whose size, ratio or member count is over ``limits``, before it is used.

    The central directory's sizes are checked first, then every member's compressed
    data is decompressed once and counted (nothing is kept), because a directory may
    understate what its data expands to.  Members whose data overlap (the
    construction of "overlapping" zip bombs) are refused.

    Parameters
    ----------
    source:
        The archive's bytes, or its path.
    name:
        How sentences name the archive (``"model.skops"``, ``"The workbook 'a.xlsx'"``).
    limits:
        ``max_archive_members``, ``max_decompressed_bytes`` and the compression ratio.

    Raises
    ------
    ArchiveProblem
        With a sentence; ``damaged`` tells a zip that cannot be read from one over a limit.
    """
    opened: BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    with opened as handle:
        size = handle.seek(0, os.SEEK_END)
        _check(handle, size, name, limits)


def _damaged(name: str, reason: str) -> ArchiveProblem:
    return ArchiveProblem(f"{name} is not a readable zip archive ({reason}).", reason=reason, damaged=True)


def _check(handle: BinaryIO, size: int, name: str, limits: Limits) -> None:
    declared = _declared_members(handle, size)
    if declared is None:
        raise _damaged(name, "it has no end-of-archive record")

    def too_many(count: int) -> ArchiveProblem:
        return ArchiveProblem(
            f"{name} holds {count:,} files, more than the limit of {limits.max_archive_members:,} for an archive; "
            f"{raise_hint('max_archive_members')}.",
            reason="too many members",
            damaged=False,
        )

    if declared > limits.max_archive_members:
        raise too_many(declared)
    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as archive:
            infos = archive.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
        struct.error,
        UnicodeDecodeError,
    ) as exc:
        raise _damaged(name, f"{type(exc).__name__}: {exc}".rstrip(". ")) from None
    if len(infos) > limits.max_archive_members:
        raise too_many(len(infos))
    cap = limits.decompressed_cap(size)
    refusal = ArchiveProblem(
        limits.decompression_refusal(name, size), reason="decompresses beyond the limit", damaged=False
    )
    if sum(info.file_size for info in infos) > cap:
        raise refusal
    spans: list[tuple[int, int, zipfile.ZipInfo]] = []
    try:
        for info in infos:
            if info.flag_bits & 0x1:
                raise ValueError(f"the entry {info.filename!r} is encrypted")
            start = _data_start(handle, info)
            if start + info.compress_size > size:
                raise ValueError(f"the entry {info.filename!r} runs past the end of the archive")
            spans.append((int(info.header_offset), start + int(info.compress_size), info))
    except (ValueError, OSError, struct.error) as exc:
        raise _damaged(name, str(exc)) from None
    spans.sort(key=lambda span: span[0])
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            reason = f"its entries {first.filename!r} and {second.filename!r} share compressed data"
            raise ArchiveProblem(
                f"{name} is refused: {reason}, a zip-bomb construction that no ordinary tool writes.",
                reason=reason,
                damaged=False,
            )
    total = 0
    for _, _, info in spans:
        try:
            real = _decompressed_size(handle, info, _data_start(handle, info), max(info.file_size, cap - total))
        except (ValueError, OSError, EOFError, zlib.error, struct.error) as exc:
            raise _damaged(name, str(exc)) from None
        if real > info.file_size:
            reason = (
                f"the entry {info.filename!r} decompresses to more than the {info.file_size:,} bytes its "
                "directory states"
            )
            raise ArchiveProblem(f"{name} is refused: {reason}, a zip-bomb construction.", reason=reason, damaged=False)
        total += real
        if total > cap:
            raise refusal
