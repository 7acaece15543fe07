"""Import ``skops.io`` without importing torch.

On import, skops builds its default list of trusted scikit-learn types with
``sklearn.utils.all_estimators()``, which walks every package of scikit-learn,
``sklearn.externals.array_api_compat.torch`` included, and that package imports
torch: a second or more before a skops model can even be inspected, for a
library that a scikit-learn model never uses.

:func:`skops_io` imports skops with torch made unimportable for the duration of
that one import.  ``pkgutil.walk_packages`` skips a package that raises
ImportError, so the walk simply leaves out the torch adapter; scikit-learn's
estimator list does not change (the adapter holds no estimator), and nothing is
cached: every import of torch after this one, by Probity or by scikit-learn's
array-API helpers, works as usual; other threads are never affected.  When torch is already imported (a torch
model is open) the import runs as it is.

The walk itself costs about half a second more.  While the installed scikit-learn is
the version :mod:`engine.models.sklearn_estimators` was taken from, skops is handed
that committed list (the same names, checked by ``tests/engine/test_startup.py``)
instead of walking the packages; the real ``all_estimators`` is put back as soon as
skops has its list.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

__all__ = ["skops_io"]

_LOCK = threading.Lock()


class _TorchUnavailable(importlib.abc.MetaPathFinder):
    """Refuses torch to the one thread importing skops; other threads import it as usual."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if (fullname == "torch" or fullname.startswith("torch.")) and threading.get_ident() == self.thread:
            raise ImportError(f"{fullname} is not imported while skops loads (engine.models.skops_import)")
        return None


def skops_io() -> ModuleType:
    """The ``skops.io`` module, imported without importing torch as a side effect."""
    loaded = sys.modules.get("skops.io")
    if loaded is not None:
        return loaded
    with _LOCK:
        if "torch" in sys.modules:
            return _import_skops_io()
        finder = _TorchUnavailable()
        sys.meta_path.insert(0, finder)
        try:
            with _known_estimators():
                module = _import_skops_io()
        finally:
            sys.meta_path.remove(finder)
        return module


def _import_skops_io() -> ModuleType:
    import skops.io

    module: ModuleType = skops.io  # skops ships no type information
    return module


@contextlib.contextmanager
def _known_estimators() -> Iterator[None]:
    """``sklearn.utils.all_estimators`` answers from the committed list while skops imports, if versions match."""
    import sklearn
    import sklearn.utils

    from engine.models.sklearn_estimators import ESTIMATORS, SKLEARN_VERSION

    if sklearn.__version__ != SKLEARN_VERSION:
        yield
        return
    # Stand-ins carry exactly what skops reads of each class: its module and its name.
    listed = [(name, type(name, (), {"__module__": module})) for module, name in ESTIMATORS]
    walk = sklearn.utils.all_estimators

    def committed(type_filter: Any = None) -> list[tuple[str, type]]:
        if type_filter is not None:  # skops asks for every estimator; anything else gets the real walk
            found: list[tuple[str, type]] = walk(type_filter=type_filter)  # scikit-learn ships no type information
            return found
        return list(listed)

    sklearn.utils.all_estimators = committed
    try:
        yield
    finally:
        sklearn.utils.all_estimators = walk
