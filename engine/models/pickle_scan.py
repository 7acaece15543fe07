"""Static safety scan of pickle and joblib files: what a file would import, never unpickled.

Unpickling runs code: every ``GLOBAL``/``STACK_GLOBAL``/``INST`` opcode imports
a module attribute, and ``REDUCE``/``NEWOBJ``/``BUILD`` call it.  This module
walks the opcode stream of every pickle in a file with a small *symbolic*
machine (constants are tracked, everything else is an opaque placeholder) and
reports the globals the file would import, without importing or calling any
of them.

Why a symbolic machine rather than a flat opcode listing:

* ``STACK_GLOBAL`` takes its module and name from the stack; they may come
  from the memo (``BINGET``) or be computed by an earlier call.  Only constant
  strings can be named; anything else is refused.
* joblib writes raw numpy array bytes *inside* the pickle stream, right after
  the ``BUILD`` of a ``joblib.numpy_pickle.NumpyArrayWrapper``.  To find the
  opcodes after an array we must skip exactly the bytes joblib will read, which
  needs the wrapper's shape and dtype.  Anything that could make our idea of
  the array size differ from joblib's is refused rather than guessed, because
  a mismatch would let opcodes hide inside "array bytes".

Every global is classified by Probity's allowlist policy
(:mod:`engine.models.pickle_policy`): *reviewed*, *unreviewed* or *dangerous*.
The scan is conservative: a file is ``"refused"`` when it names anything
dangerous, when it changes an object it imports, when ``functools.partial``
binds anything not reviewed, or when part of it cannot be checked; otherwise
it ``"needs-trust"``: loading it still runs the code of the classes it names,
so the user must trust that exact file, and where it names unreviewed globals
(:attr:`PickleScan.unreviewed`) the user must also acknowledge them.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import codecs
import dataclasses
import lzma
import mmap
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ModelError
from engine.limits import DEFAULT_LIMITS, Limits, current_limits, raise_hint
from engine.models import pickle_policy
from engine.models.pickle_policy import DANGEROUS, JOBLIB_ARRAY_WRAPPER, PARTIAL, REVIEWED, UNREVIEWED, danger_reason

__all__ = [
    "PickleScan",
    "scan_pickle",
    "scan_pickle_bytes",
    "danger_reason",
    "MAX_DECOMPRESSED_BYTES",
    "JOBLIB_ARRAY_WRAPPER",
]

#: Largest decompressed size of a compressed joblib file scanned by default (bytes); see
#: :class:`engine.limits.Limits` for this limit, the compression ratio and the step budget.
MAX_DECOMPRESSED_BYTES = DEFAULT_LIMITS.max_decompressed_bytes

_VERDICT_REFUSED = "refused"
_VERDICT_NEEDS_TRUST = "needs-trust"

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
_JOBLIB_LEGACY_PREFIX = b"ZF"

_MAX_KEPT_STRING = 1 << 16  # longer strings are kept only as "some string"
_MAX_GLOBAL_NAME = 1024  # characters of module plus name; longer globals are refused unrated
_MAX_LINE = 64 << 20  # protocol-0 text arguments
_INFLATE_IN = 1 << 20
_INFLATE_FIRST_IN = 64  # first input piece of each compressed stream (a gzip member is 20+ bytes)
_INFLATE_OUT = 8 << 20


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PickleScan:
    """What a pickle/joblib file would import, found without unpickling it.

    Attributes
    ----------
    format: the container: ``"pickle"`` (plain pickle stream[s]), ``"joblib"``
        (pickle with raw numpy arrays inside), or ``"joblib+zlib"``, ``"joblib+gzip"``,
        ``"joblib+bz2"``, ``"joblib+lzma"``, ``"joblib+xz"``, ``"joblib+lz4"``.
    imports: every global the file names, as ``"module.qualname"``, sorted, unique.
    dangerous: the subset of ``imports`` able to run commands or code.
    verdict: ``"refused"`` (never loaded, whatever the user trusts) or ``"needs-trust"``.
    notes: plain-language findings (unresolvable imports, damage, array payloads ...).
    pickles: number of complete pickle streams found one after another.
    array_payloads: number of raw numpy array payloads skipped (joblib).
    sklearn_versions: the ``_sklearn_version`` values found in estimator states.
    unreviewed: the subset of ``imports`` the policy rates unreviewed (loading them needs
        ``allow_unreviewed`` on top of trust).
    reviewed: the subset of ``imports`` on Probity's reviewed list.
    reasons: ``(name, status, reason)`` for every import, in the order of ``imports``.
    steps: the work the scan did: opcodes run plus links between objects followed
        (linear in the file size; bounded by ``Limits.max_pickle_scan_steps``).
    """

    format: str
    imports: tuple[str, ...]
    dangerous: tuple[str, ...]
    verdict: str
    notes: tuple[str, ...]
    pickles: int = 1
    array_payloads: int = 0
    sklearn_versions: tuple[str, ...] = ()
    unreviewed: tuple[str, ...] = ()
    reviewed: tuple[str, ...] = ()
    reasons: tuple[tuple[str, str, str], ...] = ()
    steps: int = 0

    @property
    def refused(self) -> bool:
        return self.verdict == _VERDICT_REFUSED

    @property
    def needs_allow_unreviewed(self) -> bool:
        """Whether loading needs the explicit acknowledgement of unreviewed globals, besides trust."""
        return not self.refused and bool(self.unreviewed)

    def status_of(self, name: str) -> str:
        """``"reviewed"``, ``"unreviewed"`` or ``"dangerous"`` for one of :attr:`imports`."""
        if name in self.dangerous:
            return DANGEROUS
        return UNREVIEWED if name in self.unreviewed else REVIEWED

    @property
    def uses_joblib(self) -> bool:
        """Whether ``joblib.load`` (not ``pickle.loads``) reads this file as scanned."""
        return self.format != "pickle"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "imports": list(self.imports),
            "dangerous": list(self.dangerous),
            "verdict": self.verdict,
            "notes": list(self.notes),
            "pickles": self.pickles,
            "array_payloads": self.array_payloads,
            "sklearn_versions": list(self.sklearn_versions),
            "unreviewed": list(self.unreviewed),
            "reviewed": list(self.reviewed),
            "status": {name: self.status_of(name) for name in self.imports},
        }


# ---------------------------------------------------------------------------
# Byte sources
# ---------------------------------------------------------------------------


class _Damaged(Exception):
    """The byte stream is not a well-formed pickle at some position."""


class _Refuse(Exception):
    """Scanning cannot go on safely; the file is refused with this note."""


class _Bomb(Exception):
    """Decompressed data exceeds the cap."""


class _MemoryReader:
    """Reads an in-memory buffer (``bytes`` or ``mmap``); skipping is free."""

    __slots__ = ("_buf", "pos", "_end")

    def __init__(self, buf: bytes | mmap.mmap) -> None:
        self._buf = buf
        self.pos = 0
        self._end = len(buf)

    def byte(self) -> int:
        pos = self.pos
        if pos >= self._end:
            raise _Damaged("the data ends before a STOP opcode")
        self.pos = pos + 1
        return self._buf[pos]

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > self._end:
            raise _Damaged("an argument runs past the end of the data")
        out = self._buf[self.pos : end]
        self.pos = end
        return out

    def skip(self, n: int) -> None:
        end = self.pos + n
        if n < 0 or end > self._end:
            raise _Damaged("a payload runs past the end of the data")
        self.pos = end

    def readline(self) -> bytes:
        i = self._buf.find(b"\n", self.pos, min(self._end, self.pos + _MAX_LINE))
        if i < 0:
            raise _Damaged("a text argument has no end of line")
        out = self._buf[self.pos : i]
        self.pos = i + 1
        return out

    def at_eof(self) -> bool:
        return self.pos >= self._end


class _StreamReader:
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
            raise _Damaged("the data ends before a STOP opcode")
        b = self._buf[self._off]
        self._off += 1
        self.pos += 1
        return b

    def read(self, n: int) -> bytes:
        if n < 0:
            raise _Damaged("an argument has a negative length")
        while len(self._buf) - self._off < n:
            if not self._more():
                raise _Damaged("an argument runs past the end of the data")
        out = bytes(self._buf[self._off : self._off + n])
        self._off += n
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        if n < 0:
            raise _Damaged("a payload has a negative length")
        left = n
        while True:
            avail = len(self._buf) - self._off
            if avail >= left:
                self._off += left
                break
            left -= avail
            self._buf, self._off = bytearray(), 0
            if not self._more():
                raise _Damaged("a payload runs past the end of the data")
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
                raise _Damaged("a text argument is longer than 64 MiB")
            start = len(self._buf) - self._off  # relative to the rebased buffer
            if not self._more():
                raise _Damaged("a text argument has no end of line")

    def at_eof(self) -> bool:
        return self._off >= len(self._buf) and not self._more()


def _new_decompressor(kind: str) -> Any:
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


def _inflate(raw: bytes | mmap.mmap, kind: str, limit: int) -> Iterator[bytes]:
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
    dec = _new_decompressor(kind)
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
            raise _Damaged(f"the {kind} data is damaged {where} ({exc})") from None
        if out:
            total += len(out)
            if total > limit:
                raise _Bomb()
            produced_any = True
            yield out
        if dec.eof:
            # What the decompressor was given beyond the stream's end starts the next one;
            # readers such as gzip's continue into it.
            src -= len(dec.unused_data) + len(pending)
            if src >= end:
                return
            dec, pending, piece = _new_decompressor(kind), b"", _INFLATE_FIRST_IN
    raise _Damaged(f"the {kind} data ends in the middle of a compressed stream")


# ---------------------------------------------------------------------------
# Symbolic values
# ---------------------------------------------------------------------------

(_K_PLAIN, _K_WRAPPER, _K_DTYPE, _K_RECONSTRUCTOR, _K_NEWOBJ, _K_NEWOBJ_EX, _K_OBJECT, _K_UNRESOLVED, _K_PARTIAL) = (
    range(9)
)
_DTYPE_MODULES = frozenset(
    {
        "numpy",
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core._multiarray_umath",
        "numpy._core._multiarray_umath",
    }
)


class _G:
    """A global the stream imported (a class or function object at load time)."""

    __slots__ = ("full", "kind", "status")

    def __init__(self, full: str, kind: int, status: str = DANGEROUS) -> None:
        self.full = full
        self.kind = kind
        self.status = status


class _Obj:
    """The result of a call or constructor.

    ``wrapper``: 0 certainly not a joblib array wrapper, 1 certainly one,
    2 perhaps one, ``None`` to be decided from ``args`` when it matters.
    """

    __slots__ = ("args", "attrs", "wrapper", "partial")

    def __init__(self, args: Any = None, wrapper: int | None = None) -> None:
        self.args = args
        self.attrs: dict[str, Any] = {}
        self.wrapper = wrapper
        self.partial = False  # a functools.partial: what it binds must be reviewed


class _DType:
    """A ``numpy.dtype(typestr, align, copy)`` call, with the state BUILD gives it."""

    __slots__ = ("args", "state")

    def __init__(self, args: Any) -> None:
        self.args = args
        self.state: Any = None


class _Opaque:
    """Bytes, long strings, buffers, arrays: plain data the scan does not need."""

    __slots__ = ()


_OPAQUE = _Opaque()


class _Key:
    """A dictionary key that is not a scalar, kept by identity (the graph follows it)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _hashable_key(key: Any) -> Any:
    # Only scalar keys matter (attribute names, "_sklearn_version"); hashing a
    # crafted, deeply nested tuple could exhaust the C stack, so it is never tried.
    if key is None or isinstance(key, (str, int, float)):
        return key
    return _Key(key)


