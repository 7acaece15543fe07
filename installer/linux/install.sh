#!/usr/bin/env sh
# Install Probity from this unpacked folder, on a Linux machine without dpkg (or without admin rights).
#
#   ./install.sh            for you alone: ~/.local/opt/probity, commands in ~/.local/bin
#   sudo ./install.sh       for everyone:  /opt/probity, commands in /usr/local/bin
#   ./install.sh --user | --system     choose explicitly
#   ./install.sh --prefix DIR          the program goes to DIR/probity (commands and menu entry as above)
#   ~/.local/opt/probity/uninstall.sh  (or /opt/probity/uninstall.sh) removes what this script installed
#
# It copies the program, links `probity` and `probity-gui` into a folder on PATH, adds the menu entry
# with its icon, and registers the .probity session type so a double-click on a session opens it.
# Nothing is downloaded.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
mode=""
prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --user) mode=user ;;
    --system) mode=system ;;
    --prefix) shift; prefix="${1:?--prefix needs a folder}" ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see ./install.sh --help)." >&2; exit 2 ;;
  esac
  shift
done
[ -n "$mode" ] || { if [ "$(id -u)" = 0 ]; then mode=system; else mode=user; fi; }

if [ "$mode" = system ]; then
  [ "$(id -u)" = 0 ] || { echo "install.sh: --system needs root (sudo ./install.sh --system)." >&2; exit 2; }
  app="${prefix:-/opt}/probity"; bin=/usr/local/bin; share=/usr/local/share
else
  app="${prefix:-$HOME/.local/opt}/probity"; bin="$HOME/.local/bin"; share="${XDG_DATA_HOME:-$HOME/.local/share}"
fi

[ -x "$here/probity" ] && [ -x "$here/probity-gui" ] && [ -d "$here/_internal" ] \
  || { echo "install.sh: run it from the unpacked Probity folder ($here has no probity program)." >&2; exit 2; }

if [ -e "$app" ]; then
  if [ -x "$app/uninstall.sh" ]; then "$app/uninstall.sh" --quiet; else
    echo "install.sh: $app exists and was not installed by this script; move it away first." >&2; exit 2
  fi
fi

mkdir -p "$(dirname "$app")" "$bin" "$share/applications" "$share/mime/packages" \
  "$share/icons/hicolor/scalable/apps" "$share/icons/hicolor/256x256/apps" "$share/icons/hicolor/scalable/mimetypes"
cp -a "$here" "$app.partial"
rm -f "$app.partial/install.sh"
mv "$app.partial" "$app"

ln -sf "$app/probity" "$bin/probity"
ln -sf "$app/probity-gui" "$bin/probity-gui"
# The menu entry names the program by its full path: $bin need not be on PATH for a double-click.
sed -e "s|^Exec=probity-gui|Exec=$app/probity-gui|" -e "s|^TryExec=probity-gui|TryExec=$app/probity-gui|" \
  "$here/share/applications/probity.desktop" > "$share/applications/probity.desktop"
cp "$here/share/mime/packages/probity.xml" "$share/mime/packages/probity.xml"
cp "$here/share/icons/hicolor/scalable/apps/probity.svg" "$share/icons/hicolor/scalable/apps/probity.svg"
cp "$here/share/icons/hicolor/256x256/apps/probity.png" "$share/icons/hicolor/256x256/apps/probity.png"
cp "$here/share/icons/hicolor/scalable/mimetypes/application-x-probity-session.svg" \
  "$share/icons/hicolor/scalable/mimetypes/application-x-probity-session.svg"

cat > "$app/uninstall.sh" <<EOF
#!/usr/bin/env sh
# Remove Probity as install.sh put it here (your sessions, reports and settings are kept).
set -eu
[ "\${1:-}" = --quiet ] || echo "Removing Probity from $app"
rm -f "$bin/probity" "$bin/probity-gui" "$share/applications/probity.desktop" \\
  "$share/mime/packages/probity.xml" "$share/icons/hicolor/scalable/apps/probity.svg" \\
  "$share/icons/hicolor/256x256/apps/probity.png" \\
  "$share/icons/hicolor/scalable/mimetypes/application-x-probity-session.svg"
command -v update-mime-database >/dev/null 2>&1 && update-mime-database "$share/mime" >/dev/null 2>&1 || true
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$share/applications" >/dev/null 2>&1 || true
rm -rf "$app"
EOF
chmod +x "$app/uninstall.sh"

command -v update-mime-database >/dev/null 2>&1 && update-mime-database "$share/mime" >/dev/null 2>&1 || true
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$share/applications" >/dev/null 2>&1 || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q "$share/icons/hicolor" >/dev/null 2>&1 || true

echo "Probity is installed in $app."
echo "Start it from the applications menu, or run: $bin/probity-gui   (command line: $bin/probity --help)"
case ":$PATH:" in *":$bin:"*) ;; *) echo "Note: $bin is not on your PATH; add it to run 'probity' by name." ;; esac

# Qt's X11 platform needs these system libraries (the .deb declares them; here we can only say so).
missing=""
for pair in xcb-cursor:libxcb-cursor0 xcb-icccm:libxcb-icccm4 xcb-keysyms:libxcb-keysyms1 xcb-image:libxcb-image0 \
            xcb-render-util:libxcb-render-util0 xcb-randr:libxcb-randr0 xcb-shape:libxcb-shape0 xcb-xkb:libxcb-xkb1 \
            xkbcommon-x11:libxkbcommon-x11-0 EGL:libegl1 GL:libgl1 fontconfig:libfontconfig1; do
  lib=${pair%%:*}; pkg=${pair#*:}
  if command -v ldconfig >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q "lib$lib\.so"; then
    missing="$missing $pkg"
  fi
done
if [ -n "$missing" ]; then
  echo "Note: the window needs system libraries that are not installed:$missing"
  echo "      (Debian/Ubuntu: sudo apt-get install$missing; other systems: their packages of the same names)."
fi
