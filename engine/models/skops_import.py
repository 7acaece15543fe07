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

skops also names each numpy and scipy ufunc it trusts by searching every loaded
module for it (``skops.io._utils.whichmodule``: a ``getattr`` on each of a few
hundred modules for each of some 800 ufuncs, a sixth of a second).  While skops
imports, that search answers from an index of the loaded modules' namespaces
(:class:`_ModuleIndex`), which gives the very module the search would: the first
in ``sys.modules`` order whose attribute is the object (modules that compute
attributes, with a module ``__getattr__`` or of their own type, are asked as the
search asks them).  The search is put back once skops has its lists.
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
            with _known_estimators(), _indexed_search():
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


class _ModuleIndex:
    """``whichmodule(obj, name)`` as skops's search gives it, from an index of ``sys.modules``.

    The search returns the first module, in ``sys.modules`` order, whose attribute
    ``name`` is ``obj`` (``"__main__"`` when none is).  For a plain module the
    attribute is its ``__dict__`` entry, so those are indexed by ``(name, id)``
    (only objects of the types asked about: the ufuncs skops names);
    modules that may compute attributes (a module ``__getattr__``, a module of
    another type, an object in ``sys.modules``) are asked with ``getattr`` as the
    search does, in order, before the indexed answer.  The index is rebuilt when
    ``sys.modules`` changes (a lazy import during the search).
    """

    def __init__(self) -> None:
        self._types: set[type] = set()  # the index holds objects of the types asked about (ufuncs)
        self._key: tuple[int, str] | None = None
        self._first: dict[tuple[str, int], int] = {}
        self._names: list[str] = []
        self._special: list[tuple[int, str, Any]] = []

    def _build(self) -> None:
        modules = list(sys.modules.copy().items())
        self._key = (len(modules), modules[-1][0] if modules else "")
        self._first = {}
        self._names = []
        self._special = []
        for position, (module_name, module) in enumerate(modules):
            self._names.append(module_name)
            if module_name in ("__main__", "__mp_main__") or module is None:
                continue
            namespace = getattr(module, "__dict__", None) if type(module) is ModuleType else None
            if not isinstance(namespace, dict) or "__getattr__" in namespace:
                self._special.append((position, module_name, module))
                continue
            types = self._types
            for attr, value in list(namespace.items()):
                if type(value) in types:
                    self._first.setdefault((attr, id(value)), position)

    def find(self, obj: Any, name: str) -> str | None:
        """The module the search would name, or ``None`` to leave this one to the search itself."""
        if "." in name:
            return None  # dotted names walk attributes: the search's own business
        modules = sys.modules
        key = (len(modules), next(reversed(modules.keys()), ""))
        if type(obj) not in self._types:
            self._types.add(type(obj))
            self._key = None
        if key != self._key:
            self._build()
        hit = self._first.get((name, id(obj)))
        if hit is not None and self._names[hit] not in modules:
            return None
        for position, module_name, module in self._special:
            if hit is not None and position > hit:
                break
            try:
                if getattr(module, name, None) is obj:
                    return module_name
            except (AttributeError, ImportError):
                continue
        return "__main__" if hit is None else self._names[hit]


class _IndexedTrustedTypes(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs ``skops.io._trusted_types`` (where skops builds its lists) with the indexed module search.

    skops's package imports that module before anything outside could replace the
    search, so the module's own loader is wrapped: the search is swapped in just
    before its body runs and put back right after.
    """

    _NAME = "skops.io._trusted_types"

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self._loader: Any = None

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self._NAME or threading.get_ident() != self.thread or self._loader is not None:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        import warnings

        utils: Any = sys.modules["skops.io._utils"]  # imported by the package before this module
        search = utils.whichmodule
        index = _ModuleIndex()

        def indexed(obj: Any, name: str) -> str:
            module_name = getattr(obj, "__module__", None)
            if module_name is not None:
                return str(module_name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # as the search silences numpy.core's
                found = index.find(obj, name)
            if found is None:
                answer: str = search(obj, name)
                return answer
            return found

        utils.whichmodule = indexed
        try:
            self._loader.exec_module(module)
        finally:
            utils.whichmodule = search


@contextlib.contextmanager
def _indexed_search() -> Iterator[None]:
    """skops's ``whichmodule`` answers from :class:`_ModuleIndex` while skops builds its lists."""
    finder = _IndexedTrustedTypes()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
