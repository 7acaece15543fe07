"""Start the Probity desktop app: build the QApplication and hand over to gui.app.

A ``.probity`` session file named on the command line is opened once the window is built: that is
how the installed desktop entry (``probity-gui %f``) opens a session the user double-clicked.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

SESSION_SUFFIX = ".probity"


def split_session_argument(argv: Sequence[str]) -> tuple[Path | None, list[str]]:
    """The first ``*.probity`` argument (not an option) and the other arguments, in their order."""
    session: Path | None = None
    rest: list[str] = []
    for argument in argv:
        if session is None and not argument.startswith("-") and argument.lower().endswith(SESSION_SUFFIX):
            session = Path(argument)
        else:
            rest.append(argument)
    return session, rest


def main(argv: Sequence[str] | None = None) -> int:
    import gui.app

    session, rest = split_session_argument(list(sys.argv[1:] if argv is None else argv))
    if session is None:
        return gui.app.main(rest)
    build_window = gui.app.build_window

    def build_window_opening_session(args, **kwargs):  # type: ignore[no-untyped-def]
        window = build_window(args, **kwargs)
        window.session_keeper.open(session)
        return window

    gui.app.build_window = build_window_opening_session
    try:
        return gui.app.main(rest)
    finally:
        gui.app.build_window = build_window


if __name__ == "__main__":
    if getattr(sys, "frozen", False):
        # In the installed bundle, child processes (the model probe) start through the `probity` command;
        # multiprocessing would have them re-run this script from __main__.__file__, which is no file there.
        vars(sys.modules["__main__"]).pop("__file__", None)
    sys.exit(main())
