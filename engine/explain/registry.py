"""Every analysis Probity can run, by name.  Adding one: a module and one line here."""

from __future__ import annotations

from engine.errors import AnalysisError
from engine.explain.base import Method

__all__ = ["METHODS", "get_method"]

# The analyses are imported here, one line each.
METHODS: dict[str, Method] = {}


def _register(method: Method) -> None:
    METHODS[method.name] = method


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise AnalysisError(
            f"Unknown analysis {name!r}; choose one of {', '.join(sorted(METHODS))}."
        ) from None
