"""The user's preferences, kept in QSettings, and how new jobs pick them up.

:class:`AppSettings` is a frozen value read from and written to QSettings:
the seed new analyses start from, the number of compute threads, the torch
device, and sample counts (LIME samples, KernelSHAP coalitions, permutation
repeats) that replace the methods' own defaults when set (0, the default,
leaves each method its descriptor's default: a default is written once, in the
engine).  New jobs take them in three ways:

* process-wide: :meth:`AppSettings.apply_to_process` sets ``PROBITY_THREADS``
  (read by ``engine.parallel`` at every parallel map) and, once torch is
  imported, torch's thread count;
* per analysis: :meth:`AppSettings.method_defaults` gives the parameter
  values a form starts from where they differ from the descriptor's (sample
  counts that were set, the device, and the interactive chunk size, see
  :data:`INTERACTIVE_CHUNK_ROWS`);
* :class:`FormDefaults` fills each analysis form once it is built (forms are
  built lazily, the first time a panel is shown) and again when the settings
  change.

The same QSettings also keep what the window remembers between runs: the
last folder of each kind of file dialog (:func:`last_folder`,
:func:`remember_folder`) and the column roles chosen for a file or a set of
columns (:class:`RoleMemory`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSettings, QTimer

from engine.device import DEVICE_CHOICES

__all__ = [
    "AppSettings",
    "DEVICE_CHOICES",
    "method_default",
    "INTERACTIVE_CHUNK_ROWS",
    "FormDefaults",
    "RememberedRoles",
    "RoleMemory",
    "SETTINGS_GROUP",
    "last_folder",
    "remember_folder",
]

SETTINGS_GROUP = "preferences"
# What the device setting may be: engine.device.DEVICE_CHOICES (the engine accepts "cuda:N" too; the dialog
# offers these), declared there once.
#: Most rows in one model call of a job started from the GUI.  scikit-learn's
#: gradient boosting and one-hot encoding hold the interpreter lock for a whole
#: call (about 3 ms per 1,000 rows for the demo model), so the engine's batch
#: size for the command line (calls of ~0.2 s, up to 200,000 rows) freezes the
#: window for as long (110-130 ms measured on the 2-core machine); 8,192 rows,
#: the engine's own first call, keep each freeze near 25 ms.
INTERACTIVE_CHUNK_ROWS = 8_192
# The environment's own PROBITY_THREADS, restored when the setting goes back to "automatic".
_ENV_THREADS = os.environ.get("PROBITY_THREADS")


def _at_least(value: int, low: int) -> int:
    """``value`` raised to ``low``, except 0, which stands for the method's own default."""
    return value if value == 0 else max(value, low)


def method_default(method: str, parameter: str) -> Any:
    """The default of ``parameter`` of ``method`` in its descriptor (imports the registry: call it lazily)."""
    from engine.registry import get_method

    return get_method(method).defaults[parameter]


