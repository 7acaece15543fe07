"""Network views: a differentiable model's first-layer weights per input column, and its hidden layers' activity.

Two figures of the network itself (the source documents' "network
visualisation": the weights of the first layer and the activations of each
layer), computed on a seeded sample of the table's rows:

* **First-layer weights.**  The first ``nn.Linear`` layer the network calls
  on its input: a matrix ``W`` ``(units, F)`` with one column per model input.
  The result keeps ``W`` in the units of the raw columns and the columns'
  standard deviation ``sd`` over the sampled rows; the views draw
  ``W · sd`` (:attr:`NetworkResult.scaled_weights`), the change in a unit's
  input when a column moves by one standard deviation, so columns measured
  in different units can be compared.
* **Activations.**  For each hidden layer (every ``nn.Linear`` but the last,
  with the activation module that follows it), the mean output of each unit
  over the sampled rows and, for ReLU layers, the share of rows on which the
  unit is inactive (outputs exactly 0).  A unit inactive on every sampled row
  is *dead*: it passes nothing on, which the result's warnings count per layer.
  The output layer is not a hidden layer and is left out.

Which models
    Exactly those the gradient methods explain (:func:`refusal` makes the same
    decision as :func:`engine.explain.gradients.refusal`): a
    :class:`~engine.models.torch_adapter.TorchModel`, or a scikit-learn MLP or
    linear model, optionally after per-column affine scalers, which
    :func:`engine.models.differentiable.torch_view` rebuilds exactly in torch.

How weights map back to raw columns
    A torch model takes its raw columns as they are, so its first layer's
    weights are per unit of those columns.  In a scikit-learn Pipeline only
    per-column affine scalers (``StandardScaler``, ``MinMaxScaler``,
    ``MaxAbsScaler``, ``RobustScaler``) and a ``SimpleImputer`` without
    indicators may precede the MLP; each maps one raw column to one input of the
    MLP, so every weight belongs to exactly one raw column.  The scaler is
    folded into the first layer (``W_raw = W_mlp / scale``), so the weights are
    per unit of the raw column and ``W_raw · sd`` is, for a ``StandardScaler``
    fitted on data like the sampled rows, the MLP's own weight on the
    standardised column.  One-hot encoders and other column-mixing steps are
    refused, as by the gradient methods: a weight on an encoded indicator is
    not a weight of a raw column.

How layers are observed
    A network that is an ``nn.Sequential`` (nested ones too) or a TorchScript
    module compiled from one is run layer by layer, each layer's output kept
    (the final output is checked against the network's own).  Any other
    ``nn.Module`` is run once with forward hooks on its innermost modules,
    which see every module call (not functional calls such as ``F.relu``:
    then the layer's pre-activation is shown, and said).  A TorchScript module
    that is not a Sequential takes no hooks inside its compiled code, and a
    ``torch.export`` program has no layer modules: what cannot be observed is
    named in :attr:`NetworkResult.notes` and the warnings.

Randomness
    Only the row sample, from ``ctx.rng("rows")``; everything else is exact.

torch is imported inside the functions only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engine.device import choose_device
from engine.errors import AnalysisError
from engine.inputs import AuditInputs
from engine.jobs import JobContext
from engine.method import Method
from engine.models.base import Model
from engine.models.differentiable import ViewRefused, check_differentiable, check_view, torch_view
from engine.models.torch_adapter import TorchModel
from engine.params import Param, device_param
from engine.results import Result, frozen_array, utc_now

__all__ = ["LayerActivation", "NetworkResult", "ACTIVATIONS", "RELU_KINDS", "refusal", "run", "METHOD"]

#: Module kinds (class names, or a TorchScript module's original name) read as a layer's activation.
ACTIVATIONS = frozenset(
    {
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "PReLU",
        "RReLU",
        "ELU",
        "SELU",
        "CELU",
        "GELU",
        "SiLU",
        "Mish",
        "Tanh",
        "Sigmoid",
        "Softplus",
        "Softsign",
        "Hardtanh",
        "Hardswish",
        "Hardsigmoid",
        "Tanhshrink",
        "LogSigmoid",
    }
)
#: Activations whose output is exactly 0 where the unit is inactive: their dead units are counted.
RELU_KINDS = frozenset({"ReLU", "ReLU6"})

# Rows per forward pass.
_ROWS_PER_PASS = 4096
# Rows of the sample a scikit-learn model's torch view is checked on against the model itself.
_VIEW_CHECK_ROWS = 2000


def _frozen(a: Any, dtype: Any = np.float64) -> np.ndarray:
    return frozen_array(a, dtype)


@dataclass(frozen=True)
class LayerActivation:
    """What one hidden layer's units did on the sampled rows.

    Attributes
    ----------
    name: ``"Layer 1"``, ``"Layer 2"`` ... in the order the network calls them.
    modules: the modules making it up, as called (``"0 Linear → 1 ReLU"``).
    activation: the activation module's kind (``"ReLU"``, ``"Tanh"`` ...), or
        ``"none"`` when no activation module follows the layer's ``Linear``
        (the values are then its pre-activations).
    n_units: the layer's width.
    mean: ``(n_units,)`` mean output of each unit over the sampled rows.
    inactive_share: ``(n_units,)`` share of the sampled rows on which each unit
        outputs exactly 0, for ReLU layers; ``None`` for other activations.
    """

    name: str = ""
    modules: str = ""
    activation: str = ""
    n_units: int = 0
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inactive_share: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _frozen(self.mean))
        if self.inactive_share is not None:
            object.__setattr__(self, "inactive_share", _frozen(self.inactive_share))

    @property
    def dead_units(self) -> np.ndarray:
        """Indices of the units inactive on every sampled row (empty for non-ReLU layers)."""
        if self.inactive_share is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.inactive_share >= 1.0)


@dataclass(frozen=True)
class NetworkResult(Result):
    """First-layer weights per input column and mean activation per hidden layer and unit.

    Attributes
    ----------
    feature_names: the ``F`` model input columns, in the model's order.
    first_layer: the first ``Linear`` layer's name and shape (``"0 Linear (6 → 16)"``);
        ``""`` when it could not be found (see ``notes``).
    n_first_units: its number of output units ``H``.
    weights: ``(min(H, max_units), F)`` its weights per unit of each raw column,
        units ``0 … max_units − 1``; ``(0, F)`` when unavailable.
    feature_std: ``(F,)`` population standard deviation of each column over the sampled rows.
    input_mapping: how the weights map to the raw columns, in one or two sentences.
    layers: one :class:`LayerActivation` per hidden layer, in call order.
    architecture: the layers the network called, e.g. ``"Linear (6 → 16) → ReLU → Linear (16 → 2)"``.
    rows: ``(n,)`` 0-based positions of the sampled rows (complete rows only).
    n_rows: ``n``.
    max_units: the most units per layer the views show (and the weights keep).
    notes: what is shown and what could not be observed, in sentences.
    """

    kind: ClassVar[str] = "network"
    feature_names: tuple[str, ...] = ()
    first_layer: str = ""
    n_first_units: int = 0
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    feature_std: np.ndarray = field(default_factory=lambda: np.zeros(0))
    input_mapping: str = ""
    layers: tuple[LayerActivation, ...] = ()
    architecture: str = ""
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_rows: int = 0
    max_units: int = 0
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", _frozen(self.weights))
        object.__setattr__(self, "feature_std", _frozen(self.feature_std))
        object.__setattr__(self, "rows", _frozen(self.rows, np.int64))
        super().__post_init__()

    @property
    def scaled_weights(self) -> np.ndarray:
        """``(units shown, F)`` weight × the column's standard deviation: what the views draw."""
        if self.weights.size == 0:
            return np.zeros(self.weights.shape)
        scaled: np.ndarray = self.weights * self.feature_std[None, :]
        return scaled

    def activation_grid(self) -> np.ndarray:
        """``(layers, most units shown)`` mean activations, NaN where a layer has fewer units."""
        return _grid([layer.mean for layer in self.layers], self.max_units)

    def inactive_grid(self) -> np.ndarray:
        """``(layers, most units shown)`` inactive shares, NaN for non-ReLU layers and missing units."""
        return _grid(
            [layer.inactive_share if layer.inactive_share is not None else np.zeros(0) for layer in self.layers],
            self.max_units,
        )

    def dead_unit_count(self) -> int:
        """Dead units over every hidden layer."""
        return int(sum(layer.dead_units.size for layer in self.layers))


