"""The allowlist policy: every global a pickle or skops file names is reviewed, unreviewed or dangerous,
the scanner and the restricted unpickler enforce the same decision, and no file can change the policy."""

from __future__ import annotations

import ast
import functools
import importlib.util
import io
import os
import pickle
import sys
import sysconfig
import time
import types
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from engine.errors import UnsafeModelError, UntrustedModelError
from engine.hashing import sha256_bytes
from engine.models import inspect_model, load_model, pickle_policy, pickle_scan, scan_pickle_bytes
from engine.models.loading import RestrictedUnpickler, UnreviewedModelError
from engine.models.pickle_policy import DANGEROUS, REVIEWED, UNREVIEWED, classify, classify_type


def _str_op(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _global(module: str, name: str) -> bytes:
    """Protocol-4 STACK_GLOBAL of ``module.name`` (``name`` may be dotted)."""
    return _str_op(module) + _str_op(name) + b"\x93"


def _write(tmp_path: Path, name: str, data: bytes) -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, sha256_bytes(data)


@pytest.fixture(scope="module")
def fitted() -> LogisticRegression:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(60, 3))
    return LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))


@pytest.fixture
def fake_module() -> Iterator[types.ModuleType]:
    """An already-imported third-party module that re-exports things, as real ones do."""
    module = types.ModuleType("innocent_helpers")
    module.helper = os.system  # type: ignore[attr-defined]
    module.policy = pickle_policy  # type: ignore[attr-defined]
    module.rate = pickle_policy.classify  # type: ignore[attr-defined]
    module.registry = {}  # type: ignore[attr-defined]
    module.Fraction = Fraction  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        del sys.modules[module.__name__]


# ---------------------------------------------------------------------------
# (1) Gadget search: functions that run commands, evaluate strings, write files or open sockets
# ---------------------------------------------------------------------------

_OS_SINKS = frozenset({"system", "popen", "remove", "unlink", "rmdir", "removedirs", "fork", "kill", "startfile"})
_SUBPROCESS_SINKS = frozenset({"Popen", "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"})
_SHUTIL_SINKS = frozenset({"rmtree", "move", "copyfile", "copy", "copy2", "copytree"})
_SOCKET_SINKS = frozenset({"socket", "create_connection", "create_server", "socketpair"})
_BARE_SINKS = frozenset({"exec", "eval", "Popen", "check_output", "check_call", "getoutput", "rmtree"})
# Methods that run without being named: while unpickling, or on first use of the object.
_IMPLICIT = frozenset(
    {
        "__init__",
        "__new__",
        "__setstate__",
        "__reduce__",
        "__reduce_ex__",
        "__call__",
        "__del__",
        "__getattr__",
        "__getattribute__",
        "__setattr__",
        "__set_name__",
        "__init_subclass__",
        "__setitem__",
        "__hash__",
        "__eq__",
        "__array_finalize__",
        "__class_getitem__",
    }
)


def _writes(call: ast.Call) -> bool:
    mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax+")


