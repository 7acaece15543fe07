#!/usr/bin/env bash
# `make wheelhouse`: every wheel Probity needs, at its pinned version, for offline `pip install`.
#
#   installer/wheelhouse.sh            all targets: Linux x86-64 and Windows x86-64, CPython 3.11 and 3.12
#   WHEELHOUSE_TARGETS="linux-cp311" installer/wheelhouse.sh     only some of them
#
# Writes wheelhouse/ (one flat folder: pip picks each machine's own wheels from it) with probity's
# own wheel, the wheels of its dependencies pinned by requirements/constraints.txt, and SHA256SUMS.
# Then, on the offline machine:
#   python3 -m venv probity-env && probity-env/bin/pip install --no-index --find-links wheelhouse probity
#
# torch must be the CPU build.  Windows: PyPI's torch wheels are CPU builds.  Linux: PyPI's are CUDA
# builds (several GB with their nvidia-* wheels), so the CPU wheel comes from $TORCH_INDEX_CPU
# (https://download.pytorch.org/whl/cpu) or from a local folder of wheels in $PIP_FIND_LINKS; it is
# never taken from PyPI.  A target whose CPU torch cannot be had is reported in wheelhouse/MISSING.txt
# and the script exits 1 (its other wheels are still downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
LOCK=requirements/constraints.txt
OUT="${WHEELHOUSE:-wheelhouse}"
TARGETS="${WHEELHOUSE_TARGETS:-linux-cp311 linux-cp312 windows-cp311 windows-cp312}"
TORCH_INDEX_CPU="${TORCH_INDEX_CPU:-https://download.pytorch.org/whl/cpu}"
torch_pin=$(grep -i '^torch==' "$LOCK")
mkdir -p "$OUT"
rm -f "$OUT/MISSING.txt"

pip=("$PYTHON" -m pip --disable-pip-version-check)
# Probity's own wheel (pure Python: one file serves every target).
rm -f "$OUT"/probity-*.whl
"${pip[@]}" wheel --quiet --no-deps -w "$OUT" .

# What probity needs at run time: its dependencies resolved against the pins (no test tools, no peers).
requirements="$OUT/.requirements.txt"
"$PYTHON" - "$LOCK" > "$requirements" <<'PYEOF'
import sys
import tomllib

pins = {}
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if line and not line.startswith("#") and "==" in line:
        name, version = line.split("==", 1)
        pins[name.lower().replace("_", "-")] = f"{name}=={version}"
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for dep in deps:
    name = dep.split("=")[0].split("<")[0].split(">")[0].strip().lower().replace("_", "-")
    print(pins.get(name, dep))
PYEOF

missing=""
for target in $TARGETS; do
  case "$target" in
    linux-cp3*) platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
                           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform linux_x86_64) ;;
    windows-cp3*) platforms=(--platform win_amd64) ;;
    *) echo "wheelhouse: unknown target '$target' (linux-cp311, linux-cp312, windows-cp311, windows-cp312)." >&2; exit 2 ;;
  esac
  pyver="${target##*-cp}"; pyver="${pyver:0:1}.${pyver:1}"
  common=(--only-binary=:all: "${platforms[@]}" --python-version "$pyver" --implementation cp -d "$OUT")
  echo "wheelhouse: $target (CPython $pyver)"

  # torch's CPU build first, so the dependency download below finds it here and never asks PyPI's CUDA build.
  have_torch=1
  if [[ "$target" == linux-* ]]; then
    "${pip[@]}" download --quiet --no-deps --retries 1 --timeout 20 "${common[@]}" --no-index "$torch_pin" 2>/dev/null \
      || "${pip[@]}" download --quiet --no-deps --retries 1 --timeout 20 "${common[@]}" \
           --index-url "$TORCH_INDEX_CPU" "$torch_pin" 2>/dev/null \
      || have_torch=0
  else
    "${pip[@]}" download --quiet --no-deps "${common[@]}" "$torch_pin" || have_torch=0
  fi

  if [ "$have_torch" = 1 ]; then
    # The local torch wheel in $OUT satisfies the pin, so pip downloads torch's dependencies but no other torch.
    "${pip[@]}" download --quiet "${common[@]}" --find-links "$OUT" -c "$LOCK" -r "$requirements"
  else
    missing="$missing $target"
    echo "$target: no CPU build of $torch_pin could be fetched here (not in \$PIP_FIND_LINKS, $TORCH_INDEX_CPU unreachable);" \
         "fetch it where that index is reachable: pip download --no-deps --only-binary=:all: ${platforms[*]}" \
         "--python-version $pyver --index-url https://download.pytorch.org/whl/cpu -d wheelhouse $torch_pin" >> "$OUT/MISSING.txt"
    # Everything else, by the exact pins, without letting the resolver reach torch.
    grep -v -i '^torch==' "$LOCK" | grep -E '^[A-Za-z0-9_.-]+==' > "$OUT/.pins-without-torch.txt"
    grep -v -i '^torch' "$requirements" > "$OUT/.direct.txt"
    "${pip[@]}" download --quiet "${common[@]}" -c "$OUT/.pins-without-torch.txt" -r "$OUT/.direct.txt"
    # torch's own dependencies, which the resolver did not reach without torch.
    for dep in filelock typing_extensions sympy networkx Jinja2 fsspec mpmath MarkupSafe; do
      grep -i "^$dep==" "$LOCK" | xargs -r "${pip[@]}" download --quiet --no-deps "${common[@]}"
    done
  fi
done
rm -f "$OUT"/.requirements.txt "$OUT"/.pins-without-torch.txt "$OUT"/.direct.txt

# CUDA builds never belong here.
if ls "$OUT" | grep -qiE '^nvidia_|^triton-'; then
  echo "wheelhouse: CUDA wheels ended up in $OUT ($(ls "$OUT" | grep -iE '^nvidia_|^triton-' | head -n 3 | tr '\n' ' ')...)." >&2
  exit 1
fi
(cd "$OUT" && find . -maxdepth 1 -name '*.whl' -printf '%f\n' | sort | xargs -r sha256sum > SHA256SUMS)
echo "wheelhouse: $(ls "$OUT"/*.whl | wc -l) wheels, $(du -sh "$OUT" | cut -f1), in $OUT/ (SHA256SUMS beside them)"
if [ -n "$missing" ]; then
  echo "wheelhouse: incomplete for$missing; see $OUT/MISSING.txt:" >&2
  cat "$OUT/MISSING.txt" >&2
  exit 1
fi