def _grid(vectors: Sequence[np.ndarray], max_units: int) -> np.ndarray:
    width = min(max((len(v) for v in vectors), default=0), max(max_units, 0))
    grid = np.full((len(vectors), width), np.nan)
    for i, v in enumerate(vectors):
        k = min(len(v), width)
        grid[i, :k] = v[:k]
    return grid


# -- which models ---------------------------------------------------------------------------------------


def _refusal_text(model: Model, why: ViewRefused) -> str:
    return (
        f"Network views need a differentiable model (a torch model, or a scikit-learn MLP or linear model "
        f"after affine scalers); {model.name} is not one, because {why}."
    )


def refusal(model: Model, *, feature_names: Sequence[str]) -> str | None:
    """Why network views cannot show ``model`` (the sentence a run would raise), or ``None``.

    The same decision as the gradient methods' (:func:`engine.explain.gradients.refusal`), without torch.
    """
    if isinstance(model, TorchModel):
        return None
    try:
        check_differentiable(model, feature_names=feature_names)
    except ViewRefused as why:
        return _refusal_text(model, why)
    return None


def _pipeline_mapping(model: Model) -> str:
    """How a scikit-learn model's weights reach its raw columns (what :func:`torch_view` folded in)."""
    estimator = getattr(model, "estimator", None)
    steps = list(getattr(estimator, "steps", None) or [])
    final = type(steps[-1][1] if steps else estimator).__name__
    before = [
        type(s).__name__ for _, s in steps[:-1] if s is not None and not (isinstance(s, str) and s == "passthrough")
    ]
    scalers = [name for name in before if name != "SimpleImputer"]
    text = f"The {final} takes the raw columns as they are; each weight is per unit of its column."
    if scalers:
        listed = ", ".join(scalers)
        text = (
            f"The Pipeline's {listed} {'is' if len(scalers) == 1 else 'are'} affine per column, so each input "
            f"of the {final} is one raw column; {'it is' if len(scalers) == 1 else 'they are'} folded into the "
            "first layer (the weight divided by the column's scale), so each weight is per unit of the raw "
            "column, and times the column's standard deviation it compares with the network's own weight on "
            "the scaled column."
        )
    if "SimpleImputer" in before:
        text += " The SimpleImputer changes no complete row, and only complete rows are used."
    return text


