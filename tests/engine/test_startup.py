"""What each command imports before any work: users pay for it on every run.

Measured by module, not by the clock: `probity --version` loads neither numpy nor
pandas, and reading a skops model never imports torch (a second of start-up for a
library a scikit-learn model does not use).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from engine.models.sklearn_estimators import ESTIMATORS

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(code: str, tmp_path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROBITY_LOG_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_version_loads_no_numerical_library(tmp_path: Path) -> None:
    out = _modules_after(
        """
        import contextlib, io, json, sys
        from engine import cli
        with contextlib.redirect_stdout(io.StringIO()) as text:
            try:
                cli.main(["--version"])
            except SystemExit:
                pass
        print(json.dumps({"text": text.getvalue(), "loaded": [m for m in ("numpy", "pandas", "sklearn", "torch")
                                                              if m in sys.modules]}))
    """,
        tmp_path,
    )
    assert out["text"].startswith("probity ")
    assert out["loaded"] == []


def test_reading_a_skops_model_does_not_import_torch(tmp_path: Path, demo_paths) -> None:
    model = Path(demo_paths.model)
    out = _modules_after(
        f"""
        import json, sys
        from engine.models import inspect_model, load_model
        inspection = inspect_model({str(model)!r})
        model = load_model({str(model)!r})
        print(json.dumps({{"torch": "torch" in sys.modules, "skops": "skops.io" in sys.modules,
                          "format": inspection.format}}))
    """,
        tmp_path,
    )
    assert out == {"torch": False, "skops": True, "format": "skops"}


def test_skops_knows_every_estimator_without_torch(tmp_path: Path) -> None:
    # Leaving torch out of skops' import must not shrink the list of types skops trusts by default.
    code = """
        import json, sys
        {prefix}
        from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES
        print(json.dumps({{"names": sorted(SKLEARN_ESTIMATOR_TYPE_NAMES), "torch": "torch" in sys.modules}}))
    """
    guarded = _modules_after(
        code.format(prefix="from engine.models.skops_import import skops_io; skops_io()"), tmp_path
    )
    plain = _modules_after(code.format(prefix="import skops.io"), tmp_path)
    assert guarded["torch"] is False and plain["torch"] is True
    assert guarded["names"] == plain["names"] and len(plain["names"]) > 150


def test_committed_estimator_list_is_the_walk_of_the_installed_scikit_learn(tmp_path: Path) -> None:
    # skops_io() hands skops this list instead of walking scikit-learn; it must be exactly the walk.
    out = _modules_after(
        """
        import json, sklearn
        from sklearn.utils import all_estimators
        from engine.models import sklearn_estimators
        walk = sorted([c.__module__, c.__name__] for _, c in all_estimators())
        print(json.dumps({"walk": walk, "committed": [list(p) for p in sklearn_estimators.ESTIMATORS],
                          "version": sklearn.__version__, "for": sklearn_estimators.SKLEARN_VERSION,
                          "file_is_current": sklearn_estimators.render() == open(sklearn_estimators.__file__).read()}))
    """,
        tmp_path,
    )
    regenerate = "regenerate with: python -m engine.models.sklearn_estimators --write"
    assert out["for"] == out["version"], regenerate
    assert out["committed"] == out["walk"], regenerate
    assert out["file_is_current"], regenerate


def test_the_committed_list_is_used_only_for_its_own_version(tmp_path: Path) -> None:
    code = """
        import json, sys
        import sklearn.utils
        walk = sklearn.utils.all_estimators
        calls = []
        def counting(type_filter=None):
            calls.append(type_filter)
            return walk(type_filter=type_filter)
        sklearn.utils.all_estimators = counting
        from engine.models import sklearn_estimators
        {patch}
        from engine.models.skops_import import skops_io
        skops_io()
        from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES
        print(json.dumps({{"walked": len(calls), "restored": sklearn.utils.all_estimators is counting,
                          "names": len(SKLEARN_ESTIMATOR_TYPE_NAMES)}}))
    """
    same = _modules_after(code.format(patch=""), tmp_path)
    other = _modules_after(code.format(patch="sklearn_estimators.SKLEARN_VERSION = '0.0'"), tmp_path)
    assert same == {"walked": 0, "restored": True, "names": len(ESTIMATORS)}
    assert other == {"walked": 1, "restored": True, "names": len(ESTIMATORS)}


def test_the_indexed_module_search_names_every_type_as_skops_search_does(tmp_path: Path) -> None:
    # While skops imports, its whichmodule answers from an index of sys.modules; every list of trusted
    # type names it builds must be exactly what its own search gives, and the search is put back.
    code = """
        import contextlib, json
        from engine.models import skops_import
        {patch}
        skops_import.skops_io()
        import skops.io._utils as utils
        from skops.io import _trusted_types as t
        lists = {{k: sorted(v) for k, v in vars(t).items() if k.endswith("_NAMES") and isinstance(v, list)}}
        print(json.dumps({{"lists": lists, "restored": utils.whichmodule.__module__ == "skops.io._utils"}}))
    """
    indexed = _modules_after(code.format(patch=""), tmp_path)
    searched = _modules_after(code.format(patch="skops_import._indexed_search = contextlib.nullcontext"), tmp_path)
    assert indexed["restored"] and searched["restored"]
    assert indexed["lists"] == searched["lists"]
    names = indexed["lists"]
    assert len(names["SCIPY_UFUNC_TYPE_NAMES"]) > 100 and len(names["NUMPY_UFUNC_TYPE_NAMES"]) > 50
