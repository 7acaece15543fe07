"""GUI test fixtures: an isolated log folder and settings file, and a runner that is shut down."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_user_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Crash logs, autosaves and recent-file lists must never land in the developer's home folder.
    monkeypatch.setenv("PROBITY_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("PROBITY_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def settings(tmp_path: Path, qapp):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def runner(qapp):
    from gui.runner import JobRunner

    job_runner = JobRunner()
    yield job_runner
    assert job_runner.shutdown(5000), "a worker did not stop within 5 s of being cancelled"
    job_runner.deleteLater()
