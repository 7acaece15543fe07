"""Start-up: arguments, the --demo window, light imports, and crash handling without console tracebacks."""

from __future__ import annotations

import subprocess
import sys
import threading

from PySide6.QtWidgets import QApplication

from gui.app import build_window, configure_application, main, parse_args
from gui.crash import CrashReporter

WAIT_MS = 30_000


def test_version_prints_and_exits_zero(capsys):
    from engine import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"probity-gui {__version__}"


def test_arguments_are_parsed_and_qt_arguments_passed_on(tmp_path):
    args, rest = parse_args(["--data", str(tmp_path / "d.csv"), "--model", "m.skops", "-platform", "offscreen"])
    assert args.data == tmp_path / "d.csv" and str(args.model) == "m.skops" and not args.demo
    assert rest == ["-platform", "offscreen"]


def test_window_opens_with_demo(qtbot, settings, demo_paths, monkeypatch):
    monkeypatch.setenv("PROBITY_DEMO_DIR", str(demo_paths.data.parent))
    configure_application(QApplication.instance())
    args, _ = parse_args(["--demo"])
    window = build_window(args, settings=settings)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.session.dataset is not None, timeout=WAIT_MS)
        assert window.session.dataset.path == demo_paths.data
        assert window.session.roles.target == "approved"
        assert window.session.roles.sensitive == ("group",)
        assert window.windowTitle() == "Probity — credit.csv"
        try:
            import engine.models.loading  # noqa: F401
        except ImportError:
            return
        qtbot.waitUntil(lambda: window.session.model is not None, timeout=WAIT_MS)
        assert window.session.model.path == demo_paths.model
    finally:
        window.close()


def test_startup_imports_no_heavy_libraries():
    # The window's modules must not pull in the numeric stack; workers import it later.
    code = (
        "import sys, gui.app, gui.main_window;"
        "print(','.join(m for m in ('torch', 'sklearn', 'onnxruntime', 'pandas', 'pyqtgraph', 'scipy')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""


def test_uncaught_thread_exception_is_logged_and_shown_not_printed(qtbot, tmp_path, capfd):
    reporter = CrashReporter()
    reporter.install()
    try:
        worker = threading.Thread(target=lambda: {}["no such key"], name="probe-thread")
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible(), timeout=5000)
    finally:
        reporter.uninstall()
    assert "KeyError: 'no such key'" in reporter.dialog.details_text
    log = (tmp_path / "logs" / "probity.log").read_text(encoding="utf-8")
    assert "thread probe-thread" in log and "KeyError: 'no such key'" in log
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    reporter.dialog.close()


def test_a_second_error_while_the_dialog_is_open_is_counted_not_stacked(qtbot):
    reporter = CrashReporter()
    for message in ("first", "second"):
        try:
            raise RuntimeError(message)
        except RuntimeError as exc:
            reporter.on_exception(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.suppressed == 1, timeout=5000)
    assert "RuntimeError: first" in reporter.dialog.details_text
    reporter.dialog.close()


def test_main_runs_the_demo_detects_the_device_and_returns_on_quit(qtbot, demo_paths, monkeypatch, tmp_path, capfd):
    from PySide6.QtCore import QSettings, QTimer

    from gui.main_window import MainWindow

    monkeypatch.setenv("PROBITY_DEMO_DIR", str(demo_paths.data.parent))
    # The default QSettings() of main() must not touch the developer's own settings.
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    seen: dict[str, object] = {}

    def poll() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        win = windows[0] if windows else None
        if (
            win is not None
            and win.session.model is not None
            and win.session.roles is not None
            and win.device_status.text() != "Compute: CPU"
        ):
            seen.update(device=win.device_status.text(), target=win.session.roles.target)
            win.close()
            QApplication.quit()
        elif "gave up" not in seen:
            QTimer.singleShot(100, poll)

    def give_up() -> None:
        seen["gave up"] = True
        QApplication.quit()

    # Exactly one quit, from a stoppable timer or the poll: a quit() arriving after main()
    # returned (including the one Qt posts when the last window closes) would stop every
    # later event loop in this process.
    QApplication.setQuitOnLastWindowClosed(False)
    watchdog = QTimer()
    watchdog.setSingleShot(True)
    watchdog.timeout.connect(give_up)
    watchdog.start(WAIT_MS)
    QTimer.singleShot(100, poll)
    try:
        assert main(["--demo"]) == 0
    finally:
        watchdog.stop()
        QApplication.setQuitOnLastWindowClosed(True)
        seen.setdefault("gave up", False)  # ends the poll chain if main() returned some other way
    assert seen["gave up"] is False
    assert seen["target"] == "approved"
    # The probe imported torch on a worker, alone, while the demo was loading.
    assert str(seen["device"]).startswith(("Compute: CPU (", "Compute: CUDA: "))
    assert "Traceback" not in capfd.readouterr().err
    assert not (tmp_path / "logs" / "probity.log").exists() or "Traceback" not in (
        tmp_path / "logs" / "probity.log"
    ).read_text(encoding="utf-8")


def test_the_bundled_report_fonts_are_the_app_font(qapp) -> None:
    from gui.resources import apply_theme, register_fonts

    # The family comes from loading resources/fonts/DejaVuSans.ttf, not from the system's fonts.
    assert register_fonts() == "DejaVu Sans"
    apply_theme(qapp)
    assert qapp.font().family() == "DejaVu Sans"