# -- observing the layers ---------------------------------------------------------------------------------


@dataclass
class _Record:
    """One module call: its name, kind, the module, whether it took the raw input, and its output."""

    name: str
    kind: str
    module: Any
    takes_input: bool
    output: Any


def _kind(module: Any) -> str:
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        return str(getattr(module, "original_name", type(module).__name__))
    return type(module).__name__


def _unwrap(module: Any) -> Any:
    """The network inside Probity's own adapters (probabilities read as logits, an exported program)."""
    while type(module).__module__ == "engine.models.torch_files" and hasattr(module, "inner"):
        module = module.inner
    return module


def _chain(module: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """The steps an ``nn.Sequential`` (or a TorchScript one) runs, nested ones unrolled; else the module itself."""
    import torch

    plain = type(module) is torch.nn.Sequential
    scripted = isinstance(module, torch.jit.ScriptModule) and _kind(module) == "Sequential"
    if not (plain or scripted):
        return [(prefix or _kind(module), module)]
    steps: list[tuple[str, Any]] = []
    for name, child in module.named_children():
        steps += _chain(child, f"{prefix}.{name}" if prefix else name)
    return steps


class _Observer:
    """Runs the network on a batch and returns every layer call it can see, in call order."""

    def __init__(self, core: Any) -> None:
        import torch

        self.core = core
        self.steps = _chain(core)
        self.scripted = isinstance(core, torch.jit.ScriptModule)
        graph = isinstance(core, torch.fx.GraphModule)
        self.mode = "chain" if len(self.steps) > 1 else "graph" if graph else "opaque" if self.scripted else "hooks"

    def __call__(self, x: Any) -> tuple[list[_Record], Any]:
        if self.mode == "chain":
            records: list[_Record] = []
            h = x
            for name, step in self.steps:
                out = step(h)
                records.append(_Record(name, _kind(step), step, h is x, out))
                h = out
            return records, h
        if self.mode == "opaque":
            return [], self.core(x)
        if self.mode == "graph":
            return _graph_records(self.core, x)
        return self._hooked(x)

    def _hooked(self, x: Any) -> tuple[list[_Record], Any]:
        records: list[_Record] = []
        me = threading.get_ident()
        handles = []

        def hook(name: str) -> Any:
            def record(module: Any, args: Any, output: Any) -> None:
                # Another thread may run the same module copy (a gradient method): its calls are not ours.
                if threading.get_ident() == me:
                    first = args[0] if args else None
                    records.append(_Record(name, _kind(module), module, first is x, output))

            return record

        try:
            for name, module in self.core.named_modules():
                if name and not any(True for _ in module.children()):
                    handles.append(module.register_forward_hook(hook(name)))
            out = self.core(x)
        finally:
            for handle in handles:
                handle.remove()
        return records, out


# ATen operators of a graph (a torch.export program) read as module kinds.
_GRAPH_KINDS = {
    "linear": "Linear",
    "relu": "ReLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "gelu": "GELU",
    "silu": "SiLU",
    "mish": "Mish",
    "elu": "ELU",
    "selu": "SELU",
    "celu": "CELU",
    "leaky_relu": "LeakyReLU",
    "softplus": "Softplus",
    "hardtanh": "Hardtanh",
    "hardswish": "Hardswish",
    "hardsigmoid": "Hardsigmoid",
}


@dataclass(frozen=True)
class _GraphLinear:
    """A linear operator of a graph, standing in for its ``nn.Linear`` (the weight is what is read)."""

    weight: Any


def _graph_records(gm: Any, x: Any) -> tuple[list[_Record], Any]:
    """Every linear and activation operator a graph module (a ``torch.export`` program) runs on ``x``."""
    import torch

    records: list[_Record] = []

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node: Any) -> Any:
            out = super().run_node(node)
            if node.op == "call_function":
                target = node.target
                name = str(getattr(target, "__name__", target)).split(".")[0]
                kind = _GRAPH_KINDS.get(name.rstrip("_"))
                if kind is not None:
                    args, _ = self.fetch_args_kwargs_from_env(node)
                    module = _GraphLinear(args[1]) if kind == "Linear" and len(args) > 1 else None
                    source = node.args[0] if node.args else None
                    takes = getattr(source, "op", "") == "placeholder"
                    records.append(_Record(node.name, kind, module, takes, out))
            return out

    out = Recorder(gm).run(x)
    return records, out


