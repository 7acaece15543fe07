"""Reading PyTorch model files safely: TorchScript, ``torch.export`` archives, weights, pickled modules.

What a file is, is decided by its content, not its suffix (``.pt`` is used for all of them):

* **TorchScript** (``torch.jit.save``; a zip with ``code/`` and ``constants.pkl``): the
  architecture as TorchScript code plus its tensors.  ``torch.jit.load`` reads it in C++:
  its pickles (``data.pkl``, ``constants.pkl``) go through TorchScript's own unpickler,
  which resolves only tensors, a fixed set of torch helpers and the TorchScript classes
  compiled from ``code/``; no Python global is imported and no Python code runs.  The
  code itself is a restricted language, but it may call any registered operator, and a
  few of those touch the outside world (``aten::save`` writes a file, ``aten::from_file``
  reads one, the ``c10d`` operators talk to other processes).  So Probity refuses a file
  whose code defines ``__setstate__`` (the only code that runs while loading) or names such
  an operator, and after loading checks every operator of every method's inlined graph
  against the namespaces that compute on tensors only (the checks live in
  :mod:`engine.models.torch_checks`).  What passes loads without a trust decision.
* **torch.export archives** (``.pt2``): a JSON graph of ATen operators plus raw tensor
  data.  ``torch.export.load`` is not safe on an untrusted archive by itself: it unpickles
  tensors stored "with pickle" with ``weights_only=False``, unpickles custom and opaque
  constants, retries the sample inputs with ``weights_only=False`` when the safe load
  fails, evaluates shape expressions with ``sympy.sympify`` (``eval``), executes the
  archive's ``guards_code`` and resolves each node's target as any attribute path under
  ``torch``, ``math`` or ``operator``.  Probity reads the archive first and refuses every
  one of those paths (:func:`check_export_archive`); what passes is then loaded from the
  very same bytes, without a trust decision.
* **Weights only**: a ``torch.save`` of a state dict (read with
  ``torch.load(weights_only=True)``, never with ``weights_only=False``) or a
  ``.safetensors`` file (read by :func:`read_safetensors`, a small reader of that format's
  JSON header and raw little-endian data).  They hold no architecture, so they need a
  TorchScript or ``.pt2`` file of the same network (``"architecture"`` in the sidecar).
* **A pickled module** (``torch.save(model)``): a pickle inside a zip (``data.pkl``).  It
  follows the pickle flow of :mod:`engine.models.loading`: scanned, code-running imports
  refused always, per-file trust by SHA-256, unreviewed classes acknowledged; then
  ``torch.load`` unpickles it with Probity's restricted unpickler, which admits exactly
  the globals the scan rated.

Every check of what a file may do before torch reads it is in :mod:`engine.models.torch_checks`;
this module decides what a file is, maps it to the data and loads it.

Input mapping.  The network takes a numeric matrix; which data columns feed it, in
which order, comes from a sidecar JSON file next to the model (``model.pt`` +
``model.features.json``: a list of column names, or an object with ``features``,
``task``, ``classes``, ``output`` and ``architecture``) or from the caller
(``--features``).  The output is ``"logits"``, ``"probabilities"`` (softmax rows, or one
sigmoid column) or ``"values"``; declared by the sidecar, else detected on fixed probe
rows.  Probabilities are turned into logits (``log p``, or ``log p - log(1 - p)``) so the
gradient methods differentiate the same function.  How each choice was made is recorded
in provenance (``model_trust["torch"]``).

torch is imported inside functions only.
"""

from __future__ import annotations

import functools
import io
import json
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ModelError, ModelInputError, UnsafeModelError, UntrustedModelError
from engine.hashing import sha256_bytes
from engine.models.base import Task, TrustDecision
from engine.models.pickle_scan import PickleScan, scan_pickle_bytes
from engine.models.torch_checks import (
    check_export_archive,
    first_line,
    graph_kinds,
    listing,
    member,
    read_safetensors,
    safetensors_header,
    torchscript_code_problem,
    unsafe_kinds,
    zip_members,
)

if TYPE_CHECKING:
    from engine.models.torch_adapter import TorchModel

__all__ = [
    "TORCH_SUFFIXES",
    "TORCH_KINDS",
    "OUTPUT_KINDS",
    "SIDECAR_SUFFIX",
    "TorchFile",
    "InputMapping",
    "TorchLoadDecision",
    "TorchDeclarationNeeded",
    "sidecar_of",
    "read_sidecar",
    "parse_features_option",
    "read_torch_file",
    "inspect_torch",
    "load_torch",
    "read_safetensors",
    "check_export_archive",
]

