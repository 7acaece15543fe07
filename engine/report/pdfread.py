"""A small reader for the PDFs this package writes: objects, streams, names.

It understands classic cross-reference tables (what reportlab writes) and the
object syntax of ISO 32000-1 section 7.3, which is all that
:func:`~engine.report.extract_embedded_results`, the stream fix-up in
:mod:`engine.report.pdfa` and the tests need.  It is not a general PDF parser:
cross-reference streams, object streams and encryption are refused with a
:class:`~engine.report.errors.ReportError`.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.report.errors import ReportError

__all__ = ["Name", "Ref", "Stream", "PdfFile", "parse_object", "decode_stream"]

_WHITESPACE = b"\x00\t\n\x0c\r "
_DELIMITERS = b"()<>[]{}/%"
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)")
_REF = re.compile(rb"(\d+)\s+(\d+)\s+R(?=[\s/\[\]<>()%]|$)")
_OBJ_HEADER = re.compile(rb"(\d+)\s+(\d+)\s+obj\b")
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s*%%EOF\s*$")


class Name(str):
    """A PDF name without its leading slash (``Name("Type")`` is ``/Type``)."""


@dataclass(frozen=True)
class Ref:
    """An indirect reference ``num gen R``."""

    num: int
    gen: int = 0


@dataclass(frozen=True)
class Stream:
    """A stream object: its dictionary and its raw (still encoded) bytes."""

    dict: dict[str, Any]
    raw: bytes


@dataclass
class _Cursor:
    data: bytes
    pos: int = 0

    def skip_space(self) -> None:
        data, n = self.data, len(self.data)
        while self.pos < n:
            c = data[self.pos]
            if c in _WHITESPACE:
                self.pos += 1
            elif c == 0x25:  # '%' starts a comment that runs to the end of the line
                while self.pos < n and data[self.pos] not in b"\r\n":
                    self.pos += 1
            else:
                return


def _fail(what: str) -> ReportError:
    return ReportError(f"The PDF is not one Probity can read back: {what}.")


def _parse_literal_string(cur: _Cursor) -> bytes:
    data = cur.data
    cur.pos += 1  # the opening parenthesis
    out = bytearray()
    depth = 1
    escapes = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}
    while cur.pos < len(data):
        c = data[cur.pos]
        if c == 0x5C:  # backslash
            cur.pos += 1
            e = data[cur.pos]
            if e in escapes:
                out += escapes[e]
                cur.pos += 1
            elif 0x30 <= e <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", data[cur.pos : cur.pos + 3])
                assert digits is not None
                out.append(int(digits.group(0), 8) & 0xFF)
                cur.pos += len(digits.group(0))
            elif e in b"\r\n":  # a line continuation
                cur.pos += 2 if data[cur.pos : cur.pos + 2] == b"\r\n" else 1
            else:
                out.append(e)
                cur.pos += 1
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                cur.pos += 1
                return bytes(out)
        out.append(c)
        cur.pos += 1
    raise _fail("a string is not closed")


def _parse_name(cur: _Cursor) -> Name:
    data = cur.data
    start = cur.pos = cur.pos + 1
    while cur.pos < len(data) and data[cur.pos] not in _WHITESPACE and data[cur.pos] not in _DELIMITERS:
        cur.pos += 1
    raw = data[start : cur.pos]
    # '#xx' escapes (ISO 32000-1 7.3.5), written by reportlab for '/' in MIME types.
    text = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    return Name(text.decode("latin-1"))


def _parse(cur: _Cursor) -> Any:
    cur.skip_space()
    data = cur.data
    if cur.pos >= len(data):
        raise _fail("an object ends early")
    c = data[cur.pos : cur.pos + 1]
    if data.startswith(b"<<", cur.pos):
        cur.pos += 2
        out: dict[str, Any] = {}
        while True:
            cur.skip_space()
            if data.startswith(b">>", cur.pos):
                cur.pos += 2
                return out
            key = _parse(cur)
            if not isinstance(key, Name):
                raise _fail("a dictionary key is not a name")
            out[str(key)] = _parse(cur)
    if c == b"[":
        cur.pos += 1
        items: list[Any] = []
        while True:
            cur.skip_space()
            if data.startswith(b"]", cur.pos):
                cur.pos += 1
                return items
            items.append(_parse(cur))
    if c == b"(":
        return _parse_literal_string(cur)
    if c == b"<":
        end = data.index(b">", cur.pos)
        hexdigits = re.sub(rb"\s", b"", data[cur.pos + 1 : end])
        cur.pos = end + 1
        if len(hexdigits) % 2:
            hexdigits += b"0"
        return bytes.fromhex(hexdigits.decode("ascii"))
    if c == b"/":
        return _parse_name(cur)
    ref = _REF.match(data, cur.pos)
    if ref is not None:
        cur.pos = ref.end()
        return Ref(int(ref.group(1)), int(ref.group(2)))
    num = _NUMBER.match(data, cur.pos)
    if num is not None:
        cur.pos = num.end()
        text = num.group(0)
        return float(text) if b"." in text else int(text)
    for word, value in ((b"true", True), (b"false", False), (b"null", None)):
        if data.startswith(word, cur.pos):
            cur.pos += len(word)
            return value
    raise _fail(f"unexpected bytes {data[cur.pos : cur.pos + 12]!r}")


def parse_object(data: bytes, pos: int = 0) -> tuple[Any, int]:
    """Parse one direct object at ``pos``; return it and the position after it."""
    cur = _Cursor(data, pos)
    value = _parse(cur)
    return value, cur.pos


def decode_stream(stream: Stream) -> bytes:
    """The decoded bytes of a stream (FlateDecode and ASCII85Decode filters)."""
    filters = stream.dict.get("Filter")
    if filters is None:
        names: list[str] = []
    elif isinstance(filters, list):
        names = [str(f) for f in filters]
    else:
        names = [str(filters)]
    data = stream.raw
    for name in names:
        if name == "FlateDecode":
            data = zlib.decompress(data)
        elif name == "ASCII85Decode":
            body = re.sub(rb"\s", b"", data)
            if body.startswith(b"<~"):
                body = body[2:]
            if body.endswith(b"~>"):
                body = body[:-2]
            data = base64.a85decode(body)
        else:
            raise _fail(f"a stream uses the unsupported filter {name}")
    return data


@dataclass
class _ObjectSpan:
    num: int
    start: int
    end: int = 0


@dataclass
class PdfFile:
    """A parsed PDF: the trailer and every indirect object, read on demand."""

    data: bytes
    trailer: dict[str, Any] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)
    xref_offset: int = 0
    _cache: dict[int, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> PdfFile:
        if not data.startswith(b"%PDF-"):
            raise _fail("it does not start with a PDF header")
        tail = _STARTXREF.search(data[-64:])
        if tail is None:
            raise _fail("its end of file marker is missing")
        xref_at = int(tail.group(1))
        if not data.startswith(b"xref", xref_at):
            raise _fail("it uses a cross-reference stream, which this reader does not support")
        pos = xref_at + 4
        offsets: dict[int, int] = {}
        while True:
            header = re.compile(rb"\s*(\d+)\s+(\d+)\s*\r?\n").match(data, pos)
            if header is None:
                break
            first, count = int(header.group(1)), int(header.group(2))
            pos = header.end()
            for i in range(count):
                entry = data[pos : pos + 20]
                pos += 20
                if entry[17:18] == b"n":
                    offsets[first + i] = int(entry[:10])
        trailer_at = data.index(b"trailer", pos)
        trailer, _ = parse_object(data, trailer_at + len(b"trailer"))
        if "Encrypt" in trailer:
            raise _fail("it is encrypted")
        return cls(data=data, trailer=trailer, offsets=offsets, xref_offset=xref_at)

    @classmethod
    def open(cls, path: Path) -> PdfFile:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ReportError(f"The report {path} cannot be read: {exc.strerror or exc}.", path=path) from exc
        try:
            return cls.from_bytes(data)
        except ReportError as exc:
            raise ReportError(f"{exc.message[:-1]} ({Path(path).name}).", path=path) from exc

    def object(self, num: int) -> Any:
        """Indirect object ``num`` (a :class:`Stream` for stream objects)."""
        if num in self._cache:
            return self._cache[num]
        if num not in self.offsets:
            raise _fail(f"object {num} is missing")
        start = self.offsets[num]
        header = _OBJ_HEADER.match(self.data, start)
        if header is None or int(header.group(1)) != num:
            raise _fail(f"object {num} is not where the cross-reference table says")
        value, pos = parse_object(self.data, header.end())
        cur = _Cursor(self.data, pos)
        cur.skip_space()
        if self.data.startswith(b"stream", cur.pos) and isinstance(value, dict):
            body = cur.pos + len(b"stream")
            body += 2 if self.data.startswith(b"\r\n", body) else 1
            length = self.resolve(value.get("Length"))
            if not isinstance(length, int):
                raise _fail(f"stream {num} has no length")
            value = Stream(dict=value, raw=self.data[body : body + length])
        self._cache[num] = value
        return value

    def resolve(self, value: Any) -> Any:
        """Follow ``value`` while it is an indirect reference."""
        while isinstance(value, Ref):
            value = self.object(value.num)
        return value

    def get(self, mapping: Any, *keys: str) -> Any:
        """``mapping[k1][k2]...`` with every reference on the way resolved; ``None`` if absent."""
        value = self.resolve(mapping)
        for key in keys:
            if isinstance(value, Stream):
                value = value.dict
            if not isinstance(value, dict) or key not in value:
                return None
            value = self.resolve(value[key])
        return value

    @property
    def catalog(self) -> dict[str, Any]:
        root = self.resolve(self.trailer.get("Root"))
        if not isinstance(root, dict):
            raise _fail("it has no document catalogue")
        return root

    def objects(self) -> Iterator[tuple[int, Any]]:
        """Every indirect object, by object number."""
        for num in sorted(self.offsets):
            yield num, self.object(num)

    def name_tree(self, tree: Any) -> dict[bytes, Any]:
        """The leaves of a name tree (ISO 32000-1 7.9.6), keys as raw bytes."""
        out: dict[bytes, Any] = {}
        node = self.resolve(tree)
        if not isinstance(node, dict):
            return out
        names = self.resolve(node.get("Names")) or []
        for key, value in zip(names[0::2], names[1::2]):
            out[self.resolve(key)] = value
        for kid in self.resolve(node.get("Kids")) or []:
            out.update(self.name_tree(kid))
        return out

    def spans(self) -> list[_ObjectSpan]:
        """Byte ranges of the indirect objects, in file order (for rewriting)."""
        spans = sorted((_ObjectSpan(num, off) for num, off in self.offsets.items()), key=lambda s: s.start)
        for here, after in zip(spans, spans[1:]):
            here.end = after.start
        if spans:
            spans[-1].end = self.xref_offset
        return spans