def _two_d(t: Any, n: int) -> bool:
    import torch

    return isinstance(t, torch.Tensor) and t.ndim == 2 and t.shape[0] == n


@dataclass(frozen=True)
class _Plan:
    """Which records hold the first layer and each hidden layer's output, read from the first batch."""

    kinds: tuple[str, ...]
    first: int | None
    layers: tuple[tuple[int, str, str], ...]  # (record index, modules, activation)
    architecture: str


def _plan(records: list[_Record], n: int, n_inputs: int) -> tuple[_Plan, list[str]]:
    """What the records of the first batch hold, and what limits the views (sentences)."""
    notes: list[str] = []
    linear = [i for i, r in enumerate(records) if r.kind == "Linear" and _two_d(r.output, n)]
    first: int | None = None
    if linear:
        r = records[linear[0]]
        weight = getattr(r.module, "weight", None)
        if weight is None or tuple(weight.shape)[1:] != (n_inputs,):
            notes.append(
                f"The first Linear layer ({r.name}) does not take the {n_inputs} input columns, so no first-layer "
                "weights are shown."
            )
        else:
            first = linear[0]
            if not r.takes_input:
                before = ", ".join(f"{q.name} {q.kind}" for q in records[: linear[0]]) or "a step no module makes"
                notes.append(
                    f"The first Linear layer ({r.name}) takes the input after {before}, so its weights are per "
                    "unit of that step's output, not of the raw columns."
                )
    layers: list[tuple[int, str, str]] = []
    for k in range(len(linear) - 1):
        segment = range(linear[k], linear[k + 1])
        acts = [i for i in segment if records[i].kind in ACTIVATIONS and _two_d(records[i].output, n)]
        at = acts[-1] if acts else linear[k]
        modules = " → ".join(f"{records[i].name} {records[i].kind}" for i in segment)
        layers.append((at, modules, records[at].kind if acts else "none"))
        if not acts:
            notes.append(
                f"No activation module follows the Linear layer {records[linear[k]].name}, so layer {k + 1} shows "
                "its outputs before any activation (an activation called as a function is not seen)."
            )
    parts = []
    for r in records:
        weight = getattr(r.module, "weight", None) if r.kind == "Linear" else None
        if weight is not None and weight.ndim == 2:
            parts.append(f"Linear ({weight.shape[1]} → {weight.shape[0]})")
        else:
            parts.append(r.kind)
    plan = _Plan(tuple(r.kind for r in records), first, tuple(layers), " → ".join(parts))
    return plan, notes


