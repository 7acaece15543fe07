"""Help → About says how the app computes and that the network is blocked, with the refusals counted."""

from __future__ import annotations

import sys

import pytest

from gui.main_window import MainWindow


def test_about_shows_compute_and_the_network_guard(qtbot, settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import netguard

    netguard.install()  # as gui.app.main does before anything else
    before = netguard.status().refused
    with pytest.raises(netguard.NetworkBlockedError):
        # The event socket.getaddrinfo raises before a lookup (pytest-socket replaces the function itself).
        sys.audit("socket.getaddrinfo", "update.example.org", 443, 0, 0, 0)
    shown: list[str] = []
    monkeypatch.setattr("gui.main_window.QMessageBox.about", lambda parent, title, text: shown.append(text))
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win._on_about_triggered()
    refused = before + 1
    noun = "attempt" if refused == 1 else "attempts"
    assert f"network: blocked ({refused:,} {noun} refused)" in shown[0]
    assert "Compute: CPU" in shown[0]
