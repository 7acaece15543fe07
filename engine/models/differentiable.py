"""A torch view of a differentiable scikit-learn model, for the gradient explainers.

Gradient attributions need a model torch can differentiate.  Some scikit-learn
models are exactly that, written differently: a multi-layer perceptron, a
logistic regression or a linear regressor, optionally after per-column affine
scalers.  :func:`torch_view` rebuilds such a model as an ``nn.Sequential`` of
``nn.Linear`` layers and activations in float64 with the fitted weights — the
same function, not an approximation — so Integrated Gradients, saliency and
SmoothGrad work on the ``.skops`` or ``.joblib`` files auditors already have.

What is rebuilt
    - final step: ``MLPClassifier`` / ``MLPRegressor`` (identity, logistic,
      tanh or ReLU hidden layers), ``LogisticRegression``, and the linear
      regressors with a ``coef_`` vector (``LinearRegression``, ``Ridge``,
      ``Lasso``, ``ElasticNet``, ``SGDRegressor`` and kin);
    - steps before it in a ``Pipeline``: ``StandardScaler``, ``MinMaxScaler``,
      ``MaxAbsScaler`` and ``RobustScaler``, folded into the first layer (they
      are affine per column), and a ``SimpleImputer`` without indicator
      columns, which is the identity on the complete rows that gradient
      methods explain (a row with a missing value is refused before this).

The classifier's output is its logits: softmax of the last layer for a
multi-class model, one logit ``z`` read as ``[0, z]`` for a binary one (whose
probability is ``sigmoid(z)``), as :class:`~engine.models.torch_adapter.TorchModel`
expects.  Anything else — encoders, imputers, column transformers, trees —
is refused with the reason, because its gradient would not be the model's.
Every view is checked against the estimator's own predictions on the rows it
will explain before it is used (which would also catch, say, a one-vs-rest
logistic regression saved by an older scikit-learn).

torch is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AnalysisError
from engine.models.base import Model, Task
from engine.models.sklearn_adapter import SklearnModel

__all__ = ["torch_view", "check_view", "check_differentiable", "ViewRefused", "FIDELITY_TOLERANCE"]

#: Largest difference allowed between the view's and the estimator's predictions
#: (probabilities or values, relative to the values' scale for a regressor).
FIDELITY_TOLERANCE = 1e-8

_SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")
_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")


class ViewRefused(Exception):
    """The model has no exact torch view; the message says why, as a clause."""


def torch_view(model: Model, *, feature_names: Sequence[str]) -> tuple[Any, str]:
    """A :class:`~engine.models.torch_adapter.TorchModel` computing what ``model`` computes, and what it is.

    Parameters
    ----------
    model:
        A :class:`SklearnModel`; other adapters are refused.
    feature_names:
        The input columns, in the model's order, when the estimator was fitted
        without column names (otherwise its own ``feature_names_in_`` are used).

    Returns
    -------
    tuple
        The view, and a description such as ``"MLPClassifier (2 hidden layers,
        relu, one logit)"``.  Check it with :func:`check_view` before use.

    Raises
    ------
    ViewRefused
        When the model is not one of the rebuilt kinds (message: why).
    """
    from engine.models.torch_adapter import TorchModel

    layers, activation, logit_kind, columns, final = _plan(model, feature_names)
    module = _sequential(layers, activation)
    view = TorchModel(
        module,
        input_columns=columns,
        task=model.task,
        classes=model.classes,
        device="cpu",
        name=f"{model.name} (as torch)",
        path=model.path,
        sha256=model.sha256,
        size_bytes=model.size_bytes,
        trust=model.trust,
    )
    return view, f"{type(final).__name__} ({logit_kind})"


def check_differentiable(model: Model, *, feature_names: Sequence[str]) -> None:
    """Raise :class:`ViewRefused` unless :func:`torch_view` can rebuild ``model``; torch is not imported."""
    _plan(model, feature_names)


def _plan(
    model: Model, feature_names: Sequence[str]
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str, str, tuple[str, ...], Any]:
    """The view's layers (scalers folded in), activation, output kind, input columns and final step.

    Every reason a model has no view is found here, without torch, so the GUI can
    grey out the gradient methods with the very reason a run would give.
    """
    if not isinstance(model, SklearnModel):
        raise ViewRefused(f"it is a {model.format} model")
    estimator = model.estimator
    steps = list(getattr(estimator, "steps", None) or [("model", estimator)])
    final = steps[-1][1]
    n_in = getattr(final, "n_features_in_", None)
    shift, scale = _fold_scalers([s for _, s in steps[:-1]], n_in)
    layers, activation, logit_kind = _layers(final, model)
    weight0, bias0 = layers[0]
    # x_scaled = (x - shift) / scale, so W x_scaled + b = (W / scale) x + (b - W (shift / scale)).
    layers[0] = (weight0 / scale[None, :], bias0 - weight0 @ (shift / scale))
    columns = model.input_columns or tuple(str(c) for c in feature_names)
    if len(columns) != layers[0][0].shape[1]:
        raise ViewRefused(f"it takes {layers[0][0].shape[1]} columns but {len(columns)} were named")
    return layers, activation, logit_kind, tuple(columns), final


def _fold_scalers(scalers: Sequence[Any], n_in: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(shift, scale)`` with ``chain(x) = (x - shift) / scale`` for a chain of per-column affine scalers."""
    if n_in is None:
        raise ViewRefused("its last step has no n_features_in_")
    shift, scale = np.zeros(n_in), np.ones(n_in)
    for step in scalers:
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        name = type(step).__name__
        if name == "SimpleImputer" and not getattr(step, "add_indicator", False):
            # The identity on complete rows, the only rows gradient methods explain.
            continue
        if name not in _SCALERS:
            raise ViewRefused(
                f"its step {name} is not a per-column affine scaler (only {', '.join(_SCALERS)} and a "
                "SimpleImputer without indicators are)"
            )
        if name == "StandardScaler":
            mean = step.mean_ if step.with_mean else 0.0
            std = step.scale_ if step.with_std and step.scale_ is not None else 1.0
            a, c = np.broadcast_to(mean, n_in), np.broadcast_to(std, n_in)
        elif name == "MinMaxScaler":
            if getattr(step, "clip", False):
                raise ViewRefused("its MinMaxScaler clips, which is not differentiable at the bounds")
            # x * scale_ + min_  ==  (x - (-min_ / scale_)) / (1 / scale_)
            a, c = -step.min_ / step.scale_, 1.0 / step.scale_
        elif name == "MaxAbsScaler":
            a, c = np.zeros(n_in), step.scale_
        else:  # RobustScaler
            a = step.center_ if step.with_centering else np.zeros(n_in)
            c = step.scale_ if step.with_scaling else np.ones(n_in)
        a, c = np.asarray(a, dtype=np.float64), np.asarray(c, dtype=np.float64)
        if a.shape != (n_in,) or c.shape != (n_in,):
            raise ViewRefused(f"its {name} works on a different number of columns than the model")
        # Composing (x - shift) / scale, then (y - a) / c:  x -> (x - (shift + a * scale)) / (scale * c).
        shift, scale = shift + a * scale, scale * c
    return shift, scale