# -- the analysis ---------------------------------------------------------------------------------------


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AnalysisError(f"The {what} must be a whole number of at least {minimum}, not {value!r}.")
    return int(value)


def run(
    inputs: AuditInputs,
    *,
    ctx: JobContext,
    max_rows: int | None = 2000,
    max_units: int = 64,
    device: str = "auto",
) -> NetworkResult:
    """First-layer weights per input column and mean activation per hidden layer and unit.

    Parameters
    ----------
    inputs:
        Data, roles and a differentiable model (see :func:`refusal`); no target is needed.
    ctx:
        Seed (the row sample, ``ctx.rng("rows")``), progress and cancel (between batches).
    max_rows:
        Sample this many rows of the table (``None``: every row).  Rows with a
        missing or infinite input are left out, and said so.
    max_units:
        The most units per layer the views show; the first layer's weights are
        kept for units ``0 … max_units − 1``.  Means, inactive shares and dead
        units are computed for every unit.
    device:
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    NetworkResult
    """
    import torch

    from engine.parallel import job_threads

    started = utc_now()
    if max_rows is not None:
        max_rows = _whole(max_rows, "row limit", 1)
    max_units = _whole(max_units, "number of units shown per layer", 1)
    source = inputs.dataset.name if inputs.dataset is not None else "the data"
    model, view = inputs.model, None
    if not isinstance(model, TorchModel):
        try:
            model, view = torch_view(model, feature_names=inputs.roles.features)
        except ViewRefused as why:
            raise AnalysisError(_refusal_text(inputs.model, why)) from None
    features = tuple(model.input_columns or ())
    model.check_input(inputs.frame, source=source)
    warn: list[str] = []
    limits: list[str] = []  # what the views cannot show: in the notes and the warnings
    notes: list[str] = []  # what they show, beyond the mapping

    n_total = len(inputs.frame)
    positions = np.arange(n_total, dtype=np.int64)
    if max_rows is not None and max_rows < n_total:
        positions = np.sort(ctx.rng("rows").choice(n_total, size=max_rows, replace=False)).astype(np.int64)
        warn.append(f"The network views were computed on a random sample of {max_rows:,} of the {n_total:,} rows.")
    x_np = model.frame_to_array(inputs.frame.iloc[positions])
    complete = np.isfinite(x_np).all(axis=1)
    if not complete.any():
        raise AnalysisError(
            f"Every row of {source} looked at has a missing or infinite input value, so the network cannot be "
            "run on any of them."
        )
    if not complete.all():
        dropped = int((~complete).sum())
        warn.append(
            f"{dropped:,} of the {positions.size:,} rows were left out because they have a missing or infinite "
            "input value."
        )
        positions, x_np = positions[complete], x_np[complete]
    if view is not None:
        check_view(inputs.model, model, inputs.frame.iloc[positions[:_VIEW_CHECK_ROWS]])

    device_name = choose_device(device)
    core = _unwrap(model.module_for(device_name, model.dtype))
    observer = _Observer(core)
    n, F = x_np.shape
    with np.errstate(all="ignore"):
        feature_std = x_np.std(axis=0)

    plan: _Plan | None = None
    sums: list[Any] = []
    zeros: list[Any] = []
    widths: list[int] = []
    previous = torch.get_num_threads()
    if device_name.startswith("cpu"):
        torch.set_num_threads(job_threads())
    try:
        with torch.inference_mode():
            for start in range(0, n, _ROWS_PER_PASS):
                ctx.check_cancelled()
                ctx.progress(start / n, f"Network views: {start:,} of {n:,} rows")
                stop = min(start + _ROWS_PER_PASS, n)
                x = torch.as_tensor(x_np[start:stop], dtype=model.dtype, device=device_name)
                records, out = observer(x)
                if plan is None:
                    if observer.mode == "chain" and not _same_output(out, core(x)):
                        observer.mode, records = "opaque", []
                        limits.append(
                            "Running the Sequential layer by layer did not reproduce its output, so its layers "
                            "are not shown."
                        )
                    plan, found = _plan(records, stop - start, F)
                    limits += found
                    widths = [int(records[i].output.shape[1]) for i, _, _ in plan.layers]
                    sums = [torch.zeros(w, dtype=torch.float64, device=device_name) for w in widths]
                    zeros = [torch.zeros(w, dtype=torch.float64, device=device_name) for w in widths]
                elif tuple(r.kind for r in records) != plan.kinds:
                    raise AnalysisError(
                        f"The network {model.name} called different layers on different rows, so its layers "
                        "cannot be averaged over the rows."
                    )
                for k, (i, _, _) in enumerate(plan.layers):
                    h = records[i].output.to(torch.float64)
                    sums[k] += h.sum(dim=0)
                    zeros[k] += (h == 0).to(torch.float64).sum(dim=0)
        ctx.check_cancelled()
        ctx.progress(1.0, f"Network views: {n:,} of {n:,} rows")
    finally:
        torch.set_num_threads(previous)
    assert plan is not None  # n >= 1

    first_layer, n_first, weights = "", 0, np.zeros((0, F))
    if plan.first is not None:
        module = records[plan.first].module
        w = module.weight.detach().to(device="cpu", dtype=torch.float64).numpy()
        first_layer = f"{records[plan.first].name} Linear ({F} → {w.shape[0]})"
        n_first, weights = int(w.shape[0]), w[:max_units]
    layers = []
    for k, (_, modules, activation) in enumerate(plan.layers):
        mean = (sums[k] / n).cpu().numpy()
        share = (zeros[k] / n).cpu().numpy() if activation in RELU_KINDS else None
        layers.append(
            LayerActivation(
                name=f"Layer {k + 1}",
                modules=modules,
                activation=activation,
                n_units=widths[k],
                mean=mean,
                inactive_share=share,
            )
        )

    if observer.mode == "opaque" and not limits:
        limits.append(
            f"The network {model.name} is a TorchScript module that is not an nn.Sequential: its layers run inside "
            "compiled code, which takes no forward hooks, so neither its first-layer weights nor its activations "
            "can be shown."
        )
    elif plan.first is None and not limits:
        limits.append(
            f"The network {model.name} calls no nn.Linear module on its inputs (a torch.export program, or "
            "layers written as functions), so no first-layer weights or hidden layers can be shown."
        )
    elif plan.first is not None and not layers:
        notes.append(
            "The model has no hidden layer: its only Linear layer is the output layer, whose weights are shown."
        )
    if plan.first is None and not layers:
        raise AnalysisError(" ".join(limits))
    mapping = (
        _pipeline_mapping(inputs.model)
        if view is not None
        else ("The network takes the raw columns as they are; each weight is per unit of its column.")
    )
    if plan.first is not None and n_first > max_units:
        notes.append(f"Units 0 to {max_units - 1} of the first layer's {n_first} are shown.")
    wide = [layer.name for layer in layers if layer.n_units > max_units]
    if wide:
        notes.append(
            f"{', '.join(wide)} {'has' if len(wide) == 1 else 'have'} more than {max_units} units; the views show "
            f"the first {max_units}, and the figures below count every unit."
        )
    for layer in layers:
        dead = layer.dead_units.size
        if dead:
            warn.append(
                f"{layer.name} ({layer.activation}) has {dead} of {layer.n_units} units inactive on every sampled "
                f"row (dead units: they pass nothing on to the next layer)."
            )
    warn += limits

    parameters: dict[str, Any] = {
        "max_rows": max_rows,
        "max_units": max_units,
        "device": device_name,
        "n_rows": int(n),
        "observed_by": observer.mode,
    }
    if view is not None:
        parameters["differentiable_view"] = view
    return NetworkResult(
        provenance=inputs.provenance(
            method=METHOD.name, parameters=parameters, ctx=ctx, started_at=started, warnings=warn
        ),
        feature_names=features,
        first_layer=first_layer,
        n_first_units=n_first,
        weights=weights,
        feature_std=feature_std,
        input_mapping=mapping,
        layers=tuple(layers),
        architecture=plan.architecture,
        rows=positions,
        n_rows=int(n),
        max_units=max_units,
        notes=(*limits, *notes),
    )