def _is_sink(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in _BARE_SINKS or (func.id == "open" and _writes(call))
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner, attr = func.value.id, func.attr
        return (
            (owner in ("os", "posix", "nt") and (attr in _OS_SINKS or attr.startswith(("exec", "spawn"))))
            or (owner == "subprocess" and attr in _SUBPROCESS_SINKS)
            or (owner == "shutil" and attr in _SHUTIL_SINKS)
            or (owner == "socket" and attr in _SOCKET_SINKS)
            or (owner in ("io", "builtins") and attr == "open" and _writes(call))
        )
    return False


def _calls_sink(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and _is_sink(n) for n in ast.walk(node))


def _gadgets_in(tree: ast.Module) -> Iterator[str]:
    """Qualified names of functions (and classes whose implicit methods) that call a sink."""
    todo: list[tuple[str, ast.AST]] = [("", node) for node in tree.body]
    while todo:
        prefix, node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if _calls_sink(node):
                yield prefix + node.name
        elif isinstance(node, ast.ClassDef):
            qual = prefix + node.name
            methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            if any(m.name in _IMPLICIT and _calls_sink(m) for m in methods):
                yield qual
            todo.extend((qual + ".", child) for child in node.body)


def _module_files() -> Iterator[tuple[str, Path]]:
    """The stdlib's modules and those of numpy, scipy, pandas, scikit-learn and joblib, without tests."""
    skip = {
        "test",
        "tests",
        "idlelib",
        "tkinter",
        "turtledemo",
        "lib2to3",
        "ensurepip",
        "site-packages",
        "testing",
        "_testing",
        "__pycache__",
        "f2py",
        "distutils",
    }
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    roots = [("", stdlib)]
    for package in ("numpy", "scipy", "pandas", "sklearn", "joblib"):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin is not None
        roots.append((package, Path(spec.origin).parent))
    for prefix, root in roots:
        for path in root.rglob("*.py"):
            rel = path.relative_to(root)
            if skip.intersection(rel.parts[:-1]) or (not prefix and len(rel.parts) > 2):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([prefix, *parts] if prefix else parts)
            if name:
                yield name, path


def test_gadget_search_finds_no_reviewed_gadget() -> None:
    start = time.perf_counter()
    # A reviewed name is, by its own __qualname__, on the list: only gadgets whose last
    # name matches a reviewed entry's could be reviewed, and those are classified in full.
    reviewed_tails = {name.rsplit(".", 1)[-1] for name in pickle_policy.REVIEWED_GLOBALS}
    gadgets: list[tuple[str, str]] = []
    for module, path in _module_files():
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        gadgets.extend((module, qual) for qual in _gadgets_in(tree))
    found = {f"{m}.{q}" for m, q in gadgets}
    # The search really finds the classes the red team used: a uuid helper running a
    # subprocess, timeit's exec, a tree-deleting helper, socket servers, code.InteractiveInterpreter.
    for known in (
        "uuid._get_command_stdout",
        "timeit.Timer",
        "shutil.rmtree",
        "code.InteractiveInterpreter.runcode",
        "socketserver.TCPServer",
        "webbrowser.GenericBrowser.open",
    ):
        assert known in found, known
    assert len(gadgets) > 200
    reviewed = []
    for module, qual in gadgets:
        if qual.rsplit(".", 1)[-1] in reviewed_tails and classify(module, qual).status == REVIEWED:
            reviewed.append(f"{module}.{qual}")
    assert reviewed == []
    # The red team's named examples are refused outright, not only unreviewed.
    for module, qual in (
        ("uuid", "_get_command_stdout"),
        ("timeit", "timeit"),
        ("shutil", "rmtree"),
        ("code", "InteractiveInterpreter"),
        ("subprocess", "getoutput"),
    ):
        assert classify(module, qual).status == DANGEROUS, (module, qual)
    assert time.perf_counter() - start < 60


def test_reviewed_classes_run_no_sink_while_being_rebuilt() -> None:
    """Every reviewed class's implicit methods (along its MRO, where written in Python) call no sink."""
    checked = 0
    for full in sorted(pickle_policy.REVIEWED_GLOBALS):
        if full.startswith("torch.") and "torch" not in sys.modules:
            continue  # importing torch only for this check would take seconds; torch has no Python hooks here
        verdict = classify(*_split(full))
        assert verdict.status == REVIEWED, (full, verdict)
        assert verdict.resolves_to == full
        obj = pickle_policy.admit(*_split(full), allow_unreviewed=False)
        for klass in obj.__mro__ if isinstance(obj, type) else ():
            for name in _IMPLICIT & set(vars(klass)):
                code = getattr(vars(klass)[name], "__code__", None)
                if code is None:
                    continue
                try:
                    source = ast.parse(_dedent(klass, name))
                except (OSError, TypeError, SyntaxError):
                    continue
                checked += 1
                assert not _calls_sink(source), f"{full}: {klass.__qualname__}.{name}"
    assert checked > 50


def _dedent(klass: type, name: str) -> str:
    import inspect
    import textwrap

    return textwrap.dedent(inspect.getsource(vars(klass)[name]))


def _split(full: str) -> tuple[str, str]:
    for module, names in pickle_policy._REVIEWED_TABLE:
        rest = full[len(module) + 1 :]
        if full.startswith(module + ".") and rest in names.split():
            return module, rest
    raise AssertionError(full)


# ---------------------------------------------------------------------------
# (2) Names are classified by what they really reach
# ---------------------------------------------------------------------------


def test_dotted_path_through_a_reviewed_package_reaches_its_real_module(tmp_path: Path) -> None:
    import numpy.testing  # noqa: F401  - makes numpy.testing reachable as an attribute of numpy

    verdict = classify("numpy", "testing.assert_equal")
    assert verdict.status == DANGEROUS
    assert "numpy.testing" in verdict.reason
    data = b"\x80\x04" + _global("numpy", "testing.assert_equal") + b"."
    scan = scan_pickle_bytes(data)
    assert scan.dangerous == ("numpy.testing.assert_equal",)
    path, sha = _write(tmp_path, "through_numpy.pkl", data)
    with pytest.raises(UnsafeModelError):
        load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
    # The restricted unpickler refuses it on its own, without the scan.
    with pytest.raises(pickle_policy.PolicyRefusal):
        RestrictedUnpickler(io.BytesIO(data), allow_unreviewed=True).load()


def test_reviewed_objects_are_reviewed_under_any_path_that_reaches_them() -> None:
    alias = classify("sklearn.linear_model", "LogisticRegression")
    assert (alias.status, alias.resolves_to) == (REVIEWED, "sklearn.linear_model._logistic.LogisticRegression")
    dotted = classify("numpy", "random.mtrand.RandomState")
    assert (dotted.status, dotted.resolves_to) == (REVIEWED, "numpy.random.mtrand.RandomState")
    # ... and a reviewed package's name that reaches something else is rated as that.
    assert classify("sklearn.linear_model", "_logistic").status == DANGEROUS  # a module object


def test_an_innocent_module_reexporting_a_dangerous_function_is_dangerous(fake_module) -> None:
    verdict = classify("innocent_helpers", "helper")
    assert verdict.status == DANGEROUS
    assert verdict.resolves_to == f"{os.system.__module__}.system"
    # A reviewed class under another module's name is still reviewed; a look-alike is not.
    assert classify("innocent_helpers", "Fraction").status == UNREVIEWED
    impostor = type("LogisticRegression", (), {"__module__": "sklearn.linear_model._logistic"})
    fake_module.impostor = impostor
    assert classify("innocent_helpers", "impostor").status == UNREVIEWED
    assert "another object" in classify("innocent_helpers", "impostor").reason


def test_classifying_imports_nothing_unreviewed_and_runs_no_lookup_hooks() -> None:
    sys.modules.pop("colorsys", None)
    assert classify("colorsys", "rgb_to_hsv").status == UNREVIEWED
    assert "colorsys" not in sys.modules
    calls: list[str] = []
    lazy = types.ModuleType("lazy_helpers")
    lazy.__getattr__ = lambda name: calls.append(name)  # type: ignore[attr-defined]
    sys.modules["lazy_helpers"] = lazy
    try:
        assert classify("lazy_helpers", "anything").status == UNREVIEWED
        assert classify("lazy_helpers", "anything.deeper").status == UNREVIEWED
    finally:
        del sys.modules["lazy_helpers"]
    assert calls == []


def test_danger_reason_is_the_policy() -> None:
    assert pickle_scan.danger_reason is pickle_policy.danger_reason
    assert pickle_policy.danger_reason("engine.models.pickle_policy", "classify") is not None
    assert pickle_policy.danger_reason("gui.app", "main") is not None
    assert pickle_policy.danger_reason("fractions", "Fraction") is None  # unreviewed, not dangerous


# ---------------------------------------------------------------------------
# (3) A hostile trusted file cannot switch the policy off
# ---------------------------------------------------------------------------


def _policy_snapshot() -> dict[str, object]:
    return {
        name: (value if not isinstance(value, types.MappingProxyType) else dict(value))
        for name, value in vars(pickle_policy).items()
        if name.isupper() or name.startswith("_") and name.lstrip("_").isupper()
    }


def test_hostile_trusted_file_cannot_change_the_policy(tmp_path: Path, fake_module, fitted) -> None:
    before = _policy_snapshot()
    scanner_before = dict(vars(pickle_scan))
    attempts = {
        # reach the policy module or its tables directly
        "policy_table": _global("engine.models.pickle_policy", "_DANGEROUS_MODULES"),
        "scanner_module": _global("engine.models", "pickle_scan"),
        "scanner_function": _global("engine.models.pickle_scan", "danger_reason"),
        # through a third-party module that happens to hold them
        "reexported_module": _global("innocent_helpers", "policy"),
        "reexported_table": _global("innocent_helpers", "policy._REVIEWED_TABLE"),
        "reexported_function": _global("innocent_helpers", "rate"),
        # the interpreter's own ways in
        "setattr": _global("builtins", "setattr")
        + _global("engine.models", "pickle_policy")
        + _str_op("REVIEWED_GLOBALS")
        + b")\x87R",
        "sys_modules": _global("sys", "modules"),
        "import": _global("importlib", "import_module") + _str_op("engine.models.pickle_policy") + b"\x85R",
        # change an object it imports: SETITEM on an imported dict
        "mutate_import": _global("innocent_helpers", "registry") + _str_op("k") + _str_op("v") + b"s",
    }
    for name, ops in attempts.items():
        path, sha = _write(tmp_path, f"{name}.pkl", b"\x80\x04" + ops + b".")
        with pytest.raises(UnsafeModelError):
            load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
        assert inspect_model(path).scan.refused, name
    # The loader's own check refuses the policy's module even where the scan is not asked.
    for name in ("policy_table", "scanner_module", "reexported_module", "reexported_function", "mutate_import"):
        with pytest.raises(pickle_policy.PolicyRefusal):
            RestrictedUnpickler(io.BytesIO(b"\x80\x04" + attempts[name] + b"."), allow_unreviewed=True).load()
    assert fake_module.registry == {}
    assert _policy_snapshot() == before
    assert dict(vars(pickle_scan)) == scanner_before
    # Afterwards a plain os.system pickle is still refused with the import named.
    scan = scan_pickle_bytes(b"cos\nsystem\n(S'true'\ntR.")
    assert scan.refused and scan.dangerous == ("os.system",)
    # The tables are immutable objects, not merely unchanged.
    assert isinstance(pickle_policy.REVIEWED_GLOBALS, frozenset)
    with pytest.raises(TypeError):
        pickle_policy.REVIEWED_SKOPS_TYPES["builtins.eval"] = "x"  # type: ignore[index]


def test_partial_of_an_unreviewed_callable_is_dangerous(tmp_path: Path, fitted) -> None:
    fitted_copy = pickle.loads(pickle.dumps(fitted))
    fitted_copy.hook_ = functools.partial(Fraction, 1)
    data = pickle.dumps(fitted_copy, protocol=4)
    scan = scan_pickle_bytes(data)
    assert "functools.partial" in scan.dangerous
    path, sha = _write(tmp_path, "partial.pkl", data)
    with pytest.raises(UnsafeModelError):
        load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
    # A partial of a reviewed callable is only unreviewed.
    fitted_copy.hook_ = functools.partial(np.dtype, "f8")
    scan = scan_pickle_bytes(pickle.dumps(fitted_copy, protocol=4))
    assert not scan.refused and scan.unreviewed == ("functools.partial",)


# ---------------------------------------------------------------------------
# (4) Unreviewed globals load only with the explicit acknowledgement, which is recorded
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["pickle", "joblib"])
def test_unreviewed_global_needs_allow_unreviewed_and_is_recorded(tmp_path: Path, fitted, container: str) -> None:
    model = pickle.loads(pickle.dumps(fitted))
    model.note_ = Fraction(1, 3)
    if container == "pickle":
        data = pickle.dumps(model, protocol=5)
    else:
        buf = io.BytesIO()
        joblib.dump(model, buf)
        data = buf.getvalue()
    path, sha = _write(tmp_path, f"fraction.{'pkl' if container == 'pickle' else 'joblib'}", data)
    scan = scan_pickle_bytes(data)
    assert scan.verdict == "needs-trust" and scan.dangerous == ()
    assert scan.unreviewed == ("fractions.Fraction",) and scan.needs_allow_unreviewed
    assert scan.status_of("fractions.Fraction") == UNREVIEWED
    assert scan.status_of("sklearn.linear_model._logistic.LogisticRegression") == REVIEWED
    text = inspect_model(path).to_text()
    assert "  unreviewed  fractions.Fraction   <- unreviewed: needs --allow-unreviewed\n" in text
    assert "  reviewed    sklearn.linear_model._logistic.LogisticRegression\n" in text
    with pytest.raises(UntrustedModelError, match="--allow-unreviewed"):
        load_model(path)
    with pytest.raises(UnreviewedModelError) as err:
        load_model(path, trusted_sha256=[sha])
    assert err.value.exit_code == 3 and err.value.unreviewed == ("fractions.Fraction",)
    assert str(err.value).startswith(f"{path.name} names fractions.Fraction, which Probity has not reviewed")
    loaded = load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
    assert loaded.estimator.note_ == Fraction(1, 3)
    assert loaded.trust.allow_unreviewed is True
    assert loaded.trust.unreviewed == ("fractions.Fraction",)
    assert loaded.trust.to_dict()["unreviewed"] == ["fractions.Fraction"]
    assert loaded.trust.to_dict()["allow_unreviewed"] is True


