"""The pickle scanner finds what a file would import without ever unpickling it,
and malicious pickles are refused whatever the user trusts."""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from unittest import mock

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from engine.errors import ModelError, UnsafeModelError
from engine.hashing import sha256_bytes
from engine.models import inspect_model, load_model, scan_pickle, scan_pickle_bytes
from engine.models.pickle_scan import danger_reason


class _Reduce:
    """Pickles as ``func(*args)``: what an attacker's object looks like to pickle."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _touch(marker: Path) -> str:
    return f"touch {marker}"


def _str_op(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _payloads(marker: Path) -> dict[str, bytes]:
    """Pickles whose execution would create ``marker``, one per evasion technique."""
    cmd = _touch(marker)
    q = cmd.encode()
    out = {
        "proto0_global_os_system": b"cos\nsystem\n(S'" + q + b"'\ntR.",
        "proto0_inst_os_system": b"(S'" + q + b"'\nios\nsystem\n.",
        "proto2_posix_system": pickle.dumps(_Reduce(os.system, cmd), protocol=2),
        "proto4_subprocess_popen": pickle.dumps(_Reduce(subprocess.Popen, ["touch", str(marker)]), protocol=4),
        "proto5_subprocess_check_call": pickle.dumps(
            _Reduce(subprocess.check_call, ["touch", str(marker)]), protocol=5
        ),
        "proto3_builtins_eval": pickle.dumps(_Reduce(eval, f"__import__('os').system({cmd!r})"), protocol=3),
        "proto1_builtins_exec": pickle.dumps(_Reduce(exec, f"import os; os.system({cmd!r})"), protocol=1),
        # getattr(__import__('os'), 'system')(cmd), written by hand in protocol 0
        "import_getattr_chain": (
            b"c__builtin__\ngetattr\n(c__builtin__\n__import__\n(S'os'\ntRS'system'\ntR(S'" + q + b"'\ntR."
        ),
        # module and name strings memoized, popped, then fetched back with BINGET
        "stack_global_memoized": (
            b"\x80\x04"
            + _str_op("os")
            + b"\x94"
            + _str_op("system")
            + b"\x94"
            + b"00"
            + b"h\x00h\x01\x93"
            + _str_op(cmd)
            + b"\x85R."
        ),
        # the module name is computed at load time by str('os'): not a constant, so refused
        "stack_global_computed": (
            b"\x80\x04"
            + _str_op("builtins")
            + _str_op("str")
            + b"\x93"
            + _str_op("os")
            + b"\x85R"
            + _str_op("system")
            + b"\x93"
            + _str_op(cmd)
            + b"\x85R."
        ),
        # protocol 4 walks dotted names: logging.os is the os module
        "dotted_name_through_module": b"\x80\x04"
        + _str_op("logging")
        + _str_op("os.system")
        + b"\x93"
        + _str_op(cmd)
        + b"\x85R.",
        # Python 2 spelling, renamed by fix_imports to builtins.eval
        "proto2_builtin_eval_renamed": b"\x80\x02c__builtin__\neval\nX"
        + struct.pack("<I", len(f"__import__('os').system({cmd!r})"))
        + f"__import__('os').system({cmd!r})".encode()
        + b"\x85R.",
        # a benign pickle followed by a malicious one
        "concatenated": pickle.dumps({"a": 1}, protocol=4) + pickle.dumps(_Reduce(os.system, cmd), protocol=4),
    }
    return out


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "marker-should-never-exist"


def _assert_refused_always(path: Path, marker: Path) -> UnsafeModelError:
    sha = sha256_bytes(path.read_bytes())
    with pytest.raises(UnsafeModelError) as untrusted:
        load_model(path)
    with pytest.raises(UnsafeModelError) as trusted:
        load_model(path, trusted_sha256=[sha])
    assert not marker.exists()
    for err in (untrusted.value, trusted.value):
        assert err.exit_code == 3
        assert err.sha256 == sha
        assert str(err).startswith(f"{path.name} is refused: ")
        assert str(err).endswith("Probity never loads such a file, even when trusted.")
    return trusted.value


@pytest.mark.parametrize("technique", sorted(_payloads(Path("/x"))))
def test_malicious_pickle_is_never_executed(technique: str, tmp_path: Path, marker: Path) -> None:
    path = tmp_path / f"{technique}.pkl"
    path.write_bytes(_payloads(marker)[technique])
    err = _assert_refused_always(path, marker)
    scan = scan_pickle(path)
    assert scan.verdict == "refused"
    assert err.imports == scan.imports
    assert err.dangerous == scan.dangerous
    inspected = inspect_model(path)
    assert "Verdict:  refused" in inspected.to_text()
    assert not marker.exists()


@pytest.mark.parametrize(
    ("technique", "expected"),
    [
        ("proto0_global_os_system", "os.system"),
        ("proto0_inst_os_system", "os.system"),
        ("proto2_posix_system", "posix.system"),
        ("proto4_subprocess_popen", "subprocess.Popen"),
        ("proto5_subprocess_check_call", "subprocess.check_call"),
        ("proto3_builtins_eval", "builtins.eval"),
        ("proto1_builtins_exec", "builtins.exec"),
        ("stack_global_memoized", "os.system"),
        ("dotted_name_through_module", "logging.os.system"),
        ("proto2_builtin_eval_renamed", "builtins.eval"),
        ("concatenated", "posix.system"),
    ],
)
def test_scanner_names_the_dangerous_import(technique: str, expected: str, marker: Path) -> None:
    scan = scan_pickle_bytes(_payloads(marker)[technique])
    assert expected in scan.dangerous
    assert expected in scan.imports


def test_import_getattr_chain_lists_both_builtins(marker: Path) -> None:
    scan = scan_pickle_bytes(_payloads(marker)["import_getattr_chain"])
    assert scan.dangerous == ("builtins.__import__", "builtins.getattr")


def test_computed_stack_global_is_refused_with_a_note(marker: Path) -> None:
    scan = scan_pickle_bytes(_payloads(marker)["stack_global_computed"])
    assert scan.verdict == "refused"
    assert scan.dangerous == ()  # builtins.str alone is harmless ...
    assert any("computed, not written in the file" in note for note in scan.notes)  # ... the import is not


def test_extension_registry_opcodes_are_refused() -> None:
    for opcode in (b"\x82\x01", b"\x83\x01\x00", b"\x84\x01\x00\x00\x00"):
        scan = scan_pickle_bytes(b"\x80\x02" + opcode + b")R.")
        assert scan.verdict == "refused"
        assert any("extension-registry code 1" in note for note in scan.notes)


_COMPRESSIONS = [None, "zlib", "gzip", "bz2", "lzma", "xz"]


@pytest.mark.parametrize("compress", _COMPRESSIONS)
def test_joblib_payload_after_numpy_arrays_is_found(compress: str | None, tmp_path: Path, marker: Path) -> None:
    rng = np.random.default_rng(0)
    obj = {
        "weights": [rng.normal(size=2000), np.ones((7, 3), order="F"), np.arange(5, dtype=np.int32)],
        "names": np.array(["a", "b"], dtype=object),  # nested pickle inside the stream
        "table": np.zeros(3, dtype=[("a", "<i8"), ("b", "<U3")]),
        "payload": _Reduce(os.system, _touch(marker)),  # written after every array
    }
    path = tmp_path / "model.joblib"
    joblib.dump(obj, path, compress=(compress, 3) if compress else 0)
    scan = scan_pickle(path)
    assert scan.format == ("joblib" if compress is None else f"joblib+{compress}")
    assert scan.array_payloads == 5
    assert scan.dangerous == ("posix.system",)
    _assert_refused_always(path, marker)


def test_array_bytes_are_skipped_not_parsed(tmp_path: Path, marker: Path) -> None:
    # An array whose raw bytes spell a malicious pickle is data to joblib: the scan
    # must skip it exactly (no false alarm), and loading must not run it either.
    evil = _payloads(marker)["proto0_global_os_system"]
    path = tmp_path / "data.joblib"
    joblib.dump({"blob": np.frombuffer(evil, dtype=np.uint8), "after": [1, 2]}, path)
    assert evil in path.read_bytes()
    scan = scan_pickle(path)
    assert scan.verdict == "needs-trust"
    assert scan.imports == ("joblib.numpy_pickle.NumpyArrayWrapper", "numpy.dtype", "numpy.ndarray")
    with pytest.raises(ModelError, match="not a fitted model with a predict method"):
        load_model(path, trusted_sha256=[scan_sha(path)])
    assert not marker.exists()


def scan_sha(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def test_array_payload_starting_inside_a_frame_is_refused(tmp_path: Path) -> None:
    # joblib reads array bytes from the file, not from the current protocol-4 frame;
    # a frame that swallows the array would make the two readings disagree.
    buf = io.BytesIO()
    joblib.dump({"x": np.arange(4.0), "tail": "ok"}, buf, protocol=4)
    data = bytearray(buf.getvalue())
    assert data[2] == 0x95  # FRAME
    (size,) = struct.unpack("<Q", data[3:11])
    data[3:11] = struct.pack("<Q", size + 40)
    scan = scan_pickle_bytes(bytes(data))
    assert scan.verdict == "refused"
    assert any("inside a pickle frame" in note for note in scan.notes)


_WRAPPER_GLOBAL = _str_op("joblib.numpy_pickle") + _str_op("NumpyArrayWrapper") + b"\x93"


def _dtype_ops(code: str, flags: int) -> bytes:
    """numpy.dtype(code, False, True) with its BUILD state, as numpy pickles it."""
    state = b"(K\x03" + _str_op("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK" + bytes([flags]) + b"tb"
    return _str_op("numpy") + _str_op("dtype") + b"\x93" + _str_op(code) + b"\x89\x88\x87R" + state


def _wrapper_state(dtype_ops: bytes, n: int) -> bytes:
    return (
        b"}("
        + _str_op("shape")
        + b"K"
        + bytes([n])
        + b"\x85"
        + _str_op("order")
        + _str_op("C")
        + _str_op("subclass")
        + _str_op("numpy")
        + _str_op("ndarray")
        + b"\x93"
        + _str_op("dtype")
        + dtype_ops
        + _str_op("numpy_array_alignment_bytes")
        + b"N"
        + b"u"
    )


def _hidden_behind_array(marker: Path) -> tuple[bytes, bytes]:
    """5 bytes joblib reads as an array, which a scanner parsing them as opcodes would
    take for a BINBYTES header swallowing the payload that joblib then executes."""
    payload = b"0" + f"cposix\nsystem\n(S'touch {marker}'\ntR".encode() + b"0N"
    return b"B" + struct.pack("<I", len(payload)), payload


def test_object_turned_into_array_wrapper_by_its_state_is_refused(tmp_path: Path, marker: Path) -> None:
    # BUILD with the slot state {'__class__': NumpyArrayWrapper} turns a harmless
    # argparse.Namespace into a wrapper, so joblib reads raw array bytes after it.
    fake_array, payload = _hidden_behind_array(marker)
    namespace = (
        _str_op("copyreg")
        + _str_op("_reconstructor")
        + b"\x93("
        + _str_op("argparse")
        + _str_op("Namespace")
        + b"\x93"
        + _str_op("builtins")
        + _str_op("object")
        + b"\x93Nt"
        + b"R"
    )
    swap = b"}(" + _str_op("__class__") + b"h\x00u"
    data = (
        b"\x80\x04"
        + _WRAPPER_GLOBAL
        + b"\x94"
        + b"0"
        + namespace
        + _wrapper_state(_dtype_ops("u1", 0), 5)
        + swap
        + b"\x86b"
        + fake_array
        + payload
        + b"."
    )
    scan = scan_pickle_bytes(data)
    assert scan.verdict == "refused"
    assert any("may be a joblib array wrapper" in note for note in scan.notes)
    path = tmp_path / "swap.joblib"
    path.write_bytes(data)
    _assert_refused_always(path, marker)


def test_wrapper_returned_by_an_object_array_stream_is_followed(tmp_path: Path, marker: Path) -> None:
    # An object-dtype array is a nested pickle whose result replaces the wrapper; if
    # that result is itself a wrapper, the next BUILD makes joblib read array bytes.
    fake_array, payload = _hidden_behind_array(marker)
    outer = _WRAPPER_GLOBAL + b")\x81" + _wrapper_state(_dtype_ops("O8", 63), 1) + b"b"
    nested = b"\x80\x04" + _WRAPPER_GLOBAL + b")\x81" + b"}(" + _str_op("dtype") + _dtype_ops("u1", 0) + b"ub."
    data = b"\x80\x04" + outer + nested + _wrapper_state(_dtype_ops("u1", 0), 5) + b"b" + fake_array + payload + b"."
    scan = scan_pickle_bytes(data)
    assert scan.dangerous == ("posix.system",)
    assert scan.array_payloads == 2
    path = tmp_path / "nested.joblib"
    path.write_bytes(data)
    _assert_refused_always(path, marker)


def test_concatenated_benign_pickles_are_all_scanned() -> None:
    data = pickle.dumps({"a": 1}) + pickle.dumps(LogisticRegression())
    scan = scan_pickle_bytes(data)
    assert scan.pickles == 2
    assert scan.verdict == "needs-trust"
    assert scan.imports == ("sklearn.linear_model._logistic.LogisticRegression",)


def test_trailing_garbage_after_a_pickle_is_refused() -> None:
    scan = scan_pickle_bytes(pickle.dumps([1, 2]) + b"\xffgarbage")
    assert scan.verdict == "refused"
    assert scan.pickles == 1


def _fitted_logistic() -> LogisticRegression:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    return LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))


def _mapped(module: str, name: str, proto: int) -> str:
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


@pytest.mark.parametrize("protocol", range(6))
def test_scan_imports_equal_what_unpickling_imports(protocol: int) -> None:
    # Parity with the real unpickler on a benign object we made ourselves.
    model = _fitted_logistic()
    obj = {"model": model, "arrays": [np.arange(3.0), np.array(["x"], dtype=object)], "set": {1, 2}}
    data = pickle.dumps(obj, protocol=protocol)
    seen: set[str] = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            seen.add(_mapped(module, name, protocol))
            return super().find_class(module, name)

    Recording(io.BytesIO(data)).load()
    scan = scan_pickle_bytes(data)
    assert set(scan.imports) == seen
    assert scan.verdict == "needs-trust"
    assert scan.sklearn_versions == (__import__("sklearn").__version__,)


@pytest.mark.parametrize("compress", _COMPRESSIONS)
def test_scan_imports_equal_what_joblib_imports(compress: str | None) -> None:
    from joblib.numpy_pickle import NumpyUnpickler

    obj = {"model": _fitted_logistic(), "names": np.array(["a", "b"], dtype=object), "m": np.eye(3)}
    buf = io.BytesIO()
    joblib.dump(obj, buf, compress=(compress, 3) if compress else 0)
    seen: set[str] = set()
    original = NumpyUnpickler.find_class

    def recording(self, module, name):
        seen.add(f"{module}.{name}")
        return original(self, module, name)

    with mock.patch.object(NumpyUnpickler, "find_class", recording):
        joblib.load(io.BytesIO(buf.getvalue()))
    assert set(scan_pickle_bytes(buf.getvalue()).imports) == seen


def test_scanning_never_imports_the_modules_a_pickle_names() -> None:
    sys.modules.pop("colorsys", None)
    data = b"\x80\x04" + _str_op("colorsys") + _str_op("rgb_to_hsv") + b"\x93)R."
    scan = scan_pickle_bytes(data)
    assert scan.imports == ("colorsys.rgb_to_hsv",)
    assert "colorsys" not in sys.modules


def test_decompression_bomb_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "bomb.joblib"
    joblib.dump(np.zeros(4_000_000), path, compress=("zlib", 9))  # 32 MB of zeros, tiny on disk
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ModelError) as err:
        scan_pickle(path, max_decompressed_bytes=1 << 20)
    assert str(err.value) == (
        "bomb.joblib decompresses to more than 1 MiB, the limit on decompressed size; raise it "
        "with --max-decompressed-mb if the file is legitimate."
    )
    assert scan_pickle(path).verdict == "needs-trust"


def test_truncated_compressed_stream_is_a_model_error(tmp_path: Path) -> None:
    buf = io.BytesIO()
    joblib.dump({"x": np.arange(1000.0)}, buf, compress=("gzip", 3))
    with pytest.raises(ModelError, match="damaged pickle: the gzip data ends in the middle"):
        scan_pickle_bytes(buf.getvalue()[:-20], name="cut.joblib")


def test_lz4_without_the_lz4_package_is_a_model_error() -> None:
    try:
        import lz4  # noqa: F401
    except ImportError:
        with pytest.raises(ModelError) as err:
            scan_pickle_bytes(b"\x04\x22\x4d\x18" + bytes(20), name="fast.joblib")
        assert str(err.value) == "fast.joblib is LZ4-compressed, which needs the lz4 package that is not installed."
    else:  # pragma: no cover - lz4 is not a dependency
        pytest.skip("lz4 is installed")


def test_legacy_joblib_format_is_a_model_error() -> None:
    with pytest.raises(ModelError) as err:
        scan_pickle_bytes(b"ZF0x" + bytes(30), name="old.joblib")
    assert str(err.value) == "old.joblib uses the joblib format of versions before 0.9.3, which Probity does not read."


def test_non_pickle_files_are_model_errors(write_text) -> None:
    for name, content in [
        ("table.pkl", "a,b,c\n1,2,3\n"),
        ("notes.pkl", "hello world\n"),
        ("zip.pkl", b"PK\x03\x04" + bytes(40)),
    ]:
        path = write_text(name, content)
        with pytest.raises(ModelError) as err:
            scan_pickle(path)
        assert str(err.value) == f"{name} is not a pickle or joblib file."
    with pytest.raises(ModelError, match=r"^empty.pkl is empty, so it is not a pickle or joblib file\.$"):
        scan_pickle(write_text("empty.pkl", b""))


def test_danger_rules_keep_common_model_globals() -> None:
    harmless = [
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("sklearn._loss.link", "LogitLink"),
        ("sklearn.tree._tree", "Tree"),
        ("functools", "partial"),
        ("scipy.sparse._csr", "csr_matrix"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
    ]
    for module, name in harmless:
        assert danger_reason(module, name) is None, (module, name)
    dangerous = [
        ("nt", "system"),
        ("runpy", "run_path"),
        ("operator", "attrgetter"),
        ("builtins", "getattr"),
        ("numpy.testing._private.utils", "runstring"),
        ("torch", "load"),
        ("torch.storage", "_load_from_bytes"),
        ("joblib", "load"),
        ("pandas", "read_pickle"),
        ("pandas.core.frame", "DataFrame.to_pickle"),
        ("types", "CodeType"),
        ("sklearn.base", "NumpyArrayWrapper"),
        ("numpy", "load"),
        ("copyreg", "add_extension"),
        ("webbrowser", "open"),
        ("pathlib", "Path"),
        ("dill", "loads"),
        ("cloudpickle.cloudpickle", "_make_function"),
        ("builtins", "object.__subclasses__"),
        ("importlib", "import_module"),
        ("ctypes", "CDLL"),
        ("code", "InteractiveInterpreter.runcode"),
        ("torch._utils", "_import_dotted_name"),
        ("typing", "ForwardRef._evaluate"),
        ("pydoc", "locate"),
    ]
    for module, name in dangerous:
        assert danger_reason(module, name) is not None, (module, name)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_scanner(data: bytes) -> None:
    try:
        scan = scan_pickle_bytes(data)
    except ModelError as err:
        assert str(err).endswith(".")
    else:
        assert scan.verdict in ("refused", "needs-trust")


_BENIGN = [
    pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True)}, protocol=0),
    pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True), "c": {3}}, protocol=4),
]
_buf = io.BytesIO()
joblib.dump({"x": np.arange(6.0), "s": np.array(["q"], dtype=object)}, _buf)
_BENIGN.append(_buf.getvalue())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(_BENIGN))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_mutated_pickles_never_crash_the_scanner(which: int, edits: list[tuple[int, int]]) -> None:
    data = bytearray(_BENIGN[which])
    for pos, value in edits:
        data[pos % len(data)] = value
    try:
        scan = scan_pickle_bytes(bytes(data))
    except ModelError as err:
        assert str(err).endswith(".")
    else:
        assert scan.verdict in ("refused", "needs-trust")
