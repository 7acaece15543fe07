"""Model intake: inspect a model file without loading it, and load it under an explicit trust rule.

Formats, by preference:

* ``.skops``: scikit-learn objects stored as data.  skops lists the types it
  does not trust; Probity approves a small reviewed set (see
  :data:`REVIEWED_SKOPS_TYPES`), anything else needs the file's SHA-256 in
  ``trusted_sha256``.
* ``.onnx``: a computation graph run by onnxruntime; no code of the file runs,
  so no trust is needed.
* ``.pkl``/``.pickle``/``.joblib``: unpickling runs code.  The file is scanned
  first (:func:`engine.models.pickle_scan.scan_pickle_bytes`); anything able to
  run commands or code is refused always, and everything else loads only when
  its exact SHA-256 was trusted.

The file is read once; the same bytes are hashed, scanned and loaded, so the
file cannot change between the check and the use.
"""

from __future__ import annotations

import io
import pickle
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import IncompatibleModelError, ModelError, UnsafeModelError, UntrustedModelError
from engine.hashing import sha256_bytes
from engine.models.base import Model, TrustDecision
from engine.models.pickle_scan import PickleScan, scan_pickle_bytes
from engine.models.sklearn_adapter import SklearnModel

__all__ = [
    "ModelInspection",
    "inspect_model",
    "load_model",
    "model_format_of",
    "REVIEWED_SKOPS_TYPES",
    "MODEL_SUFFIXES",
    "validate_tree_structures",
]

#: File suffixes Probity reads, and the format family each names.
MODEL_SUFFIXES: dict[str, str] = {
    ".skops": "skops",
    ".onnx": "onnx",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
}

#: skops types Probity approves without a per-file decision, and why that is safe.
#: skops never calls code named by the file for these: it builds them from plain
#: arrays and numbers.  The two tree types are the reason skops itself does not
#: trust them: their node arrays hold raw indices that scikit-learn follows without
#: bounds checks, so Probity checks every index before the model is used
#: (:func:`validate_tree_structures`).
REVIEWED_SKOPS_TYPES: dict[str, str] = {
    "numpy.dtype": "rebuilt by numpy from an empty .npy array with allow_pickle=False",
    "sklearn.tree._tree.Tree": "node indices, features and value shapes are bounds-checked by Probity",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": (
        "node indices, features and category bitsets are bounds-checked by Probity"
    ),
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer": (
        "plain attributes (learning rate, moment arrays), used only for further training"
    ),
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer": (
        "plain attributes (learning rate, velocity arrays), used only for further training"
    ),
}

_GRANTED_BY_REVIEW = "probity reviewed types"
_SUPPORTED = "expected .skops, .onnx, .pkl, .pickle or .joblib"
_MAX_LISTED = 25


def model_format_of(path: str | Path) -> str:
    """The format family of a model file, from its suffix.

    Raises
    ------
    ModelError
        The suffix is not one Probity reads.
    """
    path = Path(path)
    fmt = MODEL_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ModelError(f"{path.name} is not a model file Probity can read ({_SUPPORTED}).", path=path)
    return fmt


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path.name} does not exist.", path=path) from None
    except IsADirectoryError:
        raise ModelError(f"{path.name} is a folder, not a model file.", path=path) from None
    except OSError as exc:
        raise ModelError(f"{path.name} cannot be read ({exc.strerror or exc}).", path=path) from None


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) > _MAX_LISTED:
        return ", ".join(items[:_MAX_LISTED]) + f" and {len(items) - _MAX_LISTED} more"
    return ", ".join(items)