def _layers(final: Any, model: SklearnModel) -> tuple[list[tuple[np.ndarray, np.ndarray]], str, str]:
    """The final estimator's ``(W (out, in), b (out,))`` layers, hidden activation and output kind."""
    name = type(final).__name__
    if name in ("MLPClassifier", "MLPRegressor"):
        activation = final.activation
        if activation not in _ACTIVATIONS:
            raise ViewRefused(f"its hidden activation {activation!r} is not one torch rebuilds here")
        out = final.out_activation_
        if model.task is Task.CLASSIFICATION:
            k = len(model.classes or ())
            if not ((k == 2 and out == "logistic") or (k > 2 and out == "softmax")):
                raise ViewRefused(f"its output ({out} over {k} classes) is not a single-label classifier's")
            kind = "softmax logits" if k > 2 else "one logit"
        elif out != "identity" or final.n_outputs_ != 1:
            raise ViewRefused("it predicts more than one value")
        else:
            kind = "value"
        layers = [
            (np.asarray(w, dtype=np.float64).T.copy(), np.asarray(b, dtype=np.float64).copy())
            for w, b in zip(final.coefs_, final.intercepts_)
        ]
        hidden = len(layers) - 1
        return layers, activation, f"{hidden} hidden layer{'s' if hidden != 1 else ''}, {activation}, {kind}"
    coef = getattr(final, "coef_", None)
    if coef is None:
        raise ViewRefused(f"{name} is not a model whose gradient is rebuilt (MLPs and linear models are)")
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.atleast_1d(np.asarray(getattr(final, "intercept_", 0.0), dtype=np.float64))
    if model.task is Task.CLASSIFICATION:
        if name != "LogisticRegression":
            raise ViewRefused(f"its probabilities come from {name}, not from a softmax of linear logits")
        k = len(model.classes or ())
        if coef.shape != ((1 if k == 2 else k), coef.shape[-1]):
            raise ViewRefused(f"its coefficients have shape {coef.shape} for {k} classes")
        return [(coef.copy(), np.broadcast_to(intercept, coef.shape[0]).copy())], "identity", "linear logits"
    if coef.ndim == 2 and coef.shape[0] == 1:
        coef = coef[0]
    if coef.ndim != 1 or intercept.size != 1:
        raise ViewRefused("it predicts more than one value")
    return [(coef[None, :].copy(), intercept.copy())], "identity", "linear value"


def _sequential(layers: Sequence[tuple[np.ndarray, np.ndarray]], activation: str) -> Any:
    import torch

    act = {"identity": None, "logistic": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[activation]
    modules: list[Any] = []
    for i, (w, b) in enumerate(layers):
        # skip_init: no default initialisation, so torch's global generator is never drawn from.
        linear = torch.nn.utils.skip_init(  # type: ignore[no-untyped-call]  # torch leaves skip_init unannotated
            torch.nn.Linear, w.shape[1], w.shape[0], dtype=torch.float64
        )
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        linear.requires_grad_(False)
        modules.append(linear)
        if i < len(layers) - 1 and act is not None:
            modules.append(act())
    return torch.nn.Sequential(*modules)


def check_view(model: Model, view: Any, rows: pd.DataFrame) -> None:
    """Raise :class:`AnalysisError` unless ``view`` predicts what ``model`` predicts on ``rows``
    (to :data:`FIDELITY_TOLERANCE`; relative to the values' scale for a regressor)."""
    theirs = np.asarray(model.predict(rows), dtype=np.float64)
    ours = np.asarray(view.predict(rows), dtype=np.float64)
    scale = 1.0 if model.task is Task.CLASSIFICATION else max(1.0, float(np.abs(theirs).max()))
    gap = float(np.abs(ours - theirs).max()) / scale
    if not gap <= FIDELITY_TOLERANCE:
        raise AnalysisError(
            f"The torch view of {model.name} differs from the model's own predictions by {gap:.3g} on the "
            "explained rows, so its gradients would not be the model's."
        )