#: Suffixes of PyTorch model files; the content decides which kind a file is.
TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".pt2", ".safetensors")
#: What a torch file can be (also the loaded model's ``format``).
TORCH_KINDS = ("torchscript", "torch-export", "torch-state-dict", "safetensors", "torch-pickle")
#: What the network's output is.
OUTPUT_KINDS = ("logits", "probabilities", "values")
#: The sidecar's name ends so: ``model.pt`` -> ``model.features.json``.
SIDECAR_SUFFIX = ".features.json"
_SIDECAR_KEYS = ("features", "task", "classes", "output", "architecture")


class TorchDeclarationNeeded(ModelError):
    """A network whose sidecar would have to say more: which data columns it takes (``missing ==
    "features"``), or what its several outputs are (``missing == "task"``).

    The desktop app asks for them in the model pane and writes the sidecar; the command
    line takes ``--features`` or the sidecar.
    """

    def __init__(self, message: str, *, path: Path, missing: str) -> None:
        super().__init__(message, path=path)
        self.missing = missing


_KIND_TEXT = {
    "torchscript": "a TorchScript program (architecture and weights)",
    "torch-export": "a torch.export archive (an ATen graph and its weights)",
    "torch-state-dict": "a state dict (weights only, no architecture)",
    "safetensors": "a safetensors file (weights only, no architecture)",
    "torch-pickle": "a pickled torch object (torch.save of a whole module)",
}

# Globals a torch.save of plain tensors names; anything else makes it a pickled object.
_WEIGHTS_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "builtins.set",
        "torch.Size",
        "torch.device",
    }
)
_STORAGE_GLOBAL = re.compile(r"^torch\.\w*Storage$")

_PROBE_ROWS = 16


# ---------------------------------------------------------------------------
# What the file is
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchFile:
    """A torch file's kind, found from its bytes without running anything.

    Attributes
    ----------
    kind: one of :data:`TORCH_KINDS`.
    members: the zip's member names (empty for safetensors).
    scan: the pickle scan of ``data.pkl`` (``torch.save`` files only).
    tensors: ``(name, dtype, shape)`` of every tensor (safetensors only).
    """

    kind: str
    members: tuple[str, ...] = ()
    scan: PickleScan | None = None
    tensors: tuple[tuple[str, str, tuple[int, ...]], ...] = ()


def read_torch_file(data: bytes, path: Path) -> TorchFile:
    """Which kind of torch file ``data`` is (see the module docstring).

    Raises
    ------
    ModelError
        Not a torch file, a damaged or oversized zip, or torch's legacy (pre-1.6) format.
    """
    if not data.startswith(b"PK"):
        if len(data) >= 10 and data[8:9] == b"{":
            return TorchFile("safetensors", tensors=safetensors_header(data, path)[0])
        if data[:1] == b"\x80":
            raise ModelError(
                f"{path.name} is in torch's legacy (pre-1.6) file format, which Probity does not read; re-save "
                "it with a current torch (TorchScript, torch.export or a state dict).",
                path=path,
            )
        raise ModelError(
            f"{path.name} is not a PyTorch file Probity can read (TorchScript, torch.export .pt2, a torch.save "
            "zip or safetensors).",
            path=path,
        )
    archive, members = zip_members(data, path)
    with archive:
        if member(members, "constants.pkl") or any("/code/" in m for m in members):
            return TorchFile("torchscript", members)
        fmt = member(members, "archive_format")
        if fmt is not None or any(m.endswith("serialized_exported_program.json") for m in members):
            return TorchFile("torch-export", members)
        pkl = member(members, "data.pkl")
        if pkl is None:
            raise ModelError(
                f"{path.name} is a zip archive but not a PyTorch file (no TorchScript code, torch.export graph "
                "or data.pkl).",
                path=path,
            )
        scan = scan_pickle_bytes(archive.read(pkl), name=path.name, path=path)
    plain = all(i in _WEIGHTS_GLOBALS or _STORAGE_GLOBAL.match(i) for i in scan.imports)
    return TorchFile("torch-state-dict" if plain and not scan.refused else "torch-pickle", members, scan)