# ---------------------------------------------------------------------------
# Inspection
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInspection:
    """What a model file is and would do, found without loading it.

    Attributes
    ----------
    path: the file.
    format: ``"skops"``, ``"onnx"``, ``"pickle"`` or ``"joblib"`` (from the content for
        pickles: a ``.pkl`` written by joblib is ``"joblib"``).
    size_bytes: file size (bytes).
    sha256: hex SHA-256 of the file, the value ``--trust-model`` takes.
    scan: the pickle scan (pickle/joblib only).
    skops_untrusted_types: types skops does not trust by default (skops only).
    summary: further human-readable lines (ONNX graph facts, skops review status ...).
    """

    path: Path
    format: str
    size_bytes: int
    sha256: str
    scan: PickleScan | None = None
    skops_untrusted_types: tuple[str, ...] | None = None
    summary: tuple[str, ...] = ()

    @property
    def needs_trust(self) -> bool:
        """Whether loading needs ``--trust-model <sha256>``; refused pickles never load at all."""
        if self.scan is not None:
            return not self.scan.refused
        if self.skops_untrusted_types is not None:
            return any(t not in REVIEWED_SKOPS_TYPES for t in self.skops_untrusted_types)
        return False

    def to_text(self) -> str:
        """The report ``probity inspect-model PATH`` prints."""
        lines = [
            f"File:     {self.path}",
            f"Format:   {self.format}"
            + (f" ({self.scan.format} container)" if self.scan is not None and self.scan.format != self.format else ""),
            f"Size:     {self.size_bytes:,} bytes",
            f"SHA-256:  {self.sha256}",
        ]
        if self.scan is not None:
            scan = self.scan
            lines.append(f"Imports ({len(scan.imports)}):")
            dangerous = set(scan.dangerous)
            lines.extend(f"  {name}{'   <- can run commands or code' if name in dangerous else ''}"
                         for name in scan.imports)
            if scan.notes:
                lines.append("Notes:")
                lines.extend(f"  - {note}" for note in scan.notes)
            if scan.refused:
                lines.append("Verdict:  refused - Probity never loads this file, whatever is trusted.")
            else:
                lines.append(
                    "Verdict:  needs trust - unpickling runs the code of the classes above; load it only if you "
                    f"trust its source, with --trust-model {self.sha256}"
                )
        elif self.skops_untrusted_types is not None:
            if self.skops_untrusted_types:
                lines.append("Types skops does not trust by default:")
                for name in self.skops_untrusted_types:
                    why = REVIEWED_SKOPS_TYPES.get(name)
                    lines.append(f"  {name}" + (f"   (reviewed by Probity: {why})" if why else "   (not reviewed)"))
            else:
                lines.append("Types skops does not trust by default: none")
            if self.needs_trust:
                lines.append(f"Verdict:  needs trust - load it only if you trust its source, with "
                             f"--trust-model {self.sha256}")
            else:
                lines.append("Verdict:  loads without a trust decision.")
        lines.extend(self.summary)
        if self.format == "onnx":
            lines.append("Verdict:  loads without a trust decision (an ONNX graph runs no code of its own).")
        return "\n".join(lines) + "\n"


def _skops_untrusted(data: bytes, path: Path) -> list[str]:
    import skops.io as sio

    try:
        return sorted(sio.get_untrusted_types(data=data))
    except Exception as exc:  # skops raises zipfile/json/KeyError for damaged files
        raise ModelError(f"{path.name} is not a valid skops file ({type(exc).__name__}).", path=path) from exc


