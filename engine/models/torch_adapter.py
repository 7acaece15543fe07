"""Adapter for differentiable models: an in-memory ``torch.nn.Module``.

The module maps a float tensor ``(n, F)`` of the model's numeric raw input
columns, in the order given at construction, to logits ``(n, k)`` for a
classifier with ``k`` class labels or values ``(n,)`` for a regressor.
:meth:`TorchModel.predict` goes through the :class:`~engine.models.base.Model`
contract (softmax probabilities or values, as numpy); gradient explainers
use :meth:`TorchModel.forward_tensor`, which keeps the autograd graph.

torch is imported inside methods only, so importing this module is free.
Torch model files are read by :mod:`engine.models.torch_files`, which wraps
what it loads in this class.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.device import (
    MIN_BATCH_ROWS,
    choose_device,
    is_out_of_memory,
    out_of_memory_warning,
    release_device_memory,
    rows_within_memory,
)
from engine.errors import ModelError, ModelInputError
from engine.models.base import Model, Task, TrustDecision

__all__ = ["TorchModel", "PREDICT_BATCH_ROWS"]

#: Rows per forward pass in :meth:`TorchModel.predict`; bounds memory on large tables.  On a GPU the
#: passes are also bounded by its free memory, and halved on running out of it (:meth:`TorchModel.predict`).
PREDICT_BATCH_ROWS = 65_536
# Activations held per row and per parameter-width in a pass, against the estimate's misses (fused
# temporaries, the softmax, the copy back): bytes per row = itemsize * width * this.
_ACTIVATION_COPIES = 4


def _module_dtype(module: Any) -> Any:
    """The floating dtype of a module's first floating parameter or buffer (float32 if none)."""
    import torch

    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _module_device(module: Any) -> str:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return str(tensor.device)
    return "cpu"


def _detached(tensor: Any) -> Any:
    return None if tensor is None else tensor.detach()


def _device_key(device: Any) -> str:
    """``"cuda"`` and ``"cuda:0"`` name the same GPU when only the default one is used.

    Other devices keep their own spelling, so that a stand-in device (``"cpu:0"``
    in the tests, for a GPU) has a module copy of its own, apart from the CPU's.
    """
    import torch

    d = torch.device(device)
    if d.type == "cuda":
        return f"cuda:{torch.cuda.current_device() if d.index is None else d.index}"
    return str(d)