# ---------------------------------------------------------------------------
# Sidecar: which columns feed the network, and what it outputs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InputMapping:
    """How a network's inputs and outputs map to the data, as declared.

    Attributes
    ----------
    features: data columns, in the order of the network's input columns.
    task, classes, output, architecture: as the sidecar declares them (``None``: not declared).
    source: where ``features`` came from (the sidecar's name, or ``"--features"``).
    sidecar: the sidecar file, when there is one; ``sidecar_sha256`` its SHA-256.
    """

    features: tuple[str, ...] | None = None
    task: str | None = None
    classes: tuple[Any, ...] | None = None
    output: str | None = None
    architecture: Path | None = None
    source: str | None = None
    sidecar: Path | None = None
    sidecar_sha256: str | None = None


def sidecar_of(path: Path) -> Path:
    """``model.pt`` -> ``model.features.json``, in the same folder."""
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _string_list(value: Any, what: str, where: str, path: Path | None) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ModelError(f"{what} in {where} must be a non-empty list of column names.", path=path)
    if len(set(value)) != len(value):
        twice = sorted({v for v in value if value.count(v) > 1})
        raise ModelError(f"{what} in {where} names {listing(twice)} more than once.", path=path)
    return tuple(value)


def read_sidecar(model_path: Path) -> InputMapping:
    """The sidecar next to ``model_path``, or an empty mapping when there is none.

    Raises
    ------
    ModelError
        The sidecar is not valid JSON, or declares something unknown or malformed.
    """
    from engine.files import JSONNestingError, loads_json
    from engine.limits import current_limits

    side = sidecar_of(model_path)
    if not side.is_file():
        return InputMapping()
    try:
        raw = side.read_bytes()
        doc = loads_json(raw, max_depth=current_limits().max_json_depth)
    except JSONNestingError as exc:
        raise ModelError(exc.sentence(f"The sidecar {side.name}"), path=side) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"The sidecar {side.name} is not readable JSON ({first_line(exc)}).", path=side) from None
    if isinstance(doc, list):
        doc = {"features": doc}
    if not isinstance(doc, dict):
        raise ModelError(
            f"The sidecar {side.name} must hold a list of column names or an object with {', '.join(_SIDECAR_KEYS)}.",
            path=side,
        )
    unknown = sorted(set(doc) - set(_SIDECAR_KEYS))
    if unknown:
        raise ModelError(
            f"The sidecar {side.name} has unknown key(s) {listing(unknown)}; it may hold {', '.join(_SIDECAR_KEYS)}.",
            path=side,
        )
    features = _string_list(doc["features"], "features", side.name, side) if "features" in doc else None
    task = doc.get("task")
    if task is not None and task not in (Task.CLASSIFICATION.value, Task.REGRESSION.value):
        raise ModelError(f"task in {side.name} must be 'classification' or 'regression', not {task!r}.", path=side)
    classes = doc.get("classes")
    if classes is not None and (
        not isinstance(classes, list)
        or len(classes) < 2
        or not all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise ModelError(
            f"classes in {side.name} must be a list of at least two distinct labels (strings or whole numbers).",
            path=side,
        )
    output = doc.get("output")
    if output is not None and output not in OUTPUT_KINDS:
        raise ModelError(f"output in {side.name} must be one of {', '.join(OUTPUT_KINDS)}, not {output!r}.", path=side)
    architecture = doc.get("architecture")
    if architecture is not None and (not isinstance(architecture, str) or not architecture):
        raise ModelError(f"architecture in {side.name} must be a file name.", path=side)
    return InputMapping(
        features=features,
        task=task,
        classes=None if classes is None else tuple(classes),
        output=output,
        architecture=None if architecture is None else side.parent / architecture,
        source=side.name if features is not None else None,
        sidecar=side,
        sidecar_sha256=sha256_bytes(raw),
    )


def parse_features_option(values: Sequence[str]) -> tuple[str, ...]:
    """The columns ``--features`` names: column names, comma lists, or one JSON file (a list, or a sidecar).

    Raises
    ------
    ModelError
        The JSON file cannot be read or holds no list of names.
    """
    if len(values) == 1 and values[0].lower().endswith(".json") and Path(values[0]).is_file():
        side = Path(values[0])
        try:
            doc = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"The features file {side.name} is not readable JSON ({first_line(exc)}).", path=side
            ) from None
        if isinstance(doc, dict):
            doc = doc.get("features")
        return _string_list(doc, "The list of features", side.name, side)
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(out)


