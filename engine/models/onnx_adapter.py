"""ONNX models, run with onnxruntime (imported lazily), e.g. scikit-learn exports from skl2onnx.

Two input layouts are understood:

* one numeric tensor input ``[N, n_features]``: the dataset's feature columns, in
  role order, are stacked into it (``input_columns`` is ``None``);
* one input per raw column, each ``[N, 1]`` (what skl2onnx writes for a Pipeline
  with a ColumnTransformer): ``input_columns`` are the input names and each column
  is fed with the input's element type (strings as Python ``str`` objects).

Classifiers give labels plus probabilities, either as a tensor ``[N, k]``
(``zipmap=False``) or a sequence of ``{class: probability}`` maps (ZipMap); the
class labels are read from the graph (ZipMap / *Classifier ``classlabels_*``
attributes) with a tiny protobuf reader, so inspecting a file needs neither
the ``onnx`` package nor onnxruntime.

External data: a graph may keep tensors in other files, named by a relative
``location``.  Probity reads them itself, only from the model's own folder (no
absolute path, no ``..``, no link leading out of it), folds their SHA-256 into
the model's identity (:func:`onnx_identity`), which provenance records and which
the per-file trust decision such a model needs is about, and gives onnxruntime
copies of exactly the bytes it hashed, in a private folder of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ModelError, ModelInputError, UnsafeModelError, UntrustedModelError
from engine.models.base import Model, Task, TrustDecision

if TYPE_CHECKING:  # imported where used: inspecting a model file needs no pandas
    import pandas as pd

__all__ = [
    "OnnxModel",
    "OnnxGraphInfo",
    "ExternalData",
    "OnnxFiles",
    "read_onnx_graph",
    "read_onnx_files",
    "onnx_identity",
    "model_identity",
    "load_onnx",
    "onnx_providers",
    "OnnxLoadDecision",
]

_CUDA_PROVIDER = "CUDAExecutionProvider"
_CPU_PROVIDER = "CPUExecutionProvider"

_CLASSIFIER_OPS = ("ZipMap", "TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier")
_ELEMENT_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}


# ---------------------------------------------------------------------------
# A minimal protobuf reader for the parts of ModelProto Probity needs
# ---------------------------------------------------------------------------


class _ProtoError(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """Top-level ``(field_number, wire_type, value)`` of one message; bytes for length-delimited."""
    out: list[tuple[int, int, Any]] = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise _ProtoError("truncated fixed64")
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise _ProtoError("truncated field")
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            if pos + 4 > end:
                raise _ProtoError("truncated fixed32")
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise _ProtoError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _string_field(message: bytes, number: int) -> str:
    for n, w, v in _fields(message):
        if n == number and w == 2:
            text: str = v.decode("utf-8", "replace")
            return text
    return ""


@dataclass(frozen=True)
class OnnxGraphInfo:
    """What the graph of an ONNX file declares, read without running it.

    Attributes
    ----------
    producer: ``"name version"`` of the exporting tool (``""`` if absent).
    opsets: ``(domain, version)`` pairs the model imports.
    inputs, outputs: graph input / output names, in order.
    op_types: the operator types used, in first-use order.
    classlabels: class labels found on ZipMap/*Classifier nodes (``None`` if none).
    """

    producer: str
    opsets: tuple[tuple[str, int], ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    op_types: tuple[str, ...]
    classlabels: tuple[Any, ...] | None = None


def _node_classlabels(node: bytes) -> tuple[str, tuple[Any, ...] | None]:
    op_type = ""
    labels: tuple[Any, ...] | None = None
    for number, wire, value in _fields(node):
        if number == 4 and wire == 2:
            op_type = value.decode("utf-8", "replace")
        elif number == 5 and wire == 2:
            name = ""
            ints: list[int] = []
            strings: list[str] = []
            for a_number, a_wire, a_value in _fields(value):
                if a_number == 1 and a_wire == 2:
                    name = a_value.decode("utf-8", "replace")
                elif a_number == 8 and a_wire == 0:
                    ints.append(_signed64(a_value))
                elif a_number == 8 and a_wire == 2:  # packed
                    p = 0
                    while p < len(a_value):
                        v, p = _varint(a_value, p)
                        ints.append(_signed64(v))
                elif a_number == 9 and a_wire == 2:
                    strings.append(a_value.decode("utf-8", "replace"))
            if name in ("classlabels_int64s", "classlabels_ints") and ints:
                labels = tuple(ints)
            elif name == "classlabels_strings" and strings:
                labels = tuple(strings)
    return op_type, labels


def read_onnx_graph(data: bytes) -> OnnxGraphInfo:
    """Read producer, opsets, inputs, outputs and class labels from ONNX bytes.

    Raises
    ------
    ValueError
        The bytes are not an ONNX ModelProto with a graph.
    """
    try:
        top = _fields(data)
        producer = " ".join(v.decode("utf-8", "replace") for n, w, v in top if n in (2, 3) and w == 2 and v)
        opsets: list[tuple[str, int]] = []
        graph: bytes | None = None
        for number, wire, value in top:
            if number == 7 and wire == 2:
                graph = value
            elif number == 8 and wire == 2:
                domain, version = "", 0
                for n, w, v in _fields(value):
                    if n == 1 and w == 2:
                        domain = v.decode("utf-8", "replace")
                    elif n == 2 and w == 0:
                        version = v
                if (domain or "ai.onnx", version) not in opsets:
                    opsets.append((domain or "ai.onnx", version))
        if graph is None:
            raise ValueError("no graph")
        inputs: list[str] = []
        outputs: list[str] = []
        initializers: set[str] = set()
        op_types: list[str] = []
        zipmap_labels: tuple[Any, ...] | None = None
        other_labels: list[tuple[Any, ...]] = []
        for number, wire, value in _fields(graph):
            if wire != 2:
                continue
            if number == 1:
                op_type, labels = _node_classlabels(value)
                if op_type not in op_types:
                    op_types.append(op_type)
                if labels is not None and op_type == "ZipMap":
                    zipmap_labels = labels
                elif labels is not None and op_type in _CLASSIFIER_OPS:
                    other_labels.append(labels)
            elif number == 5:  # TensorProto: the name is field 8
                initializers.add(_string_field(value, 8))
            elif number == 11:  # ValueInfoProto: the name is field 1
                inputs.append(_string_field(value, 1))
            elif number == 12:
                outputs.append(_string_field(value, 1))
    except (_ProtoError, UnicodeDecodeError, IndexError) as exc:
        raise ValueError(str(exc)) from None
    labels = zipmap_labels
    if labels is None and other_labels and all(lab == other_labels[0] for lab in other_labels):
        labels = other_labels[0]
    return OnnxGraphInfo(
        producer=producer,
        opsets=tuple(opsets),
        # Old exporters list initializers among the graph inputs; they are not fed.
        inputs=tuple(n for n in inputs if n not in initializers),
        outputs=tuple(outputs),
        op_types=tuple(op_types),
        classlabels=labels,
    )


# ---------------------------------------------------------------------------
# External data
# ---------------------------------------------------------------------------

_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


@dataclass(frozen=True)
class ExternalData:
    """One file an ONNX graph reads tensors from.

    Attributes
    ----------
    location: the name the graph gives it (relative to the model's folder).
    path: the file, inside the model's folder.
    size_bytes: its size (bytes).
    sha256: hex SHA-256 of its bytes.
    tensors: names of the tensors read from it.
    """

    location: str
    path: Path
    size_bytes: int
    sha256: str
    tensors: tuple[str, ...]


@dataclass(frozen=True)
class OnnxFiles:
    """An ONNX model file with the external data it reads, all read once.

    Attributes
    ----------
    sha256: hex SHA-256 of the model file itself.
    identity: the model's identity: ``sha256`` without external data, else
        :func:`onnx_identity` of the model file and every data file.
    external: the data files, by location.
    contents: location -> the bytes read (what onnxruntime is given).
    """

    sha256: str
    identity: str
    external: tuple[ExternalData, ...]
    contents: dict[str, bytes]

    def describe(self) -> tuple[str, ...]:
        """Lines for ``probity inspect-model``: the data files, their sizes and hashes."""
        if not self.external:
            return ()
        lines = [
            f"Model file SHA-256: {self.sha256}",
            f"External data ({len(self.external)} file{'s' if len(self.external) != 1 else ''} from the "
            "model's folder, covered by the SHA-256 above):",
        ]
        for item in self.external:
            lines.append(
                f"  {item.location}  {item.size_bytes:,} bytes  SHA-256 {item.sha256}  "
                f"({len(item.tensors)} tensor{'s' if len(item.tensors) != 1 else ''})"
            )
        return tuple(lines)


def _message_fields(buf: bytes, numbers: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    wanted = set(numbers)
    for number, wire, value in _fields(buf):
        if number in wanted and wire == 2:
            yield number, value


def _tensor_reference(tensor: bytes) -> tuple[str, str, int, int | None] | None:
    """``(tensor name, location, offset, length)`` of an external TensorProto, ``None`` for inline data."""
    name, location, offset, length = "", None, 0, None
    external = False
    for number, wire, value in _fields(tensor):
        if number == 8 and wire == 2:
            name = value.decode("utf-8", "replace")
        elif number == 14 and wire == 0:
            external = external or value == _EXTERNAL
        elif number == 13 and wire == 2:
            external = True
            key = _string_field(value, 1)
            text = _string_field(value, 2)
            if key == "location":
                location = text
            elif key in ("offset", "length"):
                if not text.isdigit():
                    raise ValueError(f"the tensor {name or '(unnamed)'} gives its {key} as {text!r}")
                if key == "offset":
                    offset = int(text)
                else:
                    length = int(text)
    if not external:
        return None
    if location is None:
        raise ValueError(f"the tensor {name or '(unnamed)'} keeps its data in another file but does not name it")
    return name, location, offset, length


def _external_references(data: bytes) -> list[tuple[str, str, int, int | None]]:
    """Every tensor of the model that keeps its data in another file, wherever it sits.

    Tensors sit in graph initializers (and sparse ones), node attributes (``t``,
    ``tensors``, sparse ones) and in the graphs nested in attributes, training
    information and function definitions; all are followed.
    """
    refs: list[tuple[str, str, int, int | None]] = []
    graphs: list[bytes] = []
    attributes: list[bytes] = []
    tensors: list[bytes] = []

    def nodes(message: bytes, field: int) -> None:
        for _, node in _message_fields(message, (field,)):
            attributes.extend(value for _, value in _message_fields(node, (5,)))

    for number, value in _message_fields(data, (7, 20, 25)):
        if number == 7:
            graphs.append(value)
        elif number == 20:  # TrainingInfoProto: initialization, algorithm
            graphs.extend(v for _, v in _message_fields(value, (1, 2)))
        else:  # FunctionProto: nodes and default attribute values
            nodes(value, 7)
            attributes.extend(v for _, v in _message_fields(value, (11,)))
    while graphs or attributes:
        while graphs:
            graph = graphs.pop()
            nodes(graph, 1)
            for number, value in _message_fields(graph, (5, 15)):
                if number == 5:
                    tensors.append(value)
                else:  # SparseTensorProto: values, indices
                    tensors.extend(v for _, v in _message_fields(value, (1, 2)))
        while attributes:
            attribute = attributes.pop()
            for number, value in _message_fields(attribute, (5, 6, 10, 11, 22, 23)):
                if number in (5, 10):
                    tensors.append(value)
                elif number in (6, 11):
                    graphs.append(value)
                else:
                    tensors.extend(v for _, v in _message_fields(value, (1, 2)))
    for tensor in tensors:
        ref = _tensor_reference(tensor)
        if ref is not None:
            refs.append(ref)
    return refs


def _outside(path: Path, location: str) -> UnsafeModelError:
    return UnsafeModelError(
        f"{path.name} is refused: it reads tensor data from {location!r}, which is not a file in the model's own "
        "folder; Probity reads external data only from there.",
        path=path,
    )


def _data_file(path: Path, folder: Path, location: str) -> Path:
    """The file ``location`` names, checked to lie in ``folder`` (the model's own), links resolved."""
    parts = location.split("/")
    if (
        not location
        or "\\" in location
        or ":" in location
        or "\0" in location
        or location.startswith("/")
        or ".." in parts
    ):
        raise _outside(path, location)
    try:
        target = (folder / location).resolve(strict=True)
    except (OSError, RuntimeError):
        raise ModelError(
            f"{path.name} reads tensor data from {location!r}, which does not exist in the model's folder.",
            path=path,
        ) from None
    if not target.is_relative_to(folder.resolve()):
        raise _outside(path, location)
    if target == path.resolve():
        raise ModelError(
            f"{path.name} reads tensor data from itself ({location!r}), which Probity does not support.", path=path
        )
    if not target.is_file():
        raise ModelError(f"{path.name} reads tensor data from {location!r}, which is not a file.", path=path)
    return target


def onnx_identity(model_sha256: str, external: Iterable[ExternalData]) -> str:
    r"""The identity of an ONNX model with external data: one SHA-256 over the model's and every data file's.

    ``sha256("probity-onnx-external-data/1\n" + model_sha256 + "\n" + "<sha256> <location>\n" ...)``
    with the data files in the order of their locations; a model without external
    data is identified by its file's own SHA-256.
    """
    items = sorted(external, key=lambda e: e.location)
    if not items:
        return model_sha256
    text = "probity-onnx-external-data/1\n" + model_sha256 + "\n" + "".join(f"{e.sha256} {e.location}\n" for e in items)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_onnx_files(data: bytes, *, path: Path, sha256: str | None = None) -> OnnxFiles:
    """Find, check and read the external data of the ONNX bytes ``data`` of ``path``.

    Raises
    ------
    UnsafeModelError
        A location is absolute, climbs out with ``..`` or leads out of the model's
        folder through a link (refused always, exit code 3).
    ModelError
        The bytes are not an ONNX model, or a data file is missing or shorter than
        the tensors it should hold.
    """
    from engine.hashing import sha256_bytes

    own = sha256 if sha256 is not None else sha256_bytes(data)
    try:
        refs = _external_references(data)
    except (_ProtoError, UnicodeDecodeError, IndexError):
        raise ModelError(f"{path.name} is not a valid ONNX model.", path=path) from None
    except ValueError as exc:
        raise ModelError(f"{path.name} is not a valid ONNX model: {exc}.", path=path) from None
    if not refs:
        return OnnxFiles(sha256=own, identity=own, external=(), contents={})
    folder = path.absolute().parent
    by_file: dict[Path, list[tuple[str, str, int, int | None]]] = {}
    for ref in refs:
        by_file.setdefault(_data_file(path, folder, ref[1]), []).append(ref)
    external: list[ExternalData] = []
    contents: dict[str, bytes] = {}
    for target, file_refs in by_file.items():
        try:
            blob = target.read_bytes()
        except OSError as exc:
            raise ModelError(
                f"{path.name} reads tensor data from {file_refs[0][1]!r}, which cannot be read "
                f"({exc.strerror or exc}).",
                path=path,
            ) from None
        for name, location, offset, length in file_refs:
            end = len(blob) if length is None else offset + length
            if offset > len(blob) or end > len(blob):
                raise ModelError(
                    f"{path.name} reads the tensor {name or '(unnamed)'} from bytes {offset:,} to {end:,} of "
                    f"{location!r}, which has only {len(blob):,}.",
                    path=path,
                )
            contents[location] = blob
        external.extend(
            ExternalData(
                location=location,
                path=target,
                size_bytes=len(blob),
                sha256=sha256_bytes(blob),
                tensors=tuple(r[0] for r in file_refs if r[1] == location),
            )
            for location in dict.fromkeys(r[1] for r in file_refs)
        )
    external.sort(key=lambda e: e.location)
    return OnnxFiles(sha256=own, identity=onnx_identity(own, external), external=tuple(external), contents=contents)


def onnx_providers(device: str = "auto", available: Sequence[str] | None = None) -> list[Any]:
    """The execution providers an onnxruntime session is opened with for ``device``.

    onnxruntime's CUDA provider (installed with ``onnxruntime-gpu``) runs the
    graph on the GPU, with the CPU provider behind it for the operators CUDA
    lacks.  ``"auto"`` uses it where it is installed, ``"cpu"`` never, and
    ``"cuda"`` / ``"cuda:N"`` insist on it (GPU ``N``).

    Parameters
    ----------
    device:
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (as :func:`engine.device.choose_device` takes).
    available:
        The providers this onnxruntime has (default: ``onnxruntime.get_available_providers()``).

    Raises
    ------
    ModelError
        For ``"cuda"`` when onnxruntime has no CUDA provider here, or an unknown device.
    """
    wanted = str(device).strip().lower()
    if wanted == "cpu":
        return [_CPU_PROVIDER]
    index = wanted.removeprefix("cuda:") if wanted.startswith("cuda:") else None
    if wanted not in ("auto", "cuda") and not (index is not None and index.isdigit()):
        raise ModelError(f"Unknown compute device {device!r}; choose 'auto', 'cpu' or 'cuda'.")
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    if _CUDA_PROVIDER not in available:
        if wanted == "auto":
            return [_CPU_PROVIDER]
        raise ModelError(
            f"The compute device {device!r} was asked for, but onnxruntime here has no CUDA provider "
            "(it comes with the onnxruntime-gpu package); choose 'auto' or 'cpu'."
        )
    cuda: Any = _CUDA_PROVIDER if index is None else (_CUDA_PROVIDER, {"device_id": int(index)})
    return [cuda, _CPU_PROVIDER]


@dataclass(frozen=True)
class OnnxLoadDecision(TrustDecision):
    """A :class:`TrustDecision` that also records the providers the session runs on (``to_dict()["onnx"]``)."""

    providers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["onnx"] = {"providers": list(self.providers)}
        return out


def _session_from_copies(
    ort: Any, options: Any, data: bytes, files: OnnxFiles, path: Path, providers: Sequence[Any]
) -> Any:
    """An onnxruntime session of the bytes Probity read and hashed, and of nothing else.

    onnxruntime resolves external data (nested graphs included) relative to the
    model's path, so the model and its data files are copied into a private,
    fresh folder and the session is made from there: whatever the graph names, the
    only files onnxruntime can find are these copies (and it refuses paths that
    leave that folder itself).  The session holds its own copy of every tensor, so
    the folder is removed right after.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="probity-onnx-", ignore_cleanup_errors=True) as folder:
        root = Path(folder)
        model_file = root / path.name
        model_file.write_bytes(data)
        for location, blob in files.contents.items():
            target = root / location
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
        return ort.InferenceSession(str(model_file), sess_options=options, providers=list(providers))


def model_identity(path: str | Path) -> str:
    """The SHA-256 Probity records for a model file (what ``verify`` and the manifest compare).

    A file's own SHA-256, except for an ONNX graph with external data: then the
    identity that also covers its data files (:func:`onnx_identity`).
    """
    from engine.hashing import sha256_file

    path = Path(path)
    if path.suffix.lower() != ".onnx":
        return sha256_file(path)
    return read_onnx_files(path.read_bytes(), path=path).identity


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


class OnnxModel(Model):
    """An ONNX model run by onnxruntime: on the CPU, or on a GPU with the CUDA provider (:func:`onnx_providers`).

    Parameters
    ----------
    session: an ``onnxruntime.InferenceSession``.
    info: what :func:`read_onnx_graph` found in the same bytes.
    path, sha256, size_bytes: the file it came from; ``sha256`` is the model's
        identity, which covers its external data (:func:`onnx_identity`).
    trust: the decision that allowed loading (needed when there is external data).
    external: the external data files the graph read.
    """

    format = "onnx"
    #: ``"cuda"`` (or ``"cuda:N"``) when the session runs on the CUDA provider (see :func:`load_onnx`).
    device = "cpu"

    def __init__(
        self,
        session: Any,
        info: OnnxGraphInfo,
        *,
        path: Path | None = None,
        sha256: str | None = None,
        size_bytes: int | None = None,
        trust: TrustDecision | None = None,
        external: tuple[ExternalData, ...] = (),
    ) -> None:
        self._session = session
        self.info = info
        self.path = path
        self.sha256 = sha256
        self.size_bytes = size_bytes
        self.external = external
        self.trust = trust or TrustDecision(required=False, granted_by="not required", sha256=sha256)
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        self._inputs = [(i.name, i.type, list(i.shape or [])) for i in inputs]
        for name, typ, _ in self._inputs:
            if typ not in _ELEMENT_DTYPES:
                raise ModelError(
                    f"The ONNX model {self.name} has the input {name!r} of unsupported type {typ}.", path=path
                )
        if len(self._inputs) == 1:
            _, _, shape = self._inputs[0]
            self.input_columns = None
            last = shape[-1] if len(shape) >= 2 else None
            self.n_features_in = last if isinstance(last, int) else None
        else:
            for name, _, shape in self._inputs:
                if len(shape) > 2 or (len(shape) == 2 and shape[1] not in (1, None) and isinstance(shape[1], int)):
                    raise ModelError(
                        f"The ONNX model {self.name} has several inputs and {name!r} is not one column wide, "
                        "so Probity cannot map data columns to it.",
                        path=path,
                    )
            self.input_columns = tuple(name for name, _, _ in self._inputs)
            self.n_features_in = len(self._inputs)

        self._proba_output: str | None = None
        self._proba_is_map = False
        out = [(o.name, o.type, list(o.shape or [])) for o in outputs]
        maps = [o for o in out if o[1].startswith("seq(map(")]
        labels = [o for o in out if o[1] in ("tensor(int64)", "tensor(string)", "tensor(int32)", "tensor(bool)")]
        floats = [o for o in out if o[1] in ("tensor(float)", "tensor(double)")]
        if maps or (labels and floats):
            self.task = Task.CLASSIFICATION
            if maps:
                self._proba_output, self._proba_is_map = maps[0][0], True
            else:
                self._proba_output = floats[0][0]
            classes = info.classlabels
            if classes is None:
                width = floats[0][2][-1] if floats and floats[0][2] else None
                if not isinstance(width, int):
                    raise ModelError(
                        f"The ONNX classifier {self.name} does not state its class labels in its graph.", path=path
                    )
                classes = tuple(range(width))
            self.classes = tuple(classes)
        elif len(floats) >= 1:
            self.task = Task.REGRESSION
            self.classes = None
            self._proba_output = floats[0][0]
        else:
            raise ModelError(
                f"The ONNX model {self.name} has no numeric output Probity can use as predictions.", path=path
            )

    @property
    def session(self) -> Any:
        return self._session

    def _feeds(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        if self.input_columns is None:
            name, typ, _ = self._inputs[0]
            if self.n_features_in is not None and X.shape[1] != self.n_features_in:
                raise ModelInputError(
                    f"The model {self.name} expects {self.n_features_in} input columns but was given {X.shape[1]}.",
                    path=self.path,
                )
            return {name: self._column_array(X, list(X.columns), typ, name)}
        return {name: self._column_array(X, [name], typ, name) for name, typ, _ in self._inputs}

    def _column_array(self, X: pd.DataFrame, columns: list[str], typ: str, input_name: str) -> np.ndarray:
        dtype = _ELEMENT_DTYPES[typ]
        block = X.loc[:, columns]
        if dtype is object:
            if block.isna().to_numpy().any():
                raise ModelInputError(
                    f"The data has missing values in {', '.join(map(repr, columns))}, which the ONNX model "
                    f"{self.name} takes as text and cannot accept missing.",
                    path=self.path,
                )
            arr = block.astype(str).to_numpy(dtype=object)
        else:
            try:
                arr = block.to_numpy(dtype=np.float64 if np.issubdtype(dtype, np.floating) else None)
                arr = arr.astype(dtype, copy=False)
            except (TypeError, ValueError) as exc:
                raise ModelInputError(
                    f"The data in {', '.join(map(repr, columns))} cannot be converted to the ONNX input "
                    f"{input_name!r} of type {typ}: {str(exc).splitlines()[0].rstrip('.')}.",
                    path=self.path,
                ) from exc
        return np.ascontiguousarray(arr.reshape(len(X), len(columns)))

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        feeds = self._feeds(X)
        try:
            (result,) = self._session.run([self._proba_output], feeds)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelInputError(
                f"The model {self.name} could not predict on the given data: {first.rstrip('.')}.", path=self.path
            ) from exc
        if self.task is Task.REGRESSION:
            return np.asarray(result, dtype=np.float64)
        if self._proba_is_map:
            assert self.classes is not None
            import pandas as pd

            # ZipMap returns one dict per row; from_records builds the matrix in one go.
            frame = pd.DataFrame.from_records(result, columns=list(self.classes))
            probabilities: np.ndarray = frame.to_numpy(dtype=np.float64)
            return probabilities
        return np.asarray(result, dtype=np.float64)


def load_onnx(
    data: bytes,
    *,
    path: Path,
    sha256: str,
    trusted: Iterable[str] = (),
    granted_by: str = "cli --trust-model",
    device: str = "auto",
) -> OnnxModel:
    """Open ONNX bytes with onnxruntime and wrap them as an :class:`OnnxModel`.

    ``device`` picks the execution providers (:func:`onnx_providers`): the GPU
    where onnxruntime's CUDA provider is installed and ``device`` allows it, else
    the CPU.  The providers the session runs on are recorded with the trust
    decision (``model_trust["onnx"]["providers"]`` in provenance).

    A graph with external data loads only when its identity (:func:`onnx_identity`)
    is in ``trusted``; its data files are read by Probity from the model's folder
    and given to onnxruntime in memory.

    Raises
    ------
    UnsafeModelError
        External data from outside the model's folder (refused always).
    UntrustedModelError
        External data, and the model's identity is not trusted (exit code 3).
    ModelError
        The bytes are not a valid ONNX model, a data file is missing or short, or
        onnxruntime cannot run it.
    """
    try:
        info = read_onnx_graph(data)
    except ValueError:
        raise ModelError(f"{path.name} is not a valid ONNX model.", path=path) from None
    files = read_onnx_files(data, path=path, sha256=sha256)
    trust = None
    if files.external:
        locations = tuple(e.location for e in files.external)
        if files.identity not in set(trusted):
            listed = ", ".join(locations)
            raise UntrustedModelError(
                f"{path.name} reads tensor data from {len(locations)} other file{'s' if len(locations) != 1 else ''} "
                f"in its folder ({listed}); trust this model and its data with --trust-model {files.identity} "
                "only if you trust their source.",
                path=path,
                sha256=files.identity,
                imports=tuple(f"external data: {loc}" for loc in locations),
            )
        trust = TrustDecision(
            required=True,
            granted_by=granted_by,
            sha256=files.identity,
            imports=tuple(f"external data: {loc}" for loc in locations),
        )
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a declared dependency
        raise ModelError(f"{path.name} is an ONNX model, but onnxruntime is not installed.", path=path) from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # One thread per call: Probity spreads model calls over engine.parallel.job_threads workers (the one
    # thread policy), so threads inside onnxruntime would only multiply them and add contention.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    providers = onnx_providers(device, ort.get_available_providers())
    try:
        if files.contents:
            session = _session_from_copies(ort, options, data, files, path, providers)
        else:
            session = ort.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime's errors are not a public hierarchy
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path.name} cannot be opened by onnxruntime: {first.rstrip('.')}.", path=path) from exc
    size = len(data) + sum(e.size_bytes for e in files.external)
    used = tuple(str(p) for p in session.get_providers())
    base = trust or TrustDecision(required=False, granted_by="not required", sha256=files.identity)
    model = OnnxModel(
        session,
        info,
        path=path,
        sha256=files.identity,
        size_bytes=size,
        trust=OnnxLoadDecision(**base.__dict__, providers=used),
        external=files.external,
    )
    if used and used[0] == _CUDA_PROVIDER:
        cuda = providers[0]
        model.device = f"cuda:{cuda[1]['device_id']}" if isinstance(cuda, tuple) else "cuda"
    return model
