"""The bytes a pickle scan reads: a file in memory, or a joblib file's compressed streams inflated in pieces.

The compression is detected from the first bytes exactly as joblib's
``_detect_compressor`` does, so the scan reads the bytes ``joblib.load`` will
read.  Inflating stops as soon as the output passes the limit (a decompression
bomb), and works in time linear in the input however many streams it holds.
Both readers offer the same small interface to the opcode machine
(:mod:`engine.models.pickle_scan.machine`): ``byte``, ``read``, ``skip``,
``readline``, ``at_eof`` and ``pos``.
"""

from __future__ import annotations

import bz2
import lzma
import mmap
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = [
    "Damaged",
    "Bomb",
    "JOBLIB_LEGACY_PREFIX",
    "compression_of",
    "MemoryReader",
    "StreamReader",
    "new_decompressor",
    "inflate",
]

# Magic prefixes exactly as joblib's ``_detect_compressor`` checks them, in its
# order; the scan must read the bytes the way ``joblib.load`` will.
_COMPRESSION_PREFIXES: tuple[tuple[str, bytes], ...] = (
    ("zlib", b"\x78"),
    ("gzip", b"\x1f\x8b"),
    ("bz2", b"BZ"),
    ("lzma", b"\x5d\x00"),
    ("xz", b"\xfd\x37\x7a\x58\x5a"),
    ("lz4", b"\x04\x22\x4d\x18"),
)
JOBLIB_LEGACY_PREFIX = b"ZF"

_MAX_LINE = 64 << 20  # protocol-0 text arguments
_INFLATE_IN = 1 << 20
_INFLATE_FIRST_IN = 64  # first input piece of each compressed stream (a gzip member is 20+ bytes)
_INFLATE_OUT = 8 << 20


class Damaged(Exception):
    """The byte stream is not a well-formed pickle at some position."""


class Bomb(Exception):
    """Decompressed data exceeds the cap."""


class MemoryReader:
    """Reads an in-memory buffer (``bytes`` or ``mmap``); skipping is free."""

    __slots__ = ("_buf", "pos", "_end")

    def __init__(self, buf: bytes | mmap.mmap) -> None:
        self._buf = buf
        self.pos = 0
        self._end = len(buf)

    def byte(self) -> int:
        pos = self.pos
        if pos >= self._end:
            raise Damaged("the data ends before a STOP opcode")
        self.pos = pos + 1
        return self._buf[pos]

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > self._end:
            raise Damaged("an argument runs past the end of the data")
        out = self._buf[self.pos : end]
        self.pos = end
        return out

    def skip(self, n: int) -> None:
        end = self.pos + n
        if n < 0 or end > self._end:
            raise Damaged("a payload runs past the end of the data")
        self.pos = end

    def readline(self) -> bytes:
        i = self._buf.find(b"\n", self.pos, min(self._end, self.pos + _MAX_LINE))
        if i < 0:
            raise Damaged("a text argument has no end of line")
        out = self._buf[self.pos : i]
        self.pos = i + 1
        return out

    def at_eof(self) -> bool:
        return self.pos >= self._end