def inspect_model(path: str | Path) -> ModelInspection:
    """Describe a model file without loading or unpickling anything.

    Parameters
    ----------
    path: a ``.skops``, ``.onnx``, ``.pkl``, ``.pickle`` or ``.joblib`` file.

    Returns
    -------
    ModelInspection
        Format, size, SHA-256 and, for pickles, the imports and the verdict.

    Raises
    ------
    ModelError
        Unsupported suffix, unreadable file, or content that is not of its format.
    """
    path = Path(path)
    fmt = model_format_of(path)
    data = _read_bytes(path)
    sha = sha256_bytes(data)
    if fmt == "skops":
        untrusted = _skops_untrusted(data, path)
        return ModelInspection(path, "skops", len(data), sha, skops_untrusted_types=tuple(untrusted))
    if fmt == "onnx":
        from engine.models.onnx_adapter import read_onnx_graph

        try:
            info = read_onnx_graph(data)
        except ValueError:
            raise ModelError(f"{path.name} is not a valid ONNX model.", path=path) from None
        summary = [
            f"Producer: {info.producer or 'not stated'}",
            "Opsets:   " + ", ".join(f"{d} {v}" for d, v in info.opsets),
            "Inputs:   " + ", ".join(info.inputs),
            "Outputs:  " + ", ".join(info.outputs),
            "Operators: " + ", ".join(info.op_types),
        ]
        if info.classlabels is not None:
            summary.append("Classes:  " + ", ".join(map(str, info.classlabels)))
        return ModelInspection(path, "onnx", len(data), sha, summary=tuple(summary))
    scan = scan_pickle_bytes(data, name=path.name, path=path)
    return ModelInspection(path, "pickle" if scan.format == "pickle" else "joblib", len(data), sha, scan=scan)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def _normalise_hashes(trusted_sha256: Iterable[str]) -> frozenset[str]:
    if isinstance(trusted_sha256, str):
        trusted_sha256 = (trusted_sha256,)
    return frozenset(h.strip().lower().removeprefix("sha256:") for h in trusted_sha256)


def load_model(
    path: str | Path,
    *,
    trusted_sha256: Iterable[str] = (),
    granted_by: str = "cli --trust-model",
) -> Model:
    """Load a model file under Probity's trust rules.

    Parameters
    ----------
    path: a ``.skops``, ``.onnx``, ``.pkl``, ``.pickle`` or ``.joblib`` file.
    trusted_sha256: SHA-256 hex digests of files the user explicitly trusts.
    granted_by: recorded in the model's :class:`TrustDecision` when a trusted hash
        was needed (``"cli --trust-model"``, ``"gui confirmation"``, ``"api"``).

    Returns
    -------
    Model
        A :class:`SklearnModel` (skops, pickle, joblib) or an ``OnnxModel``.

    Raises
    ------
    UnsafeModelError
        A pickle imports something able to run commands or code, or cannot be fully
        checked; refused whatever is trusted (exit code 3).
    UntrustedModelError
        The file needs trust and its SHA-256 is not in ``trusted_sha256`` (exit code 3).
    IncompatibleModelError
        The model was saved by another scikit-learn version.
    ModelError
        Unsupported or unreadable file, damaged content, or not a usable model.
    """
    path = Path(path)
    fmt = model_format_of(path)
    data = _read_bytes(path)
    sha = sha256_bytes(data)
    trusted = _normalise_hashes(trusted_sha256)
    if fmt == "onnx":
        from engine.models.onnx_adapter import load_onnx

        return load_onnx(data, path=path, sha256=sha)
    if fmt == "skops":
        return _load_skops(data, path=path, sha256=sha, trusted=trusted, granted_by=granted_by)
    return _load_pickle(data, path=path, sha256=sha, trusted=trusted, granted_by=granted_by)