def _merge_features(mapping: InputMapping, given: Sequence[str] | None, path: Path) -> InputMapping:
    if given is None:
        return mapping
    given = tuple(str(c) for c in given)
    if mapping.features is not None and mapping.features != given:
        raise ModelInputError(
            f"The sidecar {mapping.source} maps {len(mapping.features)} columns to {path.name} "
            f"({listing(mapping.features)}), but the features given are {len(given)} "
            f"({listing(given)}); make them agree.",
            path=path,
        )
    return InputMapping(
        features=given,
        task=mapping.task,
        classes=mapping.classes,
        output=mapping.output,
        architecture=mapping.architecture,
        source=mapping.source or "--features",
        sidecar=mapping.sidecar,
        sidecar_sha256=mapping.sidecar_sha256,
    )


# ---------------------------------------------------------------------------
# TorchScript
# ---------------------------------------------------------------------------


def _load_torchscript(data: bytes, tf: TorchFile, path: Path, sha256: str) -> Any:
    import torch

    problem = torchscript_code_problem(data, tf.members, path)
    if problem is not None:
        raise _refused(path, sha256, problem)
    try:
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as exc:  # torch reports damage as RuntimeError and others
        raise ModelError(
            f"{path.name} is a damaged or unsupported TorchScript file: {first_line(exc)}.", path=path
        ) from exc
    bad = unsafe_kinds(graph_kinds(module))
    if bad:
        raise _refused(path, sha256, f"its code uses {listing(bad)}, which can reach outside the model")
    return module


def _refused(path: Path, sha256: str, why: str) -> UnsafeModelError:
    return UnsafeModelError(
        f"{path.name} is refused: {why}; Probity never loads such a file, even when trusted.",
        path=path,
        sha256=sha256,
        imports=(),
        dangerous=(),
    )


# ---------------------------------------------------------------------------
# torch.export
# ---------------------------------------------------------------------------


def _load_export(data: bytes, tf: TorchFile, path: Path, sha256: str) -> tuple[Any, int | None]:
    """The exported program's module and its input width (``None`` if not fixed)."""
    import torch

    problem = check_export_archive(data, tf.members, path)
    if problem is not None:
        raise _refused(path, sha256, problem)
    try:
        ep = torch.export.load(io.BytesIO(data))
    except Exception as exc:  # torch reports damage as many exception types
        raise ModelError(
            f"{path.name} is a damaged or unsupported torch.export archive: {first_line(exc)}.", path=path
        ) from exc
    calls = [n.target for n in ep.graph.nodes if n.op == "call_function"]
    bad = sorted(
        {
            str(t)
            for t in calls
            if not (
                isinstance(t, torch._ops.OpOverload)
                and t.namespace == "aten"
                and t._opname not in ("save", "from_file")
            )
            and getattr(t, "__module__", None) != "_operator"
        }
    )
    if bad:
        raise _refused(path, sha256, f"its graph calls {listing(bad)}, which are not ATen tensor operators")
    user = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
    width = None
    if len(user) != 1:
        raise ModelError(f"{path.name} takes {len(user)} inputs; Probity feeds a network one matrix.", path=path)
    shape = getattr(user[0].meta.get("val"), "shape", None)
    if shape is not None and len(shape) == 2:
        if isinstance(shape[0], int):
            raise ModelError(
                f"{path.name} was exported for batches of exactly {shape[0]} rows; export it with a dynamic batch "
                "dimension (dynamic_shapes with torch.export.Dim) so it takes any number of rows.",
                path=path,
            )
        width = shape[1] if isinstance(shape[1], int) else None
    return _exported_network()(ep.module(check_guards=False)), width