class TorchModel(Model):
    """A ``torch.nn.Module`` over numeric raw columns, used for predictions and gradients.

    Parameters
    ----------
    module:
        Maps a float tensor ``(n, F)`` to logits ``(n, k)`` (classification;
        a binary classifier may return one logit ``(n,)`` or ``(n, 1)`` for
        the second class, read as logits ``[0, z]``) or values ``(n,)`` /
        ``(n, 1)`` (regression).  It is put in eval mode (dropout off,
        batch-norm on running statistics) so rows never influence each other.
    input_columns:
        The ``F`` raw column names, in the order of the tensor's columns.
    task:
        ``Task.CLASSIFICATION`` or ``Task.REGRESSION`` (or their values).
    classes:
        Class labels in logit order (classification only, at least two).
    device:
        Where :meth:`predict` runs: ``"auto"``, ``"cpu"`` or ``"cuda"``
        (see :func:`engine.device.choose_device`).
    name:
        How messages name the model when it has no file.
    format:
        The file's kind (``"torchscript"``, ``"torch-export"`` ...; see
        :data:`engine.models.torch_files.TORCH_KINDS`), ``"torch"`` in memory.

    Notes
    -----
    The caller's module is never moved or converted: when a device or dtype
    other than its own is needed, a deep copy is made once and cached.

    On a GPU, :meth:`predict` passes at most as many rows as half the free
    memory holds (:func:`engine.device.rows_within_memory`); a pass that runs
    out of memory is made again with half the rows, down to
    :data:`engine.device.MIN_BATCH_ROWS`, and then the rest of the call runs
    on the CPU, which the next result's warnings say
    (:meth:`take_device_notes`).
    """

    def __init__(
        self,
        module: Any,
        *,
        input_columns: Sequence[str],
        task: Task | str,
        classes: Sequence[Any] | None = None,
        device: str = "auto",
        name: str | None = None,
        path: Path | None = None,
        sha256: str | None = None,
        size_bytes: int | None = None,
        trust: TrustDecision | None = None,
        format: str = "torch",
    ) -> None:
        import torch

        self._name = name
        self.path = path
        self.sha256 = sha256
        self.size_bytes = size_bytes
        self.format = format
        if trust is not None:
            self.trust = trust
        if not isinstance(module, torch.nn.Module):
            raise ModelError(
                f"The object given as the model {self.name} is a {type(module).__name__}, not a torch.nn.Module.",
                path=path,
            )
        try:
            self.task = Task(task)
        except ValueError:
            raise ModelError(
                f"The task of the model {self.name} must be 'classification' or 'regression', not {task!r}.",
                path=path,
            ) from None
        if isinstance(input_columns, str) or len(input_columns) == 0:
            raise ModelError(f"The model {self.name} needs a non-empty list of input columns.", path=path)
        columns = tuple(str(c) for c in input_columns)
        if len(set(columns)) != len(columns):
            raise ModelError(f"The input columns of the model {self.name} name a column twice.", path=path)
        self.input_columns = columns
        self.n_features_in = len(columns)
        if self.task is Task.CLASSIFICATION:
            labels = tuple(c.item() if isinstance(c, np.generic) else c for c in (classes or ()))
            if len(labels) < 2:
                raise ModelError(
                    f"The classifier {self.name} needs at least two class labels, in the order of its logits.",
                    path=path,
                )
            self.classes = labels
        else:
            if classes is not None:
                raise ModelError(f"The model {self.name} is a regressor, so it takes no class labels.", path=path)
            self.classes = None

        module.eval()
        self._module = module
        self._native_dtype = _module_dtype(module)
        self.device = choose_device(device)
        self._copies: dict[tuple[str, Any], Any] = {(_device_key(_module_device(module)), self._native_dtype): module}
        self._lock = threading.Lock()
        self._batch_cap: dict[str, int] = {}  # rows per pass a device ran out of memory above
        self._device_notes: list[str] = []
        self._check_output_shape()

    # -- identity ---------------------------------------------------------
    @property
    def name(self) -> str:
        if self.path is not None:
            return self.path.name
        return self._name or type(self).__name__

    @property
    def module(self) -> Any:
        """The wrapped ``torch.nn.Module`` (as given, in eval mode)."""
        return self._module

    @property
    def dtype(self) -> Any:
        """The module's own floating dtype, used by :meth:`predict`."""
        return self._native_dtype

    # -- torch side ---------------------------------------------------------
    def module_for(self, device: Any, dtype: Any) -> Any:
        """The module on ``device`` with ``dtype`` parameters (the original, or a cached copy)."""
        key = (_device_key(device), dtype)
        with self._lock:
            found = self._copies.get(key)
            if found is None:
                found = copy.deepcopy(self._module).to(device=device, dtype=dtype).eval()
                self._copies[key] = found
        return found

    def forward_tensor(self, x: Any, *, device: Any = None) -> Any:
        """Logits ``(n, k)`` or values ``(n,)`` for a float tensor ``x`` of shape ``(n, F)``.

        The module copy on ``device`` (default: ``x``'s device) and ``x``'s
        dtype is used and the autograd graph is kept, so gradients with
        respect to ``x`` can be taken.  A single-logit binary classifier's
        output ``z`` is returned as ``[0, z]``, whose softmax is
        ``[1 - sigmoid(z), sigmoid(z)]``.
        """
        if x.ndim != 2 or x.shape[1] != self.n_features_in:
            raise ModelInputError(
                f"The model {self.name} takes {self.n_features_in} input columns, but a tensor of shape "
                f"{tuple(x.shape)} was given.",
                path=self.path,
            )
        module = self.module_for(x.device if device is None else device, x.dtype)
        return self._shaped_output(module(x), x.shape[0])

    def bytes_per_row(self, dtype: Any = None, *, points: int = 1, grad: bool = False) -> float:
        """A generous estimate of the device memory one row's pass needs (``points`` inputs per row).

        The activations of a row are taken as wide as the input plus the
        parameters per input column (the sum of the layer widths of a
        multilayer perceptron, rounded up); a backward pass doubles them.
        """
        import torch

        dtype = self._native_dtype if dtype is None else dtype
        itemsize = torch.empty((), dtype=dtype).element_size()
        n_params = sum(int(p.numel()) for p in self._module.parameters())
        width = self.n_features_in + n_params / self.n_features_in
        return float(itemsize * width * _ACTIVATION_COPIES * (2 if grad else 1) * max(1, points))

    def take_device_notes(self) -> tuple[str, ...]:
        """The warnings about where predictions ran (a GPU out of memory) since last asked, each once; clears them.

        :meth:`engine.inputs.AuditInputs.provenance` puts them in the result
        it records next, so the fallback shows in ``results.json`` and the report.
        """
        with self._lock:
            notes = tuple(dict.fromkeys(self._device_notes))
            self._device_notes.clear()
        return notes

    def _plain_sequential(self, device: Any, dtype: Any) -> Any | None:
        """The module on ``device``/``dtype`` if it is an ``nn.Sequential`` opening with an ``nn.Linear``.

        Exact classes only (a subclass may override ``forward``) and no hooks
        anywhere (a hook may see or change a layer's input or output), so the
        layers can be taken apart without changing what the model computes.
        """
        import torch

        module = self.module_for(device, dtype)
        if type(module) is not torch.nn.Sequential or len(module) < 2 or type(module[0]) is not torch.nn.Linear:
            return None
        hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
        registry = torch.nn.modules.module
        if any(getattr(m, h, None) for m in module.modules() for h in hooks) or any(
            getattr(registry, f"_global{h}", None) for h in hooks
        ):
            return None
        return module

    def affine_head(self, device: Any, dtype: Any) -> tuple[Any, Any, Any] | None:
        """``(W, b, tail)`` when the module starts with a plain affine layer, else ``None``.

        For an ``nn.Sequential`` whose first layer is an ``nn.Linear``,
        ``forward_tensor(x) == tail(x @ W.T + b)``, where ``tail`` runs the
        remaining layers and shapes the output like :meth:`forward_tensor`.
        Integrated Gradients uses it: along a straight path the first layer's
        output is affine in the path position, so it is computed at the two
        ends only and its gradient is applied once per row.
        """
        module = self._plain_sequential(device, dtype)
        if module is None:
            return None
        first, rest = module[0], module[1:]

        def tail(z: Any) -> Any:
            return self._shaped_output(rest(z), z.shape[0])

        return first.weight.detach(), _detached(first.bias), tail

    def relu_layers(self, device: Any, dtype: Any) -> tuple[tuple[Any, Any], ...] | None:
        """The ``(W, b)`` of every layer when the module is ``Linear (ReLU Linear)*``, else ``None``.

        Such a network is piecewise linear, and its input gradient is a chain
        of weight matrices masked by which ReLUs are open; Integrated Gradients
        computes it that way, without building an autograd graph.
        """
        import torch

        module = self._plain_sequential(device, dtype)
        if module is None or len(module) % 2 == 0:
            return None
        layers = []
        for i, layer in enumerate(module):
            expected = torch.nn.Linear if i % 2 == 0 else torch.nn.ReLU
            if type(layer) is not expected:
                return None
            if i % 2 == 0:
                weight: Any = layer.weight
                layers.append((weight.detach(), _detached(layer.bias)))
        return tuple(layers)

    def _shaped_output(self, out: Any, n: int) -> Any:
        """The module's output checked and shaped as :meth:`forward_tensor` promises."""
        import torch

        if not isinstance(out, torch.Tensor):
            raise ModelInputError(
                f"The model {self.name} returned a {type(out).__name__}, not a tensor.", path=self.path
            )
        if self.task is Task.REGRESSION:
            if out.ndim == 2 and out.shape[1] == 1:
                out = out[:, 0]
            if out.shape != (n,):
                raise ModelInputError(
                    f"The regressor {self.name} returned an output of shape {tuple(out.shape)}, expected ({n},).",
                    path=self.path,
                )
            return out
        k = len(self.classes or ())
        if k == 2 and (out.shape == (n,) or out.shape == (n, 1)):
            z = out.reshape(n, 1)
            return torch.cat([torch.zeros_like(z), z], dim=1)
        if out.shape != (n, k):
            raise ModelInputError(
                f"The classifier {self.name} returned logits of shape {tuple(out.shape)}, expected ({n}, {k}) "
                f"for its {k} classes.",
                path=self.path,
            )
        return out

    def _check_output_shape(self) -> None:
        """One forward pass on a zero row, so a wrong shape is reported when the model is set up."""
        import torch

        x = torch.zeros((1, self.n_features_in), dtype=self._native_dtype, device=self.device)
        try:
            with torch.inference_mode():
                self.forward_tensor(x)
        except ModelInputError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelInputError(
                f"The model {self.name} cannot take its {self.n_features_in} input columns: {first.rstrip('.')}.",
                path=self.path,
            ) from exc

    # -- Model contract -----------------------------------------------------
    def frame_to_array(self, X: pd.DataFrame) -> np.ndarray:
        """The input columns of ``X`` as a float64 array ``(n, F)``.

        Raises :class:`ModelInputError` naming the first column that is not
        numeric (or boolean); missing values stay NaN.
        """
        for column in self.input_columns or ():
            dtype = X[column].dtype
            if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
                raise ModelInputError(
                    f"The column {column!r} is not numeric, but the torch model {self.name} takes numeric "
                    "columns only.",
                    path=self.path,
                )
        frame = X.loc[:, list(self.input_columns or ())]
        values: np.ndarray = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        # Copy-on-write frames hand out read-only views, which torch refuses to wrap.
        return values if values.flags.writeable else values.copy()

    def _predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        import torch

        values = self.frame_to_array(X)
        n = len(values)
        if n == 0:
            k = len(self.classes or ())
            return np.zeros((0, k)) if self.task is Task.CLASSIFICATION else np.zeros(0)
        device = self.device
        rows = self._rows_per_pass(device)
        outputs: list[np.ndarray] = []
        start = 0
        with torch.inference_mode():
            while start < n:
                try:
                    outputs.append(self._predict_pass(values[start : start + rows], device))
                except (RuntimeError, MemoryError) as exc:
                    if not is_out_of_memory(exc):
                        raise
                    del exc  # its traceback holds the pass's tensors
                    release_device_memory(device)
                    if rows > MIN_BATCH_ROWS:
                        rows = max(MIN_BATCH_ROWS, rows // 2)
                        with self._lock:
                            self._batch_cap[device] = rows  # later calls start from a size that fitted
                        continue
                    if device == "cpu":
                        raise ModelError(
                            f"The model {self.name} ran out of memory on the CPU even at {rows} rows per pass.",
                            path=self.path,
                        ) from None
                    with self._lock:
                        self._device_notes.append(
                            out_of_memory_warning(f"Predictions of the model {self.name}", device, rows)
                        )
                    device, rows = "cpu", PREDICT_BATCH_ROWS
                    continue
                start += rows
        return np.concatenate(outputs, axis=0)

    def _rows_per_pass(self, device: str) -> int:
        """:data:`PREDICT_BATCH_ROWS`, less on a GPU whose free memory holds fewer or that ran out above fewer."""
        with self._lock:
            cap = min(PREDICT_BATCH_ROWS, self._batch_cap.get(device, PREDICT_BATCH_ROWS))
        return rows_within_memory(device, self.bytes_per_row(), cap)

    def _predict_pass(self, values: np.ndarray, device: str) -> np.ndarray:
        """Probabilities or values for one pass of rows on ``device``, as float64 on the host."""
        import torch

        x = torch.as_tensor(values, dtype=self._native_dtype, device=device)
        out = self.forward_tensor(x, device=device)
        if self.task is Task.CLASSIFICATION:
            out = torch.softmax(out, dim=1)
        result: np.ndarray = out.to(device="cpu", dtype=torch.float64).numpy()
        return result