# ---------------------------------------------------------------------------
# What reaches what: incremental, so the scan stays linear in the file size
# ---------------------------------------------------------------------------

_CONTAINERS = (list, tuple, dict, _Obj, _DType)


class _Budget(Exception):
    """The scan took more steps than the limit allows."""


class _Node:
    """Reachability facts about one container or object of the symbolic machine.

    ``m``: it reaches a *mention* -- the joblib array wrapper class, an unresolved
    global, or an object that is or may be a wrapper.  ``u``: it reaches a global
    that is not reviewed.  ``t``: everything it reaches was tainted (may be turned
    into a wrapper).  All three only ever switch on.
    """

    __slots__ = ("value", "parents", "m", "u", "t")

    def __init__(self, value: Any) -> None:
        self.value = value  # keeps the value alive, so its id() is never reused
        self.parents: list[_Node] = []
        self.m = isinstance(value, _Obj) and value.wrapper in (1, 2)
        self.u = False
        self.t = False


def _children(value: Any) -> tuple[Any, ...] | list[Any]:
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, _Obj):
        return (value.args, *value.attrs.values())
    if isinstance(value, _DType):
        return (value.args, value.state)
    return ()


class _Graph:
    """The containment graph of the symbolic values, with flags propagated as it grows.

    Asking "does this value reach a wrapper?" by walking the value each time is
    quadratic: a file can make a thousand calls on one large list for a few bytes
    each.  Here a value is walked once, when a question first reaches it; later
    additions (``APPEND``, ``SETITEM``, ``BUILD`` ...) are recorded as single
    edges, and a flag that switches on travels up the recorded parents once.  Every
    node and edge is therefore handled a bounded number of times, and each such
    step is counted against the scan's budget.
    """

    def __init__(self, findings: _Findings) -> None:
        self.f = findings
        self.nodes: dict[int, _Node] = {}

    def node(self, value: Any) -> _Node:
        """The node of a container, registering it and everything it reaches on first sight."""
        found = self.nodes.get(id(value))
        if found is not None:
            return found
        root = self.nodes[id(value)] = _Node(value)
        todo = [root]
        while todo:
            parent = todo.pop()
            for child in _children(parent.value):
                if isinstance(child, _Key):
                    child = child.value
                if isinstance(child, _CONTAINERS) and id(child) not in self.nodes:
                    todo.append(self._new(child))
                self._edge(parent, child)
        return root

    def _new(self, value: Any) -> _Node:
        node = self.nodes[id(value)] = _Node(value)
        return node

    def _edge(self, parent: _Node, child: Any) -> None:
        self.f.step()
        if isinstance(child, _G):
            if child.kind in (_K_WRAPPER, _K_UNRESOLVED):
                self._up(parent, "m")
            if child.status != REVIEWED:
                self._up(parent, "u")
            return
        if not isinstance(child, _CONTAINERS):
            return
        node = self.nodes.get(id(child))
        if node is None:
            node = self.node(child)
        node.parents.append(parent)
        if node.m:
            self._up(parent, "m")
        if node.u:
            self._up(parent, "u")
        if parent.t:
            self.taint(node)

    def linked(self, container: Any, *values: Any) -> None:
        """``values`` were just placed inside ``container`` (a list, dict, object ...)."""
        parent = self.nodes.get(id(container))
        if parent is None:
            return  # never asked about: it is walked, contents included, when first asked
        for value in values:
            self._edge(parent, value.value if isinstance(value, _Key) else value)

    def _up(self, node: _Node, flag: str) -> None:
        todo = [node]
        while todo:
            n = todo.pop()
            if getattr(n, flag):
                continue
            self.f.step()
            setattr(n, flag, True)
            todo.extend(n.parents)

    def became_wrapper(self, obj: _Obj) -> None:
        """``obj`` is now a wrapper or may be one: everything that reaches it reaches a mention."""
        node = self.nodes.get(id(obj))
        if node is not None:
            self._up(node, "m")

    def mentions(self, value: Any) -> bool:
        if isinstance(value, _G):
            return value.kind in (_K_WRAPPER, _K_UNRESOLVED)
        return isinstance(value, _CONTAINERS) and self.node(value).m

    def unreviewed(self, value: Any) -> bool:
        if isinstance(value, _G):
            return value.status != REVIEWED
        return isinstance(value, _CONTAINERS) and self.node(value).u

    def taint(self, start: _Node) -> None:
        """Everything ``start`` reaches may become a wrapper: mark its objects, now and later."""
        todo = [start]
        while todo:
            n = todo.pop()
            if n.t:
                continue
            self.f.step()
            n.t = True
            value = n.value
            if isinstance(value, _Obj) and value.wrapper != 1:
                value.wrapper = 2
                self._up(n, "m")
            for child in _children(value):
                if isinstance(child, _Key):
                    child = child.value
                if isinstance(child, _CONTAINERS):
                    todo.append(self.node(child))

    def first_unreviewed(self, value: Any) -> str | None:
        """The name of one global that is not reviewed and that ``value`` reaches, if any."""
        todo = [value]
        seen: set[int] = set()
        while todo:
            v = todo.pop()
            if isinstance(v, _Key):
                v = v.value
            if isinstance(v, _G):
                if v.status != REVIEWED:
                    return v.full
                continue
            if not isinstance(v, _CONTAINERS) or id(v) in seen or not self.node(v).u:
                continue
            seen.add(id(v))
            self.f.step()
            todo.extend(_children(v))
        return None


