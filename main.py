"""Start the Probity desktop app: build the QApplication and hand over to gui.app.

A ``.probity`` session file named on the command line is opened once the window is built
(:func:`gui.app.parse_args`): that is how the installed desktop entry opens a double-clicked session.
"""

import sys

from gui.app import main

if __name__ == "__main__":
    if getattr(sys, "frozen", False):
        # In the installed bundle, child processes (the model probe) start through the `probity` command;
        # multiprocessing would have them re-run this script from __main__.__file__, which is no file there.
        vars(sys.modules["__main__"]).pop("__file__", None)
    sys.exit(main())
