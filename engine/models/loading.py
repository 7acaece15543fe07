"""Model intake: inspect a model file without loading it, and load it under an explicit trust rule.

Formats, by preference:

* ``.skops``: scikit-learn objects stored as data.  skops lists the types it
  does not trust; Probity approves a small reviewed set without a decision (see
  :data:`REVIEWED_SKOPS_TYPES`); the others are rated by the allowlist policy
  (:mod:`engine.models.pickle_policy`) like pickle globals.
* ``.onnx``: a computation graph run by onnxruntime; no code of the file runs,
  so no trust is needed, unless the graph reads tensor data from other files:
  those come only from the model's own folder, are hashed into its identity and
  need per-file trust of that identity (:mod:`engine.models.onnx_adapter`).
* ``.json``/``.ubj`` (XGBoost) and ``.txt``/``.lgb`` (LightGBM model text): a booster's
  own file format, trees and numbers with no code, so no trust is needed.  Probity reads
  and checks the file itself (the content decides JSON or UBJSON; a ``.txt`` must be
  LightGBM's text) before the library loads the same bytes
  (:mod:`engine.models.booster_adapter`).
* ``.pkl``/``.pickle``/``.joblib``: unpickling runs code.  The file is scanned
  first (:func:`engine.models.pickle_scan.scan_pickle_bytes`) and every global is
  rated by the allowlist policy: anything dangerous is refused always; a file of
  reviewed globals loads only when its exact SHA-256 was trusted; unreviewed
  globals also need ``allow_unreviewed=True``.  The unpickler itself is
  restricted (:class:`RestrictedUnpickler`): it asks the same policy for every
  global, so what loads is what the scan rated.

The file is read once; the same bytes are hashed, scanned and loaded, so the
file cannot change between the check and the use.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import IncompatibleModelError, ModelError, UnsafeModelError, UntrustedModelError
from engine.hashing import sha256_bytes
from engine.models import pickle_policy
from engine.models.base import Model, TrustDecision
from engine.models.native_checks import validate_tree_structures
from engine.models.pickle_policy import DANGEROUS, REVIEWED, REVIEWED_SKOPS_TYPES, UNREVIEWED, Classification
from engine.models.pickle_scan import PickleScan, scan_pickle_bytes
from engine.models.pickle_state import check_state
from engine.models.sklearn_adapter import SklearnModel

__all__ = [
    "ModelInspection",
    "inspect_model",
    "load_model",
    "model_format_of",
    "REVIEWED_SKOPS_TYPES",
    "MODEL_SUFFIXES",
    "validate_tree_structures",
    "UnreviewedModelError",
    "RestrictedUnpickler",
]

#: File suffixes Probity reads, and the format family each names.
MODEL_SUFFIXES: dict[str, str] = {
    ".skops": "skops",
    ".onnx": "onnx",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
    ".json": "xgboost",
    ".ubj": "xgboost",
    ".txt": "lightgbm",
    ".lgb": "lightgbm",
    ".cbm": "catboost",
    # PyTorch: the content decides TorchScript, torch.export, weights or a pickled module.
    **dict.fromkeys((".pt", ".pth", ".ts", ".torchscript", ".pt2", ".safetensors"), "torch"),
}

_GRANTED_BY_REVIEW = "probity reviewed types"
_SUPPORTED = (
    "expected .skops, .onnx, .pkl, .pickle, .joblib, XGBoost .json or .ubj, LightGBM .txt or .lgb, "
    "CatBoost .cbm or .json, or PyTorch .pt, .pth, .ts, .torchscript, .pt2 or .safetensors"
)
_BOOSTER_FAMILIES = ("xgboost", "lightgbm")
_MAX_LISTED = 25


class UnreviewedModelError(ModelError):
    """A trusted file names globals or types Probity has not reviewed, and they were not acknowledged.

    Loading needs ``allow_unreviewed=True`` (``--allow-unreviewed`` in the CLI) on top
    of the per-file trust.  Carries what a dialog shows, like the trust errors.
    """

    exit_code = 3

    def __init__(
        self, message: str, *, path: Path, sha256: str, imports: tuple[str, ...], unreviewed: tuple[str, ...]
    ) -> None:
        super().__init__(message, path=path)
        self.sha256 = sha256
        self.imports = tuple(imports)
        self.dangerous: tuple[str, ...] = ()
        self.unreviewed = tuple(unreviewed)


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


def _catboost_json(fmt: str, path: Path, data: bytes) -> bool:
    """Whether a ``.json`` file is a CatBoost model (XGBoost's JSON shares the suffix): its keys decide."""
    if fmt != "xgboost" or path.suffix.lower() != ".json":
        return False
    from engine.models.catboost_adapter import is_catboost_json

    return is_catboost_json(data)


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
    format: ``"skops"``, ``"onnx"``, ``"pickle"``, ``"joblib"``, ``"xgboost"`` or ``"lightgbm"``
        (from the content for pickles: a ``.pkl`` written by joblib is ``"joblib"``).
    size_bytes: file size (bytes).
    sha256: hex SHA-256 of the file, the value ``--trust-model`` takes (for an ONNX graph
        with external data, the identity that covers its data files too).
    scan: the pickle scan (pickle/joblib only).
    skops_untrusted_types: types skops does not trust by default (skops only).
    summary: further human-readable lines (ONNX graph facts, skops review status, what a
        booster file declares ...).
    skops_types: the policy's rating of every type a skops file names: those its schema declares
        and those skops reports as untrusted (skops only).
    onnx_external: the locations of the files an ONNX graph reads tensor data from (ONNX only).
    """

    path: Path
    format: str
    size_bytes: int
    sha256: str
    scan: PickleScan | None = None
    skops_untrusted_types: tuple[str, ...] | None = None
    summary: tuple[str, ...] = ()
    skops_types: tuple[Classification, ...] = ()
    onnx_external: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        """Whether Probity never loads this file, whatever is trusted."""
        if self.scan is not None:
            return self.scan.refused
        return any(c.status == DANGEROUS for c in self.skops_types)

    @property
    def unreviewed(self) -> tuple[str, ...]:
        """Names that need ``allow_unreviewed`` on top of trust (empty for refused files)."""
        if self.refused:
            return ()
        if self.scan is not None:
            return self.scan.unreviewed
        return tuple(c.name for c in self.skops_types if c.status == UNREVIEWED and c.name not in REVIEWED_SKOPS_TYPES)

    @property
    def needs_trust(self) -> bool:
        """Whether loading needs ``--trust-model <sha256>``; refused files never load at all."""
        if self.refused:
            return False
        if self.scan is not None or self.onnx_external:
            return True
        if self.skops_untrusted_types is not None:
            return bool(self.unreviewed) or any(t not in REVIEWED_SKOPS_TYPES for t in self.skops_untrusted_types)
        return False

    def to_text(self) -> str:
        """The report ``probity inspect-model PATH`` prints: every name with its rating."""
        lines = [
            f"File:     {self.path}",
            f"Format:   {self.format}"
            + (f" ({self.scan.format} container)" if self.scan is not None and self.scan.format != self.format else ""),
            f"Size:     {self.size_bytes:,} bytes",
            f"SHA-256:  {self.sha256}",
        ]
        acknowledge = f"--trust-model {self.sha256} --allow-unreviewed"
        if self.scan is not None:
            scan = self.scan
            lines.append(f"Imports ({len(scan.imports)}), each with Probity's rating:")
            why = {name: reason for name, _status, reason in scan.reasons}
            for name in scan.imports:
                status = scan.status_of(name)
                if status == DANGEROUS:
                    note = f"   <- can run commands or code ({why.get(name, 'refused always')})"
                elif status == UNREVIEWED:
                    note = "   <- unreviewed" + ("" if scan.refused else ": needs --allow-unreviewed")
                else:
                    note = ""
                lines.append(f"  {status:<10}  {name}{note}")
            if scan.notes:
                lines.append("Notes:")
                lines.extend(f"  - {note}" for note in scan.notes)
            if scan.refused:
                lines.append("Verdict:  refused - Probity never loads this file, whatever is trusted.")
            elif scan.unreviewed:
                lines.append(
                    f"Verdict:  needs trust and an acknowledgement - {len(scan.unreviewed)} import(s) are not on "
                    "Probity's reviewed list; unpickling runs their code, so load it only if you trust its source, "
                    f"with {acknowledge}"
                )
            else:
                lines.append(
                    "Verdict:  needs trust - unpickling runs the code of the classes above; load it only if you "
                    f"trust its source, with --trust-model {self.sha256}"
                )
        elif self.skops_untrusted_types is not None:
            untrusted = set(self.skops_untrusted_types)
            lines.append(f"Types the file declares ({len(self.skops_types)}), each with Probity's rating:")
            for verdict in self.skops_types:
                name, status = verdict.name, verdict.status
                reviewed_why = REVIEWED_SKOPS_TYPES.get(name)
                if reviewed_why:
                    status, note = REVIEWED, f"   (loads without a decision: {reviewed_why})"
                elif status == DANGEROUS:
                    note = f"   <- can run commands or code ({verdict.reason})"
                elif status == UNREVIEWED:
                    note = "   <- unreviewed" + ("" if self.refused else ": needs --allow-unreviewed")
                elif name in untrusted:
                    note = "   (skops does not trust it by default: loads after per-file trust)"
                else:
                    note = ""
                lines.append(f"  {status:<10}  {name}{note}")
            if self.refused:
                lines.append("Verdict:  refused - Probity never loads this file, whatever is trusted.")
            elif self.unreviewed:
                lines.append(
                    f"Verdict:  needs trust and an acknowledgement - load it only if you trust its source, "
                    f"with {acknowledge}"
                )
            elif self.needs_trust:
                lines.append(
                    f"Verdict:  needs trust - load it only if you trust its source, with --trust-model {self.sha256}"
                )
            else:
                lines.append("Verdict:  loads without a trust decision.")
        lines.extend(self.summary)
        if self.format == "onnx" and self.onnx_external:
            lines.append(
                "Verdict:  needs trust - the graph reads tensor data from the files listed above; load it "
                f"only if you trust their source, with --trust-model {self.sha256}"
            )
        elif self.format == "onnx":
            lines.append("Verdict:  loads without a trust decision (an ONNX graph runs no code of its own).")
        return "\n".join(lines) + "\n"


def _skops_untrusted(data: bytes, path: Path) -> list[str]:
    from engine.files import ArchiveProblem, check_zip_archive
    from engine.limits import current_limits
    from engine.models.skops_import import skops_io

    try:
        # Before skops inflates anything (reading its types or arrays): size, ratio, member count.
        check_zip_archive(data, name=path.name, limits=current_limits())
    except ArchiveProblem as exc:
        if exc.damaged:
            raise ModelError(f"{path.name} is not a valid skops file ({exc.reason}).", path=path) from None
        raise ModelError(exc.message, path=path) from None
    sio = skops_io()

    try:
        return sorted(sio.get_untrusted_types(data=data))
    except Exception as exc:  # skops raises zipfile/json/KeyError for damaged files
        raise ModelError(f"{path.name} is not a valid skops file ({type(exc).__name__}).", path=path) from exc


def _skops_declared(data: bytes, path: Path) -> tuple[tuple[str, str], ...]:
    """Every ``(module, name)`` a skops file's schema declares, whether skops trusts it by default or not.

    Object and type nodes name a class (``__module__``, ``__class__``); function
    nodes name a function (``module_path``, ``function``).  Read from
    ``schema.json`` with a loop, not recursion; call after the archive's limits
    were checked (:func:`_skops_untrusted`).
    """
    import json
    import zipfile

    from engine.files import JSONNestingError
    from engine.limits import current_limits

    max_depth = current_limits().max_json_depth
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            raw = archive.read("schema.json")
        schema = json.loads(raw)
    except RecursionError:
        raise ModelError(JSONNestingError(max_depth).sentence(f"The skops schema of {path.name}"), path=path) from None
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path.name} is not a valid skops file ({type(exc).__name__}).", path=path) from None
    # One pass over the containers: the nesting limit (as engine.files.loads_json applies it) and the names.
    found: set[tuple[str, str]] = set()
    todo: list[tuple[Any, int]] = [(schema, 1)]
    while todo:
        node, depth = todo.pop()
        if depth > max_depth:
            raise ModelError(JSONNestingError(max_depth).sentence(f"The skops schema of {path.name}"), path=path)
        if isinstance(node, dict):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                found.add((module, name))
            content = node.get("content")
            if node.get("__loader__") == "FunctionNode" and isinstance(content, dict):
                module, name = content.get("module_path"), content.get("function")
                if isinstance(module, str) and isinstance(name, str):
                    found.add((module, name))
            children = node.values()
        else:
            children = node
        todo.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return tuple(sorted(found))


def inspect_model(path: str | Path) -> ModelInspection:
    """Describe a model file without loading or unpickling anything.

    Parameters
    ----------
    path: a ``.skops``, ``.onnx``, ``.pkl``, ``.pickle``, ``.joblib``, ``.json``, ``.ubj``,
        ``.txt`` or ``.lgb`` file.

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
    if fmt == "torch":
        from engine.models.torch_files import inspect_torch

        kind, torch_scan, lines = inspect_torch(data, path)  # nothing is loaded or unpickled
        return ModelInspection(path, kind, len(data), sha, scan=torch_scan, summary=lines)
    if fmt == "catboost" or _catboost_json(fmt, path, data):
        from engine.models.catboost_adapter import read_catboost

        # CatBoost's loader reads the checked bytes (it verifies the .cbm core itself); no code runs.
        catboost_info, _ = read_catboost(data, path=path)
        return ModelInspection(path, "catboost", len(data), sha, summary=catboost_info.summary())
    if fmt in _BOOSTER_FAMILIES:
        from engine.models.booster_adapter import read_booster

        booster, _ = read_booster(data, path=path, family=fmt)  # read and checked; the library is not imported
        return ModelInspection(path, booster.library, len(data), sha, summary=booster.summary())
    if fmt == "skops":
        untrusted = _skops_untrusted(data, path)
        return ModelInspection(
            path,
            "skops",
            len(data),
            sha,
            skops_untrusted_types=tuple(untrusted),
            skops_types=_rate_skops_types(untrusted, _skops_declared(data, path)),
        )
    if fmt == "onnx":
        from engine.models.onnx_adapter import read_onnx_files, read_onnx_graph

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
        files = read_onnx_files(data, path=path, sha256=sha)  # external data: checked, listed, hashed
        summary.extend(files.describe())
        return ModelInspection(
            path,
            "onnx",
            len(data),
            files.identity,
            summary=tuple(summary),
            onnx_external=tuple(e.location for e in files.external),
        )
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
    allow_unreviewed: bool = False,
    features: Sequence[str] | None = None,
    device: str = "auto",
) -> Model:
    """Load a model file under Probity's trust rules.

    Parameters
    ----------
    path: a ``.skops``, ``.onnx``, ``.pkl``, ``.pickle``, ``.joblib``, ``.json``, ``.ubj``,
        ``.txt`` or ``.lgb`` file.
    trusted_sha256: SHA-256 hex digests of files the user explicitly trusts.
    granted_by: recorded in the model's :class:`TrustDecision` when a trusted hash
        was needed (``"cli --trust-model"``, ``"gui confirmation"``, ``"api"``).
    allow_unreviewed: the second, explicit acknowledgement a trusted file needs when it
        names globals (pickle) or types (skops) that are not on Probity's reviewed list;
        recorded in the :class:`TrustDecision`.  Dangerous names are refused regardless.
    features: the data columns feeding a torch network, in order (``--features``); they must
        agree with its sidecar's (:mod:`engine.models.torch_files`).  Other formats name their
        own inputs and ignore it.
    device: where a torch network or an ONNX graph (onnxruntime's CUDA provider, where installed) predicts
        (``"auto"``, ``"cpu"``, ``"cuda"``); others ignore it.

    Returns
    -------
    Model
        A :class:`SklearnModel` (skops, pickle, joblib), a ``TorchModel`` (torch files), an ``OnnxModel``, or an
        ``XGBoostModel``/``LightGBMModel`` (booster files, loaded without a trust decision).

    Raises
    ------
    UnsafeModelError
        A pickle or skops file names something dangerous, or a pickle cannot be fully
        checked; refused whatever is trusted (exit code 3).
    UntrustedModelError
        The file needs trust and its SHA-256 is not in ``trusted_sha256`` (exit code 3).
    UnreviewedModelError
        The file is trusted but names unreviewed globals or types, and
        ``allow_unreviewed`` is false (exit code 3).
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
    if fmt == "torch":
        from engine.models.torch_files import load_torch

        return load_torch(
            data,
            path=path,
            sha256=sha,
            trusted=trusted,
            granted_by=granted_by,
            allow_unreviewed=allow_unreviewed,
            features=features,
            device=device,
        )
    if fmt == "catboost" or _catboost_json(fmt, path, data):
        from engine.models.catboost_adapter import load_catboost

        return load_catboost(data, path=path, sha256=sha)  # no code in the file: no trust needed
    if fmt in _BOOSTER_FAMILIES:
        from engine.models.booster_adapter import load_booster

        return load_booster(data, path=path, sha256=sha, family=fmt)  # no code in the file: no trust needed
    if fmt == "onnx":
        from engine.models.onnx_adapter import load_onnx

        return load_onnx(data, path=path, sha256=sha, trusted=trusted, granted_by=granted_by, device=device)
    if fmt == "skops":
        return _load_skops(
            data, path=path, sha256=sha, trusted=trusted, granted_by=granted_by, allow_unreviewed=allow_unreviewed
        )
    return _load_pickle(
        data, path=path, sha256=sha, trusted=trusted, granted_by=granted_by, allow_unreviewed=allow_unreviewed
    )


def _unreviewed_error(
    path: Path, sha256: str, imports: tuple[str, ...], unreviewed: tuple[str, ...]
) -> UnreviewedModelError:
    return UnreviewedModelError(
        f"{path.name} names {_listing(unreviewed)}, which Probity has not reviewed; even with trust it loads "
        "only when you also acknowledge them (--allow-unreviewed), recorded in the report.",
        path=path,
        sha256=sha256,
        imports=imports,
        unreviewed=unreviewed,
    )


_SEVERITY = {REVIEWED: 0, UNREVIEWED: 1, DANGEROUS: 2}


def _rate_skops_types(untrusted: Iterable[str], declared: Iterable[tuple[str, str]] = ()) -> tuple[Classification, ...]:
    """The policy's rating of every type a skops file names, sorted by name.

    ``declared`` pairs (from the schema) are rated exactly as written; the names
    skops reports as untrusted are also rated by every module/name split, and
    where both apply the worse rating stands.
    """
    rated: dict[str, Classification] = {}
    for module, name in declared:
        verdict = pickle_policy.classify(module, name)
        rated[verdict.name] = verdict
    for full in untrusted:
        verdict = pickle_policy.classify_type(full)
        known = rated.get(full)
        if known is None or _SEVERITY[verdict.status] > _SEVERITY[known.status]:
            rated[full] = verdict
    return tuple(rated[name] for name in sorted(rated))


def _load_skops(
    data: bytes, *, path: Path, sha256: str, trusted: frozenset[str], granted_by: str, allow_unreviewed: bool
) -> Model:
    from engine.models.skops_import import skops_io

    sio = skops_io()

    untrusted = _skops_untrusted(data, path)
    rated = _rate_skops_types(untrusted, _skops_declared(data, path))
    dangerous = tuple(c.name for c in rated if c.status == DANGEROUS)
    if dangerous:
        raise UnsafeModelError(
            f"{path.name} is refused: it declares {_listing(dangerous)}, which can run commands or code; "
            "Probity never loads such a file, even when trusted.",
            path=path,
            sha256=sha256,
            imports=tuple(untrusted),
            dangerous=dangerous,
        )
    unreviewed = tuple(c.name for c in rated if c.status == UNREVIEWED and c.name not in REVIEWED_SKOPS_TYPES)
    # Types skops itself does not trust, and any type Probity has not reviewed even where skops does.
    needs_trust = sorted({t for t in untrusted if t not in REVIEWED_SKOPS_TYPES} | set(unreviewed))
    if needs_trust and sha256 not in trusted:
        also = " and --allow-unreviewed for the types Probity has not reviewed" if unreviewed else ""
        raise UntrustedModelError(
            f"{path.name} contains types that skops and Probity do not trust ({_listing(needs_trust)}); "
            f"loading them may run their code, so trust this exact file with --trust-model {sha256}{also} "
            "only if you trust its source.",
            path=path,
            sha256=sha256,
            imports=tuple(needs_trust),
        )
    if unreviewed and not allow_unreviewed:
        raise _unreviewed_error(path, sha256, tuple(untrusted), unreviewed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # Exactly the types rated above: skops refuses any other it meets.
            estimator = sio.loads(data, trusted=untrusted)
        except Exception as exc:  # skops surfaces damaged content as many exception types
            _raise_for_version_warnings(caught, path)
            first = _first_line(exc)
            raise ModelError(f"{path.name} is a damaged or unsupported skops file: {first}.", path=path) from exc
    _raise_for_version_warnings(caught, path)
    acknowledged = bool(unreviewed) and allow_unreviewed
    if needs_trust:
        trust = TrustDecision(
            required=True,
            granted_by=granted_by,
            sha256=sha256,
            imports=tuple(sorted({*untrusted, *unreviewed})),
            allow_unreviewed=acknowledged,
            unreviewed=unreviewed,
        )
    elif not untrusted:
        trust = TrustDecision(required=False, granted_by="not required", sha256=sha256)
    else:
        trust = TrustDecision(required=True, granted_by=_GRANTED_BY_REVIEW, sha256=sha256, imports=tuple(untrusted))
    return SklearnModel(estimator, path=path, sha256=sha256, size_bytes=len(data), format="skops", trust=trust)


def _load_pickle(
    data: bytes, *, path: Path, sha256: str, trusted: frozenset[str], granted_by: str, allow_unreviewed: bool
) -> Model:
    scan = scan_pickle_bytes(data, name=path.name, path=path)
    if scan.refused:
        if scan.dangerous:
            reason = f"it imports {_listing(scan.dangerous)}, which can run commands or code"
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
        if scan.unreviewed:
            message = (
                f"{path.name} is a {scan.format} file that imports {_listing(scan.imports)}; "
                f"{_listing(scan.unreviewed)} {'is' if len(scan.unreviewed) == 1 else 'are'} not on Probity's "
                f"reviewed list; unpickling runs their code, so load it only if you trust its source, with "
                f"--trust-model {sha256} --allow-unreviewed."
            )
        else:
            message = (
                f"{path.name} is a {scan.format} file that imports {_listing(scan.imports) or 'nothing'}; "
                f"unpickling runs their code, so trust this exact file with --trust-model {sha256} "
                "only if you trust its source."
            )
        raise UntrustedModelError(message, path=path, sha256=sha256, imports=scan.imports)
    if scan.unreviewed and not allow_unreviewed:
        raise _unreviewed_error(path, sha256, scan.imports, scan.unreviewed)
    obj = _unpickle(data, scan, path, sha256=sha256, allow_unreviewed=allow_unreviewed)
    trust = TrustDecision(
        required=True,
        granted_by=granted_by,
        sha256=sha256,
        imports=scan.imports,
        allow_unreviewed=bool(scan.unreviewed) and allow_unreviewed,
        unreviewed=scan.unreviewed,
    )
    fmt = "pickle" if scan.format == "pickle" else "joblib"
    return SklearnModel(obj, path=path, sha256=sha256, size_bytes=len(data), format=fmt, trust=trust)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__).rstrip(".")


# Opcodes that change the object under them, and where that object sits just before
# the opcode runs: ("stack", i) is self.stack[i]; ("mark", -1) the top of the stack
# below the last MARK.
_MUTATING_OPCODES: dict[bytes, tuple[str, str, int]] = {
    pickle.BUILD: ("BUILD", "stack", -2),
    pickle.SETITEM: ("SETITEM", "stack", -3),
    pickle.APPEND: ("APPEND", "stack", -2),
    pickle.SETITEMS: ("SETITEMS", "mark", -1),
    pickle.APPENDS: ("APPENDS", "mark", -1),
    pickle.ADDITEMS: ("ADDITEMS", "mark", -1),
}


def _guarded_dispatch(dispatch: dict[int, Any]) -> dict[int, Any]:
    """A copy of an unpickler's dispatch table whose mutating opcodes refuse to change an
    object ``find_class`` returned (a class, a function, a module-level constant): the scan
    refuses such files, and the loader checks it again on the real objects."""
    guarded = dict(dispatch)
    for code, (how, where, index) in _MUTATING_OPCODES.items():
        original = dispatch[code[0]]

        def run(
            self: Any, _original: Any = original, _how: str = how, _where: str = where, _index: int = index
        ) -> None:
            try:
                target = self.stack[_index] if _where == "stack" else self.metastack[-1][_index]
            except IndexError:
                target = None  # the original opcode reports the damage
            name = self.admitted.get(id(target))
            if name is not None and name[1] is target:
                raise pickle_policy.PolicyRefusal(
                    Classification(name[0], DANGEROUS, f"{_how} would change {name[0]}, an object the file imports")
                )
            if _how == "BUILD" and len(self.stack) >= 2:
                # A booster's state goes to its library's native parser: checked as its file would be.
                check_state(target, self.stack[-1], getattr(self, "source_path", None) or Path("the model file"))
            _original(self)

        guarded[code[0]] = run
    return guarded


def _policy_find_class(unpickler: Any, module: str, name: str) -> Any:
    """``find_class`` of every Probity unpickler: the policy decides, as it did for the scan.

    Protocols 0-2 rename Python 2 names (``fix_imports``); the scanner rated both
    spellings, so both must pass here too.
    """
    eff_module, eff_name = module, name
    if getattr(unpickler, "proto", 0) < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            eff_module, eff_name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            eff_module = _compat_pickle.IMPORT_MAPPING[module]
    if (eff_module, eff_name) != (module, name) and pickle_policy.danger_reason(module, name) is not None:
        raise pickle_policy.PolicyRefusal(pickle_policy.classify(module, name))
    obj = pickle_policy.admit(eff_module, eff_name, allow_unreviewed=unpickler.allow_unreviewed)
    unpickler.admitted[id(obj)] = (f"{eff_module}.{eff_name}", obj)
    return obj


class RestrictedUnpickler(pickle._Unpickler):
    """A pickle unpickler whose every global is admitted by :func:`pickle_policy.admit`.

    The pure-Python unpickler, as joblib uses, so the protocol (for Python 2 names)
    is known in ``find_class``.  Persistent ids are refused (no ``persistent_load``),
    and no opcode may change an object ``find_class`` returned.
    """

    dispatch = _guarded_dispatch(pickle._Unpickler.dispatch)

    def __init__(self, file: Any, *, allow_unreviewed: bool, source_path: Path | None = None) -> None:
        super().__init__(file)
        self.allow_unreviewed = allow_unreviewed
        self.source_path = source_path
        self.admitted: dict[int, tuple[str, Any]] = {}

    def find_class(self, module: str, name: str) -> Any:
        return _policy_find_class(self, module, name)


def _restricted_joblib_load(data: bytes, *, allow_unreviewed: bool, source_path: Path | None = None) -> Any:
    """``joblib.load`` of in-memory bytes through joblib's own unpickler, with the policy's ``find_class``.

    joblib reads raw array bytes after each array wrapper and routes the nested pickles
    of object arrays through the outer unpickler's ``find_class``; the subclass is per
    call, nothing of joblib is patched.
    """
    from joblib.numpy_pickle import NumpyUnpickler
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    class _Restricted(NumpyUnpickler):  # type: ignore[misc]  # joblib ships no type information
        dispatch = _guarded_dispatch(NumpyUnpickler.dispatch)

        def find_class(self, module: str, name: str) -> Any:
            return _policy_find_class(self, module, name)

    with _validate_fileobject_and_memmap(io.BytesIO(data), "", None) as (fobj, _):
        unpickler = _Restricted("", fobj, True, mmap_mode=None)
        unpickler.allow_unreviewed = allow_unreviewed
        unpickler.source_path = source_path
        unpickler.admitted = {}
        return unpickler.load()


def _unpickle(data: bytes, scan: PickleScan, path: Path, *, sha256: str, allow_unreviewed: bool) -> Any:
    """Unpickle the very bytes that were hashed and scanned, the way the scan read them,
    admitting each global through the allowlist policy."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if scan.uses_joblib:
                # joblib's own reader: raw array bytes follow their wrappers in the stream.
                return_value = _restricted_joblib_load(data, allow_unreviewed=allow_unreviewed, source_path=path)
            else:
                unpickler = RestrictedUnpickler(io.BytesIO(data), allow_unreviewed=allow_unreviewed, source_path=path)
                return_value = unpickler.load()
        except pickle_policy.PolicyRefusal as exc:
            verdict = exc.verdict
            if verdict.status == UNREVIEWED:
                raise _unreviewed_error(path, sha256, scan.imports, (verdict.name,)) from None
            raise UnsafeModelError(
                f"{path.name} is refused: it imports {verdict.name}, which {verdict.reason}; "
                "Probity never loads such a file, even when trusted.",
                path=path,
                sha256=sha256,
                imports=scan.imports,
                dangerous=(verdict.name,),
            ) from None
        except ModelError:
            raise  # a checked state refused (engine.models.pickle_state): its own sentence
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

    version: str = sklearn.__version__  # scikit-learn ships no type information
    return version


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
