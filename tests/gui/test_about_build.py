"""Help → About says which installer flavour is running (the torch build it carries), or that it runs from source."""

from __future__ import annotations

import json

import pytest

from gui.main_window import MainWindow


@pytest.mark.parametrize(
    ("baked", "expected"),
    [
        (
            {"flavour": "cuda", "torch": "2.13.0", "built": "2026-03-04"},
            "Installer build: CUDA flavour (torch 2.13.0, built 2026-03-04).",
        ),
        (None, "Running from a source checkout (not an installer build)."),
    ],
)
def test_about_names_the_build_flavour(qtbot, settings, tmp_path, monkeypatch: pytest.MonkeyPatch, baked, expected):
    info = tmp_path / "build-info.json"
    if baked is not None:
        info.write_text(json.dumps(baked), encoding="utf-8")
    monkeypatch.setattr("engine.build_info._default_path", lambda: info)
    shown: list[str] = []
    monkeypatch.setattr("gui.main_window.QMessageBox.about", lambda parent, title, text: shown.append(text))
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win._on_about_triggered()
    assert expected in shown[0]
