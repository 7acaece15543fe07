#!/usr/bin/env bash
# Make the virtual environment an installer is built from: Probity's pinned dependencies with the
# torch build of one flavour, and the pinned build tools (PyInstaller, cyclonedx-bom); nothing else,
# so the bundle, its SBOM and its licence list hold only what the app uses.
#
#   installer/build-venv.sh FLAVOUR VENV
#
# FLAVOUR cpu:  torch's CPU build.  Taken from a local wheel when pip's find-links has one (these
#               machines keep torch 2.13.0+cpu there), else from $TORCH_INDEX_CPU.
# FLAVOUR cuda: torch's CUDA build from $TORCH_INDEX_CUDA (default: PyPI, whose Linux torch wheels are
#               CUDA builds).  Run it where those wheels can be fetched and carry the result over.
# TORCH_WHEEL=/path/to/torch-….whl overrides both: that file is installed.
# The torch that ends up installed is checked against the flavour; a mismatch stops the build.
set -euo pipefail
FLAVOUR="${1:?usage: build-venv.sh cpu|cuda VENV}"
VENV="${2:?usage: build-venv.sh cpu|cuda VENV}"
PYTHON="${PYTHON:-python3}"
LOCK="${LOCK:-requirements/constraints.txt}"
TORCH_INDEX_CPU="${TORCH_INDEX_CPU:-https://download.pytorch.org/whl/cpu}"
TORCH_INDEX_CUDA="${TORCH_INDEX_CUDA:-}"
case "$FLAVOUR" in cpu|cuda) ;; *) echo "FLAVOUR must be cpu or cuda, not '$FLAVOUR'." >&2; exit 2;; esac

torch_pin=$(grep -i '^torch==' "$LOCK" | head -n 1)
[ -n "$torch_pin" ] || { echo "$LOCK pins no torch version." >&2; exit 2; }

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade "pip>=24"

# torch first, by itself, so the resolver never swaps in another build later.
if [ -n "${TORCH_WHEEL:-}" ]; then
  "${pip[@]}" install --quiet --no-deps "$TORCH_WHEEL"
elif [ "$FLAVOUR" = cpu ]; then
  # A local CPU wheel (find-links) wins; otherwise the CPU index (no registry mirror carries it).
  "${pip[@]}" install --quiet --no-deps --no-index "$torch_pin" 2>/dev/null \
    || "${pip[@]}" install --quiet --no-deps --index-url "$TORCH_INDEX_CPU" "$torch_pin"
else
  # No find-links here: a local CPU wheel of the same version would win otherwise.
  if [ -n "$TORCH_INDEX_CUDA" ]; then
    PIP_FIND_LINKS="" "${pip[@]}" install --quiet --no-deps --index-url "$TORCH_INDEX_CUDA" "$torch_pin"
  else
    PIP_FIND_LINKS="" "${pip[@]}" install --quiet --no-deps "$torch_pin"
  fi
fi


# The torch just installed matches the flavour (read from torch/version.py: torch's own dependencies
# are not installed yet, so it cannot be imported).
"$VENV/bin/python" - "$FLAVOUR" <<'PYEOF'
import importlib.util
import pathlib
import sys

flavour = sys.argv[1]
spec = importlib.util.find_spec("torch")
version: dict = {}
exec(pathlib.Path(spec.submodule_search_locations[0], "version.py").read_text(encoding="utf-8"), version)
cuda = version.get("cuda")
if flavour == "cpu" and cuda is not None:
    sys.exit(f"The installed torch {version['__version__']} is a CUDA {cuda} build; FLAVOUR=cpu needs the CPU build "
             "(set TORCH_WHEEL to a CPU wheel or TORCH_INDEX_CPU to an index that has one).")
if flavour == "cuda" and cuda is None:
    sys.exit(f"The installed torch {version['__version__']} is a CPU build; FLAVOUR=cuda needs a CUDA build "
             "(set TORCH_WHEEL to a CUDA wheel or TORCH_INDEX_CUDA to an index that has one).")
print(f"torch {version['__version__']} ({'CUDA ' + cuda if cuda else 'CPU'}) for FLAVOUR={flavour}")
PYEOF

# The app and the build tools, resolved against the pins (torch is already there and pinned).
"${pip[@]}" install --quiet -c "$LOCK" -e ".[packaging]"
"${pip[@]}" check