def _load_skops(data: bytes, *, path: Path, sha256: str, trusted: frozenset[str], granted_by: str) -> Model:
    import skops.io as sio

    untrusted = _skops_untrusted(data, path)
    unreviewed = [t for t in untrusted if t not in REVIEWED_SKOPS_TYPES]
    if unreviewed and sha256 not in trusted:
        raise UntrustedModelError(
            f"{path.name} contains types that skops and Probity do not trust ({_listing(unreviewed)}); "
            f"loading them may run their code, so trust this exact file with --trust-model {sha256} "
            "only if you trust its source.",
            path=path,
            sha256=sha256,
            imports=tuple(unreviewed),
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator = sio.loads(data, trusted=untrusted)
        except Exception as exc:  # skops surfaces damaged content as many exception types
            _raise_for_version_warnings(caught, path)
            first = _first_line(exc)
            raise ModelError(f"{path.name} is a damaged or unsupported skops file: {first}.", path=path) from exc
    _raise_for_version_warnings(caught, path)
    validate_tree_structures(estimator, path=path)
    if not untrusted:
        trust = TrustDecision(required=False, granted_by="not required", sha256=sha256)
    elif unreviewed:
        trust = TrustDecision(required=True, granted_by=granted_by, sha256=sha256, imports=tuple(untrusted))
    else:
        trust = TrustDecision(required=True, granted_by=_GRANTED_BY_REVIEW, sha256=sha256, imports=tuple(untrusted))
    return SklearnModel(estimator, path=path, sha256=sha256, size_bytes=len(data), format="skops", trust=trust)


def _load_pickle(data: bytes, *, path: Path, sha256: str, trusted: frozenset[str], granted_by: str) -> Model:
    scan = scan_pickle_bytes(data, name=path.name, path=path)
    if scan.refused:
        if scan.dangerous:
            reason = (
                f"it imports {_listing(scan.dangerous)}, which can run commands or code"
            )
        else:
            reason = "; ".join(scan.notes[:1]) or "part of it cannot be checked"
        raise UnsafeModelError(
            f"{path.name} is refused: {reason}; Probity never loads such a file, even when trusted.",
            path=path,
            sha256=sha256,
            imports=scan.imports,
            dangerous=scan.dangerous,
        )
    _raise_for_versions(scan.sklearn_versions, path)
    if sha256 not in trusted:
        raise UntrustedModelError(
            f"{path.name} is a {scan.format} file that imports {_listing(scan.imports) or 'nothing'}; "
            f"unpickling runs their code, so trust this exact file with --trust-model {sha256} "
            "only if you trust its source.",
            path=path,
            sha256=sha256,
            imports=scan.imports,
        )
    obj = _unpickle(data, scan, path)
    validate_tree_structures(obj, path=path)
    trust = TrustDecision(required=True, granted_by=granted_by, sha256=sha256, imports=scan.imports)
    fmt = "pickle" if scan.format == "pickle" else "joblib"
    return SklearnModel(obj, path=path, sha256=sha256, size_bytes=len(data), format=fmt, trust=trust)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__).rstrip(".")


