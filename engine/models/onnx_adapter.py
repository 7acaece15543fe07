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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import ModelError, ModelInputError
from engine.models.base import Model, Task, TrustDecision

__all__ = ["OnnxModel", "OnnxGraphInfo", "read_onnx_graph", "load_onnx"]

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
            return v.decode("utf-8", "replace")
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
        producer = " ".join(
            v.decode("utf-8", "replace") for n, w, v in top if n in (2, 3) and w == 2 and v
        )
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
# The model
# ---------------------------------------------------------------------------


class OnnxModel(Model):
    """An ONNX model run by onnxruntime on the CPU.

    Parameters
    ----------
    session: an ``onnxruntime.InferenceSession``.
    info: what :func:`read_onnx_graph` found in the same bytes.
    path, sha256, size_bytes: the file it came from.
    """

    format = "onnx"

    def __init__(
        self,
        session: Any,
        info: OnnxGraphInfo,
        *,
        path: Path | None = None,
        sha256: str | None = None,
        size_bytes: int | None = None,
    ) -> None:
        self._session = session
        self.info = info
        self.path = path
        self.sha256 = sha256
        self.size_bytes = size_bytes
        self.trust = TrustDecision(required=False, granted_by="not required", sha256=sha256)
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        self._inputs = [(i.name, i.type, list(i.shape or [])) for i in inputs]
        for name, typ, _ in self._inputs:
            if typ not in _ELEMENT_DTYPES:
                raise ModelError(f"The ONNX model {self.name} has the input {name!r} of unsupported type {typ}.",
                                 path=path)
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
            # ZipMap returns one dict per row; from_records builds the matrix in one go.
            frame = pd.DataFrame.from_records(result, columns=list(self.classes))
            return frame.to_numpy(dtype=np.float64)
        return np.asarray(result, dtype=np.float64)


def load_onnx(data: bytes, *, path: Path, sha256: str) -> OnnxModel:
    """Open ONNX bytes with onnxruntime (CPU) and wrap them as an :class:`OnnxModel`.

    Raises
    ------
    ModelError
        The bytes are not a valid ONNX model, or onnxruntime cannot run it.
    """
    try:
        info = read_onnx_graph(data)
    except ValueError:
        raise ModelError(f"{path.name} is not a valid ONNX model.", path=path) from None
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a declared dependency
        raise ModelError(f"{path.name} is an ONNX model, but onnxruntime is not installed.", path=path) from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Small data and a 2-core target: more threads only add contention.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors are not a public hierarchy
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path.name} cannot be opened by onnxruntime: {first.rstrip('.')}.", path=path) from exc
    return OnnxModel(session, info, path=path, sha256=sha256, size_bytes=len(data))