def _int(value: Any, default: int, *, low: int, high: int) -> int:
    """An int from QSettings (INI files hand back strings), clamped; ``default`` when unreadable."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return min(max(number, low), high)


@dataclass(frozen=True)
class AppSettings:
    """Preferences that shape new jobs.

    Attributes
    ----------
    seed: the seed new analyses and reports start from.
    threads: compute threads for parallel model calls and torch; 0 = automatic (the engine's choice).
    device: where TreeSHAP and the gradient methods compute: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    lime_samples: perturbed samples per LIME explanation; 0 = LIME's own default.
    kernelshap_coalitions: KernelSHAP coalitions per explanation; 0 = automatic (its own default).
    permutation_repeats: shuffles per column in permutation importance (at least 2);
        0 = permutation importance's own default.
    """

    seed: int = 0
    threads: int = 0
    device: str = "auto"
    lime_samples: int = 0
    kernelshap_coalitions: int = 0
    permutation_repeats: int = 0

    # -- persistence ----------------------------------------------------------------
    @classmethod
    def load(cls, settings: QSettings) -> AppSettings:
        """Read the preferences (defaults for anything missing or unreadable)."""
        d = cls()
        settings.beginGroup(SETTINGS_GROUP)
        try:
            device = str(settings.value("device", d.device) or d.device).strip().lower()
            return cls(
                seed=_int(settings.value("seed"), d.seed, low=0, high=2_147_483_647),
                threads=_int(settings.value("threads"), d.threads, low=0, high=1024),
                device=device if device in DEVICE_CHOICES else d.device,
                lime_samples=_at_least(
                    _int(settings.value("lime_samples"), d.lime_samples, low=0, high=10_000_000), 10
                ),
                kernelshap_coalitions=_int(
                    settings.value("kernelshap_coalitions"), d.kernelshap_coalitions, low=0, high=10_000_000
                ),
                permutation_repeats=_at_least(
                    _int(settings.value("permutation_repeats"), d.permutation_repeats, low=0, high=100_000), 2
                ),
            )
        finally:
            settings.endGroup()

    def save(self, settings: QSettings) -> None:
        """Write the preferences and flush them to disk."""
        settings.beginGroup(SETTINGS_GROUP)
        try:
            for key, value in asdict(self).items():
                settings.setValue(key, value)
        finally:
            settings.endGroup()
        settings.sync()

    # -- how jobs use them --------------------------------------------------------------
    def method_defaults(self, method: str) -> dict[str, Any]:
        """Parameter values an analysis form starts from (only those the method takes).

        Parameters
        ----------
        method:
            A registry name (``"lime"``, ``"kernelshap"``, ``"permutation"``, ``"ig"`` …).
        """
        wanted: dict[str, Any] = {}
        # A count left at 0 is the method's own default, which the form already shows.
        if method == "lime" and self.lime_samples:
            wanted["num_samples"] = self.lime_samples
        elif method in ("kernelshap", "shap") and self.kernelshap_coalitions:
            wanted["n_coalitions"] = self.kernelshap_coalitions
        elif method == "permutation" and self.permutation_repeats:
            wanted["n_repeats"] = self.permutation_repeats
        wanted["device"] = self.device
        wanted["chunk_rows"] = INTERACTIVE_CHUNK_ROWS
        try:
            from engine.registry import get_method

            accepted = get_method(method).defaults
        except Exception:  # an unknown name: nothing to fill
            return {}
        out = {k: v for k, v in wanted.items() if k in accepted}
        if "chunk_rows" in out and isinstance(accepted.get("chunk_rows"), int):
            out["chunk_rows"] = min(int(accepted["chunk_rows"]), INTERACTIVE_CHUNK_ROWS)
        return out

    def apply_to_process(self) -> None:
        """Set the thread count for parallel model calls and, if torch is loaded, for torch.

        Never imports torch: a process that has not needed it yet pays nothing,
        and :meth:`apply_to_process` is called again after every job (cheap),
        so the count is in force once an analysis has imported it.
        """
        if self.threads > 0:
            os.environ["PROBITY_THREADS"] = str(self.threads)
        elif _ENV_THREADS is not None:
            os.environ["PROBITY_THREADS"] = _ENV_THREADS
        else:
            os.environ.pop("PROBITY_THREADS", None)
        torch = sys.modules.get("torch")
        if self.threads > 0 and torch is not None and hasattr(torch, "get_num_threads"):
            if torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)


class FormDefaults(QObject):
    """Fills analysis forms with the settings' defaults: once when built, and on every change.

    ``panels`` are objects with ``method.name``, ``form`` (``None`` until
    built) and ``ensure_ready()`` (more come through :meth:`add_panels`); a form has ``values()`` and
    ``set_values(values, seed=...)`` (see ``gui.panes.analyses``).
    ``method_panes`` hold several methods' forms: ``forms`` maps a method name
    to its forms (empty until built) and ``seed_box`` is their shared seed (see
    ``gui.panes.explain``).  Forms are filled once, so what the user then types
    is kept until the settings change.
    """

    def __init__(
        self,
        panels: Iterable[Any],
        settings: AppSettings,
        parent: QObject | None = None,
        *,
        method_panes: Iterable[Any] = (),
    ) -> None:
        super().__init__(parent)
        self._panels = list(panels)
        self._method_panes = list(method_panes)
        self._settings = settings
        self._filled: set[int] = set()
        for widget in (*self._panels, *self._method_panes):
            widget.installEventFilter(self)

    def add_panels(self, panels: Iterable[Any]) -> None:
        """Panels made after this object (the Analyses area makes its own when first shown): fill them too."""
        for panel in panels:
            if panel not in self._panels:
                self._panels.append(panel)
                panel.installEventFilter(self)

    def set_settings(self, settings: AppSettings) -> None:
        """New preferences: refill every form that exists (new jobs use them)."""
        self._settings = settings
        self._filled.clear()
        for panel in self._panels:
            self.fill(panel)
        for pane in self._method_panes:
            self.fill_methods(pane)

    def fill_methods(self, pane: Any) -> bool:
        """Fill every method form of ``pane`` once they are built; True when they were filled."""
        forms = getattr(pane, "forms", None) or {}
        if not forms or id(pane) in self._filled:
            return False
        for name, group in forms.items():
            defaults = self._settings.method_defaults(name)
            for form in group:
                known = form.values()
                values = {k: v for k, v in defaults.items() if k in known}
                if values:
                    form.set_values(values)
        seed_box = getattr(pane, "seed_box", None)
        if seed_box is not None:
            seed_box.setValue(self._settings.seed)
        self._filled.add(id(pane))
        return True

    def fill(self, panel: Any) -> bool:
        """Fill ``panel``'s form if it is built and not yet filled; True when it was filled."""
        form = getattr(panel, "form", None)
        if form is None or id(form) in self._filled:
            return False
        current = form.values()
        values = {k: v for k, v in self._settings.method_defaults(panel.method.name).items() if k in current}
        form.set_values(values, seed=self._settings.seed)
        self._filled.add(id(form))
        return True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Show:
            # Panes build their forms in their own showEvent, which runs after this filter.
            if watched in self._panels:
                QTimer.singleShot(0, lambda p=watched: self.fill(p))
            elif watched in self._method_panes:
                QTimer.singleShot(0, lambda p=watched: self.fill_methods(p))
        return False


# -- what the window remembers between runs ------------------------------------------------

_FOLDERS_GROUP = "folders"


def last_folder(settings: QSettings, kind: str, fallback: Path | str | None = None) -> str:
    """The folder the ``kind`` file dialog (``"data"``, ``"model"``, ``"session"``, ``"report"`` …) last used.

    Falls back to ``fallback`` and then to ``""`` (Qt's default: the working
    folder) when nothing is remembered or the folder no longer exists.
    """
    value = settings.value(f"{_FOLDERS_GROUP}/{kind}")
    for candidate in (value, fallback):
        if candidate and Path(str(candidate)).is_dir():
            return str(candidate)
    return ""


def remember_folder(settings: QSettings, kind: str, path: Path | str) -> None:
    """Remember the folder of ``path`` (a file, or a folder itself) for the ``kind`` file dialog."""
    chosen = Path(path)
    folder = chosen if chosen.is_dir() else chosen.parent
    settings.setValue(f"{_FOLDERS_GROUP}/{kind}", str(folder.resolve()))
    settings.sync()


@dataclass(frozen=True)
class RememberedRoles:
    """Roles recalled for a table: column -> role, and why they apply.

    ``match`` is ``"file"`` (the same file content, by SHA-256) or
    ``"columns"`` (another file with exactly these column names).
    """

    mapping: dict[str, str]
    match: str


class RoleMemory:
    """Column roles remembered per file (SHA-256) and per set of column names, in QSettings.

    Opening the same file again, or a file with the same columns (next
    month's extract of the same table), brings back the roles last chosen for
    it.  Entries are JSON strings under ``roles/`` keyed by digests, so column
    names with slashes or odd characters never become QSettings groups; the
    oldest entries are dropped beyond ``limit``.
    """

    GROUP = "roles"

    def __init__(self, settings: QSettings, *, limit: int = 200) -> None:
        self._settings = settings
        self._limit = limit

    @staticmethod
    def columns_key(columns: Sequence[str]) -> str:
        """A digest of the column names, independent of their order."""
        text = json.dumps(sorted(str(c) for c in columns), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def remember(self, sha256: str | None, columns: Sequence[str], mapping: Mapping[str, str]) -> None:
        """Keep ``mapping`` (column -> role, every column) for this file and for this set of columns."""
        names = [str(c) for c in columns]
        value = json.dumps(
            {"columns": names, "roles": {c: str(mapping.get(c, "ignored")) for c in names}}, ensure_ascii=False
        )
        keys = [f"columns-{self.columns_key(names)}"]
        if sha256:
            keys.insert(0, f"file-{sha256}")
        order = [k for k in self._order() if k not in keys]
        for key in keys:
            self._settings.setValue(f"{self.GROUP}/{key}", value)
        order = keys + order
        for stale in order[self._limit :]:
            self._settings.remove(f"{self.GROUP}/{stale}")
        self._settings.setValue(f"{self.GROUP}/order", json.dumps(order[: self._limit]))
        self._settings.sync()

    def recall(self, sha256: str | None, columns: Sequence[str]) -> RememberedRoles | None:
        """The roles last chosen for this file, else for these columns, else ``None``."""
        names = [str(c) for c in columns]
        candidates = [(f"file-{sha256}", "file")] if sha256 else []
        candidates.append((f"columns-{self.columns_key(names)}", "columns"))
        for key, match in candidates:
            stored = self._load(key)
            if stored is None or sorted(stored.get("columns", [])) != sorted(names):
                continue
            roles = stored.get("roles")
            if isinstance(roles, dict) and set(roles) == set(names):
                return RememberedRoles(mapping={c: str(roles[c]) for c in names}, match=match)
        return None

    def _load(self, key: str) -> dict[str, Any] | None:
        raw = self._settings.value(f"{self.GROUP}/{key}")
        if not raw:
            return None
        try:
            value = json.loads(str(raw))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _order(self) -> list[str]:
        try:
            order = json.loads(str(self._settings.value(f"{self.GROUP}/order", "[]") or "[]"))
        except ValueError:
            return []
        return [str(k) for k in order] if isinstance(order, list) else []