def test_restricted_unpickler_refuses_unreviewed_without_the_acknowledgement() -> None:
    data = pickle.dumps(Fraction(2, 5), protocol=2)
    with pytest.raises(pickle_policy.PolicyRefusal) as err:
        RestrictedUnpickler(io.BytesIO(data), allow_unreviewed=False).load()
    assert err.value.verdict.status == UNREVIEWED
    assert RestrictedUnpickler(io.BytesIO(data), allow_unreviewed=True).load() == Fraction(2, 5)


# ---------------------------------------------------------------------------
# (5) Legitimate models need no acknowledgement; skops types follow the same policy
# ---------------------------------------------------------------------------


def _legitimate_models() -> list[object]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    from engine.demo import make_credit_frame, train_credit_model

    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    return [
        train_credit_model(make_credit_frame(n_rows=200, seed=1)),
        make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()).fit(X, y),
        HistGradientBoostingClassifier(max_iter=3).fit(X, y),
        RandomForestRegressor(n_estimators=2, max_depth=3).fit(X, X[:, 1]),
        KNeighborsClassifier(3).fit(X, y),
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=30).fit(X, y),
        SVR().fit(X, X[:, 2]),
    ]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_legitimate_models_use_only_reviewed_globals(tmp_path: Path) -> None:
    for i, model in enumerate(_legitimate_models()):
        blobs = [pickle.dumps(model, protocol=p) for p in (2, 4, 5)]
        buf = io.BytesIO()
        joblib.dump(model, buf, compress=3)
        blobs.append(buf.getvalue())
        for data in blobs:
            scan = scan_pickle_bytes(data)
            assert (scan.verdict, scan.dangerous, scan.unreviewed) == ("needs-trust", (), ()), (model, scan.notes)
        path, sha = _write(tmp_path, f"model{i}.joblib", blobs[-1])
        loaded = load_model(path, trusted_sha256=[sha])
        assert loaded.trust.allow_unreviewed is False and loaded.trust.unreviewed == ()


