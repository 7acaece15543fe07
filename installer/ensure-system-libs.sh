#!/usr/bin/env bash
# Make sure the system libraries Qt needs headless are present (Debian/Ubuntu).
# Does nothing when Qt already starts offscreen; installs with apt-get when it
# does not and we are root; otherwise prints the command to run.
set -uo pipefail
PY="${PY:-.venv/bin/python}"
probe() {
  QT_QPA_PLATFORM=offscreen "$PY" - <<'PYEOF' >/dev/null 2>&1
from PySide6.QtWidgets import QApplication
app = QApplication([])
PYEOF
}
if probe; then exit 0; fi
PKGS="libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3 xvfb poppler-utils"
if [ "$(uname -s)" = "Linux" ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "Installing system libraries Qt needs: $PKGS"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PKGS >/dev/null
  else
    echo "Qt cannot start; install its libraries with: sudo apt-get install $PKGS" >&2
    exit 1
  fi
fi
probe || { echo "Qt still cannot start offscreen; see the output of: QT_QPA_PLATFORM=offscreen $PY -c 'from PySide6.QtWidgets import QApplication; QApplication([])'" >&2; exit 1; }
