#!/usr/bin/env bash
# Package the PyInstaller folder (dist/probity) as
#   OUT/probity_VERSION_amd64[-cuda].deb          /opt/probity, /usr/bin links, menu entry, .probity type
#   OUT/probity-VERSION-linux-x86_64-FLAVOUR.tar.gz   the folder with install.sh, for machines without dpkg
#
#   installer/linux/package.sh DIST OUT VERSION FLAVOUR
#
# The .deb's Depends are worked out from the bundle itself: every library a bundled program or library
# links to that the bundle does not carry is looked up with `dpkg -S` and declared (with the glibc
# version the bundle needs), together with the libraries Qt's X11 platform plugin loads.
set -euo pipefail
DIST="${1:?usage: package.sh DIST OUT VERSION FLAVOUR}"
OUT="${2:?}"
VERSION="${3:?}"
FLAVOUR="${4:?}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ -x "$DIST/probity" ] && [ -x "$DIST/probity-gui" ] || { echo "package.sh: no bundle in $DIST (run make installer)." >&2; exit 2; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
suffix=""; [ "$FLAVOUR" = cpu ] || suffix="-$FLAVOUR"
work=$(mktemp -d "${TMPDIR:-/tmp}/probity-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

# -- the shared desktop files --------------------------------------------------------------------------
share_tree() {  # $1: a share/ folder to fill
  install -Dm644 "$here/probity.desktop" "$1/applications/probity.desktop"
  install -Dm644 "$here/probity-mime.xml" "$1/mime/packages/probity.xml"
  install -Dm644 "$root/resources/icons/probity.svg" "$1/icons/hicolor/scalable/apps/probity.svg"
  install -Dm644 "$root/installer/icons/probity-256.png" "$1/icons/hicolor/256x256/apps/probity.png"
  install -Dm644 "$root/resources/icons/probity.svg" "$1/icons/hicolor/scalable/mimetypes/application-x-probity-session.svg"
}

# -- what the bundle needs from the system -------------------------------------------------------------
# Qt's xcb plugin opens these at run time (gui/app.py XCB_LIBRARIES); the rest comes from the ELF files.
xcb_packages=$(cd "$root" && python3 - <<'PYEOF'
import ast, pathlib
tree = ast.parse(pathlib.Path("gui/app.py").read_text(encoding="utf-8"))
for node in ast.walk(tree):
    if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "XCB_LIBRARIES" for t in node.targets):
        print(" ".join(package for _lib, package in ast.literal_eval(node.value)))
PYEOF
)
system_packages=""
glibc_needed="2.17"
if command -v dpkg >/dev/null 2>&1; then
  # Libraries linked by the bundle's ELF files that resolve outside the bundle.
  libs=$( { find "$DIST" -type f -name '*.so*'; echo "$DIST/probity"; echo "$DIST/probity-gui"; } \
    | LD_LIBRARY_PATH="$DIST/_internal" xargs -r ldd 2>/dev/null \
    | awk '/=> \// {print $3}' | grep -v "^$DIST" | sort -u || true)
  for lib in $libs; do
    real=$(readlink -f "$lib")
    pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "/usr$real" 2>/dev/null || true)
    pkg=${pkg%%:*}
    [ -n "$pkg" ] && system_packages="$system_packages $pkg"
  done
  # The newest glibc symbol version any bundled file asks for.
  glibc_needed=$(find "$DIST" -type f \( -name '*.so*' -o -perm -u+x \) -print0 | xargs -0 -r objdump -T 2>/dev/null \
    | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1 || true)
fi
depends="libc6 (>= ${glibc_needed:-2.17})"
for pkg in $(echo "$xcb_packages $system_packages" | tr ' ' '\n' | grep -v '^$' | grep -v '^libc6$' | sort -u); do
  depends="$depends, $pkg"
done

# -- the .deb ------------------------------------------------------------------------------------------
if command -v dpkg-deb >/dev/null 2>&1; then
  deb="$work/deb"
  mkdir -p "$deb/opt" "$deb/usr/bin" "$deb/DEBIAN" "$deb/usr/share/doc/probity"
  cp -a "$DIST" "$deb/opt/probity"
  # Relative links: right both once installed and inside a `dpkg -x` scratch root.
  ln -s ../../opt/probity/probity "$deb/usr/bin/probity"
  ln -s ../../opt/probity/probity-gui "$deb/usr/bin/probity-gui"
  share_tree "$deb/usr/share"
  [ -f "$DIST/THIRD-PARTY-LICENSES.txt" ] && cp "$DIST/THIRD-PARTY-LICENSES.txt" "$deb/usr/share/doc/probity/copyright"
  size_kb=$(du -sk --apparent-size "$deb" | cut -f1)
  cat > "$deb/DEBIAN/control" <<EOF
Package: probity
Version: $VERSION
Architecture: amd64
Section: science
Priority: optional
Maintainer: Probity maintainers <probity@localhost>
Installed-Size: $size_kb
Depends: $depends
Provides: probity-$FLAVOUR
Description: offline workstation for auditing machine-learning models ($FLAVOUR build)
 Probity reads a tabular dataset and a trained model and gives explanations
 (SHAP, LIME, integrated gradients), fairness checks across groups and a
 reproducible PDF report, without any network access.
 .
 This package carries its own Python, Qt and torch ($FLAVOUR build) in
 /opt/probity; the commands probity and probity-gui are linked into /usr/bin.
EOF
  # The menu entry and the .probity type are registered by the triggers of desktop-file-utils and
  # shared-mime-info, which watch /usr/share/applications and /usr/share/mime/packages.
  find "$deb" -type d -exec chmod 755 {} +
  debfile="$OUT/probity_${VERSION}_amd64${suffix}.deb"
  dpkg-deb --root-owner-group -Zxz -z6 --build "$deb" "$debfile" >/dev/null
  echo "package.sh: wrote $debfile"
  echo "package.sh: Depends: $depends"
else
  echo "package.sh: dpkg-deb is not installed; no .deb made." >&2
fi

# -- the .tar.gz ---------------------------------------------------------------------------------------
name="probity-$VERSION-linux-x86_64-$FLAVOUR"
mkdir -p "$work/tar"
cp -a "$DIST" "$work/tar/$name"
share_tree "$work/tar/$name/share"
install -m755 "$here/install.sh" "$work/tar/$name/install.sh"
tarball="$OUT/$name.tar.gz"
tar -C "$work/tar" --owner=0 --group=0 --numeric-owner --sort=name -cf - "$name" | gzip -6 > "$tarball"
echo "package.sh: wrote $tarball"
