"""The symbolic values the pickle machine computes with, what reaches what among them, and what a scan found.

Constants are kept; globals become :class:`Global` (never imported), calls
:class:`Obj` or :class:`DType`, and plain data the scan does not need the
single :data:`OPAQUE`.  :class:`Graph` answers "does this value reach a joblib
array wrapper, or a global that is not reviewed?" incrementally, so the scan
stays linear in the file size; :class:`Findings` collects what every machine of
one file found and counts the steps against the budget.
"""

from __future__ import annotations

from typing import Any

from engine.models import pickle_policy
from engine.models.pickle_policy import DANGEROUS, REVIEWED

__all__ = [
    "K_PLAIN",
    "K_WRAPPER",
    "K_DTYPE",
    "K_RECONSTRUCTOR",
    "K_NEWOBJ",
    "K_NEWOBJ_EX",
    "K_OBJECT",
    "K_UNRESOLVED",
    "K_PARTIAL",
    "Global",
    "Obj",
    "DType",
    "Opaque",
    "OPAQUE",
    "Key",
    "hashable_key",
    "CONTAINERS",
    "Budget",
    "Graph",
    "Findings",
]

#: What a global is to the machine: any other global, or one whose calls it models.
(K_PLAIN, K_WRAPPER, K_DTYPE, K_RECONSTRUCTOR, K_NEWOBJ, K_NEWOBJ_EX, K_OBJECT, K_UNRESOLVED, K_PARTIAL) = range(9)


class Global:
    """A global the stream imported (a class or function object at load time)."""

    __slots__ = ("full", "kind", "status")

    def __init__(self, full: str, kind: int, status: str = DANGEROUS) -> None:
        self.full = full
        self.kind = kind
        self.status = status


class Obj:
    """The result of a call or constructor.

    ``wrapper``: 0 certainly not a joblib array wrapper, 1 certainly one,
    2 perhaps one, ``None`` to be decided from ``args`` when it matters.
    """

    __slots__ = ("args", "attrs", "wrapper", "partial")

    def __init__(self, args: Any = None, wrapper: int | None = None) -> None:
        self.args = args
        self.attrs: dict[str, Any] = {}
        self.wrapper = wrapper
        self.partial = False  # a functools.partial: what it binds must be reviewed


class DType:
    """A ``numpy.dtype(typestr, align, copy)`` call, with the state BUILD gives it."""

    __slots__ = ("args", "state")

    def __init__(self, args: Any) -> None:
        self.args = args
        self.state: Any = None


class Opaque:
    """Bytes, long strings, buffers, arrays: plain data the scan does not need."""

    __slots__ = ()


OPAQUE = Opaque()


