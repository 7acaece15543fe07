"""Run every benchmark side by side with its peer: ``python -m bench [NAME ...]``.

Each case lives in its own module with ``main(argv) -> int``; results are
recorded by hand in docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import importlib
import sys

CASES = (
    "csv_load",
    "treeshap",
    "booster_treeshap",
    "catboost_treeshap",
    "kernelshap",
    "lime",
    "pdp",
    "permutation",
    "ig",
    "startup",
)
# Run only when named: it needs the bundle from `make installer`, Xvfb and xdotool.
ON_REQUEST = ("bundle_start",)


def main(argv: list[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv) or list(CASES)
    unknown = [n for n in names if n not in CASES + ON_REQUEST]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(CASES + ON_REQUEST)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        print(f"\n## {name}\n", flush=True)
        status |= importlib.import_module(f"bench.{name}").main([])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
