"""Structural promises: the engine is Qt-free and light to import; tests run offline."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_IMPORT_EVERY_ENGINE_MODULE = r"""
import importlib, json, pkgutil, sys
import engine
names = ["engine"]
for info in pkgutil.walk_packages(engine.__path__, prefix="engine."):
    importlib.import_module(info.name)
    names.append(info.name)
roots = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"imported": names, "roots": roots}))
"""


@pytest.fixture(scope="module")
def engine_import_report() -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERY_ENGINE_MODULE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_engine_module_imports_without_qt(engine_import_report: dict) -> None:
    loaded = set(engine_import_report["roots"])
    assert not loaded & {"PySide6", "shiboken6", "pyqtgraph", "gui"}, loaded & {"PySide6", "shiboken6", "pyqtgraph"}
    # The walk really covered the package, not just its __init__.
    assert "engine.cli" in engine_import_report["imported"]
    assert "engine.models.base" in engine_import_report["imported"]


def test_heavy_back_ends_are_imported_lazily(engine_import_report: dict) -> None:
    loaded = set(engine_import_report["roots"])
    assert "torch" not in loaded
    assert "onnxruntime" not in loaded
    assert "xgboost" not in loaded
    assert "lightgbm" not in loaded


def test_engine_sources_never_name_qt() -> None:
    offenders = []
    for path in (ROOT / "engine").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                q in stripped.split()[1] for q in ("PySide6", "shiboken6", "pyqtgraph", "gui")
            ):
                offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []


def test_network_sockets_are_disabled_in_the_suite() -> None:
    from pytest_socket import SocketBlockedError

    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


_THREAD_MAKERS = frozenset(
    {
        "QThread",
        "QThreadPool",
        "QRunnable",
        "Thread",
        "ThreadPoolExecutor",
        "ProcessPoolExecutor",
        "start_new_thread",
    }
)


def _thread_makers_used(path: Path) -> set[str]:
    """Names of thread-creating classes or functions that ``path`` imports or calls."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            used |= {a.name for a in node.names if a.name in _THREAD_MAKERS}
        elif isinstance(node, ast.Attribute) and node.attr in _THREAD_MAKERS:
            used.add(node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _THREAD_MAKERS:
            used.add(node.func.id)
    return used


def test_only_the_gui_runner_creates_threads() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(used)
        for p in sorted((ROOT / "gui").rglob("*.py"))
        if p.name != "runner.py" and (used := _thread_makers_used(p))
    }
    assert offenders == {}
    # The rule can see a thread when there is one.
    assert _thread_makers_used(ROOT / "gui" / "runner.py")
