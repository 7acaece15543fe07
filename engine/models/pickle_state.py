"""States a pickled object hands to native code, checked before its ``__setstate__`` runs.

A pickled XGBoost or LightGBM booster (inside ``XGBClassifier``, ``LGBMClassifier``
and the other scikit-learn wrappers) carries its model as bytes or text that the
library's ``__setstate__`` gives straight to its native parser.  Those classes are
on the reviewed list (:mod:`engine.models.pickle_policy`) only because Probity's
unpicklers (:mod:`engine.models.loading`) call :func:`check_state` on the state of
every ``BUILD`` first: the model inside must pass the same checks as a booster file
of that library (:func:`engine.models.booster_adapter.read_booster`), or loading
stops with one sentence and the library never sees the bytes.

The checks read; they import neither library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from engine.errors import ModelError

__all__ = ["STATE_CHECKS", "checked_classes", "check_state"]


def _xgboost_booster(state: Any, path: Path) -> None:
    """XGBoost's pickled booster: ``{"handle": UBJSON {"Config": ..., "Model": <the saved model>}}``."""
    from engine.limits import current_limits
    from engine.models.booster_adapter import _read_xgboost, read_ubjson

    what = f"the XGBoost booster pickled in {path.name}"
    if not isinstance(state, dict) or "handle" not in state:
        raise ModelError(f"{what[:1].upper()}{what[1:]} has no model bytes where XGBoost keeps them.", path=path)
    raw = state["handle"]
    if raw is None:
        return  # an unfitted booster: nothing for the library to parse
    if not isinstance(raw, (bytes, bytearray)):
        raise ModelError(f"The model of {what} is a {type(raw).__name__}, not bytes.", path=path)
    try:
        doc = read_ubjson(bytes(raw), max_depth=current_limits().max_json_depth)
    except ValueError as exc:
        raise ModelError(
            f"The model of {what} is not the UBJSON document XGBoost 2 and later pickle ({exc}), so it is not "
            "loaded; save the booster with save_model and open the .ubj or .json file instead.",
            path=path,
        ) from None
    if not isinstance(doc, dict) or set(doc) != {"Config", "Model"}:
        raise ModelError(f"The model of {what} does not hold exactly a Config and a Model.", path=path)
    if not _plain_config(doc["Config"]):
        raise ModelError(
            f"The training configuration of {what} holds values that are not text, flags or numbers.", path=path
        )
    # The model part is what save_model writes: checked as a .ubj file would be.
    _read_xgboost(doc["Model"], path=path, container="UBJSON")


def _plain_config(value: Any, depth: int = 0) -> bool:
    """Whether XGBoost's configuration is objects and lists of text, flags and numbers (what it writes)."""
    if depth > 32:
        return False
    if isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_config(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_config(v, depth + 1) for v in value)
    return False


def _lightgbm_booster(state: Any, path: Path) -> None:
    """LightGBM's pickled booster: its model text under ``_handle`` (``handle`` before 4.0)."""
    from engine.models.booster_adapter import read_booster

    what = f"the LightGBM booster pickled in {path.name}"
    if not isinstance(state, dict):
        raise ModelError(f"{what[:1].upper()}{what[1:]} has no state LightGBM could read.", path=path)
    text = state.get("_handle", state.get("handle"))
    if text is None:
        return
    if not isinstance(text, str):
        raise ModelError(f"The model of {what} is a {type(text).__name__}, not model text.", path=path)
    read_booster(text.encode("utf-8"), path=path, family="lightgbm")


#: Class (as pickle names it) -> the check of the state its ``__setstate__`` is given.
STATE_CHECKS: Final[Mapping[str, Callable[[Any, Path], None]]] = MappingProxyType(
    {
        "xgboost.core.Booster": _xgboost_booster,
        "lightgbm.basic.Booster": _lightgbm_booster,
    }
)


def checked_classes() -> frozenset[str]:
    """The classes whose pickled state is checked before it is set."""
    return frozenset(STATE_CHECKS)


def check_state(obj: Any, state: Any, path: Path) -> None:
    """Check ``state`` before it is set on ``obj`` (a ``BUILD``), if ``obj``'s class hands it to native code.

    Raises
    ------
    ModelError
        The state is not one the library's own checks would pass (one sentence).
    """
    cls = type(obj)
    check = STATE_CHECKS.get(f"{cls.__module__}.{cls.__qualname__}")
    if check is not None:
        check(state, path)
