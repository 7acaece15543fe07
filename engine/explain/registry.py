"""Every analysis Probity can run, by name.  Adding one: a module and one entry in the tuple below."""

from __future__ import annotations

from engine.errors import AnalysisError
from engine.explain import (
    clusters,
    gradients,
    groups,
    kernelshap,
    lime,
    linearshap,
    native,
    pdp,
    performance,
    permutation,
    shap_auto,
    surrogate,
    treeshap,
)
from engine.explain.base import Method

__all__ = ["METHODS", "get_method"]

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
        surrogate.METHOD,
        groups.METHOD,
        clusters.METHOD,
        gradients.IG_METHOD,
        gradients.SALIENCY_METHOD,
        gradients.INPUT_X_GRADIENT_METHOD,
        gradients.SMOOTHGRAD_METHOD,
    )
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise AnalysisError(
            f"Unknown analysis {name!r}; choose one of {', '.join(sorted(METHODS))}."
        ) from None
