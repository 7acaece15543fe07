"""Typed parameters: one :class:`Param` per keyword-only parameter of an analysis's run function.

A method's descriptor (:class:`engine.method.Method`) lists its parameters
here, next to its ``run`` function, and every front end reads them: the CLI
parses ``--param KEY=VALUE`` and writes its help from them, the GUI builds its
forms from them, the audit takes its defaults from them and provenance records
the values they let through.  :meth:`Param.check` is the one gate: it turns a
value given by any front end (or read back from JSON) into the value the run
function receives, or raises one sentence naming the method and the parameter.

Nothing here imports numpy at module level, so a front end may read a
descriptor's text without the numerical stack being the reason it loads.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import AnalysisError

__all__ = ["KINDS", "Param", "shown"]

#: What each kind of parameter holds, as the error sentences and the help describe it.
KINDS: dict[str, str] = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "choice": "one of the listed names",
    "text": "a text",
    "class": "one of the model's class labels",
    "rows": "a list of 0-based row positions",
    "columns": "a column name or a list of column names",
    "pair": "two values",
    "int_or_auto": "a whole number or 'auto'",
    "baseline": "a named baseline, one number per input column, or a mapping column → number",
    "result": "an earlier result",
}
#: Parameters no form or flag shows: the front end supplies them (rows, the result built on).
PROVIDED_KINDS = frozenset({"rows", "result"})


def shown(value: Any) -> str:
    """``value`` as an error sentence quotes it (``repr``, cut short)."""
    text = repr(_plain(value))
    return text if len(text) <= 60 else text[:59] + "…"


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones (without importing numpy)."""
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number_text(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Param:
    """One keyword-only parameter of a method's run function.

    Attributes
    ----------
    name: the keyword, exactly as the run function spells it.
    kind: one of :data:`KINDS`.
    default: the run function's default (a test keeps the two equal).
    label: how a form labels it (default: the name in words).
    help: one sentence for the CLI's help and the form's tooltip.
    minimum, maximum: bounds of a number (of each number of a ``pair``);
        ``exclusive`` makes both strict.
    choices: the allowed names of a ``choice`` (and the named baselines);
        with ``open_choices`` other text is passed on for the method to judge
        (``"cuda:1"`` for a device).
    task_choices: choices by model task (``"classification"``, ``"regression"``)
        where they depend on it; ``choices`` is then their union.
    item: what a ``pair`` holds: ``"int"``, ``"float"`` or ``"column"``.
    unit: the unit of a number, for labels (``"rows"``, ``"samples"``).
    basic: shown at once in a form; the rest go under "Advanced options".
    hidden: never shown in a form (the default is used); still accepted by the CLI.
    none: what ``None`` means (``"all rows"``); empty when ``None`` is not allowed.
    auto: what ``"auto"`` means, for ``int_or_auto``.
    """

    name: str
    kind: str
    default: Any
    label: str = ""
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False
    choices: tuple[str, ...] = ()
    open_choices: bool = False
    task_choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    item: str = ""
    unit: str = ""
    basic: bool = False
    hidden: bool = False
    none: str = ""
    auto: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name}: unknown kind {self.kind!r}")
        if self.task_choices and not self.choices:
            union = tuple(dict.fromkeys(c for group in self.task_choices.values() for c in group))
            object.__setattr__(self, "choices", union)
        if self.kind == "pair" and self.item not in ("int", "float", "column"):
            raise ValueError(f"parameter {self.name}: a pair needs item 'int', 'float' or 'column'")

    # -- for people ---------------------------------------------------------------------
    @property
    def title(self) -> str:
        """The form's label: ``label``, else the name in words."""
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def allows_none(self) -> bool:
        return bool(self.none) or self.default is None

    @property
    def provided(self) -> bool:
        """Supplied by the front end (rows, an earlier result), never typed into a form or a flag."""
        return self.kind in PROVIDED_KINDS

    def default_text(self) -> str:
        """The default as ``--param`` would take it (JSON): ``5000``, ``"shared"``, ``null (every row)``."""
        if self.default is None:
            return f"null ({self.none})" if self.none else "null"
        text = json.dumps(list(self.default) if isinstance(self.default, tuple) else self.default, ensure_ascii=False)
        if self.default == "auto" and self.auto:
            return f"{text} ({self.auto})"
        return text

    def requirement(self) -> str:
        """What a value must be, as the end of "… must be {requirement}"."""
        kind = self.kind
        if kind == "choice":
            listed = ", ".join(repr(c) for c in self.choices)
            text = f"one of {listed}" + (" (or another name the method knows)" if self.open_choices else "")
        elif kind in ("int", "float", "int_or_auto"):
            text = ("a whole number" if kind != "float" else "a number") + self._bounds_text()
            if kind == "int_or_auto":
                text = "'auto' or " + text
        elif kind == "pair":
            what = {"int": "whole numbers", "float": "numbers", "column": "column names"}[self.item]
            text = f"two {what}" + self._bounds_text(each=True)
        elif kind == "baseline":
            text = (
                f"one of {', '.join(repr(c) for c in self.choices)}, one number per input column, "
                "or a mapping column → number"
            )
        else:
            text = KINDS[kind]
        if self.allows_none and kind not in ("rows", "result"):
            text += f", or null ({self.none})" if self.none else ", or null"
        return text

    def _bounds_text(self, *, each: bool = False) -> str:
        lo, hi = self.minimum, self.maximum
        if lo is None and hi is None:
            return ""
        prefix = " each" if each else ""
        if lo is not None and hi is not None:
            between = "strictly between" if self.exclusive else "from"
            joiner = "and" if self.exclusive else "to"
            return f"{prefix} {between} {_number_text(lo)} {joiner} {_number_text(hi)}"
        if lo is not None:
            return f"{prefix} {'above' if self.exclusive else 'of at least'} {_number_text(lo)}"
        assert hi is not None
        return f"{prefix} {'below' if self.exclusive else 'of at most'} {_number_text(hi)}"

    # -- the gate -------------------------------------------------------------------------
    def refuse(self, owner: str, value: Any) -> AnalysisError:
        """The one-sentence error for a bad ``value`` given to ``owner`` (a method's title)."""
        return AnalysisError(f"{owner}'s parameter {self.name} must be {self.requirement()}, not {shown(value)}.")

    def check(self, value: Any, *, owner: str) -> Any:
        """``value`` as the run function receives it, or :class:`AnalysisError` naming ``owner`` and the parameter.

        Lists read back from JSON become the tuples a ``pair`` holds, numpy
        scalars become Python numbers and row positions a list of ints; every
        other value passes as given (a class label keeps its type).
        """
        value = _plain(value)
        if value is None:
            if self.allows_none:
                return None
            raise self.refuse(owner, value)
        kind = self.kind
        if kind == "int":
            return self._whole(value, owner)
        if kind == "float":
            return self._number(value, owner, value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise self.refuse(owner, value)
        if kind == "choice":
            if isinstance(value, str) and (value in self.choices or (self.open_choices and value.strip())):
                return value
            raise self.refuse(owner, value)
        if kind == "text":
            if isinstance(value, str):
                return value
            raise self.refuse(owner, value)
        if kind == "class":
            if isinstance(value, (str, bool, numbers.Real)):
                return value
            raise self.refuse(owner, value)
        if kind == "int_or_auto":
            return "auto" if value == "auto" else self._whole(value, owner)
        if kind == "rows":
            return self._rows(value, owner)
        if kind == "columns":
            if isinstance(value, str) and value:
                return value
            if (
                isinstance(value, Sequence)
                and not isinstance(value, str)
                and value
                and all(isinstance(c, str) and c for c in value)
            ):
                return list(value)
            raise self.refuse(owner, value)
        if kind == "pair":
            return self._pair(value, owner)
        if kind == "baseline":
            return self._baseline(value, owner)
        # "result": an earlier result object; the method checks its type and shape.
        if kind == "result" and hasattr(value, "provenance"):
            return value
        raise self.refuse(owner, value)

    def _whole(self, value: Any, owner: str, shown_as: Any = None) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_whole(value):
            raise self.refuse(owner, value if shown_as is None else shown_as)
        self._in_bounds(int(value), owner, value if shown_as is None else shown_as)
        return int(value)

    def _number(self, value: Any, owner: str, shown_as: Any) -> float:
        if not _is_number(value) or not math.isfinite(float(value)):
            raise self.refuse(owner, shown_as)
        number = float(value)
        self._in_bounds(number, owner, shown_as)
        return number

    def _in_bounds(self, number: float, owner: str, shown_as: Any) -> None:
        lo, hi = self.minimum, self.maximum
        if lo is not None and (number <= lo if self.exclusive else number < lo):
            raise self.refuse(owner, shown_as)
        if hi is not None and (number >= hi if self.exclusive else number > hi):
            raise self.refuse(owner, shown_as)

    def _rows(self, value: Any, owner: str) -> list[int]:
        if type(value).__module__ == "numpy" and getattr(value, "ndim", 0) == 1:
            # An integer array is checked as a whole (a million row positions in milliseconds).
            if value.dtype.kind in "iu" and (value.size == 0 or int(value.min()) >= 0):
                return [int(v) for v in value.tolist()]
            raise self.refuse(owner, value)
        if isinstance(value, list) and all(type(v) is int and v >= 0 for v in value):
            return value[:]
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise self.refuse(owner, value)
        out: list[int] = []
        for v in value:
            v = _plain(v)
            if not _is_whole(v) or v < 0:
                raise self.refuse(owner, value)
            out.append(int(v))
        return out

    def _pair(self, value: Any, owner: str) -> tuple[Any, Any]:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or len(value) != 2:
            raise self.refuse(owner, value)
        items: list[Any] = []
        for v in value:
            v = _plain(v)
            if self.item == "column":
                if not isinstance(v, str) or not v:
                    raise self.refuse(owner, value)
                items.append(v)
            elif self.item == "int":
                items.append(self._whole(v, owner, value))
            else:
                items.append(self._number(v, owner, value))
        return items[0], items[1]

    def _baseline(self, value: Any, owner: str) -> Any:
        if isinstance(value, str):
            if value in self.choices:
                return value
            raise self.refuse(owner, value)
        if isinstance(value, Mapping):
            if value and all(isinstance(k, str) and _is_number(_plain(v)) for k, v in value.items()):
                return {k: float(_plain(v)) for k, v in value.items()}
            raise self.refuse(owner, value)
        tolist = getattr(value, "tolist", None)
        if tolist is not None and type(value).__module__ == "numpy":
            value = tolist()
        if isinstance(value, Sequence) and value and all(_is_number(_plain(v)) for v in value):
            return [float(_plain(v)) for v in value]
        raise self.refuse(owner, value)

    # -- for front ends -----------------------------------------------------------------
    def parse_text(self, text: str) -> Any:
        """A value typed as text (``--param KEY=VALUE``, a form's text box) before :meth:`check`.

        JSON is read where it parses (``5000``, ``true``, ``null``, ``["a", "b"]``);
        otherwise the text itself, split at commas for column lists and pairs.
        """
        raw = text.strip()
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
            if self.kind in ("columns", "pair") and "," in raw:
                parts = [p.strip() for p in raw.split(",")]
                value = [p if self.item == "column" or self.kind == "columns" else _json_or_text(p) for p in parts]
        if self.kind in ("choice", "text") and value is not None and not isinstance(value, str):
            value = raw  # a name that happens to read as JSON ("1", "true") is still a name
        return value

    def choices_for(self, model: Any) -> tuple[str, ...]:
        """The names a form offers for this parameter and ``model`` (``None``: no model open yet)."""
        task = getattr(getattr(model, "task", None), "value", None) if model is not None else None
        if self.kind == "class":
            classes = getattr(model, "classes", None) if model is not None else None
            if classes:
                return tuple(str(c) for c in classes)
            # A model without classes (a regressor) is offered what the parameter names for its task.
            return tuple(self.task_choices.get(task, ())) if isinstance(task, str) else ()
        if isinstance(task, str) and task in self.task_choices:
            return tuple(self.task_choices[task])
        return tuple(self.choices)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# -- parameters many methods share --------------------------------------------------------------

_CLASS_NONE = "the positive class of a binary model, else the first class"


def rows_param(none: str = "every row") -> Param:
    """``rows``: the 0-based positions explained (the front end fills it from a row spec)."""
    return Param(
        "rows",
        "rows",
        None,
        label="Rows",
        none=none,
        help="0-based positions of the rows to explain (the CLI's --rows, the GUI's row box).",
    )


def class_param(
    *,
    help: str = "The class whose output is explained (classifiers; null for a regressor).",
    none: str = _CLASS_NONE,
    basic: bool = True,
) -> Param:
    """``klass``: the class explained; its choices are the open model's classes."""
    return Param("klass", "class", None, label="Class explained", help=help, none=none, basic=basic)


def device_param() -> Param:
    """``device``: where torch computes (``"cuda:N"`` is accepted too)."""
    from engine.device import DEVICE_CHOICES

    return Param(
        "device",
        "choice",
        "auto",
        label="Device",
        choices=tuple(DEVICE_CHOICES),
        open_choices=True,
        help="Where it computes: auto (a CUDA GPU when torch sees one), cpu, cuda or cuda:N.",
    )