class StreamReader:
    """Reads decompressed chunks from an iterator, keeping only a small window.

    The window is a ``bytearray``: dropping its consumed start and appending a
    chunk cost the chunk's size, so many small chunks under one long argument
    are not copied again and again.
    """

    __slots__ = ("_chunks", "_buf", "_off", "pos", "_done")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = bytearray()
        self._off = 0
        self.pos = 0
        self._done = False

    def _more(self) -> bool:
        if self._done:
            return False
        for chunk in self._chunks:
            if chunk:
                del self._buf[: self._off]
                self._buf += chunk
                self._off = 0
                return True
        self._done = True
        return False

    def byte(self) -> int:
        if self._off >= len(self._buf) and not self._more():
            raise Damaged("the data ends before a STOP opcode")
        b = self._buf[self._off]
        self._off += 1
        self.pos += 1
        return b

    def read(self, n: int) -> bytes:
        if n < 0:
            raise Damaged("an argument has a negative length")
        while len(self._buf) - self._off < n:
            if not self._more():
                raise Damaged("an argument runs past the end of the data")
        out = bytes(self._buf[self._off : self._off + n])
        self._off += n
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        if n < 0:
            raise Damaged("a payload has a negative length")
        left = n
        while True:
            avail = len(self._buf) - self._off
            if avail >= left:
                self._off += left
                break
            left -= avail
            self._buf, self._off = bytearray(), 0
            if not self._more():
                raise Damaged("a payload runs past the end of the data")
        self.pos += n

    def readline(self) -> bytes:
        start = self._off
        while True:
            i = self._buf.find(b"\n", start)
            if i >= 0:
                out = bytes(self._buf[self._off : i])
                self.pos += i + 1 - self._off
                self._off = i + 1
                return out
            if len(self._buf) - self._off > _MAX_LINE:
                raise Damaged("a text argument is longer than 64 MiB")
            start = len(self._buf) - self._off  # relative to the rebased buffer
            if not self._more():
                raise Damaged("a text argument has no end of line")

    def at_eof(self) -> bool:
        return self._off >= len(self._buf) and not self._more()


def new_decompressor(kind: str) -> Any:
    if kind == "zlib":
        return zlib.decompressobj()
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind in ("lzma", "xz"):
        return lzma.LZMADecompressor()
    if kind == "lz4":
        import lz4.frame  # optional, checked by the caller

        return lz4.frame.LZ4FrameDecompressor()
    raise AssertionError(kind)


def inflate(raw: bytes | mmap.mmap, kind: str, limit: int) -> Iterator[bytes]:
    """Yield the decompressed bytes of ``raw`` (all concatenated streams), at most ``limit``.

    Output is produced in bounded pieces (``max_length``) so a bomb is stopped
    after ``limit`` bytes, not after it has filled memory.  Input is fed in
    pieces that start small for each stream and double while it goes on: the
    decompressor copies what it was given beyond a stream's end, so a file of
    a million tiny concatenated streams costs time in proportion to its size,
    not to its size times the piece size.
    """
    total = 0
    src, end = 0, len(raw)
    dec = new_decompressor(kind)
    zlike = kind in ("zlib", "gzip")
    pending = b""
    produced_any = False
    piece = _INFLATE_FIRST_IN
    while True:
        try:
            if zlike:
                if not pending:
                    if src >= end:
                        break
                    pending = raw[src : src + piece]
                    src += len(pending)
                    piece = min(2 * piece, _INFLATE_IN)
                out = dec.decompress(pending, _INFLATE_OUT)
                pending = dec.unconsumed_tail
            else:
                if dec.needs_input:
                    if src >= end:
                        break
                    data = raw[src : src + piece]
                    src += len(data)
                    piece = min(2 * piece, _INFLATE_IN)
                else:
                    data = b""
                out = dec.decompress(data, _INFLATE_OUT)
        except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError, RuntimeError) as exc:
            where = "after its first compressed stream" if produced_any else "in its compressed data"
            raise Damaged(f"the {kind} data is damaged {where} ({exc})") from None
        if out:
            total += len(out)
            if total > limit:
                raise Bomb()
            produced_any = True
            yield out
        if dec.eof:
            # What the decompressor was given beyond the stream's end starts the next one;
            # readers such as gzip's continue into it.
            src -= len(dec.unused_data) + len(pending)
            if src >= end:
                return
            dec, pending, piece = new_decompressor(kind), b"", _INFLATE_FIRST_IN
    raise Damaged(f"the {kind} data ends in the middle of a compressed stream")


def compression_of(head: bytes) -> str | None:
    for kind, prefix in _COMPRESSION_PREFIXES:
        if head.startswith(prefix):
            return kind
    return None
