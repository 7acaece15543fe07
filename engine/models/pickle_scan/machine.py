"""The symbolic pickle machine: every opcode run on symbolic values, nothing imported or called.

Globals are named and rated (:mod:`engine.models.pickle_policy`) as they are
met; calls and constructors give symbolic objects; ``BUILD`` of a joblib array
wrapper skips exactly the raw array bytes joblib will read, or refuses when
their size cannot be known.  See :mod:`engine.models.pickle_scan` for why the
machine is symbolic.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import struct
from collections.abc import Callable
from typing import Any

from engine.models.pickle_policy import DANGEROUS, JOBLIB_ARRAY_WRAPPER, MAX_NAME_LENGTH, PARTIAL, UNREVIEWED
from engine.models.pickle_scan.streams import Damaged, MemoryReader, StreamReader
from engine.models.pickle_scan.symbolic import (
    CONTAINERS,
    K_DTYPE,
    K_NEWOBJ,
    K_NEWOBJ_EX,
    K_OBJECT,
    K_PARTIAL,
    K_PLAIN,
    K_RECONSTRUCTOR,
    K_UNRESOLVED,
    K_WRAPPER,
    OPAQUE,
    DType,
    Findings,
    Global,
    Obj,
    hashable_key,
)

__all__ = ["Machine", "Refuse"]

_MAX_KEPT_STRING = 1 << 16  # longer strings are kept only as "some string"
# Where numpy's ``dtype`` lives: calling it builds a dtype, which the machine must size for joblib arrays.
_DTYPE_MODULES = frozenset(
    {
        "numpy",
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core._multiarray_umath",
        "numpy._core._multiarray_umath",
    }
)


class Refuse(Exception):
    """Scanning cannot go on safely; the file is refused with this note."""


class Machine:
    """Executes pickle opcodes on symbolic values; never imports or calls anything."""

    def __init__(self, reader: MemoryReader | StreamReader, findings: Findings, *, joblib: bool) -> None:
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
                    raise Damaged("STOP with an empty stack")
                return self.stack[-1]
            fn = dispatch.get(op)
            if fn is None:
                raise Damaged(f"unknown opcode 0x{op:02x} at byte {self.r.pos - 1}")
            fn()
            self.ops += 1
            batch += 1
            if batch == 4096:  # opcodes count against the budget in batches: one call per opcode costs
                step(batch)
                batch = 0

    def pop(self) -> Any:
        if not self.stack:
            raise Damaged(f"stack underflow at byte {self.r.pos - 1}")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise Damaged(f"missing MARK at byte {self.r.pos - 1}")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def top(self) -> Any:
        if not self.stack:
            raise Damaged(f"stack underflow at byte {self.r.pos - 1}")
        return self.stack[-1]

    # -- globals ---------------------------------------------------------------

    def make_global(self, module: Any, name: Any, where: str) -> Global:
        if not isinstance(module, str) or not isinstance(name, str):
            self.f.refuse(
                f"{where} at byte {self.r.pos - 1} imports a name that is computed, not written in the file, "
                "so what it imports cannot be checked"
            )
            return Global("<unresolved>", K_UNRESOLVED)
        if len(module) + len(name) > MAX_NAME_LENGTH:
            # No module path is this long; rating one costs time in proportion to its parts.
            self.f.refuse(
                f"{where} at byte {self.r.pos - 1} names a global of {len(module) + len(name):,} characters "
                f"({module[:40]!r}...), longer than any real Python name, so it is not checked"
            )
            return Global("<unresolved>", K_UNRESOLVED)
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
        kind = K_PLAIN
        if full == JOBLIB_ARRAY_WRAPPER:
            kind = K_WRAPPER
            self.f.wrapper_seen = True
        elif eff_name == "dtype" and eff_module in _DTYPE_MODULES:
            kind = K_DTYPE
        elif eff_module == "copyreg":
            kind = {"_reconstructor": K_RECONSTRUCTOR, "__newobj__": K_NEWOBJ, "__newobj_ex__": K_NEWOBJ_EX}.get(
                eff_name, K_PLAIN
            )
        elif full == "builtins.object":
            kind = K_OBJECT
        elif full == PARTIAL:
            kind = K_PARTIAL
        return Global(full, kind, status)

    def _text_line(self) -> str:
        raw = self.r.readline()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Damaged(f"a global's name is not UTF-8 at byte {self.r.pos}") from None

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
            raise Damaged(f"OBJ without a class at byte {self.r.pos - 1}")
        self.stack.append(self.instantiate(items[0], tuple(items[1:])))

    def _ext(self, code: int) -> None:
        # The copyreg extension registry maps numbers to globals at load time; what
        # they name is not in the file.
        self.f.refuse(f"it uses extension-registry code {code}, which names an import not written in the file")
        self.stack.append(Global("<extension>", K_UNRESOLVED))

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
        if isinstance(func, Global):
            k = func.kind
            if k == K_PARTIAL:
                return self._partial(args)
            if (
                k in (K_RECONSTRUCTOR, K_NEWOBJ, K_NEWOBJ_EX)
                and isinstance(args, tuple)
                and args
                and isinstance(args[0], Global)
                and args[0].kind == K_PARTIAL
            ):
                return self._partial(args[1:] if k != K_RECONSTRUCTOR else args[2:])
            if k == K_WRAPPER:
                obj = Obj(args, 1)
                self._wrapper_init(obj, args)
                return obj
            if k == K_DTYPE:
                return DType(args)
            if isinstance(args, tuple) and args and isinstance(args[0], Global):
                cls = args[0]
                if k == K_RECONSTRUCTOR and cls.kind == K_WRAPPER:
                    plain = len(args) == 3 and isinstance(args[1], Global) and args[1].kind == K_OBJECT
                    return Obj(args, 1 if plain and args[2] is None else 2)
                if k in (K_NEWOBJ, K_NEWOBJ_EX):
                    if cls.kind == K_WRAPPER:
                        return Obj(args, 1)
                    if cls.kind == K_DTYPE:
                        if k == K_NEWOBJ:
                            return DType(args[1:])
                        inner = args[1] if len(args) > 1 else ()
                        kwargs = args[2] if len(args) > 2 else {}
                        return DType(inner if not kwargs else None)
            return Obj(args, None)
        # Calling something that was itself computed: its result could be anything.
        return Obj(args, 2 if self.f.wrapper_seen else 0)

    def new(self, cls: Any, args: Any) -> Any:
        """``cls.__new__(cls, *args)`` as NEWOBJ does it."""
        self._taint(cls, args)
        if isinstance(cls, Global):
            if cls.kind == K_WRAPPER:
                return Obj(args, 1)
            if cls.kind == K_DTYPE:
                return DType(args)
            if cls.kind == K_PARTIAL:
                return self._partial(args)
            return Obj(args, None)
        return Obj(args, 2 if self.f.wrapper_seen else 0)

    def _partial(self, args: Any) -> Obj:
        """A ``functools.partial``: it calls what it binds later, so that must be reviewed."""
        self._check_partial_binding(args)
        obj = Obj(args, None)
        obj.partial = True
        return obj

    def _check_partial_binding(self, value: Any) -> None:
        """Refuse when a partial's arguments or state hold a global that is not reviewed,
        or bind a callable that is not a global at all."""
        if PARTIAL in self.f.dangerous:
            return  # refused already; one reason is enough
        first = value[0] if isinstance(value, tuple) and value else None
        if isinstance(value, tuple) and value and not isinstance(first, Global):
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
        if isinstance(target, Global):
            raise Refuse(f"{how} at byte {self.r.pos - 1} changes {target.full}, an object it imports")

    def instantiate(self, cls: Any, args: tuple[Any, ...]) -> Any:
        """INST/OBJ: ``cls(*args)`` when there are arguments, else ``cls.__new__(cls)``."""
        if args:
            return self.call(cls, args)
        return self.new(cls, args)

    @staticmethod
    def _wrapper_init(obj: Obj, args: Any) -> None:
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
        if isinstance(obj, Obj) and obj.wrapper is None:
            obj.args = (args, kwargs)  # both reach cls.__new__
            self.f.graph.linked(obj, obj.args)
        if isinstance(obj, DType) and kwargs:
            obj.args = None  # keyword arguments: a dtype Probity will not size
        self.stack.append(obj)

    # -- BUILD and joblib arrays -------------------------------------------------

    def op_build(self) -> None:
        state = self.pop()
        inst = self.top()
        self._mutates_global(inst, "BUILD")
        if isinstance(inst, Obj) and inst.partial:
            self._check_partial_binding(state)
        main_state = state[0] if isinstance(state, tuple) and len(state) == 2 else state
        if isinstance(main_state, dict):
            version = main_state.get("_sklearn_version")
            if isinstance(version, str):
                self.f.sklearn_versions.add(version)
        if isinstance(inst, DType):
            inst.state = state
            self.f.graph.linked(inst, state)
            return
        if not isinstance(inst, Obj) or not self.f.wrapper_seen:
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
            raise Refuse(
                f"an object built at byte {self.r.pos - 1} may be a joblib array wrapper, so the size of the "
                "raw array bytes that follow cannot be known"
            )
        self._skip_array(inst)

    def _apply_state(self, inst: Obj, state: Any) -> None:
        slotstate: Any = None
        if isinstance(state, tuple) and len(state) == 2:
            state, slotstate = state
        for part in (state, slotstate):
            if part is None or part == {}:
                continue
            if not isinstance(part, dict):
                raise Refuse("a joblib array wrapper gets its attributes from a computed object")
            for key, value in part.items():
                if not isinstance(key, str):
                    raise Refuse("a joblib array wrapper has an attribute with a computed name")
                inst.attrs[key] = value
                self.f.graph.linked(inst, value)

    def _skip_array(self, inst: Obj) -> None:
        """Skip the bytes ``NumpyArrayWrapper.read_array`` consumes after this BUILD."""
        if self.r.pos < self.frame_end:
            # joblib reads array bytes from the file, not from the current frame.
            raise Refuse(f"a joblib array payload starts inside a pickle frame at byte {self.r.pos}")
        attrs = inst.attrs
        if "dtype" not in attrs or "shape" not in attrs:
            raise Refuse("a joblib array wrapper lacks its dtype or shape")
        itemsize, hasobject = self._dtype_layout(attrs["dtype"])
        self.f.array_payloads += 1
        self.stack[-1] = OPAQUE  # joblib replaces the wrapper by the array
        if hasobject:
            # Object arrays are a complete nested pickle read by a fresh plain unpickler;
            # whatever it returns (not necessarily an array) replaces the wrapper.
            nested = Machine(self.r, self.f, joblib=False)
            self.stack[-1] = nested.run_one()
            if self.r.pos < nested.frame_end:
                raise Refuse("a nested object-array pickle ends inside a frame")
            self.ops += nested.ops
            return
        shape = attrs["shape"]
        if not isinstance(shape, (tuple, list)) or not all(isinstance(s, int) for s in shape):
            raise Refuse("a joblib array wrapper has a shape that is not a list of integers")
        count = 1
        for s in shape:
            if s < 0:
                raise Refuse("a joblib array wrapper has a negative dimension")
            count *= s
        if count >= 1 << 63:
            raise Refuse("a joblib array wrapper has more elements than numpy can count")
        if attrs.get("numpy_array_alignment_bytes") is not None:
            pad = self.r.byte()
            self.r.skip(pad)
        self.r.skip(count * itemsize)

    def _dtype_layout(self, dtype: Any, depth: int = 0) -> tuple[int, bool]:
        """``(itemsize, hasobject)`` of a symbolic dtype, or refuse when unsure."""
        if depth > 20 or not isinstance(dtype, DType):
            raise Refuse("a joblib array wrapper has a dtype Probity cannot interpret")
        args = dtype.args
        if not isinstance(args, tuple) or not 1 <= len(args) <= 3 or not isinstance(args[0], str):
            raise Refuse("a joblib array wrapper has a dtype Probity cannot interpret")
        typestr = args[0]
        kind, digits = typestr[:1], typestr[1:]
        if kind not in "biufcmMOSUV" or not kind or not digits.isdigit() or len(digits) > 6:
            raise Refuse(f"a joblib array has the unsupported dtype {typestr[:20]!r}")
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
                raise Refuse(f"a joblib array has the unsupported dtype {typestr[:20]!r}") from None
        hasobject = kind == "O"
        state = dtype.state
        if state is not None:
            if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
                raise Refuse("a joblib array has a dtype state Probity cannot interpret")
            _, _, subarray, names, fields, elsize, _, flags = state[:8]
            if subarray is not None or not isinstance(elsize, int) or not isinstance(flags, int):
                raise Refuse("a joblib array has a dtype state Probity cannot interpret")
            # numpy takes a flexible type's size from the state (-1 included) and ignores
            # it for fixed types; accept only states where both readings agree.
            if elsize != size and (kind in "SUV" or elsize != -1):
                raise Refuse("a joblib array's dtype states two different item sizes")
            if fields is not None:
                if kind != "V" or not isinstance(fields, dict) or not isinstance(names, tuple):
                    raise Refuse("a joblib array has a dtype state Probity cannot interpret")
                for spec in fields.values():
                    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
                        raise Refuse("a joblib array has a dtype state Probity cannot interpret")
                    hasobject = self._dtype_layout(spec[0], depth + 1)[1] or hasobject
            elif names is not None:
                raise Refuse("a joblib array has a dtype state Probity cannot interpret")
            # numpy takes hasobject from the state's flags, whatever the kind or fields
            # say; both readings must agree.
            if bool(flags & 1) != hasobject:
                raise Refuse("a joblib array's dtype flags disagree with its fields")
        if size <= 0:
            raise Refuse("a joblib array has a zero-size dtype")
        return size, hasobject

    def _taint(self, *values: Any) -> None:
        """Code run with both a wrapper (class or object) and other objects in reach could
        turn those objects into wrappers (``obj.__class__ = NumpyArrayWrapper``)."""
        if not self.f.wrapper_seen:
            return
        graph = self.f.graph
        if any(graph.mentions(v) for v in values):
            for v in values:
                if isinstance(v, CONTAINERS):
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
        elif isinstance(target, Obj):
            self._taint(target, value)  # calls target.append(value)
            self.f.graph.linked(target, value)

    def op_appends(self) -> None:
        items = self.pop_mark()
        target = self.top()
        self._mutates_global(target, "APPENDS")
        if isinstance(target, list):
            target.extend(items)
            self.f.graph.linked(target, *items)
        elif isinstance(target, Obj):
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
            raise Damaged(f"odd number of items for DICT at byte {self.r.pos - 1}")
        self.stack.append({hashable_key(items[i]): items[i + 1] for i in range(0, len(items), 2)})

    def op_empty_dict(self) -> None:
        self.stack.append({})

    def op_setitem(self) -> None:
        value = self.pop()
        key = self.pop()
        target = self.top()
        self._mutates_global(target, "SETITEM")
        if isinstance(target, dict):
            target[hashable_key(key)] = value
            self.f.graph.linked(target, key, value)
        elif isinstance(target, Obj):
            self._taint(target, key, value)  # calls target.__setitem__
            self.f.graph.linked(target, key, value)

    def op_setitems(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise Damaged(f"odd number of items for SETITEMS at byte {self.r.pos - 1}")
        target = self.top()
        self._mutates_global(target, "SETITEMS")
        if isinstance(target, dict):
            for i in range(0, len(items), 2):
                target[hashable_key(items[i])] = items[i + 1]
            self.f.graph.linked(target, *items)
        elif isinstance(target, Obj):
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
        elif isinstance(target, Obj):
            self._taint(target, *items)
            self.f.graph.linked(target, *items)

    def op_frozenset(self) -> None:
        items = tuple(self.pop_mark())
        self.stack.append(items)

    def _put(self, index: int) -> None:
        if index < 0:
            raise Damaged(f"negative memo index at byte {self.r.pos - 1}")
        self.memo[index] = self.top()

    def _get(self, index: int) -> None:
        if index not in self.memo:
            raise Damaged(f"memo entry {index} read before it was written (byte {self.r.pos - 1})")
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
            raise Damaged(f"bad integer argument at byte {self.r.pos}") from None

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
                raise Damaged(f"bad INT argument at byte {self.r.pos}") from None

    def op_long(self) -> None:
        line = self.r.readline()
        if line.endswith(b"L"):
            line = line[:-1]
        try:
            self.stack.append(int(line, 0))
        except ValueError:
            raise Damaged(f"bad LONG argument at byte {self.r.pos}") from None

    def op_float(self) -> None:
        line = self.r.readline()
        try:
            self.stack.append(float(line))
        except ValueError:
            raise Damaged(f"bad FLOAT argument at byte {self.r.pos}") from None

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
            self.stack.append(OPAQUE)
        else:
            self.stack.append(int.from_bytes(self.r.read(n), "little", signed=True))

    def op_long1(self) -> None:
        self._long_bytes(self.r.byte())

    def op_long4(self) -> None:
        n = struct.unpack("<i", self.r.read(4))[0]
        if n < 0:
            raise Damaged(f"negative LONG4 length at byte {self.r.pos}")
        self._long_bytes(n)

    # -- strings and bytes -----------------------------------------------------------

    def _text(self, n: int, encoding: str) -> None:
        if n < 0:
            raise Damaged(f"negative string length at byte {self.r.pos}")
        if n > _MAX_KEPT_STRING:
            self.r.skip(n)
            self.stack.append(OPAQUE)
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
            self.stack.append(OPAQUE)

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
            raise Damaged(f"STRING argument is not quoted at byte {self.r.pos}")
        try:
            value = codecs.escape_decode(body)[0].decode("ascii")
        except (ValueError, UnicodeDecodeError):
            self.stack.append(OPAQUE)
            return
        self.stack.append(value if len(value) <= _MAX_KEPT_STRING else OPAQUE)

    def op_unicode(self) -> None:
        line = bytes(self.r.readline())
        try:
            value = line.decode("raw-unicode-escape")
        except UnicodeDecodeError:
            raise Damaged(f"bad UNICODE argument at byte {self.r.pos}") from None
        self.stack.append(value if len(value) <= _MAX_KEPT_STRING else OPAQUE)

    def _bytes(self, n: int) -> None:
        if n < 0:
            raise Damaged(f"negative bytes length at byte {self.r.pos}")
        self.r.skip(n)  # payloads are never needed to name an import
        self.stack.append(OPAQUE)

    def op_binbytes(self) -> None:
        self._bytes(struct.unpack("<I", self.r.read(4))[0])

    def op_short_binbytes(self) -> None:
        self._bytes(self.r.byte())

    def op_binbytes8(self) -> None:
        self._bytes(struct.unpack("<Q", self.r.read(8))[0])

    def op_bytearray8(self) -> None:
        self._bytes(struct.unpack("<Q", self.r.read(8))[0])

    def op_next_buffer(self) -> None:
        self.stack.append(OPAQUE)

    def op_readonly_buffer(self) -> None:
        self.top()

    # -- protocol, frames, persistent ids ---------------------------------------------

    def op_proto(self) -> None:
        proto = self.r.byte()
        if proto > 5:
            raise Damaged(f"unsupported pickle protocol {proto}")
        self.proto = proto

    def op_frame(self) -> None:
        size = struct.unpack("<Q", self.r.read(8))[0]
        self.frame_end = self.r.pos + size

    def op_persid(self) -> None:
        self.r.readline()
        self.stack.append(OPAQUE)

    def op_binpersid(self) -> None:
        self.pop()
        self.stack.append(OPAQUE)
