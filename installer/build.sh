#!/usr/bin/env bash
# `make installer`: the PyInstaller bundle of one flavour and everything IT receives with it.
#
#   installer/build.sh [cpu|cuda]
#
# 1. build/venv-FLAVOUR: the pinned dependencies with that torch build (installer/build-venv.sh)
# 2. build/dist-FLAVOUR/probity: the one-folder bundle (installer/probity.spec)
# 3. dist/: the .deb and .tar.gz (Linux), the CycloneDX SBOM, the third-party licence list, the size
#    table, and SHA256SUMS over every artefact in dist/
# Nothing here needs the network once the build venv exists.
set -euo pipefail
FLAVOUR="${1:-${FLAVOUR:-cpu}}"
cd "$(dirname "$0")/.."
case "$FLAVOUR" in cpu|cuda) ;; *) echo "installer/build.sh: FLAVOUR must be cpu or cuda, not '$FLAVOUR'." >&2; exit 2;; esac
VENV="build/venv-$FLAVOUR"
WORK="build/pyinstaller-$FLAVOUR"
BUNDLE_PARENT="build/dist-$FLAVOUR"
OUT="dist"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
suffix=""; [ "$FLAVOUR" = cpu ] || suffix="-$FLAVOUR"
# Dates inside the artefacts come from the last commit, so a rebuild of one commit gives the same text.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export PROBITY_BUILD_DATE="${PROBITY_BUILD_DATE:-$(date -u -d "@$SOURCE_DATE_EPOCH" +%F 2>/dev/null || date -u +%F)}"
export PROBITY_FLAVOUR="$FLAVOUR"

stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements/constraints.txt -nt "$stamp" ]; then
  bash installer/build-venv.sh "$FLAVOUR" "$VENV"
  touch "$stamp"
fi

rm -rf "$BUNDLE_PARENT/probity"
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN --distpath "$BUNDLE_PARENT" --workpath "$WORK" \
  installer/probity.spec
BUNDLE="$BUNDLE_PARENT/probity"

mkdir -p "$OUT"
"$VENV/bin/cyclonedx-py" environment --pyproject pyproject.toml --output-reproducible --sv 1.6 \
  -o "$WORK/env-sbom.json" "$VENV"
"$VENV/bin/python" installer/bundle_report.py --dist "$BUNDLE" --contents "$WORK/probity/bundle-contents.json" \
  --env-sbom "$WORK/env-sbom.json" --sbom "$OUT/probity-$VERSION$suffix.cdx.json" \
  --sizes "$WORK/sizes.md"
cp "$BUNDLE/THIRD-PARTY-LICENSES.txt" "$OUT/probity-$VERSION$suffix-THIRD-PARTY-LICENSES.txt"

case "$(uname -s)" in
  Linux) bash installer/linux/package.sh "$BUNDLE" "$OUT" "$VERSION" "$FLAVOUR" ;;
  *) echo "installer/build.sh: the bundle is in $BUNDLE; package it with installer/windows/probity.nsi (Windows)" \
          "or the .app/.dmg recipe in docs/install.md (macOS)." ;;
esac

# Sizes: the installed folder and each compressed artefact.
{
  cat "$WORK/sizes.md"
  echo
  echo "| artefact | MB |"
  echo "| --- | ---: |"
  for f in "$OUT"/*"$VERSION"*; do
    case "$f" in *.deb|*.tar.gz|*.exe|*.dmg) echo "| \`$(basename "$f")\` | $(( $(stat -c %s "$f") / 1000000 )) |" ;; esac
  done
} > "$OUT/sizes-$FLAVOUR.md"

# The budget for the CPU flavour (docs/install.md): 1.5 GB installed, 600 MB for each compressed installer.
if [ "$FLAVOUR" = cpu ]; then
  installed=$(du -sb --apparent-size "$BUNDLE" | cut -f1)
  [ "$installed" -le 1500000000 ] || { echo "installer/build.sh: the bundle is $((installed / 1000000)) MB, over the 1,500 MB budget." >&2; exit 1; }
  for f in "$OUT"/*"$VERSION"*.deb "$OUT"/*"$VERSION"*-cpu.tar.gz; do
    [ -f "$f" ] || continue
    size=$(stat -c %s "$f")
    [ "$size" -le 600000000 ] || { echo "installer/build.sh: $(basename "$f") is $((size / 1000000)) MB, over the 600 MB budget." >&2; exit 1; }
  done
fi

(cd "$OUT" && find . -maxdepth 1 -type f ! -name SHA256SUMS ! -name '*.md' -printf '%f\n' | sort \
  | xargs -r sha256sum > SHA256SUMS)
echo "installer/build.sh: artefacts in $OUT/:"
(cd "$OUT" && ls -l --block-size=M $(cut -d' ' -f3- SHA256SUMS) SHA256SUMS)
