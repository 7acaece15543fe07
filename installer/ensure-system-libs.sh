#!/usr/bin/env bash
# Make sure the system tools the suite needs headless are present (Debian/Ubuntu),
# or with --gui what a real window needs:
# the libraries Qt needs offscreen, poppler's pdftotext/pdftoppm for the
# report tests, and desktop-file-validate and makensis for the installer tests.
# Installs with apt-get when something is missing and we are root;
# otherwise prints the command to run.  Does nothing when all is present.
set -uo pipefail
PY="${PY:-.venv/bin/python}"
qt_starts() {
  QT_QPA_PLATFORM=offscreen "$PY" - <<'PYEOF' >/dev/null 2>&1
from PySide6.QtWidgets import QApplication
app = QApplication([])
PYEOF
}
missing=""
if [ "${1:-}" = "--gui" ]; then
  # A real window on X11 needs the xcb libraries Qt's platform plugin loads (gui/app.py lists them).
  [ "$(uname -s)" = "Linux" ] && [ -n "${DISPLAY:-}" ] || exit 0
  gui_missing=$("$PY" -c 'import ctypes.util; from gui.app import XCB_LIBRARIES as L; print(" ".join(p for l, p in L if ctypes.util.find_library(l) is None))')
  [ -z "$gui_missing" ] && exit 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "Installing the libraries Qt needs for a window: $gui_missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $gui_missing >/dev/null || exit 1
  else
    echo "Probity's window needs: $gui_missing. Run 'sudo apt-get install $gui_missing', then 'make run' again." >&2
    exit 1
  fi
  exit 0
fi
qt_ok=1
qt_starts || { qt_ok=0; missing="$missing libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3"; }
command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || missing="$missing poppler-utils"
# The installer tests validate the desktop entry and compile the NSIS script with these (they skip without).
command -v desktop-file-validate >/dev/null 2>&1 || missing="$missing desktop-file-utils"
command -v makensis >/dev/null 2>&1 || missing="$missing nsis"
[ -z "$missing" ] && exit 0

if [ "$(uname -s)" = "Linux" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "Installing system packages the tests need:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || exit 1
elif [ "$qt_ok" = 1 ]; then
  # Only optional tools are missing: the tests that need them skip and say why.
  echo "Note:$missing not installed; the tests that need them will be skipped." >&2
  exit 0
else
  echo "Qt cannot start offscreen; install its libraries (Debian/Ubuntu: sudo apt-get install$missing) and rerun." >&2
  exit 1
fi
qt_starts || { echo "Qt still cannot start offscreen; run: QT_QPA_PLATFORM=offscreen $PY -c 'from PySide6.QtWidgets import QApplication; QApplication([])'" >&2; exit 1; }
