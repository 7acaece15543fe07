#!/usr/bin/env bash
# The offline install that README documents for IT, done exactly, with no network at all:
#
#   installer/offline-install-test.sh [WHEELHOUSE]      (default: wheelhouse/, made by `make wheelhouse`)
#
# Inside `unshare -n` (no interface but a down loopback): a clean venv of this machine's Python,
# `pip install --no-index --find-links WHEELHOUSE probity` with pip's own configuration switched off (so
# no other wheel folder or index can help), then the installed `probity` makes the demo, audits it
# into a PDF and verifies the report.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELHOUSE=$(cd "${1:-wheelhouse}" && pwd)
PYTHON="${PYTHON:-python3}"
ls "$WHEELHOUSE"/probity-*.whl >/dev/null 2>&1 || { echo "offline-install-test: no probity wheel in $WHEELHOUSE (run make wheelhouse)." >&2; exit 2; }
(cd "$WHEELHOUSE" && sha256sum --quiet -c SHA256SUMS) || { echo "offline-install-test: $WHEELHOUSE/SHA256SUMS does not match." >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/probity-offline.XXXXXX")
trap 'rm -rf "$T"' EXIT

unshare -n env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT \
  PIP_CONFIG_FILE=/dev/null HOME="$T/home" PYTHON="$PYTHON" WHEELHOUSE="$WHEELHOUSE" T="$T" bash -euo pipefail <<'EOF'
ifaces=$(tail -n +3 /proc/self/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')  # this namespace's own
[ "$ifaces" = "lo " ] || { echo "offline-install-test: expected no network, found interfaces $ifaces" >&2; exit 1; }
echo "offline-install-test: no network (interfaces: $ifaces); $("$PYTHON" --version)"
"$PYTHON" -m venv "$T/venv"
"$T/venv/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
  --no-index --find-links "$WHEELHOUSE" probity
echo "offline-install-test: installed $("$T/venv/bin/pip" list --disable-pip-version-check 2>/dev/null | wc -l) packages from the wheelhouse alone"
"$T/venv/bin/python" -c 'import torch, sys; sys.exit(0 if torch.version.cuda is None else "torch is a CUDA build")'
"$T/venv/bin/probity" --version
"$T/venv/bin/python" -m engine.demo --out "$T/demo"
"$T/venv/bin/probity" --progress none audit --data "$T/demo/credit.csv" --model "$T/demo/credit_model.skops" \
  --target approved --sensitive group --out "$T/audit"
[ "$(head -c 5 "$T/audit/report.pdf")" = "%PDF-" ] || { echo "offline-install-test: no PDF written" >&2; exit 1; }
"$T/venv/bin/probity" verify "$T/audit/report.pdf" --data "$T/demo/credit.csv" --model "$T/demo/credit_model.skops"
echo "offline-install-test: passed: pip install --no-index --find-links $WHEELHOUSE probity, then probity audit and verify, offline"
EOF