# ---------------------------------------------------------------------------
# The symbolic machine
# ---------------------------------------------------------------------------


class _Findings:
    """What all machines of one file found, shared with nested streams."""

    def __init__(self, max_steps: int = 200_000_000) -> None:
        self.imports: set[str] = set()
        self.dangerous: set[str] = set()
        self.unreviewed: set[str] = set()
        # A file may repeat a global millions of times; each distinct name is rated once.
        self.verdicts: dict[tuple[str, str], pickle_policy.Classification] = {}
        self.reasons: dict[str, str] = {}
        self.notes: list[str] = []
        self.refused = False
        self.wrapper_seen = False
        self.array_payloads = 0
        self.sklearn_versions: set[str] = set()
        self.pickles = 0
        self.steps = 0
        self.max_steps = max_steps
        self.graph = _Graph(self)

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.max_steps:
            raise _Budget()

    def classify(self, module: str, name: str) -> pickle_policy.Classification:
        verdict = self.verdicts.get((module, name))
        if verdict is None:
            verdict = self.verdicts[(module, name)] = pickle_policy.classify(module, name)
        return verdict

    def refuse(self, note: str) -> None:
        self.refused = True
        if note not in self.notes and len(self.notes) < 50:
            self.notes.append(note)


class _Machine:
    """Executes pickle opcodes on symbolic values; never imports or calls anything."""

    def __init__(self, reader: _MemoryReader | _StreamReader, findings: _Findings, *, joblib: bool) -> None:
        self.r = reader
        self.f = findings
        self.joblib = joblib
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.proto = 0
        self.frame_end = 0
        self.ops = 0
        d: dict[int, Callable[[], None]] = {}
        for code, fn in (
            (b"(", self.op_mark),
            (b"0", self.op_pop),
            (b"1", self.op_pop_mark),
            (b"2", self.op_dup),
            (b"F", self.op_float),
            (b"I", self.op_int),
            (b"J", self.op_binint),
            (b"K", self.op_binint1),
            (b"L", self.op_long),
            (b"M", self.op_binint2),
            (b"N", self.op_none),
            (b"P", self.op_persid),
            (b"Q", self.op_binpersid),
            (b"R", self.op_reduce),
            (b"S", self.op_string),
            (b"T", self.op_binstring),
            (b"U", self.op_short_binstring),
            (b"V", self.op_unicode),
            (b"X", self.op_binunicode),
            (b"a", self.op_append),
            (b"b", self.op_build),
            (b"c", self.op_global),
            (b"d", self.op_dict),
            (b"}", self.op_empty_dict),
            (b"e", self.op_appends),
            (b"g", self.op_get),
            (b"h", self.op_binget),
            (b"i", self.op_inst),
            (b"j", self.op_long_binget),
            (b"l", self.op_list),
            (b"]", self.op_empty_list),
            (b"o", self.op_obj),
            (b"p", self.op_put),
            (b"q", self.op_binput),
            (b"r", self.op_long_binput),
            (b"s", self.op_setitem),
            (b"t", self.op_tuple),
            (b")", self.op_empty_tuple),
            (b"u", self.op_setitems),
            (b"G", self.op_binfloat),
            (b"\x80", self.op_proto),
            (b"\x81", self.op_newobj),
            (b"\x82", self.op_ext1),
            (b"\x83", self.op_ext2),
            (b"\x84", self.op_ext4),
            (b"\x85", self.op_tuple1),
            (b"\x86", self.op_tuple2),
            (b"\x87", self.op_tuple3),
            (b"\x88", self.op_true),
            (b"\x89", self.op_false),
            (b"\x8a", self.op_long1),
            (b"\x8b", self.op_long4),
            (b"B", self.op_binbytes),
            (b"C", self.op_short_binbytes),
            (b"\x8c", self.op_short_binunicode),
            (b"\x8d", self.op_binunicode8),
            (b"\x8e", self.op_binbytes8),
            (b"\x8f", self.op_empty_set),
            (b"\x90", self.op_additems),
            (b"\x91", self.op_frozenset),
            (b"\x92", self.op_newobj_ex),
            (b"\x93", self.op_stack_global),
            (b"\x94", self.op_memoize),
            (b"\x95", self.op_frame),
            (b"\x96", self.op_bytearray8),
            (b"\x97", self.op_next_buffer),
            (b"\x98", self.op_readonly_buffer),
        ):
            d[code[0]] = fn
        self.dispatch = d

    # -- driving -------------------------------------------------------------

    def run_one(self) -> Any:
        """Run one pickle up to and including its STOP opcode; return its (symbolic) value."""
        self.stack, self.metastack = [], []
        self.proto = 0
        dispatch = self.dispatch
        byte = self.r.byte
        step = self.f.step
        batch = 0
        while True:
            op = byte()
            if op == 0x2E:  # STOP
                step(batch)
                if not self.stack:
                    raise _Damaged("STOP with an empty stack")
                return self.stack[-1]
            fn = dispatch.get(op)
            if fn is None:
                raise _Damaged(f"unknown opcode 0x{op:02x} at byte {self.r.pos - 1}")
            fn()
            self.ops += 1
            batch += 1
            if batch == 4096:  # opcodes count against the budget in batches: one call per opcode costs
                step(batch)
                batch = 0

    def pop(self) -> Any:
        if not self.stack:
            raise _Damaged(f"stack underflow at byte {self.r.pos - 1}")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise _Damaged(f"missing MARK at byte {self.r.pos - 1}")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def top(self) -> Any:
        if not self.stack:
            raise _Damaged(f"stack underflow at byte {self.r.pos - 1}")
        return self.stack[-1]

    # -- globals ---------------------------------------------------------------

    def make_global(self, module: Any, name: Any, where: str) -> _G:
        if not isinstance(module, str) or not isinstance(name, str):
            self.f.refuse(
                f"{where} at byte {self.r.pos - 1} imports a name that is computed, not written in the file, "
                "so what it imports cannot be checked"
            )
            return _G("<unresolved>", _K_UNRESOLVED)
        if len(module) + len(name) > _MAX_GLOBAL_NAME:
            # No module path is this long; rating one costs time in proportion to its parts.
            self.f.refuse(
                f"{where} at byte {self.r.pos - 1} names a global of {len(module) + len(name):,} characters "
                f"({module[:40]!r}...), longer than any real Python name, so it is not checked"
            )
            return _G("<unresolved>", _K_UNRESOLVED)
        eff_module, eff_name = module, name
        if self.proto < 3:
            # The unpickler renames Python 2 globals for protocols 0-2 (fix_imports).
            if (module, name) in _compat_pickle.NAME_MAPPING:
                eff_module, eff_name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                eff_module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{eff_module}.{eff_name}"
        self.f.imports.add(full)
        verdict = self.f.classify(eff_module, eff_name)
        if (module, name) != (eff_module, eff_name) and (module, name) not in _compat_pickle.NAME_MAPPING:
            # The raw name matters too: a nested joblib stream is resolved with the outer
            # stream's protocol, which may not rename it.  (NAME_MAPPING keys are Python 2
            # names that exist nowhere in Python 3.)  Only its danger counts: a raw Python 2
            # name that is not dangerous fails to import where it is not renamed.
            raw = self.f.classify(module, name)
            if raw.status == DANGEROUS:
                verdict = raw
        status = verdict.status
        if status == DANGEROUS:
            self.f.dangerous.add(full)
            self.f.reasons.setdefault(full, verdict.reason)
            self.f.refused = True
        elif status == UNREVIEWED:
            self.f.unreviewed.add(full)
            self.f.reasons.setdefault(full, verdict.reason)
        kind = _K_PLAIN
        if full == JOBLIB_ARRAY_WRAPPER:
            kind = _K_WRAPPER
            self.f.wrapper_seen = True
        elif eff_name == "dtype" and eff_module in _DTYPE_MODULES:
            kind = _K_DTYPE
        elif eff_module == "copyreg":
            kind = {"_reconstructor": _K_RECONSTRUCTOR, "__newobj__": _K_NEWOBJ, "__newobj_ex__": _K_NEWOBJ_EX}.get(
                eff_name, _K_PLAIN
            )
        elif full == "builtins.object":
            kind = _K_OBJECT
        elif full == PARTIAL:
            kind = _K_PARTIAL
        return _G(full, kind, status)

    def _text_line(self) -> str:
        raw = self.r.readline()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Damaged(f"a global's name is not UTF-8 at byte {self.r.pos}") from None

    def op_global(self) -> None:
        module = self._text_line()
        name = self._text_line()
        self.stack.append(self.make_global(module, name, "GLOBAL"))

    def op_stack_global(self) -> None:
        name = self.pop()
        module = self.pop()
        self.stack.append(self.make_global(module, name, "STACK_GLOBAL"))

    def op_inst(self) -> None:
        module = self._text_line()
        name = self._text_line()
        cls = self.make_global(module, name, "INST")
        args = self.pop_mark()
        self.stack.append(self.instantiate(cls, tuple(args)))

    def op_obj(self) -> None:
        items = self.pop_mark()
        if not items:
            raise _Damaged(f"OBJ without a class at byte {self.r.pos - 1}")
        self.stack.append(self.instantiate(items[0], tuple(items[1:])))

    def _ext(self, code: int) -> None:
        # The copyreg extension registry maps numbers to globals at load time; what
        # they name is not in the file.
        self.f.refuse(f"it uses extension-registry code {code}, which names an import not written in the file")
        self.stack.append(_G("<extension>", _K_UNRESOLVED))

    def op_ext1(self) -> None:
        self._ext(self.r.byte())

    def op_ext2(self) -> None:
        self._ext(struct.unpack("<H", self.r.read(2))[0])

    def op_ext4(self) -> None:
        self._ext(struct.unpack("<i", self.r.read(4))[0])

    # -- calls -----------------------------------------------------------------

    def call(self, func: Any, args: Any) -> Any:
        """``func(*args)`` as REDUCE does it."""
        self._taint(func, args)
        if isinstance(func, _G):
            k = func.kind
            if k == _K_PARTIAL:
                return self._partial(args)
            if (
                k in (_K_RECONSTRUCTOR, _K_NEWOBJ, _K_NEWOBJ_EX)
                and isinstance(args, tuple)
                and args
                and isinstance(args[0], _G)
                and args[0].kind == _K_PARTIAL
            ):
                return self._partial(args[1:] if k != _K_RECONSTRUCTOR else args[2:])
            if k == _K_WRAPPER:
                obj = _Obj(args, 1)
                self._wrapper_init(obj, args)
                return obj
            if k == _K_DTYPE:
                return _DType(args)
            if isinstance(args, tuple) and args and isinstance(args[0], _G):
                cls = args[0]
                if k == _K_RECONSTRUCTOR and cls.kind == _K_WRAPPER:
                    plain = len(args) == 3 and isinstance(args[1], _G) and args[1].kind == _K_OBJECT
                    return _Obj(args, 1 if plain and args[2] is None else 2)
                if k in (_K_NEWOBJ, _K_NEWOBJ_EX):
                    if cls.kind == _K_WRAPPER:
                        return _Obj(args, 1)
                    if cls.kind == _K_DTYPE:
                        if k == _K_NEWOBJ:
                            return _DType(args[1:])
                        inner = args[1] if len(args) > 1 else ()
                        kwargs = args[2] if len(args) > 2 else {}
                        return _DType(inner if not kwargs else None)
            return _Obj(args, None)
        # Calling something that was itself computed: its result could be anything.
        return _Obj(args, 2 if self.f.wrapper_seen else 0)

    def new(self, cls: Any, args: Any) -> Any:
        """``cls.__new__(cls, *args)`` as NEWOBJ does it."""
        self._taint(cls, args)
        if isinstance(cls, _G):
            if cls.kind == _K_WRAPPER:
                return _Obj(args, 1)
            if cls.kind == _K_DTYPE:
                return _DType(args)
            if cls.kind == _K_PARTIAL:
                return self._partial(args)
            return _Obj(args, None)
        return _Obj(args, 2 if self.f.wrapper_seen else 0)

    def _partial(self, args: Any) -> _Obj:
        """A ``functools.partial``: it calls what it binds later, so that must be reviewed."""
        self._check_partial_binding(args)
        obj = _Obj(args, None)
        obj.partial = True
        return obj

    def _check_partial_binding(self, value: Any) -> None:
        """Refuse when a partial's arguments or state hold a global that is not reviewed,
        or bind a callable that is not a global at all."""
        if PARTIAL in self.f.dangerous:
            return  # refused already; one reason is enough
        first = value[0] if isinstance(value, tuple) and value else None
        if isinstance(value, tuple) and value and not isinstance(first, _G):
            self._flag_partial("a computed object, whose code cannot be checked")
            return
        if self.f.graph.unreviewed(value):
            self._flag_partial(self.f.graph.first_unreviewed(value) or "a global that is not reviewed")

    def _flag_partial(self, what: str) -> None:
        self.f.dangerous.add(PARTIAL)
        self.f.imports.add(PARTIAL)
        self.f.unreviewed.discard(PARTIAL)
        self.f.reasons[PARTIAL] = f"functools.partial binds {what}, which Probity has not reviewed"
        self.f.refused = True

    def _mutates_global(self, target: Any, how: str) -> None:
        """Refuse a file that changes an object it imports (a class, a function, a constant):
        no model needs that, and the change would outlive the file."""
        if isinstance(target, _G):
            raise _Refuse(f"{how} at byte {self.r.pos - 1} changes {target.full}, an object it imports")

    def instantiate(self, cls: Any, args: tuple[Any, ...]) -> Any:
        """INST/OBJ: ``cls(*args)`` when there are arguments, else ``cls.__new__(cls)``."""
        if args:
            return self.call(cls, args)
        return self.new(cls, args)

    @staticmethod
    def _wrapper_init(obj: _Obj, args: Any) -> None:
        # NumpyArrayWrapper.__init__(subclass, shape, order, dtype, allow_mmap=False,
        # numpy_array_alignment_bytes=16)
        if not isinstance(args, tuple) or not 4 <= len(args) <= 6:
            obj.wrapper = 2  # __init__ would fail; stay conservative if it somehow does not (obj is new)
            return
        names = ("subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes")
        obj.attrs.update(zip(names, args))
        obj.attrs.setdefault("allow_mmap", False)
        obj.attrs.setdefault("numpy_array_alignment_bytes", 16)

    def op_reduce(self) -> None:
        args = self.pop()
        func = self.pop()
        self.stack.append(self.call(func, args))

    def op_newobj(self) -> None:
        args = self.pop()
        cls = self.pop()
        self.stack.append(self.new(cls, args))

    def op_newobj_ex(self) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        self._taint(cls, args, kwargs)
        obj = self.new(cls, args)
        if isinstance(obj, _Obj) and obj.wrapper is None:
            obj.args = (args, kwargs)  # both reach cls.__new__
            self.f.graph.linked(obj, obj.args)
        if isinstance(obj, _DType) and kwargs:
            obj.args = None  # keyword arguments: a dtype Probity will not size
        self.stack.append(obj)

    # -- BUILD and joblib arrays -------------------------------------------------

    def op_build(self) -> None:
        state = self.pop()
        inst = self.top()
        self._mutates_global(inst, "BUILD")
        if isinstance(inst, _Obj) and inst.partial:
            self._check_partial_binding(state)
        main_state = state[0] if isinstance(state, tuple) and len(state) == 2 else state
        if isinstance(main_state, dict):
            version = main_state.get("_sklearn_version")
            if isinstance(version, str):
                self.f.sklearn_versions.add(version)
        if isinstance(inst, _DType):
            inst.state = state
            self.f.graph.linked(inst, state)
            return
        if not isinstance(inst, _Obj) or not self.f.wrapper_seen:
            # No wrapper class imported yet: nothing here can be a wrapper.
            return
        if inst.wrapper is None:
            inst.wrapper = 2 if self.f.graph.mentions(inst.args) else 0
            if inst.wrapper:
                self.f.graph.became_wrapper(inst)
        # __setstate__ (or a slot state setting __class__) may turn objects into wrappers.
        self._taint(inst, state)
        if inst.wrapper == 0:
            return
        if inst.wrapper == 1:
            self._apply_state(inst, state)
        if not self.joblib:
            # Inside a nested object-array stream, joblib's plain unpickler reads no arrays.
            return
        if inst.wrapper == 2:
            raise _Refuse(
                f"an object built at byte {self.r.pos - 1} may be a joblib array wrapper, so the size of the "
                "raw array bytes that follow cannot be known"
            )
        self._skip_array(inst)

    def _apply_state(self, inst: _Obj, state: Any) -> None:
        slotstate: Any = None
        if isinstance(state, tuple) and len(state) == 2:
            state, slotstate = state
        for part in (state, slotstate):
            if part is None or part == {}:
                continue
            if not isinstance(part, dict):
                raise _Refuse("a joblib array wrapper gets its attributes from a computed object")
            for key, value in part.items():
                if not isinstance(key, str):
                    raise _Refuse("a joblib array wrapper has an attribute with a computed name")
                inst.attrs[key] = value
                self.f.graph.linked(inst, value)

    def _skip_array(self, inst: _Obj) -> None:
        """Skip the bytes ``NumpyArrayWrapper.read_array`` consumes after this BUILD."""
        if self.r.pos < self.frame_end:
            # joblib reads array bytes from the file, not from the current frame.
            raise _Refuse(f"a joblib array payload starts inside a pickle frame at byte {self.r.pos}")
        attrs = inst.attrs
        if "dtype" not in attrs or "shape" not in attrs:
            raise _Refuse("a joblib array wrapper lacks its dtype or shape")
        itemsize, hasobject = self._dtype_layout(attrs["dtype"])
        self.f.array_payloads += 1
        self.stack[-1] = _OPAQUE  # joblib replaces the wrapper by the array
        if hasobject:
            # Object arrays are a complete nested pickle read by a fresh plain unpickler;
            # whatever it returns (not necessarily an array) replaces the wrapper.
            nested = _Machine(self.r, self.f, joblib=False)
            self.stack[-1] = nested.run_one()
            if self.r.pos < nested.frame_end:
                raise _Refuse("a nested object-array pickle ends inside a frame")
            self.ops += nested.ops
            return
        shape = attrs["shape"]
        if not isinstance(shape, (tuple, list)) or not all(isinstance(s, int) for s in shape):
            raise _Refuse("a joblib array wrapper has a shape that is not a list of integers")
        count = 1
        for s in shape:
            if s < 0:
                raise _Refuse("a joblib array wrapper has a negative dimension")
            count *= s
        if count >= 1 << 63:
            raise _Refuse("a joblib array wrapper has more elements than numpy can count")
        if attrs.get("numpy_array_alignment_bytes") is not None:
            pad = self.r.byte()
            self.r.skip(pad)
        self.r.skip(count * itemsize)

    def _dtype_layout(self, dtype: Any, depth: int = 0) -> tuple[int, bool]:
        """``(itemsize, hasobject)`` of a symbolic dtype, or refuse when unsure."""
        if depth > 20 or not isinstance(dtype, _DType):
            raise _Refuse("a joblib array wrapper has a dtype Probity cannot interpret")
        args = dtype.args
        if not isinstance(args, tuple) or not 1 <= len(args) <= 3 or not isinstance(args[0], str):
            raise _Refuse("a joblib array wrapper has a dtype Probity cannot interpret")
        typestr = args[0]
        kind, digits = typestr[:1], typestr[1:]
        if kind not in "biufcmMOSUV" or not kind or not digits.isdigit() or len(digits) > 6:
            raise _Refuse(f"a joblib array has the unsupported dtype {typestr[:20]!r}")
        n = int(digits)
        if kind in "SV":
            size = n
        elif kind == "U":
            size = 4 * n
        else:
            import numpy as np  # only to size plain numeric codes like 'f8' on this platform

            try:
                size = np.dtype(typestr).itemsize
            except TypeError:
                raise _Refuse(f"a joblib array has the unsupported dtype {typestr[:20]!r}") from None
        hasobject = kind == "O"
        state = dtype.state
        if state is not None:
            if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
                raise _Refuse("a joblib array has a dtype state Probity cannot interpret")
            _, _, subarray, names, fields, elsize, _, flags = state[:8]
            if subarray is not None or not isinstance(elsize, int) or not isinstance(flags, int):
                raise _Refuse("a joblib array has a dtype state Probity cannot interpret")
            # numpy takes a flexible type's size from the state (-1 included) and ignores
            # it for fixed types; accept only states where both readings agree.
            if elsize != size and (kind in "SUV" or elsize != -1):
                raise _Refuse("a joblib array's dtype states two different item sizes")
            if fields is not None:
                if kind != "V" or not isinstance(fields, dict) or not isinstance(names, tuple):
                    raise _Refuse("a joblib array has a dtype state Probity cannot interpret")
                for spec in fields.values():
                    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
                        raise _Refuse("a joblib array has a dtype state Probity cannot interpret")
                    hasobject = self._dtype_layout(spec[0], depth + 1)[1] or hasobject
            elif names is not None:
                raise _Refuse("a joblib array has a dtype state Probity cannot interpret")
            # numpy takes hasobject from the state's flags, whatever the kind or fields
            # say; both readings must agree.
            if bool(flags & 1) != hasobject:
                raise _Refuse("a joblib array's dtype flags disagree with its fields")
        if size <= 0:
            raise _Refuse("a joblib array has a zero-size dtype")
        return size, hasobject

    def _taint(self, *values: Any) -> None:
        """Code run with both a wrapper (class or object) and other objects in reach could
        turn those objects into wrappers (``obj.__class__ = NumpyArrayWrapper``)."""
        if not self.f.wrapper_seen:
            return
        graph = self.f.graph
        if any(graph.mentions(v) for v in values):
            for v in values:
                if isinstance(v, _CONTAINERS):
                    graph.taint(graph.node(v))

    # -- stack, memo, containers -------------------------------------------------

    def op_mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def op_pop_mark(self) -> None:
        self.pop_mark()

    def op_dup(self) -> None:
        self.stack.append(self.top())

    def op_none(self) -> None:
        self.stack.append(None)

    def op_true(self) -> None:
        self.stack.append(True)

    def op_false(self) -> None:
        self.stack.append(False)

    def op_append(self) -> None:
        value = self.pop()
        target = self.top()
        self._mutates_global(target, "APPEND")
        if isinstance(target, list):
            target.append(value)
            self.f.graph.linked(target, value)
        elif isinstance(target, _Obj):
            self._taint(target, value)  # calls target.append(value)
            self.f.graph.linked(target, value)

    def op_appends(self) -> None:
        items = self.pop_mark()
        target = self.top()
        self._mutates_global(target, "APPENDS")
        if isinstance(target, list):
            target.extend(items)
            self.f.graph.linked(target, *items)
        elif isinstance(target, _Obj):
            self._taint(target, *items)
            self.f.graph.linked(target, *items)

    def op_list(self) -> None:
        items = self.pop_mark()  # before touching self.stack: pop_mark replaces it
        self.stack.append(items)

    def op_empty_list(self) -> None:
        self.stack.append([])

    def op_tuple(self) -> None:
        items = tuple(self.pop_mark())
        self.stack.append(items)

    def op_empty_tuple(self) -> None:
        self.stack.append(())

    def op_tuple1(self) -> None:
        self.stack.append((self.pop(),))

    def op_tuple2(self) -> None:
        b = self.pop()
        a = self.pop()
        self.stack.append((a, b))

    def op_tuple3(self) -> None:
        c = self.pop()
        b = self.pop()
        a = self.pop()
        self.stack.append((a, b, c))

    def op_dict(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise _Damaged(f"odd number of items for DICT at byte {self.r.pos - 1}")
        self.stack.append({_hashable_key(items[i]): items[i + 1] for i in range(0, len(items), 2)})

    def op_empty_dict(self) -> None:
        self.stack.append({})

    def op_setitem(self) -> None:
        value = self.pop()
        key = self.pop()
        target = self.top()
        self._mutates_global(target, "SETITEM")
        if isinstance(target, dict):
            target[_hashable_key(key)] = value
            self.f.graph.linked(target, key, value)
        elif isinstance(target, _Obj):
            self._taint(target, key, value)  # calls target.__setitem__
            self.f.graph.linked(target, key, value)

    def op_setitems(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise _Damaged(f"odd number of items for SETITEMS at byte {self.r.pos - 1}")
        target = self.top()
        self._mutates_global(target, "SETITEMS")
        if isinstance(target, dict):
            for i in range(0, len(items), 2):
                target[_hashable_key(items[i])] = items[i + 1]
            self.f.graph.linked(target, *items)
        elif isinstance(target, _Obj):
            self._taint(target, *items)
            self.f.graph.linked(target, *items)

    def op_empty_set(self) -> None:
        self.stack.append([])  # only membership of wrapper-like values matters

    def op_additems(self) -> None:
        items = self.pop_mark()
        target = self.top()
        self._mutates_global(target, "ADDITEMS")
        if isinstance(target, list):
            target.extend(items)
            self.f.graph.linked(target, *items)
        elif isinstance(target, _Obj):
            self._taint(target, *items)
            self.f.graph.linked(target, *items)

    def op_frozenset(self) -> None:
        items = tuple(self.pop_mark())
        self.stack.append(items)

    def _put(self, index: int) -> None:
        if index < 0:
            raise _Damaged(f"negative memo index at byte {self.r.pos - 1}")
        self.memo[index] = self.top()

    def _get(self, index: int) -> None:
        if index not in self.memo:
            raise _Damaged(f"memo entry {index} read before it was written (byte {self.r.pos - 1})")
        self.stack.append(self.memo[index])

    def op_put(self) -> None:
        self._put(self._int_line())

    def op_binput(self) -> None:
        self._put(self.r.byte())

    def op_long_binput(self) -> None:
        self._put(struct.unpack("<I", self.r.read(4))[0])

    def op_memoize(self) -> None:
        self._put(len(self.memo))

    def op_get(self) -> None:
        self._get(self._int_line())

    def op_binget(self) -> None:
        self._get(self.r.byte())

    def op_long_binget(self) -> None:
        self._get(struct.unpack("<I", self.r.read(4))[0])

    # -- scalars -------------------------------------------------------------------

    def _int_line(self) -> int:
        line = self.r.readline()
        try:
            return int(line)
        except ValueError:
            raise _Damaged(f"bad integer argument at byte {self.r.pos}") from None

    def op_int(self) -> None:
        line = self.r.readline()
        if line == b"00":
            self.stack.append(False)
        elif line == b"01":
            self.stack.append(True)
        else:
            try:
                self.stack.append(int(line, 0))  # the unpickler accepts any base prefix here
            except ValueError:
                raise _Damaged(f"bad INT argument at byte {self.r.pos}") from None

    def op_long(self) -> None:
        line = self.r.readline()
        if line.endswith(b"L"):
            line = line[:-1]
        try:
            self.stack.append(int(line, 0))
        except ValueError:
            raise _Damaged(f"bad LONG argument at byte {self.r.pos}") from None

    def op_float(self) -> None:
        line = self.r.readline()
        try:
            self.stack.append(float(line))
        except ValueError:
            raise _Damaged(f"bad FLOAT argument at byte {self.r.pos}") from None

    def op_binint(self) -> None:
        self.stack.append(struct.unpack("<i", self.r.read(4))[0])

    def op_binint1(self) -> None:
        self.stack.append(self.r.byte())

    def op_binint2(self) -> None:
        self.stack.append(struct.unpack("<H", self.r.read(2))[0])

    def op_binfloat(self) -> None:
        self.stack.append(struct.unpack(">d", self.r.read(8))[0])

    def _long_bytes(self, n: int) -> None:
        if n > 1 << 20:
            self.r.skip(n)
            self.stack.append(_OPAQUE)
        else:
            self.stack.append(int.from_bytes(self.r.read(n), "little", signed=True))

    def op_long1(self) -> None:
        self._long_bytes(self.r.byte())

    def op_long4(self) -> None:
        n = struct.unpack("<i", self.r.read(4))[0]
        if n < 0:
            raise _Damaged(f"negative LONG4 length at byte {self.r.pos}")
        self._long_bytes(n)

    # -- strings and bytes -----------------------------------------------------------

    def _text(self, n: int, encoding: str) -> None:
        if n < 0:
            raise _Damaged(f"negative string length at byte {self.r.pos}")
        if n > _MAX_KEPT_STRING:
            self.r.skip(n)
            self.stack.append(_OPAQUE)
            return
        raw = self.r.read(n)
        try:
            self.stack.append(bytes(raw).decode(encoding))
        except UnicodeDecodeError:
            if encoding == "utf-8":
                # 'surrogatepass' is what the unpickler allows; anything else fails there too.
                try:
                    self.stack.append(bytes(raw).decode("utf-8", "surrogatepass"))
                    return
                except UnicodeDecodeError:
                    pass
            # Undecodable text makes the real unpickler stop here; keep going conservatively.
            self.stack.append(_OPAQUE)

    def op_binunicode(self) -> None:
        self._text(struct.unpack("<I", self.r.read(4))[0], "utf-8")

    def op_short_binunicode(self) -> None:
        self._text(self.r.byte(), "utf-8")

    def op_binunicode8(self) -> None:
        self._text(struct.unpack("<Q", self.r.read(8))[0], "utf-8")

    def op_binstring(self) -> None:
        # Python 2 str: the unpickler decodes it as ASCII by default.
        self._text(struct.unpack("<i", self.r.read(4))[0], "ascii")

    def op_short_binstring(self) -> None:
        self._text(self.r.byte(), "ascii")

    def op_string(self) -> None:
        line = bytes(self.r.readline())
        if len(line) >= 2 and line[0] == line[-1] and line[:1] in (b"'", b'"'):
            body = line[1:-1]
        else:
            raise _Damaged(f"STRING argument is not quoted at byte {self.r.pos}")
        try:
            value = codecs.escape_decode(body)[0].decode("ascii")
        except (ValueError, UnicodeDecodeError):
            self.stack.append(_OPAQUE)
            return
        self.stack.append(value if len(value) <= _MAX_KEPT_STRING else _OPAQUE)

    def op_unicode(self) -> None:
        line = bytes(self.r.readline())
        try:
            value = line.decode("raw-unicode-escape")
        except UnicodeDecodeError:
            raise _Damaged(f"bad UNICODE argument at byte {self.r.pos}") from None
        self.stack.append(value if len(value) <= _MAX_KEPT_STRING else _OPAQUE)

    def _bytes(self, n: int) -> None:
        if n < 0:
            raise _Damaged(f"negative bytes length at byte {self.r.pos}")
        self.r.skip(n)  # payloads are never needed to name an import
        self.stack.append(_OPAQUE)

    def op_binbytes(self) -> None:
        self._bytes(struct.unpack("<I", self.r.read(4))[0])

    def op_short_binbytes(self) -> None:
        self._bytes(self.r.byte())

    def op_binbytes8(self) -> None:
        self._bytes(struct.unpack("<Q", self.r.read(8))[0])

    def op_bytearray8(self) -> None:
        self._bytes(struct.unpack("<Q", self.r.read(8))[0])

    def op_next_buffer(self) -> None:
        self.stack.append(_OPAQUE)

    def op_readonly_buffer(self) -> None:
        self.top()

    # -- protocol, frames, persistent ids ---------------------------------------------

    def op_proto(self) -> None:
        proto = self.r.byte()
        if proto > 5:
            raise _Damaged(f"unsupported pickle protocol {proto}")
        self.proto = proto

    def op_frame(self) -> None:
        size = struct.unpack("<Q", self.r.read(8))[0]
        self.frame_end = self.r.pos + size

    def op_persid(self) -> None:
        self.r.readline()
        self.stack.append(_OPAQUE)

    def op_binpersid(self) -> None:
        self.pop()
        self.stack.append(_OPAQUE)


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def _compression_of(head: bytes) -> str | None:
    for kind, prefix in _COMPRESSION_PREFIXES:
        if head.startswith(prefix):
            return kind
    return None


def _scan(buf: bytes | mmap.mmap, name: str, path: Path | None, limits: Limits) -> PickleScan:
    head = bytes(buf[:8])
    if not head:
        raise ModelError(f"{name} is empty, so it is not a pickle or joblib file.", path=path)
    if head.startswith(_JOBLIB_LEGACY_PREFIX):
        raise ModelError(
            f"{name} uses the joblib format of versions before 0.9.3, which Probity does not read.", path=path
        )
    compression = _compression_of(head)
    reader: _MemoryReader | _StreamReader
    if compression is None:
        reader = _MemoryReader(buf)
    else:
        if compression == "lz4":
            try:
                import lz4.frame  # noqa: F401
            except ImportError:
                raise ModelError(
                    f"{name} is LZ4-compressed, which needs the lz4 package that is not installed.", path=path
                ) from None
        reader = _StreamReader(_inflate(buf, compression, limits.decompressed_cap(len(buf))))
    findings = _Findings(limits.max_pickle_scan_steps)
    machine = _Machine(reader, findings, joblib=True)
    damage: str | None = None
    try:
        while True:
            machine.run_one()
            findings.pickles += 1
            if reader.at_eof():
                break
    except _Damaged as exc:
        damage = str(exc)
    except _Refuse as exc:
        findings.refuse(str(exc))
    except _Bomb:
        raise ModelError(limits.decompression_refusal(name, len(buf)), path=path) from None
    except _Budget:
        raise ModelError(
            f"{name} needs more than {limits.max_pickle_scan_steps:,} steps to check (opcodes and links between "
            f"the objects it builds), far more than models of its size need, so Probity does not open it; "
            f"{raise_hint('max_pickle_scan_steps')}.",
            path=path,
        ) from None
    except RecursionError:  # pragma: no cover - the machine is iterative; belt and braces
        damage = "it nests too deeply"

    if damage is not None:
        if findings.dangerous:
            findings.refuse(f"its pickle data is damaged ({damage})")
        elif findings.pickles == 0:
            if compression is None and not findings.imports and machine.proto == 0:
                raise ModelError(f"{name} is not a pickle or joblib file.", path=path)
            raise ModelError(f"{name} is a damaged pickle: {damage}.", path=path)
        else:
            findings.refuse(
                f"the bytes after its first {findings.pickles} pickle(s) are not a readable pickle ({damage}), "
                "so they cannot be checked"
            )

    if compression is not None:
        fmt = f"joblib+{compression}"
    elif findings.wrapper_seen or findings.array_payloads:
        fmt = "joblib"
    else:
        fmt = "pickle"
    notes = list(findings.notes)
    for full in sorted(findings.dangerous):
        notes.append(f"{full}: {findings.reasons.get(full, 'able to run code')}")
    if findings.pickles > 1:
        notes.append(f"the file holds {findings.pickles} pickles one after another; all were scanned")
    if findings.array_payloads:
        notes.append(f"{findings.array_payloads} raw numpy array payload(s) were skipped by their declared size")
    refused = findings.refused or bool(findings.dangerous)
    imports = tuple(sorted(findings.imports))
    unreviewed = tuple(sorted(findings.unreviewed - findings.dangerous))
    reviewed = tuple(name for name in imports if name not in findings.dangerous and name not in findings.unreviewed)
    for full in unreviewed:
        notes.append(f"{full}: unreviewed - {findings.reasons.get(full, 'not on the reviewed list')}")
    reasons = tuple(
        (name, status, findings.reasons.get(name, "on Probity's reviewed list"))
        for name in imports
        for status in (DANGEROUS if name in findings.dangerous else UNREVIEWED if name in unreviewed else REVIEWED,)
    )
    return PickleScan(
        format=fmt,
        imports=imports,
        dangerous=tuple(sorted(findings.dangerous)),
        verdict=_VERDICT_REFUSED if refused else _VERDICT_NEEDS_TRUST,
        notes=tuple(notes),
        pickles=findings.pickles,
        array_payloads=findings.array_payloads,
        sklearn_versions=tuple(sorted(findings.sklearn_versions)),
        unreviewed=unreviewed,
        reviewed=reviewed,
        reasons=reasons,
        steps=findings.steps,
    )


def _limits(limits: Limits | None, max_decompressed_bytes: int | None) -> Limits:
    limits = current_limits() if limits is None else limits
    if max_decompressed_bytes is not None:
        limits = dataclasses.replace(limits, max_decompressed_bytes=max_decompressed_bytes)
    return limits


def scan_pickle_bytes(
    data: bytes,
    *,
    name: str = "The data",
    path: str | Path | None = None,
    max_decompressed_bytes: int | None = None,
    limits: Limits | None = None,
) -> PickleScan:
    """Scan an in-memory pickle/joblib file; see :func:`scan_pickle`.

    Parameters
    ----------
    data: the file's bytes (the very bytes that will be loaded, to avoid a
        time-of-check/time-of-use gap).
    name: how error messages name the data (usually the file name).
    """
    return _scan(data, name, None if path is None else Path(path), _limits(limits, max_decompressed_bytes))


def scan_pickle(
    path: str | Path,
    *,
    max_decompressed_bytes: int | None = None,
    limits: Limits | None = None,
) -> PickleScan:
    """List what a pickle or joblib file imports, and whether Probity refuses it. Never unpickles.

    Parameters
    ----------
    path: a pickle (protocol 0-5, possibly several concatenated) or a joblib file
        (plain or zlib/gzip/bz2/lzma/xz/lz4-compressed).
    max_decompressed_bytes: cap on the decompressed size of compressed files (bytes),
        overriding ``limits.max_decompressed_bytes``.
    limits: the decompression limits (size and ratio) and the step budget; default
        :func:`engine.limits.current_limits`.  A file beyond them raises :class:`ModelError`.

    Returns
    -------
    PickleScan

    Raises
    ------
    ModelError
        The file is missing, empty, not a pickle or joblib file, damaged before any
        import could be read, decompresses beyond the limits, or needs more steps than
        the budget.
    """
    path = Path(path)
    limits = _limits(limits, max_decompressed_bytes)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise ModelError(f"{path.name} does not exist.", path=path) from None
    except IsADirectoryError:
        raise ModelError(f"{path.name} is a folder, not a model file.", path=path) from None
    except OSError as exc:
        raise ModelError(f"{path.name} cannot be read ({exc.strerror or exc}).", path=path) from None
    with handle:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if size == 0:
            return _scan(b"", path.name, path, limits)
        # A read-only map lets large array payloads be skipped without reading them.
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _scan(buf, path.name, path, limits)
