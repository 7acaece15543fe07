"""Every analysis Probity can run, by name.  Adding one: a module and one entry in the tuple below."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine.errors import AnalysisError
from engine.explain import (
    clusters,
    dependence,
    fairness,
    gradients,
    groups,
    kernelshap,
    lime,
    linearshap,
    native,
    network,
    pdp,
    performance,
    permutation,
    proxies,
    shap_auto,
    surrogate,
    treeshap,
)
from engine.method import Method

__all__ = ["METHODS", "get_method", "refusal"]

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        performance.METHOD,
        permutation.METHOD,
        lime.METHOD,
        shap_auto.METHOD,
        treeshap.METHOD,
        linearshap.METHOD,
        kernelshap.METHOD,
        native.METHOD,
        pdp.METHOD,
        dependence.METHOD,
        surrogate.METHOD,
        groups.METHOD,
        fairness.METHOD,
        proxies.METHOD,
        clusters.METHOD,
        gradients.IG_METHOD,
        gradients.SALIENCY_METHOD,
        gradients.INPUT_X_GRADIENT_METHOD,
        gradients.SMOOTHGRAD_METHOD,
        network.METHOD,
    )
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise AnalysisError(f"Unknown analysis {name!r}; choose one of {', '.join(sorted(METHODS))}.") from None


# Methods that explain only some models, and the check each runs before it refuses (``None``: it can run).
# The checks read the model's structure only; none imports torch.
_REFUSALS: dict[str, Callable[..., str | None]] = {
    "treeshap": treeshap.refusal,
    "native": native.refusal,
    "network": network.refusal,
    **{
        m.name: gradients.refusal
        for m in (
            gradients.IG_METHOD,
            gradients.SALIENCY_METHOD,
            gradients.INPUT_X_GRADIENT_METHOD,
            gradients.SMOOTHGRAD_METHOD,
        )
    },
}


def refusal(name: str, model: Any, *, feature_names: Sequence[str] = ()) -> str | None:
    """Why method ``name`` cannot explain ``model``, as the sentence its run would raise, or ``None``.

    Parameters
    ----------
    name: a registry name (:data:`METHODS`).
    model: the open model (an :class:`~engine.models.base.Model`).
    feature_names: the feature columns chosen in the data, used when the model
        does not name its input columns itself.
    """
    get_method(name)
    check = _REFUSALS.get(name)
    if check is None:
        return None
    names = tuple(model.input_columns or feature_names or ())
    if not names:
        # Neither the model nor the roles name the inputs yet: count them from the estimator.
        n = getattr(model, "n_features_in", None) or getattr(getattr(model, "estimator", None), "n_features_in_", 0)
        names = tuple(f"x{i}" for i in range(int(n or 0)))
    return check(model, feature_names=names)
