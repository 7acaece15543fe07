"""What Probity checks in a PyTorch file before torch reads it: the part a security reviewer reads.

* **TorchScript** (:func:`torchscript_code_problem`, :func:`unsafe_kinds`): the archive's serialized code
  may not define ``__setstate__`` (code that runs while it loads) or call an operator that reaches outside
  the model (``aten::save``, ``aten::from_file``, Python operators, operators outside ATen's and the
  primitives' namespaces); after loading, every operator of every method is checked again (:func:`graph_kinds`).
* **torch.export archives** (:func:`check_export_archive`): ``torch.export.load`` would unpickle constants
  and sample inputs, evaluate shape expressions and run guard code; an archive is accepted only when every
  such part is plain data, every shape expression a plain arithmetic one and every operator ATen's.
* **safetensors** (:func:`read_safetensors`): the header's dtypes, shapes and offsets are checked against
  the file before a tensor is read.
* every zip (:func:`zip_members`) is checked for its sizes and entries first (:mod:`engine.files`).

torch is imported inside functions only; nothing here loads a model.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelError

__all__ = [
    "zip_members",
    "member",
    "read_safetensors",
    "safetensors_header",
    "torchscript_code_problem",
    "graph_kinds",
    "unsafe_kinds",
    "check_export_archive",
    "listing",
    "first_line",
]

_MAX_LISTED = 12


def listing(items: Sequence[Any]) -> str:
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__).rstrip(".")


def zip_members(data: bytes, path: Path) -> tuple[zipfile.ZipFile, tuple[str, ...]]:
    from engine.files import ArchiveProblem, check_zip_archive
    from engine.limits import current_limits

    try:
        check_zip_archive(data, name=path.name, limits=current_limits())
        archive = zipfile.ZipFile(io.BytesIO(data))
    except ArchiveProblem as exc:
        if exc.damaged:
            raise ModelError(f"{path.name} is not a valid PyTorch file ({exc.reason}).", path=path) from None
        raise ModelError(exc.message, path=path) from None
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{path.name} is not a valid PyTorch file ({first_line(exc)}).", path=path) from None
    return archive, tuple(archive.namelist())


def member(members: Sequence[str], suffix: str) -> str | None:
    """The member named ``<folder>/<suffix>`` (torch puts everything under one folder)."""
    for name in members:
        if name.count("/") == suffix.count("/") + 1 and name.endswith("/" + suffix):
            return name
    return None


# Operator namespaces whose operators compute on tensors only.
_SAFE_NAMESPACES = frozenset({"aten", "prim", "prims", "quantized", "_quantized"})
# ... except these, which reach files, the console of another process, or Python.
_FORBIDDEN_OPS = frozenset(
    {
        "aten::save",
        "aten::from_file",
        "prim::PythonOp",
        "prim::IgnoredPythonOp",
        "prim::CallFunction",  # left after inlining: a call that could not be checked
    }
)
# Text that names those operators (or load-time code) in TorchScript's serialized code.
_FORBIDDEN_CODE = re.compile(
    r"__setstate__|\btorch\.save\b|\btorch\.from_file\b|\bops\.aten\.(?:save|from_file)\b|\bops\.(?!aten\b|prim\b|prims\b|quantized\b|_quantized\b)\w+"
)


# ---------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {
    "F64": ("<f8", 8),
    "F32": ("<f4", 4),
    "F16": ("<f2", 2),
    "I64": ("<i8", 8),
    "I32": ("<i4", 4),
    "I16": ("<i2", 2),
    "I8": ("i1", 1),
    "U8": ("u1", 1),
    "BOOL": ("?", 1),
}
_MAX_HEADER = 100 * 1024 * 1024


def safetensors_header(
    data: bytes, path: Path
) -> tuple[tuple[tuple[str, str, tuple[int, ...]], ...], list[tuple[int, int]], int]:
    """``(tensors, spans, data_start)`` from a safetensors header, every offset checked."""

    def bad(why: str) -> ModelError:
        return ModelError(f"{path.name} is not a valid safetensors file ({why}).", path=path)

    (n,) = struct.unpack("<Q", data[:8])
    if n > min(_MAX_HEADER, len(data) - 8):
        raise bad("its header is longer than the file")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("its header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    start, size = 8 + n, len(data) - 8 - n
    tensors, spans = [], []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"the entry for {name!r} is malformed")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _SAFETENSORS_DTYPES:
            raise bad(f"{name!r} has the dtype {dtype!r}, which Probity does not read")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise bad(f"{name!r} has a malformed shape")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= size
        ):
            raise bad(f"{name!r} has data offsets outside the file")
        if offsets[1] - offsets[0] != math.prod(shape) * _SAFETENSORS_DTYPES[dtype][1]:
            raise bad(f"the data of {name!r} does not match its shape and dtype")
        tensors.append((name, dtype, tuple(shape)))
        spans.append((offsets[0], offsets[1]))
    return tuple(tensors), spans, start


def read_safetensors(data: bytes, path: Path) -> dict[str, Any]:
    """The tensors of a safetensors file, as torch tensors (copies; the file's bytes are not kept).

    The format: an 8-byte little-endian header length, a JSON header mapping each name to
    ``{"dtype", "shape", "data_offsets"}`` (offsets relative to the data after the header),
    then the raw little-endian data.
    """
    import torch

    tensors, spans, start = safetensors_header(data, path)
    out: dict[str, Any] = {}
    for (name, dtype, shape), (a, b) in zip(tensors, spans, strict=True):
        array = np.frombuffer(
            data, dtype=np.dtype(_SAFETENSORS_DTYPES[dtype][0]), count=math.prod(shape), offset=start + a
        )
        out[name] = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True).reshape(shape))
        del b
    return out


# ---------------------------------------------------------------------------
# TorchScript
# ---------------------------------------------------------------------------


def torchscript_code_problem(data: bytes, members: Sequence[str], path: Path) -> str | None:
    """Why TorchScript code must not be loaded (a clause), found in its text before loading; or ``None``."""
    archive, _ = zip_members(data, path)
    with archive:
        for name in members:
            if "/code/" in name and name.endswith(".py"):
                text = archive.read(name).decode("utf-8", errors="replace")
                found = _FORBIDDEN_CODE.search(text)
                if found is not None:
                    what = found.group(0)
                    if what == "__setstate__":
                        return f"its code defines __setstate__ ({name}), code that would run while it loads"
                    return f"its code calls {what} ({name}), which reaches outside the model"
    return None


def graph_kinds(module: Any) -> set[str]:
    """Every operator kind in every method of ``module`` and its submodules, calls inlined."""
    import torch

    kinds: set[str] = set()
    for _, sub in module.named_modules():
        c = getattr(sub, "_c", None)
        if c is None:
            continue
        for method in c._method_names():
            graph = c._get_method(method).graph.copy()
            torch._C._jit_pass_inline(graph)
            todo = [graph.block()] if hasattr(graph, "block") else []
            nodes = list(graph.nodes())
            while nodes or todo:
                if todo:
                    nodes.extend(todo.pop().nodes())
                    continue
                node = nodes.pop()
                kinds.add(node.kind())
                todo.extend(node.blocks())
    return kinds


def unsafe_kinds(kinds: set[str]) -> list[str]:
    return sorted(k for k in kinds if k in _FORBIDDEN_OPS or k.split("::")[0] not in _SAFE_NAMESPACES)


# ---------------------------------------------------------------------------
# torch.export
# ---------------------------------------------------------------------------

_SAFE_OPERATOR_TARGETS = frozenset(
    f"_operator.{n}"
    for n in "getitem add sub mul truediv floordiv mod neg pow eq ne lt le gt ge and_ or_ not_ abs".split()
)
_ATEN_TARGET = re.compile(r"^torch\.ops\.aten\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$")
# sympy's srepr of shape symbols and expressions: Symbol('s0', positive=True, integer=True), Add(...), ...
_EXPR_TOKEN = re.compile(r"\s*(?:('[a-z][a-z0-9_]*')|([A-Za-z_][A-Za-z0-9_]*)|(\d+(?:\.\d+)?)|([-+*/%(),=]|\*\*|//))")
_EXPR_NAMES = frozenset(
    "Symbol Integer Float Rational Add Mul Pow Max Min Abs Eq Ne Lt Le Gt Ge StrictLessThan StrictGreaterThan "
    "LessThan GreaterThan Equality Unequality And Or Not True False oo zoo nan Mod FloorDiv ModularIndexing "
    "CleanDiv CeilDiv PythonMod Where CeilToInt FloorToInt TruncToInt TruncToFloat RoundToInt ToFloat "
    "IntTrueDiv FloatTrueDiv PowByNatural FloatPow Identity positive negative integer nonnegative nonpositive "
    "real finite zero nonzero even odd".split()
)
_GUARD = re.compile(r"^L\['[A-Za-z_][A-Za-z0-9_]*'\]\.size\(\)\[\d+\] (?:==|!=|<=|>=|<|>) -?\d+$")
_EXPORT_FILES = re.compile(
    r"^(?:archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|"
    r"models/[A-Za-z0-9_]+\.json|data/weights/[A-Za-z0-9_.]+|data/constants/[A-Za-z0-9_.]+|"
    r"data/sample_inputs/[A-Za-z0-9_]+\.pt|extra/[^/]+)$"
)


def _expression_ok(text: str) -> bool:
    pos = 0
    while pos < len(text):
        m = _EXPR_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            return text[pos:].strip() == ""
        if m.group(2) is not None and m.group(2) not in _EXPR_NAMES and not re.fullmatch(r"[a-z]+\d+", m.group(2)):
            return False
        pos = m.end()
    return True


def check_export_archive(data: bytes, members: Sequence[str], path: Path) -> str | None:
    """Why a ``.pt2`` archive must not reach ``torch.export.load`` (a clause), or ``None``.

    Checks what ``torch.export.load`` would unpickle, evaluate or resolve (see the module
    docstring); only the current archive format (``archive_format`` = ``pt2``) is read.
    """
    import torch

    from engine.files import JSONNestingError, loads_json
    from engine.limits import current_limits

    prefix = members[0].split("/", 1)[0] + "/" if members else ""
    archive, _ = zip_members(data, path)
    with archive:
        fmt = member(members, "archive_format")
        if fmt is None or archive.read(fmt).strip() != b"pt2":
            return "it is in an older torch.export format, whose tensors are pickled"
        strange = [m for m in members if not m.startswith(prefix) or not _EXPORT_FILES.match(m[len(prefix) :])]
        if strange:
            return f"it holds {listing(strange)}, which a plain exported program does not"
        models = [m[len(prefix) :] for m in members if m[len(prefix) :].startswith("models/")]
        if not models:
            return "it holds no exported program"
        depth = current_limits().max_json_depth

        def read(name: str) -> Any:
            try:
                return loads_json(archive.read(prefix + name), max_depth=depth)
            except KeyError:
                raise ModelError(
                    f"{path.name} is not a complete torch.export archive (it lacks {name}).", path=path
                ) from None
            except JSONNestingError as exc:
                raise ModelError(exc.sentence(f"{path.name}'s {name}"), path=path) from None
            except (ValueError, UnicodeDecodeError) as exc:
                raise ModelError(f"{path.name}'s {name} is not JSON ({first_line(exc)}).", path=path) from None

        for model_file in models:
            model = model_file[len("models/") : -len(".json")]
            for kind in ("weights", "constants"):
                if f"{prefix}data/{kind}/{model}.pt" in members:
                    return f"its {kind} are in the legacy pickled form"
                config = read(f"data/{kind}/model_{kind}_config.json")
                entries = config.get("config") if isinstance(config, dict) else None
                if not isinstance(entries, dict):
                    return f"its {kind} configuration is malformed"
                for fqn, meta in entries.items():
                    if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
                        return f"the {kind[:-1]} {fqn} is stored as a pickle"
                    if kind == "constants" and not str(meta.get("path_name", "")).startswith("tensor_"):
                        return f"the constant {fqn} is a pickled object, not a tensor"
            sample = prefix + f"data/sample_inputs/{model}.pt"
            if sample in members:
                try:  # torch.export.load retries with weights_only=False when this fails
                    torch.load(io.BytesIO(archive.read(sample)), weights_only=True, map_location="cpu")
                except Exception as exc:
                    return f"its sample inputs are not plain tensors ({first_line(exc)})"
            doc = read(model_file)
            if not isinstance(doc, dict):
                return "its program is malformed"
            for guard in doc.get("guards_code") or []:
                if not isinstance(guard, str) or not _GUARD.match(guard):
                    return f"its guard code {str(guard)[:60]!r} is not a plain shape check"
            todo: list[Any] = [doc]
            while todo:
                node = todo.pop()
                if isinstance(node, dict):
                    for key, value in node.items():
                        if key == "target" and isinstance(value, str) and "inputs" in node:
                            op = _ATEN_TARGET.match(value)
                            if (op is None or op.group(1) in ("save", "from_file")) and (
                                value not in _SAFE_OPERATOR_TARGETS
                            ):
                                return f"its graph calls {value}, which is not an ATen tensor operator"
                        elif key == "expr_str" and isinstance(value, str) and not _expression_ok(value):
                            return f"its shape expression {value[:60]!r} is not a plain symbolic expression"
                        elif isinstance(value, (dict, list)):
                            todo.append(value)
                elif isinstance(node, list):
                    todo.extend(v for v in node if isinstance(v, (dict, list)))
    return None