@functools.cache
def _exported_network() -> type:
    import torch

    class ExportedNetwork(torch.nn.Module):
        """An exported program's module; it has no train/eval modes (they were fixed when it was exported),
        so switching modes stops here instead of reaching it."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def train(self, mode: bool = True) -> Any:
            self.training = mode
            return self

        def forward(self, x: Any) -> Any:
            return self.inner(x)

    return ExportedNetwork


# ---------------------------------------------------------------------------
# Weights and pickled modules
# ---------------------------------------------------------------------------


def _load_state_dict(data: bytes, path: Path) -> dict[str, Any]:
    import torch

    try:
        # Never weights_only=False: a file this refuses is a pickled object, loaded (if trusted) by the pickle flow.
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise ModelError(
            f"{path.name} is not a plain weights file ({first_line(exc)}); Probity reads torch.save files with "
            "weights_only=True only.",
            path=path,
        ) from exc
    if isinstance(state, Mapping):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelError(f"{path.name} is not a state dict (a mapping of parameter names to tensors).", path=path)
    return dict(state)


def _pickle_module(allow_unreviewed: bool) -> types.ModuleType:
    """A stand-in for the ``pickle`` module whose ``Unpickler`` is Probity's restricted one."""
    import pickle

    from engine.models.loading import RestrictedUnpickler

    class _Unpickler(RestrictedUnpickler):
        def __init__(self, file: Any, **_kwargs: Any) -> None:
            super().__init__(file, allow_unreviewed=allow_unreviewed)

    module = types.ModuleType("probity_restricted_pickle")
    module.Unpickler = _Unpickler  # type: ignore[attr-defined]
    module.load = pickle.load  # type: ignore[attr-defined]  # only torch's legacy format calls it; refused before
    module.__dict__["__name__"] = "pickle"
    return module


def _load_pickled_module(
    data: bytes,
    tf: TorchFile,
    *,
    path: Path,
    sha256: str,
    trusted: frozenset[str],
    granted_by: str,
    allow_unreviewed: bool,
) -> tuple[Any, TrustDecision]:
    import torch

    from engine.models import pickle_policy
    from engine.models.loading import _unreviewed_error
    from engine.models.pickle_policy import UNREVIEWED

    scan = tf.scan
    assert scan is not None
    if scan.refused:
        reason = (
            f"its data.pkl imports {listing(scan.dangerous)}, which can run commands or code"
            if scan.dangerous
            else "; ".join(scan.notes[:1]) or "part of its data.pkl cannot be checked"
        )
        raise UnsafeModelError(
            f"{path.name} is refused: {reason}; Probity never loads such a file, even when trusted.",
            path=path,
            sha256=sha256,
            imports=scan.imports,
            dangerous=scan.dangerous,
        )
    if sha256 not in trusted:
        also = " --allow-unreviewed" if scan.unreviewed else ""
        raise UntrustedModelError(
            f"{path.name} is a pickled torch module that imports {listing(scan.imports)}; unpickling runs their "
            f"code, so load it only if you trust its source, with --trust-model {sha256}{also}.",
            path=path,
            sha256=sha256,
            imports=scan.imports,
        )
    if scan.unreviewed and not allow_unreviewed:
        raise _unreviewed_error(path, sha256, scan.imports, scan.unreviewed)
    try:
        # weights_only=False explicitly, after the scan and the user's trust: the restricted
        # unpickler admits exactly the globals the scan rated.
        obj = torch.load(
            io.BytesIO(data), weights_only=False, map_location="cpu", pickle_module=_pickle_module(allow_unreviewed)
        )
    except pickle_policy.PolicyRefusal as exc:
        if exc.verdict.status == UNREVIEWED:
            raise _unreviewed_error(path, sha256, scan.imports, (exc.verdict.name,)) from None
        raise _refused(path, sha256, f"it imports {exc.verdict.name}, which {exc.verdict.reason}") from None
    except ModuleNotFoundError as exc:
        raise ModelError(
            f"{path.name} needs the Python module {exc.name}, which is not installed here.", path=path
        ) from exc
    except Exception as exc:  # any failure of third-party __setstate__ code
        raise ModelError(f"{path.name} could not be unpickled: {first_line(exc)}.", path=path) from exc
    if not isinstance(obj, torch.nn.Module):
        raise ModelError(f"{path.name} holds a {type(obj).__name__}, not a torch.nn.Module.", path=path)
    trust = TrustDecision(
        required=True,
        granted_by=granted_by,
        sha256=sha256,
        imports=scan.imports,
        allow_unreviewed=bool(scan.unreviewed) and allow_unreviewed,
        unreviewed=scan.unreviewed,
    )
    return obj, trust


def _load_architecture(mapping: InputMapping, weights: Path) -> tuple[Any, int | None, Path, str]:
    """The module of the architecture file the mapping names, its input width, path and SHA-256."""
    arch = mapping.architecture
    if arch is None:
        raise ModelError("unreachable")  # checked by the caller
    try:
        data = arch.read_bytes()
    except OSError as exc:
        raise ModelError(
            f"The architecture file {arch.name} named for {weights.name} cannot be read ({exc.strerror or exc}).",
            path=arch,
        ) from None
    sha = sha256_bytes(data)
    tf = read_torch_file(data, arch)
    if tf.kind == "torchscript":
        return _load_torchscript(data, tf, arch, sha), None, arch, sha
    if tf.kind == "torch-export":
        module, width = _load_export(data, tf, arch, sha)
        return module, width, arch, sha
    raise ModelError(
        f"The architecture file {arch.name} named for {weights.name} is {_KIND_TEXT[tf.kind]}; it must be a "
        "TorchScript or torch.export (.pt2) file of the same network.",
        path=arch,
    )


