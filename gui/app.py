"""Start the desktop app: arguments, application settings, theme, crash handling, main window.

Start-up imports only Qt and the window's own modules.  pandas, scikit-learn,
pyqtgraph and torch are imported later, on worker threads or when the first
plot is built, so the window appears quickly (check with
``python -X importtime main.py --version`` and ``make run``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gui.main_window import MainWindow

__all__ = ["main", "parse_args", "build_window", "configure_application", "split_session_argument"]

APP_NAME = "Probity"
ORG_NAME = "Probity"
# Deferred so the window paints first; the probe itself runs on a worker.
DEVICE_PROBE_DELAY_MS = 1500


def _version() -> str:
    from engine import __version__

    return __version__


SESSION_SUFFIX = ".probity"


def split_session_argument(argv: Sequence[str]) -> tuple[Path | None, list[str]]:
    """The first ``*.probity`` argument (not an option) and the other arguments, in their order.

    Taken out before argparse sees the rest, so a Qt option's value (``-platform xcb``) is never
    mistaken for a session file.
    """
    session: Path | None = None
    rest: list[str] = []
    for argument in argv:
        if session is None and not argument.startswith("-") and argument.lower().endswith(SESSION_SUFFIX):
            session = Path(argument)
        else:
            rest.append(argument)
    return session, rest


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Probity's options and the remaining arguments (handed to Qt, e.g. ``-platform``).

    A ``.probity`` session file named anywhere among the arguments is ``args.session``: that is how
    the installed desktop entry (``probity-gui %f``) opens a session the user double-clicked.
    """
    session, argv = split_session_argument(list(sys.argv[1:] if argv is None else argv))
    parser = argparse.ArgumentParser(
        prog="probity-gui",
        description="Probity: audit a machine-learning model.",
        usage="%(prog)s [SESSION.probity] [options]",
    )
    parser.add_argument("--data", type=Path, metavar="PATH", help="open this data table")
    parser.add_argument("--model", type=Path, metavar="PATH", help="open this model file")
    parser.add_argument("--target", metavar="COLUMN", help="the target column of --data")
    parser.add_argument(
        "--demo", action="store_true", help="open the built-in credit demo (data, model, target and sensitive column)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    args, rest = parser.parse_known_args(argv)
    args.session = session
    return args, rest


def configure_application(app: object) -> None:
    """Names (for QSettings and the log folder) and the light theme."""
    from PySide6.QtWidgets import QApplication

    from gui.resources import apply_theme

    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(_version())
    apply_theme(app)


def build_window(args: argparse.Namespace, **kwargs: object) -> MainWindow:
    """The main window, with the files named on the command line being opened."""
    from gui.main_window import MainWindow

    window = MainWindow(**kwargs)  # type: ignore[arg-type]
    if getattr(args, "session", None) is not None:
        window.session_keeper.open(args.session)
    elif args.demo:
        window.open_demo()
    else:
        if args.data is not None:
            window.open_data(args.data, target=args.target)
        if args.model is not None:
            window.open_model(args.model)
            if args.data is None:
                window.tabs.setCurrentWidget(window.model_pane)
    return window


def _session_file_opener(window: MainWindow) -> object:
    """An application event filter that opens a ``.probity`` file the system asks the app to open.

    On macOS a double-click on a session does not start the app with the path as an argument;
    Qt delivers a ``QFileOpenEvent`` to the application instead.
    """
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtGui import QFileOpenEvent

    class _Opener(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
            if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
                path = Path(event.file())
                if path.suffix.lower() == SESSION_SUFFIX:
                    window.session_keeper.open(path)
                    return True
            return False

    return _Opener(window)


def _quiet_qt_messages() -> object:
    """Send Qt's own warnings to the log, not the user's terminal; returns the previous handler."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qt_log = logging.getLogger("probity.qt")

    def handler(kind: QtMsgType, _context: object, message: str) -> None:
        level = logging.WARNING if kind in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg) else logging.DEBUG
        qt_log.log(level, message)

    return qInstallMessageHandler(handler)


def _configure_logging() -> logging.Handler:
    """Log records of the ``probity`` loggers to the user's log file; returns the handler added."""
    try:
        from engine.logs import log_dir

        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(folder / "probity.log", encoding="utf-8", delay=True)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("probity")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False  # nothing reaches the console
    return handler


# Libraries Qt's xcb platform plugin loads, with the Debian/Ubuntu package of each.
XCB_LIBRARIES = (
    ("xcb-cursor", "libxcb-cursor0"),
    ("xcb-icccm", "libxcb-icccm4"),
    ("xcb-keysyms", "libxcb-keysyms1"),
    ("xcb-image", "libxcb-image0"),
    ("xcb-render-util", "libxcb-render-util0"),
    ("xcb-randr", "libxcb-randr0"),
    ("xcb-shape", "libxcb-shape0"),
    ("xcb-xkb", "libxcb-xkb1"),
    ("xkbcommon-x11", "libxkbcommon-x11-0"),
)


def missing_display_library() -> str | None:
    """A sentence naming the system libraries Qt's X11 plugin lacks, or ``None``.

    Without them Qt aborts the process with a long message (since Qt 6.5 the
    xcb plugin also needs libxcb-cursor).  Checked only where xcb would be used.
    """
    import ctypes.util
    import os

    if not sys.platform.startswith("linux"):
        return None
    platform_name = os.environ.get("QT_QPA_PLATFORM", "")
    if platform_name and not platform_name.startswith("xcb"):
        return None
    if not os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    missing = [package for lib, package in XCB_LIBRARIES if ctypes.util.find_library(lib) is None]
    if missing:
        listed = " ".join(missing)
        return (
            f"Qt needs system libraries to open a window that are not installed ({listed}); install them "
            f"(Debian/Ubuntu: sudo apt-get install {listed}) and start Probity again."
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the desktop app; returns the process exit code."""
    try:
        args, qt_args = parse_args(argv)
    except SystemExit as exc:  # --help / --version / a usage error already printed its text
        return int(exc.code) if isinstance(exc.code, int) else 2

    from engine import netguard

    netguard.install()  # before Qt, plugins or a model: nothing in the app reaches another machine
    problem = missing_display_library()
    if problem is not None:
        print(f"probity-gui: {problem}", file=sys.stderr)
        return 2

    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from gui.crash import CrashReporter

    if QApplication.instance() is None:
        # Fractional scale factors (125 %, 150 %) are used as they are, so text stays crisp.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "probity-gui", *qt_args])
    assert isinstance(app, QApplication)
    configure_application(app)
    log_handler = _configure_logging()
    previous_qt_handler = _quiet_qt_messages()
    reporter = CrashReporter(app)
    reporter.install()
    try:
        try:
            window = build_window(args, reporter=reporter)
        except Exception as exc:  # a bug before the event loop: show it, do not dump it on the console
            _show_startup_failure(exc)
            return 1
        window.show()
        opener = _session_file_opener(window)  # macOS hands a double-clicked session over as an event
        app.installEventFilter(opener)
        QTimer.singleShot(DEVICE_PROBE_DELAY_MS, window.start_device_probe)
        # After a crash or kill, the autosaved session is offered back once the window is up.
        QTimer.singleShot(0, window.offer_recovery)
        code = app.exec()
        window.runner.shutdown(3000)
        return int(code)
    finally:
        reporter.uninstall()
        from PySide6.QtCore import qInstallMessageHandler

        qInstallMessageHandler(previous_qt_handler)  # type: ignore[arg-type]
        logging.getLogger("probity").removeHandler(log_handler)
        log_handler.close()


def _show_startup_failure(exc: Exception) -> None:
    import traceback

    from gui.crash import ErrorDialog, write_crash_log

    path = write_crash_log(exc, context="start-up")
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    ErrorDialog(
        "Probity could not start", f"Probity could not start.\n\n{type(exc).__name__}: {exc}", details, log_path=path
    ).exec()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