def test_skops_types_are_rated_by_the_same_policy(tmp_path: Path, fitted) -> None:
    assert classify_type("builtins.eval").status == DANGEROUS
    assert classify_type(f"{os.system.__module__}.system").status == DANGEROUS
    assert classify_type("functools.partial").status == DANGEROUS
    assert classify_type("engine.models.pickle_policy.Classification").status == DANGEROUS
    assert classify_type("sklearn.neighbors._kd_tree.KDTree").status == REVIEWED
    assert classify_type("fractions.Fraction").status == UNREVIEWED
    hostile = {
        "eval": functools.partial(eval, "1"),
        "system": os.system,
    }
    for name, obj in hostile.items():
        path = tmp_path / f"{name}.skops"
        sio.dump(obj, path)
        sha = sha256_bytes(path.read_bytes())
        with pytest.raises(UnsafeModelError) as err:
            load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
        assert str(err.value).endswith("Probity never loads such a file, even when trusted.")
        info = inspect_model(path)
        assert info.refused and not info.needs_trust
        assert "<- can run commands or code" in info.to_text()
    model = pickle.loads(pickle.dumps(fitted))
    model.note_ = Fraction(1, 3)
    path = tmp_path / "fraction.skops"
    sio.dump(model, path)
    sha = sha256_bytes(path.read_bytes())
    assert inspect_model(path).unreviewed == ("fractions.Fraction",)
    with pytest.raises(UntrustedModelError, match="--allow-unreviewed"):
        load_model(path)
    with pytest.raises(UnreviewedModelError):
        load_model(path, trusted_sha256=[sha])
    loaded = load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
    assert loaded.trust.allow_unreviewed and loaded.trust.unreviewed == ("fractions.Fraction",)


