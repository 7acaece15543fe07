"""The session keeper works through its host interface: any object with the host's members will do."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QWidget

from gui.runner import JobRunner
from gui.session import Session
from gui.sessionfile import SessionBanner, SessionKeeper

WAIT_MS = 60_000


class _Pane:
    """A pane that keeps one entry of the session's parameters and records what it was given back."""

    def __init__(self, key: str, seed: int) -> None:
        self.key, self.seed = key, seed
        self.restored: dict[str, Any] | None = None

    def save_state(self) -> dict[str, dict[str, Any]]:
        return {self.key: {"params": {}, "seed": self.seed}}

    def restore_state(self, parameters: Mapping[str, Any], results: Mapping[str, Any]) -> None:
        self.restored = dict(parameters)


class _Host:
    """Not the main window: only the members ``gui.sessionfile.SessionHost`` declares."""

    def __init__(self, qtbot: Any) -> None:
        self.widget = QWidget()
        qtbot.addWidget(self.widget)
        self.session = Session(self.widget)
        self.runner = JobRunner(self.widget)
        self.session_banner = SessionBanner(self.widget)
        self.panes = (_Pane("first", 3), _Pane("second", 11))
        self.statuses: list[str] = []

    def session_panes(self) -> Sequence[_Pane]:
        return self.panes

    def open_data(self, path: Path | str, **_kwargs: Any) -> int:
        raise AssertionError("a session without data opens no data")

    def open_model(self, path: Path | str) -> int:
        raise AssertionError("a session without a model opens no model")

    def model_trust_dialog(self) -> None:
        return None

    def show_status(self, text: str, timeout_ms: int) -> None:
        self.statuses.append(text)

    def apply_settings_to_process(self) -> None:
        pass


def test_each_pane_saves_and_restores_its_own_part_of_a_session_through_the_host(qtbot, tmp_path):
    saving = _Host(qtbot)
    keeper = SessionKeeper(saving, parent=saving.widget, data_dir=tmp_path / "data")
    keeper.notes = "Reviewed."
    path = tmp_path / "audit.probity"
    with qtbot.waitSignal(keeper.sig_saved, timeout=WAIT_MS):
        keeper.save(path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["parameters"] == {"first": {"params": {}, "seed": 3}, "second": {"params": {}, "seed": 11}}
    assert saving.statuses == [f"Saved the session to {path}."]

    opening = _Host(qtbot)
    reopened = SessionKeeper(opening, parent=opening.widget, data_dir=tmp_path / "data")
    with qtbot.waitSignal(reopened.sig_opened, timeout=WAIT_MS):
        reopened.open(path)
    for pane in opening.panes:
        assert pane.restored == saved["parameters"]  # every pane sees them all and takes its own
    assert reopened.notes == "Reviewed." and reopened.path == path
    assert opening.statuses == ["Reopened audit.probity: 0 saved results."]
    for host in (saving, opening):
        assert host.runner.shutdown(3000)
