#!/usr/bin/env bash
# `make installer-test`: install what users install and use it with no network, as a user would.
#
#   installer/installer-test.sh [cpu|cuda]
#
# The .deb is unpacked into a scratch root (dpkg -x) and the .tar.gz installed with its install.sh
# (--user, into a scratch home).  For each, inside `unshare -n` (a network namespace with no
# interface but a down loopback) and under Xvfb with Qt's xcb platform (offscreen would hide missing
# X libraries):
#   1. the installed `probity` audits the demo into a PDF and `probity verify` passes on it, and explains an
#      XGBoost, a LightGBM, a CatBoost and a TorchScript model (their native libraries are in the bundle);
#   2. `probity-gui` from PATH opens a window, and a screenshot of the screen is not blank;
#   3. a saved .probity session opened with the desktop entry's Exec line reopens its data;
#   4. nothing in the app's log says it tried the network.
# Screenshots and logs stay in build/installer-test-FLAVOUR/ (look at the PNGs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "${1:-}" = --inside ]; then
  shift
  NAME="$1"; APP="$2"; BIN="$3"; DESKTOP="$4"; T="$5"; PY="$6"
  fail() { echo "installer-test [$NAME]: FAIL: $*" >&2; exit 1; }
  say() { echo "installer-test [$NAME]: $*"; }

  # No network here: only a loopback interface, and no route.
  ifaces=$(tail -n +3 /proc/self/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')  # this namespace's own
  [ "$ifaces" = "lo " ] || fail "expected no network interface but lo, found: $ifaces"
  [ "$(wc -l < /proc/net/route)" -le 1 ] || fail "a route exists inside the test namespace"
  say "no network: interfaces '$ifaces', no routes"

  export HOME="$T/home-$NAME" XDG_RUNTIME_DIR="$T/run-$NAME" QT_QPA_PLATFORM=xcb
  export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share" XDG_STATE_HOME="$HOME/.local/state"
  mkdir -p "$HOME" && mkdir -m 700 -p "$XDG_RUNTIME_DIR"
  unset WAYLAND_DISPLAY
  export PATH="$BIN:$PATH"
  demo="$APP/_internal/resources/demo"

  # 1. the command line: audit the demo, then verify the report against the data and model.
  [ "$(command -v probity)" = "$BIN/probity" ] || fail "probity on PATH is $(command -v probity), not $BIN/probity"
  probity --version
  probity --progress none audit --data "$demo/credit.csv" --model "$demo/credit_model.skops" --target approved \
    --sensitive group --out "$T/audit-$NAME" > "$T/audit-$NAME.log" 2>&1 || { cat "$T/audit-$NAME.log"; fail "probity audit failed"; }
  [ "$(head -c 5 "$T/audit-$NAME/report.pdf")" = "%PDF-" ] || fail "probity audit wrote no PDF"
  say "probity audit wrote $(stat -c %s "$T/audit-$NAME/report.pdf") bytes of PDF"
  probity verify "$T/audit-$NAME/report.pdf" --data "$demo/credit.csv" --model "$demo/credit_model.skops" \
    > "$T/verify-$NAME.log" 2>&1 || { cat "$T/verify-$NAME.log"; fail "probity verify did not pass"; }
  say "probity verify: $(grep -m 1 "^verified" "$T/verify-$NAME.log")"
  # Each native model format, explained with the bundled libraries (made outside by installer/make_format_models.py).
  for pair in model_xgb.json:shap model_lgb.txt:shap model_cat.cbm:shap model_net.pt:ig; do
    file="${pair%%:*}"; method="${pair#*:}"
    probity --progress none explain "$method" --data "$T/formats/formats.csv" --model "$T/formats/$file" \
      --target approved --rows 0-4 --out "$T/explain-$NAME-$file.json" > "$T/explain-$NAME-$file.log" 2>&1 \
      || { cat "$T/explain-$NAME-$file.log"; fail "probity explain $method on $file failed"; }
    say "probity explain $method on $file: $(grep -o '"method": *"[a-z_]*"' "$T/explain-$NAME-$file.json" | head -n 1)"
  done

  # 2. the window, on a virtual X screen through Qt's xcb plugin.
  Xvfb -displayfd 3 -nolisten tcp -screen 0 1366x768x24 3> "$T/display-$NAME" 2> "$T/xvfb-$NAME.log" &
  xvfb=$!
  trap 'kill $xvfb 2>/dev/null || true' EXIT
  for _ in $(seq 100); do [ -s "$T/display-$NAME" ] && break; sleep 0.1; done
  export DISPLAY=":$(cat "$T/display-$NAME")"

  not_blank() {  # $1: PNG; at least 20 colours and some contrast
    local colours spread
    colours=$(identify -format '%k' "$1")
    spread=$(convert "$1" -colorspace Gray -format '%[fx:standard_deviation]' info:)
    say "$(basename "$1"): $colours colours, grey standard deviation $spread"
    [ "$colours" -ge 20 ] && awk -v s="$spread" 'BEGIN { exit !(s > 0.02) }'
  }
  wait_window() {  # $1: window-name regex, $2: seconds; prints the seconds it took
    local start now
    start=$(date +%s.%N)
    timeout "$2" xdotool search --sync --onlyvisible --name "$1" > /dev/null 2>&1 || return 1
    now=$(date +%s.%N)
    awk -v a="$start" -v b="$now" 'BEGIN { printf "%.2f", b - a }'
  }
  stop_gui() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

  probity-gui > "$T/gui-$NAME.log" 2>&1 &
  gui=$!
  took=$(wait_window '^Probity' 60) || { cat "$T/gui-$NAME.log"; fail "probity-gui showed no window in 60 s"; }
  say "probity-gui window visible after $took s"
  sleep 2
  import -window root "$T/$NAME-window.png"
  stop_gui $gui
  not_blank "$T/$NAME-window.png" || fail "the screenshot $T/$NAME-window.png is blank"

  # 3. a saved session, opened the way a double-click does: the desktop entry's Exec line.
  session="$T/session-$NAME/credit-audit.probity"
  mkdir -p "$(dirname "$session")"
  "$PY" - "$demo/credit.csv" "$demo/credit_model.skops" "$session" <<'PYEOF'
import sys
from pathlib import Path

from engine.demo import FEATURES, SENSITIVE, TARGET
from engine.hashing import sha256_file
from engine.schema import Roles
from engine.session_store import FileRecord, SessionState, write_session

data, model, out = map(Path, sys.argv[1:4])
state = SessionState(
    data=FileRecord(path=data, sha256=sha256_file(data)),
    model=FileRecord(path=model, sha256=sha256_file(model)),
    roles=Roles(target=TARGET, features=FEATURES, sensitive=SENSITIVE, ignored=("application_id",)),
    notes="Saved by installer-test.sh",
)
write_session(out, state)
PYEOF
  exec_line=$(sed -n 's/^Exec=//p' "$DESKTOP" | head -n 1)
  [ -n "$exec_line" ] || fail "$DESKTOP has no Exec line"
  read -r -a command <<< "$exec_line"
  for i in "${!command[@]}"; do [ "${command[$i]}" = "%f" ] && command[$i]="$session"; done
  say "opening the session with the desktop entry: ${command[*]}"
  "${command[@]}" > "$T/session-$NAME.log" 2>&1 &
  gui=$!
  took=$(wait_window '^Probity — credit\.csv' 90) \
    || { cat "$T/session-$NAME.log"; import -window root "$T/$NAME-session.png"; stop_gui $gui; fail "the session did not reopen its data (see $T/$NAME-session.png)"; }
  say "session reopened credit.csv after $took s"
  sleep 3
  import -window root "$T/$NAME-session.png"
  stop_gui $gui
  not_blank "$T/$NAME-session.png" || fail "the screenshot $T/$NAME-session.png is blank"

  # 4. no traceback on the console, and no network attempt in the log.
  if grep -l "Traceback" "$T/gui-$NAME.log" "$T/session-$NAME.log" "$T/audit-$NAME.log" 2>/dev/null; then
    fail "a traceback reached the console"
  fi
  # engine.netguard logs every refused connection under the logger probity.network.
  attempts=$(find "$HOME" -name '*.log' -path '*probity*' -exec cat {} + 2>/dev/null | grep -c "probity\.network" || true)
  [ "$attempts" = 0 ] || { find "$HOME" -name '*.log' -path '*probity*' -exec grep -h "probity\.network" {} + | head
                           fail "the log records $attempts refused network attempts"; }
  say "no network attempt in the app's log"
  say "passed"
  exit 0
fi

# -- outside: build if needed, install both ways, run the checks above in a network-less namespace ------------
FLAVOUR="${1:-${FLAVOUR:-cpu}}"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
suffix=""; [ "$FLAVOUR" = cpu ] || suffix="-$FLAVOUR"
deb="dist/probity_${VERSION}_amd64${suffix}.deb"
tarball="dist/probity-$VERSION-linux-x86_64-$FLAVOUR.tar.gz"
PY="$ROOT/build/venv-$FLAVOUR/bin/python"
if [ ! -f "$deb" ] || [ ! -f "$tarball" ] || [ ! -x "$PY" ]; then
  echo "installer-test: building the installers first (make installer FLAVOUR=$FLAVOUR)"
  bash installer/build.sh "$FLAVOUR"
fi

# The tools this test drives, and the libraries the .deb declares (as `apt install ./probity.deb` would).
need_packages=""
for pair in Xvfb:xvfb xdotool:xdotool import:imagemagick desktop-file-validate:desktop-file-utils \
            update-mime-database:shared-mime-info unshare:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_packages="$need_packages ${pair#*:}"
done
for pkg in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g'); do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_packages="$need_packages $pkg"
done
if [ -n "$need_packages" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installer-test: installing$need_packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_packages >/dev/null
  else
    echo "installer-test: needs$need_packages (sudo apt-get install$need_packages)." >&2; exit 2
  fi
fi

(cd dist && sha256sum --quiet -c SHA256SUMS) || { echo "installer-test: dist/SHA256SUMS does not match the artefacts." >&2; exit 1; }
echo "installer-test: dist/SHA256SUMS matches every artefact"

T="$ROOT/build/installer-test-$FLAVOUR"
rm -rf "$T" && mkdir -p "$T"
"$PY" installer/make_format_models.py "$T/formats"
echo "installer-test: made an XGBoost, a LightGBM, a CatBoost and a TorchScript model in $T/formats"

# The .deb, unpacked as dpkg would install it; its menu entry validated and its MIME type compiled.
dpkg-deb -x "$deb" "$T/deb-root"
desktop-file-validate "$T/deb-root/usr/share/applications/probity.desktop"
update-mime-database "$T/deb-root/usr/share/mime" > /dev/null
grep -q 'glob pattern="\*.probity"' "$T/deb-root/usr/share/mime/application/x-probity-session.xml"
echo "installer-test: .deb unpacked; menu entry valid; .probity registered as application/x-probity-session"
echo "installer-test: .deb Depends: $(dpkg-deb -f "$deb" Depends)"

# The .tar.gz, installed for one user by its install.sh into a scratch home.
mkdir -p "$T/tar" "$T/tar-home"
tar -xzf "$tarball" -C "$T/tar"
HOME="$T/tar-home" XDG_DATA_HOME="$T/tar-home/.local/share" "$T/tar/probity-$VERSION-linux-x86_64-$FLAVOUR/install.sh" --user
tar_desktop="$T/tar-home/.local/share/applications/probity.desktop"
desktop-file-validate "$tar_desktop"
grep -q 'glob pattern="\*.probity"' "$T/tar-home/.local/share/mime/application/x-probity-session.xml"
echo "installer-test: .tar.gz installed with install.sh --user; menu entry valid; .probity registered"

status=0
unshare -n bash "$0" --inside deb "$T/deb-root/opt/probity" "$T/deb-root/usr/bin" \
  "$T/deb-root/usr/share/applications/probity.desktop" "$T" "$PY" || status=1
unshare -n bash "$0" --inside tar "$T/tar-home/.local/opt/probity" "$T/tar-home/.local/bin" "$tar_desktop" "$T" "$PY" || status=1

# install.sh's uninstaller takes everything back out.
HOME="$T/tar-home" XDG_DATA_HOME="$T/tar-home/.local/share" "$T/tar-home/.local/opt/probity/uninstall.sh"
left=$(find "$T/tar-home" -type f -path '*probity*' ! -path '*/.local/state/*' ! -path '*/.config/*' ! -path '*/mime/*' | head -n 5)
[ -z "$left" ] || { echo "installer-test: uninstall.sh left files behind: $left" >&2; status=1; }

echo "installer-test: screenshots in $T: $(cd "$T" && ls ./*.png | tr '\n' ' ')"
[ $status = 0 ] && echo "installer-test: all checks passed for the .deb and the .tar.gz ($FLAVOUR)"
exit $status