def test_names_longer_than_any_real_name_are_refused_without_rating_them() -> None:
    # A 160 KB dotted name once took 17 s to rate (every split, every prefix); now it is refused at once.
    from engine.models.pickle_policy import DANGEROUS, MAX_NAME_LENGTH, classify, classify_type

    huge = ".".join(["numpy"] + ["a"] * 80_000)
    for verdict in (classify_type(huge), classify("numpy", ".".join(["a"] * 80_000))):
        assert verdict.status == DANGEROUS
        assert "longer than any real Python name" in verdict.reason
        assert len(verdict.name) < 100
    # Just below the bound, names are rated as usual.
    long_ok = "sklearn." + "a" * (MAX_NAME_LENGTH - 20)
    assert "longer than any" not in classify_type(long_ok).reason


# -- skops: every type the file declares is rated, not only those skops distrusts -------------------------


def _fitted_logistic() -> tuple[LogisticRegression, np.ndarray]:
    X = np.abs(np.random.default_rng(3).normal(size=(60, 3)))  # positive, for log1p
    return LogisticRegression().fit(X, (X[:, 0] > 0.7).astype(int)), X


def test_a_type_skops_trusts_but_probity_has_not_reviewed_needs_trust_and_acknowledgement(tmp_path: Path) -> None:
    model, _ = _fitted_logistic()
    model.note_ = np.longlong(5)  # skops trusts numpy.longlong by default; Probity has not reviewed it
    path = tmp_path / "longlong.skops"
    sio.dump(model, path)
    assert sio.get_untrusted_types(file=path) == []  # skops alone would load it without a question
    sha = sha256_bytes(path.read_bytes())
    info = inspect_model(path)
    assert info.unreviewed == ("numpy.longlong",) and info.needs_trust and not info.refused
    text = info.to_text()
    assert "  unreviewed  numpy.longlong   <- unreviewed: needs --allow-unreviewed\n" in text
    assert "  reviewed    sklearn.linear_model._logistic.LogisticRegression\n" in text
    with pytest.raises(UntrustedModelError, match="--allow-unreviewed"):
        load_model(path)
    with pytest.raises(UnreviewedModelError):
        load_model(path, trusted_sha256=[sha])
    loaded = load_model(path, trusted_sha256=[sha], allow_unreviewed=True)
    assert loaded.trust.allow_unreviewed and loaded.trust.unreviewed == ("numpy.longlong",)