class Key:
    """A dictionary key that is not a scalar, kept by identity (the graph follows it)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def hashable_key(key: Any) -> Any:
    # Only scalar keys matter (attribute names, "_sklearn_version"); hashing a
    # crafted, deeply nested tuple could exhaust the C stack, so it is never tried.
    if key is None or isinstance(key, (str, int, float)):
        return key
    return Key(key)


# ---------------------------------------------------------------------------
# What reaches what: incremental, so the scan stays linear in the file size
# ---------------------------------------------------------------------------

CONTAINERS = (list, tuple, dict, Obj, DType)


class Budget(Exception):
    """The scan took more steps than the limit allows."""


class _Node:
    """Reachability facts about one container or object of the symbolic machine.

    ``m``: it reaches a *mention* -- the joblib array wrapper class, an unresolved
    global, or an object that is or may be a wrapper.  ``u``: it reaches a global
    that is not reviewed.  ``t``: everything it reaches was tainted (may be turned
    into a wrapper).  All three only ever switch on.
    """

    __slots__ = ("value", "parents", "m", "u", "t")

    def __init__(self, value: Any) -> None:
        self.value = value  # keeps the value alive, so its id() is never reused
        self.parents: list[_Node] = []
        self.m = isinstance(value, Obj) and value.wrapper in (1, 2)
        self.u = False
        self.t = False


def _children(value: Any) -> tuple[Any, ...] | list[Any]:
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, Obj):
        return (value.args, *value.attrs.values())
    if isinstance(value, DType):
        return (value.args, value.state)
    return ()


class Graph:
    """The containment graph of the symbolic values, with flags propagated as it grows.

    Asking "does this value reach a wrapper?" by walking the value each time is
    quadratic: a file can make a thousand calls on one large list for a few bytes
    each.  Here a value is walked once, when a question first reaches it; later
    additions (``APPEND``, ``SETITEM``, ``BUILD`` ...) are recorded as single
    edges, and a flag that switches on travels up the recorded parents once.  Every
    node and edge is therefore handled a bounded number of times, and each such
    step is counted against the scan's budget.
    """

    def __init__(self, findings: Findings) -> None:
        self.f = findings
        self.nodes: dict[int, _Node] = {}

    def node(self, value: Any) -> _Node:
        """The node of a container, registering it and everything it reaches on first sight."""
        found = self.nodes.get(id(value))
        if found is not None:
            return found
        root = self.nodes[id(value)] = _Node(value)
        todo = [root]
        while todo:
            parent = todo.pop()
            for child in _children(parent.value):
                if isinstance(child, Key):
                    child = child.value
                if isinstance(child, CONTAINERS) and id(child) not in self.nodes:
                    todo.append(self._new(child))
                self._edge(parent, child)
        return root

    def _new(self, value: Any) -> _Node:
        node = self.nodes[id(value)] = _Node(value)
        return node

    def _edge(self, parent: _Node, child: Any) -> None:
        self.f.step()
        if isinstance(child, Global):
            if child.kind in (K_WRAPPER, K_UNRESOLVED):
                self._up(parent, "m")
            if child.status != REVIEWED:
                self._up(parent, "u")
            return
        if not isinstance(child, CONTAINERS):
            return
        node = self.nodes.get(id(child))
        if node is None:
            node = self.node(child)
        node.parents.append(parent)
        if node.m:
            self._up(parent, "m")
        if node.u:
            self._up(parent, "u")
        if parent.t:
            self.taint(node)

    def linked(self, container: Any, *values: Any) -> None:
        """``values`` were just placed inside ``container`` (a list, dict, object ...)."""
        parent = self.nodes.get(id(container))
        if parent is None:
            return  # never asked about: it is walked, contents included, when first asked
        for value in values:
            self._edge(parent, value.value if isinstance(value, Key) else value)

    def _up(self, node: _Node, flag: str) -> None:
        todo = [node]
        while todo:
            n = todo.pop()
            if getattr(n, flag):
                continue
            self.f.step()
            setattr(n, flag, True)
            todo.extend(n.parents)

    def became_wrapper(self, obj: Obj) -> None:
        """``obj`` is now a wrapper or may be one: everything that reaches it reaches a mention."""
        node = self.nodes.get(id(obj))
        if node is not None:
            self._up(node, "m")

    def mentions(self, value: Any) -> bool:
        if isinstance(value, Global):
            return value.kind in (K_WRAPPER, K_UNRESOLVED)
        return isinstance(value, CONTAINERS) and self.node(value).m

    def unreviewed(self, value: Any) -> bool:
        if isinstance(value, Global):
            return value.status != REVIEWED
        return isinstance(value, CONTAINERS) and self.node(value).u

    def taint(self, start: _Node) -> None:
        """Everything ``start`` reaches may become a wrapper: mark its objects, now and later."""
        todo = [start]
        while todo:
            n = todo.pop()
            if n.t:
                continue
            self.f.step()
            n.t = True
            value = n.value
            if isinstance(value, Obj) and value.wrapper != 1:
                value.wrapper = 2
                self._up(n, "m")
            for child in _children(value):
                if isinstance(child, Key):
                    child = child.value
                if isinstance(child, CONTAINERS):
                    todo.append(self.node(child))

    def first_unreviewed(self, value: Any) -> str | None:
        """The name of one global that is not reviewed and that ``value`` reaches, if any."""
        todo = [value]
        seen: set[int] = set()
        while todo:
            v = todo.pop()
            if isinstance(v, Key):
                v = v.value
            if isinstance(v, Global):
                if v.status != REVIEWED:
                    return v.full
                continue
            if not isinstance(v, CONTAINERS) or id(v) in seen or not self.node(v).u:
                continue
            seen.add(id(v))
            self.f.step()
            todo.extend(_children(v))
        return None


# ---------------------------------------------------------------------------
# What one file's scan found
# ---------------------------------------------------------------------------


class Findings:
    """What all machines of one file found, shared with nested streams."""

    def __init__(self, max_steps: int = 200_000_000) -> None:
        self.imports: set[str] = set()
        self.dangerous: set[str] = set()
        self.unreviewed: set[str] = set()
        # A file may repeat a global millions of times; each distinct name is rated once.
        self.verdicts: dict[tuple[str, str], pickle_policy.Classification] = {}
        self.reasons: dict[str, str] = {}
        self.notes: list[str] = []
        self.refused = False
        self.wrapper_seen = False
        self.array_payloads = 0
        self.sklearn_versions: set[str] = set()
        self.pickles = 0
        self.steps = 0
        self.max_steps = max_steps
        self.graph = Graph(self)

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.max_steps:
            raise Budget()

    def classify(self, module: str, name: str) -> pickle_policy.Classification:
        verdict = self.verdicts.get((module, name))
        if verdict is None:
            verdict = self.verdicts[(module, name)] = pickle_policy.classify(module, name)
        return verdict

    def refuse(self, note: str) -> None:
        self.refused = True
        if note not in self.notes and len(self.notes) < 50:
            self.notes.append(note)