def _apply_weights(module: Any, state: Mapping[str, Any], weights: Path, arch: Path) -> None:
    import torch

    if isinstance(module, _exported_network()):
        module = module.inner  # type: ignore[attr-defined]  # parameters keep the exported names
    own = dict(module.state_dict())
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"lacks {listing(missing)}")
        if unexpected:
            parts.append(f"has {listing(unexpected)} that {arch.name} does not")
        raise ModelError(
            f"{weights.name} does not fit the network in {arch.name}: it {' and '.join(parts)}.", path=weights
        )
    wrong = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if wrong:
        k = wrong[0]
        raise ModelError(
            f"{weights.name} does not fit the network in {arch.name}: {k} has shape {tuple(state[k].shape)} "
            f"there, {tuple(own[k].shape)} in the network.",
            path=weights,
        )
    with torch.no_grad():
        for k, tensor in own.items():
            tensor.copy_(state[k].to(dtype=tensor.dtype))


# ---------------------------------------------------------------------------
# Output kind and the module TorchModel wraps
# ---------------------------------------------------------------------------


def _probe_rows(width: int, dtype: Any) -> Any:
    """Fixed rows spanning small and large values (no random draw: the same rows every time)."""
    import torch

    i = torch.arange(_PROBE_ROWS, dtype=torch.float64).reshape(-1, 1)
    j = torch.arange(width, dtype=torch.float64).reshape(1, -1)
    scale = torch.tensor([0.0, 1.0, 3.0, 10.0], dtype=torch.float64).repeat(_PROBE_ROWS // 4).reshape(-1, 1)
    return (scale * torch.sin(1.0 + 0.7 * i + 1.3 * j)).to(dtype)


def _expected_width(module: Any) -> int | None:
    for tensor in module.parameters():
        if tensor.ndim == 2:
            return int(tensor.shape[1])
    return None


def _run_probe(module: Any, features: tuple[str, ...], source: str, path: Path, known_width: int | None) -> Any:
    import torch

    dtype = next((t.dtype for t in module.parameters() if t.is_floating_point()), torch.float32)
    width = len(features)
    expected = known_width if known_width is not None else _expected_width(module)
    if known_width is not None and known_width != width:
        raise ModelInputError(
            f"{path.name} takes {known_width} input columns, but {source} maps {width} to it ({listing(features)}).",
            path=path,
        )
    try:
        with torch.inference_mode():
            out = module(_probe_rows(width, dtype))
    except Exception as exc:  # shape errors surface as RuntimeError, AssertionError, ...
        if expected is not None and expected != width:
            raise ModelInputError(
                f"{path.name} takes {expected} input columns, but {source} maps {width} to it ({listing(features)}).",
                path=path,
            ) from None
        raise ModelInputError(
            f"{path.name} fails on the {width} input columns {source} maps to it ({listing(features)}): "
            f"{first_line(exc)}.",
            path=path,
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim not in (1, 2) or out.shape[0] != _PROBE_ROWS:
        raise ModelError(
            f"{path.name} returns {type(out).__name__ if not isinstance(out, torch.Tensor) else tuple(out.shape)} "
            "for a batch of rows; Probity needs one row of outputs per input row.",
            path=path,
        )
    return out.detach().to(torch.float64).reshape(_PROBE_ROWS, -1)


def _decide_output(out: Any, mapping: InputMapping, path: Path) -> tuple[Task, tuple[Any, ...] | None, str, str]:
    """``(task, classes, output, how)`` from the declarations, else from the probe outputs."""
    k = int(out.shape[1])
    declared = mapping.sidecar.name if mapping.sidecar is not None else "the sidecar"
    task_name = mapping.task
    if task_name is None and mapping.classes is not None:
        task_name = Task.CLASSIFICATION.value
    if task_name is None and mapping.output in ("logits", "probabilities"):
        task_name = Task.CLASSIFICATION.value
    if task_name is None:
        if k != 1:
            raise TorchDeclarationNeeded(
                f"{path.name} returns {k} outputs per row and nothing says what they are; declare "
                f'"task": "classification" and its "classes" in {sidecar_of(path).name}.',
                path=path,
                missing="task",
            )
        task_name = Task.REGRESSION.value
    task = Task(task_name)
    if task is Task.REGRESSION:
        if k != 1:
            raise ModelError(f"{path.name} is declared a regressor but returns {k} outputs per row.", path=path)
        if mapping.output not in (None, "values"):
            raise ModelError(
                f"{path.name} is declared a regressor, so its output is values, not {mapping.output}.", path=path
            )
        return task, None, "values", "declared" if mapping.output or mapping.task else "one output column, no classes"
    classes = mapping.classes or tuple(range(max(k, 2)))
    n_classes = len(classes)
    if not (k == n_classes or (k == 1 and n_classes == 2)):
        raise ModelError(
            f"{path.name} returns {k} outputs per row but {n_classes} classes are declared ({listing(classes)}).",
            path=path,
        )
    if mapping.output == "values":
        raise ModelError(
            f"{path.name} is a classifier, so its output is logits or probabilities, not values.", path=path
        )
    if mapping.output is not None:
        return task, classes, mapping.output, f"declared in {declared}"
    in_unit = bool(((out >= 0) & (out <= 1)).all())
    sums_one = k == 1 or bool((out.sum(dim=1) - 1).abs().max() <= 1e-5)
    if in_unit and sums_one:
        what = "every probe row is in [0, 1]" + (" and sums to 1" if k > 1 else "")
        return task, classes, "probabilities", f"detected: {what}"
    return task, classes, "logits", "detected: probe outputs are not probabilities"


@functools.cache
def _logits_adapter() -> type:
    import torch

    class ProbabilitiesAsLogits(torch.nn.Module):
        """Logits whose softmax is the wrapped network's probabilities: ``log p`` per class,
        or ``log p - log(1 - p)`` for one sigmoid column (read as the second class)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            p = self.inner(x)
            tiny = torch.finfo(p.dtype).tiny
            if p.ndim == 2 and p.shape[1] > 1:
                return torch.log(p.clamp_min(tiny))
            p = p.clamp(tiny, 1.0 - torch.finfo(p.dtype).eps)
            return torch.log(p) - torch.log1p(-p)

    return ProbabilitiesAsLogits


@dataclass(frozen=True, eq=False)
class TorchLoadDecision(TrustDecision):
    """A :class:`TrustDecision` that also records how a torch file was read (``to_dict()["torch"]``)."""

    loaded_as: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["torch"] = dict(self.loaded_as)
        return out


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def inspect_torch(data: bytes, path: Path) -> tuple[str, PickleScan | None, tuple[str, ...]]:
    """``(kind, scan, summary lines)`` for ``probity inspect-model``; nothing is loaded."""
    tf = read_torch_file(data, path)
    sha = sha256_bytes(data)
    lines = [f"Contents: {_KIND_TEXT[tf.kind]}"]
    mapping = read_sidecar(path)
    if mapping.sidecar is not None:
        lines.append(
            f"Sidecar:  {mapping.sidecar.name}"
            + (f" maps {len(mapping.features)} columns: {listing(mapping.features)}" if mapping.features else "")
            + (f"; task {mapping.task}" if mapping.task else "")
            + (f"; classes {listing(mapping.classes)}" if mapping.classes else "")
            + (f"; output {mapping.output}" if mapping.output else "")
            + (f"; architecture {mapping.architecture.name}" if mapping.architecture else "")
        )
    else:
        lines.append(f"Sidecar:  none; list the input columns in {sidecar_of(path).name} or give them with --features")
    if tf.kind == "torchscript":
        problem = torchscript_code_problem(data, tf.members, path)
        lines.append(
            f"Verdict:  refused - {problem}."
            if problem
            else "Verdict:  loads without a trust decision (TorchScript runs no Python; its operators are checked "
            "when it loads)."
        )
    elif tf.kind == "torch-export":
        problem = check_export_archive(data, tf.members, path)
        lines.append(
            f"Verdict:  refused - {problem}."
            if problem
            else "Verdict:  loads without a trust decision (an ATen graph and raw tensors, checked before loading)."
        )
    elif tf.kind in ("torch-state-dict", "safetensors"):
        n = len(tf.tensors) if tf.kind == "safetensors" else None
        if n is not None:
            lines.append(f"Tensors:  {n}: " + listing([f"{t[0]} {t[1]}{list(t[2])}" for t in tf.tensors]))
        if mapping.architecture is None:
            lines.append(
                "Verdict:  weights only - needs the architecture: name a TorchScript or .pt2 file of the same "
                f'network as "architecture" in {sidecar_of(path).name}.'
            )
        else:
            lines.append(
                f"Verdict:  loads without a trust decision (read with "
                f"{'weights_only=True' if tf.kind == 'torch-state-dict' else 'a safetensors reader'}) into the network "
                f"of {mapping.architecture.name}."
            )
    del sha
    return tf.kind, tf.scan if tf.kind == "torch-pickle" else None, tuple(lines)


def load_torch(
    data: bytes,
    *,
    path: Path,
    sha256: str,
    trusted: frozenset[str],
    granted_by: str,
    allow_unreviewed: bool,
    features: Sequence[str] | None = None,
    device: str = "auto",
) -> TorchModel:
    """A :class:`~engine.models.torch_adapter.TorchModel` from the bytes of a torch file.

    Parameters
    ----------
    data, path, sha256: the file's bytes (read once), where it lies and their SHA-256.
    trusted, granted_by, allow_unreviewed: the pickle flow's trust decisions (pickled modules only).
    features: the input columns the caller gives (``--features``); they must agree with the sidecar's.
    device: where predictions run (:func:`engine.device.choose_device`).

    Raises
    ------
    UnsafeModelError, UntrustedModelError, UnreviewedModelError
        As the pickle flow, and for TorchScript or ``.pt2`` files that reach outside the model (exit 3).
    ModelInputError
        The mapped columns disagree with each other or with the network's input width.
    ModelError
        Anything else missing or damaged, in one sentence.
    """
    from engine.device import choose_device
    from engine.models.torch_adapter import TorchModel

    tf = read_torch_file(data, path)
    mapping = _merge_features(read_sidecar(path), features, path)
    trust = TrustDecision(required=False, granted_by="not required", sha256=sha256)
    facts: dict[str, Any] = {"kind": tf.kind}
    width: int | None = None
    if tf.kind == "torchscript":
        module = _load_torchscript(data, tf, path, sha256)
    elif tf.kind == "torch-export":
        module, width = _load_export(data, tf, path, sha256)
    elif tf.kind == "torch-pickle":
        module, trust = _load_pickled_module(
            data,
            tf,
            path=path,
            sha256=sha256,
            trusted=trusted,
            granted_by=granted_by,
            allow_unreviewed=allow_unreviewed,
        )
    else:
        state = _load_state_dict(data, path) if tf.kind == "torch-state-dict" else read_safetensors(data, path)
        if mapping.architecture is None:
            raise ModelError(
                f"{path.name} holds weights only ({len(state)} tensors: {listing(sorted(state))}) and no "
                f'architecture; name a TorchScript or torch.export (.pt2) file of the same network as "architecture" '
                f"in {sidecar_of(path).name}.",
                path=path,
            )
        module, width, arch, arch_sha = _load_architecture(mapping, path)
        _apply_weights(module, state, path, arch)
        facts.update(architecture=arch.name, architecture_sha256=arch_sha)
    if mapping.features is None:
        raise TorchDeclarationNeeded(
            f"{path.name} does not say which data columns it takes; list them in order in {sidecar_of(path).name} "
            'next to it (a JSON list, or {"features": [...]}) or give them with --features.',
            path=path,
            missing="features",
        )
    module.eval()
    source = mapping.source or "the sidecar"
    out = _run_probe(module, mapping.features, source, path, width)
    task, classes, output, how = _decide_output(out, mapping, path)
    wrapped = _logits_adapter()(module) if output == "probabilities" else module
    resolved = choose_device(device)
    facts.update(
        features_from=source,
        sidecar=mapping.sidecar.name if mapping.sidecar is not None else None,
        sidecar_sha256=mapping.sidecar_sha256,
        task=task.value,
        output=output,
        output_from=how,
        device=resolved,
    )
    record = TorchLoadDecision(**{**trust.__dict__, "loaded_as": facts})
    return TorchModel(
        wrapped,
        input_columns=mapping.features,
        task=task,
        classes=classes,
        device=resolved,
        path=path,
        sha256=sha256,
        size_bytes=len(data),
        trust=record,
        format=tf.kind,
    )