def test_inspecting_a_skops_file_lists_every_declared_type(demo_paths) -> None:
    info = inspect_model(demo_paths.model)
    names = {c.name: c.status for c in info.skops_types}
    # The pipeline and its steps are types skops trusts by default; they are listed and rated all the same.
    assert names["sklearn.pipeline.Pipeline"] == REVIEWED
    assert names["sklearn.ensemble._gb.GradientBoostingClassifier"] == REVIEWED
    assert set(info.skops_untrusted_types or ()) < set(names)
    assert "  reviewed    sklearn.pipeline.Pipeline\n" in info.to_text()


@pytest.mark.parametrize("func", [np.log1p, pytest.param("expit", id="scipy.special.expit")])
def test_ufuncs_of_numpy_and_scipy_are_reviewed_in_pickles_and_skops(func, tmp_path: Path) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    if func == "expit":
        import scipy.special

        func = scipy.special.expit
    _, X = _fitted_logistic()
    model = make_pipeline(FunctionTransformer(func), LogisticRegression()).fit(X, (X[:, 0] > 0.7).astype(int))
    skops_path = tmp_path / "ufunc.skops"
    sio.dump(model, skops_path)
    assert not inspect_model(skops_path).needs_trust
    assert load_model(skops_path).trust.unreviewed == ()
    pickle_path = tmp_path / "ufunc.pkl"
    pickle_path.write_bytes(pickle.dumps(model, protocol=5))
    scan = scan_pickle_bytes(pickle_path.read_bytes())
    assert scan.unreviewed == () and scan.dangerous == ()
    load_model(pickle_path, trusted_sha256=[sha256_bytes(pickle_path.read_bytes())])
    # A ufunc a file could build from Python code is no such thing.
    assert classify("numpy", "frompyfunc").status == UNREVIEWED
