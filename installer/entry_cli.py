"""The ``probity`` command in the installed bundle (PyInstaller's script for ``engine.cli:main``)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from engine.cli import main

    sys.exit(main())