def _unpickle(data: bytes, scan: PickleScan, path: Path) -> Any:
    """Unpickle the very bytes that were hashed and scanned, the way the scan read them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if scan.uses_joblib:
                import joblib

                # joblib's own reader: raw array bytes follow their wrappers in the stream.
                return_value = joblib.load(io.BytesIO(data))
            else:
                return_value = pickle.loads(data)
        except ModuleNotFoundError as exc:
            _raise_for_version_warnings(caught, path)
            raise ModelError(
                f"{path.name} needs the Python module {exc.name}, which is not installed here.", path=path
            ) from exc
        except AttributeError as exc:
            _raise_for_version_warnings(caught, path)
            raise ModelError(
                f"{path.name} refers to something the installed libraries do not have ({_first_line(exc)}).",
                path=path,
            ) from exc
        except Exception as exc:  # any failure of third-party __setstate__ code
            _raise_for_version_warnings(caught, path)
            raise ModelError(f"{path.name} could not be unpickled: {_first_line(exc)}.", path=path) from exc
    _raise_for_version_warnings(caught, path)
    return return_value


def _installed_sklearn() -> str:
    import sklearn

    return sklearn.__version__


def _incompatible(saved: str, path: Path) -> IncompatibleModelError:
    here = _installed_sklearn()
    return IncompatibleModelError(
        f"{path.name} was saved with scikit-learn {saved}, but this installation has {here}; "
        f"re-save the model with scikit-learn {here} (or export it to ONNX) to audit it.",
        path=path,
    )


def _raise_for_versions(versions: Iterable[str], path: Path) -> None:
    here = _installed_sklearn()
    other = [v for v in versions if v != here]
    if other:
        raise _incompatible(other[0], path)


def _raise_for_version_warnings(caught: list[warnings.WarningMessage], path: Path) -> None:
    from sklearn.exceptions import InconsistentVersionWarning

    for record in caught:
        if isinstance(record.message, InconsistentVersionWarning):
            raise _incompatible(str(record.message.original_sklearn_version), path)


# ---------------------------------------------------------------------------
# Tree structure checks
# ---------------------------------------------------------------------------


def _tree_holders(root: Any) -> Iterator[tuple[Any, int | None]]:
    """Yield every sklearn ``Tree``/``TreePredictor`` reachable from ``root``.

    Each comes with the ``n_features_in_`` of the nearest enclosing estimator,
    which bounds a histogram-gradient-boosting predictor's feature indices.
    """
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    todo: list[tuple[Any, int | None]] = [(root, None)]
    seen: set[int] = set()
    while todo:
        obj, n_features = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (Tree, TreePredictor)):
            yield obj, n_features
        elif isinstance(obj, (list, tuple)):
            todo.extend((item, n_features) for item in obj)
        elif isinstance(obj, dict):
            todo.extend((item, n_features) for item in obj.values())
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                todo.extend((item, n_features) for item in obj.ravel())
        elif type(obj).__module__.startswith("sklearn") and hasattr(obj, "__dict__"):
            attrs = vars(obj)
            own = attrs.get("n_features_in_")
            inner = own if isinstance(own, (int, np.integer)) else n_features
            bound = int(inner) if inner is not None else None
            todo.extend((item, bound) for item in attrs.values())


def validate_tree_structures(estimator: Any, *, path: Path | None = None) -> None:
    """Check every decision-tree node array before scikit-learn follows it.

    scikit-learn walks ``children_left``/``children_right``/``feature`` in compiled
    code without bounds checks; a crafted file could make it read out of bounds or
    loop.  Children must come after their parent (as scikit-learn builds them, which
    also rules out cycles) and inside the array; features must be real columns.

    Raises
    ------
    ModelError
        A tree's structure is inconsistent.
    """
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    from sklearn.tree._tree import Tree

    name = path.name if path is not None else "The model"
    for holder, n_features in _tree_holders(estimator):
        if isinstance(holder, Tree):
            n = int(holder.node_count)
            left = np.asarray(holder.children_left)
            right = np.asarray(holder.children_right)
            feature = np.asarray(holder.feature)
            width = int(holder.n_features)
            value_rows = np.asarray(holder.value).shape[0]
            ok = n >= 1 and left.shape == right.shape == feature.shape == (n,) and value_rows == n
            if ok:
                idx = np.arange(n)
                leaf = left == -1
                inner = ~leaf
                ok = bool(
                    np.all(right[leaf] == -1)
                    and np.all((left[inner] > idx[inner]) & (left[inner] < n))
                    and np.all((right[inner] > idx[inner]) & (right[inner] < n))
                    and np.all((feature[inner] >= 0) & (feature[inner] < width))
                )
        else:
            nodes = getattr(holder, "nodes", None)
            ok = (isinstance(nodes, np.ndarray) and nodes.dtype == PREDICTOR_RECORD_DTYPE and nodes.ndim == 1
                  and len(nodes) >= 1 and n_features is not None)
            if ok and nodes is not None:
                n = len(nodes)
                idx = np.arange(n)
                inner = nodes["is_leaf"] == 0
                left = nodes["left"].astype(np.int64)
                right = nodes["right"].astype(np.int64)
                feature = nodes["feature_idx"]
                ok = bool(
                    np.all((left[inner] > idx[inner]) & (left[inner] < n))
                    and np.all((right[inner] > idx[inner]) & (right[inner] < n))
                    and np.all((feature[inner] >= 0) & (feature[inner] < n_features))
                )
                categorical = inner & (nodes["is_categorical"] != 0)
                if ok and categorical.any():
                    rows = min(len(holder.raw_left_cat_bitsets), len(holder.binned_left_cat_bitsets))
                    ok = bool(np.all(nodes["bitset_idx"][categorical] < rows))
        if not ok:
            raise ModelError(
                f"{name} contains a decision tree whose node structure is inconsistent, so it is not used.",
                path=path,
            )
