"""Start the Probity desktop app: build the QApplication and hand over to gui.app."""

import sys

from gui.app import main

if __name__ == "__main__":
    sys.exit(main())