def _same_output(a: Any, b: Any) -> bool:
    import torch

    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
        return False
    scale = float(b.abs().max()) if b.numel() else 0.0
    return bool(torch.allclose(a, b, rtol=1e-5, atol=1e-6 * max(1.0, scale)))


METHOD = Method(
    name="network",
    title="Network views (weights and activations)",
    short_title="Network views",
    run=run,
    summary=(
        "A differentiable model's first-layer weights per input column (times the column's standard deviation) "
        "and the mean activation of every hidden unit on a sample of rows, with ReLU units that never activate."
    ),
    description=(
        "Network views show the network itself. The first layer's weights are drawn per input column, each "
        "multiplied by the column's standard deviation over the sampled rows, which is the change in a unit's "
        "input when the column moves by one standard deviation; a scaler in a Pipeline is folded into the weights "
        "first, so every weight belongs to one raw column (Pipelines that encode or mix columns are refused). "
        "For every hidden layer, the mean output of each unit over the sampled rows is drawn, and for ReLU layers "
        "the share of rows on which each unit outputs zero; a unit that outputs zero on every row is dead. Layers "
        "are observed by running an nn.Sequential (or a TorchScript one) layer by layer, or by forward hooks on "
        "the modules of any other network; what cannot be observed is stated."
    ),
    params=(
        Param(
            "max_rows",
            "int",
            2000,
            label="Rows used",
            minimum=1,
            none="every row",
            unit="rows",
            basic=True,
            help="Average the activations over a random sample of this many rows.",
        ),
        Param(
            "max_units",
            "int",
            64,
            label="Units shown per layer",
            minimum=1,
            unit="units",
            basic=True,
            help="The most units of each layer the heatmaps show; the figures count every unit.",
        ),
        device_param(),
    ),
    result=NetworkResult,
    needs=frozenset({"differentiable model"}),
    view="network",
    samples="max_rows",
)
