"""Suite-wide settings: headless Qt and no network, set before anything imports Qt."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
# Keep BLAS/OpenMP from oversubscribing the two CI cores while xdist or Qt threads run.
os.environ.setdefault("OMP_NUM_THREADS", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def demo_paths(tmp_path_factory: pytest.TempPathFactory):
    """The built-in demo dataset and model, generated once per test session."""
    from engine.demo import ensure_demo

    return ensure_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def write_text(tmp_path: Path):
    """Write ``text`` (or bytes) to a file under tmp_path and return its path."""

    def _write(name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode(encoding))
        return path

    return _write
